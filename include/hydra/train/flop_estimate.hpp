// The first estimate of a task's compute time, before any minibatch has been
// timed: its shard's FLOP count at an assumed rate. Policies rank models by
// these estimates until a profile replaces them, so only the ratios between
// models matter, and every place that estimates (the trainers, the placement
// of configurations on MPI ranks) must use the same rule.
#pragma once

namespace hydra::detail {

// One GFLOP/s: any rate gives the same ratios.
inline constexpr double assumed_seconds_per_flop = 1e-9;

// `flops`: a shard's (or layer's) forward and backward together. A forward is
// a third of it; a backward, which recomputes its forward first, all of it.
[[nodiscard]] constexpr double estimated_forward_seconds(double flops) noexcept {
  return flops / 3.0 * assumed_seconds_per_flop;
}
[[nodiscard]] constexpr double estimated_backward_seconds(double flops) noexcept {
  return flops * assumed_seconds_per_flop;
}

} // namespace hydra::detail
