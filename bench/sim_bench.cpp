// The simulator: how fast it simulates (tasks per second, the claim: >= 10M on
// the paper-shaped preset), how long a 1,000-model, 256-device sweep takes,
// and, as counters from the same runs, schedule quality on the preset:
// makespan / lower bound, speedup over model_parallel and over the pipeline.
// The policy tables (every policy, 100 random workloads) come from hydra-sim.
// On several nodes: what moving models between nodes does against keeping
// each where longest-first placement put it, over random workloads (the
// scale-out table of the 96-model sweep comes from hydra-sim --scale-out).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "hydra/sched/policies.hpp"
#include "hydra/sim/baselines.hpp"
#include "hydra/sim/presets.hpp"
#include "hydra/sim/simulator.hpp"

namespace {

template <class Policy>
void simulate_preset(benchmark::State& state) {
  auto const w = hydra::sim::paper_preset();
  hydra::sim::report last;
  std::uint64_t tasks = 0;
  for (auto _ : state) {
    Policy policy;
    last = hydra::sim::simulate(w, policy);
    tasks += last.tasks;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(tasks));
  state.counters["makespan_over_bound"] = last.ratio_to_lower_bound();
  state.counters["makespan_over_classic_bound"] = last.makespan_seconds / last.bound.classic_seconds();
  state.counters["makespan_s"] = last.makespan_seconds;
  if constexpr (!std::is_same_v<Policy, hydra::model_parallel>) {
    hydra::model_parallel baseline;
    state.counters["speedup_over_model_parallel"] =
        hydra::sim::simulate(w, baseline).makespan_seconds / last.makespan_seconds;
    state.counters["speedup_over_pipeline_M_D"] =
        hydra::sim::pipeline_baseline(w, w.devices.size()).makespan_seconds / last.makespan_seconds;
    state.counters["speedup_over_pipeline_M_4D"] =
        hydra::sim::pipeline_baseline(w, 4 * w.devices.size()).makespan_seconds / last.makespan_seconds;
  }
}

// 1,000 models of 1-8 shards and 1-12 minibatches on 256 devices.
void simulate_large_sweep(benchmark::State& state) {
  hydra::sim::random_options o;
  o.min_models = o.max_models = 1000;
  o.min_devices = o.max_devices = 256;
  auto const w = hydra::sim::random_workload(42, o);
  hydra::sim::report last;
  std::uint64_t tasks = 0;
  for (auto _ : state) {
    hydra::sharp policy;
    last = hydra::sim::simulate(w, policy);
    tasks += last.tasks;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(tasks));
  state.counters["tasks"] = static_cast<double>(last.tasks);
  state.counters["makespan_over_bound"] = last.ratio_to_lower_bound();
  state.counters["makespan_over_classic_bound"] = last.makespan_seconds / last.bound.classic_seconds();
}

// 60 random workloads of 4-20 models, their 1-3 devices on each of 2-4 nodes:
// sharp's makespan with models moving over it with each model kept where it
// was placed (min, median, max), and how many workloads saw a move.
void moving_between_nodes(benchmark::State& state) {
  std::vector<double> ratios;
  std::size_t with_moves = 0, moves = 0;
  for (auto _ : state) {
    ratios.clear();
    with_moves = moves = 0;
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
      hydra::sim::random_options o;
      o.min_models = 4;
      o.max_models = 20;
      o.max_devices = 3;
      auto const w = hydra::sim::on_nodes(hydra::sim::random_workload(seed, o), 2 + seed % 3);
      hydra::sim::options placed, moving;
      moving.move_models = true;
      double const kept = hydra::sim::simulate(w, "sharp", placed).makespan_seconds;
      auto const moved = hydra::sim::simulate(w, "sharp", moving);
      ratios.push_back(moved.makespan_seconds / kept);
      with_moves += moved.moves.empty() ? 0 : 1;
      moves += moved.moves.size();
    }
  }
  std::sort(ratios.begin(), ratios.end());
  state.counters["moving_over_placed_min"] = ratios.front();
  state.counters["moving_over_placed_median"] = ratios[ratios.size() / 2];
  state.counters["moving_over_placed_max"] = ratios.back();
  state.counters["workloads_with_moves"] = static_cast<double>(with_moves);
  state.counters["moves"] = static_cast<double>(moves);
}

} // namespace

BENCHMARK_TEMPLATE(simulate_preset, hydra::sharp)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(simulate_preset, hydra::fifo)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(simulate_preset, hydra::model_parallel)->Unit(benchmark::kMillisecond);
BENCHMARK(simulate_large_sweep)->Unit(benchmark::kMillisecond);
BENCHMARK(moving_between_nodes)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
