// Which rank trains which model: whole models, longest first, each to the rank
// where it would end soonest given that rank's device count (the node
// balancer's rule, the one the simulator's nodes use). Every rank computes the
// same placement from the same configurations, so no message is needed.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/sched/node_balancer.hpp"
#include "hydra/train/flop_estimate.hpp"
#include "hydra/train/sweep_types.hpp"

namespace hydra::mpi {

// A configuration's work as the policies first estimate it: its estimates when
// given, else its layers' FLOP counts as the trainers turn them into seconds
// (train/flop_estimate.hpp), times its minibatches. Only the ratios between models matter here.
template <class Context>
[[nodiscard]] double estimated_seconds(basic_model_config<Context> const& config) {
  double minibatch = 0;
  if (config.estimates) {
    for (double seconds : config.estimates->forward_seconds) minibatch += seconds;
    for (double seconds : config.estimates->backward_seconds) minibatch += seconds;
  } else {
    for (std::size_t layer = 0; layer < config.model.size(); ++layer) {
      double const flops = config.model.footprint(layer).flops;
      minibatch += hydra::detail::estimated_forward_seconds(flops) + hydra::detail::estimated_backward_seconds(flops);
    }
  }
  return minibatch * static_cast<double>(config.steps);
}

// Each configuration's rank, given each rank's device count. Refuses a rank
// with no devices, and more ranks than configurations (a rank with nothing
// to train is a machine held for nothing: launch fewer).
template <class Context>
[[nodiscard]] std::vector<std::size_t> place_on_ranks(std::vector<basic_model_config<Context>> const& configs,
                                                      std::span<std::size_t const> devices_per_rank) {
  hydra::detail::expects(!devices_per_rank.empty(), "mpi sweep: rank count is 0");
  for (std::size_t r = 0; r < devices_per_rank.size(); ++r)
    hydra::detail::expects(devices_per_rank[r] > 0,
                           "mpi sweep: rank " + std::to_string(r) + " has 0 devices; every rank needs at least 1");
  hydra::detail::expects(
      configs.size() >= devices_per_rank.size(),
      "mpi sweep: " + std::to_string(devices_per_rank.size()) + " ranks for " + std::to_string(configs.size()) +
          " models; every rank needs a model to train (launch at most " + std::to_string(configs.size()) + " ranks)");
  std::vector<double> work;
  for (auto const& config : configs) work.push_back(estimated_seconds(config));
  std::vector<node_capacity> nodes;
  for (std::size_t devices : devices_per_rank)
    nodes.push_back({.devices = devices, .speed = static_cast<double>(devices)});
  return place_longest_first(work, nodes);
}

} // namespace hydra::mpi
