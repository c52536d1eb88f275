// The CUDA backend on a real GPU (gpu_tests: skipped without one): stream
// ordering across streams, round trips through the pools, refusals, host-work
// failures, copies across pinned-chunk boundaries, the stream poll that a
// completion wait relies on, library handles bound at stream creation, and the
// budget checked against free memory.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "hydra/cuda.hpp"

using namespace hydra::literals;
using hydra::cuda::cuda_backend;

namespace {
bool holds(void const* block, std::size_t bytes, std::uint8_t value) {
  auto const* b = static_cast<std::uint8_t const*>(block);
  for (std::size_t k = 0; k < bytes; ++k)
    if (b[k] != value) return false;
  return true;
}
} // namespace

TEST_CASE("pinned -> device -> pinned on two streams, ordered by events, behind a slow host function") {
  cuda_backend backend({.device_budgets = {64_MiB}, .pin_chunk_bytes = 1_MiB});
  hydra::device_pool<cuda_backend> device(backend, 0);
  hydra::host_pool<cuda_backend> host(backend, 16_MiB);
  auto a = backend.create_stream(0, "a", hydra::stream_role::prefetch);
  auto b = backend.create_stream(0, "b", hydra::stream_role::spill);
  std::size_t const bytes = 3_MiB + 123; // crosses pinned chunk boundaries
  auto* in = static_cast<std::byte*>(host.allocate(a, bytes));
  auto* out = static_cast<std::byte*>(host.allocate(a, bytes));
  auto* on_device = device.allocate(a, bytes);
  backend.synchronize(a);
  std::memset(in, 0x5A, bytes);
  std::memset(out, 0, bytes);
  // A missing edge would let b copy back before a's copy landed.
  backend.enqueue(a, [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); });
  backend.copy_async(a, on_device, in, bytes);
  backend.wait_event(b, backend.record_event(a));
  backend.copy_async(b, out, on_device, bytes);
  backend.synchronize(b);
  CHECK(holds(out, bytes, 0x5A));
  device.deallocate(b, on_device);
  host.deallocate(b, in);
  host.deallocate(b, out);
  backend.synchronize(b);
}

TEST_CASE("a pageable host pointer is refused, the device budget is a hard limit") {
  cuda_backend backend({.device_budgets = {8_MiB}});
  hydra::device_pool<cuda_backend> device(backend, 0);
  auto s = backend.create_stream(0);
  std::vector<std::byte> pageable(1_MiB);
  void* block = device.allocate(s, 1_MiB);
  CHECK_THROWS_WITH_AS(backend.copy_async(s, block, pageable.data(), 1_MiB), doctest::Contains("pageable host memory"),
                       hydra::invalid_argument);
  CHECK_THROWS_AS((void)device.allocate(s, 8_MiB), hydra::out_of_memory);
  device.deallocate(s, block);
  backend.synchronize(s);
}

TEST_CASE("host work that throws is reported by the stream's next synchronize") {
  cuda_backend backend({.device_budgets = {8_MiB}});
  auto s = backend.create_stream(0, "worker");
  backend.enqueue(s, [] { throw std::runtime_error("layer failed"); });
  CHECK_THROWS_WITH_AS(backend.synchronize(s), doctest::Contains("worker: host work failed: layer failed"),
                       hydra::stream_error);
  CHECK_NOTHROW(backend.synchronize(s)); // reported once
}

TEST_CASE("events: a default event has fired, a recorded one fires after its stream's work") {
  cuda_backend backend({.device_budgets = {8_MiB}});
  auto s = backend.create_stream(0);
  CHECK(backend.query(hydra::cuda::cuda_event{}));
  backend.enqueue(s, [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); });
  auto const e = backend.record_event(s);
  CHECK_FALSE(backend.query(e));
  backend.synchronize(e);
  CHECK(backend.query(e));
}

// Every member of the spill engine compiles against the CUDA backend.
template class hydra::spill_engine<hydra::cuda::cuda_backend>;

TEST_CASE("check() returns for a stream that is busy, idle, or whose host work threw") {
  cuda_backend backend({.device_budgets = {8_MiB}});
  auto s = backend.create_stream(0, "polled");
  backend.enqueue(s, [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); });
  CHECK_NOTHROW(backend.check(s)); // running: cudaErrorNotReady is no failure
  backend.enqueue(s, [] { throw std::runtime_error("host work failed"); });
  CHECK_NOTHROW(backend.check(s)); // host-work errors are synchronize()'s to report
  CHECK_THROWS_AS(backend.synchronize(s), hydra::stream_error);
  CHECK_NOTHROW(backend.check(s));
}

TEST_CASE("a compute stream's cuBLAS and cuDNN handles are made with it and bound to it") {
  cuda_backend backend({.device_budgets = {8_MiB}});
  auto const compute = backend.create_stream(0, "compute", hydra::stream_role::compute);
  cudaStream_t bound = nullptr;
  REQUIRE(cublasGetStream(backend.cublas(compute), &bound) == CUBLAS_STATUS_SUCCESS);
  CHECK(bound == compute.handle());
  bound = nullptr;
  REQUIRE(cudnnGetStream(backend.cudnn(compute), &bound) == CUDNN_STATUS_SUCCESS);
  CHECK(bound == compute.handle());
}

TEST_CASE("a budget is checked against free memory: up to free less the headroom it is taken, and layers still run") {
  std::size_t free = 0, total = 0;
  {
    cuda_backend warmed({.device_budgets = {8_MiB}}); // the context and the libraries' code are loaded now
    HYDRA_CHECK(cudaMemGetInfo(&free, &total));
  }
  hydra::cuda::cuda_backend_options const defaults{};
  CHECK_THROWS_WITH_AS(cuda_backend({.device_budgets = {free - 16_MiB}}), doctest::Contains("does not fit"),
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(cuda_backend({.device_budgets = {total}}), doctest::Contains("headroom"),
                       hydra::invalid_argument);
  // The largest budget accepted: its slab, then a dense layer (cuBLAS with its
  // workspace, cuDNN's bias add) beside it, on a compute stream made after.
  std::size_t const largest = hydra::align_down(free - defaults.headroom_bytes - 256_MiB, hydra::allocation_alignment);
  cuda_backend backend({.device_budgets = {largest}});
  hydra::device_pool<cuda_backend> pool(backend, 0);
  auto compute = backend.create_stream(0, "compute", hydra::stream_role::compute);
  hydra::cuda::cuda_execution_context context(backend, compute);
  std::size_t const batch = 64, in = 256, out = 128;
  auto* x = static_cast<float*>(pool.allocate(compute, batch * in * sizeof(float)));
  auto* y = static_cast<float*>(pool.allocate(compute, batch * out * sizeof(float)));
  auto* p = static_cast<float*>(pool.allocate(compute, (in * out + out) * sizeof(float)));
  backend.memset_async(compute, x, 0, batch * in * sizeof(float));
  backend.memset_async(compute, p, 0, (in * out + out) * sizeof(float));
  hydra::cuda::layers::cublas_dense const layer(in, out);
  CHECK_NOTHROW(layer.forward(context, {batch, x, y, p, nullptr, nullptr}));
  CHECK_NOTHROW(backend.synchronize(compute));
  pool.deallocate(compute, x);
  pool.deallocate(compute, y);
  pool.deallocate(compute, p);
  backend.synchronize(compute);
}
