// The single-model trainer against the independent in-memory reference (within
// a stated tolerance: the host GEMM may sum in another order than the
// reference's loops), against itself with the whole model resident (bitwise),
// and the spill engine's invariants while it trains.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/exploding_layer.hpp"
#include "train/reference_mlp.hpp"

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t features = 24, hidden = 48, classes = 10, batch = 16;
constexpr std::size_t hidden_layers = 16;

std::vector<reference::dense_spec> dense_specs() {
  std::vector<reference::dense_spec> specs{{features, hidden}};
  for (std::size_t k = 1; k < hidden_layers; ++k) specs.push_back({hidden, hidden});
  specs.push_back({hidden, classes});
  return specs;
}

hydra::sequential_model<context> make_model() {
  return hydra::layers::make_mlp(features, hidden, hidden_layers, classes, batch);
}

// A learnable task (labels from a fixed random linear teacher) of two
// minibatches in turn, so that "it learns" compares losses on the same data:
// six steps of a 17-layer MLP are too few for a fresh minibatch's loss to fall
// reliably below the first one's.
hydra::minibatch make_minibatch(std::size_t step) {
  return hydra::synthetic_classification{.features = features,
                                         .classes = classes,
                                         .batch = batch,
                                         .labels = hydra::synthetic_classification::label_rule::linear_teacher,
                                         .seed = 7}(step % 2);
}

struct reference_run {
  std::vector<float> parameters;
  std::vector<float> losses;
};

reference_run train_reference(std::string const& optimizer, float learning_rate, std::size_t steps,
                              std::vector<float> initial, std::vector<float> rate_factors = {}) {
  reference::mlp model(dense_specs(), std::move(initial), batch, optimizer, learning_rate, std::move(rate_factors));
  reference_run run;
  for (std::size_t step = 0; step < steps; ++step) {
    auto const data = make_minibatch(step);
    run.losses.push_back(model.step(data.inputs, data.labels));
  }
  run.parameters = model.parameters();
  return run;
}

// The tolerance against the plain-loop reference: every parameter within
// 1e-5 + 1e-4 |reference| and every loss within 1e-5 relative. When it was
// chosen, OpenBLAS's summation order had moved Adam's parameters by at most
// 3.1e-6 and SGD's by 1.5e-8 after these 6 steps, the losses not at all; a wrong
// gradient moves them by about the learning rate (3e-3 and more).
void check_within_tolerance(std::vector<float> const& actual, reference_run const& expected,
                            std::vector<float> const& losses) {
  REQUIRE(actual.size() == expected.parameters.size());
  std::size_t outside = 0;
  double worst = 0;
  for (std::size_t k = 0; k < actual.size(); ++k) {
    double const difference = std::fabs(double(actual[k]) - double(expected.parameters[k]));
    worst = std::max(worst, difference);
    outside += difference > 1e-5 + 1e-4 * std::fabs(double(expected.parameters[k])) ? 1 : 0;
  }
  CAPTURE(worst);
  CHECK(outside == 0);
  REQUIRE(losses.size() == expected.losses.size());
  for (std::size_t k = 0; k < losses.size(); ++k) CHECK(losses[k] == doctest::Approx(expected.losses[k]).epsilon(1e-5));
  if constexpr (!hydra::layers::detail::host_gemm_uses_blas) { // plain loops: the reference's order exactly
    std::size_t differing = 0;
    for (std::size_t k = 0; k < actual.size(); ++k)
      differing += std::memcmp(&actual[k], &expected.parameters[k], sizeof(float)) != 0 ? 1 : 0;
    CHECK(differing == 0);
    CHECK(losses == expected.losses);
  }
}

// The same model, seed and minibatches with every layer in one resident shard.
template <class Optimizer>
std::vector<float> train_resident(Optimizer optimizer, std::size_t steps) {
  auto const model = make_model();
  hydra::host_backend backend({.device_budgets = {2 * hydra::single_model_trainer<Optimizer>::footprint(model)}});
  hydra::single_model_trainer<Optimizer> trainer(backend, model, optimizer, {.seed = 42});
  REQUIRE(trainer.shards().size() == 1);
  trainer.train(steps, make_minibatch);
  return trainer.parameters();
}

template <class Optimizer>
void check_spilled_training_matches_reference(Optimizer optimizer, std::string const& name, float learning_rate,
                                              hydra::delay_injection delays, std::size_t shard_count,
                                              std::size_t prefetch_depth = 1, std::vector<float> rate_factors = {},
                                              bool keep_forward_activations = false, bool spill = false) {
  constexpr std::size_t steps = 6;
  auto const model = make_model();
  std::size_t const footprint = hydra::single_model_trainer<Optimizer>::footprint(model);
  std::size_t const budget = hydra::align_down(footprint / 4, 256);
  hydra::host_backend backend({.device_budgets = {budget}, .delays = delays});
  hydra::single_model_trainer<Optimizer> trainer(
      backend, model, optimizer,
      {.budget = 0,
       .shard_count = shard_count,
       .prefetch_depth = prefetch_depth,
       .seed = 42,
       .poison_freed_blocks = std::uint8_t{0xFF},
       .keep_forward_activations = keep_forward_activations,
       .evicted_forward_activations =
           spill ? hydra::evicted_activations::spill : hydra::evicted_activations::recompute});
  CAPTURE(footprint);
  CAPTURE(budget);
  CAPTURE(trainer.shards().size());
  REQUIRE(trainer.shards().size() >= 4);
  trainer.train(steps, make_minibatch);

  auto const actual = trainer.parameters();
  check_within_tolerance(actual,
                         train_reference(name, learning_rate, steps, model.initial_parameters(42), rate_factors),
                         trainer.losses());
  auto const resident = train_resident(optimizer, steps);
  CHECK(std::memcmp(actual.data(), resident.data(), actual.size() * sizeof(float)) == 0); // bitwise
  CHECK(trainer.losses()[steps - 2] < trainer.losses()[0]); // it learns: the same minibatch, four steps later

  auto const report = trainer.report();
  CHECK(report.device_memory.peak_in_use <= budget); // never past the budget
  CHECK(report.device_memory.capacity == budget);
  CHECK(report.spill.evictions > 0); // the model really did not fit
  CHECK(report.spill.bytes_to_device > 0);
  CHECK(report.spill.bytes_to_host > 0);
  if (keep_forward_activations) {
    MESSAGE("forward activations kept ", report.spill.forward_activations_kept, ", recomputations avoided ",
            report.spill.recomputations_avoided, " of ", steps * (trainer.shards().size() - 1));
    CHECK(report.spill.recomputations_avoided > 0);
    // Spilled rather than dropped: every backward starts from its forward's activations.
    if (spill) {
      CHECK(report.spill.forward_activations_spilled > 0);
      CHECK(report.spill.recomputations_avoided == report.spill.forward_activations_kept);
    } else {
      CHECK(report.spill.forward_activations_spilled == 0);
    }
  } else {
    CHECK(report.spill.forward_activations_kept == 0);
  }
  if (prefetch_depth == 0)
    CHECK(report.spill.prefetches_issued == 0);
  else
    CHECK(report.spill.prefetches_issued > 0);
}

} // namespace

TEST_CASE("a model 4x its device budget, sharded and spilled, trains to its resident weights bitwise and to the "
          "reference's within tolerance") {
  SUBCASE("sgd with momentum, greedy shards") {
    check_spilled_training_matches_reference(hydra::sgd_momentum{.learning_rate = 0.05F, .momentum = 0.9F}, "sgd",
                                             0.05F, {}, 0);
  }
  SUBCASE("adam, greedy shards") {
    check_spilled_training_matches_reference(hydra::adam{.learning_rate = 0.003F}, "adam", 0.003F, {}, 0);
  }
  SUBCASE("adam, balanced shards, delay-injecting backend, poisoned frees") {
    check_spilled_training_matches_reference(hydra::adam{.learning_rate = 0.003F}, "adam", 0.003F,
                                             {.enabled = true, .seed = 3, .max_delay = std::chrono::microseconds(200)},
                                             18);
  }
  SUBCASE("adam, no prefetch, delay-injecting backend") {
    check_spilled_training_matches_reference(hydra::adam{.learning_rate = 0.003F}, "adam", 0.003F,
                                             {.enabled = true, .seed = 5, .max_delay = std::chrono::microseconds(100)},
                                             0, 0);
  }
  SUBCASE("sgd, prefetch three tasks ahead, delay-injecting backend") {
    check_spilled_training_matches_reference(
        hydra::sgd_momentum{.learning_rate = 0.05F, .momentum = 0.9F}, "sgd", 0.05F,
        {.enabled = true, .seed = 9, .max_delay = std::chrono::microseconds(100)}, 0, 3);
  }
  // Warm-up over 2 steps, then a cosine over 3 to a tenth: the factors written
  // out by hand for the reference (cos(pi/3) = 1/2, cos(2 pi/3) = -1/2).
  std::vector<float> const factors{static_cast<float>(1.0 / 3.0),        static_cast<float>(2.0 / 3.0),        1.0F,
                                   static_cast<float>(0.1 + 0.9 * 0.75), static_cast<float>(0.1 + 0.9 * 0.25), 0.1F};
  hydra::learning_rate_schedule const schedule{.warmup_steps = 2, .decay_steps = 3, .final_fraction = 0.1F};
  SUBCASE("sgd with a warm-up and a cosine decay, delay-injecting backend") {
    check_spilled_training_matches_reference(
        hydra::sgd_momentum{.learning_rate = 0.05F, .momentum = 0.9F, .schedule = schedule}, "sgd", 0.05F,
        {.enabled = true, .seed = 13, .max_delay = std::chrono::microseconds(100)}, 0, 1, factors);
  }
  SUBCASE("adam with a warm-up and a cosine decay, balanced shards") {
    check_spilled_training_matches_reference(hydra::adam{.learning_rate = 0.003F, .schedule = schedule}, "adam", 0.003F,
                                             {}, 18, 1, factors);
  }
  SUBCASE("adam, forward activations kept for the backwards, delay-injecting backend") {
    check_spilled_training_matches_reference(hydra::adam{.learning_rate = 0.003F}, "adam", 0.003F,
                                             {.enabled = true, .seed = 7, .max_delay = std::chrono::microseconds(100)},
                                             0, 1, {}, /*keep_forward_activations=*/true);
  }
  SUBCASE("adam, forward activations kept and spilled home under pressure, delay-injecting backend") {
    check_spilled_training_matches_reference(hydra::adam{.learning_rate = 0.003F}, "adam", 0.003F,
                                             {.enabled = true, .seed = 9, .max_delay = std::chrono::microseconds(100)},
                                             0, 1, {}, /*keep_forward_activations=*/true, /*spill=*/true);
  }
  SUBCASE("sgd, forward activations kept and spilled, balanced shards, no prefetch") {
    check_spilled_training_matches_reference(hydra::sgd_momentum{.learning_rate = 0.05F, .momentum = 0.9F}, "sgd",
                                             0.05F, {}, 18, 0, {}, /*keep_forward_activations=*/true, /*spill=*/true);
  }
  SUBCASE("sgd, forward activations kept, balanced shards, no prefetch") {
    check_spilled_training_matches_reference(hydra::sgd_momentum{.learning_rate = 0.05F, .momentum = 0.9F}, "sgd",
                                             0.05F, {}, 18, 0, {}, /*keep_forward_activations=*/true);
  }
  SUBCASE("sgd, delay-injecting backend with another seed, poisoned frees") {
    check_spilled_training_matches_reference(
        hydra::sgd_momentum{.learning_rate = 0.05F, .momentum = 0.9F}, "sgd", 0.05F,
        {.enabled = true, .seed = 11, .max_delay = std::chrono::microseconds(200)}, 0);
  }
}

TEST_CASE("bytes moved equal what the residency of each shard accounts for, and the streams executed exactly that") {
  auto const model = make_model();
  using trainer_type = hydra::single_model_trainer<hydra::adam>;
  std::size_t const budget = hydra::align_down(trainer_type::footprint(model) / 4, 256);
  hydra::host_backend backend({.device_budgets = {budget}});
  trainer_type trainer(backend, model, hydra::adam{}, {});
  trainer.train(3, make_minibatch);
  auto const& engine = trainer.engine();
  std::uint64_t fetched = 0, written = 0;
  for (auto const& entry : engine.table()) {
    fetched += entry.fetched_bytes;
    written += entry.written_back_bytes;
  }
  CHECK(engine.statistics().bytes_to_device == fetched);
  CHECK(engine.statistics().bytes_to_host == written);
  // Every backward writes back exactly its shard's parameters and optimizer state.
  std::uint64_t homes = 0;
  for (auto const& s : trainer.shards().shards()) homes += s.home_bytes();
  CHECK(written == 3 * homes);
  // The prefetch stream copied the shard state plus each step's activations in;
  // the spill stream copied state home plus activations, gradients and losses out.
  std::uint64_t activations_in = 0, activations_out = 0;
  for (std::size_t s = 0; s < trainer.shards().size(); ++s) {
    auto const& shard = trainer.shards()[s];
    std::uint64_t const in = batch * model.footprint(shard.first_layer).input_features * sizeof(float);
    std::uint64_t const out = shard.end_layer == model.size()
                                  ? batch * sizeof(float)
                                  : batch * model.footprint(shard.end_layer).input_features * sizeof(float);
    bool const last = s + 1 == trainer.shards().size();
    activations_in +=
        last ? in + batch * sizeof(std::int32_t) : 2 * in + out; // forward in (+labels); backward in + dOut
    activations_out += out + (s > 0 ? in : 0);                   // forward out (or losses); dIn
  }
  CHECK(backend.statistics(engine.prefetch_stream()).copied_bytes == fetched + 3 * activations_in);
  CHECK(backend.statistics(engine.spill_stream()).copied_bytes == written + 3 * activations_out);
}

TEST_CASE("with a budget that holds the whole model, each shard's state is fetched once and stays") {
  auto const model = make_model();
  using trainer_type = hydra::single_model_trainer<hydra::sgd_momentum>;
  hydra::host_backend backend({.device_budgets = {16_MiB}});
  trainer_type trainer(backend, model, hydra::sgd_momentum{}, {.shard_count = 5});
  trainer.train(4, make_minibatch);
  std::uint64_t homes = 0;
  for (auto const& s : trainer.shards().shards()) homes += s.home_bytes();
  auto const& spill = trainer.engine().statistics();
  CHECK(spill.evictions == 0);
  CHECK(spill.bytes_to_device == homes); // parameters in forward, optimizer state in backward, once
  CHECK(spill.bytes_to_host == 4 * homes);
  CHECK(spill.prefetches_deferred == 0);
}

TEST_CASE("bad input to the trainer fails before training, naming the problem") {
  auto const model = make_model();
  hydra::host_backend backend({.device_budgets = {16_KiB}});
  CHECK_THROWS_WITH_AS(hydra::single_model_trainer<hydra::adam>(backend, model, hydra::adam{}),
                       doctest::Contains("as a shard of its own, above the shard limit of 8192 bytes"),
                       hydra::layer_too_large);

  hydra::host_backend roomy({.device_budgets = {16_MiB}});
  hydra::single_model_trainer<hydra::adam> trainer(roomy, model, hydra::adam{});
  CHECK_THROWS_WITH_AS(trainer.train(1,
                                     [](std::size_t) {
                                       return hydra::minibatch{{1.0F}, {0}};
                                     }),
                       doctest::Contains("expected 16 samples of 24 features"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(trainer.train(1,
                                     [](std::size_t step) {
                                       auto data = make_minibatch(step);
                                       data.labels[3] = 10;
                                       return data;
                                     }),
                       doctest::Contains("label 10 of sample 3 is outside 0..9"), hydra::invalid_argument);

  // A last layer that is not a loss (one output per sample is not enough).
  std::vector<hydra::any_layer<context>> no_loss{hydra::layers::dense(4, 1)};
  CHECK_THROWS_WITH_AS(hydra::sequential_model<context>(std::move(no_loss), 2),
                       doctest::Contains("the last layer, layer 0 (dense 4x1), is not a loss layer"),
                       hydra::invalid_argument);
  std::vector<hydra::any_layer<context>> early_loss{hydra::layers::softmax_cross_entropy(4), hydra::layers::dense(1, 4),
                                                    hydra::layers::softmax_cross_entropy(4)};
  CHECK_THROWS_WITH_AS(hydra::sequential_model<context>(std::move(early_loss), 2),
                       doctest::Contains("layer 0 (softmax cross-entropy 4) is a loss layer, but only the last"),
                       hydra::invalid_argument);
  std::vector<hydra::any_layer<context>> mismatched{hydra::layers::dense(4, 5), hydra::layers::relu(4)};
  CHECK_THROWS_WITH_AS(hydra::sequential_model<context>(std::move(mismatched), 2),
                       doctest::Contains("layer 0 (dense 4x5) outputs 5 features but layer 1 (relu 4) takes 4"),
                       hydra::invalid_argument);
}

TEST_CASE("an exception thrown by a layer's work on the stream stops training with the reason") {
  std::vector<hydra::any_layer<context>> layers{hydra::layers::dense(features, classes),
                                                hydra::testing::exploding_layer{classes},
                                                hydra::layers::softmax_cross_entropy(classes)};
  hydra::host_backend backend({.device_budgets = {4_MiB}});
  hydra::single_model_trainer<hydra::adam> trainer(backend, hydra::sequential_model<context>(std::move(layers), batch),
                                                   hydra::adam{});
  CHECK_THROWS_WITH_AS(trainer.train(4, make_minibatch), doctest::Contains("a layer threw: kernel failed"),
                       hydra::model_failed);
}
