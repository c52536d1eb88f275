// Workload JSON: what is written reads back the same; the runtime's profile reads
// as a workload; malformed files are refused with the place and the reason.
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "hydra/json/profile_json.hpp"
#include "hydra/json/workload_json.hpp"
#include "hydra/sched/policies.hpp"
#include "hydra/sim/presets.hpp"
#include "hydra/sim/profile_workload.hpp"
#include "hydra/sim/simulator.hpp"

namespace sim = hydra::sim;

namespace {

// A profile as a hand-written or older one would be: times, and device extents only.
hydra::model_profile profile_of(std::string name, std::string source, std::vector<double> forward,
                                std::vector<double> backward, std::vector<double> fetch,
                                std::vector<std::uint64_t> state) {
  hydra::model_profile p;
  p.name = std::move(name);
  p.source = std::move(source);
  p.forward_seconds = std::move(forward);
  p.backward_seconds = std::move(backward);
  p.fetch_seconds = std::move(fetch);
  p.state_bytes = std::move(state);
  return p;
}

} // namespace

TEST_CASE("a written workload reads back equal, and simulates to the same makespan") {
  for (std::uint64_t seed : {1, 2, 3}) {
    auto w = seed == 1 ? sim::paper_preset() : sim::random_workload(seed);
    if (seed == 2) { // the host backend's figures
      w.launch_seconds = 1e-4;
      w.host_cores = 3;
      w.task_host_seconds = 2e-4;
      w.handoff_seconds = 3e-5;
      for (auto& model : w.models)
        for (auto& shard : model.shards) shard.home_bytes = shard.state_bytes / 2;
      for (std::size_t d = 0; d < w.devices.size(); ++d) w.devices[d].speed = 0.5 + static_cast<double>(d);
    }
    if (seed == 3) w = sim::on_nodes(w, 3, {.bytes_per_second = 7e9, .latency_seconds = 2e-6});
    std::ostringstream out;
    sim::write_workload_json(out, w);
    auto const back = sim::parse_workload_json(out.str());
    REQUIRE(back.models.size() == w.models.size());
    REQUIRE(back.devices.size() == w.devices.size());
    CHECK(back.description == w.description);
    CHECK(back.shared_host_bytes_per_second == w.shared_host_bytes_per_second);
    CHECK(back.launch_seconds == w.launch_seconds);
    CHECK(back.host_cores == w.host_cores);
    CHECK(back.task_host_seconds == w.task_host_seconds);
    CHECK(back.handoff_seconds == w.handoff_seconds);
    for (std::size_t d = 0; d < w.devices.size(); ++d) {
      CHECK(back.devices[d].budget_bytes == w.devices[d].budget_bytes);
      CHECK(back.devices[d].h2d_bytes_per_second == w.devices[d].h2d_bytes_per_second);
      CHECK(back.devices[d].latency_seconds == w.devices[d].latency_seconds);
      CHECK(back.devices[d].speed == w.devices[d].speed);
      CHECK(back.devices[d].node == w.devices[d].node);
    }
    CHECK(back.between_nodes.bytes_per_second == w.between_nodes.bytes_per_second);
    CHECK(back.between_nodes.latency_seconds == w.between_nodes.latency_seconds);
    CHECK(back.between_devices.bytes_per_second == w.between_devices.bytes_per_second); // the preset's NVLink
    CHECK(back.between_devices.latency_seconds == w.between_devices.latency_seconds);
    for (std::size_t m = 0; m < w.models.size(); ++m) {
      CHECK(back.models[m].name == w.models[m].name);
      CHECK(back.models[m].minibatches == w.models[m].minibatches);
      REQUIRE(back.models[m].shards.size() == w.models[m].shards.size());
      for (std::size_t s = 0; s < w.models[m].shards.size(); ++s) {
        auto const &a = w.models[m].shards[s], &b = back.models[m].shards[s];
        CHECK(a.forward_seconds == b.forward_seconds); // %.17g round-trips doubles exactly
        CHECK(a.backward_seconds == b.backward_seconds);
        CHECK(a.state_bytes == b.state_bytes);
        CHECK(a.parameter_bytes == b.parameter_bytes);
        CHECK(a.scratch_bytes == b.scratch_bytes);
        CHECK(a.input_bytes == b.input_bytes);
        CHECK(a.home_bytes == b.home_bytes);
      }
    }
    CHECK(sim::simulate(back, hydra::sharp{}).makespan_seconds == sim::simulate(w, hydra::sharp{}).makespan_seconds);
  }
}

TEST_CASE("a run's whole profile (host cores, launches, every size) reads back as the same workload") {
  hydra::sweep_profile profile;
  hydra::model_profile m = profile_of("m", "measured", {0.01, 0.02}, {0.03, 0.04}, {0.001, 0.002}, {4096, 8192});
  m.parameter_bytes = {1024, 2048};
  m.home_bytes = {3072, 6144};
  m.scratch_bytes = {512, 256};
  m.input_bytes = {128, 64};
  m.measured_minibatches = 5;
  profile.models = {m};
  profile.devices = {{.budget_bytes = 65536, .h2d_bytes_per_second = 6e9, .d2h_bytes_per_second = 7e9},
                     {.budget_bytes = 65536, .h2d_bytes_per_second = 0, .d2h_bytes_per_second = 0}};
  profile.launch_seconds = 3e-4;
  profile.host_cores = 2;
  profile.task_host_seconds = 5e-4;
  profile.handoff_seconds = 4e-5;
  std::ostringstream out;
  hydra::write_profile_json(out, profile);
  sim::json_defaults defaults;
  defaults.minibatches = 9;
  defaults.device.h2d_bytes_per_second = defaults.device.d2h_bytes_per_second = 1e9; // for the unmeasured device
  defaults.device.latency_seconds = 1e-5; // a measured rate holds it already: only the unmeasured device takes it
  auto const read = sim::parse_workload_json(out.str(), "profile.json", defaults);
  auto const direct = sim::to_workload(profile, 9, defaults.device);
  std::ostringstream a, b;
  sim::write_workload_json(a, read);
  sim::write_workload_json(b, direct);
  CHECK(a.str() == b.str());
  CHECK(read.host_cores == 2);
  CHECK(read.launch_seconds == 3e-4);
  CHECK(read.task_host_seconds == 5e-4);
  CHECK(read.handoff_seconds == 4e-5);
  CHECK(read.devices.at(0).h2d_bytes_per_second == 6e9);
  CHECK(read.devices.at(1).h2d_bytes_per_second == 1e9);
  CHECK(read.devices.at(0).latency_seconds == 0);
  CHECK(read.devices.at(1).latency_seconds == 1e-5);
  CHECK(read.models.at(0).shards.at(1).home_bytes == 6144);
  CHECK(read.models.at(0).shards.at(1).input_bytes == 64);
  CHECK(read.models.at(0).minibatches == 9);
  CHECK_THROWS_WITH_AS((void)sim::to_workload(hydra::sweep_profile{}, 9), doctest::Contains("names no devices"),
                       hydra::invalid_argument);
}

TEST_CASE("the runtime's profile JSON reads as a workload, with devices and minibatches from defaults") {
  std::vector<hydra::model_profile> profiles;
  profiles.push_back(profile_of("mlp \"a\"", "measured", {0.01, 0.02}, {0.03, 0.04}, {0.001, 0.002}, {4096, 8192}));
  profiles.push_back(profile_of("mlp b", "estimates", {0.05}, {0.15}, {0.0}, {1024}));
  std::ostringstream out;
  hydra::write_profile_json(out, profiles);

  CHECK_THROWS_WITH_AS((void)sim::parse_workload_json(out.str(), "profile.json"),
                       doctest::Contains("profile.json: no \"devices\""), hydra::invalid_argument);
  sim::json_defaults defaults;
  defaults.device_count = 2;
  defaults.device = {
      .budget_bytes = 1 << 20, .h2d_bytes_per_second = 1e9, .d2h_bytes_per_second = 1e9, .latency_seconds = 1e-5};
  CHECK_THROWS_WITH_AS((void)sim::parse_workload_json(out.str(), "profile.json", defaults),
                       doctest::Contains("has no \"minibatches\""), hydra::invalid_argument);
  defaults.minibatches = 7;
  auto const w = sim::parse_workload_json(out.str(), "profile.json", defaults);
  REQUIRE(w.models.size() == 2);
  CHECK(w.devices.size() == 2);
  CHECK(w.models[0].name == "mlp \"a\"");
  CHECK(w.models[0].minibatches == 7);
  REQUIRE(w.models[0].shards.size() == 2);
  CHECK(w.models[0].shards[1].forward_seconds == 0.02);
  CHECK(w.models[0].shards[1].backward_seconds == 0.04);
  CHECK(w.models[0].shards[1].state_bytes == 8192);
  auto const r = sim::simulate(w, hydra::sharp{});
  CHECK(r.tasks == 2 * 2 * 7 + 2 * 1 * 7);
}

TEST_CASE("a profile with its devices simulates the profiled machine, with the links from the defaults") {
  std::vector<hydra::model_profile> profiles;
  profiles.push_back(profile_of("mlp", "measured", {0.01}, {0.03}, {0.001}, {4096}));
  std::ostringstream out;
  hydra::write_profile_json(out, profiles, {65536, 131072});
  CHECK(out.str().find("\"version\": 6") != std::string::npos);
  sim::json_defaults defaults;
  defaults.device_count = 8; // the file's devices win
  defaults.device.budget_bytes = 80'000'000'000;
  defaults.device.h2d_bytes_per_second = 3e9; // the file gives no link rates
  defaults.device.d2h_bytes_per_second = 2e9;
  defaults.minibatches = 5;
  auto const w = sim::parse_workload_json(out.str(), "profile.json", defaults);
  REQUIRE(w.devices.size() == 2);
  CHECK(w.devices[0].budget_bytes == 65536);
  CHECK(w.devices[1].budget_bytes == 131072);
  CHECK(w.devices[1].h2d_bytes_per_second == 3e9);
  CHECK(w.devices[1].d2h_bytes_per_second == 2e9);
  CHECK(w.models.at(0).minibatches == 5);
}

TEST_CASE("malformed workloads are refused with the file, the place and the reason") {
  struct bad_case {
    char const* text;
    char const* message;
  };
  bad_case const cases[] = {
      {"{\"models\": [}", "x.json:1:13: syntax error while parsing value - unexpected '}'"},
      {"{\"devices\": {\"count\": 1,\n  \"budget_bytes\": 10,\n  \"count\": 2}, \"models\": []}",
       "x.json: an object names \"count\" twice"},
      {"{\"version\": 7, \"models\": []}", "version 7 was written by a newer hydra; this one reads up to version 6"},
      {"{\"between_devices\": {\"bytes_per_second\": -1}, \"models\": []}",
       "x.json: between_devices.bytes_per_second must be a finite number >= 0"},
      {"{\"between_devices\": {\"rate\": 1}, \"models\": []}", "unknown member \"rate\""},
      {"{\"devices\": [{\"budget_bytes\": 10, \"node\": -1}], \"models\": []}", "devices[0].node must be a finite"},
      {"{\"devices\": [{\"budget_bytes\": 10, \"node\": 5000}], \"models\": []}",
       "devices[0].node is 5000, above the limit of 4095"},
      {"{\"between_nodes\": {\"bytes_per_second\": 1, \"latncy_seconds\": 1}, \"models\": []}",
       "unknown member \"latncy_seconds\""},
      {"{\"between_nodes\": {\"bytes_per_second\": 0}, \"models\": []}",
       "x.json: between_nodes.bytes_per_second is 0; a link needs a rate"},
      {"{\"devices\": {\"count\": 2, \"budget_bytes\": 10, \"node\": 1}, \"models\": []}", "unknown member \"node\""},
      {"{\"format\": \"chrome trace\", \"models\": []}", "\"format\" is \"chrome trace\", not \"hydra workload\""},
      {"{\"devices\": {\"count\": 1, \"budget_bytes\": \"10\"}, \"models\": []}",
       "devices.budget_bytes must be a number, not a string"},
      {"", "x.json:1:1: syntax error while parsing value - unexpected end of input"},
      {"{\"devices\": {\"count\": 1, \"budget_bytes\": 1e400}, \"models\": []}",
       "x.json: number overflow parsing '1e400'"},
      {"{\"devices\": {\"count\": 1, \"budget_bytes\": 10},\n \"models\": [{\"name\": \"a\", \"minibatches\": 1, "
       "\"shards\": [{\"forward_seconds\": 1}]}]}",
       "models[0].shards[0] needs \"forward_seconds\" and \"backward_seconds\""},
      {"{\"devices\": {\"count\": 1, \"budget_bytes\": 10}, \"models\": [], \"modles\": 1}",
       "unknown member \"modles\""},
      {"{\"devices\": {\"count\": 1, \"budget_bytes\": -5}, \"models\": []}", "devices.budget_bytes must be a finite"},
      {"{\"devices\": {\"count\": 1.5, \"budget_bytes\": 5}, \"models\": []}", "devices.count must be a whole number"},
      {"{\"devices\": {\"budget_bytes\": 5}, \"models\": []}", "needs \"count\""},
      {"[1, 2]", "the document must be an object, not an array"},
      {"{\"a\": \"unterminated}", "missing closing quote"},
      {"{}\n  extra", "x.json:2:3: syntax error while parsing value - invalid literal"},
      // Counts that would make a simulation run for days, or exhaust memory.
      {"{\"devices\": {\"count\": 1, \"budget_bytes\": 10}, \"models\": [{\"minibatches\": 1e12, \"shards\": []}]}",
       "x.json: models[0].minibatches is 1000000000000, above the limit of 1000000"},
      {"{\"devices\": {\"count\": 1e8, \"budget_bytes\": 10}, \"models\": []}",
       "x.json: devices.count is 100000000, above the limit of 4096"},
      {"{\"host_cores\": 5000, \"models\": []}", "x.json: host_cores is 5000, above the limit of 4096"},
      {"{\"launch_seconds\": -1e-6, \"models\": []}", "x.json: launch_seconds must be a finite number >= 0"},
      {"{\"task_host_seconds\": 1e10, \"models\": []}", "x.json: task_host_seconds is 10000000000 s, above the limit"},
      {"{\"handoff_seconds\": -0.5, \"models\": []}", "x.json: handoff_seconds must be a finite number >= 0"},
      {"{\"devices\": {\"count\": 1, \"budget_bytes\": 10}, \"models\": [{\"minibatches\": 1, \"shards\": "
       "[{\"forward_seconds\": 1, \"backward_seconds\": 1, \"state_bytes\": 8, \"home_bytes\": 9}]}]}",
       "x.json: models[0].shards[0]: home_bytes is above state_bytes"},
  };
  for (auto const& c : cases) {
    INFO(c.text);
    CHECK_THROWS_WITH_AS((void)sim::parse_workload_json(c.text, "x.json"), doctest::Contains(c.message),
                         hydra::invalid_argument);
  }
  CHECK_THROWS_WITH_AS((void)sim::read_workload_json("/nonexistent/w.json"),
                       doctest::Contains("/nonexistent/w.json: cannot be opened: No such file or directory"),
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS((void)sim::read_workload_json("/tmp"),
                       doctest::Contains("workload file /tmp: not a regular file"), hydra::invalid_argument);
}

TEST_CASE("the JSON reader handles escapes, exponents and nesting limits") {
  auto const w = sim::parse_workload_json(R"({"description": "caf\u00e9 \ud83d\ude00 \"q\" \\ \n",
    "devices": [{"budget_bytes": 1E3}, {"memory_bytes": 2e+3, "latency_seconds": 0.5e-6}],
    "models": [{"name": "m", "minibatches": 2, "shards": [{"forward_seconds": 1, "backward_seconds": 2}]}]})");
  CHECK(w.description == "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n");
  REQUIRE(w.devices.size() == 2);
  CHECK(w.devices[0].budget_bytes == 1000);
  CHECK(w.devices[1].budget_bytes == 2000); // "memory_bytes": the name older files use
  CHECK(w.devices[1].latency_seconds == 0.5e-6);
  std::string deep(300, '[');
  CHECK_THROWS_WITH_AS((void)sim::parse_workload_json(deep), doctest::Contains("nested deeper than 256"),
                       hydra::invalid_argument);
}
