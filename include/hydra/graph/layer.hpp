// The Layer concept: what a user's own layer type provides so that hydra can
// shard, spill and schedule it. A layer is a description plus kernels: it never
// owns device memory. hydra places its parameters, gradients and activations and
// binds them at call time (forward_arguments / backward_arguments), on the
// compute stream of whatever device the shard landed on.
//
// Data are fp32 and activations are row-major [batch x features] matrices. The
// kernels are *enqueued* through the execution context (a host stream here, a
// CUDA stream with the CUDA backend), so a call returns before the work runs;
// every pointer stays valid until the work on that stream has finished.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace hydra {

// What a layer needs for one batch size. Sizes are in elements (fp32) except the
// workspace; hydra turns them into bytes, adds gradients (one per parameter) and
// optimizer state (the optimizer's count per parameter), and partitions on that.
struct layer_footprint {
  std::size_t parameter_count = 0; // trained parameters
  std::size_t input_features = 0;  // per sample
  std::size_t output_features = 0; // per sample; its batch x features output is what backward keeps
  std::size_t workspace_bytes = 0; // scratch for one forward or backward call
  double flops = 0;                // forward + backward, the cost the balanced partitioner evens out
};

struct forward_arguments {
  std::size_t batch = 0;
  float const* input = nullptr;         // batch x input_features
  float* output = nullptr;              // batch x output_features
  float const* parameters = nullptr;    // parameter_count
  void* workspace = nullptr;            // workspace_bytes
  std::int32_t const* labels = nullptr; // batch class indices: set for every layer, used by loss layers
};

struct backward_arguments {
  std::size_t batch = 0;
  float const* input = nullptr;           // as in forward
  float const* output = nullptr;          // what forward wrote
  float const* output_gradient = nullptr; // dLoss/d output; a loss layer (the last) ignores it
  float* input_gradient = nullptr;        // dLoss/d input, overwritten
  float const* parameters = nullptr;
  float* parameter_gradients = nullptr; // dLoss/d parameters, overwritten (not accumulated)
  void* workspace = nullptr;
  std::int32_t const* labels = nullptr;
};

// A loss layer ends every trained model, and only there. It declares itself
// with `static constexpr bool is_loss = true;` and keeps this contract:
//  - forward reads the logits (batch x input_features) and
//    forward_arguments::labels (class indices 0 .. input_features - 1), and
//    writes one loss per sample: output_features is 1;
//  - backward starts the backward pass: output_gradient is null, and it writes
//    input_gradient = d(mean loss over the batch) / d(logits).
// The trainer reads the losses for the loss curve and the evaluation.
template <class L>
inline constexpr bool is_loss_layer = requires {
  requires std::remove_cvref_t<L>::is_loss;
};

// Layer L runs on execution context C (e.g. host_execution_context).
template <class L, class Context>
concept layer = requires(L const& l, Context& context, std::size_t batch, forward_arguments const& forward,
                         backward_arguments const& backward, float* parameters, std::uint64_t seed) {
  { l.name() } -> std::convertible_to<std::string>;
  { l.footprint(batch) } -> std::same_as<layer_footprint>;
  l.initialize(parameters, seed); // fills the initial parameters on the host
  l.forward(context, forward);
  l.backward(context, backward);
};

} // namespace hydra
