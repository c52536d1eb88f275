// A layer whose forward and backward take a fixed time (they sleep), with
// parameters that are never changed (zero gradients): fixed task costs for
// comparing the runtime with the simulator.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/layer.hpp"

namespace hydra::testing {

struct sleeping_layer {
  std::size_t features;
  std::size_t parameters;
  std::chrono::microseconds forward_time;
  std::chrono::microseconds backward_time;

  std::string name() const { return "sleeping"; }
  hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = parameters, .input_features = features, .output_features = features};
  }
  void initialize(float* p, std::uint64_t) const {
    for (std::size_t k = 0; k < parameters; ++k) p[k] = 0.0F;
  }
  void forward(hydra::host_execution_context& c, hydra::forward_arguments const& a) const {
    c.enqueue([a, n = a.batch * features, wait = forward_time] {
      std::this_thread::sleep_for(wait);
      for (std::size_t k = 0; k < n; ++k) a.output[k] = a.input[k];
    });
  }
  void backward(hydra::host_execution_context& c, hydra::backward_arguments const& a) const {
    c.enqueue([a, n = a.batch * features, count = parameters, wait = backward_time] {
      std::this_thread::sleep_for(wait);
      for (std::size_t k = 0; k < n; ++k) a.input_gradient[k] = a.output_gradient[k];
      for (std::size_t k = 0; k < count; ++k) a.parameter_gradients[k] = 0.0F;
    });
  }
};

} // namespace hydra::testing
