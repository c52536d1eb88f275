// One minibatch of a classification task, and where minibatches come from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"

namespace hydra {

struct minibatch {
  std::vector<float> inputs;        // batch x features, row-major
  std::vector<std::int32_t> labels; // batch class indices
};

// Called with the step number (0, 1, 2, ...); returns that step's minibatch.
using data_source = std::function<minibatch(std::size_t step)>;

namespace detail {

// Refuses a minibatch that does not fit the model, naming what was expected.
inline void check_minibatch(minibatch const& data, std::size_t batch, std::size_t inputs, std::size_t classes) {
  if (data.inputs.size() != batch * inputs || data.labels.size() != batch) {
    throw invalid_argument("minibatch: expected " + std::to_string(batch) + " samples of " + std::to_string(inputs) +
                           " features (" + std::to_string(batch * inputs) + " floats) and " + std::to_string(batch) +
                           " labels, got " + std::to_string(data.inputs.size()) + " floats and " +
                           std::to_string(data.labels.size()) + " labels");
  }
  for (std::size_t b = 0; b < batch; ++b) {
    if (data.labels[b] < 0 || static_cast<std::size_t>(data.labels[b]) >= classes) {
      throw invalid_argument("minibatch: label " + std::to_string(data.labels[b]) + " of sample " + std::to_string(b) +
                             " is outside 0.." + std::to_string(classes - 1));
    }
  }
}

} // namespace detail

} // namespace hydra
