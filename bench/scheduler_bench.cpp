// Scheduler decision time: one decide (the policy scanning the ready set) plus
// one complete (the successor joining it) per iteration, with 10, 100 and 1,000
// models ready. Claim: <= 1 us per decision at 1,000 ready models.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/scheduler_core.hpp"
#include "ratio_reporter.hpp"

namespace {

template <class MakePolicy>
void decide_and_complete(benchmark::State& state, MakePolicy make, std::size_t models) {
  auto policy = make();
  std::vector<hydra::model_costs> costs;
  for (std::size_t m = 0; m < models; ++m) {
    double const scale = 1.0 + static_cast<double>(m % 17);
    // Chains far longer than any iteration count Google Benchmark may pick
    // (2^40 minibatches of 6 tasks), so that no model ever finishes.
    costs.push_back({{scale, 2 * scale, scale}, {2 * scale, 4 * scale, 2 * scale}, std::size_t{1} << 40});
  }
  hydra::scheduler_core core(std::move(costs), 8);
  core.keep_decision_log(false);
  std::size_t device = 0;
  for (auto _ : state) {
    auto const chosen = core.decide(policy, device);
    benchmark::DoNotOptimize(chosen);
    core.complete(*chosen);
    device = (device + 1) % 8;
  }
  state.counters["ready_models"] = static_cast<double>(models);
}

} // namespace

int main(int argc, char** argv) {
  for (std::size_t models : {10UL, 100UL, 1000UL}) {
    std::string const argument = std::to_string(models);
    auto add = [&](char const* variant, auto make) {
      benchmark::RegisterBenchmark(hydra::bench::name(variant, argument).c_str(), decide_and_complete<decltype(make)>,
                                   make, models);
    };
    add("decide/sharp", [] { return hydra::sharp{}; });
    add("decide/fifo", [] { return hydra::fifo{}; });
    add("decide/round_robin", [] { return hydra::round_robin{}; });
    add("decide/random_pick", [] { return hydra::random_pick{1}; });
    add("decide/sharp_any_policy", [] { return hydra::make_policy("sharp"); });
  }
  // The claim is an absolute time per decision, so no ratios are listed; the
  // shared runner still fails when a filter matches nothing.
  return hydra::bench::run_with_ratios(argc, argv, {});
}
