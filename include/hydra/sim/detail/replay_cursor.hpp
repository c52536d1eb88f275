// Where a replay stands in a recorded run's driver log (sim::options::replay):
// the next recorded event, the updates that come between launches and
// completions, and the error that names the first event where the simulated
// sweep and the recorded one part.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "hydra/core/error.hpp"
#include "hydra/sched/sweep_driver.hpp"

namespace hydra::sim::detail {

class replay_cursor {
public:
  explicit replay_cursor(std::span<driver_event const> recorded) : recorded_(recorded) {}

  [[nodiscard]] bool active() const noexcept { return !recorded_.empty(); }
  [[nodiscard]] std::size_t position() const noexcept { return at_; }
  [[nodiscard]] bool done() const noexcept { return at_ >= recorded_.size(); }

  // The next recorded event, which must exist: here `wanted` happens.
  driver_event const& next(std::string const& wanted) {
    if (done())
      throw error("simulator: replay diverged: the recorded run ends after " + std::to_string(at_) + " events, here " +
                  wanted + " follows");
    return recorded_[at_++];
  }

  // Feeds `driver` what the recorded run told its driver next, short of a
  // launch or a completion: new cost estimates, a sweep controller's
  // extensions and retirements.
  void apply_updates(sweep_driver& driver) {
    using kind = driver_event::kind;
    for (; !done(); ++at_) {
      auto const& next = recorded_[at_];
      if (next.what == kind::costs_updated)
        driver.update_costs(next.task.model, next.costs);
      else if (next.what == kind::extended)
        driver.extend(next.task.model, next.segment);
      else if (next.what == kind::retired)
        driver.retire(next.task.model);
      else
        break;
    }
  }

  // The error for a difference found at the current event.
  [[nodiscard]] error diverged(std::string const& what) const {
    return error("simulator: replay diverged at event " + std::to_string(at_) + ": " + what);
  }

  [[nodiscard]] static std::string describe_event(driver_event const& e) {
    static char const* const names[] = {"launch",          "launch without room", "launch that stopped its model",
                                        "completion",      "failed completion",   "cost update",
                                        "chain extension", "retirement"};
    return std::string(names[static_cast<std::size_t>(e.what)]) + " of " + describe(e.task) + " on device " +
           std::to_string(e.device);
  }

private:
  std::span<driver_event const> recorded_;
  std::size_t at_ = 0;
};

} // namespace hydra::sim::detail
