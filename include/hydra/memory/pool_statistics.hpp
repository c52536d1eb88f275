// Exact counters of a pool, taken as one consistent snapshot under the pool's lock.
// All byte counts are of 256-byte-aligned block sizes, i.e. what the pool really
// set aside, not what callers asked for.
#pragma once

#include <cstddef>

namespace hydra {

struct pool_statistics {
  std::size_t capacity = 0;
  std::size_t in_use = 0;      // bytes in live allocations
  std::size_t peak_in_use = 0; // since construction or reset_peak()
  std::size_t free = 0;        // capacity - in_use
  // Freed bytes whose freeing stream has not yet reached the free: reusable at
  // once on that stream, on any other only behind a wait on its event.
  std::size_t pending_free = 0;
  std::size_t largest_free_block = 0; // largest contiguous free range: the largest request that can succeed
  std::size_t live_allocations = 0;

  // 1 - largest free / total free: 0 when all free memory is one range (or none is free).
  [[nodiscard]] double fragmentation() const noexcept {
    return free == 0 ? 0.0 : 1.0 - static_cast<double>(largest_free_block) / static_cast<double>(free);
  }

  friend bool operator==(pool_statistics const&, pool_statistics const&) = default;
};

} // namespace hydra
