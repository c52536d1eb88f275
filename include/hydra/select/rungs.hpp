// The rungs of successive halving: rung k trains a model to
// min_minibatches * eta^k minibatches, capped at the model's maximum.
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
  std::size_t r = min_minibatches;
  for (std::size_t k = 0; k < rung && r < max_minibatches; ++k)
    r = r > std::numeric_limits<std::size_t>::max() / eta ? max_minibatches : r * eta;
  return std::min(r, max_minibatches);
}

inline void check_halving(std::string const& who, std::size_t eta, std::size_t min_minibatches) {
  expects(eta >= 2, who + ": eta (the reduction factor) is " + std::to_string(eta) + "; it must be at least 2");
  expects(min_minibatches >= 1, who + ": min_minibatches (the first rung) must be at least 1");
}

inline evaluation const& validation_of(std::string const& who, checkpoint const& reached) {
  if (!reached.validation)
    throw invalid_argument(who + ": model " + std::to_string(reached.model) +
                           " has no validation data to rank it by (set its config's validation and "
                           "validation_minibatches)");
  return *reached.validation;
}

} // namespace hydra::detail
