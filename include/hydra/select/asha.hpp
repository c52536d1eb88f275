// Asynchronous successive halving (ASHA, Li et al. 2020). Whenever fewer than
// max_running models are training, it promotes a paused model that is among
// the best 1/eta of the results its rung has so far (highest rung first), or,
// when none is, starts a configuration that has not trained yet. It never
// waits for stragglers, so its decisions depend on the order in which
// checkpoints arrive, and so on the schedule: unlike successive_halving, two
// runs may keep different models. What holds on every run: a promotion out of
// rung k takes a model ranked within the best floor(n_k / eta) of the n_k
// results rung k had at that moment; a model enters rung k + 1 only by such a
// promotion; and no model trains past its rung's minibatches. (A model
// promoted early may later fall out of its rung's best 1/eta as better results
// arrive, so more than floor(n_k / eta) may leave rung k in all, as in the
// paper's algorithm.) Models paused at the end were not promoted.
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

struct asha_options {
  std::size_t eta = 3;             // the reduction factor: the best 1/eta of a rung's results are promoted
  std::size_t min_minibatches = 1; // the first rung; rung k trains min_minibatches * eta^k (the last: to the end)
  std::size_t max_running = 0;     // models training at once; 0: twice the device count
};

class asha {
public:
  explicit asha(asha_options options = {})
      : eta(options.eta), min_minibatches(options.min_minibatches), max_running(options.max_running) {
    detail::check_halving(name(), eta, min_minibatches);
  }

  // A promotion, as it was decided.
  struct promotion {
    std::size_t model = 0;
    std::size_t from_rung = 0;
    std::size_t rank = 0;      // 0: the best of the rung at that moment
    std::size_t rung_size = 0; // results the rung had then
  };

  void start(sweep_plan& plan) {
    detail::require_validation(name(), plan);
    limit_ = max_running > 0 ? max_running : 2 * plan.device_count();
    rung_of_.assign(plan.model_count(), not_started);
    running_.assign(plan.model_count(), false);
    rungs_.clear();
    promoted_.clear();
    promotions_.clear();
    next_new_ = 0;
    fill(plan);
  }

  void on_checkpoint(sweep_plan& plan, checkpoint const& reached) {
    evaluation const& metrics = detail::validation_of(name(), reached);
    std::size_t const k = rung_of_.at(reached.model);
    running_[reached.model] = false;
    if (rungs_.size() <= k) rungs_.resize(k + 1);
    rungs_[k].push_back({metrics, reached.model});
    fill(plan);
  }

  void on_failure(sweep_plan& plan, std::size_t model) {
    running_.at(model) = false;
    fill(plan);
  }

  [[nodiscard]] std::string name() const { return "asha"; }
  // The rung `model` trained to; nullopt if it never started.
  [[nodiscard]] std::optional<std::size_t> rung_of(std::size_t model) const {
    return rung_of_.at(model) == not_started ? std::nullopt : std::optional<std::size_t>(rung_of_[model]);
  }
  // Every rung's results, (metrics, model), best first as of the last time
  // the rung was searched for a promotion (not in arrival order).
  [[nodiscard]] std::vector<std::vector<std::pair<evaluation, std::size_t>>> const& rungs() const noexcept {
    return rungs_;
  }
  [[nodiscard]] std::vector<promotion> const& promotions() const noexcept { return promotions_; }

private:
  static constexpr std::size_t not_started = static_cast<std::size_t>(-1);

  [[nodiscard]] std::size_t running_count() const {
    return static_cast<std::size_t>(std::count(running_.begin(), running_.end(), true));
  }

  void fill(sweep_plan& plan) {
    while (running_count() < limit_) {
      if (auto const up = promotable(plan)) {
        std::size_t const m = up->model;
        promoted_.resize(std::max(promoted_.size(), up->from_rung + 1));
        promoted_[up->from_rung].push_back(m);
        promotions_.push_back(*up);
        rung_of_[m] = up->from_rung + 1;
        start_training(plan, m);
        continue;
      }
      while (next_new_ < plan.model_count() && (plan.out(next_new_) || plan.max_minibatches(next_new_) == 0))
        ++next_new_;
      if (next_new_ == plan.model_count()) return;
      rung_of_[next_new_] = 0;
      start_training(plan, next_new_++);
    }
  }

  void start_training(sweep_plan& plan, std::size_t m) {
    std::size_t const target = detail::rung_minibatches(min_minibatches, eta, rung_of_[m], plan.max_minibatches(m));
    plan.train(m, target - plan.planned_minibatches(m));
    running_[m] = true;
  }

  // The best promotable model of the highest rung that has one.
  [[nodiscard]] std::optional<promotion> promotable(sweep_plan const& plan) {
    for (std::size_t k = rungs_.size(); k-- > 0;) {
      auto& rung = rungs_[k];
      std::size_t const top = rung.size() / eta;
      if (top == 0) continue;
      std::stable_sort(rung.begin(), rung.end(), [](auto const& a, auto const& b) {
        if (better_than(a.first, b.first)) return true;
        if (better_than(b.first, a.first)) return false;
        return a.second < b.second;
      });
      for (std::size_t rank = 0; rank < top; ++rank) {
        std::size_t const m = rung[rank].second;
        bool const already =
            k < promoted_.size() && std::find(promoted_[k].begin(), promoted_[k].end(), m) != promoted_[k].end();
        if (already || plan.out(m) || plan.planned_minibatches(m) >= plan.max_minibatches(m)) continue;
        return promotion{m, k, rank, rung.size()};
      }
    }
    return std::nullopt;
  }

  std::size_t eta;
  std::size_t min_minibatches;
  std::size_t max_running;
  std::size_t limit_ = 0;
  std::vector<std::size_t> rung_of_;
  std::vector<bool> running_;
  std::vector<std::vector<std::pair<evaluation, std::size_t>>> rungs_;
  std::vector<std::vector<std::size_t>> promoted_; // per rung: the models promoted out of it
  std::vector<promotion> promotions_;
  std::size_t next_new_ = 0;
};

static_assert(sweep_controller<asha>);

} // namespace hydra
