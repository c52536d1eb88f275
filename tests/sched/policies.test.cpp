// What each built-in policy picks, and a user-written policy plugging in.
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <span>
#include <vector>

#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/policies.hpp"
#include "hydra/sched/scheduler_core.hpp"

namespace {

hydra::ready_task ready(std::size_t model, double remaining, std::uint64_t since, std::size_t shard = 0,
                        std::size_t resident = hydra::nowhere) {
  hydra::ready_task r;
  r.task = {model, 0, shard, hydra::direction::forward, shard};
  r.remaining_seconds = remaining;
  r.ready_since = since;
  r.resident_on = resident;
  return r;
}

hydra::device_view device(std::size_t id, std::size_t devices = 2, std::size_t models = 4, std::size_t first = 0) {
  return {id, devices, models, first};
}

// A user's policy: shortest remaining work first (the opposite of SHARP).
struct shortest_first {
  std::string name() const { return "shortest_first"; }
  std::optional<std::size_t> pick(std::span<hydra::ready_task const> ready, hydra::device_view const&) const {
    if (ready.empty()) return std::nullopt;
    std::size_t best = 0;
    for (std::size_t at = 1; at < ready.size(); ++at)
      if (ready[at].remaining_seconds < ready[best].remaining_seconds) best = at;
    return best;
  }
};
static_assert(hydra::policy<shortest_first>);

} // namespace

TEST_CASE("sharp picks the model with the longest remaining work, ties go to the resident shard, then the input "
          "activation made here, then the lower id") {
  hydra::sharp policy;
  std::vector<hydra::ready_task> set{ready(0, 5.0, 0), ready(1, 9.0, 1), ready(2, 7.0, 2)};
  CHECK(policy.pick(set, device(0)) == 1);
  set = {ready(3, 9.0, 0), ready(1, 9.0, 1), ready(2, 9.0, 2, 0, /*resident=*/1)};
  CHECK(policy.pick(set, device(0)) == 1); // no shard here: lower model id
  CHECK(policy.pick(set, device(1)) == 2); // model 2's shard is resident on device 1
  CHECK_FALSE(policy.pick({}, device(0)).has_value());
  // Then the task whose input activation was made on the asking device.
  set = {ready(3, 9.0, 0), ready(1, 9.0, 1), ready(2, 9.0, 2)};
  set[2].activation_on = 1;
  CHECK(policy.pick(set, device(0)) == 1);
  CHECK(policy.pick(set, device(1)) == 2);
  set[1].resident_on = 1; // a resident shard still comes first
  CHECK(policy.pick(set, device(1)) == 1);
}

TEST_CASE("fifo picks the task that became ready first") {
  hydra::fifo policy;
  std::vector<hydra::ready_task> set{ready(0, 1.0, 7), ready(1, 1.0, 3), ready(2, 1.0, 5)};
  CHECK(policy.pick(set, device(0)) == 1);
}

TEST_CASE("round_robin gives models turns in id order, skipping models with nothing ready") {
  hydra::round_robin policy;
  std::vector<hydra::ready_task> set{ready(2, 1, 0), ready(0, 1, 1), ready(3, 1, 2)};
  std::vector<std::size_t> order;
  for (int turn = 0; turn < 5; ++turn) order.push_back(set[*policy.pick(set, device(0))].task.model);
  CHECK(order == std::vector<std::size_t>{0, 2, 3, 0, 2});
}

TEST_CASE("random_pick is uniform-ish and reproducible from its seed") {
  std::vector<hydra::ready_task> set{ready(0, 1, 0), ready(1, 1, 1), ready(2, 1, 2), ready(3, 1, 3)};
  hydra::random_pick a(9), b(9);
  std::map<std::size_t, int> counts;
  for (int turn = 0; turn < 4000; ++turn) {
    auto const pa = a.pick(set, device(0));
    CHECK(pa == b.pick(set, device(0)));
    ++counts[*pa];
  }
  for (auto const& [index, count] : counts) CHECK(count > 800);
}

TEST_CASE("model_parallel runs only the first unfinished model, shard s on device s mod D") {
  hydra::model_parallel policy;
  std::vector<hydra::ready_task> set{ready(1, 1, 0, /*shard=*/3), ready(0, 1, 1, /*shard=*/3)};
  CHECK(policy.pick(set, device(1, 2, 4, /*first=*/0)) == 1);
  CHECK_FALSE(policy.pick(set, device(0, 2, 4, 0)).has_value()); // shard 3 belongs to device 1
  CHECK(policy.pick(set, device(1, 2, 4, /*first=*/1)) == 0);
}

TEST_CASE("task_parallel keeps model m on device m mod D") {
  hydra::task_parallel policy;
  std::vector<hydra::ready_task> set{ready(3, 1, 0), ready(2, 1, 1), ready(1, 1, 2)};
  CHECK(set[*policy.pick(set, device(0))].task.model == 2);
  CHECK(set[*policy.pick(set, device(1))].task.model == 1);
}

TEST_CASE("a user-written policy drives the scheduler core like a built-in one") {
  std::vector<hydra::model_costs> models{{{1.0}, {2.0}, 3}, {{1.0}, {2.0}, 1}};
  hydra::scheduler_core core(models, 1);
  shortest_first policy;
  auto const first = core.decide(policy, 0);
  REQUIRE(first.has_value());
  CHECK(first->model == 1); // 3 s left against 9 s
  hydra::any_policy erased{shortest_first{}};
  CHECK(erased.name() == "shortest_first");
  CHECK_FALSE(erased.needs_whole_models());
  CHECK(hydra::make_policy("task_parallel").needs_whole_models());
  CHECK(hydra::make_policy("sharp").name() == "sharp");
  CHECK_THROWS_WITH_AS(hydra::make_policy("shortest"), doctest::Contains("unknown policy 'shortest'"),
                       hydra::invalid_argument);
}
