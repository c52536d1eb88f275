// ReLU on the CUDA backend with cuDNN's activation calls: exactly max(x, 0), so
// the forward agrees bitwise with the host relu, and so does the backward
// except perhaps where x is exactly 0 (whether cuDNN masks the gradient with
// x > 0 or y > 0 there is not documented).
#pragma once

#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/backend/cuda/status.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/cuda/cudnn_descriptors.hpp"
#include "hydra/layers/relu.hpp"

namespace hydra::cuda::layers {

class cudnn_relu {
public:
  explicit cudnn_relu(std::size_t features) : features_(features) {}

  [[nodiscard]] std::string name() const { return "cudnn relu " + std::to_string(features_); }
  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    return hydra::layers::relu(features_).footprint(batch);
  }
  void initialize(float*, std::uint64_t) const {}

  void forward(cuda_execution_context& c, forward_arguments const& a) const {
    float const one = 1.0F, zero = 0.0F;
    detail::relu_activation const relu;
    detail::tensor_nchw const x(a.batch, features_);
    HYDRA_CHECK(cudnnActivationForward(c.cudnn(), relu.get(), &one, x.get(), a.input, &zero, x.get(), a.output));
  }

  void backward(cuda_execution_context& c, backward_arguments const& a) const {
    float const one = 1.0F, zero = 0.0F;
    detail::relu_activation const relu;
    detail::tensor_nchw const x(a.batch, features_);
    HYDRA_CHECK(cudnnActivationBackward(c.cudnn(), relu.get(), &one, x.get(), a.output, x.get(), a.output_gradient,
                                        x.get(), a.input, &zero, x.get(), a.input_gradient));
  }

private:
  std::size_t features_;
};

static_assert(layer<cudnn_relu, cuda_execution_context>);

} // namespace hydra::cuda::layers
