// Model selection on one search space, measured in one run: the full grid
// (every configuration to the end), synchronous successive halving and ASHA,
// through the main job's own code on Fashion-MNIST. Reported for each search:
// makespan; compute in minibatch-equivalents, a validation minibatch counting
// a third of a training one (a forward pass against a forward and a backward,
// hydra's backward recomputing the forward); compute as a fraction of the
// grid's; and how far the chosen configuration falls short of the grid's best,
// in points of validation accuracy, both measured in the grid run (a survivor
// of a halving search trains to the end on the grid's data, seed and steps, so
// its weights are the grid's for that configuration, bitwise).
#include <benchmark/benchmark.h>

#include <cmath>
#include <exception>
#include <map>
#include <sstream>
#include <string>

#include "sweep.hpp"

namespace {

struct space {
  std::string grid;
  std::size_t image_side, train_subset, epochs, batch;
  std::string schedule = "cosine";
};

model_selection::options options_for(space const& s, std::string const& search) {
  model_selection::options o;
  o.grid = s.grid;
  o.image_side = s.image_side;
  o.train_subset = s.train_subset;
  o.test_subset = 2'000;
  o.epochs = s.epochs;
  o.batch = s.batch;
  o.search = search;
  o.schedule = s.schedule;
  if (s.grid == "tiny") o.budget_bytes = 800 * 1024; // the tiny models' layers need less
  return o;
}

double compute_of(model_selection::outcome const& r) {
  return static_cast<double>(r.minibatches_trained) + static_cast<double>(r.minibatches_evaluated) / 3.0;
}

// The grid's run of each space, kept for the searches that follow it in the same process.
std::map<std::string, model_selection::outcome>& grid_runs() {
  static std::map<std::string, model_selection::outcome> runs;
  return runs;
}

void search(benchmark::State& state, space const& s, std::string const& name) {
  std::ostringstream log;
  model_selection::outcome result;
  try {
    for (auto _ : state) result = model_selection::run(options_for(s, name), log);
  } catch (std::exception const& e) { // e.g. the data set is missing: say so, and go on to the next
    state.SkipWithError(e.what());
    return;
  }
  if (!result.chosen) {
    state.SkipWithError("no model was chosen");
    return;
  }
  std::string const key = s.grid + std::to_string(s.image_side) + s.schedule;
  if (name == "grid") grid_runs()[key] = result;
  auto const found = grid_runs().find(key);
  if (found == grid_runs().end()) {
    state.SkipWithError("run the grid first (the benchmarks run in registration order)");
    return;
  }
  auto const& grid = found->second;
  double const best = grid.models[*grid.chosen].validation->accuracy;
  double const chosen_in_grid = grid.models[*result.chosen].validation->accuracy;
  state.counters["makespan_s"] = result.makespan_seconds;
  state.counters["compute_minibatches"] = compute_of(result);
  state.counters["compute_vs_grid"] = compute_of(result) / compute_of(grid);
  state.counters["shortfall_points"] = 100 * (best - chosen_in_grid);
  state.counters["chosen_val_acc"] = result.models[*result.chosen].validation->accuracy;
  state.counters["chosen_test_acc"] = result.models[*result.chosen].test_accuracy;
  state.SetLabel(result.models[*result.chosen].config.name());
}

// The default grid (8 MLPs and 4 CNNs) on 14x14 images, all the data, 4
// epochs; the earlier default, 12 MLPs at a constant learning rate, the same
// way; "tiny" is the smoke test's.
space const main_space{"default", 14, 0, 4, 64};
space const mlp_space{"mlp", 14, 0, 4, 64, "constant"};
space const tiny_space{"tiny", 14, 768, 2, 32};

} // namespace

BENCHMARK_CAPTURE(search, default / grid, main_space, "grid")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, default / sha, main_space, "sha")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, default / asha, main_space, "asha")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, mlp / grid, mlp_space, "grid")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, mlp / sha, mlp_space, "sha")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, mlp / asha, mlp_space, "asha")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, tiny / grid, tiny_space, "grid")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, tiny / sha, tiny_space, "sha")->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(search, tiny / asha, tiny_space, "asha")->Iterations(1)->Unit(benchmark::kSecond);

BENCHMARK_MAIN();
