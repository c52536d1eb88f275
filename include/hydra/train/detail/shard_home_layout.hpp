// A shard's home in host memory holds its parameters, then each of the
// optimizer's values per parameter: [parameters | value 0 | value 1 ...], one
// contiguous block that one copy moves. A snapshot holds the same numbers in
// layer order, independent of the partition (see model_snapshot). These convert
// between the two.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/graph/shard_chain.hpp"
#include "hydra/memory/stream_ordered_pool.hpp"
#include "hydra/train/model_snapshot.hpp"

namespace hydra::detail {

// Shard `s`'s home from a snapshot's parameters and optimizer state (n
// parameters in all, k optimizer values per parameter).
[[nodiscard]] inline std::vector<float> home_from(shard const& s, std::vector<float> const& parameters,
                                                  std::vector<float> const& optimizer_state) {
  std::size_t const n = parameters.size(), k = s.state_floats_per_parameter;
  std::size_t const count = s.parameter_count, offset = s.parameter_offset;
  std::vector<float> home(count * (1 + k));
  std::copy_n(parameters.begin() + static_cast<std::ptrdiff_t>(offset), count, home.begin());
  for (std::size_t j = 0; j < k; ++j)
    std::copy_n(optimizer_state.begin() + static_cast<std::ptrdiff_t>(j * n + offset), count,
                home.begin() + static_cast<std::ptrdiff_t>(count * (1 + j)));
  return home;
}

// Shard `s`'s first home: its slice of the model's initial parameters, and
// optimizer values that start at zero.
[[nodiscard]] inline std::vector<float> initial_home(shard const& s, std::vector<float> const& initial) {
  std::vector<float> home(s.parameter_count * (1 + s.state_floats_per_parameter), 0.0F);
  std::copy_n(initial.begin() + static_cast<std::ptrdiff_t>(s.parameter_offset), s.parameter_count, home.begin());
  return home;
}

// Host bytes a model partitioned as `graph` needs: its shards' homes, and
// `minibatches_in_flight` minibatches' worth of boundary checkpoints, boundary
// gradients, labels and losses. `input_features(layer)`: per sample. With
// `spilled_forward_activations`, room for every shard's forward activations
// spilled at once (one minibatch's: a shard's next forward follows its backward).
template <class InputFeatures>
[[nodiscard]] std::size_t runner_host_bytes(shard_chain const& graph, std::size_t batch,
                                            std::size_t minibatches_in_flight, InputFeatures&& input_features,
                                            bool spilled_forward_activations = false) {
  std::size_t homes = 0, per_minibatch = 0;
  for (shard const& s : graph.shards()) {
    homes += align_up(s.home_bytes(), allocation_alignment);
    if (spilled_forward_activations) homes += align_up(s.scratch.bytes, allocation_alignment);
    std::size_t const boundary = align_up(batch * input_features(s.first_layer) * sizeof(float), allocation_alignment);
    per_minibatch += 2 * boundary; // its input checkpoint and the gradient arriving at its output
  }
  per_minibatch += 2 * align_up(batch * sizeof(float), allocation_alignment); // labels, losses
  return homes + minibatches_in_flight * per_minibatch;
}

// Writes shard `s`'s home into `out` (whose arrays are sized for the whole model).
inline void copy_home_into(shard const& s, float const* home, model_snapshot& out) {
  std::size_t const n = out.parameters.size(), k = s.state_floats_per_parameter;
  std::size_t const count = s.parameter_count, offset = s.parameter_offset;
  std::copy_n(home, count, out.parameters.begin() + static_cast<std::ptrdiff_t>(offset));
  for (std::size_t j = 0; j < k; ++j)
    std::copy_n(home + count * (1 + j), count,
                out.optimizer_state.begin() + static_cast<std::ptrdiff_t>(j * n + offset));
}

} // namespace hydra::detail
