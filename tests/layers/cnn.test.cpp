// make_cnn, and a host CNN trained sharded and spilled: its weights equal, bit
// for bit, those of the same CNN trained alone with every layer resident.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/train/multi_model_trainer.hpp"

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t batch = 8, classes = 4, side = 6, pixels = side * side;
// Activations dominate a CNN's first layers, parameters its head: balanced so
// that the tightest budget the partitioner accepts cuts it into 7 shards.
hydra::layers::cnn_shape const small_cnn{
    .input = {1, side, side}, .block_channels = {8, 16}, .hidden = 96, .classes = 4};

// Each image's label is the quadrant holding its brightest pixel: learnable.
hydra::data_source images(std::uint64_t salt) {
  return [salt](std::size_t step) {
    std::mt19937_64 random(salt * 1000 + step);
    std::normal_distribution<float> normal(0.0F, 1.0F);
    hydra::minibatch data;
    data.inputs.resize(batch * pixels);
    for (float& x : data.inputs) x = normal(random);
    for (std::size_t b = 0; b < batch; ++b) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < pixels; ++i)
        if (data.inputs[b * pixels + i] > data.inputs[b * pixels + best]) best = i;
      data.labels.push_back(
          static_cast<std::int32_t>((best / side >= side / 2 ? 2 : 0) + (best % side >= side / 2 ? 1 : 0)));
    }
    return data;
  };
}

bool bitwise_equal(std::vector<float> const& a, std::vector<float> const& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct run_result {
  std::vector<float> parameters, losses;
  std::size_t shards = 0;
  std::size_t evictions = 0;
};

// The smallest budget (to 256 bytes) the partitioner accepts for `model`.
std::size_t tightest_budget(hydra::sequential_model<context> const& model) {
  auto accepts = [&](std::size_t budget) {
    try {
      hydra::host_backend backend({.device_budgets = {budget}});
      hydra::single_model_trainer<hydra::adam> trainer(backend, model, hydra::adam{});
      return true;
    } catch (hydra::error const&) {
      return false;
    }
  };
  // Above the footprint, the limit of half the budget per shard still applies.
  std::size_t low = 256, high = 8 * hydra::align_up(hydra::single_model_trainer<hydra::adam>::footprint(model), 256);
  while (high - low > 256) { // accepts(high), and low is refused or the minimum
    std::size_t const middle = hydra::align_down((low + high) / 2, 256);
    (accepts(middle) ? high : low) = middle;
  }
  return accepts(low) ? low : high;
}

run_result train_alone(std::size_t budget, std::size_t steps) {
  hydra::host_backend backend({.device_budgets = {budget}});
  hydra::single_model_trainer<hydra::adam> trainer(backend, hydra::layers::make_cnn(small_cnn, batch),
                                                   hydra::adam{.learning_rate = 0.01F},
                                                   {.seed = 3, .poison_freed_blocks = std::uint8_t{0xFF}});
  trainer.train(steps, images(1));
  return {trainer.parameters(), trainer.losses(), trainer.shards().size(), trainer.report().spill.evictions};
}

} // namespace

TEST_CASE("make_cnn chains convolution, ReLU and pooling blocks, then the dense head and the loss") {
  auto const model = hydra::layers::make_cnn(small_cnn, batch);
  std::vector<std::string> names;
  for (std::size_t at = 0; at < model.size(); ++at) names.push_back(model.layer(at).name());
  std::vector<std::string> const expected{"conv2d 1x6x6 -> 8x6x6 (3x3)",
                                          "relu 288",
                                          "max pool 2x2 on 8x6x6",
                                          "conv2d 8x3x3 -> 16x3x3 (3x3)",
                                          "relu 144",
                                          "max pool 2x2 on 16x3x3",
                                          "dense 16x96",
                                          "relu 96",
                                          "dense 96x4",
                                          "softmax cross-entropy 4"};
  CHECK(names == expected);
  CHECK(model.input_features() == pixels);
  CHECK(model.parameter_count() == (8 * 9 + 8) + (16 * 8 * 9 + 16) + (16 * 96 + 96) + (96 * 4 + 4));
}

TEST_CASE("a host CNN trained sharded and spilled ends bitwise equal to its resident solo run") {
  constexpr std::size_t steps = 6;
  auto const model = hydra::layers::make_cnn(small_cnn, batch);
  std::size_t const footprint = hydra::single_model_trainer<hydra::adam>::footprint(model);
  auto const resident = train_alone(2 * footprint, steps);
  auto const spilled = train_alone(tightest_budget(model), steps);
  CAPTURE(footprint);
  CHECK(resident.shards == 1);
  CHECK(spilled.shards >= 4);
  CHECK(spilled.evictions > 0);
  CHECK(bitwise_equal(spilled.parameters, resident.parameters));
  CHECK(spilled.losses == resident.losses);
  CHECK(resident.losses.back() < resident.losses.front()); // it learns
}

TEST_CASE("host CNNs in a sweep on 2 devices end bitwise equal to their solo runs") {
  std::vector<hydra::model_config> configs;
  configs.push_back(
      {"cnn adam", hydra::layers::make_cnn(small_cnn, batch), hydra::adam{.learning_rate = 0.01F}, 4, images(1), 3});
  configs.push_back({"cnn sgd", hydra::layers::make_cnn({{1, side, side}, {6, 16}, 128, classes}, batch),
                     hydra::sgd_momentum{.learning_rate = 0.05F}, 5, images(2), 4});
  configs.push_back({"mlp", hydra::layers::make_mlp(pixels, 64, 3, classes, batch), hydra::adam{}, 3, images(3), 5});
  std::size_t budget = 0; // the tightest that holds every model's largest layer
  for (auto const& config : configs) budget = std::max(budget, tightest_budget(config.model));
  hydra::host_backend backend({.device_budgets = {budget, budget + 4_KiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp", 2),
                                     {.poison_freed_blocks = std::uint8_t{0xFF}});
  trainer.run();
  for (std::size_t m = 0; m < configs.size(); ++m) {
    CAPTURE(m);
    hydra::host_backend alone({.device_budgets = {64_MiB}});
    std::vector<float> solo;
    std::visit(
        [&](auto const& optimizer) {
          hydra::single_model_trainer<std::decay_t<decltype(optimizer)>> t(alone, configs[m].model, optimizer,
                                                                           {.seed = configs[m].seed});
          t.train(configs[m].steps, configs[m].data);
          solo = t.parameters();
        },
        configs[m].optimizer);
    REQUIRE_FALSE(trainer.results()[m].failure.has_value());
    if (m < 2) CHECK(trainer.shards_of(m).size() >= 2); // the CNNs are sharded
    CHECK(bitwise_equal(trainer.results()[m].parameters, solo));
  }
}
