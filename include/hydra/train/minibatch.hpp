// One minibatch of a classification task, and where minibatches come from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace hydra {

struct minibatch {
  std::vector<float> inputs;        // batch x features, row-major
  std::vector<std::int32_t> labels; // batch class indices
};

// Called with the step number (0, 1, 2, ...); returns that step's minibatch.
using data_source = std::function<minibatch(std::size_t step)>;

} // namespace hydra
