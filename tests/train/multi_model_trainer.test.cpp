// The multi-model trainer: a sweep on several devices, under every policy, ends
// with every model's weights equal (bitwise) to the same model trained alone, and
// a failing model is stopped without disturbing the others.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <source_location>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/json.hpp"
#include "hydra/sim/profile_workload.hpp"
#include "hydra/train/multi_model_trainer.hpp"
#include "support/exploding_layer.hpp"
#include "support/scratch.hpp"
#include "support/trained_alone.hpp"

using namespace hydra::literals;
using namespace std::chrono_literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t features = 16, classes = 5, batch = 8;

hydra::data_source data_for(std::uint64_t salt) {
  return hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = salt};
}

hydra::sequential_model<context> mlp(std::size_t width, std::size_t depth) {
  return hydra::layers::make_mlp(features, width, depth, classes, batch);
}

std::vector<hydra::model_config> sweep() {
  std::vector<hydra::model_config> configs;
  configs.push_back({"sgd w24 d6", mlp(24, 6), hydra::sgd_momentum{.learning_rate = 0.05F}, 3, data_for(1), 11});
  configs.push_back({"adam w32 d8", mlp(32, 8), hydra::adam{.learning_rate = 0.003F}, 2, data_for(2), 12});
  configs.push_back({"adam w16 d4", mlp(16, 4), hydra::adam{.learning_rate = 0.01F}, 4, data_for(3), 13});
  configs.push_back({"sgd w32 d5", mlp(32, 5), hydra::sgd_momentum{.learning_rate = 0.02F}, 3, data_for(4), 14});
  return configs;
}

using hydra::testing::bitwise_equal;
using hydra::testing::solo_result;
using hydra::testing::train_alone;

std::size_t total_tasks(std::vector<hydra::model_config> const& configs, hydra::multi_model_trainer const& trainer) {
  std::size_t total = 0;
  for (std::size_t m = 0; m < configs.size(); ++m) total += 2 * trainer.shards_of(m).size() * configs[m].steps;
  return total;
}

} // namespace

TEST_CASE("a sweep trains to each model's solo weights under every policy, device count and budget") {
  auto const configs = sweep();
  std::vector<solo_result> solo;
  for (auto const& config : configs) solo.push_back(train_alone(config));
  struct setup {
    std::vector<std::size_t> capacities;
    hydra::delay_injection delays;
    std::vector<double> speeds{};
  };
  std::vector<setup> const setups{
      {{96_KiB}, {}},
      {{96_KiB, 128_KiB}, {}},
      {{64_KiB, 96_KiB, 80_KiB}, {}},
      {{96_KiB, 96_KiB}, {.enabled = true, .seed = 4, .max_delay = std::chrono::microseconds(100)}},
      {{128_KiB, 80_KiB}, {}, {1.0, 0.5}}}; // devices that differ in memory and speed
  std::uint64_t read_on_device = 0, checkpoints_read_on_device = 0, recomputations_avoided = 0;
  std::uint64_t spilled = 0, read_back = 0, copied_between_devices = 0;
  std::uint64_t write_backs_at_once = 0, write_backs_at_eviction = 0;
  for (std::string const policy : {"sharp", "fifo", "round_robin", "random_pick", "model_parallel"}) {
    for (auto const& s : setups) {
      std::uint64_t inputs_through_host = 0, updates = 0;
      // Through host memory; activations kept; activations and checkpoints
      // kept; forward activations kept (no recomputation where they stay);
      // all of them; forward activations kept and spilled to host memory
      // when they must leave their device (no recomputation at all);
      // activations and checkpoints kept and copied to the device their
      // reader runs on; that with forward activations kept too. Then updates
      // left on the device until evicted: through host memory, and with
      // activations and checkpoints kept.
      for (int const kept : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
        bool const keep = kept == 1 || kept == 2 || kept == 4 || kept == 6 || kept == 7 || kept == 9;
        bool const checkpoints = kept == 2 || kept == 4 || kept == 6 || kept == 7 || kept == 9;
        bool const forward = kept == 3 || kept == 4 || kept == 5 || kept == 7;
        bool const between_devices = kept == 6 || kept == 7;
        bool const at_eviction = kept >= 8;
        auto const evicted = kept == 5 ? hydra::evicted_activations::spill : hydra::evicted_activations::recompute;
        CAPTURE(policy);
        CAPTURE(s.capacities.size());
        CAPTURE(s.delays.enabled);
        CAPTURE(kept);
        hydra::host_backend backend({.device_budgets = s.capacities, .delays = s.delays, .device_speeds = s.speeds});
        // Freed blocks poisoned: a kept activation read after its free, or
        // freed before its reader ran, would change the bits.
        hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy(policy, 3),
                                           {.poison_freed_blocks = std::uint8_t{0xFF},
                                            .keep_activations = keep,
                                            .keep_activation_checkpoints = checkpoints,
                                            .copy_activations_between_devices = between_devices,
                                            .keep_forward_activations = forward,
                                            .evicted_forward_activations = evicted,
                                            .write_back_on_eviction = at_eviction});
        trainer.run();
        auto const& results = trainer.results();
        REQUIRE(results.size() == configs.size());
        for (std::size_t m = 0; m < configs.size(); ++m) {
          CAPTURE(m);
          CHECK_FALSE(results[m].failure.has_value());
          CHECK(results[m].steps == configs[m].steps);
          CHECK(bitwise_equal(results[m].parameters, solo[m].parameters));
          CHECK(results[m].losses == solo[m].losses);
        }
        auto const report = trainer.report();
        CHECK(report.decisions.size() == total_tasks(configs, trainer)); // every task exactly once
        for (std::size_t d = 0; d < s.capacities.size(); ++d) {
          CHECK(trainer.device_memory()[d].peak_in_use <= s.capacities[d]);
          CHECK(trainer.device_memory()[d].in_use == 0); // every kept activation freed
        }
        CHECK(report.bytes_to_device > 0);
        CHECK(report.activations_read_on_device <= report.activations_kept);
        CHECK(report.activation_checkpoints_read_on_device <= report.activation_checkpoints_kept);
        if (!keep) CHECK(report.activations_kept == 0);
        if (!checkpoints) CHECK(report.activation_checkpoints_kept == 0);
        if (!between_devices) CHECK(report.activations_copied_between_devices == 0);
        if (s.capacities.size() == 1) CHECK(report.activations_copied_between_devices == 0);
        // Beside forward activations too, as the fallback where they are given up.
        if (checkpoints && forward) CHECK(report.activation_checkpoints_kept > 0);
        CHECK(report.recomputations_avoided <= report.forward_activations_kept);
        if (!forward) CHECK(report.forward_activations_kept + report.recomputations_avoided == 0);
        if (kept != 5) CHECK(report.forward_activations_spilled + report.forward_activation_bytes_read_back == 0);
        // Every backward of a training minibatch starts from its forward's
        // activations, kept or spilled: none recomputes.
        if (kept == 5) CHECK(report.recomputations_avoided == report.forward_activations_kept);
        CHECK(report.forward_activation_bytes_read_back <= report.forward_activation_bytes_spilled);
        spilled += report.forward_activations_spilled;
        read_back += report.forward_activation_bytes_read_back;
        // Every task's input comes from host memory or from where it was
        // kept: the two together are the same with activations kept or not;
        // less only by the checkpoints of the backwards that recomputed
        // nothing and so read none.
        std::uint64_t const inputs = report.activation_bytes_to_device + report.activation_bytes_read_on_device +
                                     report.activation_checkpoint_bytes_read_on_device +
                                     report.activation_bytes_copied_between_devices;
        CHECK(report.activation_bytes_to_host > 0);
        if (kept == 0)
          inputs_through_host = inputs;
        else if (report.recomputations_avoided == 0)
          CHECK(inputs == inputs_through_host);
        else
          CHECK(inputs < inputs_through_host);
        // One write-back per backward that updates parameters, or, left on
        // the device, at most that many: one per eviction or model end that
        // found an update there.
        if (kept == 0) updates = report.write_backs;
        CHECK(report.write_backs > 0);
        CHECK(report.bytes_to_host > 0);
        if (at_eviction) {
          CHECK(report.write_backs <= updates);
          write_backs_at_once += updates;
          write_backs_at_eviction += report.write_backs;
        } else {
          CHECK(report.write_backs == updates);
        }
        read_on_device += report.activations_read_on_device;
        checkpoints_read_on_device += report.activation_checkpoints_read_on_device;
        recomputations_avoided += report.recomputations_avoided;
        copied_between_devices += report.activations_copied_between_devices;
      }
    }
  }
  CHECK(read_on_device > 0);             // some next task ran where its input was kept
  CHECK(checkpoints_read_on_device > 0); // and some backward where its checkpoint was
  CHECK(recomputations_avoided > 0);     // and some backward where its forward's activations were
  CHECK(spilled > 0);                    // some forward activations went home
  CHECK(read_back > 0);                  // and some backward read them back
  CHECK(copied_between_devices > 0);     // some task copied its input from the device that kept it
  // Shards stayed resident across minibatches, so updates left there went
  // home fewer times than once per backward.
  MESSAGE("write-backs: " << write_backs_at_eviction << " left until eviction against " << write_backs_at_once
                          << " at once");
  CHECK(write_backs_at_eviction < write_backs_at_once);
}

TEST_CASE("by cost, forward activations are spilled where recomputing them takes longer than copying, else dropped, "
          "and before any shard where recomputing takes less than a fetch") {
  auto configs = sweep();
  std::vector<solo_result> solo;
  for (auto const& config : configs) solo.push_back(train_alone(config));
  std::vector<std::size_t> const capacities{64_KiB, 96_KiB, 80_KiB};
  std::vector<std::size_t> shards;
  {
    hydra::host_backend backend({.device_budgets = capacities});
    hydra::multi_model_trainer const probe(backend, configs, hydra::make_policy("sharp"));
    for (std::size_t m = 0; m < configs.size(); ++m) shards.push_back(probe.shards_of(m).size());
  }
  // Given forward times (a model with estimates is not profiled): a second
  // per shard (any copy of a few KiB is faster), or a femtosecond (none is);
  // the copy rates are measured.
  for (double const forward_seconds : {1.0, 1e-15}) {
    CAPTURE(forward_seconds);
    for (std::size_t m = 0; m < configs.size(); ++m)
      configs[m].estimates = hydra::model_costs{std::vector<double>(shards[m], forward_seconds),
                                                std::vector<double>(shards[m], 3 * forward_seconds), 0};
    hydra::host_backend backend({.device_budgets = capacities});
    hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"),
                                       {.poison_freed_blocks = std::uint8_t{0xFF}, .keep_forward_activations = true});
    trainer.run();
    for (std::size_t m = 0; m < configs.size(); ++m) {
      CAPTURE(m);
      CHECK(bitwise_equal(trainer.results()[m].parameters, solo[m].parameters));
    }
    auto const report = trainer.report();
    if (forward_seconds > 0.5) {
      CHECK(report.forward_activations_spilled > 0);
      CHECK(report.forward_activation_bytes_read_back > 0);
      CHECK(report.forward_activations_given_up_first == 0); // a fetch is never dearer than a second
    } else {
      CHECK(report.forward_activations_spilled == 0);
      CHECK(report.recomputations_avoided < report.forward_activations_kept); // some were dropped
      // ... before any shard was evicted: recomputing costs nothing beside a fetch.
      CHECK(report.forward_activations_given_up_first > 0);
    }
    for (auto const& memory : trainer.device_memory()) CHECK(memory.in_use == 0);
  }
}

TEST_CASE("models cut for the larger device run their large shards only there and end as alone, under every policy") {
  auto configs = sweep();
  configs[1].partition_for = {0}; // cut for device 0's 256 KiB
  configs[3].partition_for = {0};
  std::vector<solo_result> solo;
  for (auto const& config : configs) solo.push_back(train_alone(config));
  std::vector<std::size_t> const capacities{256_KiB, 64_KiB};
  std::size_t const cut_for_both = [&] {
    auto everywhere = configs;
    everywhere[1].partition_for.clear();
    hydra::host_backend probe({.device_budgets = capacities});
    return hydra::multi_model_trainer(probe, everywhere, hydra::make_policy("sharp")).shards_of(1).size();
  }();
  // (model_parallel fixes shard s to device s mod 2; here the confined shards
  // are shard 0s, so it runs too.)
  for (std::string const policy : {"sharp", "fifo", "round_robin", "random_pick", "model_parallel"}) {
    CAPTURE(policy);
    hydra::host_backend backend({.device_budgets = capacities});
    hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy(policy, 3),
                                       {.poison_freed_blocks = std::uint8_t{0xFF}});
    CHECK(trainer.shards_of(1).size() < cut_for_both); // fewer, larger shards
    trainer.run();
    for (std::size_t m = 0; m < configs.size(); ++m) {
      CAPTURE(m);
      REQUIRE_FALSE(trainer.results()[m].failure.has_value());
      CHECK(bitwise_equal(trainer.results()[m].parameters, solo[m].parameters));
    }
    std::size_t confined = 0, on_small = 0;
    for (auto const& d : trainer.report().decisions) {
      auto const& s = trainer.shards_of(d.task.model)[d.task.shard];
      if (s.working_set_bytes() > hydra::working_set_limit(capacities[1])) {
        ++confined;
        CHECK(d.device == 0); // too large for half of device 1
      }
      on_small += d.device == 1 ? 1 : 0;
    }
    CHECK(confined > 0);
    CHECK(on_small > 0); // the small device runs the others' shards
    CHECK(trainer.report().decisions.size() == total_tasks(configs, trainer));
    for (std::size_t d = 0; d < capacities.size(); ++d) CHECK(trainer.device_memory()[d].peak_in_use <= capacities[d]);
    if (policy != "sharp") continue;
    // The run's profile, through its JSON file, places every shard in the
    // simulator where the run could place it.
    std::string const path = (hydra::testing::scratch_directory("trainer_placement_profile") / "profile.json").string();
    {
      std::ofstream out(path);
      hydra::write_profile_json(out, trainer.profile());
    }
    hydra::sim::json_defaults defaults;
    defaults.minibatches = 1;
    auto const w = hydra::sim::read_workload_json(path, defaults);
    std::size_t restricted = 0;
    for (std::size_t m = 0; m < configs.size(); ++m) {
      std::vector<std::uint64_t> working_sets;
      for (auto const& s : trainer.shards_of(m).shards()) working_sets.push_back(s.working_set_bytes());
      std::vector<std::uint64_t> const budgets(capacities.begin(), capacities.end());
      auto const runtime = hydra::placement_by_memory(working_sets, budgets);
      CHECK(hydra::sim::placement_of(w, m) == runtime);
      restricted += runtime.empty() ? 0 : 1;
    }
    CHECK(restricted == 2); // the two models cut for device 0
  }
  // A device the backend does not have is refused, naming it.
  configs[2].partition_for = {0, 2};
  hydra::host_backend backend({.device_budgets = capacities});
  CHECK_THROWS_WITH_AS(hydra::multi_model_trainer(backend, configs, hydra::make_policy("sharp")),
                       "model 2 (adam w16 d4): partition_for names device 2; the backend has 2 devices (0 to 1)",
                       hydra::invalid_argument);
}

TEST_CASE("task_parallel trains whole models, one per device, and refuses a model that does not fit") {
  auto const configs = sweep();
  hydra::host_backend roomy({.device_budgets = {4_MiB, 4_MiB}});
  hydra::multi_model_trainer trainer(roomy, configs, hydra::make_policy("task_parallel"));
  trainer.run();
  for (std::size_t m = 0; m < configs.size(); ++m) {
    CHECK(trainer.shards_of(m).size() == 1);
    CHECK(bitwise_equal(trainer.results()[m].parameters, train_alone(configs[m]).parameters));
  }
  for (auto const& d : trainer.report().decisions) CHECK(d.device == d.task.model % 2);
  hydra::host_backend tight({.device_budgets = {96_KiB, 96_KiB}});
  CHECK_THROWS_WITH_AS(hydra::multi_model_trainer(tight, configs, hydra::make_policy("task_parallel")),
                       doctest::Contains("task_parallel: model 0 (sgd w24 d6) needs"), hydra::invalid_argument);
}

TEST_CASE("a model that throws and one that diverges are stopped and reported, the other four finish as alone") {
  auto configs = sweep();
  std::vector<hydra::any_layer<context>> broken{hydra::layers::dense(features, classes),
                                                hydra::testing::exploding_layer{classes},
                                                hydra::layers::softmax_cross_entropy(classes)};
  configs.push_back(
      {"throws", hydra::sequential_model<context>(std::move(broken), batch), hydra::adam{}, 3, data_for(5), 15});
  configs.push_back({"diverges", mlp(24, 3), hydra::sgd_momentum{.learning_rate = 1e12F}, 6, data_for(6), 16});
  std::vector<solo_result> solo;
  for (std::size_t m = 0; m < 4; ++m) solo.push_back(train_alone(configs[m]));
  hydra::host_backend backend({.device_budgets = {96_KiB, 96_KiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"));
  trainer.run();
  auto const& results = trainer.results();
  for (std::size_t m = 0; m < 4; ++m) {
    CAPTURE(m);
    CHECK_FALSE(results[m].failure.has_value());
    CHECK(bitwise_equal(results[m].parameters, solo[m].parameters));
  }
  REQUIRE(results[4].failure.has_value());
  CHECK(results[4].failure->find("a layer threw: kernel failed") != std::string::npos);
  REQUIRE(results[5].failure.has_value());
  CHECK(results[5].failure->find("the loss became") != std::string::npos);
  CHECK(results[5].steps < configs[5].steps);
  for (auto const& memory : trainer.device_memory()) CHECK(memory.in_use == 0); // everything released
}

TEST_CASE("the trace has one slice per task and stream, matching the executed tasks, and parses as JSON") {
  auto const configs = sweep();
  hydra::host_backend backend({.device_budgets = {96_KiB, 96_KiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"), {.record_trace = true});
  trainer.run();
  auto const decisions = trainer.report().decisions;
  auto const slices = trainer.trace();
  REQUIRE(slices.size() == 3 * decisions.size());
  std::multiset<std::tuple<std::size_t, std::size_t, std::size_t, int>> executed, traced;
  for (auto const& d : decisions)
    for (int kind = 0; kind < 3; ++kind) executed.insert({d.device, d.task.model, d.task.position, kind});
  for (auto const& s : slices) {
    traced.insert({s.device, s.task.model, s.task.position, static_cast<int>(s.stream)});
    CHECK(s.end >= s.start);
  }
  CHECK(traced == executed);

  std::string const path = (hydra::testing::scratch_directory("trainer_trace") / "trace.json").string();
  {
    std::ofstream out(path);
    hydra::write_chrome_trace(out, trainer.trace());
  }
  std::ifstream in(path);
  std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("\"traceEvents\"") != std::string::npos);
  CHECK(text.find("sgd w24 d6 shard 0 minibatch 0 forward") != std::string::npos);
  if (std::system("python3 --version > /dev/null 2>&1") == 0) {
    CHECK(std::system(("python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                       "sys.exit(0 if sum(e[\"ph\"]==\"X\" for e in d[\"traceEvents\"])==" +
                       std::to_string(slices.size()) + " else 1)' " + path)
                          .c_str()) == 0);
  }
  auto const summary = hydra::trace_summary(slices);
  CHECK(summary.find("device 0  compute") != std::string::npos);
  CHECK(summary.find("device 1  spill") != std::string::npos);
}

TEST_CASE("profiling minibatches replace FLOP estimates with measured costs, given estimates are kept") {
  auto configs = sweep();
  std::size_t const shards_of_first = [&] {
    hydra::host_backend probe({.device_budgets = {96_KiB, 96_KiB}});
    return hydra::multi_model_trainer(probe, configs, hydra::make_policy("sharp")).shards_of(0).size();
  }();
  configs[0].estimates = hydra::model_costs{std::vector<double>(shards_of_first, 0.5),
                                            std::vector<double>(shards_of_first, 1.5), configs[0].steps};
  hydra::host_backend backend({.device_budgets = {96_KiB, 96_KiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"));
  trainer.run();
  auto const& profiles = trainer.profiles();
  REQUIRE(profiles.size() == configs.size());
  CHECK(profiles[0].source == "estimates");
  CHECK(profiles[0].forward_seconds == std::vector<double>(shards_of_first, 0.5));
  for (std::size_t m = 1; m < configs.size(); ++m) {
    CAPTURE(m);
    CHECK(profiles[m].source == "measured");
    // The medians of every minibatch after the first (fewer than the 5 asked for).
    CHECK(profiles[m].measured_minibatches == configs[m].steps - 1);
    auto const& chain = trainer.shards_of(m);
    REQUIRE(profiles[m].forward_seconds.size() == chain.size());
    for (std::size_t s = 0; s < profiles[m].forward_seconds.size(); ++s) {
      CHECK(profiles[m].forward_seconds[s] > 0.0);
      CHECK(profiles[m].backward_seconds[s] > 0.0);
      CHECK(profiles[m].fetch_seconds[s] > 0.0);
      CHECK(profiles[m].state_bytes[s] == chain[s].extent_bytes());
      CHECK(profiles[m].parameter_bytes[s] == chain[s].parameter_bytes());
      CHECK(profiles[m].home_bytes[s] == chain[s].home_bytes());
      CHECK(profiles[m].scratch_bytes[s] == chain[s].working_set_bytes() - chain[s].extent_bytes());
      CHECK(profiles[m].scratch_bytes[s] >= chain[s].scratch.bytes);
      CHECK(profiles[m].input_bytes[s] ==
            configs[m].model.footprint(chain[s].first_layer).input_features * batch * sizeof(float));
    }
  }
  // The machine: budgets and link rates per device, launches, the host's cores.
  auto const profile = trainer.profile();
  REQUIRE(profile.devices.size() == 2);
  for (auto const& device : profile.devices) {
    CHECK(device.budget_bytes == 96_KiB);
    CHECK(device.h2d_bytes_per_second > 0);
    CHECK(device.d2h_bytes_per_second > 0);
  }
  CHECK(profile.launch_seconds > 0);
  CHECK(profile.host_cores == std::max(1U, std::thread::hardware_concurrency()));
  CHECK(profile.task_host_seconds >= 0);
  // Threads waking for one another: microseconds to a few milliseconds on a
  // loaded or sanitized machine, never nothing.
  CHECK(profile.handoff_seconds > 0);
  CHECK(profile.handoff_seconds < 0.5);
  std::string const path = (hydra::testing::scratch_directory("trainer_profile") / "profile.json").string();
  {
    std::ofstream out(path);
    hydra::write_profile_json(out, profile);
  }
  // The file reads back into the simulator as the profiled machine's workload,
  // with every measured figure; only the minibatch count is the reader's.
  hydra::sim::json_defaults defaults;
  defaults.minibatches = 3;
  auto const w = hydra::sim::read_workload_json(path, defaults);
  REQUIRE(w.devices.size() == 2);
  CHECK(w.devices[1].budget_bytes == 96_KiB);
  CHECK(w.devices[1].h2d_bytes_per_second == profile.devices[1].h2d_bytes_per_second);
  CHECK(w.launch_seconds == profile.launch_seconds);
  CHECK(w.handoff_seconds == profile.handoff_seconds);
  CHECK(w.host_cores == profile.host_cores);
  REQUIRE(w.models.size() == profiles.size());
  for (std::size_t m = 0; m < profiles.size(); ++m) {
    CAPTURE(m);
    CHECK(w.models[m].name == profiles[m].name);
    REQUIRE(w.models[m].shards.size() == profiles[m].forward_seconds.size());
    for (std::size_t s = 0; s < w.models[m].shards.size(); ++s) {
      CHECK(w.models[m].shards[s].forward_seconds == profiles[m].forward_seconds[s]);
      CHECK(w.models[m].shards[s].backward_seconds == profiles[m].backward_seconds[s]);
      CHECK(w.models[m].shards[s].state_bytes == profiles[m].state_bytes[s]);
      CHECK(w.models[m].shards[s].home_bytes == profiles[m].home_bytes[s]);
      CHECK(w.models[m].shards[s].scratch_bytes == profiles[m].scratch_bytes[s]);
    }
  }
  CHECK(hydra::sim::simulate(w, hydra::sharp{}).makespan_seconds > 0);
  auto with_wrong_estimates = [] {
    auto bad = sweep();
    hydra::model_costs wrong;
    wrong.forward_seconds = {1.0};
    wrong.backward_seconds = {1.0};
    wrong.minibatches = 1;
    bad[1].estimates = wrong;
    hydra::host_backend other({.device_budgets = {96_KiB, 96_KiB}});
    hydra::multi_model_trainer refused(other, bad, hydra::make_policy("sharp"));
  };
  CHECK_THROWS_WITH_AS(with_wrong_estimates(), doctest::Contains("estimates for 1 shards, but it has"),
                       hydra::invalid_argument);
}

TEST_CASE("a profile times compute, not the waits around it: streams that sleep between items do not inflate it") {
  // Every stream item first sleeps up to 20 ms (10 ms on average): a layer's
  // work, the marks around it, the copies. Timed on the wall clock, a shard's
  // forward would take tens of milliseconds (one sleep per layer call at
  // least: its one shard's ten layers, 100 ms on average); in the compute thread's CPU time
  // it is the layers' arithmetic: tens of microseconds, up to about 5 ms
  // under a sanitizer (5.4 ms seen in a sanitized CI run), hence bounds of
  // 15 ms forward and 30 ms backward, well under what the sleeps would add.
  std::vector<hydra::model_config> configs;
  configs.push_back({"w16 d4", mlp(16, 4), hydra::adam{}, 3, data_for(7), 3});
  hydra::host_backend backend({.device_budgets = {96_KiB}, .delays = {.enabled = true, .seed = 5, .max_delay = 20ms}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"));
  trainer.run();
  auto const& profile = trainer.profiles().at(0);
  REQUIRE(profile.source == "measured");
  CHECK(profile.measured_minibatches == 2);
  double const wall_per_task = std::chrono::duration<double>(trainer.report().makespan).count() /
                               static_cast<double>(total_tasks(configs, trainer));
  CHECK(wall_per_task > 40e-3); // the sleeps are there: several items per task
  for (std::size_t s = 0; s < profile.forward_seconds.size(); ++s) {
    CAPTURE(s);
    CHECK(profile.forward_seconds[s] < 15e-3);
    CHECK(profile.backward_seconds[s] < 30e-3);
  }
}

TEST_CASE("a profile measures each device's speed, and the simulator runs the profiled devices at it") {
  // Device 1 computes at a quarter of the speed of device 0 (its compute
  // stream spins for three times as long again as each piece of work took). The measurement needs
  // shards that run on both devices, two minibatches in a row (the first
  // after a move is cold and does not count): this policy gives minibatches
  // 0-1, 4-5, ... to device 0 and 2-3, 6-7, ... to device 1.
  struct alternating {
    [[nodiscard]] std::string name() const { return "alternating"; }
    std::optional<std::size_t> pick(std::span<hydra::ready_task const> ready, hydra::device_view const& device) const {
      for (std::size_t at = 0; at < ready.size(); ++at)
        if (ready[at].task.minibatch / 2 % 2 == device.device) return at;
      return std::nullopt;
    }
  };
  // Minibatches of 128 rows: with 8 the work of a task is a few microseconds,
  // and allocations and page faults (many more under a sanitizer, whose
  // quarantine keeps handing out fresh memory) moved whole phases of one
  // device by up to 2x (alike devices measured 0.44 in a sanitized CI run).
  constexpr std::size_t rows = 128;
  std::vector<hydra::model_config> configs;
  for (std::size_t m = 0; m < 4; ++m)
    configs.push_back(
        {"w128 d3 " + std::to_string(m), hydra::layers::make_mlp(features, 128, 3, classes, rows), hydra::adam{}, 10,
         hydra::synthetic_classification{.features = features, .classes = classes, .batch = rows, .seed = 20 + m}, m});
  hydra::host_backend backend({.device_budgets = {4_MiB, 4_MiB}, .device_speeds = {1.0, 0.25}});
  hydra::multi_model_trainer trainer(backend, configs, alternating{}, {.profile_minibatches = 9});
  trainer.run();
  auto const profile = trainer.profile();
  REQUIRE(profile.devices.size() == 2);
  double const ratio = profile.devices[1].speed / profile.devices[0].speed;
  CAPTURE(profile.devices[0].speed);
  CAPTURE(profile.devices[1].speed);
  // About 0.25; CPU time on a shared machine, under a sanitizer especially,
  // moves by tens of percent (0.18-0.33 here, alike devices 0.76-1.29, in 62
  // sanitized runs with and without a busy loop on the other core).
  CHECK(ratio > 0.08);
  CHECK(ratio < 0.5);
  auto const w = hydra::sim::to_workload(profile, 10);
  CHECK(w.devices[1].speed == profile.devices[1].speed);
  std::ostringstream out;
  hydra::write_profile_json(out, profile);
  CHECK(hydra::sim::parse_workload_json(out.str(), "profile", {.minibatches = 10}).devices[1].speed ==
        profile.devices[1].speed);
  // Devices alike measure alike.
  hydra::host_backend alike({.device_budgets = {4_MiB, 4_MiB}});
  hydra::multi_model_trainer same(alike, configs, alternating{}, {.profile_minibatches = 9});
  same.run();
  double const alike_ratio = same.profile().devices[1].speed / same.profile().devices[0].speed;
  CHECK(alike_ratio > 0.5);
  CHECK(alike_ratio < 2.0);
}

TEST_CASE("randomized sweeps on 1-8 delay-injected devices: every task once, budgets held, each model as alone") {
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    std::mt19937_64 random(seed);
    std::vector<hydra::model_config> configs;
    std::size_t const models = 1 + random() % 5;
    for (std::size_t m = 0; m < models; ++m) {
      std::size_t const width = 8 + 8 * (random() % 4), depth = 1 + random() % 6;
      std::string name = "m";
      name += std::to_string(m);
      hydra::model_config config{name, mlp(width, depth), hydra::adam{}, 1 + random() % 3, data_for(seed * 10 + m), m};
      if (random() % 2 == 0) config.optimizer = hydra::sgd_momentum{};
      configs.push_back(std::move(config));
    }
    std::vector<std::size_t> capacities(1 + random() % 8);
    for (auto& capacity : capacities) capacity = 96_KiB + 32_KiB * (random() % 3);
    std::string const policy =
        std::vector<std::string>{"sharp", "fifo", "round_robin", "random_pick", "model_parallel"}[random() % 5];
    CAPTURE(seed);
    CAPTURE(policy);
    CAPTURE(capacities.size());
    hydra::host_backend backend(
        {.device_budgets = capacities,
         .delays = {.enabled = true, .seed = seed, .max_delay = std::chrono::microseconds(50)}});
    // Odd seeds: the longest model's task is never queued ahead; seeds 2 and
    // 3 of every 4: activations kept on the devices (freed blocks poisoned),
    // and in every other such pair checkpoints too; forward activations kept
    // on seeds 1, 3, 4 and 6 of every 8, with those or alone.
    bool const keep = seed % 4 >= 2, checkpoints = keep && seed % 8 >= 4;
    bool const forward = seed % 8 == 1 || seed % 8 == 3 || seed % 8 == 4 || seed % 8 == 6;
    // Half of those spill what leaves a device, the others drop it. Every
    // third seed leaves each update on its device until the shard is evicted.
    bool const spill = seed % 16 >= 8;
    auto const evicted = spill ? hydra::evicted_activations::spill : hydra::evicted_activations::recompute;
    CAPTURE(keep);
    CAPTURE(checkpoints);
    CAPTURE(forward);
    CAPTURE(spill);
    hydra::multi_model_trainer trainer(
        backend, configs, hydra::make_policy(policy, seed),
        {.poison_freed_blocks = keep || forward ? std::optional<std::uint8_t>(0xA5) : std::nullopt,
         .keep_activations = keep,
         .keep_activation_checkpoints = checkpoints,
         .keep_forward_activations = forward,
         .evicted_forward_activations = evicted,
         .write_back_on_eviction = seed % 3 == 2,
         .driver = {.never_queue_longest = seed % 2 == 1}});
    trainer.run(); // completes out of chain order would throw; a lost task would hang
    CHECK(trainer.report().decisions.size() == total_tasks(configs, trainer));
    for (std::size_t m = 0; m < configs.size(); ++m) {
      CAPTURE(m);
      CHECK(trainer.results()[m].steps == configs[m].steps);
      CHECK(bitwise_equal(trainer.results()[m].parameters, train_alone(configs[m]).parameters));
    }
    auto const memory = trainer.device_memory();
    for (std::size_t d = 0; d < capacities.size(); ++d) {
      CHECK(memory[d].peak_in_use <= capacities[d]);
      CHECK(memory[d].in_use == 0);
    }
  }
}

namespace {

// A layer that refuses its task on the enqueueing thread, as a cuBLAS or cuDNN
// call that returns an error does on the CUDA backend.
struct refusing_layer {
  std::size_t features;
  std::string name() const { return "refusing"; }
  hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = 0, .input_features = features, .output_features = features};
  }
  void initialize(float*, std::uint64_t) const {}
  void forward(context&, hydra::forward_arguments const&) const {
    throw hydra::backend_error("cuBLAS", "CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute",
                               "cublasSgemm(handle, ...)", std::source_location::current());
  }
  void backward(context&, hydra::backward_arguments const&) const {}
};

} // namespace

TEST_CASE("a layer that fails while its work is enqueued stops only its model, and its memory is returned") {
  for (bool const keep : {false, true}) { // and with the other models' activations kept: all freed
    CAPTURE(keep);
    auto configs = sweep();
    std::vector<hydra::any_layer<context>> broken{hydra::layers::dense(features, classes), refusing_layer{classes},
                                                  hydra::layers::softmax_cross_entropy(classes)};
    configs.push_back(
        {"refuses", hydra::sequential_model<context>(std::move(broken), batch), hydra::adam{}, 3, data_for(5), 15});
    hydra::host_backend backend({.device_budgets = {96_KiB, 96_KiB}});
    hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"),
                                       {.poison_freed_blocks = std::uint8_t{0xFF},
                                        .keep_activations = keep,
                                        .keep_activation_checkpoints = keep,
                                        .keep_forward_activations = keep});
    // An observer told of the stop already sees it in the trainer's progress.
    struct stop_watcher final : hydra::sweep_observer<hydra::host_backend> {
      hydra::multi_model_trainer const* trainer = nullptr;
      std::vector<std::size_t> stopped_seen;
      void on_stop(std::size_t, std::string const&) override {
        stopped_seen.push_back(trainer->progress().models_stopped);
      }
    };
    auto const watcher = std::make_shared<stop_watcher>();
    watcher->trainer = &trainer;
    trainer.observe(watcher);
    trainer.run();
    CHECK(watcher->stopped_seen == std::vector<std::size_t>{1});
    auto const& results = trainer.results();
    for (std::size_t m = 0; m < 4; ++m) {
      CAPTURE(m);
      CHECK_FALSE(results[m].failure.has_value());
      CHECK(bitwise_equal(results[m].parameters, train_alone(configs[m]).parameters));
    }
    REQUIRE(results[4].failure.has_value());
    CHECK(results[4].failure->find("enqueueing model 4 minibatch 0 shard 0 forward failed: cuBLAS error") !=
          std::string::npos);
    CHECK(results[4].failure->find("cublasSgemm") != std::string::npos);
    for (auto const& memory : trainer.device_memory()) CHECK(memory.in_use == 0); // its scratch too
  }
}

TEST_CASE("a data source that throws ends the sweep with its error: it is not one model's fault") {
  auto configs = sweep();
  configs[2].data = [](std::size_t) -> hydra::minibatch { throw std::out_of_range("dataset exhausted"); };
  hydra::host_backend backend({.device_budgets = {96_KiB, 96_KiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"));
  CHECK_THROWS_WITH_AS(trainer.run(), "dataset exhausted", std::out_of_range);
}

TEST_CASE("a stream that stops running its work ends the sweep with an error naming it, not a hang") {
  // Devices' streams are made in order compute, prefetch, spill: stream 2 is
  // device 0's spill stream, which carries completions; stream 3 is device 1's
  // compute. Either way the whole device is lost, as a GPU is after a fault.
  for (std::uint64_t stalled : {2U, 3U}) {
    CAPTURE(stalled);
    hydra::host_backend backend(
        {.device_budgets = {96_KiB, 96_KiB}, .stall = {.enabled = true, .stream = stalled, .after_items = 40}});
    hydra::multi_model_trainer trainer(backend, sweep(), hydra::make_policy("sharp"),
                                       {.stream_check_interval = std::chrono::milliseconds(20)});
    auto const started = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(trainer.run(), doctest::Contains("the device was lost after stream"), hydra::stream_error);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(30));
  }
}

namespace {

// Counts what a sweep shows its observers, and checks the order it shows it in.
struct counting_observer final : hydra::sweep_observer<hydra::host_backend> {
  std::vector<std::size_t> launched, enqueued, completed; // per model
  std::vector<std::size_t> in_flight;                     // per device: enqueued, not yet completed
  std::size_t most_in_flight = 0, stops = 0, finishes = 0, out_of_order = 0;
  std::vector<std::size_t> next_position; // per model: the chain position expected next

  counting_observer(std::size_t models, std::size_t devices)
      : launched(models), enqueued(models), completed(models), in_flight(devices), next_position(models) {}

  void on_launch(hydra::task const& t, std::size_t, device_streams const&) override { ++launched[t.model]; }
  void on_enqueued(hydra::task const& t, std::size_t d, device_streams const&) override {
    ++enqueued[t.model];
    out_of_order += t.position != next_position[t.model];
    most_in_flight = std::max(most_in_flight, ++in_flight[d]);
  }
  void on_complete(hydra::task const& t, std::size_t d) override {
    ++completed[t.model];
    ++next_position[t.model];
    --in_flight[d];
  }
  void on_stop(std::size_t, std::string const&) override { ++stops; }
  void on_finish() override { ++finishes; }
};

} // namespace

TEST_CASE("observers see every task enqueued and completed once, in chain order, within the queue depth") {
  for (std::size_t depth : {0U, 1U, 2U}) {
    CAPTURE(depth);
    auto const configs = sweep();
    hydra::host_backend backend({.device_budgets = {96_KiB, 128_KiB}});
    hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"),
                                       {.driver = {.queue_depth = depth}});
    auto const seen = std::make_shared<counting_observer>(configs.size(), 2);
    trainer.observe(seen);
    trainer.run();
    for (std::size_t m = 0; m < configs.size(); ++m) {
      std::size_t const tasks = 2 * trainer.shards_of(m).size() * configs[m].steps;
      CHECK(seen->enqueued[m] == tasks);
      CHECK(seen->completed[m] == tasks);
      CHECK(seen->launched[m] >= tasks); // a launch without room beside the queue is retried
    }
    CHECK(seen->out_of_order == 0);
    CHECK(seen->most_in_flight <= 1 + depth);
    CHECK(seen->most_in_flight >= 1);
    CHECK(seen->stops == 0);
    CHECK(seen->finishes == 1);
  }
}

namespace {

// A sweep run whole under sharp, and again in two parts: one minibatch of each
// model under fifo, then the rest, resumed from the first part's snapshots,
// under round_robin. One backend per trainer: each trainer's pools reserve
// its devices whole.
struct whole_and_in_parts {
  explicit whole_and_in_parts(std::function<std::vector<hydra::model_config>()> const& make) {
    whole = std::make_unique<hydra::multi_model_trainer>(*backend(), make(), hydra::sharp{});
    whole->run();
    auto first = make(); // every model has at least 2 minibatches
    for (auto& c : first) {
      total.push_back(c.steps);
      c.steps = 1;
    }
    part_one = std::make_unique<hydra::multi_model_trainer>(*backend(), first, hydra::fifo{});
    part_one->run();
    auto second = make();
    for (std::size_t m = 0; m < second.size(); ++m) {
      second[m].resume = part_one->snapshot(m);
      second[m].steps = total[m] - 1;
    }
    part_two = std::make_unique<hydra::multi_model_trainer>(*backend(), second, hydra::round_robin{});
    part_two->run();
  }

  std::vector<std::unique_ptr<hydra::host_backend>> backends; // declared first: outlives the trainers
  std::unique_ptr<hydra::multi_model_trainer> whole, part_one, part_two;
  std::vector<std::size_t> total; // each model's minibatches

private:
  hydra::host_backend* backend() {
    backends.push_back(
        std::make_unique<hydra::host_backend>(hydra::host_backend_options{.device_budgets = {48_KiB, 48_KiB}}));
    return backends.back().get();
  }
};

} // namespace

TEST_CASE("a sweep stopped after some minibatches and resumed from snapshots ends bitwise as an uninterrupted one") {
  whole_and_in_parts const run(sweep);
  for (std::size_t m = 0; m < run.total.size(); ++m) {
    INFO("model " << m);
    REQUIRE(run.part_one->snapshot(m).has_value());
    CHECK(run.part_one->snapshot(m)->minibatches_done == 1);
    CHECK(run.part_two->results()[m].parameters == run.whole->results()[m].parameters);
    CHECK(run.part_two->snapshot(m)->minibatches_done == run.total[m]);
    CHECK(run.part_two->snapshot(m)->optimizer_state == run.whole->snapshot(m)->optimizer_state);
  }

  auto wrong = sweep();
  wrong[0].resume = hydra::model_snapshot{{1.0F}, {}, 1};
  hydra::host_backend backend({.device_budgets = {48_KiB, 48_KiB}});
  CHECK_THROWS_WITH_AS(hydra::multi_model_trainer(backend, wrong, hydra::sharp{}),
                       doctest::Contains("model 0 (sgd w24 d6): the snapshot to resume from holds 1 parameters"),
                       hydra::invalid_argument);
}

TEST_CASE("scheduled learning rates resume where they stopped: a sweep cut mid-warm-up ends as an uninterrupted one") {
  auto scheduled = [] {
    auto configs = sweep();
    hydra::learning_rate_schedule const schedule{.warmup_steps = 1, .decay_steps = 2, .final_fraction = 0.3F};
    for (auto& c : configs) std::visit([&](auto& optimizer) { optimizer.schedule = schedule; }, c.optimizer);
    return configs;
  };
  whole_and_in_parts const run(scheduled);
  auto const plain = sweep();
  for (std::size_t m = 0; m < run.total.size(); ++m) {
    INFO("model " << m);
    auto const& parameters = run.part_two->results()[m].parameters;
    CHECK(bitwise_equal(parameters, run.whole->results()[m].parameters));
    CHECK(bitwise_equal(parameters, train_alone(scheduled()[m]).parameters));
    CHECK_FALSE(bitwise_equal(parameters, train_alone(plain[m]).parameters)); // the schedule mattered
  }

  auto wrong = scheduled();
  std::visit([](auto& optimizer) { optimizer.schedule.final_fraction = -0.5F; }, wrong[1].optimizer);
  hydra::host_backend backend({.device_budgets = {48_KiB, 48_KiB}});
  CHECK_THROWS_WITH_AS(hydra::multi_model_trainer(backend, wrong, hydra::sharp{}),
                       doctest::Contains("model 1 (adam w32 d8): learning_rate_schedule: final_fraction -0.5"),
                       hydra::invalid_argument);
}

TEST_CASE("a profile's statistic: the median, the middle two's mean for an even count") {
  CHECK(hydra::detail::median({}) == 0.0);
  CHECK(hydra::detail::median({3.0}) == 3.0);
  CHECK(hydra::detail::median({9.0, 1.0, 2.0}) == 2.0);
  CHECK(hydra::detail::median({1.0, 100.0, 2.0, 4.0}) == 3.0); // one slow minibatch does not move it far
}

namespace {

// sharp, recording the speed each asking device showed (std::function: the
// trainer keeps its own copy of the policy).
struct speed_recorder {
  std::function<void(std::size_t device, double speed)> seen;
  hydra::sharp inner{};
  std::optional<std::size_t> pick(std::span<hydra::ready_task const> ready, hydra::device_view const& device) {
    seen(device.device, device.speed);
    return inner.pick(ready, device);
  }
  [[nodiscard]] std::string name() const { return "speed_recorder"; }
};

} // namespace

TEST_CASE("policies see each device's speed: the backend's declared ones, or those the options give") {
  auto const speeds_seen = [](hydra::host_backend_options machine, std::vector<double> given) {
    hydra::host_backend backend(std::move(machine));
    std::vector<double> seen(backend.device_count(), -1);
    hydra::multi_model_trainer trainer(backend, sweep(), speed_recorder{[&](std::size_t d, double speed) {
                                         CHECK((seen[d] < 0 || seen[d] == speed)); // the same at every decision
                                         seen[d] = speed;
                                       }},
                                       {.device_speeds = std::move(given)});
    trainer.run();
    return seen;
  };
  CHECK(speeds_seen({.device_budgets = {64_KiB, 64_KiB}}, {}) == std::vector<double>{1, 1});
  CHECK(speeds_seen({.device_budgets = {64_KiB, 64_KiB}, .device_speeds = {1, 0.5}}, {}) ==
        std::vector<double>{1, 0.5});
  CHECK(speeds_seen({.device_budgets = {64_KiB, 64_KiB}, .device_speeds = {1, 0.5}}, {2, 3}) ==
        std::vector<double>{2, 3});

  hydra::host_backend backend({.device_budgets = {64_KiB, 64_KiB}});
  CHECK_THROWS_WITH_AS(hydra::multi_model_trainer(backend, sweep(), hydra::sharp{}, {.device_speeds = {1}}),
                       "multi_model_trainer: device_speeds gives 1 speeds for the backend's 2 devices",
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::multi_model_trainer(backend, sweep(), hydra::sharp{}, {.device_speeds = {1, 0}}),
                       doctest::Contains("device_speeds gives device 1 a speed of 0.000000; a speed is > 0"),
                       hydra::invalid_argument);
}

TEST_CASE("checkpoints are kept, and kept activations copied between devices, only beside kept activations") {
  hydra::host_backend backend({.device_budgets = {64_KiB}});
  CHECK_THROWS_WITH_AS(
      hydra::multi_model_trainer(backend, sweep(), hydra::sharp{}, {.keep_activation_checkpoints = true}),
      doctest::Contains("keep_activation_checkpoints keeps checkpoints beside the activations kept on the "
                        "device: set keep_activations too"),
      hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(
      hydra::multi_model_trainer(backend, sweep(), hydra::sharp{}, {.copy_activations_between_devices = true}),
      doctest::Contains("copy_activations_between_devices copies the activations kept on a device: set "
                        "keep_activations too"),
      hydra::invalid_argument);
}
