// Does a short run's profile predict the full run? The workflow README's
// "Choosing a policy" recommends: profile a short run of the sweep, then ask
// the simulator. Here 8 MLPs shaped like the main job's (784 inputs, widths 256
// and 512, depths 2 and 3, Adam and SGD, batch 64) share 2 host devices of
// 16 MiB. A run of 20 minibatches per model (sharp) is profiled; the simulator
// predicts, from that profile alone, a run of 200 minibatches per model under
// sharp, fifo and model_parallel; then each of those runs is measured three
// times, the policies taking turns (sharp, fifo, model_parallel, sharp, ...),
// and the median is the measurement: on a shared machine one run now and then
// takes half as long again as the others, in every policy alike, which is the
// machine's noise and not the prediction's error (each run is printed too).
// Reported per policy: measured and predicted makespan and their ratio (the
// claim: within 15%), and whether the prediction ranks model_parallel against
// the shard-parallel policies as the measurement does.
//
// `--quick` (the ctest smoke run): 4 and 8 minibatches and one measured run
// per policy, for a program that runs to its end, not for figures.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/sim/profile_workload.hpp"
#include "hydra/sim/simulator.hpp"

using namespace hydra::literals;

namespace {

constexpr std::size_t features = 784, classes = 10, batch = 64, devices = 2;
std::size_t profile_minibatches = 20, full_minibatches = 200, measured_runs = 3;

hydra::data_source data(std::uint64_t seed) {
  return hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = seed};
}

std::vector<hydra::model_config> sweep(std::size_t steps) {
  std::vector<hydra::model_config> configs;
  std::size_t m = 0;
  for (std::size_t width : {256, 512})
    for (std::size_t depth : {2, 3})
      for (bool use_adam : {true, false}) {
        hydra::model_config config{"w" + std::to_string(width) + " d" + std::to_string(depth) +
                                       (use_adam ? " adam" : " sgd"),
                                   hydra::layers::make_mlp(features, width, depth, classes, batch),
                                   hydra::adam{},
                                   steps,
                                   data(m + 1),
                                   m + 1};
        if (!use_adam) config.optimizer = hydra::sgd_momentum{.learning_rate = 0.05F};
        configs.push_back(std::move(config));
        ++m;
      }
  return configs;
}

hydra::host_backend_options machine() {
  return {.device_budgets = std::vector<std::size_t>(devices, 16_MiB)};
}

// The profile of a short sharp run, as the simulator's workload of the full run.
hydra::sim::workload const& predicted_workload() {
  static std::optional<hydra::sim::workload> w;
  if (!w) {
    hydra::host_backend backend(machine());
    // Every minibatch of the short run after the first is timed.
    hydra::multi_model_trainer trainer(backend, sweep(profile_minibatches), hydra::sharp{},
                                       {.profile_minibatches = profile_minibatches - 1});
    trainer.run();
    w = hydra::sim::to_workload(trainer.profile(), full_minibatches);
  }
  return *w;
}

struct outcome {
  std::vector<double> runs; // measured makespans, in the order run
  double predicted = 0;
  double predicted_without_handoff = 0; // the same profile with handoff_seconds = 0: what charging it is worth

  [[nodiscard]] double measured() const {
    auto sorted = runs;
    std::sort(sorted.begin(), sorted.end());
    return sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
  }
};
std::map<std::string, outcome> outcomes;

void full_run(benchmark::State& state, std::string const& policy) {
  double const predicted = hydra::sim::simulate(predicted_workload(), policy).makespan_seconds;
  auto without_handoff = predicted_workload();
  without_handoff.handoff_seconds = 0;
  double const predicted_without_handoff = hydra::sim::simulate(without_handoff, policy).makespan_seconds;
  double measured = 0;
  for (auto _ : state) {
    hydra::host_backend backend(machine());
    hydra::multi_model_trainer trainer(backend, sweep(full_minibatches), hydra::make_policy(policy, 7));
    trainer.run();
    measured = std::chrono::duration<double>(trainer.report().makespan).count();
    state.SetIterationTime(measured);
  }
  state.counters["measured_s"] = measured;
  state.counters["predicted_s"] = predicted;
  state.counters["predicted_over_measured"] = predicted / measured;
  auto& o = outcomes[policy];
  o.runs.push_back(measured);
  o.predicted = predicted;
  o.predicted_without_handoff = predicted_without_handoff;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      profile_minibatches = 4;
      full_minibatches = 8;
      measured_runs = 1;
    } else {
      args.push_back(argv[i]);
    }
  }
  int count = static_cast<int>(args.size());
  for (std::size_t run = 1; run <= measured_runs; ++run)
    for (std::string policy : {"sharp", "fifo", "model_parallel"})
      benchmark::RegisterBenchmark(("prediction/" + policy + "/run:" + std::to_string(run)).c_str(),
                                   [policy](benchmark::State& state) { full_run(state, policy); })
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kSecond);
  benchmark::Initialize(&count, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::printf("\nA %zu-minibatch profile against %zu-minibatch runs (8 MLPs, %zu host devices of 16 MiB)\n",
              profile_minibatches, full_minibatches, devices);
  if (!outcomes.empty()) {
    auto const& w = predicted_workload();
    double compute = 0, tasks = 0;
    for (auto const& model : w.models) {
      compute += hydra::sim::chain_seconds(model);
      tasks += 2.0 * static_cast<double>(model.shards.size() * model.minibatches);
    }
    std::printf("  the profile: compute %.0f us, launch %.0f us and other host work %.0f us per task (mean); "
                "hand-off %.0f us; links %.2f GB/s in, %.2f GB/s out (device 0); %zu host cores; device speeds "
                "%.3f, %.3f\n",
                compute / tasks * 1e6, w.launch_seconds * 1e6, w.task_host_seconds * 1e6, w.handoff_seconds * 1e6,
                w.devices[0].h2d_bytes_per_second / 1e9, w.devices[0].d2h_bytes_per_second / 1e9, w.host_cores,
                w.devices[0].speed, w.devices[1].speed);
  }
  std::printf("  %-15s %11s %11s %10s %22s  %s\n", "policy", "measured s", "predicted s", "ratio",
              "ratio without hand-off", "each run, s");
  for (auto const& [policy, o] : outcomes) {
    double const ratio = o.predicted / o.measured();
    bool const within = ratio >= 0.85 && ratio <= 1.15;
    std::string each;
    for (double r : o.runs) each += (each.empty() ? "" : " / ") + std::to_string(r).substr(0, 5);
    std::printf("  %-15s %11.2f %11.2f %10.3f %22.3f  %s  (target 0.85-1.15: %s)\n", policy.c_str(), o.measured(),
                o.predicted, ratio, o.predicted_without_handoff / o.measured(), each.c_str(),
                within ? "met" : "MISSED");
  }
  if (outcomes.contains("model_parallel") && outcomes.size() > 1) {
    bool ranks = true;
    for (auto const& [policy, o] : outcomes) {
      if (policy == "model_parallel") continue;
      auto const& mp = outcomes.at("model_parallel");
      ranks = ranks && ((o.measured() < mp.measured()) == (o.predicted < mp.predicted));
    }
    std::printf("  model_parallel against the shard-parallel policies: %s\n",
                ranks ? "ranked as measured" : "RANKED OTHERWISE than measured");
  }
  return 0;
}
