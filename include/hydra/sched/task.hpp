// One model's work as a chain of shard tasks. For training minibatch b of a
// model with S shards the chain is forward 0..S-1, then backward S-1..0 (the
// optimizer step fused into each backward), then minibatch b+1. An evaluation
// minibatch is forward 0..S-1 only. Within a model nothing runs in parallel;
// across models the chains are independent, which is what lets every device
// stay busy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace hydra {

enum class direction : std::uint8_t { forward, backward };

// What a task's minibatch is for: a training step, or an evaluation (a forward
// pass whose outputs are scored and whose model is left unchanged).
enum class task_purpose : std::uint8_t { train, evaluate };

inline char const* to_string(direction d) noexcept {
  return d == direction::forward ? "forward" : "backward";
}

struct task {
  std::size_t model = 0;
  // Training: the model's training minibatch (counted over all its training);
  // evaluation: the minibatch's index within its evaluation pass.
  std::size_t minibatch = 0;
  std::size_t shard = 0;
  direction pass = direction::forward;
  std::size_t position = 0; // index in the model's whole chain
  task_purpose purpose = task_purpose::train;
  std::size_t segment = 0; // which stretch of the chain (see chain_segment) it belongs to

  friend bool operator==(task const&, task const&) = default;
};

// The task at `position` of a model with `shards` shards whose chain is
// training only (one segment).
[[nodiscard]] inline task task_at(std::size_t model, std::size_t shards, std::size_t position) noexcept {
  std::size_t const per_minibatch = 2 * shards;
  std::size_t const within = position % per_minibatch;
  bool const forward = within < shards;
  return {model, position / per_minibatch, forward ? within : per_minibatch - 1 - within,
          forward ? direction::forward : direction::backward, position};
}

// How many tasks after `position` a model with `shards` shards and `total`
// tasks in its chain needs `shard` again (its next forward or backward, whichever
// comes first); max() when it never does. What eviction ranks shards by.
[[nodiscard]] inline std::size_t tasks_until_next_use(std::size_t shards, std::size_t position, std::size_t shard,
                                                      std::size_t total) noexcept {
  std::size_t const per_minibatch = 2 * shards;
  std::size_t const within = position % per_minibatch, base = position - within;
  std::size_t next = std::numeric_limits<std::size_t>::max();
  for (std::size_t const offset : {shard, per_minibatch - 1 - shard}) {
    std::size_t const at = offset > within ? base + offset : base + per_minibatch + offset;
    next = at < next ? at : next;
  }
  return next >= total ? std::numeric_limits<std::size_t>::max() : next - position;
}

[[nodiscard]] inline std::string describe(task const& t) {
  return "model " + std::to_string(t.model) + (t.purpose == task_purpose::evaluate ? " evaluation" : "") +
         " minibatch " + std::to_string(t.minibatch) + " shard " + std::to_string(t.shard) + " " + to_string(t.pass);
}

} // namespace hydra
