// Shard parallelism on the host backend: 8 models, each 4x larger than a
// device's budget, trained on 2 and on 4 virtual devices under sharp,
// model_parallel and random_pick. Reported: makespan, and sharp's speedup over
// model_parallel measured in the same run; and what guard mode costs (the
// sharp sweep with every layer call on guarded copies of its regions, over
// the same sweep without), and what keeping activations and checkpoints on
// the devices changes (the sharp sweep with keep_activations and
// keep_activation_checkpoints over the same sweep without), and what keeping
// each forward's activations for its backward changes (keep_forward_activations
// over the same sweep without), and what leaving each update on its device
// until its shard is evicted changes (write_back_on_eviction over the same
// sweep without; its counters give the state bytes sent home). Note the machine: every virtual
// device's compute stream is a CPU thread, and this machine has 2 cores, so no
// policy can go beyond about 2x here, whatever the device count.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "ratio_reporter.hpp"

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t features = 64, classes = 10, batch = 32, steps = 4, models = 8;

hydra::sequential_model<context> mlp(std::size_t width, std::size_t depth) {
  return hydra::layers::make_mlp(features, width, depth, classes, batch);
}

hydra::minibatch make_minibatch(std::size_t step) {
  return hydra::synthetic_classification{.features = features,
                                         .classes = classes,
                                         .batch = batch,
                                         .labels = hydra::synthetic_classification::label_rule::random,
                                         .seed = 1}(step);
}

// Widths 128..160 and depths 16..20: different sizes, so that policies differ,
// and every model at least 4x the device budget.
std::vector<hydra::model_config> sweep() {
  std::vector<hydra::model_config> configs;
  for (std::size_t m = 0; m < models; ++m) {
    std::size_t const width = 128 + 16 * (m % 3), depth = 16 + m % 5;
    hydra::model_config config{
        "model " + std::to_string(m), mlp(width, depth), hydra::adam{}, steps, make_minibatch, m + 1};
    if (m % 2 == 1) config.optimizer = hydra::sgd_momentum{};
    configs.push_back(std::move(config));
  }
  return configs;
}

std::size_t device_budget() {
  // A quarter of the smallest model's footprint: every model is at least 4x a device.
  return hydra::align_down(hydra::single_model_trainer<hydra::adam>::footprint(mlp(128, 16)) / 4, 256);
}

void train_sweep(benchmark::State& state, std::string const& policy, std::size_t devices, bool guard_layers, bool keep,
                 bool keep_forward, bool write_back_on_eviction) {
  hydra::sweep_report last;
  for (auto _ : state) {
    hydra::host_backend backend({.device_budgets = std::vector<std::size_t>(devices, device_budget())});
    hydra::multi_model_trainer trainer(backend, sweep(), hydra::make_policy(policy, 7),
                                       {.guard_layers = guard_layers,
                                        .keep_activations = keep,
                                        .keep_activation_checkpoints = keep,
                                        .keep_forward_activations = keep_forward,
                                        .write_back_on_eviction = write_back_on_eviction});
    trainer.run();
    last = trainer.report();
  }
  double busy = 0;
  for (double fraction : last.device_busy_fraction) busy += fraction;
  state.counters["mean_device_busy"] = busy / static_cast<double>(devices);
  state.counters["hidden_transfer"] = last.hidden_transfer_fraction;
  state.counters["MB_to_device"] = static_cast<double>(last.bytes_to_device) / 1e6;
  state.counters["MB_to_host"] = static_cast<double>(last.bytes_to_host) / 1e6;
  state.counters["write_backs"] = static_cast<double>(last.write_backs);
  state.counters["moves"] = static_cast<double>(last.cross_device_moves);
  state.counters["activation_MB_in"] = static_cast<double>(last.activation_bytes_to_device) / 1e6;
  state.counters["recomputations_avoided"] = static_cast<double>(last.recomputations_avoided);
}

} // namespace

int main(int argc, char** argv) {
  auto add = [](std::string const& family_and_variant, std::string const& argument, std::string const& policy,
                std::size_t devices, bool guard_layers, bool keep, bool keep_forward = false,
                bool write_back_on_eviction = false) {
    benchmark::RegisterBenchmark(hydra::bench::name(family_and_variant, argument).c_str(), train_sweep, policy, devices,
                                 guard_layers, keep, keep_forward, write_back_on_eviction)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(2);
  };
  for (std::size_t devices : {2UL, 4UL})
    for (std::string const policy : {"sharp", "model_parallel", "random_pick"})
      add("sweep/" + policy, std::to_string(devices) + "_devices", policy, devices, false, false);
  for (bool const on : {false, true}) {
    add(on ? "guard/on" : "guard/off", "2_devices", "sharp", 2, on, false);
    add(on ? "kept/on" : "kept/off", "2_devices", "sharp", 2, false, on);
    add(on ? "forward/on" : "forward/off", "2_devices", "sharp", 2, false, false, on);
    add(on ? "write_back/on" : "write_back/off", "2_devices", "sharp", 2, false, false, false, on);
  }
  return hydra::bench::run_with_ratios(
      argc, argv,
      {{"sweep", "sharp", "model_parallel", 0, true, "sharp's speedup over model_parallel (makespan ratio)"},
       {"sweep", "random_pick", "model_parallel", 0, true, "random_pick's speedup over model_parallel"},
       {"guard", "on", "off", 0, false, "guard mode's makespan over the same sweep without it (sharp)"},
       {"kept", "on", "off", 0, false,
        "makespan with activations and checkpoints kept on the devices over the same sweep without (sharp)"},
       {"forward", "on", "off", 0, false,
        "makespan with forward activations kept for the backwards over the same sweep without (sharp)"},
       {"write_back", "on", "off", 0, false,
        "makespan with updates written home only at eviction over the same sweep without (sharp)"}});
}
