// Which resident object to evict when a device needs room: the one whose next
// use is furthest away (Belady's rule, with the sweep driver's next uses). The
// spill engine and the simulator both choose by it.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <type_traits>

namespace hydra {

// Eviction's choice (Belady's): among the `eligible` candidates, taken in the
// caller's order, the one whose next use (`next_use(candidate)`, in tasks) is
// furthest; the first such on ties; nothing when none is eligible.
template <class Candidates, class Eligible, class NextUse>
[[nodiscard]] auto furthest_next_use(Candidates const& candidates, Eligible&& eligible, NextUse&& next_use)
    -> std::optional<std::decay_t<decltype(*std::begin(candidates))>> {
  std::optional<std::decay_t<decltype(*std::begin(candidates))>> victim;
  std::size_t furthest = 0;
  for (auto const& candidate : candidates) {
    if (!eligible(candidate)) continue;
    std::size_t const distance = next_use(candidate);
    if (!victim || distance > furthest) {
      victim = candidate;
      furthest = distance;
    }
  }
  return victim;
}

} // namespace hydra
