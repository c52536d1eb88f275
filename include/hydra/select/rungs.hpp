// The rungs of successive halving: rung k trains a model to
// min_minibatches * eta^k minibatches, except that a rung from which no
// further rung would fit (eta times as far passes the model's maximum) is the
// maximum itself: the last rung trains to the end, not just short of it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>

#include "hydra/core/error.hpp"
#include "hydra/select/sweep_controller.hpp"

namespace hydra::detail {

[[nodiscard]] inline std::size_t rung_minibatches(std::size_t min_minibatches, std::size_t eta, std::size_t rung,
                                                  std::size_t max_minibatches) noexcept {
  auto const no_rung_above = [&](std::size_t r) { return r >= max_minibatches || r > max_minibatches / eta; };
  std::size_t r = min_minibatches;
  for (std::size_t k = 0; k < rung && !no_rung_above(r); ++k) r *= eta;
  return no_rung_above(r) ? max_minibatches : r;
}

inline void check_halving(std::string const& who, std::size_t eta, std::size_t min_minibatches) {
  expects(eta >= 2, who + ": eta (the reduction factor) is " + std::to_string(eta) + "; it must be at least 2");
  expects(min_minibatches >= 1, who + ": min_minibatches (the first rung) must be at least 1");
}

// Every model a halving search ranks must be evaluated at its checkpoints:
// said before any training rather than after a whole rung of it.
inline void require_validation(std::string const& who, sweep_plan const& plan) {
  for (std::size_t m = 0; m < plan.model_count(); ++m)
    if (!plan.out(m) && plan.max_minibatches(m) > 0 && !plan.has_validation(m))
      throw invalid_argument(who + ": model " + std::to_string(m) +
                             " has no validation data to rank it by (set its config's validation and "
                             "validation_minibatches)");
}

inline evaluation const& validation_of(std::string const& who, checkpoint const& reached) {
  if (!reached.validation)
    throw invalid_argument(who + ": model " + std::to_string(reached.model) +
                           " has no validation data to rank it by (set its config's validation and "
                           "validation_minibatches)");
  return *reached.validation;
}

} // namespace hydra::detail
