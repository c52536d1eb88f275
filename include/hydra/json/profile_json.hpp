// The runtime's profiles (multi_model_trainer::profiles()) as a workload file
// the simulator reads (hydra-sim --workload): the same format as
// json/workload_json.hpp, without devices or minibatch counts, which the
// reader then takes as defaults. Each model also says where its figures came
// from ("source") and each shard how long its fetches took ("fetch_seconds");
// the simulator reads past both.
#pragma once

#include <cstddef>
#include <ostream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hydra/json/document.hpp"
#include "hydra/json/workload_json.hpp"
#include "hydra/train/model_profile.hpp"

namespace hydra {

inline void write_profile_json(std::ostream& out, std::vector<model_profile> const& profiles) {
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
  ordered document = {{"format", "hydra workload"}, {"version", sim::workload_json_version}};
  document["models"] = std::move(models);
  detail::write_json_document(out, document);
}

} // namespace hydra
