// The simulator: how fast it simulates (tasks per second, the claim: >= 10M on
// the paper-shaped preset), how long a 1,000-model, 256-device sweep takes,
// and, as counters from the same runs, schedule quality on the preset:
// makespan / lower bound, speedup over model_parallel and over the pipeline.
// The policy tables (every policy, 100 random workloads) come from hydra-sim.
// On several nodes: what moving models between nodes does against keeping
// each where longest-first placement put it, over random workloads (the
// scale-out table of the 96-model sweep comes from hydra-sim --scale-out).
// The what-ifs of activations kept on the device, the look-ahead with the
// longest model's task never queued ahead, and the look-ahead that takes a
// queued task back, on the preset and the large sweep.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
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
hydra::sim::workload large_sweep() {
  hydra::sim::random_options o;
  o.min_models = o.max_models = 1000;
  o.min_devices = o.max_devices = 256;
  return hydra::sim::random_workload(42, o);
}

// The timed loop of the what-ifs below: sharp under `o` on the preset and on
// the large sweep; the last reports.
std::pair<hydra::sim::report, hydra::sim::report> sharp_on_preset_and_large_sweep(benchmark::State& state,
                                                                                  hydra::sim::options const& o) {
  auto const preset = hydra::sim::paper_preset();
  auto const large = large_sweep();
  std::pair<hydra::sim::report, hydra::sim::report> last;
  for (auto _ : state) last = {hydra::sim::simulate(preset, "sharp", o), hydra::sim::simulate(large, "sharp", o)};
  return last;
}

void simulate_large_sweep(benchmark::State& state) {
  auto const w = large_sweep();
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

// The simulator's what-ifs of activations kept on the device (the runtime
// sends them through host memory): sharp on the preset and on the 1,000-model
// sweep, per way of handing activations on (the argument: 0 through host,
// 1 kept, 2 kept and sent home, 3 kept with checkpoints, 4 kept and sent home
// with checkpoints, 5 as 4 and copied between devices to a reader elsewhere,
// over the preset's NVLink and the large sweep's host-rate links). Ratios to each mode's own bound (it counts only the
// copies that mode leaves), to the classic bound (the same for all six), and
// to the preset's makespan through host memory.
void activation_what_ifs(benchmark::State& state) {
  auto const mode = static_cast<int>(state.range(0));
  hydra::sim::options o;
  o.activations = mode == 0                ? hydra::sim::activation_handoff::through_host
                  : mode == 1 || mode == 3 ? hydra::sim::activation_handoff::kept
                                           : hydra::sim::activation_handoff::kept_and_sent_home;
  o.keep_checkpoints = mode >= 3;
  o.copy_activations_between_devices = mode == 5;
  auto const [on_preset, on_large] = sharp_on_preset_and_large_sweep(state, o);
  double const through_host = hydra::sim::simulate(hydra::sim::paper_preset(), "sharp").makespan_seconds;
  state.counters["preset_over_bound"] = on_preset.ratio_to_lower_bound();
  state.counters["preset_over_classic_bound"] = on_preset.makespan_seconds / on_preset.bound.classic_seconds();
  state.counters["preset_over_through_host"] = on_preset.makespan_seconds / through_host;
  state.counters["preset_TB_moved"] = static_cast<double>(on_preset.bytes_to_device + on_preset.bytes_to_host) / 1e12;
  state.counters["preset_TB_between_devices"] = static_cast<double>(on_preset.bytes_between_devices) / 1e12;
  state.counters["large_over_bound"] = on_large.ratio_to_lower_bound();
  state.counters["large_over_classic_bound"] = on_large.makespan_seconds / on_large.bound.classic_seconds();
}

// A look-ahead under `o`: sharp on the preset and on the 1,000-model sweep
// (timed), and, once after the timed runs, over hydra-sim --sweep's 100 random
// workloads (median and worst over the bound and the classic bound).
void look_ahead_counters(benchmark::State& state, hydra::sim::options const& o) {
  auto const [on_preset, on_large] = sharp_on_preset_and_large_sweep(state, o);
  std::vector<double> over_bound, over_classic;
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    auto const r = hydra::sim::simulate(hydra::sim::random_workload(seed), "sharp", o);
    over_bound.push_back(r.ratio_to_lower_bound());
    over_classic.push_back(r.makespan_seconds / r.bound.classic_seconds());
  }
  std::sort(over_bound.begin(), over_bound.end());
  std::sort(over_classic.begin(), over_classic.end());
  state.counters["preset_over_bound"] = on_preset.ratio_to_lower_bound();
  state.counters["preset_TB_moved"] = static_cast<double>(on_preset.bytes_to_device + on_preset.bytes_to_host) / 1e12;
  state.counters["large_over_bound"] = on_large.ratio_to_lower_bound();
  state.counters["large_over_classic_bound"] = on_large.makespan_seconds / on_large.bound.classic_seconds();
  state.counters["preset_taken_back"] = static_cast<double>(on_preset.taken_back);
  state.counters["large_taken_back"] = static_cast<double>(on_large.taken_back);
  // hydra-sim --sweep's median: the middle of 100 sorted ratios, as it prints it.
  state.counters["random_median_over_bound"] = over_bound[over_bound.size() / 2];
  state.counters["random_worst_over_bound"] = over_bound.back();
  state.counters["random_median_over_classic_bound"] = over_classic[over_classic.size() / 2];
  state.counters["random_worst_over_classic_bound"] = over_classic.back();
}

// The look-ahead with and without driver_options::never_queue_longest (the
// argument: 0 without, 1 with).
void never_queue_longest(benchmark::State& state) {
  hydra::sim::options o;
  o.driver.never_queue_longest = state.range(0) == 1;
  look_ahead_counters(state, o);
}

// The what-if of a look-ahead that takes a queued task back when its device's
// compute frees for a more urgent chain (sim::options::take_back; the
// argument: 0 none, 1 longest, 2 any), with the same counters.
void take_back(benchmark::State& state) {
  hydra::sim::options o;
  o.take_back = state.range(0) == 0   ? hydra::take_back_rule::none
                : state.range(0) == 1 ? hydra::take_back_rule::longest
                                      : hydra::take_back_rule::any;
  look_ahead_counters(state, o);
}

// The what-if of shard updates written home only when evicted or at their
// model's end (sim::options::write_back_on_eviction), with the same counters;
// the argument: bit 0 the what-if, bit 1 activations and checkpoints kept
// and sent home (the runtime's keep_activations and
// keep_activation_checkpoints).
void write_back_on_eviction(benchmark::State& state) {
  hydra::sim::options o;
  o.write_back_on_eviction = (state.range(0) & 1) != 0;
  if ((state.range(0) & 2) != 0) {
    o.activations = hydra::sim::activation_handoff::kept_and_sent_home;
    o.keep_checkpoints = true;
  }
  look_ahead_counters(state, o);
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
BENCHMARK(activation_what_ifs)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);
BENCHMARK(never_queue_longest)->DenseRange(0, 1)->Unit(benchmark::kMillisecond);
BENCHMARK(take_back)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(write_back_on_eviction)->DenseRange(0, 3)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
