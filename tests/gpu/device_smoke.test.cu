// The toolchain end to end on a real GPU: a kernel built for the configured
// architectures runs, stream-ordered allocation works, pinned copies round-trip,
// and HYDRA_CHECK reports a real device-side failure.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "hydra/backend/cuda/status.hpp"

namespace {
__global__ void write_indices(std::uint32_t* out, std::uint32_t count) {
  std::uint32_t const at = blockIdx.x * blockDim.x + threadIdx.x;
  if (at < count) out[at] = at * 3U + 1U;
}
} // namespace

TEST_CASE("a kernel writes device memory from cudaMallocAsync, read back through pinned memory") {
  constexpr std::uint32_t count = 1U << 20;
  cudaStream_t stream = nullptr;
  HYDRA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::uint32_t* device = nullptr;
  std::uint32_t* pinned = nullptr;
  HYDRA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&device), count * sizeof(std::uint32_t), stream));
  HYDRA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&pinned), count * sizeof(std::uint32_t), cudaHostAllocDefault));
  write_indices<<<(count + 255) / 256, 256, 0, stream>>>(device, count);
  HYDRA_CHECK(cudaGetLastError());
  HYDRA_CHECK(cudaMemcpyAsync(pinned, device, count * sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream));
  HYDRA_CHECK(cudaFreeAsync(device, stream));
  HYDRA_CHECK(cudaStreamSynchronize(stream));
  std::uint32_t wrong = 0;
  for (std::uint32_t i = 0; i < count; ++i) wrong += pinned[i] != i * 3U + 1U ? 1U : 0U;
  CHECK(wrong == 0);
  HYDRA_CHECK(cudaFreeHost(pinned));
  HYDRA_CHECK(cudaStreamDestroy(stream));
}

TEST_CASE("HYDRA_CHECK turns an impossible allocation into backend_error") {
  void* huge = nullptr;
  CHECK_THROWS_WITH_AS(HYDRA_CHECK(cudaMalloc(&huge, std::size_t{1} << 60)),
                       doctest::Contains("cudaErrorMemoryAllocation"), hydra::backend_error);
}
