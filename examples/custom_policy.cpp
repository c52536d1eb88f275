// A user-written scheduling policy: "shortest remaining work first", the
// opposite of hydra's default (SHARP). Anything with name() and pick() that
// satisfies hydra::policy plugs in; this trains a sweep of 6 models, each 4x
// larger than a device, on 2 virtual devices with it, then with sharp.
#include <hydra/hydra.hpp>
#include <hydra/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

struct shortest_remaining_first {
  std::string name() const { return "shortest_remaining_first"; }
  std::optional<std::size_t> pick(std::span<hydra::ready_task const> ready, hydra::device_view const&) const {
    if (ready.empty()) return std::nullopt;
    std::size_t best = 0;
    for (std::size_t at = 1; at < ready.size(); ++at)
      if (ready[at].remaining_seconds < ready[best].remaining_seconds) best = at;
    return best;
  }
};
static_assert(hydra::policy<shortest_remaining_first>);

constexpr std::size_t features = 32, classes = 4, batch = 16;

hydra::sequential_model<context> mlp(std::size_t width, std::size_t depth) {
  return hydra::layers::make_mlp(features, width, depth, classes, batch);
}

// The class is the largest of the first `classes` features: a task to learn.
hydra::minibatch make_minibatch(std::size_t step) {
  return hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch}(step);
}

std::vector<hydra::model_config> sweep() {
  std::vector<hydra::model_config> configs;
  for (std::size_t m = 0; m < 6; ++m) {
    float const rate = m % 2 == 0 ? 1e-3F : 3e-3F;
    configs.push_back({"adam lr " + std::to_string(rate) + " depth " + std::to_string(12 + 2 * m), mlp(48, 12 + 2 * m),
                       hydra::adam{.learning_rate = rate}, 10 + 5 * m, make_minibatch, m + 1});
  }
  return configs;
}

void run(hydra::any_policy policy, std::size_t budget) {
  hydra::host_backend backend({.device_budgets = {budget, budget}});
  hydra::multi_model_trainer trainer(backend, sweep(), std::move(policy), {.record_trace = true});
  trainer.run();
  auto const report = trainer.report();
  std::printf("%s: makespan %.0f ms, devices busy %.0f%% / %.0f%%\n", report.policy.c_str(),
              static_cast<double>(report.makespan.count()) / 1e6, 100 * report.device_busy_fraction[0],
              100 * report.device_busy_fraction[1]);
  std::string const trace = report.policy + "_trace.json";
  std::ofstream out(trace);
  hydra::write_chrome_trace(out, trainer.trace());
  std::printf("  schedule written to %s (open it in ui.perfetto.dev)\n%s", trace.c_str(),
              hydra::trace_summary(trainer.trace()).c_str());
  for (auto const& result : trainer.results())
    std::printf("  %-28s %2zu steps, finished at %4.0f ms, loss %.3f -> %.3f\n", result.name.c_str(), result.steps,
                static_cast<double>(result.finished.count()) / 1e6, static_cast<double>(result.losses.front()),
                static_cast<double>(result.losses.back()));
}

} // namespace

int main() {
  std::size_t const budget =
      hydra::align_down(hydra::single_model_trainer<hydra::adam>::footprint(mlp(48, 12)) / 4, 256);
  std::printf("device budget %s: each model is at least 4x that\n", hydra::format_bytes(budget).c_str());
  run(shortest_remaining_first{}, budget);
  run(hydra::sharp{}, budget);
}
