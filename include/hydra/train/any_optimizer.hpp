// An optimizer chosen at run time (a sweep's configurations differ in it), for
// the layers' execution context: its step is enqueued as the optimizer's Thrust
// transform on the context's stream, exactly as the concrete type would do it.
// One type for every optimizer keeps the runners free of a template parameter
// that only the update step needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>

#include "hydra/train/optimizer.hpp"

namespace hydra {

template <class Context>
class any_optimizer {
public:
  template <optimizer Optimizer>
  explicit any_optimizer(Optimizer chosen)
      : name_(chosen.name()), state_per_parameter_(Optimizer::state_per_parameter),
        step_([chosen](Context& context, float* parameters, float const* gradients, float* state, std::size_t n,
                       std::uint64_t step) {
          context.run_thrust([chosen, parameters, gradients, state, n, step](auto const& policy) {
            chosen.step(policy, parameters, gradients, state, n, step);
          });
        }) {
    if constexpr (requires { chosen.schedule.validate(); }) chosen.schedule.validate();
  }

  template <optimizer... Optimizers>
  explicit any_optimizer(std::variant<Optimizers...> const& chosen)
      : any_optimizer(std::visit([](auto const& o) { return any_optimizer(o); }, chosen)) {}

  // Enqueues one update of n parameters on `context`'s stream; `step` counts
  // minibatches from 1 (Adam's bias correction uses it).
  void enqueue_step(Context& context, float* parameters, float const* gradients, float* state, std::size_t n,
                    std::uint64_t step) const {
    step_(context, parameters, gradients, state, n, step);
  }

  // Optimizer floats kept per parameter (SGD with momentum: 1; Adam: 2).
  [[nodiscard]] std::size_t state_per_parameter() const noexcept { return state_per_parameter_; }
  [[nodiscard]] std::string const& name() const noexcept { return name_; }

private:
  std::string name_;
  std::size_t state_per_parameter_;
  std::function<void(Context&, float*, float const*, float*, std::size_t, std::uint64_t)> step_;
};

} // namespace hydra
