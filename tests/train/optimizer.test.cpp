#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
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

TEST_CASE("on the host Adam gives the same bits as its Thrust transform, tail included") {
  std::size_t const n = 1031; // not a multiple of the four lanes
  auto values = [n](std::uint64_t seed, float scale) {
    std::mt19937_64 random(seed);
    std::uniform_real_distribution<float> pick(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = pick(random);
    return v;
  };
  auto const gradients = values(1, 1.0F);
  auto check = [&](auto const& optimizer, std::size_t state_count) {
    std::vector<float> p_host = values(2, 1.0F), p_thrust = p_host;
    std::vector<float> s_host(n * state_count, 0.0F), s_thrust = s_host;
    for (std::uint64_t step = 1; step <= 3; ++step) {
      optimizer.step(thrust::host, p_host.data(), gradients.data(), s_host.data(), n, step);    // the host loops
      optimizer.step(thrust::seq, p_thrust.data(), gradients.data(), s_thrust.data(), n, step); // Thrust's
    }
    CHECK(std::memcmp(p_host.data(), p_thrust.data(), n * sizeof(float)) == 0);
    CHECK(std::memcmp(s_host.data(), s_thrust.data(), s_host.size() * sizeof(float)) == 0);
    CHECK(p_host != values(2, 1.0F)); // it moved
  };
  check(hydra::adam{.learning_rate = 0.01F}, 2);
}
