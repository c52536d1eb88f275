// Several profiles of one sweep combined at their medians: every time and rate
// is the median of the profiles', everything counted or sized is what all of
// them have, and profiles of different sweeps or machines are refused, named.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "hydra/sim/median_workload.hpp"
#include "hydra/sim/presets.hpp"
#include "hydra/sim/simulator.hpp"

namespace sim = hydra::sim;

namespace {

// `w` with every time multiplied and every device's link rates and speed
// divided by `slower`: the same sweep profiled while the machine ran that
// much slower.
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
    device.speed /= slower;
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
  w.shared_host_bytes_per_second = 40e9;
  for (auto& device : w.devices) device.latency_seconds = 1e-5;
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
  CHECK(median.devices.at(1).d2h_bytes_per_second == doctest::Approx(base.devices.at(1).d2h_bytes_per_second / 1.2));
  CHECK(median.devices.at(1).latency_seconds == doctest::Approx(1e-5 * 1.2));
  CHECK(median.devices.at(1).speed == doctest::Approx(1 / 1.2));
  CHECK(median.host_cores == 2);
  CHECK(median.models.size() == base.models.size());
  CHECK(median.description.find("median of 3 profiles") != std::string::npos);

  // The shared host link and the link between nodes, which slowed() leaves alone.
  auto links = three;
  for (std::size_t r = 0; r < links.size(); ++r) {
    links[r].shared_host_bytes_per_second = 10e9 * static_cast<double>(r + 1); // 10, 20, 30 GB/s
    links[r].between_nodes.bytes_per_second = 5e9 * static_cast<double>(3 - r);
    links[r].between_nodes.latency_seconds = 1e-6 * static_cast<double>(r == 1 ? 9 : r);
    links[r].between_devices = {.bytes_per_second = 100e9 * static_cast<double>(r + 2), .latency_seconds = 1e-6};
  }
  auto const linked = sim::median_workload(links);
  CHECK(linked.shared_host_bytes_per_second == doctest::Approx(20e9));
  CHECK(linked.between_nodes.bytes_per_second == doctest::Approx(10e9));
  CHECK(linked.between_nodes.latency_seconds == doctest::Approx(2e-6));
  CHECK(linked.between_devices.bytes_per_second == doctest::Approx(300e9));
  CHECK(linked.between_devices.latency_seconds == doctest::Approx(1e-6));

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
      {"other parameters", [](sim::workload& w) { w.models.at(0).shards.at(0).parameter_bytes += 1; },
       "shard 0's parameter_bytes"},
      {"another home", [](sim::workload& w) { w.models.at(0).shards.at(0).home_bytes += 1; }, "shard 0's home_bytes"},
      {"other scratch", [](sim::workload& w) { w.models.at(0).shards.at(0).scratch_bytes += 1; },
       "shard 0's scratch_bytes"},
      {"a free link where it was timed", [](sim::workload& w) { w.devices.at(0).h2d_bytes_per_second = 0; },
       "device 0's host-to-device link (\"free\" against \"timed\")"},
      {"no shared link where there was one", [](sim::workload& w) { w.shared_host_bytes_per_second = 0; },
       "its shared host link (\"free\" against \"timed\")"},
      {"a link between devices where it was the host links'",
       [](sim::workload& w) { w.between_devices.bytes_per_second = 100e9; },
       "its link between devices (\"timed\" against \"free\")"},
  };
  for (auto const& r : refusals) {
    CAPTURE(r.what);
    auto other = base;
    r.change(other);
    std::vector<sim::workload> const runs{base, base, other};
    CHECK_THROWS_WITH_AS((void)sim::median_workload(runs), doctest::Contains("workload 3 differs from workload 1 in "),
                         hydra::invalid_argument);
    // Labelled (hydra-sim passes its file names).
    std::vector<std::string> const files{"a.json", "b.json", "c.json"};
    CHECK_THROWS_WITH_AS((void)sim::median_workload(runs, files), doctest::Contains("c.json differs from a.json in "),
                         hydra::invalid_argument);
    CHECK_THROWS_WITH_AS((void)sim::median_workload(runs), doctest::Contains(r.said), hydra::invalid_argument);
  }
  // A figure a median cannot be taken of.
  auto broken = base;
  broken.models.at(1).shards.at(0).backward_seconds = -1;
  CHECK_THROWS_WITH_AS((void)sim::median_workload(std::vector<sim::workload>{base, broken}),
                       "median_workload: workload 2 gives model 1 shard 0's backward_seconds as -1.000000; a time is "
                       "finite and >= 0",
                       hydra::invalid_argument);
  broken = base;
  broken.devices.at(1).speed = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS((void)sim::median_workload(std::vector<sim::workload>{base, broken}),
                       doctest::Contains("workload 2 gives device 1's speed as nan; a rate is finite"),
                       hydra::invalid_argument);
  std::vector<std::string> const one_label{"a.json"};
  CHECK_THROWS_WITH_AS((void)sim::median_workload(std::vector<sim::workload>{base, base}, one_label),
                       "median_workload: 1 labels for 2 workloads", hydra::invalid_argument);
  CHECK_THROWS_WITH_AS((void)sim::median_workload(std::vector<sim::workload>{}),
                       "median_workload: no workloads to combine", hydra::invalid_argument);
}
