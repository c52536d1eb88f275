// What the policies were told about a model's costs: given estimates, FLOP
// counts, or what its profiling minibatch measured. The trainer reports one per
// model, and writes them as JSON that the simulator reads as a workload.
#pragma once

#include <cstddef>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "hydra/core/json_escape.hpp"

namespace hydra {

struct model_profile {
  std::string name;
  std::string source; // "estimates" (given), "measured" (profiling minibatch) or "flops" (not measured yet)
  std::vector<double> forward_seconds;  // per shard, compute stream, prefetch waits included
  std::vector<double> backward_seconds; // with the recomputed forward and the optimizer step
  std::vector<double> fetch_seconds;    // prefetch stream, per shard, forward and backward together
  std::vector<std::size_t> state_bytes; // device extent per shard
};

// The profiles as JSON: {"models":[{"name":..,"source":..,"shards":[{"forward_seconds":..}, ...]}]}.
inline void write_profile_json(std::ostream& out, std::vector<model_profile> const& profiles) {
  out << "{\"models\":[";
  char number[64];
  for (std::size_t m = 0; m < profiles.size(); ++m) {
    auto const& p = profiles[m];
    out << (m ? "," : "") << "{\"name\":\"" << detail::json_escape(p.name) << "\",\"source\":\"" << p.source
        << "\",\"shards\":[";
    for (std::size_t s = 0; s < p.forward_seconds.size(); ++s) {
      std::snprintf(number, sizeof number, "%.9g", p.forward_seconds[s]);
      out << (s ? "," : "") << "{\"forward_seconds\":" << number;
      std::snprintf(number, sizeof number, "%.9g", p.backward_seconds[s]);
      out << ",\"backward_seconds\":" << number;
      std::snprintf(number, sizeof number, "%.9g", s < p.fetch_seconds.size() ? p.fetch_seconds[s] : 0.0);
      out << ",\"fetch_seconds\":" << number << ",\"state_bytes\":" << p.state_bytes[s] << "}";
    }
    out << "]}";
  }
  out << "]}\n";
}

} // namespace hydra
