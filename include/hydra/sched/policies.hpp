// hydra's built-in policies. sharp is the default; fifo, round_robin and
// random_pick are simple alternatives; model_parallel and task_parallel are the
// baselines the Hydra paper compares against. Ties always break the same way
// (the shard already resident on the asking device first, then the task whose
// input activation that device made, then the lower model id), so a policy's
// choices are reproducible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>

#include "hydra/sched/policy.hpp"

namespace hydra {

namespace detail {
// a before b on ties: resident here first, then input made here, then the lower model id.
inline bool tie_break(ready_task const& a, ready_task const& b, std::size_t device) noexcept {
  bool const a_here = a.resident_on == device, b_here = b.resident_on == device;
  if (a_here != b_here) return a_here;
  bool const a_input_here = a.activation_on == device, b_input_here = b.activation_on == device;
  if (a_input_here != b_input_here) return a_input_here;
  return a.task.model < b.task.model;
}
} // namespace detail

// SHARP: the ready task whose model has the longest remaining work. Keeping the
// longest chains moving keeps the makespan near max(total work / D, longest chain).
struct sharp {
  [[nodiscard]] std::string name() const { return "sharp"; }
  std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const& device) const {
    if (ready.empty()) return std::nullopt;
    std::size_t best = 0;
    for (std::size_t at = 1; at < ready.size(); ++at) {
      double const a = ready[at].remaining_seconds, b = ready[best].remaining_seconds;
      if (a > b || (a == b && detail::tie_break(ready[at], ready[best], device.device))) best = at;
    }
    return best;
  }
};

// First come, first served: the task that became ready earliest.
struct fifo {
  [[nodiscard]] std::string name() const { return "fifo"; }
  std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const&) const {
    if (ready.empty()) return std::nullopt;
    std::size_t best = 0;
    for (std::size_t at = 1; at < ready.size(); ++at)
      if (ready[at].ready_since < ready[best].ready_since) best = at;
    return best;
  }
};

// Models take turns: the ready task of the next model id after the last one picked.
class round_robin {
public:
  [[nodiscard]] std::string name() const { return "round_robin"; }
  std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const& device) {
    if (ready.empty()) return std::nullopt;
    std::size_t best = 0, best_distance = std::numeric_limits<std::size_t>::max();
    for (std::size_t at = 0; at < ready.size(); ++at) {
      // Distance going forward (cyclically) from the model after the last pick.
      std::size_t const model = ready[at].task.model;
      std::size_t const distance =
          model >= next_model_ ? model - next_model_ : model + device.model_count - next_model_;
      if (distance < best_distance) {
        best = at;
        best_distance = distance;
      }
    }
    next_model_ = (ready[best].task.model + 1) % device.model_count;
    return best;
  }

private:
  std::size_t next_model_ = 0;
};

// Uniformly at random, from a seed: reproducible for a given sequence of calls.
class random_pick {
public:
  explicit random_pick(std::uint64_t seed = 1) : random_(seed) {}
  [[nodiscard]] std::string name() const { return "random_pick"; }
  std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const&) {
    if (ready.empty()) return std::nullopt;
    return static_cast<std::size_t>(random_() % ready.size());
  }

private:
  std::mt19937_64 random_;
};

// Baseline: plain model parallelism. One model at a time (the lowest id still
// training); its shard s always runs on device s mod D, so all but one device idle.
// It assumes that device may run the shard: where shards fit only some devices
// (scheduler_core::restrict_placement) a sweep under it can stall, and the
// driver then ends it with an error naming the shard and its devices.
struct model_parallel {
  [[nodiscard]] std::string name() const { return "model_parallel"; }
  std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const& device) const {
    for (std::size_t at = 0; at < ready.size(); ++at) {
      task const& t = ready[at].task;
      if (t.model == device.first_unfinished_model && t.shard % device.device_count == device.device) return at;
    }
    return std::nullopt;
  }
};

// Baseline: task parallelism. Model m trains whole (one shard) on device
// m mod D; models that share a device take it in model-id order whenever several
// are ready. The trainer refuses it, with an error naming the model, when a model
// does not fit its device.
struct task_parallel {
  static constexpr bool needs_whole_models = true;
  [[nodiscard]] std::string name() const { return "task_parallel"; }
  std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const& device) const {
    std::optional<std::size_t> best;
    for (std::size_t at = 0; at < ready.size(); ++at) {
      task const& t = ready[at].task;
      if (t.model % device.device_count != device.device) continue;
      if (!best || t.model < ready[*best].task.model) best = at;
    }
    return best;
  }
};

static_assert(policy<sharp>);
static_assert(policy<fifo>);
static_assert(policy<round_robin>);
static_assert(policy<random_pick>);
static_assert(policy<model_parallel>);
static_assert(policy<task_parallel>);

} // namespace hydra
