// A policy chosen at run time (a command-line flag, a configuration file): any
// type satisfying hydra::policy, behind one virtual call per decision.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "hydra/core/error.hpp"
#include "hydra/sched/policies.hpp"
#include "hydra/sched/policy.hpp"

namespace hydra {

class any_policy {
public:
  template <policy P>
  requires(!std::same_as<std::remove_cvref_t<P>, any_policy>) any_policy(P concrete)
      : self_(std::make_unique<holder<P>>(std::move(concrete))), needs_whole_models_(whole_models<P>()) {}

  std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const& device) {
    return self_->pick(ready, device);
  }
  [[nodiscard]] std::string name() const { return self_->name(); }
  // task_parallel trains every model as a single shard.
  [[nodiscard]] bool needs_whole_models() const noexcept { return needs_whole_models_; }

private:
  template <class P>
  static constexpr bool whole_models() {
    if constexpr (requires { P::needs_whole_models; }) return P::needs_whole_models;
    return false;
  }

  struct concept_t {
    virtual ~concept_t() = default;
    virtual std::optional<std::size_t> pick(std::span<ready_task const>, device_view const&) = 0;
    virtual std::string name() const = 0;
  };
  template <class P>
  struct holder final : concept_t {
    explicit holder(P concrete) : policy(std::move(concrete)) {}
    std::optional<std::size_t> pick(std::span<ready_task const> ready, device_view const& device) override {
      return policy.pick(ready, device);
    }
    std::string name() const override { return policy.name(); }
    P policy;
  };

  std::unique_ptr<concept_t> self_;
  bool needs_whole_models_;
};

static_assert(policy<any_policy>);

// The built-in policies by name: sharp, fifo, round_robin, random_pick,
// model_parallel, task_parallel.
inline any_policy make_policy(std::string const& name, std::uint64_t seed = 1) {
  if (name == "sharp") return sharp{};
  if (name == "fifo") return fifo{};
  if (name == "round_robin") return round_robin{};
  if (name == "random_pick") return random_pick{seed};
  if (name == "model_parallel") return model_parallel{};
  if (name == "task_parallel") return task_parallel{};
  throw invalid_argument(
      "unknown policy '" + name +
      "'; the built-in ones are sharp, fifo, round_robin, random_pick, model_parallel, task_parallel");
}

} // namespace hydra
