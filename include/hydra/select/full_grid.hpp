// Every configuration trains to its end: the plain sweep. With evaluate_every,
// each is also evaluated on its validation data every that many minibatches
// (for validation curves); otherwise once, at the end.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "hydra/select/sweep_controller.hpp"

namespace hydra {

struct full_grid {
  std::size_t evaluate_every = 0; // minibatches between checkpoints; 0: only at the end

  void start(sweep_plan& plan) {
    for (std::size_t m = 0; m < plan.model_count(); ++m) continue_model(plan, m);
  }
  void on_checkpoint(sweep_plan& plan, checkpoint const& reached) { continue_model(plan, reached.model); }
  [[nodiscard]] std::string name() const { return "full_grid"; }

private:
  void continue_model(sweep_plan& plan, std::size_t m) const {
    std::size_t const left = plan.max_minibatches(m) - plan.planned_minibatches(m);
    if (left == 0) return;
    plan.train(m, evaluate_every == 0 ? left : std::min(evaluate_every, left));
  }
};

static_assert(sweep_controller<full_grid>);

} // namespace hydra
