// One scheduler core, two drivers: the host runtime and the simulator make the
// same decisions (device and task, in order) for the same costs. The runtime's
// tasks sleep for fixed times, the simulator is told the same times, and the
// costs are chosen so that no two completions fall within 12 ms of each other.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/sleeping_layer.hpp"

using context = hydra::host_execution_context;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t features = 4, batch = 2;

struct model_times {
  std::chrono::milliseconds forward[2], backward[2];
};

hydra::sequential_model<context> sleeping_model(model_times const& t) {
  std::vector<hydra::any_layer<context>> stack;
  // Parameters make each layer its own shard on the devices below.
  for (int k = 0; k < 2; ++k)
    stack.emplace_back(hydra::testing::sleeping_layer{features, 100'000, t.forward[k], t.backward[k]});
  stack.emplace_back(hydra::layers::softmax_cross_entropy(features));
  return hydra::sequential_model<context>(std::move(stack), batch);
}

hydra::data_source data() {
  return [](std::size_t step) {
    hydra::minibatch m;
    m.inputs.assign(batch * features, 0.25F * static_cast<float>(step));
    m.labels.assign(batch, 1);
    return m;
  };
}

double seconds(std::chrono::milliseconds ms) {
  return static_cast<double>(ms.count()) * 1e-3;
}

// Sanitizers slow the host code between tasks by milliseconds; stretch the
// sleeps so that the 12 ms between completions stays far above that.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int stretch = 4;
#else
constexpr int stretch = 1;
#endif

} // namespace

TEST_CASE("the runtime and the simulator make the same decisions for the same costs") {
  std::vector<model_times> times = {
      {{35ms, 55ms}, {70ms, 75ms}},
      {{75ms, 35ms}, {60ms, 60ms}},
      {{60ms, 75ms}, {55ms, 70ms}},
  };
  for (auto& t : times)
    for (int k = 0; k < 2; ++k) {
      t.forward[k] *= stretch;
      t.backward[k] *= stretch;
    }
  std::size_t const minibatches = 2;
  std::size_t const devices = 2;

  for (char const* policy : {"sharp", "fifo", "round_robin"}) {
    INFO("policy " << std::string(policy));
    // The simulator: compute only (the runtime's copies here take microseconds).
    hydra::sim::workload w;
    w.devices.assign(
        devices,
        {.memory_bytes = 1ULL << 40, .h2d_bytes_per_second = 0, .d2h_bytes_per_second = 0, .latency_seconds = 0});
    std::vector<hydra::model_costs> estimates;
    for (std::size_t m = 0; m < times.size(); ++m) {
      hydra::model_costs c;
      c.minibatches = minibatches;
      for (int k = 0; k < 2; ++k) {
        c.forward_seconds.push_back(seconds(times[m].forward[k]));
        // A backward task recomputes its shard's forward first.
        c.backward_seconds.push_back(seconds(times[m].forward[k] + times[m].backward[k]));
      }
      hydra::sim::model_spec spec{"m" + std::to_string(m), {}, minibatches};
      for (int k = 0; k < 2; ++k) {
        hydra::sim::shard_spec s;
        s.forward_seconds = c.forward_seconds[static_cast<std::size_t>(k)];
        s.backward_seconds = c.backward_seconds[static_cast<std::size_t>(k)];
        spec.shards.push_back(s);
      }
      w.models.push_back(spec);
      estimates.push_back(c);
    }
    hydra::sim::options o;
    o.keep_decisions = true;
    o.record_trace = true;
    auto const simulated = hydra::sim::simulate(w, std::string(policy), o);
    // The test means something only if the runtime's jitter cannot reorder completions.
    std::vector<double> ends;
    for (auto const& slice : simulated.trace)
      if (slice.stream == hydra::stream_kind::compute) ends.push_back(static_cast<double>(slice.end.count()) * 1e-9);
    std::sort(ends.begin(), ends.end());
    for (std::size_t k = 1; k < ends.size(); ++k) REQUIRE(ends[k] - ends[k - 1] >= 0.012 * stretch - 1e-9);

    // The runtime, told the same costs.
    hydra::host_backend backend({.device_capacities = {4 << 20, 4 << 20}});
    std::vector<hydra::model_config> configs;
    for (std::size_t m = 0; m < times.size(); ++m) {
      configs.push_back({"m" + std::to_string(m), sleeping_model(times[m]), hydra::sgd_momentum{.learning_rate = 0.1F},
                         minibatches, data(), m + 1, estimates[m]});
    }
    hydra::multi_model_trainer trainer(backend, std::move(configs), hydra::make_policy(policy));
    for (std::size_t m = 0; m < times.size(); ++m) REQUIRE(trainer.shards_of(m).size() == 2);
    trainer.run();
    auto const executed = trainer.report().decisions;
    REQUIRE(executed.size() == simulated.decisions.size());
    for (std::size_t k = 0; k < executed.size(); ++k) {
      INFO("decision " << k);
      CHECK(executed[k] == simulated.decisions[k]);
    }
  }
}
