// A run's profile (multi_model_trainer::profile()) as a workload file the
// simulator reads (hydra-sim --workload): the format of
// json/workload_json.hpp without minibatch counts, which the reader takes from
// its defaults (hydra-sim's --minibatches). A device's link rates are written
// where the run measured them (the host backend); elsewhere the reader's
// defaults (hydra-sim's --link) stand in. Each model also says where its
// figures came from ("source", "measured_minibatches") and each shard how long
// its fetches took ("fetch_seconds"); the simulator reads past those.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hydra/json/document.hpp"
#include "hydra/json/workload_json.hpp"
#include "hydra/train/model_profile.hpp"

namespace hydra {

inline void write_profile_json(std::ostream& out, sweep_profile const& profile) {
  using ordered = nlohmann::ordered_json;
  auto const at = [](auto const& values, std::size_t s) { return detail::figure_or_zero(values, s); };
  ordered models = ordered::array();
  for (auto const& p : profile.models) {
    ordered shards = ordered::array();
    for (std::size_t s = 0; s < p.forward_seconds.size(); ++s)
      shards.push_back({{"forward_seconds", p.forward_seconds[s]},
                        {"backward_seconds", at(p.backward_seconds, s)},
                        {"fetch_seconds", at(p.fetch_seconds, s)},
                        {"state_bytes", at(p.state_bytes, s)},
                        {"parameter_bytes", at(p.parameter_bytes, s)},
                        {"home_bytes", at(p.home_bytes, s)},
                        {"scratch_bytes", at(p.scratch_bytes, s)},
                        {"input_bytes", at(p.input_bytes, s)}});
    models.push_back({{"name", p.name},
                      {"source", p.source},
                      {"measured_minibatches", p.measured_minibatches},
                      {"shards", std::move(shards)}});
  }
  ordered document = {{"format", "hydra workload"},
                      {"version", sim::workload_json_version},
                      {"description", "runtime profile of " + std::to_string(profile.models.size()) + " models"}};
  if (!profile.devices.empty()) {
    ordered devices = ordered::array();
    for (auto const& device : profile.devices) {
      ordered d = {{"budget_bytes", device.budget_bytes}};
      if (device.h2d_bytes_per_second > 0) d["h2d_bytes_per_second"] = device.h2d_bytes_per_second;
      if (device.d2h_bytes_per_second > 0) d["d2h_bytes_per_second"] = device.d2h_bytes_per_second;
      // A measured rate already holds each copy's fixed cost.
      if (device.h2d_bytes_per_second > 0 || device.d2h_bytes_per_second > 0) d["latency_seconds"] = 0;
      d["speed"] = device.speed;
      devices.push_back(std::move(d));
    }
    document["devices"] = std::move(devices);
  }
  document["launch_seconds"] = profile.launch_seconds;
  document["host_cores"] = profile.host_cores;
  document["task_host_seconds"] = profile.task_host_seconds;
  document["handoff_seconds"] = profile.handoff_seconds;
  document["models"] = std::move(models);
  detail::write_json_document(out, document);
}

// Models only, and optionally each device's budget: for profiles put together
// by hand or kept from an older run (`device_budgets` empty: no devices written).
inline void write_profile_json(std::ostream& out, std::vector<model_profile> const& profiles,
                               std::vector<std::uint64_t> const& device_budgets = {}) {
  sweep_profile profile{.models = profiles, .devices = {}};
  for (auto const budget : device_budgets) profile.devices.push_back({.budget_bytes = budget});
  write_profile_json(out, profile);
}

} // namespace hydra
