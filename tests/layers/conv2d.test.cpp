// The host convolution against the plain-loop oracle (support/reference_conv.hpp,
// itself checked by finite differences), in double precision. The oracle indexes
// the filter as [K x C x R x S] then the bias, so agreeing with it also pins the
// parameter layout the CUDA convolution shares.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/reference_conv.hpp"
#include "support/run_layer.hpp"

namespace {

// |actual - expected| <= tolerance * (1 + max |expected|), element by element:
// fp32 sums of a few hundred terms stay far inside 1e-5; an indexing slip does not.
void check_close(std::vector<float> const& actual, std::vector<double> const& expected, char const* what) {
  REQUIRE(actual.size() == expected.size());
  double largest = 0;
  for (double value : expected) largest = std::max(largest, std::fabs(value));
  double worst = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) worst = std::max(worst, std::fabs(double(actual[i]) - expected[i]));
  CAPTURE(what);
  CAPTURE(largest);
  CHECK(worst <= 1e-5 * (1.0 + largest));
}

std::vector<double> widen(std::vector<float> const& v) {
  return {v.begin(), v.end()};
}

void check_against_reference(reference::conv_shape const& s) {
  CAPTURE(s.channels);
  CAPTURE(s.height);
  CAPTURE(s.width);
  CAPTURE(s.kernel);
  CAPTURE(s.stride);
  CAPTURE(s.padding);
  hydra::layers::conv2d const layer({s.channels, s.height, s.width}, s.filters,
                                    {.kernel = s.kernel, .stride = s.stride, .padding = s.padding});
  REQUIRE(layer.output_shape() == hydra::layers::image_shape{s.filters, s.out_height(), s.out_width()});
  auto const shape = layer.footprint(s.batch);
  REQUIRE(shape.parameter_count == s.filter_size() + s.filters);
  CHECK(shape.workspace_bytes == s.channels * s.kernel * s.kernel * s.out_height() * s.out_width() * sizeof(float));

  auto const x = hydra::testing::random_floats(s.input_size(), 1);
  auto const parameters = hydra::testing::random_floats(shape.parameter_count, 2, 0.5F);
  auto const dy = hydra::testing::random_floats(s.output_size(), 3);
  std::vector<float> const w(parameters.begin(), parameters.begin() + static_cast<std::ptrdiff_t>(s.filter_size()));
  std::vector<float> const b(parameters.begin() + static_cast<std::ptrdiff_t>(s.filter_size()), parameters.end());

  hydra::testing::layer_runner run;
  auto const y = run.forward(layer, s.batch, x, parameters);
  check_close(y, reference::conv_forward(s, widen(x), widen(w), widen(b)), "forward");

  auto const g = run.backward(layer, s.batch, x, y, dy, parameters);
  auto const expected = reference::conv_backward(s, widen(x), widen(w), widen(dy));
  check_close(g.input, expected.input, "input gradient");
  std::vector<double> expected_parameters = expected.filter;
  expected_parameters.insert(expected_parameters.end(), expected.bias.begin(), expected.bias.end());
  check_close(g.parameters, expected_parameters, "filter and bias gradients");
}

} // namespace

TEST_CASE("conv2d matches the reference convolution forward and backward on 3x3 kernels, stride 1 and 2") {
  check_against_reference(
      {.batch = 3, .channels = 2, .height = 7, .width = 5, .filters = 4, .kernel = 3, .stride = 1, .padding = 1});
  check_against_reference(
      {.batch = 2, .channels = 3, .height = 9, .width = 6, .filters = 5, .kernel = 3, .stride = 2, .padding = 1});
}

TEST_CASE("conv2d matches the reference convolution without padding, with 1x1 and 5x5 kernels and stride 3") {
  check_against_reference(
      {.batch = 2, .channels = 3, .height = 6, .width = 8, .filters = 2, .kernel = 3, .stride = 1, .padding = 0});
  check_against_reference(
      {.batch = 2, .channels = 4, .height = 5, .width = 3, .filters = 3, .kernel = 1, .stride = 1, .padding = 0});
  check_against_reference(
      {.batch = 2, .channels = 2, .height = 11, .width = 10, .filters = 3, .kernel = 5, .stride = 3, .padding = 2});
}

TEST_CASE("conv2d with padding wider than the kernel's reach sees zeros in the margin") {
  // Padding 3 around a 3x3 kernel: whole output rows and columns see only padding.
  check_against_reference(
      {.batch = 1, .channels = 2, .height = 4, .width = 3, .filters = 2, .kernel = 3, .stride = 2, .padding = 3});
}

TEST_CASE("conv2d backward with a null input gradient computes the parameter gradients only") {
  reference::conv_shape const s{2, 2, 5, 5, 3, 3, 1, 1};
  hydra::layers::conv2d const layer({2, 5, 5}, 3);
  auto const x = hydra::testing::random_floats(s.input_size(), 4);
  auto const parameters = hydra::testing::random_floats(layer.footprint(2).parameter_count, 5);
  auto const dy = hydra::testing::random_floats(s.output_size(), 6);
  hydra::testing::layer_runner run;
  auto const y = run.forward(layer, 2, x, parameters);
  auto const full = run.backward(layer, 2, x, y, dy, parameters);
  auto const without = run.backward(layer, 2, x, y, dy, parameters, /*want_input_gradient=*/false);
  CHECK(without.parameters == full.parameters);
  CHECK(std::all_of(without.input.begin(), without.input.end(), [](float v) { return v == -7.0F; })); // untouched
}

TEST_CASE("conv2d initialisation is He-uniform over the fan-in with a zero bias, reproducible from its seed") {
  hydra::layers::conv2d const layer({3, 8, 8}, 4);
  std::vector<float> a(layer.footprint(1).parameter_count), b(a.size());
  layer.initialize(a.data(), 9);
  layer.initialize(b.data(), 9);
  CHECK(a == b);
  float const limit = std::sqrt(6.0F / 27.0F);
  REQUIRE(layer.filter_count() == 4 * 3 * 3 * 3);
  for (std::size_t k = 0; k < layer.filter_count(); ++k) CHECK(std::fabs(a[k]) <= limit);
  for (std::size_t k = layer.filter_count(); k < a.size(); ++k) CHECK(a[k] == 0.0F);
}

TEST_CASE("conv2d refuses a kernel larger than the padded image and names both sizes") {
  try {
    hydra::layers::conv2d const layer({1, 2, 2}, 4, {.kernel = 5, .stride = 1, .padding = 1});
    FAIL("expected hydra::invalid_argument");
  } catch (hydra::invalid_argument const& e) {
    std::string const message = e.what();
    CHECK(message.find("5x5 kernel") != std::string::npos);
    CHECK(message.find("2x2 image") != std::string::npos);
  }
  CHECK_THROWS_AS(hydra::layers::conv2d({0, 4, 4}, 2), hydra::invalid_argument);
}
