// Whole models over nodes: longest-first placement and the moving rule, by hand.
#include <doctest/doctest.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/sched/node_balancer.hpp"

TEST_CASE("longest-first placement puts each model where it would end soonest") {
  // Sorted 5, 4, 3, 3, 3: 5 -> node 0 (ends 5), 4 -> node 1 (4), model 2's
  // 3 -> node 1 (7 against 8), model 3's 3 -> node 0 (8 against 10), model
  // 4's 3 -> node 1 (10 against 11).
  std::vector<double> const work{5, 4, 3, 3, 3};
  std::vector<hydra::node_capacity> const alike{{2, 2}, {2, 2}};
  CHECK(hydra::place_longest_first(work, alike) == std::vector<std::size_t>{0, 1, 1, 0, 1});
  // Node 1 twice as fast: 5 -> node 1 (ends 2.5), 4 -> node 0 (4 against
  // 4.5), 3 -> node 1 (4 against 7), 3 -> node 1 (5.5 against 7), 3 -> node 0
  // (7 against 7: the lower).
  std::vector<hydra::node_capacity> const fast_second{{1, 1}, {1, 2}};
  CHECK(hydra::place_longest_first(work, fast_second) == std::vector<std::size_t>{1, 0, 1, 1, 0});
  // Equal work keeps the models' order: ties go to the lower node.
  std::vector<double> const equal(4, 1.0);
  CHECK(hydra::place_longest_first(equal, alike) == std::vector<std::size_t>{0, 1, 0, 1});
}

TEST_CASE("longest-first placement skips nodes a model does not fit and refuses one that fits none") {
  std::vector<double> const work{5, 4};
  std::vector<hydra::node_capacity> const nodes{{1, 1}, {1, 1}};
  // Model 0 fits only node 1, so model 1 goes to the empty node 0.
  auto const only_second_for_zero = [](std::size_t m, std::size_t n) { return m != 0 || n == 1; };
  CHECK(hydra::place_longest_first(work, nodes, only_second_for_zero) == std::vector<std::size_t>{1, 0});
  auto const nowhere_for_one = [](std::size_t m, std::size_t) { return m != 1; };
  CHECK_THROWS_WITH_AS(hydra::place_longest_first(work, nodes, nowhere_for_one),
                       "node placement: model 1 fits the devices of no node", hydra::does_not_fit);
  CHECK_THROWS_WITH_AS(hydra::place_longest_first(work, std::vector<hydra::node_capacity>{}),
                       "node placement: node count is 0; at least 1 node is required", hydra::invalid_argument);
  CHECK_THROWS_AS(hydra::place_longest_first(work, std::vector<hydra::node_capacity>{{0, 1}}), hydra::invalid_argument);
}

namespace {

hydra::placed_model waiting(std::size_t node, double remaining, bool movable = true, double move = 1) {
  return {.node = node, .remaining_seconds = remaining, .unfinished = true, .movable = movable, .move_seconds = move};
}

} // namespace

TEST_CASE("a node with idle devices takes the longest movable model from the node with models waiting") {
  // Node 0: 2 devices, 4 models (2 waiting); node 1: 2 devices, nothing left.
  std::vector<hydra::node_capacity> const nodes{{2, 2}, {2, 2}};
  std::vector<hydra::placed_model> models{waiting(0, 10, false), waiting(0, 8), waiting(0, 9), waiting(0, 3),
                                          hydra::placed_model{.node = 1}};
  // Node 0 expects to finish at 30 / 2 = 15; model 2 moved ends at 1 + 9 = 10.
  CHECK(hydra::pick_move(models, nodes) == hydra::model_move{2, 0, 1});
  // A move that would end after the giver's own expected finish is not worth it.
  models[2].move_seconds = 7; // 7 + 9 = 16 > 15: the next longest, model 1 (1 + 8 = 9), moves instead
  CHECK(hydra::pick_move(models, nodes) == hydra::model_move{1, 0, 1});
  for (auto& m : models) m.move_seconds = 20;
  CHECK_FALSE(hydra::pick_move(models, nodes).has_value());
  // No node is short of work: 2 models on 2 devices each.
  std::vector<hydra::placed_model> const even{waiting(0, 5), waiting(0, 5), waiting(1, 5), waiting(1, 5)};
  CHECK_FALSE(hydra::pick_move(even, nodes).has_value());
  // Short of work, but nothing waits elsewhere (2 models on node 0's 2 devices).
  std::vector<hydra::placed_model> const busy{waiting(0, 5), waiting(0, 5), waiting(1, 5)};
  CHECK_FALSE(hydra::pick_move(busy, nodes).has_value());
}

TEST_CASE("the node with the most idle devices takes, from the node expected to finish last, a model that fits it") {
  // Node 0 (1 device, 3 models) expects 12; node 1 (1 device, 3 models) 21;
  // node 2 (2 devices, nothing) and node 3 (2 devices, 1 model) are short.
  std::vector<hydra::node_capacity> const nodes{{1, 1}, {1, 1}, {2, 2}, {2, 2}};
  std::vector<hydra::placed_model> const models{waiting(0, 4), waiting(0, 4), waiting(0, 4), waiting(1, 7),
                                                waiting(1, 7), waiting(1, 7), waiting(3, 2)};
  CHECK(hydra::pick_move(models, nodes) == hydra::model_move{3, 1, 2});
  // Node 1's models do not fit node 2: node 2 takes from node 0 instead.
  auto const not_one_to_two = [](std::size_t m, std::size_t n) { return !(m >= 3 && m < 6 && n == 2); };
  CHECK(hydra::pick_move(models, nodes, not_one_to_two) == hydra::model_move{0, 0, 2});
  // Nothing of nodes 0 and 1 fits node 2: node 3, the next short of work, takes.
  auto const none_to_two = [](std::size_t, std::size_t n) { return n != 2; };
  CHECK(hydra::pick_move(models, nodes, none_to_two) == hydra::model_move{3, 1, 3});
  // A finished or stopped model counts for nothing.
  std::vector<hydra::placed_model> done = models;
  for (std::size_t m = 3; m < 6; ++m) done[m].unfinished = false;
  CHECK(hydra::pick_move(done, nodes) == hydra::model_move{0, 0, 2});
  std::vector<hydra::placed_model> stray{hydra::placed_model{.node = 4, .unfinished = true}};
  CHECK_THROWS_AS((void)hydra::pick_move(stray, nodes), hydra::invalid_argument);
}
