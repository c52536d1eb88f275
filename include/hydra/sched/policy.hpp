// The Policy concept: whenever a device can take a task, the scheduler shows the
// policy every ready task that may run there (each the next task of a different
// model; a shard too large for a device's memory is not shown to it) and the
// device, and the policy names one, or declines (the device then waits). Policies
// may keep state; they must be cheap: they run once per task.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>

#include "hydra/sched/task.hpp"

namespace hydra {

inline constexpr std::size_t nowhere = std::numeric_limits<std::size_t>::max();

// What a policy knows of a ready task.
struct ready_task {
  hydra::task task;
  double task_seconds = 0;           // estimated compute time of this task
  double remaining_seconds = 0;      // estimated compute left in its model, this task included
  std::uint64_t ready_since = 0;     // order in which tasks became ready (smaller: earlier)
  std::size_t resident_on = nowhere; // device holding this task's shard, if any
  // The device that made this task's input activation (ran the model's task
  // before it), where an activation kept on the device would be; nowhere for
  // a minibatch's first task, whose input comes from host memory.
  std::size_t activation_on = nowhere;
};

struct device_view {
  std::size_t device = 0;
  std::size_t device_count = 1;
  std::size_t model_count = 0;
  std::size_t first_unfinished_model = 0; // the lowest model id still training
  // The asking device's compute speed against the device the cost estimates
  // describe (a task's seconds there are its estimate / speed): devices that
  // differ differ in it. 1 where all devices are alike.
  double speed = 1;
};

// What a device's speed may be, wherever one is given (the trainer's options,
// the driver, a workload, its JSON): positive, and at most a million times the
// reference device's, so that seconds / speed stays a finite, meaningful time.
inline constexpr double max_device_speed = 1e6;
[[nodiscard]] constexpr bool valid_device_speed(double speed) noexcept {
  return speed > 0 && speed <= max_device_speed;
}

template <class P>
concept policy = requires(P& p, std::span<ready_task const> ready, device_view const& device) {
  { p.pick(ready, device) } -> std::same_as<std::optional<std::size_t>>; // an index into `ready`
  { p.name() } -> std::convertible_to<std::string>;
};

} // namespace hydra
