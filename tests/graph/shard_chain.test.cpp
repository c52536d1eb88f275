// Partitioner properties on random models.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "hydra/graph/shard_chain.hpp"

using namespace hydra::literals;

namespace {

hydra::partition_input random_model(std::uint64_t seed, std::size_t budget) {
  std::mt19937_64 random(seed);
  hydra::partition_input in;
  in.batch = 1 + random() % 64;
  in.state_floats_per_parameter = random() % 3;
  in.budget = budget;
  std::size_t const layers = 1 + random() % 40;
  std::size_t features = 1 + random() % 512;
  for (std::size_t at = 0; at < layers; ++at) {
    std::size_t const next = 1 + random() % 512;
    bool const weighted = random() % 3 != 0;
    hydra::layer_footprint footprint{.parameter_count = weighted ? features * next + next : 0,
                                     .input_features = features,
                                     .output_features = weighted ? next : features,
                                     .workspace_bytes = (random() % 4 == 0) ? random() % 64_KiB : 0,
                                     .flops = static_cast<double>(1 + random() % 1000000)};
    features = footprint.output_features;
    in.layers.push_back(footprint);
    in.names.push_back("layer" + std::to_string(at));
  }
  return in;
}

void check_partition(hydra::shard_chain const& graph, hydra::partition_input const& in) {
  std::size_t next_layer = 0, next_parameter = 0;
  for (hydra::shard const& s : graph.shards()) {
    CHECK(s.first_layer == next_layer); // in order, each layer exactly once
    CHECK(s.end_layer > s.first_layer);
    CHECK(s.parameter_offset == next_parameter);
    CHECK(s.working_set_bytes() <= in.budget / 2); // every shard fits beside the next one's prefetch
    next_layer = s.end_layer;
    next_parameter += s.parameter_count;
  }
  CHECK(next_layer == in.layers.size());
}

} // namespace

TEST_CASE("greedy and balanced partitions of random models fit, keep order, and balanced is never worse") {
  int partitioned = 0, too_large = 0;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    CAPTURE(seed);
    auto const in = random_model(seed, 8_MiB);
    try {
      auto const greedy = hydra::shard_chain::greedy(in);
      check_partition(greedy, in);
      auto const balanced = hydra::shard_chain::balanced(in, greedy.size());
      check_partition(balanced, in);
      CHECK(balanced.size() == greedy.size());
      CHECK(balanced.largest_flops() <= greedy.largest_flops());
      ++partitioned;
    } catch (hydra::layer_too_large const& failure) {
      CHECK(failure.bytes() > failure.limit());
      ++too_large;
    }
  }
  CHECK(partitioned > 150); // the random models mostly fit...
  CHECK(too_large > 0);     // ...and some have a layer that cannot
}

TEST_CASE("greedy uses the fewest shards: no two neighbours would fit together") {
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    auto const in = random_model(seed, 16_MiB);
    try {
      auto const graph = hydra::shard_chain::greedy(in);
      for (std::size_t k = 0; k + 1 < graph.size(); ++k) {
        auto const merged = hydra::detail::make_shard(in, graph[k].first_layer, graph[k].end_layer + 1, 0);
        CHECK(merged.working_set_bytes() > graph.shard_limit());
      }
    } catch (hydra::layer_too_large const&) {
    }
  }
}

TEST_CASE("balanced evens out the cost of equal layers") {
  hydra::partition_input in;
  in.batch = 8;
  in.state_floats_per_parameter = 1;
  in.budget = 64_MiB;
  for (int at = 0; at < 12; ++at) {
    in.layers.push_back({.parameter_count = 1000, .input_features = 16, .output_features = 16, .flops = 10.0});
    in.names.push_back("equal");
  }
  auto const graph = hydra::shard_chain::balanced(in, 4);
  REQUIRE(graph.size() == 4);
  for (auto const& s : graph.shards()) CHECK(s.layer_count() == 3);
  CHECK(graph.largest_flops() == 30.0);
  CHECK_THROWS_WITH_AS(hydra::shard_chain::balanced(in, 13), doctest::Contains("shard count 13 is outside 1..12"),
                       hydra::invalid_argument);
}

TEST_CASE("a layer too large for any shard is named with its bytes and the budget") {
  hydra::partition_input in;
  in.batch = 4;
  in.state_floats_per_parameter = 2;
  in.budget = 1_MiB;
  in.layers = {{.parameter_count = 100, .input_features = 10, .output_features = 10},
               {.parameter_count = 1'000'000, .input_features = 10, .output_features = 10},
               {.parameter_count = 100, .input_features = 10, .output_features = 10}};
  in.names = {"small", "huge dense", "small"};
  try {
    static_cast<void>(hydra::shard_chain::greedy(in));
    FAIL("no error for a layer larger than the budget");
  } catch (hydra::layer_too_large const& failure) {
    std::string const text = failure.what();
    CHECK(failure.layer() == 1);
    CHECK(text.find("layer 1 (huge dense) needs 16") != std::string::npos);
    CHECK(text.find("shard limit of 524288 bytes") != std::string::npos);
    CHECK(text.find("device budget of 1048576 bytes") != std::string::npos);
  }
  CHECK_THROWS_AS(static_cast<void>(hydra::shard_chain::balanced(in, 2)), hydra::layer_too_large);
}

TEST_CASE("the scratch layout places every activation, both gradient buffers and the labels apart") {
  hydra::partition_input in;
  in.batch = 3;
  in.budget = 1_MiB;
  in.layers = {{.input_features = 5, .output_features = 7}, {.input_features = 7, .output_features = 2}};
  in.names = {"a", "b"};
  auto const layout = hydra::detail::layout_scratch(in, 0, 2);
  REQUIRE(layout.activations.size() == 3);
  CHECK(layout.activations[0] == 0);
  CHECK(layout.activations[1] == 256);
  CHECK(layout.activations[2] == 512);
  CHECK(layout.gradients[0] == 768);
  CHECK(layout.gradients[1] == 1024);
  CHECK(layout.labels > layout.gradients[1]);
  CHECK(layout.bytes % 256 == 0);
}
