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
#include <string>

#include "hydra/backend/memory_reservation.hpp"
#include "hydra/core/stream_role.hpp"

namespace hydra {

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
  { target.device_budget(n) } -> std::convertible_to<std::size_t>;
  { target.create_stream(n) } -> std::same_as<typename Backend::stream>;
  target.enqueue(stream, detail::no_work{});
  target.copy_async(stream, destination, source, n);
  target.synchronize(stream);
  { target.reserve_device_memory(n, n) } -> std::same_as<memory_reservation>;
  { target.reserve_host_memory(n) } -> std::same_as<memory_reservation>;
};

// Optional capabilities: a backend offers what it can, and hydra's generic code
// asks for them by these names.

// Counts each stream's busy and waiting time (the host backend).
template <class Backend>
concept measures_streams = requires(Backend& backend, typename Backend::stream stream) {
  backend.statistics(stream).busy;
  backend.statistics(stream).waiting;
};

// ... and counts its copies: bytes and the time spent copying (link rates).
template <class Backend>
concept measures_copies = measures_streams<Backend> && requires(Backend& backend, typename Backend::stream stream) {
  backend.statistics(stream).copied_bytes;
  backend.statistics(stream).copying;
};

// Runs its devices' work on the host's cores (the host backend): profiles then
// time that work in CPU time and record the core count.
template <class Backend>
concept shares_host_cores = requires {
  requires Backend::devices_share_host_cores;
};

// Declares how fast each device computes against the device the models' cost
// estimates describe (host virtual devices made slower than the machine): the
// multi-model trainer shows it to policies as device_view::speed.
template <class Backend>
concept declares_device_speeds = requires(Backend const& backend, std::size_t device) {
  { backend.device_speed(device) } -> std::convertible_to<double>;
};

// Times an interval of a stream with a pair of events (CUDA).
template <class Backend>
concept times_intervals = requires(Backend& backend, typename Backend::stream stream,
                                   typename Backend::timed_event const& event) {
  { backend.record_timed_event(stream) } -> std::same_as<typename Backend::timed_event>;
  { backend.elapsed_seconds(event, event) } -> std::convertible_to<double>;
};

// Takes a stream's role when creating it (the CUDA backend sets priorities by it).
template <class Backend>
concept assigns_stream_roles = requires(Backend& backend, std::size_t device, std::string name, stream_role role) {
  { backend.create_stream(device, name, role) } -> std::same_as<typename Backend::stream>;
};

// Where a test backend may inject a fault (fault_injection on the host backend).
enum class fault_site : std::uint8_t {
  copy,       // a copy refused when issued, as a CUDA error returned by cudaMemcpyAsync
  allocation, // a pool allocation that fails mid-run
  host_work,  // a layer's or the optimizer's enqueued work throwing when it runs
};

// Decides at each fault site whether a fault happens there now. The memory
// pools ask before every allocation; the host backend asks itself at copies
// and its execution context at enqueued work.
template <class Backend>
concept injects_faults = requires(Backend& backend, fault_site site) {
  { backend.inject_fault(site) } -> std::same_as<bool>;
};

// Opens a profiler range (CUDA: NVTX) for as long as the returned object lives.
template <class Backend>
concept annotates = requires(Backend& backend, std::string name) {
  backend.annotate(name);
};

} // namespace hydra
