// The baselines the Hydra paper compares shard parallelism against, beside the
// model_parallel policy (which the simulator runs like any policy):
//  - task_parallel: each model whole on one device; only for models that fit.
//    as_whole_models() turns a workload into that form (one shard per model)
//    or says which model does not fit;
//  - a GPipe-style pipeline: one model at a time, its layers split into D
//    stages, each minibatch into M micro-batches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/sched/working_set.hpp"
#include "hydra/sim/workload.hpp"

namespace hydra::sim {

// The workload with every model merged into one shard, as task_parallel trains
// it; throws does_not_fit naming the first model whose whole working set is
// above half a device (the runtime's rule for task_parallel).
[[nodiscard]] inline workload as_whole_models(workload const& w) {
  workload out = w;
  std::uint64_t smallest = w.devices.empty() ? 0 : w.devices.front().budget_bytes;
  for (auto const& device : w.devices) smallest = std::min(smallest, device.budget_bytes);
  for (std::size_t m = 0; m < out.models.size(); ++m) {
    auto& model = out.models[m];
    shard_spec whole;
    for (auto const& s : model.shards) {
      whole.forward_seconds += s.forward_seconds;
      whole.backward_seconds += s.backward_seconds;
      whole.state_bytes += s.state_bytes;
      whole.parameter_bytes += s.parameter_bytes ? s.parameter_bytes : s.state_bytes;
      whole.scratch_bytes += s.scratch_bytes;
    }
    if (!model.shards.empty()) whole.input_bytes = model.shards.front().input_bytes;
    if (whole.task_bytes() > working_set_limit(smallest)) {
      throw does_not_fit("task_parallel: model " + std::to_string(m) + " (" + model.name + ") needs " +
                         format_bytes(whole.task_bytes()) + " whole, above half a device (" +
                         format_bytes(working_set_limit(smallest)) + ")");
    }
    model.shards.assign(1, whole);
  }
  return out;
}

struct pipeline_result {
  double makespan_seconds = 0;
  double bubble_fraction = 0; // (D - 1) / (M + D - 1): idle share of each device
  std::size_t micro_batches = 0;
};

// GPipe's schedule for one minibatch on D stages with M micro-batches takes
// (M + D - 1) micro-batch stage times forward and again backward, so a model
// with forward F and backward B seconds per minibatch takes
//   (M + D - 1) / M * (F + B) / D
// per minibatch. Models run one after another. Assumptions, each in the
// pipeline's favour: stages perfectly balanced (the per-layer split is free;
// on devices of different speeds, in proportion to each one's speed, so the
// D in the formula becomes the sum of the speeds),
// micro-batches as efficient per token as whole minibatches, every model's
// parameters and its micro-batches' activations fit across the D devices
// without spilling, activations cross between stages for free, and a model's
// load overlaps the previous model's training.
[[nodiscard]] inline pipeline_result pipeline_baseline(workload const& w, std::size_t micro_batches) {
  hydra::detail::expects(!w.devices.empty(), "pipeline baseline: device count is 0; at least 1 device is required");
  hydra::detail::expects(micro_batches > 0, "pipeline baseline: micro-batch count is 0; at least 1 is required");
  double const D = static_cast<double>(w.devices.size()), M = static_cast<double>(micro_batches);
  pipeline_result out;
  out.micro_batches = micro_batches;
  out.bubble_fraction = (D - 1) / (M + D - 1);
  double speeds = 0; // D for devices alike
  for (auto const& device : w.devices) speeds += device.speed;
  for (auto const& model : w.models) out.makespan_seconds += (M + D - 1) / M * chain_seconds(model) / speeds;
  return out;
}

} // namespace hydra::sim
