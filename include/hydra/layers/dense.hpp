// A fully connected layer on the host backend: y = x W + b, with W stored
// [input x output] row-major so that the inner loops run along contiguous memory
// and vectorise without reassociating any sum (each output's sum is accumulated
// over the inputs in index order, so results are bitwise reproducible).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/layer.hpp"

namespace hydra::layers {

class dense {
public:
  dense(std::size_t inputs, std::size_t outputs) : inputs_(inputs), outputs_(outputs) {}

  [[nodiscard]] std::string name() const { return "dense " + std::to_string(inputs_) + "x" + std::to_string(outputs_); }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    auto const macs = static_cast<double>(batch) * static_cast<double>(inputs_) * static_cast<double>(outputs_);
    return {.parameter_count = inputs_ * outputs_ + outputs_,
            .input_features = inputs_,
            .output_features = outputs_,
            .workspace_bytes = 0,
            .flops = 6.0 * macs}; // 2 forward + 4 backward per multiply-add
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
    context.enqueue([a, in = inputs_, out = outputs_] { backward_kernel(a, in, out); });
  }

  static void forward_kernel(forward_arguments const& a, std::size_t in, std::size_t out) {
    float const* weights = a.parameters;
    float const* bias = a.parameters + in * out;
    for (std::size_t b = 0; b < a.batch; ++b) {
      float* y = a.output + b * out;
      float const* x = a.input + b * in;
      for (std::size_t o = 0; o < out; ++o) y[o] = bias[o];
      for (std::size_t i = 0; i < in; ++i) {
        float const xi = x[i];
        float const* row = weights + i * out;
        for (std::size_t o = 0; o < out; ++o) y[o] += xi * row[o];
      }
    }
  }

  static void backward_kernel(backward_arguments const& a, std::size_t in, std::size_t out) {
    float const* weights = a.parameters;
    float* weight_gradient = a.parameter_gradients;
    float* bias_gradient = a.parameter_gradients + in * out;
    for (std::size_t k = 0; k < in * out + out; ++k) a.parameter_gradients[k] = 0.0F;
    for (std::size_t b = 0; b < a.batch; ++b) {
      float const* dy = a.output_gradient + b * out;
      float const* x = a.input + b * in;
      for (std::size_t i = 0; i < in; ++i) {
        float const xi = x[i];
        float* row = weight_gradient + i * out;
        for (std::size_t o = 0; o < out; ++o) row[o] += xi * dy[o];
      }
      for (std::size_t o = 0; o < out; ++o) bias_gradient[o] += dy[o];
      float* dx = a.input_gradient + b * in;
      for (std::size_t i = 0; i < in; ++i) {
        float const* row = weights + i * out;
        float sum = 0.0F;
        for (std::size_t o = 0; o < out; ++o) sum += dy[o] * row[o];
        dx[i] = sum;
      }
    }
  }

private:
  std::size_t inputs_;
  std::size_t outputs_;
};

static_assert(layer<dense, host_execution_context>);

} // namespace hydra::layers
