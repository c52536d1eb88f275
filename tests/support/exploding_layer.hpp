// A layer whose forward work throws on the stream, the way a failing kernel
// would (after copying its input through, so the run goes on until noticed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/layer.hpp"

namespace hydra::testing {

struct exploding_layer {
  std::size_t features;
  std::string name() const { return "exploding"; }
  hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = 0, .input_features = features, .output_features = features};
  }
  void initialize(float*, std::uint64_t) const {}
  void forward(hydra::host_execution_context& c, hydra::forward_arguments const& a) const {
    c.enqueue([a, n = a.batch * features] {
      for (std::size_t k = 0; k < n; ++k) a.output[k] = a.input[k];
      throw std::runtime_error("kernel failed");
    });
  }
  void backward(hydra::host_execution_context&, hydra::backward_arguments const&) const {}
};

} // namespace hydra::testing
