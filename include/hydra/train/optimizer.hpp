// Optimizers as elementwise Thrust transforms over one shard's contiguous
// parameters, gradients and state. The same code runs with thrust::host inside a
// host-stream task and with thrust::cuda::par_nosync.on(stream) on a GPU. hydra
// fuses the step into each shard's backward task, while the shard is resident,
// so optimizer state crosses the host link once per minibatch.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>

#include <thrust/execution_policy.h>
#include <thrust/iterator/zip_iterator.h>
#include <thrust/transform.h>
#include <thrust/tuple.h>

#include "hydra/core/host_device.hpp"

namespace hydra {

// An optimizer keeps `state_per_parameter` floats of state per parameter, laid
// out as that many consecutive arrays of n floats, and updates in place.
template <class O>
concept optimizer = requires(O const& o, float* parameters, float const* gradients, float* state, std::size_t n,
                             std::uint64_t step) {
  { O::state_per_parameter } -> std::convertible_to<std::size_t>;
  { o.name() } -> std::convertible_to<std::string>;
  o.step(thrust::host, parameters, gradients, state, n, step);
};

// v = momentum * v + g;  p = p - learning_rate * v
struct sgd_momentum {
  float learning_rate = 0.01F;
  float momentum = 0.9F;
  static constexpr std::size_t state_per_parameter = 1;

  [[nodiscard]] std::string name() const { return "sgd(momentum)"; }

  struct update {
    float learning_rate;
    float momentum;
    HYDRA_HOST_DEVICE thrust::tuple<float, float> operator()(thrust::tuple<float, float, float> in) const {
      float const velocity = momentum * thrust::get<1>(in) + thrust::get<2>(in);
      return thrust::make_tuple(thrust::get<0>(in) - learning_rate * velocity, velocity);
    }
  };

  // `step` (1-based) is unused: plain momentum needs no bias correction.
  template <class Policy>
  void step(Policy const& policy, float* parameters, float const* gradients, float* state, std::size_t n,
            std::uint64_t /*step*/) const {
    auto const first = thrust::make_zip_iterator(thrust::make_tuple(parameters, state, gradients));
    thrust::transform(policy, first, first + static_cast<std::ptrdiff_t>(n),
                      thrust::make_zip_iterator(thrust::make_tuple(parameters, state)),
                      update{learning_rate, momentum});
  }
};

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p = p - learning_rate * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + epsilon)
struct adam {
  float learning_rate = 1e-3F;
  float beta1 = 0.9F;
  float beta2 = 0.999F;
  float epsilon = 1e-8F;
  static constexpr std::size_t state_per_parameter = 2; // m, then v

  [[nodiscard]] std::string name() const { return "adam"; }

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
    update const rule{learning_rate, beta1, beta2, epsilon, 1.0F - std::pow(beta1, t), 1.0F - std::pow(beta2, t)};
    auto const first =
        thrust::make_zip_iterator(thrust::make_tuple(parameters, first_moment, second_moment, gradients));
    thrust::transform(policy, first, first + static_cast<std::ptrdiff_t>(n),
                      thrust::make_zip_iterator(thrust::make_tuple(parameters, first_moment, second_moment)), rule);
  }
};

static_assert(optimizer<sgd_momentum>);
static_assert(optimizer<adam>);

} // namespace hydra
