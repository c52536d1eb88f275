// Watches a sweep without steering it, the way taskflow's observers watch its
// executor: the trainer calls these hooks around each task, and the Chrome
// trace, the profiler and the progress reports are observers like any a user
// adds. Every hook runs on run()'s thread; work an observer enqueues on the
// task's streams runs in stream order with the task's own work.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "hydra/core/stream_role.hpp"
#include "hydra/sched/task.hpp"

namespace hydra {

template <class Backend>
class sweep_observer {
public:
  // The device's streams, indexed by stream_role (compute, prefetch, spill).
  using device_streams = std::array<typename Backend::stream, 3>;

  sweep_observer() = default;
  sweep_observer(sweep_observer const&) = delete;
  sweep_observer& operator=(sweep_observer const&) = delete;
  virtual ~sweep_observer() = default;

  // Task `t` is about to be enqueued on `device`. If enqueueing fails (no room
  // beside the device's queue, or its model is stopped), on_enqueued does not follow.
  virtual void on_launch(task const& /*t*/, std::size_t /*device*/, device_streams const& /*streams*/) {}
  // Its compute is about to be enqueued on `streams`: the compute stream has
  // been told to wait for the task's inputs and state, so work enqueued there
  // now runs once they are on the device. (Called between on_launch and
  // on_enqueued, unless the launch failed before it got here.)
  virtual void on_compute_begins(task const& /*t*/, std::size_t /*device*/, device_streams const& /*streams*/) {}
  // Its compute work is enqueued: work enqueued on the compute stream now runs
  // when that compute has ended.
  virtual void on_compute_ends(task const& /*t*/, std::size_t /*device*/, device_streams const& /*streams*/) {}
  // Its work is enqueued on `streams`; its completion is not reported yet.
  virtual void on_enqueued(task const& /*t*/, std::size_t /*device*/, device_streams const& /*streams*/) {}
  // Its completion has reached the driver: the model's next task is ready, or
  // its planned work has ended (a checkpoint: its controller has already
  // planned what follows, if anything).
  virtual void on_complete(task const& /*t*/, std::size_t /*device*/) {}
  // The model was stopped (a fault) for `reason`; none of its tasks follows.
  virtual void on_stop(std::size_t /*model*/, std::string const& /*reason*/) {}
  // The sweep is over and every stream has drained.
  virtual void on_finish() {}
};

} // namespace hydra
