// The memory-resource conformance suite (tests/memory/pool_conformance.hpp) on
// the CUDA backend (gpu_tests: skipped without a GPU): the device pool over its
// cudaMalloc slab, and the host pool over pinned memory.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "hydra/cuda.hpp"
#include "memory/pool_conformance.hpp"

namespace {

struct on_cuda_backend {
  using backend_type = hydra::cuda::cuda_backend;
  using stream_type = hydra::cuda::cuda_stream;
  static std::unique_ptr<backend_type> make_backend() {
    return std::make_unique<backend_type>(
        hydra::cuda::cuda_backend_options{.device_budgets = {pool_conformance::capacity}});
  }
};

// Device memory: cudaMemset and cudaMemcpy on the legacy default stream, which
// does not wait for hydra's non-blocking streams (a gate may hold them). A
// memset of device memory may return before it ran, so fill waits for the
// legacy stream alone.
struct device_pool_on_cuda : on_cuda_backend {
  using pool = hydra::device_pool<backend_type>;
  static std::unique_ptr<pool> make(backend_type& backend) { return std::make_unique<pool>(backend, 0); }
  static void fill(backend_type&, stream_type, void* block, std::size_t bytes, std::uint8_t value) {
    HYDRA_CHECK(cudaMemset(block, value, bytes));
    HYDRA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
  }
  static bool holds(backend_type&, stream_type, void const* block, std::size_t bytes, std::uint8_t value) {
    std::vector<std::uint8_t> copy(bytes);
    HYDRA_CHECK(cudaMemcpy(copy.data(), block, bytes, cudaMemcpyDeviceToHost));
    for (std::uint8_t b : copy)
      if (b != value) return false;
    return true;
  }
  static void fill_on_stream(backend_type& backend, stream_type stream, void* block, std::size_t bytes,
                             std::uint8_t value) {
    backend.memset_async(stream, block, value, bytes);
  }
};

// Pinned host memory: read and written directly, as on the host backend.
struct host_pool_on_cuda : on_cuda_backend {
  using pool = hydra::host_pool<backend_type>;
  static std::unique_ptr<pool> make(backend_type& backend) {
    return std::make_unique<pool>(backend, pool_conformance::capacity);
  }
  static void fill(backend_type&, stream_type, void* block, std::size_t bytes, std::uint8_t value) {
    std::memset(block, value, bytes);
  }
  static bool holds(backend_type&, stream_type, void const* block, std::size_t bytes, std::uint8_t value) {
    auto const* byte = static_cast<std::uint8_t const*>(block);
    for (std::size_t k = 0; k < bytes; ++k)
      if (byte[k] != value) return false;
    return true;
  }
  static void fill_on_stream(backend_type& backend, stream_type stream, void* block, std::size_t bytes,
                             std::uint8_t value) {
    backend.enqueue(stream, [=] { std::memset(block, value, bytes); });
  }
};

} // namespace

TEST_CASE_TEMPLATE_INVOKE(conformance, device_pool_on_cuda, host_pool_on_cuda);
