// The runtime's profiles (multi_model_trainer::profiles()) as a workload file
// the simulator reads (hydra-sim --workload): the same format as
// json/workload_json.hpp, without minibatch counts and, unless they are given,
// devices, which the reader then takes as defaults. Given, the devices carry
// their memory budgets only: the runtime does not measure its host links, so
// their rates stay the reader's defaults (hydra-sim's --link). Each model also
// says where its figures came from ("source") and each shard how long its
// fetches took ("fetch_seconds"); the simulator reads past both.
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

// `device_budgets`: each device's memory on the machine that was profiled, so
// that a simulation of the profile simulates that machine (empty: none written).
inline void write_profile_json(std::ostream& out, std::vector<model_profile> const& profiles,
                               std::vector<std::uint64_t> const& device_budgets = {}) {
  using ordered = nlohmann::ordered_json;
  ordered models = ordered::array();
  for (auto const& p : profiles) {
    ordered shards = ordered::array();
    for (std::size_t s = 0; s < p.forward_seconds.size(); ++s)
      shards.push_back({{"forward_seconds", p.forward_seconds[s]},
                        {"backward_seconds", p.backward_seconds[s]},
                        {"fetch_seconds", s < p.fetch_seconds.size() ? p.fetch_seconds[s] : 0.0},
                        {"state_bytes", p.state_bytes[s]}});
    models.push_back({{"name", p.name}, {"source", p.source}, {"shards", std::move(shards)}});
  }
  ordered document = {{"format", "hydra workload"},
                      {"version", sim::workload_json_version},
                      {"description", "runtime profile of " + std::to_string(profiles.size()) + " models"}};
  if (!device_budgets.empty()) {
    ordered devices = ordered::array();
    for (auto const budget : device_budgets) devices.push_back({{"budget_bytes", budget}});
    document["devices"] = std::move(devices);
  }
  document["models"] = std::move(models);
  detail::write_json_document(out, document);
}

} // namespace hydra
