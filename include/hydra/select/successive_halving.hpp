// Synchronous successive halving: every configuration trains to the first rung
// and is evaluated; once all of a rung have reported, the best 1/eta (at least
// one) train on to the next rung, eta times as far, and the rest are stopped,
// which frees their memory and devices for the survivors. The decisions depend
// only on validation metrics, which do not depend on the schedule: every
// policy, device count and budget stops the same models at the same rungs and
// leaves the survivors with the same weights (bitwise on the host backend).
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hydra/select/evaluation.hpp"
#include "hydra/select/rungs.hpp"
#include "hydra/select/sweep_controller.hpp"

namespace hydra {

struct halving_options {
  std::size_t eta = 3;             // the reduction factor: the best 1/eta of a rung go on
  std::size_t min_minibatches = 1; // the first rung; rung k trains min_minibatches * eta^k (the last: to the end)
};

class successive_halving {
public:
  explicit successive_halving(halving_options options = {})
      : eta(options.eta), min_minibatches(options.min_minibatches) {
    detail::check_halving(name(), eta, min_minibatches);
  }

  void start(sweep_plan& plan) {
    detail::require_validation(name(), plan);
    rung_ = 0;
    rung_of_.assign(plan.model_count(), 0);
    last_.assign(plan.model_count(), std::nullopt);
    members_.clear();
    reported_.clear();
    for (std::size_t m = 0; m < plan.model_count(); ++m)
      if (!plan.out(m) && plan.max_minibatches(m) > 0) members_.push_back(m);
    advance_members(plan);
  }

  void on_checkpoint(sweep_plan& plan, checkpoint const& reached) {
    last_.at(reached.model) = detail::validation_of(name(), reached);
    reported_.push_back(reached.model);
    try_advance(plan);
  }

  void on_failure(sweep_plan& plan, std::size_t model) {
    std::erase(members_, model);
    std::erase(reported_, model);
    try_advance(plan);
  }

  [[nodiscard]] std::string name() const { return "successive_halving"; }
  // The highest rung `model` reached (0: the first).
  [[nodiscard]] std::size_t rung_of(std::size_t model) const { return rung_of_.at(model); }
  // Its latest validation metrics, if it reported any.
  [[nodiscard]] std::optional<evaluation> const& last_validation(std::size_t model) const { return last_.at(model); }

private:
  // Plans the current rung for its members; members that cannot train further
  // (at their maximum already) report their last metrics again at once. A
  // lone survivor has no one left to be compared with: it trains to its end.
  void advance_members(sweep_plan& plan) {
    for (std::size_t m : members_) {
      rung_of_[m] = rung_;
      std::size_t const target = members_.size() == 1 && rung_ > 0
                                     ? plan.max_minibatches(m)
                                     : detail::rung_minibatches(min_minibatches, eta, rung_, plan.max_minibatches(m));
      std::size_t const planned = plan.planned_minibatches(m);
      if (target > planned)
        plan.train(m, target - planned);
      else
        reported_.push_back(m);
    }
  }

  void try_advance(sweep_plan& plan) {
    while (!members_.empty() && reported_.size() == members_.size()) {
      bool const final_rung = std::all_of(members_.begin(), members_.end(), [&](std::size_t m) {
        return plan.planned_minibatches(m) >= plan.max_minibatches(m);
      });
      if (final_rung) return; // every survivor has trained to its end
      std::vector<std::size_t> ranked = members_;
      std::sort(ranked.begin(), ranked.end(), [&](std::size_t a, std::size_t b) {
        if (better_than(*last_[a], *last_[b])) return true;
        if (better_than(*last_[b], *last_[a])) return false;
        return a < b;
      });
      std::size_t const keep = std::max<std::size_t>(1, ranked.size() / eta);
      for (std::size_t i = keep; i < ranked.size(); ++i)
        plan.stop(ranked[i], name() + ": rung " + std::to_string(rung_) + " (" +
                                 std::to_string(plan.planned_minibatches(ranked[i])) + " minibatches): ranked " +
                                 std::to_string(i + 1) + " of " + std::to_string(ranked.size()) + ", only the best " +
                                 std::to_string(keep) + " go on");
      ranked.resize(keep);
      std::sort(ranked.begin(), ranked.end()); // plan in model order: the same whatever the ranking's ties
      members_ = std::move(ranked);
      reported_.clear();
      ++rung_;
      advance_members(plan);
    }
  }

  std::size_t eta;
  std::size_t min_minibatches;
  std::size_t rung_ = 0;
  std::vector<std::size_t> members_;  // the models in the current rung
  std::vector<std::size_t> reported_; // those of them that reported at this rung
  std::vector<std::size_t> rung_of_;
  std::vector<std::optional<evaluation>> last_;
};

static_assert(sweep_controller<successive_halving>);

} // namespace hydra
