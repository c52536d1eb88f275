// The memory-resource conformance suite (tests/memory/pool_conformance.hpp) on
// the host backend: both pools, each plain and with the delay-injecting mode.
// tests/gpu/pool_conformance_cuda.test.cpp runs the same suite on the CUDA backend.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>

#include "hydra/hydra.hpp"
#include "memory/pool_conformance.hpp"

namespace {

// Each resource runs on the plain host backend and on the delay-injecting one.
constexpr hydra::delay_injection no_delays{};
constexpr hydra::delay_injection random_delays{
    .enabled = true, .seed = 77, .max_delay = std::chrono::microseconds(100)};

// Host memory either way: filled and read directly.
template <hydra::delay_injection const& Delays>
struct on_host_backend {
  using backend_type = hydra::host_backend;
  using stream_type = hydra::host_stream;
  static std::unique_ptr<backend_type> make_backend() {
    return std::make_unique<backend_type>(
        hydra::host_backend_options{.device_budgets = {pool_conformance::capacity}, .delays = Delays});
  }
  static void fill(backend_type&, stream_type, void* block, std::size_t bytes, std::uint8_t value) {
    std::memset(block, value, bytes);
  }
  static bool holds(backend_type&, stream_type, void const* block, std::size_t bytes, std::uint8_t value) {
    auto const* byte = static_cast<std::uint8_t const*>(block);
    return std::all_of(byte, byte + bytes, [value](std::uint8_t b) { return b == value; });
  }
  static void fill_on_stream(backend_type& backend, stream_type stream, void* block, std::size_t bytes,
                             std::uint8_t value) {
    backend.enqueue(stream, [=] { std::memset(block, value, bytes); });
  }
};

template <hydra::delay_injection const& Delays>
struct device_pool_on_host : on_host_backend<Delays> {
  using pool = hydra::device_pool<hydra::host_backend>;
  static std::unique_ptr<pool> make(hydra::host_backend& backend) { return std::make_unique<pool>(backend, 0); }
};

template <hydra::delay_injection const& Delays>
struct host_pool_on_host : on_host_backend<Delays> {
  using pool = hydra::host_pool<hydra::host_backend>;
  static std::unique_ptr<pool> make(hydra::host_backend& backend) {
    return std::make_unique<pool>(backend, pool_conformance::capacity);
  }
};

} // namespace

TEST_CASE_TEMPLATE_INVOKE(conformance, device_pool_on_host<no_delays>, host_pool_on_host<no_delays>,
                          device_pool_on_host<random_delays>, host_pool_on_host<random_delays>);
