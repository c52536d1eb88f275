// Each device's compute busy time, for utilisation figures. A backend that
// counts its streams' busy time (the host backend) is simply asked; on one that
// can only time intervals (CUDA, which has no per-stream busy counter), a pair
// of timed events brackets each task's compute, and a task's interval is added
// once its completion shows that the interval has ended.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/sched/task.hpp"

namespace hydra::detail {

template <class Backend>
class device_busy_clock {
public:
  using stream = typename Backend::stream;
  static_assert(measures_streams<Backend> || times_intervals<Backend>,
                "the trainers report device utilisation: the backend must count its streams' busy time "
                "(statistics(stream)) or time intervals (record_timed_event, elapsed_seconds)");

  device_busy_clock(Backend& backend, std::size_t devices) : backend_(&backend), busy_(devices), timed_(devices) {}

  // Around task `t`'s compute work on device d's compute stream.
  void compute_starts(stream compute) {
    if constexpr (timed) start_ = backend_->record_timed_event(compute);
  }
  void compute_ends(std::size_t d, stream compute, task const& t) {
    if constexpr (timed) timed_[d].push_back({t, {start_, backend_->record_timed_event(compute)}});
  }

  // Task `t` on device d completed: its compute interval has ended.
  void completed(task const& t, std::size_t d) {
    if constexpr (timed) {
      auto& pending = timed_[d];
      auto const it = std::find_if(pending.begin(), pending.end(), [&](auto const& entry) { return entry.first == t; });
      if (it == pending.end()) return;
      busy_[d] += std::chrono::nanoseconds(
          static_cast<std::int64_t>(backend_->elapsed_seconds(it->second.first, it->second.second) * 1e9));
      pending.erase(it);
    }
  }

  // Device d's compute busy time so far (`compute`: its compute stream).
  [[nodiscard]] std::chrono::nanoseconds busy(std::size_t d, stream compute) const {
    if constexpr (measures_streams<Backend>)
      return std::chrono::duration_cast<std::chrono::nanoseconds>(backend_->statistics(compute).busy);
    else
      return busy_[d];
  }

private:
  static constexpr bool timed = !measures_streams<Backend>;
  template <class B, bool Timed>
  struct timed_event_of {
    struct type {}; // nothing is timed
  };
  template <class B>
  struct timed_event_of<B, true> {
    using type = typename B::timed_event;
  };
  using timed_event = typename timed_event_of<Backend, timed>::type;

  Backend* backend_;
  std::vector<std::chrono::nanoseconds> busy_;
  timed_event start_{};
  std::vector<std::deque<std::pair<task, std::pair<timed_event, timed_event>>>> timed_;
};

} // namespace hydra::detail
