// ReLU on the host backend: y = max(x, 0); dx = dy where x > 0, else 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/layer.hpp"

namespace hydra::layers {

class relu {
public:
  explicit relu(std::size_t features) : features_(features) {}

  [[nodiscard]] std::string name() const { return "relu " + std::to_string(features_); }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    return {.parameter_count = 0,
            .input_features = features_,
            .output_features = features_,
            .workspace_bytes = 0,
            .flops = 2.0 * static_cast<double>(batch * features_)};
  }

  void initialize(float*, std::uint64_t) const {}

  void forward(host_execution_context& context, forward_arguments const& a) const {
    context.enqueue([x = a.input, y = a.output, n = a.batch * features_] {
      for (std::size_t k = 0; k < n; ++k) y[k] = x[k] > 0.0F ? x[k] : 0.0F;
    });
  }

  // A null input_gradient skips dx (nothing upstream wants it). The gradient is
  // read whether or not it passes, so the select needs no branch and vectorises:
  // a branch on the sign of the input is mispredicted half the time.
  void backward(host_execution_context& context, backward_arguments const& a) const {
    context.enqueue([x = a.input, dy = a.output_gradient, dx = a.input_gradient, n = a.batch * features_] {
      if (dx == nullptr) return;
      for (std::size_t k = 0; k < n; ++k) {
        float const gradient = dy[k];
        dx[k] = x[k] > 0.0F ? gradient : 0.0F;
      }
    });
  }

private:
  std::size_t features_;
};

static_assert(layer<relu, host_execution_context>);

} // namespace hydra::layers
