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
#include "hydra/layers/input_gradient.hpp"
#include "hydra/layers/relu.hpp"
#include "hydra/layers/softmax_cross_entropy.hpp"

namespace hydra::layers {

// The MLP from any dense, activation and loss layer types on context Context:
// the CUDA MLP (hydra/layers/cuda/mlp.cuh) is this with the CUDA layers. The
// first dense layer skips its input gradient where its type can.
template <class Context, class Dense, class Activation, class Loss>
sequential_model<Context> make_mlp_of(std::size_t inputs, std::size_t width, std::size_t depth, std::size_t classes,
                                      std::size_t batch) {
  std::vector<any_layer<Context>> stack;
  std::size_t features = inputs;
  for (std::size_t k = 0; k < depth; ++k) {
    if (k == 0)
      stack.emplace_back(make_first_layer<Dense>(features, width));
    else
      stack.emplace_back(Dense(features, width));
    stack.emplace_back(Activation(width));
    features = width;
  }
  if (depth == 0)
    stack.emplace_back(make_first_layer<Dense>(features, classes));
  else
    stack.emplace_back(Dense(features, classes));
  stack.emplace_back(Loss(classes));
  return sequential_model<Context>(std::move(stack), batch);
}

inline sequential_model<host_execution_context> make_mlp(std::size_t inputs, std::size_t width, std::size_t depth,
                                                         std::size_t classes, std::size_t batch) {
  return make_mlp_of<host_execution_context, dense, relu, softmax_cross_entropy>(inputs, width, depth, classes, batch);
}

} // namespace hydra::layers
