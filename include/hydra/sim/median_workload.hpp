// One workload from several profiles of the same sweep. On a shared machine a
// short profile now and then lands in a slow phase: every figure it measured
// (compute, launches, the host work left over per task) is then inflated
// together, and the simulator predicts the whole run from that one phase.
// Profiles taken at different times and combined figure by figure, each at
// its median, outvote such a phase the way repeated measurements of the run
// itself do.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
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
  same_sweep_check(std::string first_label, std::string later_label)
      : first_(std::move(first_label)), later_(std::move(later_label)) {}

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
    throw invalid_argument("median_workload: " + later_ + " differs from " + first_ + " in " + where + " (" + later +
                           " against " + first +
                           "); a median is taken of profiles of the same sweep on the same machine, which differ "
                           "only in what they timed");
  }

  std::string first_, later_;
};

} // namespace detail

// The workload whose every time and rate (each shard's forward and backward
// seconds; each device's link rates, copy latency and speed; the launch,
// other host work and hand-off per task; the shared host link; the links
// between nodes and between devices) is the median of those in `runs`, and whose everything else
// (devices, budgets, nodes, which links are free, models, shards, sizes,
// minibatches, host cores) is what every one of `runs` has: they must be
// valid profiles of the same sweep on the same machine, and a difference in
// any of those is refused, named. `labels` name the workloads in a refusal
// (their files, say); empty: "workload 1", "workload 2", ...
[[nodiscard]] inline workload median_workload(std::span<workload const> runs,
                                              std::span<std::string const> labels = {}) {
  hydra::detail::expects(!runs.empty(), "median_workload: no workloads to combine");
  hydra::detail::expects(labels.empty() || labels.size() == runs.size(),
                         "median_workload: " + std::to_string(labels.size()) + " labels for " +
                             std::to_string(runs.size()) + " workloads");
  auto const label = [&](std::size_t r) { return labels.empty() ? "workload " + std::to_string(r + 1) : labels[r]; };
  workload out = runs.front();
  if (runs.size() == 1) return out;
  out.description += " (median of " + std::to_string(runs.size()) + " profiles)";
  // A rate of 0 or less is a free link, not the slowest: which links are free must agree.
  auto const link = [](double bytes_per_second) { return std::string(bytes_per_second > 0 ? "timed" : "free"); };
  for (std::size_t r = 1; r < runs.size(); ++r) {
    workload const& w = runs[r];
    detail::same_sweep_check const check(label(0), label(r));
    check.equal(out.devices.size(), w.devices.size(), "its device count");
    for (std::size_t d = 0; d < w.devices.size(); ++d) {
      std::string const device = "device " + std::to_string(d) + "'s ";
      check.equal_bytes(out.devices[d].budget_bytes, w.devices[d].budget_bytes, device + "budget");
      check.equal(out.devices[d].node, w.devices[d].node, device + "node");
      check.equal(link(out.devices[d].h2d_bytes_per_second), link(w.devices[d].h2d_bytes_per_second),
                  device + "host-to-device link");
      check.equal(link(out.devices[d].d2h_bytes_per_second), link(w.devices[d].d2h_bytes_per_second),
                  device + "device-to-host link");
    }
    check.equal(out.host_cores, w.host_cores, "its host cores");
    check.equal(link(out.shared_host_bytes_per_second), link(w.shared_host_bytes_per_second), "its shared host link");
    // Between devices a rate <= 0 means "at the host links' rate", not free: a kind of link all the same.
    check.equal(link(out.between_devices.bytes_per_second), link(w.between_devices.bytes_per_second),
                "its link between devices");
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
  // `what` names the figure in a refusal: a median of NaN or of a negative time means nothing.
  auto median = [&](auto figure, std::string const& what, bool time = true) {
    std::vector<double> values;
    for (std::size_t r = 0; r < runs.size(); ++r) {
      double const value = figure(runs[r]);
      if (!std::isfinite(value) || (time && value < 0))
        throw invalid_argument("median_workload: " + label(r) + " gives " + what + " as " + std::to_string(value) +
                               "; " + (time ? "a time is finite and >= 0" : "a rate is finite"));
      values.push_back(value);
    }
    return hydra::detail::median(std::move(values));
  };
  for (std::size_t m = 0; m < out.models.size(); ++m)
    for (std::size_t s = 0; s < out.models[m].shards.size(); ++s) {
      std::string const shard = "model " + std::to_string(m) + " shard " + std::to_string(s) + "'s ";
      auto& spec = out.models[m].shards[s];
      spec.forward_seconds =
          median([&](workload const& w) { return w.models[m].shards[s].forward_seconds; }, shard + "forward_seconds");
      spec.backward_seconds =
          median([&](workload const& w) { return w.models[m].shards[s].backward_seconds; }, shard + "backward_seconds");
    }
  for (std::size_t d = 0; d < out.devices.size(); ++d) {
    std::string const device = "device " + std::to_string(d) + "'s ";
    auto& spec = out.devices[d];
    spec.h2d_bytes_per_second = median([&](workload const& w) { return w.devices[d].h2d_bytes_per_second; },
                                       device + "h2d_bytes_per_second", false);
    spec.d2h_bytes_per_second = median([&](workload const& w) { return w.devices[d].d2h_bytes_per_second; },
                                       device + "d2h_bytes_per_second", false);
    spec.latency_seconds =
        median([&](workload const& w) { return w.devices[d].latency_seconds; }, device + "latency_seconds");
    spec.speed = median([&](workload const& w) { return w.devices[d].speed; }, device + "speed", false);
  }
  out.launch_seconds = median([](workload const& w) { return w.launch_seconds; }, "launch_seconds");
  out.task_host_seconds = median([](workload const& w) { return w.task_host_seconds; }, "task_host_seconds");
  out.handoff_seconds = median([](workload const& w) { return w.handoff_seconds; }, "handoff_seconds");
  out.shared_host_bytes_per_second =
      median([](workload const& w) { return w.shared_host_bytes_per_second; }, "shared_host_bytes_per_second", false);
  out.between_nodes.bytes_per_second = median([](workload const& w) { return w.between_nodes.bytes_per_second; },
                                              "between_nodes.bytes_per_second", false);
  out.between_nodes.latency_seconds =
      median([](workload const& w) { return w.between_nodes.latency_seconds; }, "between_nodes.latency_seconds");
  out.between_devices.bytes_per_second = median([](workload const& w) { return w.between_devices.bytes_per_second; },
                                                "between_devices.bytes_per_second", false);
  out.between_devices.latency_seconds =
      median([](workload const& w) { return w.between_devices.latency_seconds; }, "between_devices.latency_seconds");
  return out;
}

} // namespace hydra::sim
