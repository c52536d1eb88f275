// The memory rule every driver and partitioner relies on, stated once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hydra {

// A task's working set (its shard's state and its scratch) may take at most
// half of a device's budget: a device then always holds the task it runs and
// the one queued behind it, whose fetch overlaps the running one's compute.
// The partitioner sizes shards by it; the drivers' launches rely on it.
[[nodiscard]] constexpr std::size_t working_set_limit(std::size_t budget) noexcept {
  return budget / 2;
}

// Where each shard may run when devices differ in memory: shard s on device d
// when its working set fits half of d's budget, as
// scheduler_core::restrict_placement takes it (shard x device). Empty when
// every shard fits every device. A shard that fits no device gets no device:
// the caller names it (the partitioner never makes one).
[[nodiscard]] inline std::vector<bool> placement_by_memory(std::span<std::uint64_t const> shard_working_sets,
                                                           std::span<std::uint64_t const> device_budgets) {
  std::vector<bool> runs_on(shard_working_sets.size() * device_budgets.size());
  bool anywhere = true;
  for (std::size_t s = 0; s < shard_working_sets.size(); ++s)
    for (std::size_t d = 0; d < device_budgets.size(); ++d) {
      bool const fits = shard_working_sets[s] <= working_set_limit(device_budgets[d]);
      runs_on[s * device_budgets.size() + d] = fits;
      anywhere = anywhere && fits;
    }
  if (anywhere) runs_on.clear();
  return runs_on;
}

} // namespace hydra
