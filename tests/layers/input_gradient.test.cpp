// A model's first layer skips its input gradient (nothing reads it), and only
// that: its parameter gradients are those of the same layer computing dx.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/run_layer.hpp"

namespace {

template <class First, class Plain>
void check_skips_only_the_input_gradient(First const& first, Plain const& plain, std::size_t batch) {
  auto const shape = plain.footprint(batch);
  auto const x = hydra::testing::random_floats(batch * shape.input_features, 1);
  auto const parameters = hydra::testing::random_floats(shape.parameter_count, 2);
  auto const dy = hydra::testing::random_floats(batch * shape.output_features, 3);
  hydra::testing::layer_runner run;
  auto const y = run.forward(plain, batch, x, parameters);
  CHECK(run.forward(first, batch, x, parameters) == y);
  auto const with_dx = run.backward(plain, batch, x, y, dy, parameters);
  auto const without_dx = run.backward(first, batch, x, y, dy, parameters);
  CHECK(without_dx.parameters == with_dx.parameters);
  CHECK(std::all_of(without_dx.input.begin(), without_dx.input.end(), [](float v) { return v == -7.0F; }));
  CHECK(std::any_of(with_dx.input.begin(), with_dx.input.end(), [](float v) { return v != -7.0F; }));
  CHECK(first.footprint(batch).flops == doctest::Approx(shape.flops * 4.0 / 6.0)); // no dx product
}

template <class Layer>
bool computes_input_gradient(Layer const& layer, std::size_t batch) {
  auto const shape = layer.footprint(batch);
  auto const x = hydra::testing::random_floats(batch * shape.input_features, 4);
  auto const parameters = hydra::testing::random_floats(shape.parameter_count, 5);
  auto const dy = hydra::testing::random_floats(batch * shape.output_features, 6);
  hydra::testing::layer_runner run;
  auto const y = run.forward(layer, batch, x, parameters);
  auto const g = run.backward(layer, batch, x, y, dy, parameters);
  return std::none_of(g.input.begin(), g.input.end(), [](float v) { return v == -7.0F; });
}

} // namespace

TEST_CASE("make_mlp builds its first dense layer without the input gradient, and only the first") {
  auto const model = hydra::layers::make_mlp(12, 8, 2, 3, 4);
  check_skips_only_the_input_gradient(model.layer(0), hydra::layers::dense(12, 8), 4);
  CHECK(computes_input_gradient(model.layer(2), 4)); // the next dense layer
  CHECK(computes_input_gradient(model.layer(4), 4)); // the output layer
}

TEST_CASE("make_cnn builds its first convolution without the input gradient, and only the first") {
  auto const model = hydra::layers::make_cnn({.input = {2, 6, 6}, .block_channels = {3, 4}, .classes = 5}, 2);
  check_skips_only_the_input_gradient(model.layer(0), hydra::layers::conv2d({2, 6, 6}, 3), 2);
  CHECK(computes_input_gradient(model.layer(3), 2)); // the second convolution
  CHECK(computes_input_gradient(model.layer(6), 2)); // the dense head
}

TEST_CASE("make_first_layer passes the skip only to layer types that accept it") {
  auto const dense = hydra::layers::make_first_layer<hydra::layers::dense>(5, 4);
  CHECK(dense.footprint(1).flops == doctest::Approx(4.0 * 20));
  auto const relu = hydra::layers::make_first_layer<hydra::layers::relu>(5); // no such constructor: a plain relu
  CHECK(relu.footprint(1).input_features == 5);
}
