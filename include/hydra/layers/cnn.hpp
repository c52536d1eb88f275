// The convolutional model of the examples, tests and benchmarks: blocks of a
// 3x3 convolution (stride 1, padding 1), a ReLU and a 2x2 max pooling (stride
// 2), then a dense head: an optional hidden dense layer with a ReLU, a dense
// layer to `classes` logits and a softmax cross-entropy loss. Inputs are NCHW
// images flattened into rows, as every host and CUDA layer reads them.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/any_layer.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/layers/conv2d.hpp"
#include "hydra/layers/dense.hpp"
#include "hydra/layers/input_gradient.hpp"
#include "hydra/layers/max_pool2d.hpp"
#include "hydra/layers/relu.hpp"
#include "hydra/layers/softmax_cross_entropy.hpp"

namespace hydra::layers {

struct cnn_shape {
  image_shape input;                       // one sample
  std::vector<std::size_t> block_channels; // output channels of each block's convolution
  std::size_t hidden = 0;                  // units of the head's hidden dense layer; 0: none
  std::size_t classes = 10;
};

// The CNN from any convolution, pooling, activation, dense and loss layer types
// on context Context. The convolution and pooling types take their own image
// shape type (channels, height, width) and report it with output_shape(). The
// first layer skips its input gradient where its type can.
template <class Context, class Conv, class Pool, class Activation, class Dense, class Loss>
sequential_model<Context> make_cnn_of(cnn_shape const& shape, std::size_t batch) {
  std::vector<any_layer<Context>> stack;
  std::size_t channels = shape.input.channels, height = shape.input.height, width = shape.input.width;
  for (std::size_t const filters : shape.block_channels) {
    using shape_type = std::remove_cvref_t<decltype(std::declval<Conv const&>().output_shape())>;
    shape_type const in{channels, height, width};
    Conv const conv = stack.empty() ? make_first_layer<Conv>(in, filters) : Conv(in, filters);
    auto const convolved = conv.output_shape();
    stack.emplace_back(conv);
    stack.emplace_back(Activation(convolved.features()));
    Pool const pool({convolved.channels, convolved.height, convolved.width});
    auto const pooled = pool.output_shape();
    stack.emplace_back(pool);
    channels = pooled.channels;
    height = pooled.height;
    width = pooled.width;
  }
  std::size_t features = channels * height * width;
  auto head_layer = [&](std::size_t in, std::size_t out) {
    return stack.empty() ? make_first_layer<Dense>(in, out) : Dense(in, out);
  };
  if (shape.hidden > 0) {
    stack.emplace_back(head_layer(features, shape.hidden));
    stack.emplace_back(Activation(shape.hidden));
    features = shape.hidden;
  }
  stack.emplace_back(head_layer(features, shape.classes));
  stack.emplace_back(Loss(shape.classes));
  return sequential_model<Context>(std::move(stack), batch);
}

inline sequential_model<host_execution_context> make_cnn(cnn_shape const& shape, std::size_t batch) {
  return make_cnn_of<host_execution_context, conv2d, max_pool2d, relu, dense, softmax_cross_entropy>(shape, batch);
}

} // namespace hydra::layers
