// One shard's layers called on the buffers hydra bound for them: the state
// extent [parameters | optimizer state | gradients] and the task's scratch,
// laid out by the partitioner (scratch_layout). Forward fills the shard's
// activations; backward runs the layers last to first, its gradient passing
// between the scratch's two gradient buffers.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "hydra/graph/layer.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/graph/shard_chain.hpp"
#include "hydra/train/detail/layer_guard.hpp"

namespace hydra {
class host_execution_context;
}

namespace hydra::detail {

// Guard mode (layer_guard.hpp) needs the layers' memory on the host.
template <class Context>
inline constexpr bool guards_layers = std::same_as<Context, host_execution_context>;

// Where layer `layer`'s parameters start in the extent of `s`.
template <class Context>
[[nodiscard]] float* parameters_in(sequential_model<Context> const& model, shard const& s, std::byte* extent,
                                   std::size_t layer) {
  return reinterpret_cast<float*>(extent) + (model.parameter_offset(layer) - s.parameter_offset);
}

template <class Context>
void run_shard_forward(sequential_model<Context> const& model, Context& context, shard const& s, std::byte* extent,
                       std::byte* scratch, bool guard = false) {
  for (std::size_t k = 0; k < s.layer_count(); ++k) {
    std::size_t const layer = s.first_layer + k;
    forward_arguments arguments;
    arguments.batch = model.batch();
    arguments.input = reinterpret_cast<float const*>(scratch + s.scratch.activations[k]);
    arguments.output = reinterpret_cast<float*>(scratch + s.scratch.activations[k + 1]);
    arguments.parameters = parameters_in(model, s, extent, layer);
    arguments.workspace = scratch + s.scratch.workspace;
    // Only the shard holding the loss has labels on the device.
    if (s.end_layer == model.size())
      arguments.labels = reinterpret_cast<std::int32_t const*>(scratch + s.scratch.labels);
    if constexpr (guards_layers<Context>) {
      if (guard) {
        guarded_forward(model.layer(layer), context, arguments, model.describe_layer(layer));
        continue;
      }
    }
    model.layer(layer).forward(context, arguments);
  }
}

// Returns the scratch offset that holds dLoss/d(shard input) afterwards.
template <class Context>
std::size_t run_shard_backward(sequential_model<Context> const& model, Context& context, shard const& s,
                               std::byte* extent, std::byte* scratch, bool guard = false) {
  bool const last = s.end_layer == model.size(); // its last layer is the loss, which starts the chain
  std::size_t incoming = s.scratch.gradients[0], outgoing = s.scratch.gradients[1];
  float* gradients = reinterpret_cast<float*>(extent + s.home_bytes());
  for (std::size_t k = s.layer_count(); k-- > 0;) {
    std::size_t const layer = s.first_layer + k;
    backward_arguments arguments;
    arguments.batch = model.batch();
    arguments.input = reinterpret_cast<float const*>(scratch + s.scratch.activations[k]);
    arguments.output = reinterpret_cast<float const*>(scratch + s.scratch.activations[k + 1]);
    bool const starts_chain = last && k + 1 == s.layer_count();
    arguments.output_gradient = starts_chain ? nullptr : reinterpret_cast<float const*>(scratch + incoming);
    arguments.input_gradient = reinterpret_cast<float*>(scratch + outgoing);
    arguments.parameters = parameters_in(model, s, extent, layer);
    arguments.parameter_gradients = gradients + (model.parameter_offset(layer) - s.parameter_offset);
    arguments.workspace = scratch + s.scratch.workspace;
    if (last) arguments.labels = reinterpret_cast<std::int32_t const*>(scratch + s.scratch.labels);
    if constexpr (guards_layers<Context>) {
      if (guard)
        guarded_backward(model.layer(layer), context, arguments, model.describe_layer(layer));
      else
        model.layer(layer).backward(context, arguments);
    } else {
      model.layer(layer).backward(context, arguments);
    }
    std::swap(incoming, outgoing);
  }
  return incoming;
}

} // namespace hydra::detail
