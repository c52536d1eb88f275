// The host backend: N virtual devices on CPU threads, so that everything above
// the backend (pools, spill engine, scheduler, trainer) runs for real without a GPU.
//
//  - a virtual device is a memory budget; reserve_device_memory() enforces it;
//  - a stream is an in-order work queue with its own thread; copies run on the
//    issuing stream's thread (memcpy), so stream-ordering bugs are real bugs here;
//  - events, cross-stream waits and host waits behave as CUDA's do;
//  - a delay-injecting mode sleeps a seeded random time before every queued item,
//    which makes a missing event edge show up as a wrong result in tests.
// The backend owns its streams and must outlive every handle, event, reservation
// and pool made from it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/backend/host/detail/stream_worker.hpp"
#include "hydra/backend/host/host_stream.hpp"
#include "hydra/backend/memory_reservation.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"

namespace hydra {

struct delay_injection {
  bool enabled = false;
  std::uint64_t seed = 0;
  std::chrono::microseconds max_delay{200}; // each item sleeps uniform [0, max_delay]
};

// Test aid: a device lost mid-run. One stream runs a number of items, then it
// and every other stream of its device stop running their work, as a GPU's
// streams do after a device fault. Their later items, the host functions that
// report completions among them, never run; they count as completed, so waits
// on them return. check() reports such a stream.
struct stall_injection {
  bool enabled = false;
  std::uint64_t stream = 0;      // which one: host_stream::id(), in creation order from 0
  std::uint64_t after_items = 1; // items it runs first (at least 1)
};

// Test aid: faults at seeded random points, each site with its own
// probability per occurrence. A trainer must stop only the model whose work
// met the fault (reported, its memory returned) or end the sweep with a clear
// error; the others must train on unchanged. Which occurrences fail depends
// on the seed and on the order in which the sites are reached, which follows
// the schedule.
struct fault_injection {
  bool enabled = false;
  std::uint64_t seed = 0;
  double copy = 0.0;       // a copy_async call is refused (throws backend_error) when issued
  double allocation = 0.0; // a pool allocation throws out_of_memory
  // Work enqueued through an execution context with a fault record (layers,
  // the optimizer, guard mode's steps) throws on its stream instead of running.
  double host_work = 0.0;
};

struct host_backend_options {
  std::vector<std::size_t> device_budgets; // one virtual device per entry: its memory, in bytes
  delay_injection delays{};
  stall_injection stall{};
  fault_injection faults{};
  // Virtual devices slower than the machine (what-if runs, and tests of
  // devices that differ): device d's compute stream takes 1 / speed as long
  // for each piece of work (it spins on its thread's CPU for the rest).
  // Each speed is in [0.001, 1]; empty: every device at full speed.
  std::vector<double> device_speeds{};
};

class host_backend {
public:
  using stream = host_stream;
  using event = host_event;
  // Every reservation, the devices' included, is host memory (under
  // AddressSanitizer the pools tell it what of that memory is allocated).
  static constexpr bool memory_is_host_memory = true;
  // Every device's streams are threads of this process: their compute and
  // copies are work for the machine's cores, shared with the runtime's thread.
  static constexpr bool devices_share_host_cores = true;

  explicit host_backend(host_backend_options options) : options_(std::move(options)) {
    detail::expects(!options_.device_budgets.empty(),
                    "host_backend: device count is 0; at least 1 virtual device is required");
    for (std::size_t device = 0; device < options_.device_budgets.size(); ++device) {
      detail::expects(options_.device_budgets[device] >= allocation_alignment,
                      "host_backend: device " + std::to_string(device) + " budget is " +
                          format_bytes(options_.device_budgets[device]) + ", below the minimum of " +
                          format_bytes(allocation_alignment));
    }
    detail::expects(options_.device_speeds.empty() || options_.device_speeds.size() == options_.device_budgets.size(),
                    "host_backend: " + std::to_string(options_.device_speeds.size()) + " device speeds for " +
                        std::to_string(options_.device_budgets.size()) + " devices");
    for (std::size_t device = 0; device < options_.device_speeds.size(); ++device) {
      double const speed = options_.device_speeds[device];
      detail::expects(speed >= 1e-3 && speed <= 1, "host_backend: device " + std::to_string(device) +
                                                       " has a speed of " + std::to_string(speed) +
                                                       "; a virtual device's speed is in [0.001, 1]");
    }
    for (double const probability : {options_.faults.copy, options_.faults.allocation, options_.faults.host_work}) {
      detail::expects(probability >= 0.0 && probability <= 1.0, "host_backend: a fault_injection probability is " +
                                                                    std::to_string(probability) +
                                                                    "; it must lie in [0, 1]");
    }
    fault_random_.seed(options_.faults.seed);
    reserved_.assign(options_.device_budgets.size(), 0);
    device_lost_ = std::make_unique<std::atomic<bool>[]>(options_.device_budgets.size());
  }

  host_backend(host_backend const&) = delete;
  host_backend& operator=(host_backend const&) = delete;

  // Drains every stream before the memory its work may touch goes away.
  ~host_backend() {
    for (auto& worker : workers_) worker->stop();
  }

  [[nodiscard]] std::size_t device_count() const noexcept { return options_.device_budgets.size(); }

  [[nodiscard]] std::size_t device_budget(std::size_t device) const {
    check_device(device);
    return options_.device_budgets[device];
  }

  // Its compute speed (host_backend_options::device_speeds; 1 when none were given).
  [[nodiscard]] double device_speed(std::size_t device) const {
    check_device(device);
    return options_.device_speeds.empty() ? 1.0 : options_.device_speeds[device];
  }

  [[nodiscard]] std::string device_name(std::size_t device) const {
    check_device(device);
    return "host virtual device " + std::to_string(device);
  }

  // ---- streams and events -------------------------------------------------

  // A compute stream (role) of a device slower than the machine runs its work
  // at the device's speed (host_backend_options::device_speeds).
  host_stream create_stream(std::size_t device, std::string name, stream_role role) {
    check_device(device);
    bool const slower = role == stream_role::compute && !options_.device_speeds.empty();
    return make_stream(device, std::move(name), slower ? 1 / options_.device_speeds[device] - 1 : 0.0);
  }

  host_stream create_stream(std::size_t device, std::string name = {}) {
    return make_stream(device, std::move(name), 0.0);
  }

  // Runs what was enqueued, then stops the stream's thread. Events recorded on
  // it stay valid (and fire) for as long as the backend lives.
  void destroy_stream(host_stream stream) { worker(stream).stop(); }

  template <class Function>
  void enqueue(host_stream stream, Function&& function) {
    detail::work_item item;
    item.what = detail::work_item::kind::host_function;
    item.function = std::forward<Function>(function);
    worker(stream).submit(std::move(item));
  }

  // memcpy on `stream`'s thread, after everything enqueued before it.
  void copy_async(host_stream stream, void* destination, void const* source, std::size_t bytes,
                  std::source_location where = std::source_location::current()) {
    if (inject_fault(fault_site::copy)) {
      throw backend_error("host backend", "injected_copy_failure",
                          "fault injection refused a copy of " + format_bytes(bytes) + " on stream '" +
                              worker(stream).name() + "'",
                          "copy_async", where);
    }
    detail::work_item item;
    item.what = detail::work_item::kind::copy;
    item.destination = destination;
    item.source = source;
    item.bytes = bytes;
    worker(stream).submit(std::move(item));
  }

  // Fills `bytes` at `destination` with `value`, in stream order (used to poison
  // freed blocks in tests, and by layers that need zeroed buffers).
  void memset_async(host_stream stream, void* destination, std::uint8_t value, std::size_t bytes) {
    enqueue(stream, [destination, value, bytes] { std::memset(destination, value, bytes); });
  }

  struct stream_statistics {
    std::chrono::nanoseconds busy{0};    // running work, copies included
    std::chrono::nanoseconds waiting{0}; // blocked on other streams' events
    std::uint64_t copied_bytes = 0;
    std::chrono::nanoseconds copying{0}; // CPU time of its copy_async copies
  };

  [[nodiscard]] stream_statistics statistics(host_stream stream) const {
    auto const& target = worker(stream);
    return {target.busy_time(), target.wait_time(), target.copied_bytes(), target.copy_time()};
  }

  // Throws stream_error when `stream`'s device is lost (stall_injection): what
  // is queued on it will never run, completions included. Never waits.
  void check(host_stream stream) const {
    auto const& target = worker(stream);
    if (target.stalled()) {
      throw stream_error("host stream '" + target.name() + "' on device " + std::to_string(target.device()) +
                         ": the device was lost after stream " + std::to_string(options_.stall.stream) + " ran " +
                         std::to_string(std::max<std::uint64_t>(options_.stall.after_items, 1)) +
                         " items (stall injection); what is queued on it will never run");
    }
  }

  [[nodiscard]] host_event record_event(host_stream stream) const {
    auto& recorded = worker(stream);
    return host_event(&recorded, recorded.submitted());
  }

  // Work enqueued on `waiter` after this call starts only once `awaited` fired.
  void wait_event(host_stream waiter, host_event awaited) {
    if (awaited.has_fired()) return; // nothing to order after
    detail::work_item item;
    item.what = detail::work_item::kind::wait;
    item.awaited_stream = awaited.worker_;
    item.awaited_ticket = awaited.ticket_;
    worker(waiter).submit(std::move(item));
  }

  [[nodiscard]] bool query(host_event event) const noexcept { return event.has_fired(); }

  // ---- fault injection (fault_injection) --------------------------------------

  // Whether a fault happens at this occurrence of `site`: never unless enabled.
  [[nodiscard]] bool inject_fault(fault_site site) {
    if (!options_.faults.enabled) return false;
    double const probability = site == fault_site::copy         ? options_.faults.copy
                               : site == fault_site::allocation ? options_.faults.allocation
                                                                : options_.faults.host_work;
    if (probability <= 0.0) return false;
    std::lock_guard lock(fault_mutex_);
    if (std::uniform_real_distribution<double>(0.0, 1.0)(fault_random_) >= probability) return false;
    ++injected_[static_cast<std::size_t>(site)];
    return true;
  }

  // How many faults were injected at `site` so far.
  [[nodiscard]] std::uint64_t injected_faults(fault_site site) const {
    std::lock_guard lock(fault_mutex_);
    return injected_[static_cast<std::size_t>(site)];
  }

  // Blocks the host until `event` fired.
  void synchronize(host_event event) const {
    if (event.worker_ != nullptr) event.worker_->wait_for(event.ticket_);
  }

  // Blocks until everything enqueued on `stream` ran; rethrows (as stream_error,
  // nesting the original) the first exception that any of that work threw.
  void synchronize(host_stream stream) {
    auto& target = worker(stream);
    target.wait_for(target.submitted());
    if (std::exception_ptr failure = target.take_error()) {
      std::string const prefix = "host stream '" + target.name() + "' on device " + std::to_string(target.device()) +
                                 ": enqueued work threw: ";
      try {
        std::rethrow_exception(failure);
      } catch (std::exception const& cause) {
        std::throw_with_nested(stream_error(prefix + cause.what()));
      } catch (...) {
        std::throw_with_nested(stream_error(prefix + "an exception not derived from std::exception"));
      }
    }
  }

  // ---- memory ----------------------------------------------------------------

  // Takes `bytes` of a virtual device's budget. The sum of live reservations on
  // a device never exceeds its budget: that is the device's hard memory limit.
  [[nodiscard]] memory_reservation reserve_device_memory(std::size_t device, std::size_t bytes) {
    check_device(device);
    {
      std::lock_guard lock(mutex_);
      std::size_t const budget = options_.device_budgets[device];
      if (bytes > budget - reserved_[device]) {
        throw out_of_memory(device_name(device) + " reservation", bytes, reserved_[device], budget,
                            budget - reserved_[device]);
      }
      reserved_[device] += bytes;
    }
    void* data = nullptr;
    try {
      data = allocate_aligned(bytes);
    } catch (...) {
      std::lock_guard lock(mutex_);
      reserved_[device] -= bytes;
      throw;
    }
    return memory_reservation(data, bytes, [this, device](void* pointer, std::size_t size) {
      release_aligned(pointer);
      std::lock_guard lock(mutex_);
      reserved_[device] -= size;
    });
  }

  // Host DRAM for spilled state. Plain aligned memory here; the CUDA backend
  // returns pinned memory so that its copies are truly asynchronous.
  [[nodiscard]] memory_reservation reserve_host_memory(std::size_t bytes) {
    return memory_reservation(allocate_aligned(bytes), bytes,
                              [](void* pointer, std::size_t) { release_aligned(pointer); });
  }

  [[nodiscard]] std::size_t reserved_device_bytes(std::size_t device) const {
    check_device(device);
    std::lock_guard lock(mutex_);
    return reserved_[device];
  }

private:
  static void* allocate_aligned(std::size_t bytes) {
    // Never zero-sized, so a reservation always has a distinct address.
    return ::operator new (bytes == 0 ? allocation_alignment : bytes, std::align_val_t{allocation_alignment});
  }
  static void release_aligned(void* pointer) noexcept {
    ::operator delete (pointer, std::align_val_t{allocation_alignment});
  }

  void check_device(std::size_t device) const {
    if (device >= device_count()) {
      throw invalid_argument("host_backend: device index " + std::to_string(device) + " is out of range; it has " +
                             std::to_string(device_count()) + " device(s)");
    }
  }

  host_stream make_stream(std::size_t device, std::string name, double extra_cpu) {
    check_device(device);
    std::lock_guard lock(mutex_);
    auto const id = static_cast<std::uint64_t>(workers_.size());
    if (name.empty()) name = "stream " + std::to_string(id);
    bool const stalls = options_.stall.enabled && options_.stall.stream == id;
    detail::delay_settings delays{
        options_.delays.enabled,   options_.delays.seed,
        options_.delays.max_delay, stalls ? std::max<std::uint64_t>(options_.stall.after_items, 1) : 0,
        &device_lost_[device],     extra_cpu};
    workers_.push_back(std::make_unique<detail::stream_worker>(device, id, std::move(name), delays));
    return host_stream(workers_.back().get());
  }

  detail::stream_worker& worker(host_stream stream) const {
    detail::expects(stream.worker_ != nullptr, "host_backend: null stream handle");
    return *stream.worker_;
  }

  host_backend_options options_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<detail::stream_worker>> workers_;
  std::vector<std::size_t> reserved_;
  std::unique_ptr<std::atomic<bool>[]> device_lost_; // per device: stall_injection fired there
  mutable std::mutex fault_mutex_;
  std::mt19937_64 fault_random_;
  std::array<std::uint64_t, 3> injected_{}; // per fault_site
};

static_assert(backend<host_backend>);
static_assert(injects_faults<host_backend>);

} // namespace hydra
