// The sweep plan a controller acts through when the sweep runs over MPI ranks:
// it lives on rank 0, which alone runs the controller, and holds what every
// rank agrees on between rounds (how far each model is planned, which are out).
// The ranks carry its decisions out in their next round.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/select/sweep_controller.hpp"

namespace hydra::mpi::detail {

class global_plan final : public sweep_plan {
public:
  // Per model: its most minibatches, whether it has validation data, and
  // (shared with the sweep) how far it has trained, is planned, failed or
  // was stopped; `devices` in all the ranks together.
  global_plan(std::vector<std::size_t> max, std::vector<bool> validation, std::size_t devices, std::string controller,
              std::vector<double> const& done, std::vector<double>& planned, std::vector<double> const& failed,
              std::vector<double>& stopped)
      : max_(std::move(max)), validation_(std::move(validation)), devices_(devices), controller_(std::move(controller)),
        done_(&done), planned_(&planned), failed_(&failed), stopped_(&stopped), reasons_(max_.size()) {}

  [[nodiscard]] std::size_t model_count() const override { return max_.size(); }
  [[nodiscard]] std::size_t device_count() const override { return devices_; }
  [[nodiscard]] std::size_t max_minibatches(std::size_t m) const override { return max_.at(m); }
  [[nodiscard]] std::size_t planned_minibatches(std::size_t m) const override {
    return static_cast<std::size_t>(planned_->at(m));
  }
  [[nodiscard]] bool has_validation(std::size_t m) const override { return validation_.at(m); }
  [[nodiscard]] bool out(std::size_t m) const override { return failed_->at(m) != 0 || stopped_->at(m) != 0; }

  void train(std::size_t m, std::size_t minibatches) override {
    hydra::detail::expects(!out(m), who(m) + " has failed or was stopped; it cannot train further");
    std::size_t const left = max_.at(m) - planned_minibatches(m);
    hydra::detail::expects(minibatches > 0 && left > 0, who(m) + ": asked to train " + std::to_string(minibatches) +
                                                            " more minibatches with " + std::to_string(left) + " left");
    (*planned_)[m] = static_cast<double>(planned_minibatches(m) + std::min(minibatches, left));
  }

  void stop(std::size_t m, std::string const& reason) override {
    hydra::detail::expects(!out(m), who(m) + " has failed or was stopped already");
    hydra::detail::expects((*done_)[m] >= (*planned_)[m],
                           who(m) + " is still training what was planned for it; a model is stopped at a checkpoint");
    (*stopped_)[m] = 1;
    reasons_[m] = reason;
  }

  // Why the controller stopped model m, if it did.
  [[nodiscard]] std::optional<std::string> const& reason(std::size_t m) const { return reasons_.at(m); }

private:
  [[nodiscard]] std::string who(std::size_t m) const {
    return "sweep controller " + controller_ + ": model " + std::to_string(m);
  }

  std::vector<std::size_t> max_;
  std::vector<bool> validation_;
  std::size_t devices_;
  std::string controller_;
  std::vector<double> const* done_;
  std::vector<double>* planned_;
  std::vector<double> const* failed_;
  std::vector<double>* stopped_;
  std::vector<std::optional<std::string>> reasons_;
};

} // namespace hydra::mpi::detail
