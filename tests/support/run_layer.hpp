// Runs one host layer's forward or backward on its own stream and waits for it:
// the harness of the layer tests, which compare layers with plain-loop oracles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "hydra/backend/host/host_backend.hpp"
#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/graph/layer.hpp"

namespace hydra::testing {

inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float scale = 1.0F) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<float> pick(-scale, scale);
  std::vector<float> values(n);
  for (float& value : values) value = pick(random);
  return values;
}

struct layer_gradients {
  std::vector<float> input, parameters;
};

class layer_runner {
public:
  template <class Layer>
  std::vector<float> forward(Layer const& layer, std::size_t batch, std::vector<float> const& input,
                             std::vector<float> const& parameters, std::vector<std::int32_t> const* labels = nullptr) {
    auto const shape = layer.footprint(batch);
    std::vector<float> output(batch * shape.output_features);
    std::vector<std::byte> workspace(shape.workspace_bytes);
    forward_arguments a;
    a.batch = batch;
    a.input = input.data();
    a.output = output.data();
    a.parameters = parameters.data();
    a.workspace = workspace.data();
    a.labels = labels ? labels->data() : nullptr;
    layer.forward(context_, a);
    backend_.synchronize(stream_);
    return output;
  }

  // `want_input_gradient` false passes a null input_gradient.
  template <class Layer>
  layer_gradients backward(Layer const& layer, std::size_t batch, std::vector<float> const& input,
                           std::vector<float> const& output, std::vector<float> const& output_gradient,
                           std::vector<float> const& parameters, bool want_input_gradient = true) {
    auto const shape = layer.footprint(batch);
    layer_gradients g{std::vector<float>(input.size(), -7.0F), std::vector<float>(parameters.size(), -7.0F)};
    std::vector<std::byte> workspace(shape.workspace_bytes);
    backward_arguments a;
    a.batch = batch;
    a.input = input.data();
    a.output = output.data();
    a.output_gradient = output_gradient.data();
    a.input_gradient = want_input_gradient ? g.input.data() : nullptr;
    a.parameters = parameters.data();
    a.parameter_gradients = g.parameters.data();
    a.workspace = workspace.data();
    layer.backward(context_, a);
    backend_.synchronize(stream_);
    return g;
  }

private:
  host_backend backend_{{.device_budgets = {1_MiB}}};
  host_stream stream_ = backend_.create_stream(0);
  host_execution_context context_{backend_, stream_};
};

} // namespace hydra::testing
