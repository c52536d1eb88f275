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

TEST_CASE("a learning-rate schedule: linear warm-up, half a cosine to its floor, then the floor") {
  hydra::learning_rate_schedule const constant{};
  CHECK(constant.is_constant());
  CHECK(constant.factor(1) == 1.0F);
  CHECK(constant.factor(1'000'000) == 1.0F);
  CHECK(constant.describe().empty());

  hydra::learning_rate_schedule const s{.warmup_steps = 3, .decay_steps = 4, .final_fraction = 0.2F};
  CHECK(s.factor(1) == doctest::Approx(0.25));
  CHECK(s.factor(3) == doctest::Approx(0.75));
  CHECK(s.factor(4) == 1.0F);                       // the decay's first step: the full rate
  CHECK(s.factor(6) == doctest::Approx(0.2 + 0.4)); // halfway down the cosine
  CHECK(s.factor(7) == doctest::Approx(0.2 + 0.8 * (1 - std::sqrt(0.5)) / 2));
  CHECK(s.factor(8) == 0.2F); // the floor, from then on
  CHECK(s.factor(1'000'000) == 0.2F);
  CHECK(s.describe() == " warmup 3 cosine 4 to 0.2");
  for (std::uint64_t t = 4; t < 8; ++t) CHECK(s.factor(t + 1) < s.factor(t)); // falls every step

  CHECK_NOTHROW(s.validate());
  CHECK_THROWS_WITH_AS(hydra::learning_rate_schedule{.final_fraction = 1.5F}.validate(),
                       doctest::Contains("final_fraction 1.5"), hydra::invalid_argument);
  CHECK_THROWS_AS(hydra::learning_rate_schedule{.final_fraction = std::nanf("")}.validate(), hydra::invalid_argument);
}

TEST_CASE("a scheduled optimizer's step is the plain step at the scaled learning rate, bit for bit") {
  hydra::learning_rate_schedule const schedule{.decay_steps = 10, .final_fraction = 0.01F};
  std::vector<float> const g{0.3F, -0.7F, 1.5F, 0.01F, -2.0F};
  for (std::uint64_t step : {1U, 4U, 9U, 20U}) {
    CAPTURE(step);
    float const rate = 0.01F * schedule.factor(step);
    std::vector<float> p1{1.0F, 2.0F, -3.0F, 0.5F, 0.0F}, p2 = p1, s1(10, 0.25F), s2 = s1;
    hydra::adam{.learning_rate = 0.01F, .schedule = schedule}.step(thrust::host, p1.data(), g.data(), s1.data(), 5,
                                                                   step);
    hydra::adam{.learning_rate = rate}.step(thrust::host, p2.data(), g.data(), s2.data(), 5, step);
    CHECK(std::memcmp(p1.data(), p2.data(), 5 * sizeof(float)) == 0);
    hydra::sgd_momentum{.learning_rate = 0.01F, .schedule = schedule}.step(thrust::host, p1.data(), g.data(), s1.data(),
                                                                           5, step);
    hydra::sgd_momentum{.learning_rate = rate}.step(thrust::host, p2.data(), g.data(), s2.data(), 5, step);
    CHECK(std::memcmp(p1.data(), p2.data(), 5 * sizeof(float)) == 0);
  }
  CHECK(hydra::adam{.schedule = schedule}.name() == "adam cosine 10 to 0.01");
}
