// 2-D max pooling on the CUDA backend with cuDNN: square windows, no padding,
// CHW rows as in cudnn_conv2d. No parameters. cuDNN's deterministic max mode,
// so the backward routes each gradient to one input, repeatably.
#pragma once

#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/backend/cuda/status.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/cuda/cudnn_conv2d.hpp"
#include "hydra/layers/cuda/cudnn_descriptors.hpp"

namespace hydra::cuda::layers {

class cudnn_max_pool2d {
public:
  cudnn_max_pool2d(image_shape input, std::size_t window = 2, std::size_t stride = 2)
      : input_(input), window_(window), stride_(stride) {
    hydra::detail::expects(input.channels > 0 && window > 0 && stride > 0,
                           "cudnn_max_pool2d: channels, window and stride must be at least 1");
    hydra::detail::expects(window <= input.height && window <= input.width,
                           "cudnn_max_pool2d: a " + std::to_string(window) + "x" + std::to_string(window) +
                               " window is larger than the " + std::to_string(input.height) + "x" +
                               std::to_string(input.width) + " image");
    output_ = {input.channels, (input.height - window) / stride + 1, (input.width - window) / stride + 1};
  }

  [[nodiscard]] std::string name() const {
    return "cudnn max pool " + std::to_string(window_) + "x" + std::to_string(window_) + " on " +
           std::to_string(input_.channels) + "x" + std::to_string(input_.height) + "x" + std::to_string(input_.width);
  }
  [[nodiscard]] image_shape output_shape() const noexcept { return output_; }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    return {.parameter_count = 0,
            .input_features = input_.features(),
            .output_features = output_.features(),
            .workspace_bytes = 0,
            .flops = 2.0 * static_cast<double>(batch * output_.features() * window_ * window_)};
  }
  void initialize(float*, std::uint64_t) const {}

  void forward(cuda_execution_context& c, forward_arguments const& a) const {
    float const one = 1.0F, zero = 0.0F;
    detail::max_pooling_2d const pool(window_, stride_);
    detail::tensor_nchw const x(a.batch, input_.channels, input_.height, input_.width),
        y(a.batch, output_.channels, output_.height, output_.width);
    HYDRA_CHECK(cudnnPoolingForward(c.cudnn(), pool.get(), &one, x.get(), a.input, &zero, y.get(), a.output));
  }

  void backward(cuda_execution_context& c, backward_arguments const& a) const {
    float const one = 1.0F, zero = 0.0F;
    detail::max_pooling_2d const pool(window_, stride_);
    detail::tensor_nchw const x(a.batch, input_.channels, input_.height, input_.width),
        y(a.batch, output_.channels, output_.height, output_.width);
    HYDRA_CHECK(cudnnPoolingBackward(c.cudnn(), pool.get(), &one, y.get(), a.output, y.get(), a.output_gradient,
                                     x.get(), a.input, &zero, x.get(), a.input_gradient));
  }

private:
  image_shape input_;
  std::size_t window_, stride_;
  image_shape output_{};
};

static_assert(layer<cudnn_max_pool2d, cuda_execution_context>);

} // namespace hydra::cuda::layers
