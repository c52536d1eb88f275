// What the policies were told about a model's costs: given estimates, FLOP
// counts, or what its profiling minibatch measured. The trainer reports one per
// model (profiles()); hydra::write_profile_json (json/profile_json.hpp) writes
// them as a workload file the simulator reads.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hydra {

struct model_profile {
  std::string name;
  // "estimates" (given), "measured" (its profiling minibatch) or "flops" (that
  // minibatch has not finished yet: FLOP counts stand in)
  std::string source;
  std::vector<double> forward_seconds;  // per shard, compute stream, prefetch waits included
  std::vector<double> backward_seconds; // with the recomputed forward and the optimizer step
  std::vector<double> fetch_seconds;    // prefetch stream, per shard, forward and backward together
  std::vector<std::size_t> state_bytes; // device extent per shard
};

} // namespace hydra
