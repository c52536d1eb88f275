// The independent reference of every sweep test: the same model trained alone,
// on one roomy host device, by the single-model trainer.
#pragma once

#include <cstring>
#include <type_traits>
#include <variant>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/train/multi_model_trainer.hpp"

namespace hydra::testing {

struct solo_result {
  std::vector<float> parameters;
  std::vector<float> losses;
};

inline solo_result train_alone(model_config const& config) {
  using namespace hydra::literals;
  host_backend backend({.device_budgets = {64_MiB}});
  return std::visit(
      [&](auto const& optimizer) {
        single_model_trainer<std::decay_t<decltype(optimizer)>> trainer(backend, config.model, optimizer,
                                                                        {.seed = config.seed});
        trainer.train(config.steps, config.data);
        return solo_result{trainer.parameters(), trainer.losses()};
      },
      config.optimizer);
}

inline bool bitwise_equal(std::vector<float> const& a, std::vector<float> const& b) {
  // memcmp must not see the null data() of an empty vector, even for 0 bytes.
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

} // namespace hydra::testing
