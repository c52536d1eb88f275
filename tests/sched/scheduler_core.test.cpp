// The decision core driven by a randomized stand-in for a runtime: devices with
// up to two tasks in flight, completions in random order.
#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/scheduler_core.hpp"

namespace {

std::vector<hydra::model_costs> random_models(std::mt19937_64& random) {
  std::vector<hydra::model_costs> models(1 + random() % 12);
  for (auto& m : models) {
    std::size_t const shards = 1 + random() % 6;
    for (std::size_t s = 0; s < shards; ++s) {
      m.forward_seconds.push_back(0.1 + static_cast<double>(random() % 100) / 10.0);
      m.backward_seconds.push_back(2 * m.forward_seconds.back());
    }
    m.minibatches = 1 + random() % 4;
  }
  return models;
}

// A seeded random sweep: its models, its device count, and the generator the
// drive goes on with.
struct random_sweep {
  std::mt19937_64 random;
  std::vector<hydra::model_costs> models;
  std::size_t devices;
  explicit random_sweep(std::uint64_t seed) : random(seed), models(random_models(random)), devices(1 + random() % 8) {}
};

// Drives `core` to its end as a runtime would: each device holds up to two
// tasks, and a random busy device completes its oldest. Checks chain order and
// that work never stalls; `decided(task, device)` sees every decision. Returns
// each model's next position (its chain's length, once all ran) and the count run.
template <class Policy, class Decided>
std::pair<std::vector<std::size_t>, std::size_t> drive(hydra::scheduler_core& core, Policy& policy,
                                                       std::mt19937_64& random, Decided&& decided) {
  std::size_t const devices = core.device_count();
  std::vector<std::vector<hydra::task>> in_flight(devices);
  std::vector<std::size_t> next_position(core.model_count(), 0);
  std::size_t executed = 0, rounds = 0;
  while (!core.finished()) {
    REQUIRE(++rounds < 100000);
    for (std::size_t d = 0; d < devices; ++d)
      while (in_flight[d].size() < 2) {
        auto const t = core.decide(policy, d);
        if (!t) break;
        decided(*t, d);
        in_flight[d].push_back(*t);
      }
    // Complete one task at the head of a random busy device's queue.
    std::vector<std::size_t> busy;
    for (std::size_t d = 0; d < devices; ++d)
      if (!in_flight[d].empty()) busy.push_back(d);
    REQUIRE(!busy.empty()); // nothing in flight while work remains would be a deadlock
    std::size_t const d = busy[random() % busy.size()];
    hydra::task const done = in_flight[d].front();
    in_flight[d].erase(in_flight[d].begin());
    CHECK(done.position == next_position[done.model]); // chain order, no task twice
    ++next_position[done.model];
    core.complete(done);
    ++executed;
  }
  return {next_position, executed};
}

} // namespace

TEST_CASE("every task runs exactly once, in chain order, under every policy, and the schedule terminates") {
  for (std::uint64_t seed = 0; seed < 60; ++seed) {
    for (std::string const name : {"sharp", "fifo", "round_robin", "random_pick", "model_parallel", "task_parallel"}) {
      CAPTURE(seed);
      CAPTURE(name);
      random_sweep sweep(seed);
      auto& [random, models, devices] = sweep;
      hydra::scheduler_core core(models, devices);
      auto policy = hydra::make_policy(name, seed);
      auto const [next_position, executed] = drive(core, policy, random, [](hydra::task const&, std::size_t) {});
      std::size_t expected = 0;
      for (std::size_t m = 0; m < models.size(); ++m) {
        CHECK(next_position[m] == core.tasks_of(m));
        CHECK(core.model_done(m));
        CHECK(core.remaining_seconds(m) == doctest::Approx(0.0).epsilon(1e-9));
        expected += core.tasks_of(m);
      }
      CHECK(executed == expected);
      CHECK(core.decisions().size() == expected);
    }
  }
}

TEST_CASE("a model's tasks never overlap: its next task is ready only once the previous completed") {
  std::vector<hydra::model_costs> models{{{1.0, 1.0}, {2.0, 2.0}, 2}};
  hydra::scheduler_core core(models, 4);
  hydra::sharp policy;
  auto const first = core.decide(policy, 0);
  REQUIRE(first.has_value());
  CHECK_FALSE(core.decide(policy, 1).has_value());
  CHECK_THROWS_WITH_AS(core.complete(hydra::task_at(0, 2, 1)), doctest::Contains("which is not in flight"),
                       hydra::invalid_argument);
  core.complete(*first);
  auto const second = core.decide(policy, 1);
  REQUIRE(second.has_value());
  CHECK(second->position == 1);
  CHECK(second->shard == 1);
  CHECK(second->pass == hydra::direction::forward);
  CHECK(hydra::task_at(0, 2, 2).pass == hydra::direction::backward);
  CHECK(hydra::task_at(0, 2, 2).shard == 1);
  CHECK(hydra::task_at(0, 2, 4).minibatch == 1);
}

TEST_CASE("a pick of the held model is not taken: its task stays ready, unlogged, and keeps its place") {
  // Model 1 has the most work left (3 + 3 against 1 + 1 and 2 + 2).
  std::vector<hydra::model_costs> models{{{1.0}, {1.0}, 1}, {{3.0}, {3.0}, 1}, {{2.0}, {2.0}, 1}};
  hydra::scheduler_core core(models, 2);
  CHECK(core.longest_remaining_model() == 1);
  hydra::sharp policy;
  CHECK_FALSE(core.decide(policy, 0, 1).has_value()); // sharp picks model 1, which is held
  CHECK(core.ready().size() == 3);
  CHECK(core.decisions().empty());
  CHECK(core.in_flight() == 0);
  hydra::fifo oldest_first;
  auto const first = core.decide(oldest_first, 0, 1); // fifo picks model 0: taken
  REQUIRE(first.has_value());
  CHECK(first->model == 0);
  auto const longest = core.decide(oldest_first, 1); // model 1, still the oldest ready task
  REQUIRE(longest.has_value());
  CHECK(longest->model == 1);
  // In flight, the longest model is still the longest; finished or stopped, it is not.
  CHECK(core.longest_remaining_model() == 1);
  core.complete(*longest); // model 1: 3 left, model 2: 4
  CHECK(core.longest_remaining_model() == 2);
  core.stop(2);
  CHECK(core.longest_remaining_model() == 1);
  core.complete(*first);
  while (!core.finished()) core.complete(*core.decide(policy, 0));
  CHECK(core.longest_remaining_model() == hydra::nowhere);
}

TEST_CASE("a stopped model leaves the ready set and the others finish") {
  std::vector<hydra::model_costs> models{{{1.0}, {1.0}, 3}, {{1.0}, {1.0}, 3}};
  hydra::scheduler_core core(models, 1);
  hydra::fifo policy;
  core.stop(0);
  CHECK(core.model_stopped(0));
  while (!core.finished()) core.complete(*core.decide(policy, 0));
  CHECK(core.model_done(1));
  for (auto const& d : core.decisions()) CHECK(d.task.model == 1);
}

TEST_CASE("a ready task names the device that made its input activation, none for a minibatch's first") {
  std::vector<hydra::model_costs> models{{{1.0, 1.0}, {2.0, 2.0}, 2}};
  hydra::scheduler_core core(models, 3);
  hydra::fifo policy;
  CHECK(core.ready()[0].activation_on == hydra::nowhere); // forward 0 reads the minibatch from host memory
  std::size_t device = 0;
  std::vector<std::size_t> seen;
  while (!core.finished()) {
    auto const t = *core.decide(policy, device);
    core.complete(t, device);
    if (!core.ready().empty()) {
      auto const& next = core.ready()[0];
      bool const first_of_minibatch = next.task.pass == hydra::direction::forward && next.task.shard == 0;
      CHECK(next.activation_on == (first_of_minibatch ? hydra::nowhere : device));
      seen.push_back(next.activation_on);
    }
    device = (device + 1) % 3;
  }
  CHECK(seen.size() == 7);
  CHECK(seen[3] == hydra::nowhere); // after minibatch 0's last backward
}

TEST_CASE("affinity and cost updates reach the ready set") {
  std::vector<hydra::model_costs> models{{{1.0, 1.0}, {2.0, 2.0}, 1}};
  hydra::scheduler_core core(models, 2);
  core.set_resident(0, 0, 1);
  CHECK(core.ready()[0].resident_on == 1);
  CHECK(core.ready()[0].remaining_seconds == 6.0);
  core.update_costs(0, {{2.0, 2.0}, {4.0, 4.0}, 1});
  CHECK(core.ready()[0].remaining_seconds == 12.0);
  CHECK(core.ready()[0].task_seconds == 2.0);
  CHECK_THROWS_AS(hydra::scheduler_core({}, 1), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::scheduler_core(models, 0), doctest::Contains("device count is 0"),
                       hydra::invalid_argument);
}

TEST_CASE("a chain extended by training and evaluation segments: its tasks, next uses and remaining work") {
  std::mt19937_64 random(17);
  for (int trial = 0; trial < 50; ++trial) {
    std::size_t const shards = 1 + random() % 4;
    hydra::model_costs costs;
    for (std::size_t s = 0; s < shards; ++s) {
      costs.forward_seconds.push_back(1.0 + static_cast<double>(random() % 7));
      costs.backward_seconds.push_back(2.0 + static_cast<double>(random() % 5));
    }
    costs.minibatches = random() % 3; // may start empty: a controller plans it
    hydra::scheduler_core core({costs}, 1);
    // The expected chain, task by task.
    std::vector<hydra::task> expected;
    std::size_t trained = 0;
    auto append = [&](hydra::task_purpose purpose, std::size_t minibatches, std::size_t segment) {
      for (std::size_t b = 0; b < minibatches; ++b) {
        if (purpose == hydra::task_purpose::train) {
          for (std::size_t s = 0; s < shards; ++s)
            expected.push_back({0, trained, s, hydra::direction::forward, expected.size(), purpose, segment});
          for (std::size_t s = shards; s-- > 0;)
            expected.push_back({0, trained, s, hydra::direction::backward, expected.size(), purpose, segment});
          ++trained;
        } else {
          for (std::size_t s = 0; s < shards; ++s)
            expected.push_back({0, b, s, hydra::direction::forward, expected.size(), purpose, segment});
        }
      }
    };
    std::size_t segment = 0;
    if (costs.minibatches > 0) append(hydra::task_purpose::train, costs.minibatches, segment++);
    CHECK(core.finished() == expected.empty());
    for (int more = 0; more < 3; ++more) {
      auto const purpose = random() % 2 == 0 ? hydra::task_purpose::train : hydra::task_purpose::evaluate;
      std::size_t const minibatches = 1 + random() % 3;
      // Extend while the chain is under way, or after it has ended.
      if (random() % 2 == 0) {
        hydra::fifo policy;
        while (!core.ready().empty() || core.in_flight() > 0) {
          auto const t = core.decide(policy, 0);
          REQUIRE(t);
          CHECK(*t == expected.at(t->position));
          core.complete(*t);
        }
      }
      core.extend(0, {purpose, minibatches});
      append(purpose, minibatches, segment++);
      REQUIRE(core.tasks_of(0) == expected.size());
      for (std::size_t p = 0; p < expected.size(); ++p) CHECK(core.task_at_position(0, p) == expected[p]);
      // Next uses against a walk along the chain; remaining work against a sum.
      for (std::size_t p = 0; p < expected.size(); ++p)
        for (std::size_t s = 0; s < shards; ++s) {
          std::size_t walk = std::numeric_limits<std::size_t>::max();
          for (std::size_t q = p + 1; q < expected.size(); ++q)
            if (expected[q].shard == s) {
              walk = q - p;
              break;
            }
          CHECK(core.tasks_until_next_use(0, p, s) == walk);
        }
      double sum = 0;
      for (std::size_t p = core.position_of(0); p < expected.size(); ++p) {
        auto const& t = expected[p];
        sum += t.pass == hydra::direction::forward ? costs.forward_seconds[t.shard] : costs.backward_seconds[t.shard];
      }
      CHECK(core.remaining_seconds(0) == doctest::Approx(sum));
    }
    hydra::fifo policy;
    while (!core.finished()) {
      auto const t = core.decide(policy, 0);
      REQUIRE(t);
      CHECK(*t == expected.at(t->position));
      core.complete(*t);
    }
    CHECK(core.position_of(0) == expected.size());
  }
}

TEST_CASE("a stopped model's chain cannot be extended, nor by nothing") {
  hydra::scheduler_core core({{{1.0}, {1.0}, 1}}, 1);
  CHECK_THROWS_WITH_AS(core.extend(0, {hydra::task_purpose::train, 0}), doctest::Contains("by 0 minibatches"),
                       hydra::invalid_argument);
  core.stop(0);
  CHECK_THROWS_WITH_AS(core.extend(0, {hydra::task_purpose::evaluate, 1}), doctest::Contains("was stopped"),
                       hydra::invalid_argument);
}

TEST_CASE("a restricted placement shows each device only the tasks it may run, and every task still runs once") {
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    for (std::string const name : {"sharp", "fifo", "round_robin", "random_pick"}) {
      CAPTURE(seed);
      CAPTURE(name);
      random_sweep sweep(seed);
      auto& [random, models, devices] = sweep;
      hydra::scheduler_core core(models, devices);
      std::vector<std::vector<bool>> placements(models.size());
      for (std::size_t m = 0; m < models.size(); ++m) {
        if (random() % 3 == 0) continue; // some models anywhere
        std::size_t const shards = models[m].forward_seconds.size();
        placements[m].assign(shards * devices, false);
        for (std::size_t s = 0; s < shards; ++s) {
          placements[m][s * devices + random() % devices] = true; // at least one device
          for (std::size_t d = 0; d < devices; ++d)
            if (random() % 2 == 0) placements[m][s * devices + d] = true;
        }
        core.restrict_placement(m, placements[m]);
      }
      auto const may_run = [&](hydra::task const& t, std::size_t d) {
        return placements[t.model].empty() || placements[t.model][t.shard * devices + d];
      };
      auto inner = hydra::make_policy(name, seed);
      struct checking_policy {
        hydra::any_policy* inner;
        decltype(may_run)* allowed;
        std::size_t shown_elsewhere = 0;
        std::optional<std::size_t> pick(std::span<hydra::ready_task const> ready, hydra::device_view const& device) {
          for (auto const& r : ready)
            if (!(*allowed)(r.task, device.device)) ++shown_elsewhere;
          return inner->pick(ready, device);
        }
        std::string name() const { return inner->name(); }
      } policy{&inner, &may_run};
      auto const next_position =
          drive(core, policy, random, [&](hydra::task const& t, std::size_t d) { CHECK(may_run(t, d)); }).first;
      CHECK(policy.shown_elsewhere == 0);
      for (std::size_t m = 0; m < models.size(); ++m) CHECK(next_position[m] == core.tasks_of(m));
    }
  }
}

TEST_CASE("a placement of the wrong size, or one that leaves a shard no device, is refused") {
  hydra::scheduler_core core({{{1.0, 1.0}, {2.0, 2.0}, 1}}, 2);
  CHECK_THROWS_WITH_AS(core.restrict_placement(0, std::vector<bool>(3, true)),
                       "scheduler: placement of model 0 names 3 shard-device pairs; it has 2 shards x 2 devices",
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(core.restrict_placement(0, {true, false, false, false}),
                       "scheduler: placement of model 0 leaves shard 1 no device to run on", hydra::invalid_argument);
  core.restrict_placement(0, {false, true, true, true});
  hydra::fifo policy;
  CHECK_FALSE(core.decide(policy, 0).has_value()); // shard 0 may run on device 1 only
  auto const first = core.decide(policy, 1);
  REQUIRE(first.has_value());
  CHECK(first->shard == 0);
  core.restrict_placement(0, {}); // anywhere again
  CHECK(core.may_run(*first, 0));
}
