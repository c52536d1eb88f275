// Optimizers as elementwise Thrust transforms over one shard's contiguous
// parameters, gradients and state. The same code runs with thrust::host inside a
// host-stream task and with thrust::cuda::par_nosync.on(stream) on a GPU. hydra
// fuses the step into each shard's backward task, while the shard is resident,
// so optimizer state crosses the host link once per minibatch.
//
// With thrust::host and g++ on x86-64, Adam's step runs as SSE loops instead,
// four parameters at a time, computing the very expressions of its update
// functor: g++ will not vectorise std::sqrt (it may set errno), so Thrust's host
// transform ran Adam one element at a time, at a third of a host MLP step once
// the layers' GEMMs ran on OpenBLAS. SSE's add, multiply, divide and square
// root round exactly as the scalar ones do, so the results are the same bits,
// as long as the compiler does not fuse the scalar code's multiply-adds
// (hydra's own targets build with -ffp-contract=off; x86-64 without FMA in its
// -march cannot fuse). (SGD's transform vectorises as it is.)
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <thrust/execution_policy.h>
#include <thrust/iterator/zip_iterator.h>
#include <thrust/transform.h>
#include <thrust/tuple.h>

#include "hydra/core/host_device.hpp"
#include "hydra/train/learning_rate_schedule.hpp"

#if (defined(__x86_64__) || defined(__SSE2__)) && !defined(__CUDACC__)
#include <immintrin.h>
#define HYDRA_HOST_SSE_UPDATES 1
#else
#define HYDRA_HOST_SSE_UPDATES 0
#endif

namespace hydra {

namespace detail {
// Whether `Policy` runs the algorithm on the calling host thread.
template <class Policy>
inline constexpr bool is_host_policy =
    std::is_same_v<std::remove_cvref_t<Policy>, std::remove_cvref_t<decltype(thrust::host)>>;
} // namespace detail

// An optimizer keeps `state_per_parameter` floats of state per parameter, laid
// out as that many consecutive arrays of n floats, and updates in place.
template <class O>
concept optimizer = requires(O const& o, float* parameters, float const* gradients, float* state, std::size_t n,
                             std::uint64_t step) {
  { O::state_per_parameter } -> std::convertible_to<std::size_t>;
  { o.name() } -> std::convertible_to<std::string>;
  o.step(thrust::host, parameters, gradients, state, n, step);
};

// v = momentum * v + g;  p = p - learning_rate * schedule.factor(t) * v
struct sgd_momentum {
  float learning_rate = 0.01F;
  float momentum = 0.9F;
  learning_rate_schedule schedule{};
  static constexpr std::size_t state_per_parameter = 1;

  [[nodiscard]] std::string name() const { return "sgd(momentum)" + schedule.describe(); }

  struct update {
    float learning_rate;
    float momentum;
    HYDRA_HOST_DEVICE thrust::tuple<float, float> operator()(thrust::tuple<float, float, float> in) const {
      float const velocity = momentum * thrust::get<1>(in) + thrust::get<2>(in);
      return thrust::make_tuple(thrust::get<0>(in) - learning_rate * velocity, velocity);
    }
  };

  // `step` counts from 1; only the schedule reads it.
  template <class Policy>
  void step(Policy const& policy, float* parameters, float const* gradients, float* state, std::size_t n,
            std::uint64_t step) const {
    auto const first = thrust::make_zip_iterator(thrust::make_tuple(parameters, state, gradients));
    thrust::transform(policy, first, first + static_cast<std::ptrdiff_t>(n),
                      thrust::make_zip_iterator(thrust::make_tuple(parameters, state)),
                      update{learning_rate * schedule.factor(step), momentum});
  }
};

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p = p - learning_rate * schedule.factor(t) * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + epsilon)
struct adam {
  float learning_rate = 1e-3F;
  float beta1 = 0.9F;
  float beta2 = 0.999F;
  float epsilon = 1e-8F;
  learning_rate_schedule schedule{};
  static constexpr std::size_t state_per_parameter = 2; // m, then v

  [[nodiscard]] std::string name() const { return "adam" + schedule.describe(); }

  struct update {
    float learning_rate, beta1, beta2, epsilon, correction1, correction2;
    HYDRA_HOST_DEVICE thrust::tuple<float, float, float>
    operator()(thrust::tuple<float, float, float, float> in) const {
      float const g = thrust::get<3>(in);
      float const m = beta1 * thrust::get<1>(in) + (1.0F - beta1) * g;
      float const v = beta2 * thrust::get<2>(in) + (1.0F - beta2) * g * g;
      float const m_hat = m / correction1;
      float const v_hat = v / correction2;
      return thrust::make_tuple(thrust::get<0>(in) - learning_rate * m_hat / (std::sqrt(v_hat) + epsilon), m, v);
    }
  };

  template <class Policy>
  void step(Policy const& policy, float* parameters, float const* gradients, float* state, std::size_t n,
            std::uint64_t step) const {
    float* first_moment = state;
    float* second_moment = state + n;
    auto const t = static_cast<float>(step);
    update const rule{learning_rate * schedule.factor(step),
                      beta1,
                      beta2,
                      epsilon,
                      1.0F - std::pow(beta1, t),
                      1.0F - std::pow(beta2, t)};
    if constexpr (detail::is_host_policy<Policy>) {
      host_step(rule, parameters, gradients, first_moment, second_moment, n);
      return;
    }
    auto const first =
        thrust::make_zip_iterator(thrust::make_tuple(parameters, first_moment, second_moment, gradients));
    thrust::transform(policy, first, first + static_cast<std::ptrdiff_t>(n),
                      thrust::make_zip_iterator(thrust::make_tuple(parameters, first_moment, second_moment)), rule);
  }

private:
  static void host_step(update const& rule, float* parameters, float const* gradients, float* m, float* v,
                        std::size_t n) {
    std::size_t i = 0;
#if HYDRA_HOST_SSE_UPDATES
    __m128 const b1 = _mm_set1_ps(rule.beta1), b2 = _mm_set1_ps(rule.beta2);
    __m128 const rest1 = _mm_set1_ps(1.0F - rule.beta1), rest2 = _mm_set1_ps(1.0F - rule.beta2);
    __m128 const c1 = _mm_set1_ps(rule.correction1), c2 = _mm_set1_ps(rule.correction2);
    __m128 const rate = _mm_set1_ps(rule.learning_rate), epsilon = _mm_set1_ps(rule.epsilon);
    for (; i + 4 <= n; i += 4) {
      __m128 const g = _mm_loadu_ps(gradients + i);
      __m128 const mi = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + i)), _mm_mul_ps(rest1, g));
      __m128 const vi = _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(rest2, g), g));
      __m128 const m_hat = _mm_div_ps(mi, c1), v_hat = _mm_div_ps(vi, c2);
      __m128 const move = _mm_div_ps(_mm_mul_ps(rate, m_hat), _mm_add_ps(_mm_sqrt_ps(v_hat), epsilon));
      _mm_storeu_ps(parameters + i, _mm_sub_ps(_mm_loadu_ps(parameters + i), move));
      _mm_storeu_ps(m + i, mi);
      _mm_storeu_ps(v + i, vi);
    }
#endif
    for (; i < n; ++i) {
      auto const out = rule(thrust::make_tuple(parameters[i], m[i], v[i], gradients[i]));
      parameters[i] = thrust::get<0>(out);
      m[i] = thrust::get<1>(out);
      v[i] = thrust::get<2>(out);
    }
  }
};

static_assert(optimizer<sgd_momentum>);
static_assert(optimizer<adam>);

} // namespace hydra
