// A small test-and-test-and-set lock for critical sections of a few dozen
// nanoseconds (the pools' bookkeeping). Uncontended it costs one atomic exchange
// and one store, against two atomic read-modify-writes for std::mutex, which is a
// quarter of a pool allocate+free. Under contention it yields rather than burn the
// core the holder may need. Satisfies Lockable, so std::lock_guard works.
#pragma once

#include <atomic>
#include <thread>

namespace hydra {

class spin_mutex {
public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins)
        if (spins >= 64) std::this_thread::yield();
    }
  }

  [[nodiscard]] bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }

  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
  std::atomic<bool> locked_{false};
};

} // namespace hydra
