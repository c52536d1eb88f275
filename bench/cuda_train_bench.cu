// Training on the CUDA backend, for a session with a GPU. Without one it says
// so and exits 77 (ctest: skipped); where CUDA is broken it fails. Ratios in one run:
//  - mlp: a cuBLAS MLP (Adam, fp32) trained spilled, with a device budget of a
//    quarter of its footprint, against the same model fully resident: minibatch
//    throughput spilled / resident, target >= 0.9. Arguments: width x batch
//    (depth 16, 1024 input features), so that the table shows where the copies
//    hide behind compute and where they cannot (small batches: too little
//    compute per byte of Adam state). Also spilled with each shard's forward
//    activations kept for its backward where room allows (no recomputation
//    there), against resident and against spilled without;
//  - sweep: 8 cuBLAS MLPs on one GPU, each 1.25-4x its budget, under sharp against
//    model_parallel (makespan ratio), with the device's busy fraction.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "gpu/device_gate.hpp"
#include "hydra/cuda.cuh"
#include "ratio_reporter.hpp"

using namespace hydra::literals;

namespace {

// Depth 16: at a quarter of the footprint a shard may use an eighth of it (half
// the budget), which must hold the largest layer (checked with the host
// partitioner for every width x batch below: 15-16 shards).
constexpr std::size_t features = 1024, classes = 10, depth = 16, steps = 4;

hydra::data_source random_data(std::size_t batch) {
  auto data = std::make_shared<hydra::minibatch>(
      hydra::synthetic_classification{.features = features,
                                      .classes = classes,
                                      .batch = batch,
                                      .labels = hydra::synthetic_classification::label_rule::random,
                                      .seed = 1}(0));
  return [data](std::size_t) { return *data; };
}

std::size_t footprint(std::size_t width, std::size_t batch) {
  return hydra::cuda::single_model_trainer<hydra::adam>::footprint(
      hydra::cuda::layers::make_mlp(features, width, depth, classes, batch));
}

void train_mlp(benchmark::State& state, std::size_t width, std::size_t batch, bool spilled,
               bool keep_forward_activations = false) {
  std::size_t const whole = footprint(width, batch);
  // Resident: a shard may use half the budget, so twice the footprint keeps the
  // model in one shard.
  std::size_t const budget = hydra::align_down(spilled ? whole / 4 : 2 * whole + 1_MiB, 256);
  hydra::cuda::cuda_backend backend({.device_budgets = {budget}});
  hydra::cuda::single_model_trainer<hydra::adam> trainer(
      backend, hydra::cuda::layers::make_mlp(features, width, depth, classes, batch), hydra::adam{},
      {.budget = budget, .keep_forward_activations = keep_forward_activations});
  auto const data = random_data(batch);
  trainer.train(1, data); // warm-up: cuBLAS and cuDNN handles, first fetches
  for (auto _ : state) trainer.train(steps, data);
  state.counters["shards"] = static_cast<double>(trainer.shards().size());
  state.counters["footprint_MB"] = static_cast<double>(whole) / 1e6;
  state.counters["recomputations_avoided"] = static_cast<double>(trainer.engine().statistics().recomputations_avoided);
  state.counters["minibatches_per_s"] =
      benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsIterationInvariantRate);
}

void train_sweep(benchmark::State& state, std::string const& policy) {
  std::size_t const batch = 1024;
  std::vector<std::size_t> const widths{1024, 1536, 2048, 1024, 1536, 2048, 1280, 1792};
  // A quarter of the largest model's footprint: its 2048x2048 layers must fit a
  // shard (half the budget); the models are 1.25x (width 1024, 3 shards) to 4x
  // (width 2048, 15 shards) the budget.
  std::size_t const budget = hydra::align_down(footprint(2048, batch) / 4, 256);
  hydra::sweep_report last;
  for (auto _ : state) {
    std::vector<hydra::cuda::model_config> configs;
    for (std::size_t m = 0; m < widths.size(); ++m) {
      configs.push_back({"model " + std::to_string(m),
                         hydra::cuda::layers::make_mlp(features, widths[m], depth, classes, batch), hydra::adam{},
                         steps, random_data(batch), m + 1});
      if (m % 2 == 1) configs.back().optimizer = hydra::sgd_momentum{};
    }
    hydra::cuda::cuda_backend backend({.device_budgets = {budget}});
    hydra::cuda::multi_model_trainer trainer(backend, std::move(configs), hydra::make_policy(policy));
    trainer.run();
    last = trainer.report();
  }
  state.counters["device_busy"] = last.device_busy_fraction.at(0);
  state.counters["GB_to_device"] = static_cast<double>(last.bytes_to_device) / 1e9;
  state.counters["budget_MB"] = static_cast<double>(budget) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
  if (auto const exit_code = gpu_testing::pass_gate("cuda_train_bench")) return *exit_code;
  for (std::size_t width : {2048UL, 4096UL})
    for (std::size_t batch : {512UL, 2048UL, 8192UL}) {
      std::string const argument = std::to_string(width) + "x" + std::to_string(batch);
      for (char const* variant : {"resident", "spilled", "spilled_kept"})
        benchmark::RegisterBenchmark(hydra::bench::name(std::string("mlp/") + variant, argument).c_str(), train_mlp,
                                     width, batch, variant != std::string("resident"),
                                     variant == std::string("spilled_kept"))
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->Iterations(3);
    }
  for (std::string const policy : {"sharp", "model_parallel"})
    benchmark::RegisterBenchmark(hydra::bench::name("sweep/" + policy, "8_models").c_str(), train_sweep, policy)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(1);
  return hydra::bench::run_with_ratios(
      argc, argv,
      {{"mlp", "spilled", "resident", 0.9, true, "minibatch throughput spilled (budget = footprint/4) / resident"},
       {"mlp", "spilled_kept", "resident", 0.9, true,
        "the same, spilled with forward activations kept where room allows / resident"},
       {"mlp", "spilled_kept", "spilled", 0, true, "spilled with forward activations kept / without"},
       {"sweep", "sharp", "model_parallel", 0, true, "sharp's speedup over model_parallel on one GPU"}});
}
