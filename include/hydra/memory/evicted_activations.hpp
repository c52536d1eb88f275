// What becomes of a training forward's kept activations when they must leave
// their device before the shard's backward reads them (memory pressure, or
// the backward placed on another device): dropped and recomputed, or copied
// to host memory and back. Capuchin's choice: whichever costs less time.
// And which of them are worth keeping at all when room is short.
#pragma once

#include <cstdint>

namespace hydra {

enum class evicted_activations {
  recompute, // dropped: the backward recomputes them from its checkpoint
  spill,     // copied to host memory on the spill stream; the backward copies them back
  by_cost,   // per shard and device: spilled where spill_beats_recompute, else recomputed
};

// Whether copying `bytes` of activations out to host memory and back in takes
// less link time than recomputing them takes compute time. The copies run on
// the spill and prefetch streams, beside compute, but they share the host link
// with the shard-state fetches that spilling depends on, so link time is
// counted in full rather than as hidden. An unknown rate or recompute time
// (0, or not a number) chooses recomputation, which needs no host memory.
[[nodiscard]] constexpr bool spill_beats_recompute(std::uint64_t bytes, double recompute_seconds,
                                                   double d2h_bytes_per_second, double h2d_bytes_per_second) noexcept {
  if (!(recompute_seconds > 0) || !(d2h_bytes_per_second > 0) || !(h2d_bytes_per_second > 0)) return false;
  double const copy_seconds =
      static_cast<double>(bytes) / d2h_bytes_per_second + static_cast<double>(bytes) / h2d_bytes_per_second;
  return copy_seconds < recompute_seconds;
}

// Whether kept activations of `bytes` cost less to recompute than as many
// bytes of shard state cost to fetch again over the host link. Kept on a
// device under memory pressure, activations take room a shard would
// otherwise keep, and that shard's next use fetches it again; activations
// for which this holds are worth less than the room they take, so they are
// given up before any shard is evicted. An unknown rate or recompute time
// says no (they then compete with the shards as before).
[[nodiscard]] constexpr bool recompute_beats_refetch(std::uint64_t bytes, double recompute_seconds,
                                                     double h2d_bytes_per_second) noexcept {
  if (!(recompute_seconds > 0) || !(h2d_bytes_per_second > 0)) return false;
  return recompute_seconds < static_cast<double>(bytes) / h2d_bytes_per_second;
}

} // namespace hydra
