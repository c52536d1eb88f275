// One model's training as a chain of shard tasks. For minibatch b of a model
// with S shards the chain is forward 0..S-1, then backward S-1..0 (the optimizer
// step fused into each backward), then minibatch b+1. Within a model nothing runs
// in parallel; across models the chains are independent, which is what lets
// every device stay busy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hydra {

enum class direction : std::uint8_t { forward, backward };

inline char const* to_string(direction d) noexcept {
  return d == direction::forward ? "forward" : "backward";
}

struct task {
  std::size_t model = 0;
  std::size_t minibatch = 0;
  std::size_t shard = 0;
  direction pass = direction::forward;
  std::size_t position = 0; // index in the model's whole chain

  friend bool operator==(task const&, task const&) = default;
};

// The task at `position` of a model with `shards` shards.
[[nodiscard]] inline task task_at(std::size_t model, std::size_t shards, std::size_t position) noexcept {
  std::size_t const per_minibatch = 2 * shards;
  std::size_t const within = position % per_minibatch;
  bool const forward = within < shards;
  return {model, position / per_minibatch, forward ? within : per_minibatch - 1 - within,
          forward ? direction::forward : direction::backward, position};
}

[[nodiscard]] inline std::string describe(task const& t) {
  return "model " + std::to_string(t.model) + " minibatch " + std::to_string(t.minibatch) + " shard " +
         std::to_string(t.shard) + " " + to_string(t.pass);
}

} // namespace hydra
