// The model of the examples, tests and benchmarks: a multilayer perceptron of
// host layers. `depth` hidden dense layers of `width` units, each followed by a
// ReLU, then a dense layer to `classes` logits and a softmax cross-entropy loss.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/any_layer.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/layers/dense.hpp"
#include "hydra/layers/relu.hpp"
#include "hydra/layers/softmax_cross_entropy.hpp"

namespace hydra::layers {

inline sequential_model<host_execution_context> make_mlp(std::size_t inputs, std::size_t width, std::size_t depth,
                                                         std::size_t classes, std::size_t batch) {
  std::vector<any_layer<host_execution_context>> stack;
  std::size_t features = inputs;
  for (std::size_t k = 0; k < depth; ++k) {
    stack.emplace_back(dense(features, width));
    stack.emplace_back(relu(width));
    features = width;
  }
  stack.emplace_back(dense(features, classes));
  stack.emplace_back(softmax_cross_entropy(classes));
  return sequential_model<host_execution_context>(std::move(stack), batch);
}

} // namespace hydra::layers
