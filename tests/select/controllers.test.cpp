// Model selection in the trainer: evaluation tasks against a plain forward
// pass, successive halving independent of the schedule, ASHA's invariants, a
// stopped model's memory returned, models started mid-run equal to the same
// models trained alone, and controlled sweeps resumed from their checkpoints.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/exploding_layer.hpp"

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t features = 16, classes = 5, batch = 8;

hydra::data_source data_for(std::uint64_t seed) {
  return hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = seed};
}

hydra::sequential_model<context> mlp(std::size_t width, std::size_t depth) {
  return hydra::layers::make_mlp(features, width, depth, classes, batch);
}

// Nine configurations that differ in width, depth and learning rate, so that
// their validation metrics differ; `steps` is each one's maximum.
std::vector<hydra::model_config> candidates(std::size_t steps, std::size_t count = 9) {
  std::vector<hydra::model_config> configs;
  for (std::size_t k = 0; k < count; ++k) {
    float const rate = 0.002F * static_cast<float>(1 + k % 5);
    hydra::model_config c{"m" + std::to_string(k),
                          mlp(16 + 8 * (k % 3), 3 + k % 4),
                          hydra::adam{.learning_rate = rate},
                          steps,
                          data_for(100 + k),
                          7 + k};
    c.validation = data_for(999); // one held-out set for every model
    c.validation_minibatches = 2;
    configs.push_back(std::move(c));
  }
  return configs;
}

// (Stopped models have no parameters: memcmp must not see their null data.)
bool bitwise_equal(std::vector<float> const& a, std::vector<float> const& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The weights `config` reaches trained alone for `steps` minibatches, in memory.
std::vector<float> train_alone(hydra::model_config const& config, std::size_t steps) {
  hydra::host_backend backend({.device_budgets = {64_MiB}});
  return std::visit(
      [&](auto const& optimizer) {
        hydra::single_model_trainer<std::decay_t<decltype(optimizer)>> trainer(backend, config.model, optimizer,
                                                                               {.seed = config.seed});
        trainer.train(steps, config.data);
        return trainer.parameters();
      },
      config.optimizer);
}

// A plain forward pass over `parameters`, layer by layer on one stream: the
// logits (the loss layer's input) and the per-sample losses of one minibatch.
std::pair<std::vector<float>, std::vector<float>> plain_forward(hydra::sequential_model<context> const& model,
                                                                std::vector<float> const& parameters,
                                                                hydra::minibatch const& data) {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  auto const stream = backend.create_stream(0);
  context on(backend, stream);
  std::vector<float> activation = data.inputs, logits;
  for (std::size_t k = 0; k < model.size(); ++k) {
    auto const shape = model.footprint(k);
    if (k + 1 == model.size()) logits = activation;
    std::vector<float> output(batch * shape.output_features);
    std::vector<std::byte> workspace(shape.workspace_bytes);
    hydra::forward_arguments a;
    a.batch = batch;
    a.input = activation.data();
    a.output = output.data();
    a.parameters = parameters.data() + model.parameter_offset(k);
    a.workspace = workspace.data();
    a.labels = data.labels.data();
    model.layer(k).forward(on, a);
    backend.synchronize(stream);
    activation = std::move(output);
  }
  return {logits, activation};
}

std::vector<hydra::model_result> run_sweep(std::vector<hydra::model_config> configs, hydra::any_controller controller,
                                           std::string const& policy, std::size_t devices, std::size_t budget) {
  hydra::host_backend backend({.device_budgets = std::vector<std::size_t>(devices, budget)});
  hydra::multi_model_trainer trainer(backend, std::move(configs), hydra::make_policy(policy, 5),
                                     {.controller = std::move(controller)});
  trainer.run();
  return trainer.results();
}

} // namespace

TEST_CASE("evaluation tasks through spilled shards give a plain forward pass's logits, loss and accuracy bitwise") {
  auto configs = candidates(3, 2);
  configs[1].model = mlp(64, 6); // several shards under the budget below
  std::mutex mutex;
  std::vector<std::vector<float>> seen; // the logits each evaluated minibatch delivered, in order
  for (auto& c : configs) {
    c.metric = [&](hydra::evaluation_batch const& b) {
      std::lock_guard lock(mutex);
      seen.emplace_back(b.logits.begin(), b.logits.end());
      return static_cast<double>(b.labels.size()); // a metric the test can predict
    };
  }
  hydra::host_backend backend({.device_budgets = {256_KiB, 256_KiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::sharp{});
  trainer.run();
  REQUIRE(trainer.shards_of(1).size() >= 3);
  seen.clear();
  auto const test_data = data_for(4242);
  constexpr std::size_t minibatches = 3;
  for (std::size_t m = 0; m < configs.size(); ++m) {
    CAPTURE(m);
    seen.clear();
    auto const scored = trainer.evaluate({m}, test_data, minibatches);
    REQUIRE(scored.size() == 1);
    REQUIRE(scored[0].has_value());
    REQUIRE(seen.size() == minibatches); // one model's pass: minibatches in order
    double loss = 0;
    std::size_t correct = 0;
    for (std::size_t k = 0; k < minibatches; ++k) {
      auto const data = test_data(k);
      auto const [logits, losses] = plain_forward(configs[m].model, trainer.results()[m].parameters, data);
      CHECK(bitwise_equal(seen[k], logits));
      for (std::size_t b = 0; b < batch; ++b) {
        loss += losses[b];
        auto const* row = logits.data() + b * classes;
        correct += static_cast<std::int32_t>(std::max_element(row, row + classes) - row) == data.labels[b];
      }
    }
    CHECK(scored[0]->samples == minibatches * batch);
    CHECK(scored[0]->loss == loss / static_cast<double>(minibatches * batch));
    CHECK(scored[0]->accuracy == static_cast<double>(correct) / static_cast<double>(minibatches * batch));
    CHECK(scored[0]->metric == static_cast<double>(batch));
    // Evaluation leaves the model as it was.
    CHECK(bitwise_equal(trainer.results()[m].parameters, train_alone(configs[m], 3)));
  }
  CHECK(trainer.report().bytes_to_host > 0); // the shards did spill
}

TEST_CASE("full_grid evaluates every evaluate_every minibatches and at the end") {
  auto configs = candidates(5, 3);
  hydra::host_backend backend({.device_budgets = {1_MiB, 1_MiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::sharp{},
                                     {.controller = hydra::full_grid{.evaluate_every = 2}});
  trainer.run();
  for (std::size_t m = 0; m < configs.size(); ++m) {
    auto const& r = trainer.results()[m];
    REQUIRE(r.validations.size() == 3);
    CHECK(r.validations[0].minibatches == 2);
    CHECK(r.validations[1].minibatches == 4);
    CHECK(r.validations[2].minibatches == 5);
    CHECK(r.steps == 5);
    CHECK_FALSE(r.stopped_early);
    CHECK(bitwise_equal(r.parameters, train_alone(configs[m], 5)));
  }
}

TEST_CASE("successive halving stops the same models with the same weights under every policy, device count and "
          "budget") {
  auto const configs = candidates(9);
  hydra::successive_halving const halving({.eta = 3, .min_minibatches = 1});
  auto const reference = run_sweep(configs, halving, "sharp", 1, 4_MiB);
  std::size_t survivors = 0;
  for (std::size_t m = 0; m < configs.size(); ++m) {
    auto const& r = reference[m];
    CAPTURE(m);
    CHECK_FALSE(r.failure);
    // Rungs at 1, 3 and 9 minibatches: 9 models, then 3, then 1.
    std::size_t const reached = r.validations.back().minibatches;
    CHECK((reached == 1 || reached == 3 || reached == 9));
    CHECK(r.steps == reached); // no model trains past its rung
    CHECK(r.validations.size() == (reached == 1 ? 1U : reached == 3 ? 2U : 3U));
    if (reached < 9) {
      REQUIRE(r.stopped_early);
      CHECK(r.stopped_early->find("successive_halving: rung") != std::string::npos);
      CHECK(r.parameters.empty()); // stopped: its state was released
    } else {
      ++survivors;
      CHECK_FALSE(r.stopped_early);
      CHECK(bitwise_equal(r.parameters, train_alone(configs[m], 9)));
    }
  }
  CHECK(survivors == 1);
  CHECK(std::count_if(reference.begin(), reference.end(),
                      [](auto const& r) { return r.validations.back().minibatches >= 3; }) == 3);

  for (auto const& [policy, devices, budget] : std::vector<std::tuple<std::string, std::size_t, std::size_t>>{
           {"fifo", 2, 96_KiB}, {"round_robin", 3, 128_KiB}, {"random_pick", 2, 1_MiB}, {"sharp", 3, 96_KiB}}) {
    CAPTURE(policy);
    CAPTURE(devices);
    CAPTURE(budget);
    auto const other = run_sweep(configs, halving, policy, devices, budget);
    for (std::size_t m = 0; m < configs.size(); ++m) {
      CAPTURE(m);
      CHECK(other[m].stopped_early == reference[m].stopped_early);
      CHECK(bitwise_equal(other[m].parameters, reference[m].parameters));
      REQUIRE(other[m].validations.size() == reference[m].validations.size());
      for (std::size_t k = 0; k < other[m].validations.size(); ++k) {
        CHECK(other[m].validations[k].metrics.loss == reference[m].validations[k].metrics.loss);
        CHECK(other[m].validations[k].metrics.accuracy == reference[m].validations[k].metrics.accuracy);
      }
    }
  }
}

TEST_CASE("successive halving goes on without a model that fails in a rung") {
  auto configs = candidates(9, 6);
  std::vector<hydra::any_layer<context>> broken{hydra::layers::dense(features, classes),
                                                hydra::testing::exploding_layer{classes},
                                                hydra::layers::softmax_cross_entropy(classes)};
  configs[2].model = hydra::sequential_model<context>(std::move(broken), batch);
  auto const results =
      run_sweep(configs, hydra::successive_halving({.eta = 2, .min_minibatches = 2}), "sharp", 2, 1_MiB);
  CHECK(results[2].failure);
  std::size_t finished = 0;
  for (std::size_t m = 0; m < configs.size(); ++m)
    if (m != 2) {
      CHECK_FALSE(results[m].failure);
      finished += results[m].steps == 9 ? 1 : 0;
    }
  CHECK(finished == 1); // 5 left at rung 0 -> 2 -> 1, trained to the end
}

TEST_CASE("a stopped model's memory is returned at once") {
  // A controller that trains every model one minibatch and then stops model 1,
  // reading the host pool around the stop.
  struct stop_one {
    hydra::multi_model_trainer const** trainer;
    std::size_t* freed;
    void start(hydra::sweep_plan& plan) {
      for (std::size_t m = 0; m < plan.model_count(); ++m) plan.train(m, 1);
    }
    void on_checkpoint(hydra::sweep_plan& plan, hydra::checkpoint const& reached) {
      if (reached.model != 1) return;
      std::size_t const before = (*trainer)->host_memory().in_use;
      plan.stop(1, "stopped by the test");
      *freed = before - (*trainer)->host_memory().in_use;
    }
    std::string name() const { return "stop_one"; }
  };
  auto const configs = candidates(4, 3);
  hydra::multi_model_trainer const* view = nullptr;
  std::size_t freed = 0;
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::sharp{}, {.controller = stop_one{&view, &freed}});
  view = &trainer;
  trainer.run();
  std::size_t homes = 0;
  for (auto const& s : trainer.shards_of(1).shards()) homes += s.home_bytes();
  CHECK(freed >= homes);
  CHECK(trainer.results()[1].stopped_early == std::optional<std::string>("stopped by the test"));
  CHECK(trainer.results()[1].parameters.empty());
  CHECK_FALSE(trainer.snapshot(1));
  CHECK_THROWS_WITH_AS(trainer.evaluate({1}, data_for(1), 1), doctest::Contains("was stopped by its controller"),
                       hydra::invalid_argument);
  // The others were never continued past their first minibatch: kept, and said so.
  CHECK(trainer.results()[0].parameters.size() == configs[0].model.parameter_count());
  REQUIRE(trainer.results()[0].stopped_early);
  CHECK(trainer.results()[0].stopped_early->find("stop_one did not continue it after 1 of 4") != std::string::npos);
}

// ASHA, watched from outside: every checkpoint it is shown and every
// train() it asks for, in order, through a plan that records and forwards.
struct watched_asha {
  struct event {
    bool checkpoint = false; // else a train() call
    std::size_t model = 0, minibatches = 0;
    double accuracy = 0, loss = 0;
  };
  struct recording_plan final : hydra::sweep_plan {
    hydra::sweep_plan* real;
    std::vector<event>* log;
    recording_plan(hydra::sweep_plan& r, std::vector<event>& l) : real(&r), log(&l) {}
    std::size_t model_count() const override { return real->model_count(); }
    std::size_t device_count() const override { return real->device_count(); }
    std::size_t max_minibatches(std::size_t m) const override { return real->max_minibatches(m); }
    std::size_t planned_minibatches(std::size_t m) const override { return real->planned_minibatches(m); }
    bool has_validation(std::size_t m) const override { return real->has_validation(m); }
    bool out(std::size_t m) const override { return real->out(m); }
    void train(std::size_t m, std::size_t n) override {
      log->push_back({false, m, n, 0, 0});
      real->train(m, n);
    }
    void stop(std::size_t m, std::string const& reason) override { real->stop(m, reason); }
  };
  hydra::asha inner;
  std::shared_ptr<std::vector<event>> log = std::make_shared<std::vector<event>>();
  void start(hydra::sweep_plan& plan) {
    recording_plan r(plan, *log);
    inner.start(r);
  }
  void on_checkpoint(hydra::sweep_plan& plan, hydra::checkpoint const& reached) {
    log->push_back({true, reached.model, reached.minibatches, reached.validation->accuracy, reached.validation->loss});
    recording_plan r(plan, *log);
    inner.on_checkpoint(r, reached);
  }
  std::string name() const { return inner.name(); }
};

TEST_CASE("ASHA: promotions only from the top 1/eta, no model past its rung, and models started mid-run train as "
          "they would alone") {
  auto const configs = candidates(9, 12);
  for (auto const& [policy, devices, running] : std::vector<std::tuple<std::string, std::size_t, std::size_t>>{
           {"sharp", 2, 0}, {"fifo", 3, 2}, {"random_pick", 2, 3}, {"round_robin", 1, 5}}) {
    CAPTURE(policy);
    CAPTURE(devices);
    hydra::host_backend backend({.device_budgets = std::vector<std::size_t>(devices, 256_KiB)});
    watched_asha watched{hydra::asha({.eta = 3, .min_minibatches = 1, .max_running = running})};
    auto const log = watched.log;
    hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy(policy, 3), {.controller = watched});
    trainer.run();
    // From the outside: a model asked to train after a checkpoint was promoted
    // out of the rung it reached there; it must rank within the best third of
    // that rung's results so far (ties: the lower model index, as asha breaks them).
    std::map<std::size_t, std::vector<std::tuple<double, double, std::size_t>>> reported; // minibatches -> results
    std::vector<std::size_t> last_checkpoint(configs.size(), 0);
    std::size_t promotions = 0;
    for (auto const& e : *log) {
      if (e.checkpoint) {
        reported[e.minibatches].emplace_back(-e.accuracy, e.loss, e.model);
        last_checkpoint[e.model] = e.minibatches;
        continue;
      }
      if (last_checkpoint[e.model] == 0) {
        CHECK(e.minibatches == 1); // a new configuration starts at the first rung
        continue;
      }
      ++promotions;
      auto rung = reported.at(last_checkpoint[e.model]);
      std::sort(rung.begin(), rung.end());
      auto const at = std::find_if(rung.begin(), rung.end(), [&](auto const& r) { return std::get<2>(r) == e.model; });
      REQUIRE(at != rung.end());
      CHECK(static_cast<std::size_t>(at - rung.begin()) < rung.size() / 3);
      CHECK(last_checkpoint[e.model] + e.minibatches == (last_checkpoint[e.model] == 1 ? 3U : 9U)); // the next rung
    }
    CHECK(promotions > 0);
    auto const* watched_state = trainer.controller().get<watched_asha>();
    REQUIRE(watched_state != nullptr);
    auto const* state = &watched_state->inner;
    auto const& rungs = state->rungs();
    REQUIRE(rungs.size() >= 2);
    CHECK(rungs[0].size() == configs.size()); // every configuration started
    std::vector<std::size_t> promoted_from(rungs.size(), 0);
    for (auto const& p : state->promotions()) {
      CHECK(p.rank < p.rung_size / 3);
      ++promoted_from.at(p.from_rung);
    }
    for (std::size_t k = 0; k + 1 < rungs.size(); ++k)
      CHECK(rungs[k + 1].size() == promoted_from[k]); // a model enters a rung only by promotion
    CHECK(rungs.size() == 3);                         // 1, 3 and 9 minibatches
    for (std::size_t m = 0; m < configs.size(); ++m) {
      CAPTURE(m);
      auto const& r = trainer.results()[m];
      REQUIRE(state->rung_of(m));
      std::size_t const rung_steps = *state->rung_of(m) == 0 ? 1 : *state->rung_of(m) == 1 ? 3 : 9;
      CHECK(r.steps == rung_steps); // exactly its rung's minibatches
      CHECK(r.validations.size() == *state->rung_of(m) + 1);
      CHECK(bitwise_equal(r.parameters, train_alone(configs[m], r.steps)));
    }
  }
}

TEST_CASE("halving rungs multiply by eta and end at each model's maximum, not just short of it") {
  auto rung = [](std::size_t min, std::size_t k, std::size_t max) {
    return hydra::detail::rung_minibatches(min, 3, k, max);
  };
  CHECK(rung(69, 0, 624) == 69);
  CHECK(rung(69, 1, 624) == 207);
  CHECK(rung(69, 2, 624) == 624); // 621 would leave the last 3 minibatches to a rung no one reaches
  CHECK(rung(69, 3, 624) == 624);
  CHECK(rung(1, 1, 9) == 3);
  CHECK(rung(1, 2, 9) == 9);
  CHECK(rung(300, 0, 624) == 624); // no room for a second rung: the first is the end
  CHECK(rung(5, 40, std::numeric_limits<std::size_t>::max()) == std::numeric_limits<std::size_t>::max()); // no overflow
  CHECK_THROWS_WITH_AS(hydra::successive_halving({.eta = 1}), doctest::Contains("eta"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::asha({.min_minibatches = 0}), doctest::Contains("min_minibatches"),
                       hydra::invalid_argument);
}

TEST_CASE("a model that fails at a launch after its rival's checkpoint still lets successive halving go on") {
  // Model 1's second minibatch is malformed: it is stopped while being
  // enqueued. model_parallel trains model 0 through its rung first, so model 1
  // fails with nothing else in flight, after the driver's last round.
  auto configs = candidates(6, 2);
  auto const good = configs[1].data;
  configs[1].data = [good](std::size_t k) { return k == 0 ? good(k) : hydra::minibatch{}; };
  for (std::size_t devices : {1U, 2U}) {
    CAPTURE(devices);
    auto const results = run_sweep(configs, hydra::successive_halving({.eta = 2, .min_minibatches = 2}),
                                   "model_parallel", devices, 1_MiB);
    REQUIRE(results[1].failure);
    CHECK(results[1].failure->find("minibatch") != std::string::npos);
    CHECK(results[0].steps == 6); // the survivor trained to its end
    CHECK_FALSE(results[0].stopped_early);
    CHECK(bitwise_equal(results[0].parameters, train_alone(configs[0], 6)));
  }
}

TEST_CASE("controllers and evaluate() refuse what they cannot do, clearly") {
  auto configs = candidates(4, 2);
  configs[1].validation_minibatches = 0;
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  {
    hydra::multi_model_trainer trainer(backend, configs, hydra::sharp{}, {.controller = hydra::successive_halving()});
    CHECK_THROWS_WITH_AS(trainer.run(), doctest::Contains("model 1 has no validation data"), hydra::invalid_argument);
  }
  hydra::multi_model_trainer trainer(backend, candidates(4, 2), hydra::sharp{});
  CHECK_THROWS_WITH_AS(trainer.evaluate({0}, data_for(1), 1), doctest::Contains("comes after run()"),
                       hydra::invalid_argument);
  trainer.run();
  auto const before = trainer.results()[0].parameters;
  hydra::data_source const wrong = [](std::size_t) { return hydra::minibatch{}; };
  CHECK_THROWS_WITH_AS(trainer.evaluate({0}, wrong, 1), doctest::Contains("evaluate(): model 0"),
                       hydra::invalid_argument);
  CHECK_FALSE(trainer.results()[0].failure); // refused before anything ran: the model keeps its weights
  REQUIRE(trainer.snapshot(0));
  CHECK(bitwise_equal(trainer.snapshot(0)->parameters, before));
  CHECK_THROWS_WITH_AS(trainer.evaluate({5}, data_for(1), 1), doctest::Contains("there is no model 5"),
                       hydra::invalid_argument);
  CHECK(trainer.evaluate({0, 1}, data_for(1), 1).size() == 2); // and it still evaluates
}

TEST_CASE("a controller copied into two trainers keeps a state for each") {
  hydra::any_controller const shared = hydra::asha({.eta = 3, .min_minibatches = 1});
  hydra::host_backend one({.device_budgets = {1_MiB}}), other({.device_budgets = {1_MiB}});
  hydra::multi_model_trainer first(one, candidates(3, 4), hydra::sharp{}, {.controller = shared});
  hydra::multi_model_trainer second(other, candidates(9, 6), hydra::sharp{}, {.controller = shared});
  first.run();
  second.run();
  CHECK(first.controller().get<hydra::asha>()->rungs()[0].size() == 4);
  CHECK(second.controller().get<hydra::asha>()->rungs()[0].size() == 6);
}

TEST_CASE("a loss that is not a number ranks below every other") {
  hydra::evaluation const nan{.loss = std::numeric_limits<double>::quiet_NaN(), .accuracy = 0.5};
  hydra::evaluation const fine{.loss = 9.0, .accuracy = 0.5};
  CHECK(hydra::better_than(fine, nan));
  CHECK_FALSE(hydra::better_than(nan, fine));
  CHECK_FALSE(hydra::better_than(nan, nan));
}

// ---- resuming a controlled sweep from a checkpoint ---------------------------------

namespace {

// What a checkpoint file would hold after each checkpoint of a run: every
// model's state at its latest checkpoint (none once stopped) and the history.
struct saved_sweep {
  std::vector<std::optional<hydra::model_snapshot>> states;
  hydra::controller_history history;
};

struct recorded_run {
  std::vector<hydra::model_result> results;
  hydra::controller_history history;
  std::vector<saved_sweep> saved; // after each checkpoint, in order
};

recorded_run run_recorded(std::vector<hydra::model_config> configs, hydra::any_controller controller,
                          std::string const& policy, std::size_t devices, hydra::multi_model_options options = {}) {
  hydra::host_backend backend({.device_budgets = std::vector<std::size_t>(devices, 128_KiB)});
  recorded_run out;
  saved_sweep now;
  now.states.resize(configs.size());
  for (std::size_t m = 0; m < configs.size(); ++m) now.states[m] = configs[m].resume;
  options.controller = std::move(controller);
  options.on_checkpoint = [&](hydra::model_checkpoint const& c) {
    now.states.at(c.reached.model) = c.state;
    for (std::size_t m : c.stopped) now.states.at(m).reset();
    now.history = *c.history;
    out.saved.push_back(now);
  };
  hydra::multi_model_trainer trainer(backend, std::move(configs), hydra::make_policy(policy, 3), options);
  trainer.run();
  out.results = trainer.results();
  out.history = trainer.history();
  return out;
}

// The sweep `configs` continued from `saved`: each model from its saved
// state, with the steps it has left, and the controller rebuilt from the history.
std::vector<hydra::model_config> resumed_configs(std::vector<hydra::model_config> configs, saved_sweep const& saved) {
  for (std::size_t m = 0; m < configs.size(); ++m) {
    configs[m].resume = saved.states[m];
    if (saved.states[m]) configs[m].steps -= saved.states[m]->minibatches_done;
  }
  return configs;
}

// A checkpoint's identity for comparing histories whose order the schedule decides.
std::vector<std::tuple<std::size_t, std::size_t, double, double>> as_set(hydra::controller_history const& history) {
  std::vector<std::tuple<std::size_t, std::size_t, double, double>> out;
  for (auto const& e : history)
    out.emplace_back(e.reached.model, e.reached.minibatches, e.reached.validation ? e.reached.validation->accuracy : -1,
                     e.reached.validation ? e.reached.validation->loss : -1);
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST_CASE("successive halving cut at any checkpoint and resumed from it stops the same models with the same weights") {
  auto const configs = candidates(9);
  hydra::successive_halving const halving({.eta = 3, .min_minibatches = 1});
  // With updates left on the devices too: each state handed out at a
  // checkpoint must have been written home first, or the resumed run differs.
  for (bool const at_eviction : {false, true}) {
    CAPTURE(at_eviction);
    auto const whole = run_recorded(configs, halving, "sharp", 2, {.write_back_on_eviction = at_eviction});
    REQUIRE(whole.saved.size() == 9 + 3 + 1); // a checkpoint per model and rung
    // The state handed over at a checkpoint is the model's state there.
    for (std::size_t m = 0; m < configs.size(); ++m)
      if (!whole.results[m].stopped_early) {
        REQUIRE(whole.saved.back().states[m]);
        CHECK(whole.saved.back().states[m]->minibatches_done == 9);
        CHECK(bitwise_equal(whole.saved.back().states[m]->parameters, whole.results[m].parameters));
      }
    // Mid-rung, the rung's end (stops decided), the second rung, the last checkpoint.
    for (std::size_t cut : {0U, 4U, 8U, 10U, 11U, 12U}) {
      CAPTURE(cut);
      auto const& saved = whole.saved[cut];
      auto const resumed = run_recorded(resumed_configs(configs, saved), halving, "fifo", 3,
                                        {.write_back_on_eviction = at_eviction, .resume_history = saved.history});
      CHECK(as_set(resumed.history) == as_set(whole.history));
      for (std::size_t m = 0; m < configs.size(); ++m) {
        CAPTURE(m);
        CHECK(resumed.results[m].stopped_early.has_value() == whole.results[m].stopped_early.has_value());
        CHECK_FALSE(resumed.results[m].failure);
        CHECK(bitwise_equal(resumed.results[m].parameters, whole.results[m].parameters));
      }
    }
  }
}

TEST_CASE("ASHA resumed from a checkpoint keeps its invariants and its models train as they would alone") {
  auto const configs = candidates(9, 12);
  hydra::asha const search({.eta = 3, .min_minibatches = 1, .max_running = 3});
  auto const whole = run_recorded(configs, search, "sharp", 2);
  REQUIRE(whole.saved.size() > 12);
  for (std::size_t cut : {2U, 11U, static_cast<unsigned>(whole.saved.size() - 2)}) {
    CAPTURE(cut);
    auto const& saved = whole.saved[cut];
    hydra::host_backend backend({.device_budgets = std::vector<std::size_t>(2, 128_KiB)});
    hydra::multi_model_trainer trainer(backend, resumed_configs(configs, saved), hydra::make_policy("round_robin", 3),
                                       {.controller = search, .resume_history = saved.history});
    trainer.run();
    // The history goes on from the saved one.
    REQUIRE(trainer.history().size() >= saved.history.size());
    CHECK(as_set({trainer.history().begin(),
                  trainer.history().begin() + static_cast<std::ptrdiff_t>(saved.history.size())}) ==
          as_set(saved.history));
    auto const* state = trainer.controller().get<hydra::asha>();
    REQUIRE(state != nullptr);
    auto const& rungs = state->rungs();
    CHECK(rungs.at(0).size() == configs.size()); // every configuration started, once
    std::vector<std::size_t> promoted_from(rungs.size(), 0);
    for (auto const& p : state->promotions()) {
      CHECK(p.rank < p.rung_size / 3);
      ++promoted_from.at(p.from_rung);
    }
    for (std::size_t k = 0; k + 1 < rungs.size(); ++k) CHECK(rungs[k + 1].size() == promoted_from[k]);
    for (std::size_t m = 0; m < configs.size(); ++m) {
      CAPTURE(m);
      auto const& r = trainer.results()[m];
      REQUIRE(state->rung_of(m));
      std::size_t const rung_steps = *state->rung_of(m) == 0 ? 1 : *state->rung_of(m) == 1 ? 3 : 9;
      std::size_t const before = saved.states[m] ? saved.states[m]->minibatches_done : 0;
      CHECK(before + r.steps == rung_steps); // no model past its rung, none retrained
      if (!r.parameters.empty()) CHECK(bitwise_equal(r.parameters, train_alone(configs[m], rung_steps)));
    }
  }
}

TEST_CASE("a resume history that does not fit the sweep is refused before anything trains") {
  auto const configs = candidates(9);
  hydra::successive_halving const halving({.eta = 3, .min_minibatches = 1});
  auto const whole = run_recorded(configs, halving, "sharp", 2);
  auto const& saved = whole.saved[10]; // in the second rung
  auto const refused = [&](std::vector<hydra::model_config> c, hydra::multi_model_options o, std::string const& what) {
    CAPTURE(what);
    hydra::host_backend backend({.device_budgets = {128_KiB}});
    hydra::multi_model_trainer trainer(backend, std::move(c), hydra::make_policy("sharp"), o);
    CHECK_THROWS_WITH_AS(trainer.run(), doctest::Contains(what.c_str()), hydra::invalid_argument);
    for (auto const& r : trainer.results()) CHECK(r.steps == 0);
  };
  // Another controller's options: the first rung at 2 minibatches, not 1.
  refused(resumed_configs(configs, saved),
          {.controller = hydra::successive_halving({.eta = 3, .min_minibatches = 2}), .resume_history = saved.history},
          "reached a checkpoint at minibatch 1, but successive_halving had planned 2 minibatches");
  // A model resumed from an older state than its last checkpoint.
  auto stale = saved;
  std::size_t survivor = 0;
  while (!stale.states[survivor]) ++survivor;
  stale.states[survivor].reset(); // as if it had never been saved
  refused(resumed_configs(configs, stale), {.controller = halving, .resume_history = saved.history},
          "resumes from minibatch 0, but its last checkpoint in the history is at minibatch");
  // A checkpoint of a model the sweep does not have.
  auto foreign = saved.history;
  foreign.push_back({{configs.size(), 1, hydra::evaluation{}}, std::nullopt});
  refused(resumed_configs(configs, saved), {.controller = halving, .resume_history = foreign},
          "a checkpoint of model 9, but the sweep has 9");
}
