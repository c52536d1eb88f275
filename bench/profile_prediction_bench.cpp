// Does a short run's profile predict the full run? The workflow README's
// "Choosing a policy" recommends: profile a short run of the sweep (three, on
// a noisy machine), then ask the simulator. Here 8 MLPs shaped like the main
// job's (784 inputs, widths 256 and 512, depths 2 and 3, Adam and SGD, batch
// 64) share 2 host devices of 16 MiB. Three rounds, each of: a profiled run of
// 20 minibatches per model (sharp), then a measured run of 200 minibatches per
// model under sharp, fifo and model_parallel. On a shared machine one run now
// and then takes half as long again as the others, in every policy alike:
// that is the machine's noise, not the prediction's error. So the measurement
// is each policy's median run, and the prediction is the simulator's from the
// median of the three profiles (hydra::sim::median_workload), each taken at
// a different time; each profile's own prediction is printed too.
// Reported per policy: measured and predicted makespan and their ratio (the
// claim: within 15%), and whether the prediction ranks model_parallel against
// the shard-parallel policies as the measurement does.
//
// `--quick` (the ctest smoke run): 4 and 8 minibatches and one round, for a
// program that runs to its end, not for figures.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "hydra/core/median.hpp"
#include "hydra/hydra.hpp"
#include "hydra/sim/median_workload.hpp"
#include "hydra/sim/profile_workload.hpp"
#include "hydra/sim/simulator.hpp"

using namespace hydra::literals;

namespace {

constexpr std::size_t features = 784, classes = 10, batch = 64, devices = 2;
std::size_t profile_minibatches = 20, full_minibatches = 200, rounds = 3;

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

// Each round's profile of a short sharp run, as the simulator's workload of the full run.
std::vector<hydra::sim::workload> profiles;

void profile_run(benchmark::State& state) {
  for (auto _ : state) {
    hydra::host_backend backend(machine());
    // Every minibatch of the short run after the first is timed.
    hydra::multi_model_trainer trainer(backend, sweep(profile_minibatches), hydra::sharp{},
                                       {.profile_minibatches = profile_minibatches - 1});
    trainer.run();
    state.SetIterationTime(std::chrono::duration<double>(trainer.report().makespan).count());
    profiles.push_back(hydra::sim::to_workload(trainer.profile(), full_minibatches));
  }
}

std::map<std::string, std::vector<double>> measured_runs; // per policy, in the order run

void full_run(benchmark::State& state, std::string const& policy) {
  double measured = 0;
  for (auto _ : state) {
    hydra::host_backend backend(machine());
    hydra::multi_model_trainer trainer(backend, sweep(full_minibatches), hydra::make_policy(policy, 7));
    trainer.run();
    measured = std::chrono::duration<double>(trainer.report().makespan).count();
    state.SetIterationTime(measured);
  }
  state.counters["measured_s"] = measured;
  measured_runs[policy].push_back(measured);
}

} // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      profile_minibatches = 4;
      full_minibatches = 8;
      rounds = 1;
    } else {
      args.push_back(argv[i]);
    }
  }
  int count = static_cast<int>(args.size());
  for (std::size_t round = 1; round <= rounds; ++round) {
    benchmark::RegisterBenchmark(("prediction/profile/round:" + std::to_string(round)).c_str(), profile_run)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kSecond);
    for (std::string policy : {"sharp", "fifo", "model_parallel"})
      benchmark::RegisterBenchmark(("prediction/" + policy + "/round:" + std::to_string(round)).c_str(),
                                   [policy](benchmark::State& state) { full_run(state, policy); })
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kSecond);
  }
  benchmark::Initialize(&count, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::printf("\nA %zu-minibatch profile against %zu-minibatch runs (8 MLPs, %zu host devices of 16 MiB)\n",
              profile_minibatches, full_minibatches, devices);
  if (profiles.empty() || measured_runs.empty()) return 0; // a filter left the profiles or the runs out
  auto const describe = [](hydra::sim::workload const& w, char const* which) {
    double compute = 0, tasks = 0;
    for (auto const& model : w.models) {
      compute += hydra::sim::chain_seconds(model);
      tasks += 2.0 * static_cast<double>(model.shards.size() * model.minibatches);
    }
    std::printf("  %s: compute %.0f us, launch %.0f us and other host work %.0f us per task (mean); hand-off %.0f us; "
                "links %.2f GB/s in, %.2f GB/s out (device 0); %zu host cores; device speeds %.3f, %.3f\n",
                which, compute / tasks * 1e6, w.launch_seconds * 1e6, w.task_host_seconds * 1e6,
                w.handoff_seconds * 1e6, w.devices[0].h2d_bytes_per_second / 1e9,
                w.devices[0].d2h_bytes_per_second / 1e9, w.host_cores, w.devices[0].speed, w.devices[1].speed);
  };
  for (std::size_t p = 0; p < profiles.size(); ++p) describe(profiles[p], ("profile " + std::to_string(p + 1)).c_str());
  auto const combined = hydra::sim::median_workload(profiles);
  if (profiles.size() > 1) describe(combined, "their median");
  auto without_handoff = combined;
  without_handoff.handoff_seconds = 0;

  std::printf("  %-15s %11s %11s %10s %22s  %-22s %s\n", "policy", "measured s", "predicted s", "ratio",
              "ratio without hand-off", "each run, s", "each profile's ratio");
  std::map<std::string, double> predicted;
  for (auto const& [policy, runs] : measured_runs) {
    double const measured = hydra::detail::median(runs);
    predicted[policy] = hydra::sim::simulate(combined, policy).makespan_seconds;
    double const ratio = predicted[policy] / measured;
    bool const within = ratio >= 0.85 && ratio <= 1.15;
    std::string each, each_profile;
    for (double r : runs) each += (each.empty() ? "" : " / ") + std::to_string(r).substr(0, 5);
    for (auto const& w : profiles)
      each_profile += (each_profile.empty() ? "" : " / ") +
                      std::to_string(hydra::sim::simulate(w, policy).makespan_seconds / measured).substr(0, 5);
    std::printf("  %-15s %11.2f %11.2f %10.3f %22.3f  %-22s %s  (target 0.85-1.15: %s)\n", policy.c_str(), measured,
                predicted[policy], ratio, hydra::sim::simulate(without_handoff, policy).makespan_seconds / measured,
                each.c_str(), each_profile.c_str(), within ? "met" : "MISSED");
  }
  if (measured_runs.contains("model_parallel") && measured_runs.size() > 1) {
    bool ranks = true;
    double const mp_measured = hydra::detail::median(measured_runs.at("model_parallel"));
    for (auto const& [policy, runs] : measured_runs) {
      if (policy == "model_parallel") continue;
      ranks =
          ranks && ((hydra::detail::median(runs) < mp_measured) == (predicted[policy] < predicted["model_parallel"]));
    }
    std::printf("  model_parallel against the shard-parallel policies: %s\n",
                ranks ? "ranked as measured" : "RANKED OTHERWISE than measured");
  }
  return 0;
}
