// The CUDA backend's parts that must behave on any machine, GPU or not:
// device_count() is 0 without a device or driver, the backend refuses to start
// without one, pinning failures name the request, the progress and the
// RLIMIT_MEMLOCK limit, and copies are cut at pinned-chunk boundaries.
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <string>

#include "hydra/backend/cuda/cuda_backend.hpp"

using namespace hydra::literals;

TEST_CASE("device_count() is the runtime's count, or 0 without a device or driver, and never throws") {
  int devices = 0;
  cudaError_t const status = cudaGetDeviceCount(&devices);
  static_cast<void>(cudaGetLastError());
  std::size_t const expected = status == cudaSuccess && devices > 0 ? static_cast<std::size_t>(devices) : 0;
  CHECK(hydra::cuda::device_count() == expected);
  CHECK(hydra::cuda::device_count() == expected); // the failure was cleared, not sticky
}

TEST_CASE("without a CUDA device the backend refuses to start, saying so") {
  if (hydra::cuda::device_count() > 0) return; // covered by gpu_tests on a GPU machine
  CHECK_THROWS_WITH_AS(hydra::cuda::cuda_backend({.device_budgets = {64_MiB}}), doctest::Contains("no CUDA device"),
                       hydra::invalid_argument);
}

TEST_CASE("a pinning failure names the bytes requested, the bytes pinned and RLIMIT_MEMLOCK") {
  if (hydra::cuda::device_count() > 0) return; // with a driver, pinning 1 MiB succeeds
  try {
    auto reservation = hydra::cuda::pin_host_memory(3_MiB, 1_MiB);
    FAIL("pinning without a driver succeeded");
  } catch (hydra::cuda::pinning_failed const& e) {
    std::string const text = e.what();
    CHECK(e.requested() == 3_MiB);
    CHECK(e.pinned() == 0);
    CHECK(text.find("pinning 3145728 bytes (3.00 MiB) failed after 0 bytes") != std::string::npos);
    CHECK(text.find("cudaHostRegister: cudaError") != std::string::npos);
    CHECK(text.find("RLIMIT_MEMLOCK is ") != std::string::npos);
  }
}

TEST_CASE("copies are cut at the pinned range's chunk boundaries") {
  alignas(64) static std::byte range[1000];
  hydra::cuda::pinned_region const region{range, 1000, 256};
  CHECK(region.contains(range));
  CHECK(region.contains(range + 999));
  CHECK_FALSE(region.contains(range + 1000));
  CHECK(region.next_boundary(range) == range + 256);
  CHECK(region.next_boundary(range + 255) == range + 256);
  CHECK(region.next_boundary(range + 256) == range + 512);
  CHECK(region.next_boundary(range + 900) == range + 1000); // the last, short chunk ends at the range's end
}
