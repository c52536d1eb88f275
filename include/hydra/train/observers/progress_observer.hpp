// Reports where a running sweep stands: after a completion (or a stop) at most
// once per interval, and once when the sweep is over.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>

#include "hydra/train/sweep_observer.hpp"
#include "hydra/train/sweep_types.hpp"

namespace hydra {

template <class Backend>
class progress_observer final : public sweep_observer<Backend> {
public:
  // `snapshot()` says where the sweep stands; `report` is the user's callback.
  progress_observer(std::function<sweep_progress()> snapshot, std::function<void(sweep_progress const&)> report,
                    std::chrono::milliseconds interval)
      : snapshot_(std::move(snapshot)), report_(std::move(report)), interval_(interval) {}

  void on_complete(task const& /*t*/, std::size_t /*device*/) override { maybe_report(); }
  void on_stop(std::size_t /*model*/, std::string const& /*reason*/) override { maybe_report(); }
  void on_finish() override { report_(snapshot_()); }

private:
  void maybe_report() {
    auto const now = std::chrono::steady_clock::now();
    if (now - last_ < interval_) return;
    last_ = now;
    report_(snapshot_());
  }

  std::function<sweep_progress()> snapshot_;
  std::function<void(sweep_progress const&)> report_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_{};
};

} // namespace hydra
