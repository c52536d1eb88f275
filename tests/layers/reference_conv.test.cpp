// The plain-loop convolution and pooling that the GPU tests hold the cuDNN
// layers to, checked here (no GPU needed) against central finite differences in
// double precision: a wrong backward loop would make the GPU tests meaningless.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "support/reference_conv.hpp"

namespace {

std::vector<double> random_doubles(std::size_t n, unsigned seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> pick(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = pick(random);
  return v;
}

double dot(std::vector<double> const& a, std::vector<double> const& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

// d(loss)/d(v[i]) by central differences, loss() reading v.
template <class Loss>
double numeric(std::vector<double>& v, std::size_t i, Loss&& loss) {
  double const h = 1e-5, saved = v[i];
  v[i] = saved + h;
  double const up = loss();
  v[i] = saved - h;
  double const down = loss();
  v[i] = saved;
  return (up - down) / (2 * h);
}

} // namespace

TEST_CASE("reference convolution: the backward loops are the forward's derivatives (stride 2, padding 1)") {
  reference::conv_shape const s{2, 2, 5, 4, 3, 3, 2, 1};
  auto x = random_doubles(s.input_size(), 1), w = random_doubles(s.filter_size(), 2), b = random_doubles(3, 3);
  auto const r = random_doubles(s.output_size(), 4); // loss = sum(y * r), so dL/dy = r
  auto const loss = [&] { return dot(reference::conv_forward(s, x, w, b), r); };
  auto const g = reference::conv_backward(s, x, w, r);
  REQUIRE(s.out_height() == 3);
  REQUIRE(s.out_width() == 2);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(g.input[i] == doctest::Approx(numeric(x, i, loss)).epsilon(1e-6));
  for (std::size_t i = 0; i < w.size(); ++i) CHECK(g.filter[i] == doctest::Approx(numeric(w, i, loss)).epsilon(1e-6));
  for (std::size_t i = 0; i < b.size(); ++i) CHECK(g.bias[i] == doctest::Approx(numeric(b, i, loss)).epsilon(1e-6));
}

TEST_CASE("reference max pooling: the backward routes each gradient to its window's maximum") {
  reference::pool_shape const s{2, 3, 6, 4, 2, 2};
  auto x = random_doubles(2 * 3 * 6 * 4, 5); // distinct values: no ties, so the derivative exists
  auto const r = random_doubles(2 * 3 * s.out_height() * s.out_width(), 6);
  auto const loss = [&] { return dot(reference::max_pool_forward(s, x, nullptr), r); };
  auto const dx = reference::max_pool_backward(s, x, r);
  std::size_t routed = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(dx[i] == doctest::Approx(numeric(x, i, loss)).epsilon(1e-6));
    routed += dx[i] != 0.0;
  }
  CHECK(routed == r.size()); // one input per window
}
