// Whole models over nodes (machines, each with its own devices and host): where
// each model starts, and which model a node short of work takes from another.
// A model never spans nodes: its shards' state lives in one host's memory and
// moves between hosts only whole, at a minibatch boundary (its parameters,
// optimizer state and progress in one transfer). Like the scheduler core it
// keeps no clock and does no I/O: the simulator and a distributed runtime ask
// it the same questions and get the same answers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"

namespace hydra {

// A node as the balancer sees it: how many devices it has and their summed
// compute speed (what the models' seconds are divided by there).
struct node_capacity {
  std::size_t devices = 1;
  double speed = 1;
};

// Longest processing time first: models in decreasing order of work (ties: the
// lower index first), each to the node where it would end soonest, (work
// placed there + its own) / that node's speed (ties: the lower node).
// `fits(model, node)`: whether the node's devices can hold the model (a node
// whose memories are too small for one of its shards cannot take it); a model
// that fits no node is refused by name. Returns each model's node.
template <class Fits>
[[nodiscard]] std::vector<std::size_t> place_longest_first(std::span<double const> model_seconds,
                                                           std::span<node_capacity const> nodes, Fits&& fits) {
  detail::expects(!nodes.empty(), "node placement: node count is 0; at least 1 node is required");
  for (std::size_t n = 0; n < nodes.size(); ++n)
    detail::expects(nodes[n].devices > 0 && nodes[n].speed > 0,
                    "node placement: node " + std::to_string(n) + " has no devices or no speed");
  std::vector<std::size_t> order(model_seconds.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return model_seconds[a] > model_seconds[b]; });
  std::vector<double> placed(nodes.size(), 0.0);
  std::vector<std::size_t> node_of(model_seconds.size(), 0);
  for (std::size_t const m : order) {
    std::optional<std::size_t> best;
    double best_end = 0;
    for (std::size_t n = 0; n < nodes.size(); ++n) {
      if (!fits(m, n)) continue;
      double const end = (placed[n] + model_seconds[m]) / nodes[n].speed;
      if (!best || end < best_end) {
        best = n;
        best_end = end;
      }
    }
    if (!best) throw does_not_fit("node placement: model " + std::to_string(m) + " fits the devices of no node");
    node_of[m] = *best;
    placed[*best] += model_seconds[m];
  }
  return node_of;
}

[[nodiscard]] inline std::vector<std::size_t> place_longest_first(std::span<double const> model_seconds,
                                                                  std::span<node_capacity const> nodes) {
  return place_longest_first(model_seconds, nodes, [](std::size_t, std::size_t) { return true; });
}

// One model as the stealing rule sees it, at one instant.
struct placed_model {
  std::size_t node = 0;
  double remaining_seconds = 0; // its work still to do, at the reference speed
  bool unfinished = false;      // neither finished nor stopped
  // Waiting at a minibatch boundary with nothing of it on any device's queue:
  // it can move now.
  bool movable = false;
  double move_seconds = 0; // what moving its state to another node would take
};

struct model_move {
  std::size_t model = 0, from = 0, to = 0;
  friend bool operator==(model_move const&, model_move const&) = default;
};

// Whether a node short of work should take a model, and which. A model
// computes on one device at a time, so a node with fewer unfinished models
// than devices leaves devices idle, and one with more keeps models waiting.
// The node with the most idle devices (ties: the lower) takes from the node
// with models waiting whose remaining work over its speed is greatest (ties:
// the lower; then the next node, and the next taker, when they have nothing
// to move) the movable model with the most remaining work (ties: the lower
// index), if one is worth it: its move and its remaining work, at the taking
// node's mean device speed, end before the giving node would be expected to
// finish its own work. `fits(model, node)` as for place_longest_first.
// Nothing: no node is short of work, or no move is worth it.
template <class Fits>
[[nodiscard]] std::optional<model_move> pick_move(std::span<placed_model const> models,
                                                  std::span<node_capacity const> nodes, Fits&& fits) {
  for (std::size_t n = 0; n < nodes.size(); ++n)
    detail::expects(nodes[n].devices > 0 && nodes[n].speed > 0,
                    "node balancer: node " + std::to_string(n) + " has no devices or no speed");
  std::vector<std::size_t> unfinished(nodes.size(), 0);
  std::vector<double> remaining(nodes.size(), 0.0);
  for (auto const& m : models) {
    detail::expects(m.node < nodes.size(),
                    "node balancer: a model on node " + std::to_string(m.node) + " of " + std::to_string(nodes.size()));
    if (!m.unfinished) continue;
    ++unfinished[m.node];
    remaining[m.node] += m.remaining_seconds;
  }
  // Takers in decreasing idle devices, givers in decreasing expected finish
  // (ties: the lower node); the first pair with a move worth making moves it.
  std::vector<std::size_t> takers, givers;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    if (unfinished[n] < nodes[n].devices) takers.push_back(n);
    if (unfinished[n] > nodes[n].devices) givers.push_back(n);
  }
  std::stable_sort(takers.begin(), takers.end(), [&](std::size_t a, std::size_t b) {
    return nodes[a].devices - unfinished[a] > nodes[b].devices - unfinished[b];
  });
  std::stable_sort(givers.begin(), givers.end(), [&](std::size_t a, std::size_t b) {
    return remaining[a] / nodes[a].speed > remaining[b] / nodes[b].speed;
  });
  for (std::size_t const taker : takers) {
    double const taker_device_speed = nodes[taker].speed / static_cast<double>(nodes[taker].devices);
    for (std::size_t const giver : givers) {
      double const giver_finish = remaining[giver] / nodes[giver].speed;
      std::optional<std::size_t> best;
      for (std::size_t m = 0; m < models.size(); ++m) {
        auto const& model = models[m];
        if (model.node != giver || !model.unfinished || !model.movable || !fits(m, taker)) continue;
        if (model.move_seconds + model.remaining_seconds / taker_device_speed >= giver_finish) continue;
        if (!best || model.remaining_seconds > models[*best].remaining_seconds) best = m;
      }
      if (best) return model_move{*best, giver, taker};
    }
  }
  return std::nullopt;
}

[[nodiscard]] inline std::optional<model_move> pick_move(std::span<placed_model const> models,
                                                         std::span<node_capacity const> nodes) {
  return pick_move(models, nodes, [](std::size_t, std::size_t) { return true; });
}

} // namespace hydra
