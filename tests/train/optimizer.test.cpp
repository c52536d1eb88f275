#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <thrust/execution_policy.h>

#include "hydra/train/optimizer.hpp"

TEST_CASE("sgd with momentum: v = mu v + g, p = p - lr v, elementwise") {
  hydra::sgd_momentum const sgd{.learning_rate = 0.5F, .momentum = 0.9F};
  std::vector<float> p{1.0F, -2.0F, 3.0F}, g{0.1F, 0.2F, -0.4F}, v{0.0F, 1.0F, 2.0F};
  sgd.step(thrust::host, p.data(), g.data(), v.data(), p.size(), 1);
  CHECK(v[0] == doctest::Approx(0.1F));
  CHECK(v[1] == doctest::Approx(1.1F));
  CHECK(v[2] == doctest::Approx(1.4F));
  CHECK(p[0] == doctest::Approx(0.95F));
  CHECK(p[1] == doctest::Approx(-2.55F));
  CHECK(p[2] == doctest::Approx(2.3F));
}

TEST_CASE("adam: the first step moves each parameter by about the learning rate against its gradient") {
  hydra::adam const adam{.learning_rate = 0.01F};
  std::vector<float> p{1.0F, 1.0F, 1.0F, 1.0F}, g{0.5F, -0.25F, 3.0F, 0.0F}, state(8, 0.0F);
  adam.step(thrust::host, p.data(), g.data(), state.data(), p.size(), 1);
  CHECK(p[0] == doctest::Approx(0.99F));
  CHECK(p[1] == doctest::Approx(1.01F));
  CHECK(p[2] == doctest::Approx(0.99F));
  CHECK(p[3] == 1.0F);                                   // no gradient, no move
  CHECK(state[0] == doctest::Approx(0.05F));             // m = (1 - b1) g
  CHECK(state[4 + 2] == doctest::Approx(0.001F * 9.0F)); // v = (1 - b2) g^2
}
