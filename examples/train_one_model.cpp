// Trains one MLP whose training footprint is 4x its (virtual) device's memory:
// hydra cuts it into shards, keeps their state in host memory, and moves each
// shard onto the device just before its task, behind the running one.
//
// Task: classify points by which of 10 random "teacher" directions they align
// with best (synthetic, generated on the fly, so nothing to download).
#include <hydra/hydra.hpp>

#include <cstdio>
#include <random>
#include <vector>

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t features = 64, width = 128, depth = 12, classes = 10, batch = 64, steps = 200;

// A learnable task: the label is the best class under a fixed random linear map.
hydra::minibatch make_minibatch(std::size_t step) {
  return hydra::synthetic_classification{.features = features,
                                         .classes = classes,
                                         .batch = batch,
                                         .labels = hydra::synthetic_classification::label_rule::linear_teacher}(step);
}

} // namespace

int main() {
  auto const model = hydra::layers::make_mlp(features, width, depth, classes, batch);

  using trainer_type = hydra::single_model_trainer<hydra::adam>;
  std::size_t const footprint = trainer_type::footprint(model);
  std::size_t const budget = hydra::align_down(footprint / 4, 256);
  hydra::host_backend backend({.device_budgets = {budget}});
  trainer_type trainer(backend, model, hydra::adam{.learning_rate = 1e-3F});

  std::printf("model: %zu layers, %zu parameters, training footprint %s\n", model.size(), model.parameter_count(),
              hydra::format_bytes(footprint).c_str());
  std::printf("device budget: %s (a quarter of it) -> %zu shards, each at most %s\n",
              hydra::format_bytes(budget).c_str(), trainer.shards().size(),
              hydra::format_bytes(trainer.shards().shard_limit()).c_str());

  trainer.train(steps, make_minibatch);

  auto const& losses = trainer.losses();
  for (std::size_t step = 0; step < losses.size(); step += 40)
    std::printf("step %3zu  loss %.4f\n", step + 1, static_cast<double>(losses[step]));
  std::printf("step %3zu  loss %.4f\n", losses.size(), static_cast<double>(losses.back()));

  auto const report = trainer.report();
  std::printf("moved %s to the device and %s back; %llu evictions; peak device use %s of %s\n",
              hydra::format_bytes(report.spill.bytes_to_device).c_str(),
              hydra::format_bytes(report.spill.bytes_to_host).c_str(),
              static_cast<unsigned long long>(report.spill.evictions),
              hydra::format_bytes(report.device_memory.peak_in_use).c_str(),
              hydra::format_bytes(report.device_memory.capacity).c_str());
  std::printf("compute waited on prefetches %.1f%% of its time; wall time %.2f s\n",
              100.0 * report.exposed_wait_fraction(), static_cast<double>(report.wall.count()) / 1e9);
  return losses.back() < losses.front() ? 0 : 1;
}
