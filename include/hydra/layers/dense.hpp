// A fully connected layer on the host backend: y = x W + b, with W stored
// [input x output] row-major, then b (the layout the CUDA dense layers and the
// checkpoints share). Three GEMMs per step (layers/detail/gemm.hpp: OpenBLAS
// when hydra is built with it, else plain loops), each reproducible bit for bit:
//   forward   y  = x W      (after y = b in every row)
//   backward  dW = x^T dy,  dx = dy W^T,  db = the sum over the batch of dy
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/detail/gemm.hpp"
#include "hydra/layers/input_gradient.hpp"

namespace hydra::layers {

class dense {
public:
  dense(std::size_t inputs, std::size_t outputs) : inputs_(inputs), outputs_(outputs) {}
  // As a model's first layer: backward computes no dx (see input_gradient.hpp).
  dense(std::size_t inputs, std::size_t outputs, skip_input_gradient_t)
      : inputs_(inputs), outputs_(outputs), input_gradient_(false) {}

  [[nodiscard]] std::string name() const { return "dense " + std::to_string(inputs_) + "x" + std::to_string(outputs_); }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    auto const macs = static_cast<double>(batch) * static_cast<double>(inputs_) * static_cast<double>(outputs_);
    return {.parameter_count = inputs_ * outputs_ + outputs_,
            .input_features = inputs_,
            .output_features = outputs_,
            .workspace_bytes = 0,
            .flops = (input_gradient_ ? 6.0 : 4.0) * macs}; // 2 forward + 2 for dW + 2 for dx per multiply-add
  }

  // Glorot-uniform weights, zero bias.
  void initialize(float* parameters, std::uint64_t seed) const {
    std::mt19937_64 random(seed);
    float const limit = std::sqrt(6.0F / static_cast<float>(inputs_ + outputs_));
    std::uniform_real_distribution<float> pick(-limit, limit);
    for (std::size_t i = 0; i < inputs_ * outputs_; ++i) parameters[i] = pick(random);
    for (std::size_t o = 0; o < outputs_; ++o) parameters[inputs_ * outputs_ + o] = 0.0F;
  }

  void forward(host_execution_context& context, forward_arguments const& a) const {
    context.enqueue([a, in = inputs_, out = outputs_] { forward_kernel(a, in, out); });
  }

  void backward(host_execution_context& context, backward_arguments const& a) const {
    backward_arguments bound = a;
    if (!input_gradient_) bound.input_gradient = nullptr;
    context.enqueue([bound, in = inputs_, out = outputs_] { backward_kernel(bound, in, out); });
  }

  static void forward_kernel(forward_arguments const& a, std::size_t in, std::size_t out) {
    float const* bias = a.parameters + in * out;
    for (std::size_t b = 0; b < a.batch; ++b)
      for (std::size_t o = 0; o < out; ++o) a.output[b * out + o] = bias[o];
    detail::gemm(detail::transpose::no, detail::transpose::no, a.batch, out, in, a.input, in, a.parameters, out,
                 /*accumulate=*/true, a.output, out);
  }

  // A null input_gradient skips dx (nothing upstream wants it).
  static void backward_kernel(backward_arguments const& a, std::size_t in, std::size_t out) {
    float* bias_gradient = a.parameter_gradients + in * out;
    detail::gemm(detail::transpose::yes, detail::transpose::no, in, out, a.batch, a.input, in, a.output_gradient, out,
                 /*accumulate=*/false, a.parameter_gradients, out);
    for (std::size_t o = 0; o < out; ++o) bias_gradient[o] = 0.0F;
    for (std::size_t b = 0; b < a.batch; ++b)
      for (std::size_t o = 0; o < out; ++o) bias_gradient[o] += a.output_gradient[b * out + o];
    if (a.input_gradient != nullptr)
      detail::gemm(detail::transpose::no, detail::transpose::yes, a.batch, in, out, a.output_gradient, out,
                   a.parameters, out, /*accumulate=*/false, a.input_gradient, in);
  }

private:
  std::size_t inputs_;
  std::size_t outputs_;
  bool input_gradient_ = true;
};

static_assert(layer<dense, host_execution_context>);

} // namespace hydra::layers
