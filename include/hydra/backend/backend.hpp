// What hydra asks of a backend, as C++20 concepts. host_backend satisfies them
// (static_assert beside it); the CUDA backend and test decorators satisfy the same.
//
// stream_ordering is the part the memory pools need: record an event on a stream,
// make a stream wait on one, ask whether one fired, and wait for one on the host.
// backend adds devices, work, copies and memory reservations.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "hydra/memory/memory_reservation.hpp"

namespace hydra {

// What a stream is for. A backend may take it as create_stream's third argument
// (the CUDA backend gives prefetch streams the highest priority); the spill
// engine passes it when the backend accepts it.
enum class stream_role : std::uint8_t { compute, prefetch, spill, other };

template <class Backend>
concept stream_ordering = requires(Backend& backend, typename Backend::stream stream, typename Backend::event event) {
  requires std::copyable<typename Backend::stream>;
  requires std::copyable<typename Backend::event>;
  { stream.id() } -> std::convertible_to<std::uint64_t>; // unique per stream of one backend
  { backend.record_event(stream) } -> std::same_as<typename Backend::event>;
  backend.wait_event(stream, event);
  { backend.query(event) } -> std::same_as<bool>;
  backend.synchronize(event);
};

namespace detail {
// A stand-in for enqueued work in the concept below. Not a lambda: nvcc's
// front end rejects a lambda inside a concept's requires-expression.
struct no_work {
  void operator()() const noexcept {}
};
} // namespace detail

template <class Backend>
concept backend = stream_ordering<Backend> &&
    requires(Backend& target, typename Backend::stream stream, std::size_t n, void* destination, void const* source) {
  { target.device_count() } -> std::convertible_to<std::size_t>;
  { target.device_capacity(n) } -> std::convertible_to<std::size_t>;
  { target.create_stream(n) } -> std::same_as<typename Backend::stream>;
  target.enqueue(stream, detail::no_work{});
  target.copy_async(stream, destination, source, n);
  target.synchronize(stream);
  { target.reserve_device_memory(n, n) } -> std::same_as<memory_reservation>;
  { target.reserve_host_memory(n) } -> std::same_as<memory_reservation>;
};

} // namespace hydra
