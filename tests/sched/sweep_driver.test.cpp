// The sweep driver: idle devices first, then tasks queued ahead up to the queue
// depth; a launch without room goes back to the ready set and closes its device
// for the round; next uses along each model's chain; eviction's furthest-next-use
// choice. Everything here is what the runtime and the simulator share.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/policies.hpp"
#include "hydra/sched/sweep_driver.hpp"

namespace {

constexpr std::size_t never = std::numeric_limits<std::size_t>::max();

// `models` models of `shards` shards, one minibatch each, model m the longest for m = 0.
std::vector<hydra::model_costs> costs(std::size_t models, std::size_t shards, std::size_t minibatches = 1) {
  std::vector<hydra::model_costs> out;
  for (std::size_t m = 0; m < models; ++m) {
    double const scale = static_cast<double>(models - m);
    out.push_back({std::vector<double>(shards, scale), std::vector<double>(shards, 2 * scale), minibatches});
  }
  return out;
}

struct launch_log {
  std::vector<std::pair<std::size_t, hydra::task>> launches;
  auto accept_all() {
    return [this](hydra::task const& t, std::size_t d) {
      launches.push_back({d, t});
      return hydra::launch_outcome::launched;
    };
  }
};

} // namespace

TEST_CASE("a round offers every idle device a task before any device gets a second") {
  hydra::sweep_driver driver(costs(5, 2), 2); // queue depth 1: two tasks per device at most
  hydra::sharp policy;
  launch_log log;
  driver.fill(policy, log.accept_all());
  // sharp: models 0..4 by remaining work; devices 0, 1 first, then 0, 1 again.
  REQUIRE(log.launches.size() == 4);
  CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(0, 2, 0)});
  CHECK(log.launches[1] == std::pair<std::size_t, hydra::task>{1, hydra::task_at(1, 2, 0)});
  CHECK(log.launches[2] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(2, 2, 0)});
  CHECK(log.launches[3] == std::pair<std::size_t, hydra::task>{1, hydra::task_at(3, 2, 0)});
  CHECK(driver.queued(0).size() == 2);
  CHECK(driver.queued(1).size() == 2);
  CHECK(driver.core().in_flight() == 4);

  // Device 1's running task completes: it is offered model 1's next task or model 4's,
  // and sharp prefers the longer model 1.
  driver.complete(hydra::task_at(1, 2, 0), 1);
  log.launches.clear();
  driver.fill(policy, log.accept_all());
  REQUIRE(log.launches.size() == 1);
  CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{1, hydra::task_at(1, 2, 1)});
}

TEST_CASE("queue depth 0 gives each device one task at a time, and depth 2 three") {
  for (std::size_t depth : {0U, 2U}) {
    CAPTURE(depth);
    hydra::sweep_driver driver(costs(8, 1), 2, {.queue_depth = depth});
    hydra::fifo policy;
    launch_log log;
    driver.fill(policy, log.accept_all());
    CHECK(log.launches.size() == 2 * (1 + depth));
    CHECK(driver.queued(0).size() == 1 + depth);
    CHECK(driver.queued(1).size() == 1 + depth);
  }
}

TEST_CASE("never_queue_longest: the longest model's task waits for the first idle device, not behind a busy one") {
  // Model 0 has the most work; models 1-4 less, in that order. Two devices.
  for (bool const hold : {false, true}) {
    CAPTURE(hold);
    hydra::sweep_driver driver(costs(5, 2), 2, {.queue_depth = 1, .never_queue_longest = hold});
    hydra::sharp policy;
    launch_log log;
    driver.fill(policy, log.accept_all()); // d0: 0 then 2, d1: 1 then 3
    REQUIRE(log.launches.size() == 4);
    // Model 0's task completes: its next one is ready while both devices are busy.
    driver.complete(hydra::task_at(0, 2, 0), 0);
    log.launches.clear();
    driver.fill(policy, log.accept_all());
    if (!hold) {
      // Queued behind model 2's task on device 0.
      REQUIRE(log.launches.size() == 1);
      CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(0, 2, 1)});
      continue;
    }
    // Held: device 0, whose pick it is, queues nothing (not even model 4's task).
    CHECK(log.launches.empty());
    CHECK(driver.queued(0).size() == 1);
    REQUIRE(driver.core().ready().size() == 2);
    // Device 1 frees first (model 1's task, then model 3's): the task goes there, at once.
    driver.complete(hydra::task_at(1, 2, 0), 1);
    driver.fill(policy, log.accept_all());
    CHECK(log.launches.empty()); // device 1 still runs model 3's task
    driver.complete(hydra::task_at(3, 2, 0), 1);
    driver.fill(policy, log.accept_all());
    REQUIRE_FALSE(log.launches.empty());
    CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{1, hydra::task_at(0, 2, 1)});
    // Once it runs, the others queue ahead as before.
    CHECK(driver.queued(1).size() == 2);
  }
}

TEST_CASE("take_back: a device whose compute frees hands its queued task back for its running model's next one") {
  // Model m has 5 - m units of work per shard and pass: model 0 the most.
  auto const accept = [](hydra::task const&, std::size_t) { return true; };
  auto const refuse = [](hydra::task const&, std::size_t) { return false; };
  hydra::sweep_driver driver(costs(5, 2), 2);
  hydra::sharp policy;
  launch_log log;
  driver.fill(policy, log.accept_all()); // d0: model 0, then 2; d1: model 1, then 3
  REQUIRE(log.launches.size() == 4);
  // Never, or for the longest model only (device 1 runs model 1's task), or
  // when the queued task's compute has started: nothing is handed back.
  CHECK_FALSE(driver.take_back(hydra::take_back_rule::none, 0, hydra::task_at(2, 2, 0), accept));
  CHECK_FALSE(driver.take_back(hydra::take_back_rule::longest, 1, hydra::task_at(3, 2, 0), accept));
  CHECK_FALSE(driver.take_back(hydra::take_back_rule::any, 0, hydra::task_at(2, 2, 0), refuse));
  CHECK_FALSE(driver.take_back(hydra::take_back_rule::any, 0, hydra::task_at(0, 2, 0), accept)); // the running one
  CHECK_FALSE(driver.take_back(hydra::take_back_rule::any, 0, hydra::task_at(4, 2, 0), accept)); // not queued here
  CHECK(driver.queued(0).size() == 2);
  CHECK(driver.taken_back() == 0);

  // Device 0 finished model 0's compute: model 0 has 25 units left after it,
  // model 2 (queued) 18. Model 2's task goes back to the ready set.
  std::vector<std::pair<hydra::task, std::size_t>> withdrawn;
  CHECK(driver.take_back(hydra::take_back_rule::longest, 0, hydra::task_at(2, 2, 0),
                         [&](hydra::task const& t, std::size_t d) {
                           withdrawn.push_back({t, d});
                           return true;
                         }));
  REQUIRE(withdrawn.size() == 1);
  CHECK(withdrawn[0] == std::pair<hydra::task, std::size_t>{hydra::task_at(2, 2, 0), 0});
  CHECK(driver.queued(0).size() == 1);
  CHECK(driver.core().ready().size() == 2); // models 4 and 2
  CHECK(driver.taken_back() == 1);
  // Device 0 queues nothing ahead until model 0's task completes ...
  log.launches.clear();
  driver.fill(policy, log.accept_all());
  CHECK(log.launches.empty());
  // ... then it is idle, and takes model 0's next task, then model 2's again.
  driver.complete(hydra::task_at(0, 2, 0), 0);
  driver.fill(policy, log.accept_all());
  REQUIRE(log.launches.size() == 2);
  CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(0, 2, 1)});
  CHECK(log.launches[1] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(2, 2, 0)});
  // The decision log keeps the withdrawn decision: it was carried out, then undone.
  CHECK(std::count(driver.core().decisions().begin(), driver.core().decisions().end(),
                   hydra::decision{0, hydra::task_at(2, 2, 0)}) == 2);

  // A running model with less work left than the queued one keeps its queue:
  // device 1 completes model 1's task and runs model 3's, with model 1's next
  // queued behind it.
  driver.complete(hydra::task_at(1, 2, 0), 1);
  log.launches.clear();
  driver.fill(policy, log.accept_all());
  REQUIRE(log.launches.size() == 1);
  CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{1, hydra::task_at(1, 2, 1)});
  CHECK_FALSE(driver.take_back(hydra::take_back_rule::any, 1, hydra::task_at(1, 2, 1), accept));
}

TEST_CASE("take_back: a deeper queue hands back every task behind the next, and a failed running task ends the wait") {
  hydra::sweep_driver driver(costs(6, 2), 2, {.queue_depth = 2});
  hydra::sharp policy;
  launch_log log;
  driver.fill(policy, log.accept_all()); // d0: models 0, 2, 4; d1: models 1, 3, 5
  REQUIRE(driver.queued(0).size() == 3);
  std::vector<hydra::task> withdrawn;
  CHECK(
      driver.take_back(hydra::take_back_rule::any, 0, hydra::task_at(2, 2, 0), [&](hydra::task const& t, std::size_t) {
        withdrawn.push_back(t);
        return true;
      }));
  CHECK(withdrawn == std::vector<hydra::task>{hydra::task_at(4, 2, 0), hydra::task_at(2, 2, 0)}); // the last first
  CHECK(driver.queued(0).size() == 1);
  CHECK(driver.core().ready().size() == 2);
  CHECK(driver.taken_back() == 2);
  driver.fill(policy, log.accept_all());
  CHECK(driver.queued(0).size() == 1); // waiting for model 0's task
  // Model 0's task fails (its model stops): the device no longer waits.
  driver.fail(hydra::task_at(0, 2, 0), 0);
  log.launches.clear();
  driver.fill(policy, log.accept_all());
  REQUIRE(log.launches.size() == 2);
  CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(2, 2, 0)});
  CHECK(log.launches[1] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(4, 2, 0)});

  // A refusal part-way: the tasks behind it stay handed back, and the device does not wait.
  hydra::sweep_driver partial(costs(6, 2), 2, {.queue_depth = 2});
  partial.fill(policy, log.accept_all());
  CHECK_FALSE(partial.take_back(hydra::take_back_rule::any, 0, hydra::task_at(2, 2, 0),
                                [](hydra::task const& t, std::size_t) { return t.model == 4; }));
  CHECK(partial.queued(0).size() == 2);
  CHECK(partial.taken_back() == 1);
  log.launches.clear();
  partial.fill(policy, log.accept_all());
  REQUIRE(log.launches.size() == 1);
  CHECK(log.launches[0] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(4, 2, 0)});
}

TEST_CASE("take_back: a device is not kept for a chain whose next task may not run there") {
  auto const accept = [](hydra::task const&, std::size_t) { return true; };
  hydra::sweep_driver driver(costs(5, 2), 2);
  driver.restrict_placement(0, {true, true, false, true}); // model 0: shard 0 anywhere, shard 1 only on device 1
  hydra::sharp policy;
  launch_log log;
  driver.fill(policy, log.accept_all()); // d0: model 0 (shard 0), then model 2
  REQUIRE(driver.queued(0).size() == 2);
  REQUIRE(driver.queued(0)[0] == hydra::task_at(0, 2, 0));
  CHECK_FALSE(driver.take_back(hydra::take_back_rule::any, 0, driver.queued(0)[1], accept));
  CHECK(driver.queued(0).size() == 2);
}

TEST_CASE("a launch without room makes its task ready again and closes the device for the round") {
  hydra::sweep_driver driver(costs(4, 1), 2);
  hydra::fifo policy;
  std::vector<std::pair<std::size_t, hydra::task>> offered;
  driver.fill(policy, [&](hydra::task const& t, std::size_t d) {
    offered.push_back({d, t});
    // Device 0 takes its first task, then has no room for a second.
    return d == 0 && !offered.empty() && offered.size() > 1 ? hydra::launch_outcome::no_room
                                                            : hydra::launch_outcome::launched;
  });
  // Round: d0 <- model 0, d1 <- model 1, d0 refuses model 2 (and is closed),
  // d1 <- model 3: model 2 is ready again, but as the newest ready task.
  REQUIRE(offered.size() == 4);
  CHECK(offered[2] == std::pair<std::size_t, hydra::task>{0, hydra::task_at(2, 1, 0)});
  CHECK(offered[3] == std::pair<std::size_t, hydra::task>{1, hydra::task_at(3, 1, 0)});
  CHECK(driver.released() == 1);
  CHECK(driver.queued(0).size() == 1);
  CHECK(driver.queued(1).size() == 2);
  REQUIRE(driver.core().ready().size() == 1);
  CHECK(driver.core().ready()[0].task.model == 2);
}

TEST_CASE("a model stopped while its task is enqueued leaves the sweep and the others go on") {
  hydra::sweep_driver driver(costs(2, 1), 1, {.queue_depth = 0});
  hydra::fifo policy;
  driver.fill(policy, [](hydra::task const& t, std::size_t) {
    return t.model == 0 ? hydra::launch_outcome::stopped : hydra::launch_outcome::launched;
  });
  CHECK(driver.core().model_stopped(0));
  CHECK(driver.queued(0).empty()); // the device was closed for the round
  driver.fill(policy, launch_log{}.accept_all());
  REQUIRE(driver.queued(0).size() == 1);
  CHECK(driver.queued(0)[0].model == 1);
}

TEST_CASE("run drives to the end, and a policy that declines every task is an error naming it") {
  hydra::sweep_driver driver(costs(3, 2, 2), 2);
  hydra::round_robin policy;
  std::size_t launched = 0;
  driver.run(
      policy,
      [&](hydra::task const&, std::size_t) {
        ++launched;
        return hydra::launch_outcome::launched;
      },
      [&] {
        for (std::size_t d = 0; d < 2; ++d)
          if (!driver.queued(d).empty()) return driver.complete(driver.queued(d).front(), d);
      },
      "test");
  CHECK(launched == 3 * 2 * 2 * 2);
  CHECK(driver.finished());
  CHECK(driver.log().size() == 2 * launched); // each launched, then completed

  struct declines_everything {
    std::optional<std::size_t> pick(std::span<hydra::ready_task const>, hydra::device_view const&) {
      return std::nullopt;
    }
    std::string name() const { return "declines"; }
  } stubborn;
  hydra::sweep_driver stuck(costs(1, 1), 1);
  CHECK_THROWS_WITH_AS(stuck.run(
                           stubborn, launch_log{}.accept_all(), [] {}, "test"),
                       "test: policy declines declined every ready task while no task ran", hydra::error);
}

TEST_CASE("a completion the driver did not launch there is refused") {
  hydra::sweep_driver driver(costs(1, 1), 2);
  hydra::fifo policy;
  driver.fill(policy, launch_log{}.accept_all());
  CHECK_THROWS_WITH_AS(driver.complete(hydra::task_at(0, 1, 0), 1), doctest::Contains("which is not queued there"),
                       hydra::invalid_argument);
}

TEST_CASE("next uses follow each model's chain from its latest launched task") {
  // One model, 3 shards, 2 minibatches: F0 F1 F2 B2 B1 B0 | F0 F1 F2 B2 B1 B0.
  hydra::sweep_driver driver(costs(1, 3, 2), 1, {.queue_depth = 0});
  hydra::fifo policy;
  // Nothing launched yet: measured from position 0 (F0).
  CHECK(driver.next_use(0, 1) == 1);
  CHECK(driver.next_use(0, 0) == 5);
  std::size_t launched = 0;
  while (launched < 4) { // F0 F1 F2 B2
    driver.fill(policy, launch_log{}.accept_all());
    driver.complete(driver.queued(0).front(), 0);
    ++launched;
  }
  // At B2 (position 3): B1 next, then B0, then F0 of minibatch 1.
  CHECK(driver.next_use(0, 1) == 1);
  CHECK(driver.next_use(0, 0) == 2);
  CHECK(driver.next_use(0, 2) == 5);
  auto const ahead = driver.after(hydra::task_at(0, 3, 3), 3);
  REQUIRE(ahead.has_value());
  CHECK(*ahead == hydra::task_at(0, 3, 6));
  CHECK_FALSE(driver.after(hydra::task_at(0, 3, 3), 9).has_value()); // past the chain's 12 tasks
}

TEST_CASE("tasks_until_next_use agrees with walking the chain") {
  std::mt19937_64 random(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::size_t const shards = 1 + random() % 6, minibatches = 1 + random() % 3;
    std::size_t const total = 2 * shards * minibatches;
    std::size_t const position = random() % total, shard = random() % shards;
    std::size_t walked = never;
    for (std::size_t at = position + 1; at < total; ++at)
      if (hydra::task_at(0, shards, at).shard == shard) {
        walked = at - position;
        break;
      }
    CAPTURE(shards);
    CAPTURE(position);
    CAPTURE(shard);
    CHECK(hydra::tasks_until_next_use(shards, position, shard, total) == walked);
  }
}

TEST_CASE("eviction picks the eligible candidate needed furthest ahead, the first of equals") {
  std::vector<int> const candidates{10, 11, 12, 13};
  auto const distance = [](int id) -> std::size_t { return id == 11 || id == 13 ? 5 : static_cast<std::size_t>(id); };
  auto const all = [](int) { return true; };
  CHECK(hydra::furthest_next_use(candidates, all, distance) == 12);
  auto const not_twelve = [](int id) { return id != 12; };
  CHECK(hydra::furthest_next_use(candidates, not_twelve, distance) == 10);
  auto const odd = [](int id) { return id % 2 == 1; };
  CHECK(hydra::furthest_next_use(candidates, odd, distance) == 11); // 11 and 13 tie: the first
  CHECK_FALSE(hydra::furthest_next_use(
                  candidates, [](int) { return false; }, distance)
                  .has_value());
  auto const never_again = [](int id) { return id == 12 ? never : std::size_t{1}; };
  CHECK(hydra::furthest_next_use(candidates, all, never_again) == 12);
}

TEST_CASE("the working-set rule leaves room for the running task and the one queued behind it") {
  static_assert(hydra::working_set_limit(100) == 50);
  CHECK(2 * hydra::working_set_limit(1001) <= 1001);
}

TEST_CASE("device speeds reach the policies, and a list of the wrong length or a speed of 0 is refused") {
  hydra::sweep_driver driver(costs(2, 1), 2, {.queue_depth = 0}, {1.0, 0.5});
  CHECK(driver.core().device_speed(0) == 1.0);
  CHECK(driver.core().device_speed(1) == 0.5);
  hydra::sweep_driver alike(costs(2, 1), 2);
  CHECK(alike.core().device_speed(1) == 1.0);
  CHECK_THROWS_WITH_AS(hydra::sweep_driver(costs(2, 1), 2, {}, {1.0}), "scheduler: 1 device speeds for 2 devices",
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::sweep_driver(costs(2, 1), 2, {}, {1.0, 0.0}),
                       doctest::Contains("device 1 has a speed of 0"), hydra::invalid_argument);
}

TEST_CASE("placement by memory: a shard runs where half the budget holds it, and is unrestricted when it fits all") {
  std::vector<std::uint64_t> const shards{40, 20, 50};
  std::vector<std::uint64_t> const budgets{100, 60, 80};
  CHECK(hydra::placement_by_memory(shards, budgets) ==
        std::vector<bool>{true, false, true, true, true, true, true, false, false});
  std::vector<std::uint64_t> const small{30, 20};
  CHECK(hydra::placement_by_memory(small, budgets).empty());
  std::vector<std::uint64_t> const too_large{51};
  CHECK(hydra::placement_by_memory(too_large, budgets) == std::vector<bool>{false, false, false});
  std::vector<std::uint64_t> const odd{61, 60}; // half of 61 is 30: 30 fits, 31 does not
  std::vector<std::uint64_t> const near{30, 31};
  CHECK(hydra::placement_by_memory(near, odd) == std::vector<bool>{true, true, false, false});
}

TEST_CASE("a policy that places by rule and finds its shard restricted elsewhere ends the run naming the devices") {
  hydra::sweep_driver driver(costs(1, 2), 2);
  driver.restrict_placement(0, {true, false, true, false}); // both shards on device 0 only
  hydra::model_parallel policy;                             // wants shard 1 on device 1
  std::vector<std::pair<std::size_t, hydra::task>> launches;
  CHECK_THROWS_WITH_AS(driver.run(
                           policy,
                           [&](hydra::task const& t, std::size_t d) {
                             launches.push_back({d, t});
                             return hydra::launch_outcome::launched;
                           },
                           [&] { driver.complete(driver.queued(0).front(), 0); }, "test"),
                       "test: policy model_parallel declined every ready task while no task ran (shards run only "
                       "on the devices whose memory holds them, which a policy that fixes each shard's device may "
                       "not respect: model 0 minibatch 0 shard 1 forward may run on device 0)",
                       hydra::error);
  REQUIRE(launches.size() == 1); // shard 0 ran on device 0 (its own under model_parallel)
  CHECK(launches[0].first == 0);
}

TEST_CASE("a completion tells the model's next task which device made its input") {
  hydra::sweep_driver driver(costs(2, 2), 2);
  hydra::sharp policy;
  launch_log log;
  driver.fill(policy, log.accept_all());
  REQUIRE(log.launches.size() == 2);
  auto const [device, first] = log.launches[1]; // model 1's forward 0, on device 1
  REQUIRE(first.model == 1);
  driver.complete(first, device);
  hydra::ready_task const* next = nullptr;
  for (auto const& r : driver.core().ready())
    if (r.task.model == 1) next = &r;
  REQUIRE(next != nullptr);
  CHECK(next->task.shard == 1);
  CHECK(next->activation_on == device);
}
