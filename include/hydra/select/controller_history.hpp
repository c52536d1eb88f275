// What a sweep controller was shown, in order: each model's checkpoints and
// failures. A controller's decisions are a function of what it is shown and of
// the sweep's shape (its models' maximum minibatches, whether they have
// validation data, the device count), so showing the same events to a fresh
// controller of the same kind, with the same options, rebuilds its state: its
// rungs, its promotions, what it planned for each model. That is how a
// controlled sweep resumes from a checkpoint (multi_model_options::resume_history).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/select/sweep_controller.hpp"

namespace hydra {

struct controller_event {
  // The model's checkpoint; its minibatches are counted from the model's
  // first, those before a snapshot it resumed from included.
  checkpoint reached;
  // Set when the model failed instead (reached.validation is then empty).
  std::optional<std::string> failure;
};

using controller_history = std::vector<controller_event>;

namespace detail {

// The sweep as a replayed history leaves it: what the controller planned for
// each model and which models it stopped, with nothing trained. Each event is
// checked against the plan it replays into, so a history from another sweep,
// another controller or other options is refused rather than half-applied.
class replay_plan final : public sweep_plan {
public:
  struct model_shape {
    std::size_t max_minibatches = 0;
    bool has_validation = false;
  };

  replay_plan(std::string controller, std::vector<model_shape> models, std::size_t devices)
      : controller_(std::move(controller)), models_(std::move(models)), devices_(devices), planned_(models_.size(), 0),
        awaiting_(models_.size(), false), stopped_(models_.size()), failed_(models_.size()),
        reached_(models_.size(), 0) {}

  [[nodiscard]] std::size_t model_count() const override { return models_.size(); }
  [[nodiscard]] std::size_t device_count() const override { return devices_; }
  [[nodiscard]] std::size_t max_minibatches(std::size_t m) const override { return shape(m).max_minibatches; }
  [[nodiscard]] std::size_t planned_minibatches(std::size_t m) const override {
    (void)shape(m);
    return planned_[m];
  }
  [[nodiscard]] bool has_validation(std::size_t m) const override { return shape(m).has_validation; }
  [[nodiscard]] bool out(std::size_t m) const override {
    (void)shape(m);
    return stopped_[m].has_value() || failed_[m].has_value();
  }

  void train(std::size_t m, std::size_t minibatches) override {
    std::size_t const left = max_minibatches(m) - planned_[m];
    expects(!out(m) && minibatches > 0 && left > 0, who(m) + ": asked to train " + std::to_string(minibatches) +
                                                        " more with " + std::to_string(left) +
                                                        " left while replaying its history");
    planned_[m] += std::min(minibatches, left);
    awaiting_[m] = true;
  }

  void stop(std::size_t m, std::string const& reason) override {
    expects(!out(m) && !awaiting_[m],
            who(m) + ": stopped while replaying its history, but it has no checkpoint to be stopped at");
    stopped_[m] = reason;
  }

  // An event of the history, checked against what was planned.
  void reached(checkpoint const& at) {
    std::size_t const m = at.model;
    expects(m < models_.size(), "resume history: a checkpoint of model " + std::to_string(m) + ", but the sweep has " +
                                    std::to_string(models_.size()));
    expects(awaiting_[m] && planned_[m] == at.minibatches,
            "resume history: model " + std::to_string(m) + " reached a checkpoint at minibatch " +
                std::to_string(at.minibatches) + ", but " + controller_ + " had planned " +
                (awaiting_[m] ? std::to_string(planned_[m]) + " minibatches for it" : "no training for it") +
                " (a history of another sweep, controller or device count?)");
    awaiting_[m] = false;
    reached_[m] = at.minibatches;
  }
  void failed(std::size_t m, std::string const& reason) {
    expects(m < models_.size(), "resume history: a failure of model " + std::to_string(m) + ", but the sweep has " +
                                    std::to_string(models_.size()));
    expects(awaiting_[m], "resume history: model " + std::to_string(m) + " failed while " + controller_ +
                              " had planned no training for it");
    awaiting_[m] = false;
    failed_[m] = reason;
  }

  // Why `m` is out: stopped by its controller or failed (nullopt: it is not).
  [[nodiscard]] std::optional<std::string> const& stopped(std::size_t m) const { return stopped_.at(m); }
  [[nodiscard]] std::optional<std::string> const& failure(std::size_t m) const { return failed_.at(m); }
  // The minibatches of its last checkpoint in the history (0: none).
  [[nodiscard]] std::size_t last_checkpoint(std::size_t m) const { return reached_.at(m); }

private:
  model_shape const& shape(std::size_t m) const {
    expects(m < models_.size(), "sweep controller " + controller_ + ": there is no model " + std::to_string(m) +
                                    " (the sweep has " + std::to_string(models_.size()) + ")");
    return models_[m];
  }
  std::string who(std::size_t m) const { return "sweep controller " + controller_ + ": model " + std::to_string(m); }

  std::string controller_;
  std::vector<model_shape> models_;
  std::size_t devices_;
  std::vector<std::size_t> planned_;
  std::vector<bool> awaiting_; // trained, and its checkpoint not yet replayed
  std::vector<std::optional<std::string>> stopped_, failed_;
  std::vector<std::size_t> reached_;
};

} // namespace detail
} // namespace hydra
