// One workload from several profiles of the same sweep. On a shared machine a
// short profile now and then lands in a slow phase: every figure it measured
// (compute, launches, the host work left over per task) is then inflated
// together, and the simulator predicts the whole run from that one phase.
// Profiles taken at different times and combined figure by figure, each at
// its median, outvote such a phase the way repeated measurements of the run
// itself do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/median.hpp"
#include "hydra/sim/workload.hpp"

namespace hydra::sim {

namespace detail {

// Checks that `later` has what `first` has wherever a median would be
// meaningless: what is counted or sized, not timed. `where` names the thing.
class same_sweep_check {
public:
  explicit same_sweep_check(std::size_t index) : index_(index) {}

  // Counts and names.
  template <class T>
  void equal(T const& first, T const& later, std::string const& where) const {
    if (first == later) return;
    if constexpr (std::is_same_v<T, std::string>)
      refuse(where, "\"" + later + "\"", "\"" + first + "\"");
    else
      refuse(where, std::to_string(later), std::to_string(first));
  }

  void equal_bytes(std::uint64_t first, std::uint64_t later, std::string const& where) const {
    if (first != later) refuse(where, hydra::format_bytes(later), hydra::format_bytes(first));
  }

private:
  [[noreturn]] void refuse(std::string const& where, std::string const& later, std::string const& first) const {
    throw invalid_argument("median_workload: workload " + std::to_string(index_ + 1) + " differs from workload 1 in " +
                           where + " (" + later + " against " + first +
                           "); a median is taken of profiles of the same sweep on the same machine, which differ "
                           "only in what they timed");
  }

  std::size_t index_;
};

} // namespace detail

// The workload whose every time and rate (each shard's forward and backward
// seconds; each device's link rates, copy latency and speed; the launch,
// other host work and hand-off per task; the shared host link) is the median
// of those in `runs`, and whose everything else (devices, budgets, nodes,
// models, shards, sizes, minibatches, host cores) is what every one of
// `runs` has: they must be profiles of the same sweep on the same machine,
// and a difference in any of those is refused, named.
[[nodiscard]] inline workload median_workload(std::span<workload const> runs) {
  hydra::detail::expects(!runs.empty(), "median_workload: no workloads to combine");
  workload out = runs.front();
  if (runs.size() == 1) return out;
  out.description += " (median of " + std::to_string(runs.size()) + " profiles)";
  for (std::size_t r = 1; r < runs.size(); ++r) {
    workload const& w = runs[r];
    detail::same_sweep_check const check(r);
    check.equal(out.devices.size(), w.devices.size(), "its device count");
    for (std::size_t d = 0; d < w.devices.size(); ++d) {
      std::string const device = "device " + std::to_string(d) + "'s ";
      check.equal_bytes(out.devices[d].budget_bytes, w.devices[d].budget_bytes, device + "budget");
      check.equal(out.devices[d].node, w.devices[d].node, device + "node");
    }
    check.equal(out.host_cores, w.host_cores, "its host cores");
    check.equal(out.models.size(), w.models.size(), "its model count");
    for (std::size_t m = 0; m < w.models.size(); ++m) {
      auto const& first = out.models[m];
      auto const& later = w.models[m];
      std::string const model = "model " + std::to_string(m);
      check.equal(first.name, later.name, model + "'s name");
      check.equal(first.minibatches, later.minibatches, model + " (" + first.name + ")'s minibatches");
      check.equal(first.shards.size(), later.shards.size(), model + " (" + first.name + ")'s shard count");
      for (std::size_t s = 0; s < first.shards.size(); ++s) {
        std::string const shard = model + " (" + first.name + ") shard " + std::to_string(s) + "'s ";
        auto const& a = first.shards[s];
        auto const& b = later.shards[s];
        check.equal_bytes(a.state_bytes, b.state_bytes, shard + "state_bytes");
        check.equal_bytes(a.parameter_bytes, b.parameter_bytes, shard + "parameter_bytes");
        check.equal_bytes(a.home_bytes, b.home_bytes, shard + "home_bytes");
        check.equal_bytes(a.scratch_bytes, b.scratch_bytes, shard + "scratch_bytes");
        check.equal_bytes(a.input_bytes, b.input_bytes, shard + "input_bytes");
      }
    }
  }
  auto median = [&](auto figure) {
    std::vector<double> values;
    for (workload const& w : runs) values.push_back(figure(w));
    return hydra::detail::median(std::move(values));
  };
  for (std::size_t m = 0; m < out.models.size(); ++m)
    for (std::size_t s = 0; s < out.models[m].shards.size(); ++s) {
      out.models[m].shards[s].forward_seconds =
          median([&](workload const& w) { return w.models[m].shards[s].forward_seconds; });
      out.models[m].shards[s].backward_seconds =
          median([&](workload const& w) { return w.models[m].shards[s].backward_seconds; });
    }
  for (std::size_t d = 0; d < out.devices.size(); ++d) {
    auto& device = out.devices[d];
    device.h2d_bytes_per_second = median([&](workload const& w) { return w.devices[d].h2d_bytes_per_second; });
    device.d2h_bytes_per_second = median([&](workload const& w) { return w.devices[d].d2h_bytes_per_second; });
    device.latency_seconds = median([&](workload const& w) { return w.devices[d].latency_seconds; });
    device.speed = median([&](workload const& w) { return w.devices[d].speed; });
  }
  out.launch_seconds = median([](workload const& w) { return w.launch_seconds; });
  out.task_host_seconds = median([](workload const& w) { return w.task_host_seconds; });
  out.handoff_seconds = median([](workload const& w) { return w.handoff_seconds; });
  out.shared_host_bytes_per_second = median([](workload const& w) { return w.shared_host_bytes_per_second; });
  out.between_nodes.bytes_per_second = median([](workload const& w) { return w.between_nodes.bytes_per_second; });
  out.between_nodes.latency_seconds = median([](workload const& w) { return w.between_nodes.latency_seconds; });
  return out;
}

} // namespace hydra::sim
