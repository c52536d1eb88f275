// Host max pooling against the plain-loop oracle (support/reference_conv.hpp),
// including overlapping windows and ties, whose gradient goes to the window's
// first maximum in row-major order.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/reference_conv.hpp"
#include "support/run_layer.hpp"

namespace {

void check_against_reference(reference::pool_shape const& s, std::vector<float> const& x) {
  CAPTURE(s.window);
  CAPTURE(s.stride);
  hydra::layers::max_pool2d const layer({s.channels, s.height, s.width}, s.window, s.stride);
  REQUIRE(layer.output_shape() == hydra::layers::image_shape{s.channels, s.out_height(), s.out_width()});
  std::size_t const outputs = s.batch * s.channels * s.out_height() * s.out_width();
  auto const dy = hydra::testing::random_floats(outputs, 11);
  hydra::testing::layer_runner run;
  auto const y = run.forward(layer, s.batch, x, {});
  CHECK(y == reference::max_pool_forward(s, x, nullptr)); // a copy of one input each: exact
  auto const g = run.backward(layer, s.batch, x, y, dy, {});
  CHECK(g.input == reference::max_pool_backward(s, x, dy)); // overlapping windows add in the same order
}

} // namespace

TEST_CASE("max_pool2d matches the reference pooling forward and backward, with and without overlapping windows") {
  std::vector<reference::pool_shape> const shapes{
      {2, 3, 6, 4, 2, 2}, {2, 2, 7, 7, 3, 2}, {1, 2, 5, 6, 2, 1}, {3, 1, 9, 5, 3, 3}};
  for (auto const& s : shapes) {
    auto const x = hydra::testing::random_floats(s.batch * s.channels * s.height * s.width, 10);
    check_against_reference(s, x);
  }
}

TEST_CASE("max_pool2d routes the gradient of a tied window to its first maximum, as the reference does") {
  reference::pool_shape const s{1, 1, 4, 4, 2, 2};
  std::vector<float> x(16, 1.0F); // every window a four-way tie
  x[5] = 3.0F;                    // except the top-left one
  check_against_reference(s, x);
  hydra::testing::layer_runner run;
  hydra::layers::max_pool2d const layer({1, 4, 4});
  auto const y = run.forward(layer, 1, x, {});
  auto const g = run.backward(layer, 1, x, y, {1.0F, 2.0F, 3.0F, 4.0F}, {});
  CHECK(g.input[5] == 1.0F); // the top-left window's maximum
  CHECK(g.input[2] == 2.0F); // the others' first element
  CHECK(g.input[8] == 3.0F);
  CHECK(g.input[10] == 4.0F);
  CHECK(std::count(g.input.begin(), g.input.end(), 0.0F) == 12);
}

TEST_CASE("max_pool2d refuses a window larger than the image and names both sizes") {
  try {
    hydra::layers::max_pool2d const layer({2, 3, 8}, 4);
    FAIL("expected hydra::invalid_argument");
  } catch (hydra::invalid_argument const& e) {
    std::string const message = e.what();
    CHECK(message.find("4x4 window") != std::string::npos);
    CHECK(message.find("3x8 image") != std::string::npos);
  }
}
