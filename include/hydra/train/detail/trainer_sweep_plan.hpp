// The trainer's side of sweep_plan: what a sweep controller asks (train a
// model further, then validate it; stop it at its checkpoint) carried out as
// extensions of the model's chain in the driver and releases in the executor.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "hydra/core/error.hpp"
#include "hydra/select/sweep_controller.hpp"
#include "hydra/train/multi_model_trainer.hpp"

namespace hydra {

// What a controller may do, carried out on the trainer: extensions of a
// model's chain (training, then its validation pass) and stops.
template <class Backend, class Context>
class basic_multi_model_trainer<Backend, Context>::plan_type final : public sweep_plan {
public:
  explicit plan_type(basic_multi_model_trainer& trainer) : trainer_(&trainer) {}

  [[nodiscard]] std::size_t model_count() const override { return trainer_->configs_.size(); }
  [[nodiscard]] std::size_t device_count() const override { return trainer_->backend_->device_count(); }
  [[nodiscard]] std::size_t max_minibatches(std::size_t m) const override {
    return trainer_->done_before(m) + config(m).steps;
  }
  [[nodiscard]] std::size_t planned_minibatches(std::size_t m) const override {
    (void)config(m);
    return trainer_->done_before(m) + trainer_->planned(m);
  }
  [[nodiscard]] bool has_validation(std::size_t m) const override { return config(m).validation_minibatches > 0; }
  [[nodiscard]] bool out(std::size_t m) const override {
    (void)config(m);
    return trainer_->out(m);
  }

  void train(std::size_t m, std::size_t minibatches) override {
    (void)config(m);
    auto& t = *trainer_;
    auto const& config = t.configs_.at(m);
    std::string const who =
        "sweep controller " + t.controller_.name() + ": model " + std::to_string(m) + " (" + config.name + ")";
    detail::expects(!t.out(m), who + " has failed or was stopped; it cannot train further");
    std::size_t const left = config.steps - t.planned(m);
    detail::expects(minibatches > 0 && left > 0, who + ": asked to train " + std::to_string(minibatches) +
                                                     " more minibatches with " + std::to_string(left) + " left");
    std::size_t const more = std::min(minibatches, left);
    t.driver_->extend(m, {task_purpose::train, more});
    if (config.validation_minibatches > 0) {
      t.evaluations_[m].push_back({t.next_segment(m), config.validation_minibatches, config.validation, true});
      t.driver_->extend(m, {task_purpose::evaluate, config.validation_minibatches});
    }
  }

  void stop(std::size_t m, std::string const& reason) override {
    (void)config(m);
    auto& t = *trainer_;
    std::string const who = "sweep controller " + t.controller_.name() + ": model " + std::to_string(m);
    detail::expects(!t.out(m), who + " has failed or was stopped already");
    // Between checkpoints a model may have a task on a device: stopping it
    // there would depend on the schedule.
    detail::expects(t.driver_->core().model_done(m),
                    who + " is still training; a controller stops models at their checkpoints");
    t.driver_->retire(m);
    t.executor_->stop(m, t.last_device_);
    t.stopped_[m] = true;
    t.results_[m].stopped_early = reason;
    t.stopped_now_.push_back(m);
  }

private:
  auto const& config(std::size_t m) const {
    detail::expects(m < trainer_->configs_.size(), "sweep controller " + trainer_->controller_.name() +
                                                       ": there is no model " + std::to_string(m) + " (the sweep has " +
                                                       std::to_string(trainer_->configs_.size()) + ")");
    return trainer_->configs_[m];
  }

  basic_multi_model_trainer* trainer_;
};

} // namespace hydra
