// The CUDA backend's parts that must behave on any machine, GPU or not:
// device_count() is 0 without a device or driver, the backend refuses to start
// without one, pinning failures name the request, the progress and the
// RLIMIT_MEMLOCK limit, copies are cut at pinned-chunk boundaries, budgets are
// checked against free memory, and the GPU programs' gate skips only where
// there is no GPU.
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <string>

#include "gpu/device_gate.hpp"
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
    CHECK(text.find("check RLIMIT_MEMLOCK, which is ") != std::string::npos);
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

TEST_CASE("a budget must fit the free memory less the headroom, and the refusal gives the numbers") {
  using hydra::cuda::detail::budget_refusal;
  std::size_t const total = 80_GiB, free = 79_GiB, headroom = 512_MiB;
  CHECK(budget_refusal(0, 78_GiB, free, total, headroom).empty());
  CHECK(budget_refusal(0, free - headroom, free, total, headroom).empty());
  std::string const text = budget_refusal(1, free - headroom + 1_MiB, free, total, headroom);
  CHECK(text.find("cuda_backend: device 1 budget") != std::string::npos);
  CHECK(text.find("does not fit") != std::string::npos);
  CHECK(text.find(hydra::format_bytes(free) + " of its " + hydra::format_bytes(total) + " are free") !=
        std::string::npos);
  CHECK(text.find("less " + hydra::format_bytes(headroom) + " of headroom") != std::string::npos);
  CHECK(text.find("leaves at most " + hydra::format_bytes(free - headroom)) != std::string::npos);
  // The device's whole memory is never a budget, whatever is free.
  CHECK_FALSE(budget_refusal(0, total, total, total, headroom).empty());
  // Less free than the headroom: nothing fits.
  CHECK(budget_refusal(0, 1_MiB, 256_MiB, total, headroom).find("leaves at most 0") != std::string::npos);
  CHECK(budget_refusal(0, 1, free, total, headroom).find("below the minimum") != std::string::npos);
}

TEST_CASE("GPU programs run with a device, skip without one, and fail where CUDA is broken or a GPU was required") {
  using gpu_testing::decide;
  using gpu_testing::gate;
  using hydra::cuda::device_presence;
  CHECK(decide(device_presence::present, false) == gate::run);
  CHECK(decide(device_presence::present, true) == gate::run);
  CHECK(decide(device_presence::absent, false) == gate::skip);
  CHECK(decide(device_presence::absent, true) == gate::fail);
  CHECK(decide(device_presence::broken, false) == gate::fail);
  CHECK(decide(device_presence::broken, true) == gate::fail);
  // This machine: the gate agrees with the runtime's answer (77 only for "absent").
  auto const found = hydra::cuda::query_devices();
  auto const verdict = gpu_testing::pass_gate("cuda_status_tests");
  switch (found.presence) {
  case device_presence::present:
    CHECK_FALSE(verdict.has_value());
    break;
  case device_presence::absent:
    CHECK(verdict == (gpu_testing::gpu_required() ? 1 : gpu_testing::skip_exit_code));
    break;
  case device_presence::broken:
    CHECK(verdict == 1);
    break;
  }
}
