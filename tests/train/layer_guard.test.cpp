// A layer that breaks its contract is caught and named: guard mode in a sweep
// (the other models train on, bitwise as without it), AddressSanitizer's report
// of the write itself under the asan preset, and the published layer checker
// on a layer alone.
#include <doctest/doctest.h>


#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/layers/check_layer.hpp"
#include "hydra/train/multi_model_trainer.hpp"
#include "support/child_process.hpp"
#include "support/scratch.hpp"
#include "support/trained_alone.hpp"

using namespace hydra::literals;
using context = hydra::host_execution_context;

namespace {

constexpr std::size_t features = 12, classes = 4, batch = 4;

// A layer of `width` features that passes its input through, forward and
// backward, with no parameters: what each broken layer below breaks.
struct pass_through {
  std::size_t width;
  hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = 0, .input_features = width, .output_features = width};
  }
  void initialize(float*, std::uint64_t) const {}
  void forward(context& c, hydra::forward_arguments const& a) const {
    c.enqueue([a, n = a.batch * width] { std::memcpy(a.output, a.input, n * sizeof(float)); });
  }
  void backward(context& c, hydra::backward_arguments const& a) const {
    c.enqueue([a, n = a.batch * width] { std::memcpy(a.input_gradient, a.output_gradient, n * sizeof(float)); });
  }
};

// Reports `width` parameters, and its backward writes twice as many
// parameter gradients: the contract broken as a user's layer once broke it.
struct overrunning_layer : pass_through {
  std::string name() const { return "overrun " + std::to_string(width); }
  hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = width, .input_features = width, .output_features = width};
  }
  void initialize(float* parameters, std::uint64_t) const {
    for (std::size_t k = 0; k < width; ++k) parameters[k] = 0.5F;
  }
  void backward(context& c, hydra::backward_arguments const& a) const {
    c.enqueue([a, n = a.batch * width, w = width] {
      std::memcpy(a.input_gradient, a.output_gradient, n * sizeof(float));
      for (std::size_t k = 0; k < 2 * w; ++k) a.parameter_gradients[k] = 0.0F; // twice its footprint
    });
  }
};

// Writes one float before its output.
struct underrunning_layer : pass_through {
  std::string name() const { return "underrun " + std::to_string(width); }
  void forward(context& c, hydra::forward_arguments const& a) const {
    c.enqueue([a, n = a.batch * width] {
      std::memcpy(a.output, a.input, n * sizeof(float));
      a.output[-1] = 1.0F;
    });
  }
};

// Its backward returns twice the true gradient.
struct doubling_layer : pass_through {
  std::string name() const { return "doubling " + std::to_string(width); }
  void forward(context& c, hydra::forward_arguments const& a) const {
    c.enqueue([a, n = a.batch * width] {
      for (std::size_t k = 0; k < n; ++k) a.output[k] = 3.0F * a.input[k];
    });
  }
  void backward(context& c, hydra::backward_arguments const& a) const {
    c.enqueue([a, n = a.batch * width] {
      for (std::size_t k = 0; k < n; ++k) a.input_gradient[k] = 6.0F * a.output_gradient[k];
    });
  }
};

// Writes into its input, which it may only read (through a cast).
struct scribbling_layer : pass_through {
  std::string name() const { return "scribbler " + std::to_string(width); }
  void forward(context& c, hydra::forward_arguments const& a) const {
    c.enqueue([a, n = a.batch * width] {
      std::memcpy(a.output, a.input, n * sizeof(float));
      const_cast<float*>(a.input)[0] = 0.0F;
    });
  }
};

template <class Middle>
hydra::sequential_model<context> model_with(Middle middle) {
  std::vector<hydra::any_layer<context>> stack{hydra::layers::dense(features, features), middle,
                                               hydra::layers::dense(features, classes),
                                               hydra::layers::softmax_cross_entropy(classes)};
  return hydra::sequential_model<context>(std::move(stack), batch);
}

hydra::data_source data(std::uint64_t seed) {
  return hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = seed};
}

[[maybe_unused]] std::vector<float> trained_alone(hydra::model_config const& config) {
  return hydra::testing::train_alone(config).parameters;
}

} // namespace

// Under AddressSanitizer the canaries are poisoned, and ASan stops the process
// at the broken layer's write: the test below checks that report instead.
#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("guard mode names a layer that writes outside its footprint, and the others train as without it, bitwise") {
  hydra::layers::cnn_shape const shape{.input = {1, 6, 6}, .block_channels = {3}, .hidden = 8, .classes = classes};
  std::vector<hydra::model_config> configs;
  configs.push_back({"mlp", hydra::layers::make_mlp(features, 16, 3, classes, batch), hydra::adam{}, 3, data(1), 1});
  configs.push_back({"overruns", model_with(overrunning_layer{features}), hydra::adam{}, 3, data(2), 2});
  configs.push_back({"cnn", hydra::layers::make_cnn(shape, batch), hydra::sgd_momentum{}, 3,
                     hydra::synthetic_classification{.features = 36, .classes = classes, .batch = batch, .seed = 3},
                     3});
  configs.push_back({"underruns", model_with(underrunning_layer{features}), hydra::adam{}, 3, data(4), 4});
  hydra::host_backend backend({.device_budgets = {256_KiB, 256_KiB}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"), {.guard_layers = true});
  trainer.run();
  auto const& results = trainer.results();
  REQUIRE(results[1].failure.has_value());
  CHECK(results[1].failure->find("layer 1 (overrun 12) wrote outside its parameter gradients: 48 bytes "
                                 "after its end (the region is 48 bytes") != std::string::npos);
  REQUIRE(results[3].failure.has_value());
  CHECK(results[3].failure->find("layer 1 (underrun 12) wrote outside its output: 4 bytes before it") !=
        std::string::npos);
  for (std::size_t m : {0U, 2U}) { // the weights of a run without guard mode
    CAPTURE(m);
    CHECK_FALSE(results[m].failure.has_value());
    CHECK(results[m].parameters == trained_alone(configs[m]));
  }
  for (auto const& memory : trainer.device_memory()) CHECK(memory.in_use == 0);
}

TEST_CASE("without guard mode the same overrun goes unnoticed: what guard mode is for") {
  hydra::host_backend plain_backend({.device_budgets = {256_KiB}}), guarded_backend({.device_budgets = {256_KiB}});
  hydra::single_model_trainer<hydra::adam> plain(plain_backend, model_with(overrunning_layer{features}), hydra::adam{});
  CHECK_NOTHROW(plain.train(2, data(2)));
  hydra::single_model_trainer<hydra::adam> guarded(guarded_backend, model_with(overrunning_layer{features}),
                                                   hydra::adam{}, {.guard_layers = true});
  CHECK_THROWS_WITH(guarded.train(2, data(2)), doctest::Contains("layer 1 (overrun 12) wrote outside"));
}

#endif

#if defined(__SANITIZE_ADDRESS__)
TEST_CASE("under AddressSanitizer guard mode is on unless turned off, and ASan reports the write itself, with the "
          "layer's code on its stack") {
  auto const ended = hydra::testing::run_forked(
      [] { // ASan stops the process at the write
        hydra::host_backend backend({.device_budgets = {256_KiB}});
        hydra::single_model_trainer<hydra::adam> trainer(backend, model_with(overrunning_layer{features}),
                                                         hydra::adam{});
        trainer.train(1, data(2));
      },
      hydra::testing::scratch_directory("layer_guard_asan") / "asan.txt");
  CHECK_FALSE(ended.exited_cleanly);
  CHECK(ended.error_output.find("use-after-poison") != std::string::npos);
  CHECK(ended.error_output.find("overrunning_layer") != std::string::npos);
}
#endif

TEST_CASE("the layer checker passes hydra's host layers and names what a broken layer gets wrong") {
  CHECK(hydra::check_layer(hydra::layers::dense(7, 5)).passed());
  CHECK(hydra::check_layer(hydra::layers::relu(9)).passed());
  CHECK(hydra::check_layer(hydra::layers::softmax_cross_entropy(6)).passed());
  CHECK(hydra::check_layer(hydra::layers::conv2d({2, 5, 5}, 3)).passed());
  CHECK(hydra::check_layer(hydra::layers::max_pool2d({2, 4, 4})).passed());
  auto const report = hydra::check_layer(hydra::layers::dense(7, 5));
  CHECK(report.worst_parameter_gradient_error < 2e-3);
  CHECK(report.worst_input_gradient_error < 2e-3);

#if !defined(__SANITIZE_ADDRESS__) // writes into poisoned canaries: ASan stops the process there
  auto const overrun = hydra::check_layer(overrunning_layer{6});
  REQUIRE_FALSE(overrun.passed());
  CHECK(overrun.problems[0].find("backward: layer overrun 6 backward() wrote outside its parameter gradients") == 0);

  auto const underrun = hydra::check_layer(underrunning_layer{6});
  REQUIRE_FALSE(underrun.passed());
  CHECK(underrun.problems[0].find("forward: layer underrun 6 forward() wrote outside its output: 4 bytes before it") ==
        0);

#endif
  auto const scribbling = hydra::check_layer(scribbling_layer{5});
  REQUIRE_FALSE(scribbling.passed());
  CHECK(scribbling.problems[0].find("forward: layer scribbler 5 forward() wrote into its input, which it may only "
                                    "read") == 0);

  auto const doubling = hydra::check_layer(doubling_layer{5});
  REQUIRE_FALSE(doubling.passed());
  CHECK(doubling.problems[0].find("layer doubling 5 backward's input gradient [0] is") == 0);
  CHECK(doubling.worst_input_gradient_error > 0.1);

  CHECK_THROWS_AS((void)hydra::check_layer(hydra::layers::relu(3), {.batch = 0}), hydra::invalid_argument);
}
