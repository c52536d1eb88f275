// 2-D max pooling on the host backend: square windows, no padding, CHW rows as
// in conv2d (the CUDA max pooling's layout). No parameters. Each output's
// gradient goes to the first maximum of its window in row-major order, the one
// forward picked, so backward is as repeatable as forward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/conv2d.hpp"

namespace hydra::layers {

class max_pool2d {
public:
  max_pool2d(image_shape input, std::size_t window = 2, std::size_t stride = 2)
      : input_(input), window_(window), stride_(stride) {
    hydra::detail::expects(input.channels > 0 && window > 0 && stride > 0,
                           "max_pool2d: channels, window and stride must be at least 1");
    hydra::detail::expects(window <= input.height && window <= input.width,
                           "max_pool2d: a " + std::to_string(window) + "x" + std::to_string(window) +
                               " window is larger than the " + std::to_string(input.height) + "x" +
                               std::to_string(input.width) + " image");
    output_ = {input.channels, (input.height - window) / stride + 1, (input.width - window) / stride + 1};
  }

  [[nodiscard]] std::string name() const {
    return "max pool " + std::to_string(window_) + "x" + std::to_string(window_) + " on " +
           std::to_string(input_.channels) + "x" + std::to_string(input_.height) + "x" + std::to_string(input_.width);
  }
  [[nodiscard]] image_shape input_shape() const noexcept { return input_; }
  [[nodiscard]] image_shape output_shape() const noexcept { return output_; }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    return {.parameter_count = 0,
            .input_features = input_.features(),
            .output_features = output_.features(),
            .workspace_bytes = 0,
            .flops = 2.0 * static_cast<double>(batch * output_.features() * window_ * window_)};
  }
  void initialize(float*, std::uint64_t) const {}

  void forward(host_execution_context& context, forward_arguments const& a) const {
    context.enqueue([layer = *this, a] {
      layer.for_each_window(a.batch, a.input,
                            [&](std::size_t out, std::size_t best) { a.output[out] = a.input[best]; });
    });
  }

  // A null input_gradient skips dx (nothing upstream wants it).
  void backward(host_execution_context& context, backward_arguments const& a) const {
    context.enqueue([layer = *this, a] {
      if (a.input_gradient == nullptr) return;
      for (std::size_t i = 0; i < a.batch * layer.input_.features(); ++i) a.input_gradient[i] = 0.0F;
      layer.for_each_window(a.batch, a.input, [&](std::size_t out, std::size_t best) {
        a.input_gradient[best] += a.output_gradient[out];
      });
    });
  }

private:
  // Calls f(output index, index of its window's first maximum in the input).
  // The running maximum moves by selects, not branches: which element of a
  // window is largest is a coin toss that a branch predictor loses.
  template <class F>
  void for_each_window(std::size_t batch, float const* input, F&& f) const {
    std::size_t const H = input_.height, W = input_.width, plane = H * W;
    std::size_t out = 0;
    for (std::size_t image = 0; image < batch * input_.channels; ++image)
      for (std::size_t p = 0; p < output_.height; ++p)
        for (std::size_t q = 0; q < output_.width; ++q, ++out) {
          std::size_t const corner = image * plane + p * stride_ * W + q * stride_;
          std::size_t best = corner;
          float largest = input[corner];
          for (std::size_t r = 0; r < window_; ++r)
            for (std::size_t s = 0; s < window_; ++s) {
              std::size_t const at = corner + r * W + s;
              float const value = input[at];
              bool const larger = value > largest;
              largest = larger ? value : largest;
              best = larger ? at : best;
            }
          f(out, best);
        }
  }

  image_shape input_;
  std::size_t window_, stride_;
  image_shape output_{};
};

static_assert(layer<max_pool2d, host_execution_context>);

} // namespace hydra::layers
