// The machinery behind a host stream: an in-order work queue drained by one
// thread. Users meet it only through host_stream / host_event handles.
//
// Ordering model (the same one CUDA streams and events give):
//  - every enqueued item gets the next ticket 1, 2, 3, ... of its stream;
//  - `completed` counts finished items and only grows, so "event (stream, t) has
//    fired" is simply completed >= t. Recording an event costs one load of the
//    submission counter, which is what makes a stream-ordered pool's free cheap;
//  - a cross-stream wait is an item that blocks its own thread until the other
//    stream's counter reaches the ticket. Tickets are taken from work already
//    submitted, so waits can never form a cycle.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "hydra/core/cpu_time.hpp"
#include "hydra/core/error.hpp"

namespace hydra::detail {

// Polls `ready` for up to `budget` before the caller falls back to blocking:
// first tight (a pause per poll), then yielding the core to any other runnable
// thread. A futex wake-up costs tens of microseconds on a VM, as much as copying
// a megabyte, so both the stream threads (waiting for work) and host waits (for
// an event) poll briefly first.
template <class Ready>
bool poll_until(Ready&& ready, std::chrono::microseconds budget) {
  auto const deadline = std::chrono::steady_clock::now() + budget;
  for (int polls = 0;; ++polls) {
    if (ready()) return true;
    if (polls < 256) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    if ((polls & 15) == 0 && std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
}

inline constexpr std::chrono::microseconds worker_poll_budget{200};
inline constexpr std::chrono::microseconds host_wait_poll_budget{2000};

class stream_worker;

// What a queued item does. Copies and waits are not type-erased closures so the
// common path allocates nothing beyond the queue slot.
struct work_item {
  enum class kind : std::uint8_t { copy, host_function, wait };
  kind what = kind::host_function;
  void* destination = nullptr;
  void const* source = nullptr;
  std::size_t bytes = 0;
  stream_worker const* awaited_stream = nullptr;
  std::uint64_t awaited_ticket = 0;
  std::function<void()> function;
};

struct delay_settings {
  bool enabled = false;
  std::uint64_t seed = 0;
  std::chrono::microseconds max_delay{0};
  // Test aid: the stream runs this many items, then its device is lost: it,
  // and every stream sharing `device_lost`, stops running items (as a GPU's
  // streams do after a device fault); 0: never.
  std::uint64_t stall_after = 0;
  std::atomic<bool>* device_lost = nullptr;
  // A slower device's compute stream: after each host function it spins for
  // this many times the thread CPU the function took (1 / speed - 1).
  double extra_cpu = 0;
};

class stream_worker {
public:
  stream_worker(std::size_t device, std::uint64_t id, std::string name, delay_settings delays)
      : device_(device), id_(id), name_(std::move(name)), delays_(delays),
        // Each stream draws its own sequence: a fixed seed gives every stream the
        // same delays run after run, whatever the threads' interleaving.
        random_(delays.seed ^ (0x9E3779B97F4A7C15ULL * (id + 1))) {
    thread_ = std::thread([this] { run(); });
  }

  stream_worker(stream_worker const&) = delete;
  stream_worker& operator=(stream_worker const&) = delete;
  ~stream_worker() { stop(); }

  // Returns the item's ticket.
  std::uint64_t submit(work_item item) {
    std::uint64_t ticket = 0;
    {
      std::lock_guard lock(queue_mutex_);
      // Work queued after stop() would never run and its waiters would hang.
      if (stopping_) throw invalid_argument("host stream '" + name_ + "' was destroyed; nothing more can be enqueued");
      queue_.push_back(std::move(item));
      ticket = submitted_.load(std::memory_order_relaxed) + 1;
      submitted_.store(ticket, std::memory_order_release);
    }
    queue_ready_.notify_one();
    return ticket;
  }

  [[nodiscard]] std::uint64_t submitted() const noexcept { return submitted_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t completed() const noexcept { return completed_.load(std::memory_order_acquire); }
  [[nodiscard]] bool reached(std::uint64_t ticket) const noexcept { return completed() >= ticket; }

  // Blocks the calling thread until item `ticket` has finished.
  void wait_for(std::uint64_t ticket) const {
    if (poll_until([&] { return reached(ticket); }, host_wait_poll_budget)) return;
    std::uint64_t seen = completed();
    while (seen < ticket) {
      completed_.wait(seen, std::memory_order_acquire);
      seen = completed();
    }
  }

  // Takes (and clears) the first exception an item threw since the last call.
  std::exception_ptr take_error() {
    std::lock_guard lock(queue_mutex_);
    return std::exchange(error_, nullptr);
  }

  // Drains what was submitted, then joins the thread. Idempotent.
  void stop() {
    {
      std::lock_guard lock(queue_mutex_);
      if (stopping_) return;
      stopping_ = true;
      stop_requested_.store(true, std::memory_order_release);
    }
    queue_ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  // Time spent running items, time spent blocked in cross-stream waits, bytes
  // copied: what the spill engine's overlap figures are computed from.
  [[nodiscard]] std::chrono::nanoseconds busy_time() const noexcept {
    return std::chrono::nanoseconds(busy_.load(std::memory_order_relaxed));
  }
  [[nodiscard]] std::chrono::nanoseconds wait_time() const noexcept {
    return std::chrono::nanoseconds(waited_.load(std::memory_order_relaxed));
  }
  [[nodiscard]] std::uint64_t copied_bytes() const noexcept { return copied_bytes_.load(std::memory_order_relaxed); }
  // CPU time spent in copy_async copies (a link rate's denominator: on the
  // host a copy is a core's work, however long its thread waited for one).
  [[nodiscard]] std::chrono::nanoseconds copy_time() const noexcept {
    return std::chrono::nanoseconds(copying_.load(std::memory_order_relaxed));
  }

  // Whether the stream has stopped running its items: its device is lost
  // (delay_settings::stall_after).
  [[nodiscard]] bool stalled() const noexcept {
    return delays_.device_lost != nullptr && delays_.device_lost->load(std::memory_order_acquire);
  }

  [[nodiscard]] std::size_t device() const noexcept { return device_; }
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] std::string const& name() const noexcept { return name_; }

private:
  void run() {
    std::uint64_t taken = 0;
    for (;;) {
      work_item item;
      poll_until(
          [&] {
            return submitted_.load(std::memory_order_acquire) > taken ||
                   stop_requested_.load(std::memory_order_acquire);
          },
          worker_poll_budget);
      {
        std::unique_lock lock(queue_mutex_);
        queue_ready_.wait(lock, [this] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return; // stopping, and everything submitted has run
        item = std::move(queue_.front());
        queue_.pop_front();
        ++taken;
      }
      if (delays_.stall_after != 0 && taken > delays_.stall_after && delays_.device_lost != nullptr)
        delays_.device_lost->store(true, std::memory_order_release);
      if (stalled()) {
        // The device is lost: the item is dropped unrun, but counted as
        // completed, so that waits on this stream return instead of hanging
        // (a lost CUDA context fails them with an error); what it would have
        // run, a completion among it, never happens.
        completed_.fetch_add(1, std::memory_order_release);
        completed_.notify_all();
        continue;
      }
      inject_delay();
      bool const copy = item.what == work_item::kind::copy;
      auto const started = std::chrono::steady_clock::now();
      auto const cpu_started = copy ? thread_cpu_time() : std::chrono::nanoseconds(0);
      auto const function_cpu_started = slows_functions(item) ? thread_cpu_time() : std::chrono::nanoseconds(0);
      execute(item);
      if (slows_functions(item)) spin(thread_cpu_time() - function_cpu_started);
      auto const spent =
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started);
      (item.what == work_item::kind::wait ? waited_ : busy_).fetch_add(spent.count(), std::memory_order_relaxed);
      if (copy) {
        copied_bytes_.fetch_add(item.bytes, std::memory_order_relaxed);
        copying_.fetch_add((thread_cpu_time() - cpu_started).count(), std::memory_order_relaxed);
      }
      completed_.fetch_add(1, std::memory_order_release);
      completed_.notify_all();
    }
  }

  [[nodiscard]] bool slows_functions(work_item const& item) const noexcept {
    return delays_.extra_cpu > 0 && item.what == work_item::kind::host_function;
  }

  // Burns extra_cpu x `used` of this thread's CPU: the function ran that much
  // slower, as on a slower device, and a CPU-time profile sees it so.
  void spin(std::chrono::nanoseconds used) const {
    auto const until =
        thread_cpu_time() +
        std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(used.count()) * delays_.extra_cpu));
    while (thread_cpu_time() < until) {
    }
  }

  void inject_delay() {
    if (!delays_.enabled || delays_.max_delay.count() <= 0) return;
    std::uniform_int_distribution<std::int64_t> pick(0, delays_.max_delay.count());
    std::this_thread::sleep_for(std::chrono::microseconds(pick(random_)));
  }

  void execute(work_item& item) noexcept {
    try {
      switch (item.what) {
      case work_item::kind::copy:
        if (item.bytes != 0) std::memcpy(item.destination, item.source, item.bytes);
        break;
      case work_item::kind::wait:
        item.awaited_stream->wait_for(item.awaited_ticket);
        break;
      case work_item::kind::host_function:
        item.function();
        break;
      }
    } catch (...) {
      // Like a CUDA stream, keep going (later items and their events must still
      // complete, or waiters would hang) and report at the next synchronisation.
      std::lock_guard lock(queue_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  std::size_t device_;
  std::uint64_t id_;
  std::string name_;
  delay_settings delays_;
  std::mt19937_64 random_;

  std::mutex queue_mutex_;
  std::condition_variable queue_ready_;
  std::deque<work_item> queue_;
  bool stopping_ = false;
  std::exception_ptr error_;

  std::atomic<std::int64_t> busy_{0};
  std::atomic<std::int64_t> waited_{0};
  std::atomic<std::uint64_t> copied_bytes_{0};
  std::atomic<std::int64_t> copying_{0};
  std::atomic<bool> stop_requested_{false}; // stopping_, readable without the lock
  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> completed_{0};
  std::thread thread_; // last: starts after every other member is ready
};

} // namespace hydra::detail
