// Several profiles of one sweep combined at their medians: every time and rate
// is the median of the profiles', everything counted or sized is what all of
// them have, and profiles of different sweeps or machines are refused, named.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hydra/sim/median_workload.hpp"
#include "hydra/sim/presets.hpp"
#include "hydra/sim/simulator.hpp"

namespace sim = hydra::sim;

namespace {

// `w` with every time multiplied and every rate divided by `slower`: the
// same sweep profiled while the machine ran that much slower.
sim::workload slowed(sim::workload w, double slower) {
  for (auto& model : w.models)
    for (auto& shard : model.shards) {
      shard.forward_seconds *= slower;
      shard.backward_seconds *= slower;
    }
  for (auto& device : w.devices) {
    device.h2d_bytes_per_second /= slower;
    device.d2h_bytes_per_second /= slower;
    device.latency_seconds *= slower;
  }
  w.launch_seconds *= slower;
  w.task_host_seconds *= slower;
  w.handoff_seconds *= slower;
  return w;
}

sim::workload profiled() {
  auto w = sim::random_workload(5);
  w.devices = sim::identical_devices(2, w.devices.front());
  w.launch_seconds = 2e-4;
  w.task_host_seconds = 6e-4;
  w.handoff_seconds = 5e-5;
  w.host_cores = 2;
  return w;
}

} // namespace

TEST_CASE("each time and rate is the median of the profiles', and sizes and counts are kept") {
  auto const base = profiled();
  std::vector<sim::workload> const three{slowed(base, 1.0), slowed(base, 1.5), slowed(base, 1.2)};
  auto const median = sim::median_workload(three);
  auto const& shard = median.models.at(1).shards.at(0);
  CHECK(shard.forward_seconds == doctest::Approx(base.models.at(1).shards.at(0).forward_seconds * 1.2));
  CHECK(shard.backward_seconds == doctest::Approx(base.models.at(1).shards.at(0).backward_seconds * 1.2));
  CHECK(shard.state_bytes == base.models.at(1).shards.at(0).state_bytes);
  CHECK(median.devices.at(0).h2d_bytes_per_second == doctest::Approx(base.devices.at(0).h2d_bytes_per_second / 1.2));
  CHECK(median.launch_seconds == doctest::Approx(2e-4 * 1.2));
  CHECK(median.task_host_seconds == doctest::Approx(6e-4 * 1.2));
  CHECK(median.handoff_seconds == doctest::Approx(5e-5 * 1.2));
  CHECK(median.host_cores == 2);
  CHECK(median.models.size() == base.models.size());
  CHECK(median.description.find("median of 3 profiles") != std::string::npos);

  // Of two, the mean of both; of one, that one unchanged.
  std::vector<sim::workload> const two{slowed(base, 1.0), slowed(base, 1.5)};
  CHECK(sim::median_workload(two).task_host_seconds == doctest::Approx(6e-4 * 1.25));
  auto const alone = sim::median_workload(std::vector<sim::workload>{base});
  CHECK(alone.task_host_seconds == base.task_host_seconds);
  CHECK(alone.description == base.description);
}

TEST_CASE("a profile taken in a slow phase is outvoted: the median predicts what the others do") {
  auto const base = profiled();
  std::vector<sim::workload> const runs{slowed(base, 1.0), slowed(base, 1.6), slowed(base, 1.0)};
  double const fast = sim::simulate(base, "sharp").makespan_seconds;
  double const slow = sim::simulate(runs[1], "sharp").makespan_seconds;
  double const combined = sim::simulate(sim::median_workload(runs), "sharp").makespan_seconds;
  CHECK(slow > 1.3 * fast); // the slow profile alone would mislead
  CHECK(combined == doctest::Approx(fast));
}

TEST_CASE("profiles of different sweeps or machines are refused, naming what differs") {
  auto const base = profiled();
  struct refusal {
    char const* what;
    std::function<void(sim::workload&)> change;
    char const* said;
  };
  std::vector<refusal> const refusals{
      {"another device count", [](sim::workload& w) { w.devices.pop_back(); }, "its device count (1 against 2)"},
      {"another budget", [](sim::workload& w) { w.devices.at(1).budget_bytes += 4096; }, "device 1's budget"},
      {"another node", [](sim::workload& w) { w.devices.at(1).node = 1; }, "device 1's node"},
      {"other host cores", [](sim::workload& w) { w.host_cores = 4; }, "its host cores (4 against 2)"},
      {"another model count", [](sim::workload& w) { w.models.pop_back(); }, "its model count"},
      {"another model", [](sim::workload& w) { w.models.at(0).name = "other"; }, "model 0's name (\"other\" against"},
      {"other minibatches", [](sim::workload& w) { w.models.at(0).minibatches += 1; }, "'s minibatches"},
      {"another partition", [](sim::workload& w) { w.models.at(0).shards.pop_back(); }, "'s shard count"},
      {"another shard size", [](sim::workload& w) { w.models.at(0).shards.at(0).state_bytes += 1; },
       "shard 0's state_bytes"},
      {"another activation", [](sim::workload& w) { w.models.at(0).shards.at(0).input_bytes += 1; },
       "shard 0's input_bytes"},
  };
  for (auto const& r : refusals) {
    CAPTURE(r.what);
    auto other = base;
    r.change(other);
    std::vector<sim::workload> const runs{base, base, other};
    CHECK_THROWS_WITH_AS((void)sim::median_workload(runs), doctest::Contains("workload 3 differs from workload 1 in "),
                         hydra::invalid_argument);
    CHECK_THROWS_WITH_AS((void)sim::median_workload(runs), doctest::Contains(r.said), hydra::invalid_argument);
  }
  CHECK_THROWS_WITH_AS((void)sim::median_workload(std::vector<sim::workload>{}),
                       "median_workload: no workloads to combine", hydra::invalid_argument);
}
