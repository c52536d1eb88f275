// The schedule as it ran: one slice per task and stream, timed on the stream
// itself by a mark enqueued before the task's work there and one after it. A
// slice therefore spans the task's whole turn on that stream, waits included.
// The marks are six more stream items per task, so a sweep records a trace
// only when asked (multi_model_options::record_trace).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hydra/trace/trace_recorder.hpp"
#include "hydra/train/sweep_observer.hpp"

namespace hydra {

template <class Backend>
class trace_observer final : public sweep_observer<Backend> {
public:
  using typename sweep_observer<Backend>::device_streams;

  trace_observer(Backend& backend, std::vector<std::string> model_names)
      : backend_(&backend), names_(std::move(model_names)) {}

  void on_launch(task const& /*t*/, std::size_t /*device*/, device_streams const& streams) override {
    for (std::size_t k = 0; k < streams.size(); ++k) {
      starts_[k] = std::make_shared<std::chrono::nanoseconds>(0);
      backend_->enqueue(streams[k], [mark = starts_[k], this] { *mark = recorder_.now(); });
    }
  }

  void on_enqueued(task const& t, std::size_t device, device_streams const& streams) override {
    for (std::size_t k = 0; k < streams.size(); ++k) {
      backend_->enqueue(streams[k], [this, start = std::move(starts_[k]), t, device, role = static_cast<stream_role>(k),
                                     name = names_[t.model]] {
        recorder_.add({t, name, device, role, *start, recorder_.now()});
      });
    }
  }

  // The slices so far (complete once the streams have drained).
  [[nodiscard]] std::vector<trace_slice> slices() const { return recorder_.slices(); }
  [[nodiscard]] std::chrono::steady_clock::time_point origin() const noexcept { return recorder_.origin(); }

private:
  Backend* backend_;
  std::vector<std::string> names_;
  trace_recorder recorder_;
  // The start marks of the task being launched, one per stream: per task, so a
  // late end mark of an earlier task cannot race with them.
  std::array<std::shared_ptr<std::chrono::nanoseconds>, 3> starts_{};
};

} // namespace hydra
