// The memory rule every driver and partitioner relies on, stated once.
#pragma once

#include <cstddef>

namespace hydra {

// A task's working set (its shard's state and its scratch) may take at most
// half of a device's budget: a device then always holds the task it runs and
// the one queued behind it, whose fetch overlaps the running one's compute.
// The partitioner sizes shards by it; the drivers' launches rely on it.
[[nodiscard]] constexpr std::size_t working_set_limit(std::size_t budget) noexcept {
  return budget / 2;
}

} // namespace hydra
