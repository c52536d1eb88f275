// A run's profile (multi_model_trainer::profile()) as the simulator's
// workload: the same models, shards and devices, to ask what other policies,
// more devices or other budgets would do before buying them. The JSON form of
// the same thing is hydra::write_profile_json (json/profile_json.hpp).
#pragma once

#include <cstddef>
#include <string>

#include "hydra/core/error.hpp"
#include "hydra/sim/workload.hpp"
#include "hydra/train/model_profile.hpp"

namespace hydra::sim {

// Every model trains `minibatches` minibatches. A device whose link rates the
// run did not measure (a backend that does not count its copies) takes them
// from `unmeasured`.
[[nodiscard]] inline workload to_workload(sweep_profile const& profile, std::size_t minibatches,
                                          device_spec const& unmeasured = {}) {
  hydra::detail::expects(!profile.devices.empty(), "to_workload: the profile names no devices");
  hydra::detail::expects(minibatches >= 1 && minibatches <= max_minibatches,
                         "to_workload: minibatches is " + std::to_string(minibatches) + "; 1 to " +
                             std::to_string(max_minibatches));
  workload w;
  w.description = "runtime profile of " + std::to_string(profile.models.size()) + " models";
  w.launch_seconds = profile.launch_seconds;
  w.host_cores = profile.host_cores;
  w.task_host_seconds = profile.task_host_seconds;
  w.handoff_seconds = profile.handoff_seconds;
  for (auto const& measured : profile.devices) {
    device_spec device = unmeasured;
    device.budget_bytes = measured.budget_bytes;
    if (measured.h2d_bytes_per_second > 0) device.h2d_bytes_per_second = measured.h2d_bytes_per_second;
    if (measured.d2h_bytes_per_second > 0) device.d2h_bytes_per_second = measured.d2h_bytes_per_second;
    // A measured rate already holds each copy's fixed cost (as the JSON form says).
    if (measured.h2d_bytes_per_second > 0 || measured.d2h_bytes_per_second > 0) device.latency_seconds = 0;
    device.speed = measured.speed;
    w.devices.push_back(device);
  }
  for (auto const& p : profile.models) {
    model_spec model{.name = p.name, .shards = {}, .minibatches = minibatches};
    auto const at = [](auto const& values, std::size_t s) { return hydra::detail::figure_or_zero(values, s); };
    for (std::size_t s = 0; s < p.forward_seconds.size(); ++s)
      model.shards.push_back({.forward_seconds = p.forward_seconds[s],
                              .backward_seconds = at(p.backward_seconds, s),
                              .state_bytes = at(p.state_bytes, s),
                              .parameter_bytes = at(p.parameter_bytes, s),
                              .scratch_bytes = at(p.scratch_bytes, s),
                              .input_bytes = at(p.input_bytes, s),
                              .home_bytes = at(p.home_bytes, s)});
    w.models.push_back(std::move(model));
  }
  return w;
}

} // namespace hydra::sim
