// The simulator on several nodes: models placed whole, each node's host its
// own, models moving between nodes at minibatch boundaries; by hand and on
// random workloads.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hydra/sched/policies.hpp"
#include "hydra/sim/presets.hpp"
#include "hydra/sim/simulator.hpp"

namespace sim = hydra::sim;

namespace {

sim::device_spec free_links(std::size_t node = 0) {
  return {.budget_bytes = 1'000'000'000'000,
          .h2d_bytes_per_second = 0,
          .d2h_bytes_per_second = 0,
          .latency_seconds = 0,
          .speed = 1,
          .node = node};
}

// One shard: 1 s forward, 1 s backward, `state` bytes of state (free to fetch here).
sim::model_spec one_shard_model(std::string name, std::size_t minibatches, std::uint64_t state = 0) {
  sim::shard_spec shard;
  shard.forward_seconds = 1;
  shard.backward_seconds = 1;
  shard.state_bytes = state;
  return {std::move(name), {shard}, minibatches};
}

std::size_t node_of_device(sim::workload const& w, std::size_t device) {
  return w.devices.at(device).node;
}

} // namespace

TEST_CASE("one node is the plain simulation: on_nodes(w, 1) decides and ends alike") {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    auto const w = sim::random_workload(seed);
    sim::options o;
    o.keep_decisions = true;
    auto const plain = sim::simulate(w, "sharp", o);
    o.move_models = true;
    auto const one = sim::simulate(sim::on_nodes(w, 1), "sharp", o);
    CAPTURE(seed);
    CHECK(one.makespan_seconds == plain.makespan_seconds);
    CHECK(one.decisions == plain.decisions);
    CHECK(one.moves.empty());
  }
}

TEST_CASE("by hand: two nodes of one device and three models, placed longest-first and then one moves") {
  // Three models of 2 minibatches of 2 one-second tasks: 4 s each. Longest
  // first: model 0 to node 0, model 1 to node 1, model 2 to node 0 (ends 8
  // there against 8 on node 1: the lower). Node 0 then runs 8 tasks: 8 s.
  sim::workload w;
  w.devices = {free_links(0), free_links(1)};
  w.between_nodes = {.bytes_per_second = 1e9, .latency_seconds = 0};
  for (std::string name : {"a", "b", "c"}) w.models.push_back(one_shard_model(name, 2, 500'000'000));
  sim::options o;
  o.driver.queue_depth = 0;
  o.keep_decisions = true;
  auto const placed = sim::simulate(w, hydra::fifo{}, o);
  CHECK(placed.starting_node == std::vector<std::size_t>{0, 1, 0});
  CHECK(placed.makespan_seconds == 8.0);
  CHECK(placed.moves.empty());
  for (auto const& d : placed.decisions) CHECK(node_of_device(w, d.device) == placed.starting_node[d.task.model]);
  // Node 0 alternates a and c: at 4 s each has done its first minibatch, and
  // node 1 has finished b. Node 1 takes c (a is launched first at 4 s,
  // so c waits at its boundary): its 0.5 GB cross in 0.5 s, and its last
  // minibatch runs on node 1 from 4.5 s to 6.5 s while node 0 ends a at 6 s.
  o.move_models = true;
  o.record_trace = true;
  auto const moving = sim::simulate(w, hydra::fifo{}, o);
  REQUIRE(moving.moves.size() == 1);
  auto const& move = moving.moves.front();
  CHECK(move.move == hydra::model_move{2, 0, 1});
  CHECK(move.start_seconds == 4.0);
  CHECK(move.end_seconds == 4.5);
  CHECK(move.bytes == 500'000'000);
  CHECK(moving.bytes_between_nodes == 500'000'000);
  CHECK(moving.makespan_seconds == 6.5);
  // What node 0 held of c was let go at the move: c's first task on node 1
  // is no move between devices, and its compute starts once c's state is there.
  CHECK(moving.cross_device_moves == 0);
  std::optional<std::chrono::nanoseconds> first_on_new_node;
  for (auto const& slice : moving.trace)
    if (slice.task.model == 2 && slice.device == 1 && slice.stream == hydra::stream_role::compute)
      first_on_new_node = std::min(first_on_new_node.value_or(slice.start), slice.start);
  REQUIRE(first_on_new_node.has_value());
  CHECK(*first_on_new_node == std::chrono::milliseconds(4500));
  // c's tasks before the move ran on node 0, after it on node 1, from a forward of shard 0.
  bool moved = false;
  for (auto const& d : moving.decisions) {
    if (d.task.model != 2) continue;
    if (!moved && d.device == 1) {
      moved = true;
      CHECK(d.task.pass == hydra::direction::forward);
      CHECK(d.task.shard == 0);
      CHECK(d.task.minibatch == 1);
    }
    CHECK(d.device == (moved ? 1U : 0U));
  }
  CHECK(moved);
  // A slow link makes the move not worth it: 4 s to cross and c's 2 s left
  // exceed the 4 s of work node 0 has left.
  w.between_nodes.bytes_per_second = 0.125e9;
  CHECK(sim::simulate(w, hydra::fifo{}, o).moves.empty());
}

TEST_CASE("each node has its own host: launches and cores are per node") {
  // Two models, one per node, each launch 0.25 s on one thread, one host core per node.
  sim::workload w;
  w.devices = {free_links(0), free_links(1)};
  w.launch_seconds = 0.25;
  w.host_cores = 1;
  w.models = {one_shard_model("a", 2), one_shard_model("b", 2)};
  sim::workload alone = w;
  alone.devices = {free_links(0)};
  alone.models.resize(1);
  double const one_model = sim::simulate(alone, "sharp").makespan_seconds;
  // Sharing one host, the two models would take turns on its core and thread.
  sim::workload shared_host = w;
  shared_host.devices = {free_links(0), free_links(0)};
  double const shared = sim::simulate(shared_host, "sharp").makespan_seconds;
  double const split = sim::simulate(w, "sharp").makespan_seconds;
  CHECK(split == one_model);
  CHECK(shared > split);
  // The bound counts each node's thread and cores.
  CHECK(sim::lower_bound(w).host == doctest::Approx(sim::lower_bound(shared_host).host / 2));
}

TEST_CASE("random workloads on 2-4 nodes: each model on its node, moves at boundaries, no makespan below the bound") {
  std::size_t with_moves = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    sim::random_options ro;
    ro.min_models = 4;
    ro.max_models = 20;
    ro.max_devices = 3;
    auto const w = sim::on_nodes(sim::random_workload(seed, ro), 2 + seed % 3);
    CAPTURE(seed);
    sim::options o;
    o.keep_decisions = true;
    for (bool const move : {false, true}) {
      o.move_models = move;
      auto const r = sim::simulate(w, "sharp", o);
      CAPTURE(move);
      CHECK(r.makespan_seconds >= r.bound.seconds() * (1 - 1e-9));
      std::uint64_t tasks = 0;
      for (auto const& m : w.models) tasks += 2 * m.shards.size() * m.minibatches;
      CHECK(r.tasks == tasks);
      CHECK(r.decisions.size() == tasks);
      if (!move) CHECK(r.moves.empty());
      with_moves += r.moves.empty() ? 0 : 1;
      // Replaying the moves in time order: a model's tasks run on its current
      // node, and a task on a new node is the first of a minibatch.
      std::vector<std::size_t> node = r.starting_node;
      std::map<std::size_t, std::vector<hydra::model_move>> moves_of;
      for (auto const& m : r.moves) {
        CHECK(m.end_seconds > m.start_seconds);
        CHECK(m.move.from != m.move.to);
        moves_of[m.move.model].push_back(m.move);
      }
      std::map<std::size_t, std::size_t> next_move;
      for (auto const& d : r.decisions) {
        std::size_t const here = node_of_device(w, d.device);
        auto& pending = moves_of[d.task.model];
        auto& k = next_move[d.task.model];
        if (here != node[d.task.model] && k < pending.size() && pending[k].to == here) {
          CHECK(pending[k].from == node[d.task.model]);
          CHECK(d.task.pass == hydra::direction::forward);
          CHECK(d.task.shard == 0);
          node[d.task.model] = here;
          ++k;
        }
        CHECK(here == node[d.task.model]);
      }
    }
  }
  CHECK(with_moves >= 10); // the rule does move models on these workloads
}

TEST_CASE("nodes are refused by name: a gap in their numbers, a link without a rate, a replay") {
  sim::workload w;
  w.devices = {free_links(0), free_links(2), free_links(2)};
  w.models = {one_shard_model("a", 1)};
  CHECK_THROWS_WITH_AS(sim::validate(w), "workload: node 1 has no devices; nodes are numbered 0, 1, ... without gaps",
                       hydra::invalid_argument);
  w.devices.pop_back();
  w.devices[1].node = 1;
  w.between_nodes.bytes_per_second = 0;
  CHECK_THROWS_WITH_AS(sim::validate(w), "workload: the link between nodes needs a rate > 0 bytes/s and a latency >= 0",
                       hydra::invalid_argument);
  w.between_nodes.bytes_per_second = 1e9;
  w.devices[1].node = 7;
  CHECK_THROWS_WITH_AS(sim::validate(w),
                       "workload: device 1 is on node 7; with 2 devices the nodes are numbered below that",
                       hydra::invalid_argument);
  w.devices[1].node = 1;
  sim::options o;
  o.replay = {hydra::driver_event{}};
  CHECK_THROWS_WITH_AS((void)sim::simulate(w, "sharp", o),
                       "simulator: a recorded run is replayed on one node; this workload has 2 nodes",
                       hydra::invalid_argument);
  CHECK_THROWS_AS((void)sim::on_nodes(w, 0), hydra::invalid_argument);
  CHECK_THROWS_AS((void)sim::on_nodes(w, 3000), hydra::invalid_argument);
}

TEST_CASE("the paper sweep: 96 models, the paper preset's 12 configurations from 8 seeds") {
  auto const w = sim::paper_sweep_preset();
  auto const paper = sim::paper_preset();
  REQUIRE(w.models.size() == 96);
  CHECK(w.models[13].name == paper.models[1].name + " seed 1");
  CHECK(w.models[13].shards.size() == paper.models[1].shards.size());
  CHECK(w.devices.size() == 8);
  auto const four = sim::on_nodes(w, 4);
  CHECK(four.devices.size() == 32);
  CHECK(sim::node_count(four) == 4);
  CHECK(four.devices[8].node == 1);
  CHECK_THROWS_AS((void)sim::paper_sweep_preset(0), hydra::invalid_argument);
}
