// The runtime's own cost per task: a sweep of 8 models of 8 shards whose layers
// do no work, on 2 host devices, so that the wall time is what hydra spends per
// task (the driver's decision, the spill engine's bookkeeping, enqueueing the
// copies, stream hand-offs and the completion coming back). Claim: at most
// 20 us per task. With layers at BLAS speed a small shard's task takes about a
// millisecond, so this is a few percent of every sweep.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t features = 8, batch = 4, shards = 8, models = 8, steps = 16, parameters = 256;

// A layer that enqueues nothing: its footprint is real (the runtime moves its
// parameters), its arithmetic is absent.
struct idle_layer {
  std::size_t parameters;
  [[nodiscard]] std::string name() const { return "idle"; }
  [[nodiscard]] hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = parameters, .input_features = features, .output_features = features};
  }
  void initialize(float* values, std::uint64_t) const {
    for (std::size_t k = 0; k < parameters; ++k) values[k] = 0.0F;
  }
  void forward(context&, hydra::forward_arguments const&) const {}
  void backward(context&, hydra::backward_arguments const&) const {}
};

// A loss that writes zero losses (the trainer checks them for being finite) and no gradient.
struct idle_loss {
  static constexpr bool is_loss = true;
  [[nodiscard]] std::string name() const { return "idle loss"; }
  [[nodiscard]] hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = 0, .input_features = features, .output_features = 1};
  }
  void initialize(float*, std::uint64_t) const {}
  void forward(context& on, hydra::forward_arguments const& a) const {
    on.enqueue([output = a.output, n = a.batch] {
      for (std::size_t b = 0; b < n; ++b) output[b] = 0.0F;
    });
  }
  void backward(context&, hydra::backward_arguments const&) const {}
};

// 8 layers of 256 parameters (so that copies and optimizer steps are tiny): with
// a 12 KiB budget a layer's working set (about 4.3 KiB) fits half of it and two
// do not, so each layer is its own shard.
constexpr std::size_t budget = 12 * 1024;
hydra::sequential_model<context> idle_model() {
  std::vector<hydra::any_layer<context>> stack;
  for (std::size_t k = 0; k < shards; ++k) stack.emplace_back(idle_layer{parameters});
  stack.emplace_back(idle_loss{});
  return hydra::sequential_model<context>(std::move(stack), batch);
}

hydra::minibatch zeros(std::size_t) {
  return {std::vector<float>(batch * features, 0.0F), std::vector<std::int32_t>(batch, 0)};
}

void runtime_cost_per_task(benchmark::State& state) {
  std::vector<hydra::model_config> configs;
  for (std::size_t m = 0; m < models; ++m)
    configs.push_back({"idle " + std::to_string(m), idle_model(), hydra::sgd_momentum{}, steps, zeros, m});
  std::size_t tasks = 0;
  double seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // One backend per iteration: the trainer's pools reserve each device whole.
    hydra::host_backend backend({.device_budgets = {budget, budget}});
    hydra::multi_model_trainer trainer(backend, configs, hydra::sharp{});
    state.ResumeTiming();
    auto const started = std::chrono::steady_clock::now();
    trainer.run();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    state.PauseTiming();
    for (std::size_t m = 0; m < models; ++m) {
      if (trainer.shards_of(m).size() != shards) state.SkipWithError("a model did not split into 8 shards");
      if (trainer.results()[m].failure) state.SkipWithError(trainer.results()[m].failure->c_str());
    }
    tasks += trainer.report().decisions.size();
    state.ResumeTiming();
  }
  state.counters["us_per_task"] = tasks == 0 ? 0.0 : seconds / static_cast<double>(tasks) * 1e6;
  state.counters["tasks_per_sweep"] = static_cast<double>(tasks) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(tasks));
}

} // namespace

BENCHMARK(runtime_cost_per_task)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
