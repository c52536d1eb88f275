// Observes a run without steering it: each task leaves one slice per stream it
// used (compute, prefetch, spill), timed on the stream itself by marks enqueued
// before and after the task's work there. A slice therefore spans the task's
// whole turn on that stream, waits for other streams included.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "hydra/core/stream_role.hpp"
#include "hydra/sched/task.hpp"

namespace hydra {

struct trace_slice {
  hydra::task task;
  std::string model_name;
  std::size_t device = 0;
  stream_role stream = stream_role::compute;
  std::chrono::nanoseconds start{0}; // since the recorder's origin
  std::chrono::nanoseconds end{0};
};

class trace_recorder {
public:
  trace_recorder() : origin_(std::chrono::steady_clock::now()) {}

  // The moment the slices' times count from.
  [[nodiscard]] std::chrono::steady_clock::time_point origin() const noexcept { return origin_; }

  [[nodiscard]] std::chrono::nanoseconds now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - origin_);
  }

  void add(trace_slice slice) {
    std::lock_guard lock(mutex_);
    slices_.push_back(std::move(slice));
  }

  // A copy, taken under the lock (call once the streams have drained).
  [[nodiscard]] std::vector<trace_slice> slices() const {
    std::lock_guard lock(mutex_);
    return slices_;
  }

private:
  std::chrono::steady_clock::time_point origin_;
  mutable std::mutex mutex_;
  std::vector<trace_slice> slices_;
};

} // namespace hydra
