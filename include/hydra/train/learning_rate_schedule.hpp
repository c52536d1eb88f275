// How an optimizer's learning rate changes over training: a linear warm-up,
// then a cosine decay towards a floor, as a factor of the optimizer's
// learning_rate at each step. The factor depends on nothing but the step count,
// which a model's snapshot already carries, so a resumed model, a model moved
// between devices and a model trained alone all take the same steps. It is
// computed on the host, in double, once per shard update; the update kernels
// see one float, as before.
//
// A sweep that stops models early (successive halving) should still size
// decay_steps for the full run: a configuration is then judged at a rung the
// way it would be on its way to the end, and a survivor's schedule does not
// depend on how far the controller lets it go.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <sstream>
#include <string>

#include "hydra/core/error.hpp"

namespace hydra {

struct learning_rate_schedule {
  // Steps over which the factor rises linearly: 1/(w+1), 2/(w+1), ..., w/(w+1)
  // for w = warmup_steps; the step after them runs at the full rate.
  std::uint64_t warmup_steps = 0;
  // Steps after the warm-up over which the factor falls along half a cosine
  // from 1 to final_fraction; 0 keeps it at 1 (a constant learning rate).
  std::uint64_t decay_steps = 0;
  // The factor once the decay has ended, in [0, 1].
  float final_fraction = 0.0F;

  // Throws invalid_argument unless final_fraction is in [0, 1] (NaN is not).
  void validate() const {
    if (!(final_fraction >= 0.0F && final_fraction <= 1.0F))
      throw invalid_argument("learning_rate_schedule: final_fraction " + std::to_string(final_fraction) +
                             " is outside [0, 1]");
  }

  [[nodiscard]] bool is_constant() const noexcept { return warmup_steps == 0 && decay_steps == 0; }

  // The learning rate's factor at `step` (1-based, as the optimizers count).
  [[nodiscard]] float factor(std::uint64_t step) const noexcept {
    if (step <= warmup_steps)
      return static_cast<float>(static_cast<double>(step) / static_cast<double>(warmup_steps + 1));
    if (decay_steps == 0) return 1.0F;
    std::uint64_t const into = step - warmup_steps - 1; // 0 at the first step after the warm-up
    if (into >= decay_steps) return final_fraction;
    double const progress = static_cast<double>(into) / static_cast<double>(decay_steps);
    double const floor = final_fraction;
    return static_cast<float>(floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
  }

  // "", or e.g. " warmup 100 cosine 9000 to 0.01": for an optimizer's name.
  [[nodiscard]] std::string describe() const {
    std::ostringstream out;
    if (warmup_steps) out << " warmup " << warmup_steps;
    if (decay_steps) {
      out << " cosine " << decay_steps;
      if (final_fraction != 0.0F) out << " to " << final_fraction;
    }
    return out.str();
  }
};

} // namespace hydra
