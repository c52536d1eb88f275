// What the simulator simulates: devices (memory, host links) and models (shard
// lists with compute seconds and bytes), plus the bound no schedule can beat.
// A workload comes from a preset (sim/presets.hpp), a JSON file
// (json/workload_json.hpp; the runtime's profile JSON reads as one) or code.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/sched/scheduler_core.hpp"
#include "hydra/sched/working_set.hpp"

namespace hydra::sim {

struct shard_spec {
  double forward_seconds = 0;
  double backward_seconds = 0;       // recomputed forward and optimizer step included, as in the runtime
  std::uint64_t state_bytes = 0;     // its device extent
  std::uint64_t parameter_bytes = 0; // the part a forward needs (0: all of state_bytes)
  std::uint64_t scratch_bytes = 0;   // working memory of one task (activations), held while it runs
  std::uint64_t input_bytes = 0;     // its boundary activation (and the gradient flowing back through it)
  // The part a backward needs from host memory and writes back (0: all of
  // state_bytes). The runtime's gradients live on the device only.
  std::uint64_t home_bytes = 0;

  // What one task of it occupies on a device: its extent and its scratch.
  [[nodiscard]] std::uint64_t task_bytes() const noexcept { return state_bytes + scratch_bytes; }
  // What a forward fetches, and what a backward fetches (all of it) and writes back.
  [[nodiscard]] std::uint64_t forward_fetch_bytes() const noexcept {
    return parameter_bytes ? std::min(parameter_bytes, state_bytes) : state_bytes;
  }
  [[nodiscard]] std::uint64_t backward_fetch_bytes() const noexcept {
    return home_bytes ? std::min(home_bytes, state_bytes) : state_bytes;
  }
};

// The most a workload may ask for: enough for any sweep worth simulating, and
// few enough that a simulation ends (a typo of 1e12 minibatches would not).
inline constexpr std::size_t max_minibatches = 1'000'000; // per model
inline constexpr std::size_t max_devices = 4096;

struct model_spec {
  std::string name;
  std::vector<shard_spec> shards;
  std::size_t minibatches = 1;
};

// A host link direction with bytes_per_second <= 0 is free: its copies take no time.
struct device_spec {
  std::uint64_t budget_bytes = 0; // the device memory hydra may use (the runtime's device budget)
  double h2d_bytes_per_second = 0;
  double d2h_bytes_per_second = 0;
  double latency_seconds = 0; // per copy, both directions
  // Compute speed against the device the shards' seconds were measured or
  // estimated on: a task takes its seconds / speed here. Devices that differ
  // (a mixed cluster) differ in it, in budget_bytes and in their links.
  double speed = 1;
  // The machine it sits in (0 .. nodes - 1). A node has its own host: its
  // memory holds its models' state, and its launches, cores and shared host
  // link serve its devices only. A model runs within one node and moves
  // between nodes only whole (sched/node_balancer.hpp).
  std::size_t node = 0;
};

// The network between nodes: a model moving to another node sends its state
// (every shard's home bytes) over it, one transfer per model, queued behind
// the transfers of both nodes.
struct node_link {
  double bytes_per_second = 25e9; // 200 Gb/s InfiniBand HDR, per node and direction
  double latency_seconds = 5e-6;
};

// The link between two devices of one node, where the devices reach each
// other (NVLink, or a PCIe switch): the simulator's
// options::copy_activations_between_devices copies a kept activation over it,
// into the reading device, queued on that device's stream for copies in (as
// the runtime enqueues it). A rate <= 0 means the devices reach each other
// only through their host links' rate and latency (the reading device's, and
// the shared host link where there is one; latency_seconds is then unused;
// on the host backend a copy between devices is a memcpy like any other).
// The holder's side of a copy is not modelled: two readers of one holder do
// not contend there.
struct device_link {
  double bytes_per_second = 0;
  double latency_seconds = 0;
};

struct workload {
  std::string description;
  std::vector<device_spec> devices;
  // Aggregate host bandwidth shared by every device's copies (both directions);
  // <= 0: unlimited (each link runs at its own rate).
  double shared_host_bytes_per_second = 0;
  // Host time the runtime spends launching each task (making its data,
  // making room, enqueueing its work). Launches happen one at a time, on one
  // thread: a task's work starts no earlier than its launch has ended.
  double launch_seconds = 0;
  // Devices that are threads on the host (the host backend) share its cores:
  // with host_cores > 0, every compute, every copy, every launch and each
  // task's other host work (task_host_seconds: stream hand-offs, pool
  // bookkeeping) holds one core while it runs, and at most host_cores run at
  // once. 0: devices do not use the host's cores (GPUs).
  std::size_t host_cores = 0;
  double task_host_seconds = 0;
  // How long after a task's last work on its device the runtime's thread
  // learns that it has completed, and so may launch the model's next task:
  // threads waking up for one another, not work (no core is held). A chain
  // that runs alone waits for it at every task; where other work is queued on
  // the device it is hidden.
  double handoff_seconds = 0;
  std::vector<model_spec> models;
  // Between nodes, where the devices sit on more than one (device_spec::node);
  // host_cores, launch_seconds and shared_host_bytes_per_second are then each node's.
  node_link between_nodes{};
  device_link between_devices{};
};

// How many nodes the devices sit on (1 + the highest device_spec::node).
[[nodiscard]] inline std::size_t node_count(workload const& w) noexcept {
  std::size_t highest = 0;
  for (auto const& device : w.devices) highest = std::max(highest, device.node);
  return highest + 1;
}

// Seconds one copy of `bytes` takes on a link (no queueing).
[[nodiscard]] inline double copy_seconds(std::uint64_t bytes, double bytes_per_second, double latency) noexcept {
  if (bytes == 0) return 0;
  return latency + (bytes_per_second > 0 ? static_cast<double>(bytes) / bytes_per_second : 0.0);
}

// Refuses what no schedule could run, naming the thing and the limit.
inline void validate(workload const& w) {
  hydra::detail::expects(!w.devices.empty(), "workload: device count is 0; at least 1 device is required");
  hydra::detail::expects(!w.models.empty(), "workload: no models");
  hydra::detail::expects(w.launch_seconds >= 0 && w.task_host_seconds >= 0 && w.handoff_seconds >= 0,
                         "workload: launch_seconds, task_host_seconds and handoff_seconds must be >= 0");
  hydra::detail::expects(w.host_cores <= max_devices, "workload: host_cores is " + std::to_string(w.host_cores) +
                                                          ", above the limit of " + std::to_string(max_devices));
  for (std::size_t d = 0; d < w.devices.size(); ++d) {
    auto const& device = w.devices[d];
    hydra::detail::expects(device.budget_bytes > 0,
                           "workload: device " + std::to_string(d) + " has a budget of 0 bytes");
    hydra::detail::expects(valid_device_speed(device.speed),
                           "workload: device " + std::to_string(d) + " has a speed of " + std::to_string(device.speed) +
                               "; a speed is > 0 and at most 1e6 (times the reference device's)");
    hydra::detail::expects(device.latency_seconds >= 0,
                           "workload: device " + std::to_string(d) + " has a negative latency");
    hydra::detail::expects(device.node < w.devices.size(), "workload: device " + std::to_string(d) + " is on node " +
                                                               std::to_string(device.node) + "; with " +
                                                               std::to_string(w.devices.size()) +
                                                               " devices the nodes are numbered below that");
  }
  std::vector<bool> node_has_device(node_count(w), false);
  for (auto const& device : w.devices) node_has_device[device.node] = true;
  for (std::size_t n = 0; n < node_has_device.size(); ++n)
    hydra::detail::expects(node_has_device[n], "workload: node " + std::to_string(n) +
                                                   " has no devices; nodes are numbered 0, 1, ... without gaps");
  if (node_has_device.size() > 1)
    hydra::detail::expects(w.between_nodes.bytes_per_second > 0 && w.between_nodes.latency_seconds >= 0,
                           "workload: the link between nodes needs a rate > 0 bytes/s and a latency >= 0");
  hydra::detail::expects(std::isfinite(w.between_devices.bytes_per_second) && w.between_devices.latency_seconds >= 0 &&
                             std::isfinite(w.between_devices.latency_seconds),
                         "workload: the link between devices needs a finite rate (<= 0: the host links') and a "
                         "finite latency >= 0");
  std::uint64_t largest_budget = 0;
  for (auto const& device : w.devices) largest_budget = std::max(largest_budget, device.budget_bytes);
  for (std::size_t m = 0; m < w.models.size(); ++m) {
    auto const& model = w.models[m];
    std::string const who = "workload: model " + std::to_string(m) + " (" + model.name + ")";
    hydra::detail::expects(!model.shards.empty(), who + " has no shards");
    for (std::size_t s = 0; s < model.shards.size(); ++s) {
      auto const& shard = model.shards[s];
      hydra::detail::expects(shard.forward_seconds >= 0 && shard.backward_seconds >= 0,
                             who + " shard " + std::to_string(s) + " has a negative compute time");
      // A shard runs only where it fits (placement_of): some device must hold it.
      if (shard.task_bytes() > largest_budget) {
        throw does_not_fit(who + " shard " + std::to_string(s) + " needs " + format_bytes(shard.task_bytes()) +
                           " on a device, above the largest device's budget (" + format_bytes(largest_budget) + ")");
      }
    }
  }
}

// Where each of a model's shards may run, in scheduler_core::restrict_placement's
// form (shard x device; empty: anywhere): on the devices whose half-budget holds
// its task, the runtime's rule (placement_by_memory), so a replayed run places
// as the run did. A shard larger than half of every budget, which the runtime's
// partitioner never makes, runs where its whole task fits (with nothing queued
// beside it). For a validated workload.
[[nodiscard]] inline std::vector<bool> placement_of(workload const& w, std::size_t model) {
  // Alike memories: a shard fits all of them or none (and then, validated,
  // all of their whole budgets): anywhere.
  auto const same_budget = [&](device_spec const& d) { return d.budget_bytes == w.devices.front().budget_bytes; };
  if (std::all_of(w.devices.begin(), w.devices.end(), same_budget)) return {};
  std::vector<std::uint64_t> tasks, budgets;
  for (auto const& shard : w.models.at(model).shards) tasks.push_back(shard.task_bytes());
  for (auto const& device : w.devices) budgets.push_back(device.budget_bytes);
  std::vector<bool> runs_on = placement_by_memory(tasks, budgets);
  if (runs_on.empty()) return runs_on;
  bool anywhere = true;
  for (std::size_t s = 0; s < tasks.size(); ++s) {
    auto const row = runs_on.begin() + static_cast<std::ptrdiff_t>(s * budgets.size());
    if (std::find(row, row + static_cast<std::ptrdiff_t>(budgets.size()), true) ==
        row + static_cast<std::ptrdiff_t>(budgets.size()))
      for (std::size_t d = 0; d < budgets.size(); ++d) runs_on[s * budgets.size() + d] = tasks[s] <= budgets[d];
    for (std::size_t d = 0; d < budgets.size(); ++d) anywhere = anywhere && runs_on[s * budgets.size() + d];
  }
  if (anywhere) runs_on.clear();
  return runs_on;
}

// Compute seconds of one model's whole chain.
[[nodiscard]] inline double chain_seconds(model_spec const& model) noexcept {
  double minibatch = 0;
  for (auto const& shard : model.shards) minibatch += shard.forward_seconds + shard.backward_seconds;
  return minibatch * static_cast<double>(model.minibatches);
}

// The scheduler core's view of a workload.
[[nodiscard]] inline std::vector<model_costs> costs_of(workload const& w) {
  std::vector<model_costs> costs;
  costs.reserve(w.models.size());
  for (auto const& model : w.models) {
    model_costs c;
    c.minibatches = model.minibatches;
    for (auto const& shard : model.shards) {
      c.forward_seconds.push_back(shard.forward_seconds);
      c.backward_seconds.push_back(shard.backward_seconds);
    }
    costs.push_back(std::move(c));
  }
  return costs;
}

// How a boundary activation (a forward's output, a backward's gradient for the
// shard before) reaches the model's next task. The runtime sends every one
// through host memory, and with multi_model_options::keep_activations keeps it
// on the device too (kept_and_sent_home); `kept` is a what-if of the simulator.
enum class activation_handoff {
  through_host, // the runtime's: the output goes home; the next task, wherever it runs, brings it in
  // The output also stays in the producing device's memory (found as scratch
  // is, evicting shards; spilled home under pressure once no shard can go),
  // and the next task on that device takes it there; a task completes at its
  // compute's end (the runtime reports it once its output is home, as for
  // every task: these times are what an earlier completion would give). A
  // forward's output still goes home, off the chain, as the checkpoint its
  // backward recomputes from.
  kept_and_sent_home, // every output goes home too, off the chain: a next task elsewhere finds it there
  kept, // a gradient goes home only when its reader is launched elsewhere (on the holder's link, then; or it is
        // copied there, with options::copy_activations_between_devices)
};

struct lower_bound_parts {
  // The classic bound, kept so that figures stay comparable across versions:
  double work_per_device = 0; // total compute / devices (the sum of their speeds)
  double longest_chain = 0;   // one model's compute chain, shard 0's first fetch and input, its last write-back
  std::size_t longest_model = 0;
  // The host's share: every launch one after another (on each node's
  // thread), and, with host_cores, compute and launches over the cores (of
  // every node).
  double host = 0;

  // What the cost model makes every schedule pay on top:
  // a model's chain, each shard computed at the fastest device that may run
  // it, with every copy and launch on it (its tasks run one after
  // another, each launched once its predecessor has completed, and each
  // boundary activation goes to host memory and back in between) ...
  double chain_with_copies = 0;
  std::size_t chain_model = 0;
  // ... and every copy no schedule avoids spread over the host links (or, with
  // a shared host link, all of them through it: each node's through its own).
  double links = 0;
  // ... and, where shards fit only some devices (placement_of), the work that
  // only a set of devices may run over their summed speed (the largest such
  // share; 0 when every shard may run anywhere).
  double placed_work = 0;

  [[nodiscard]] double classic_seconds() const noexcept { return std::max({work_per_device, longest_chain, host}); }
  [[nodiscard]] double seconds() const noexcept {
    return std::max({classic_seconds(), chain_with_copies, links, placed_work});
  }
};

namespace detail {

// The devices' links, each distinct (rate, latency) once per direction: most
// workloads have one kind of device, and the bound asks for every copy of
// every model.
struct distinct_links {
  std::vector<std::pair<double, double>> to_device, to_host; // (bytes per second, latency)

  explicit distinct_links(workload const& w) {
    for (auto const& device : w.devices) {
      add(to_device, {device.h2d_bytes_per_second, device.latency_seconds});
      add(to_host, {device.d2h_bytes_per_second, device.latency_seconds});
    }
  }

  // The shortest time a copy of `bytes` takes in one direction on any
  // device's link (latency included: every copy pays its link's).
  [[nodiscard]] double fastest_copy(std::uint64_t bytes, bool into_device) const noexcept {
    if (bytes == 0) return 0;
    double fastest = -1;
    for (auto const& [rate, latency] : into_device ? to_device : to_host) {
      double const seconds = copy_seconds(bytes, rate, latency);
      fastest = fastest < 0 ? seconds : std::min(fastest, seconds);
    }
    return fastest;
  }

private:
  static void add(std::vector<std::pair<double, double>>& links, std::pair<double, double> link) {
    if (std::find(links.begin(), links.end(), link) == links.end()) links.push_back(link);
  }
};

// One model's unavoidable copies, as the simulator (and the runtime) make
// them: per minibatch, every task's inputs in (a forward's boundary
// activation; a backward's checkpointed input and the gradient from the shard
// after it) and its output out (the next boundary), and every backward's
// update home (or each shard's once, see below); once, each shard's first fetch (parameters for its first
// forward, the rest of its state for its first backward).
struct model_copies {
  double chain_seconds = 0; // of the copies above that lie on the model's own chain, at the fastest link
  double to_device_bytes = 0, to_host_bytes = 0;
  double to_device_copies = 0, to_host_copies = 0;
};

// With activations kept (`handoff`), what a schedule can avoid is left out: a
// forward's input from the shard before and a backward's gradient (in, and,
// with activation_handoff::kept, out) may stay on the device; a forward's
// output (the checkpoint) still goes home, off the chain, and a backward still
// brings its checkpoint in, unless checkpoints are kept too (`keep_checkpoints`).
// `checkpoints_read`: false where a backward may start from its forward's
// kept activations, which hold its input. `write_back_each_update`: false
// where an update may stay on its device until the shard leaves it
// (sim::options::write_back_on_eviction): each shard then goes home once.
[[nodiscard]] inline model_copies unavoidable_copies(distinct_links const& links, model_spec const& model,
                                                     activation_handoff handoff = activation_handoff::through_host,
                                                     bool keep_checkpoints = false, bool checkpoints_read = true,
                                                     bool write_back_each_update = true) {
  bool const kept = handoff != activation_handoff::through_host;
  model_copies out;
  auto const& shards = model.shards;
  std::size_t const count = shards.size();
  auto const minibatches = static_cast<double>(model.minibatches);
  double per_minibatch = 0, once = 0;
  auto in = [&](std::uint64_t bytes, double times, double& chain) {
    if (bytes == 0) return;
    chain += links.fastest_copy(bytes, true);
    out.to_device_bytes += times * static_cast<double>(bytes);
    out.to_device_copies += times;
  };
  auto out_copy = [&](std::uint64_t bytes, double times, double* chain) {
    if (bytes == 0) return;
    if (chain) *chain += links.fastest_copy(bytes, false);
    out.to_host_bytes += times * static_cast<double>(bytes);
    out.to_host_copies += times;
  };
  for (std::size_t s = 0; s < count; ++s) {
    auto const& shard = shards[s];
    bool const last = s + 1 == count;
    std::uint64_t const parameters = shard.forward_fetch_bytes();
    std::uint64_t const home = std::max(shard.backward_fetch_bytes(), parameters);
    // Forward s: its input in; its output (shard s + 1's input) out.
    if (!kept || s == 0) in(shard.input_bytes, minibatches, per_minibatch);
    if (!last) out_copy(shards[s + 1].input_bytes, minibatches, kept ? nullptr : &per_minibatch);
    // Backward s: its checkpointed input and the gradient from shard s + 1
    // in, one after the other on the same link; the gradient for shard s - 1
    // out, on the chain; the update home, behind the completion (off it).
    if ((!kept || !keep_checkpoints) && checkpoints_read) in(shard.input_bytes, minibatches, per_minibatch);
    if (!last && !kept) in(shards[s + 1].input_bytes, minibatches, per_minibatch);
    if (s > 0 && handoff != activation_handoff::kept)
      out_copy(shard.input_bytes, minibatches, kept ? nullptr : &per_minibatch);
    out_copy(home, write_back_each_update ? minibatches : 1.0, nullptr);
    // The first forward and first backward of the shard fetch its state.
    in(parameters, 1, once);
    in(home - parameters, 1, once);
  }
  // The last update of shard 0 ends the chain.
  std::uint64_t const last_home = std::max(shards[0].backward_fetch_bytes(), shards[0].forward_fetch_bytes());
  out.chain_seconds = minibatches * per_minibatch + once + links.fastest_copy(last_home, false);
  return out;
}

// A model's compute chain with each shard at the fastest device that may run
// it (`unrestricted`, the chain at the fastest device, when any may run any).
[[nodiscard]] inline double chain_at_fastest_allowed(workload const& w, std::size_t model,
                                                     std::vector<bool> const& runs_on, double unrestricted) {
  if (runs_on.empty()) return unrestricted;
  auto const& spec = w.models[model];
  std::size_t const devices = w.devices.size();
  double minibatch = 0;
  for (std::size_t s = 0; s < spec.shards.size(); ++s) {
    double fastest = 0;
    for (std::size_t d = 0; d < devices; ++d)
      if (runs_on[s * devices + d]) fastest = std::max(fastest, w.devices[d].speed);
    minibatch += (spec.shards[s].forward_seconds + spec.shards[s].backward_seconds) / fastest;
  }
  return minibatch * static_cast<double>(spec.minibatches);
}

// The placed-work part of the bound: for each set of devices that some shard
// is confined to, the compute of every shard confined within that set over the
// set's summed speed. (The sets come from memory thresholds, so there are at
// most two per device; the cost is shards x sets x devices at most.)
[[nodiscard]] inline double placed_work(workload const& w, std::vector<std::vector<bool>> const& placements) {
  std::size_t const devices = w.devices.size();
  // Each distinct set of devices a shard is confined to, with the compute of
  // the shards confined to exactly it. (A shard that may run anywhere counts
  // only toward the whole pool's share, the classic bound's.)
  std::vector<std::vector<bool>> sets;
  std::vector<double> work;
  for (std::size_t m = 0; m < w.models.size(); ++m) {
    std::vector<bool> const& runs_on = placements[m];
    if (runs_on.empty()) continue;
    auto const& model = w.models[m];
    for (std::size_t s = 0; s < model.shards.size(); ++s) {
      auto const first = runs_on.begin() + static_cast<std::ptrdiff_t>(s * devices);
      std::vector<bool> row(first, first + static_cast<std::ptrdiff_t>(devices));
      if (std::find(row.begin(), row.end(), false) == row.end()) continue;
      double const seconds =
          (model.shards[s].forward_seconds + model.shards[s].backward_seconds) * static_cast<double>(model.minibatches);
      auto const known = std::find(sets.begin(), sets.end(), row);
      if (known == sets.end()) {
        sets.push_back(std::move(row));
        work.push_back(seconds);
      } else {
        work[static_cast<std::size_t>(known - sets.begin())] += seconds;
      }
    }
  }
  double largest = 0;
  for (auto const& set : sets) {
    double speed = 0, confined = 0;
    for (std::size_t d = 0; d < devices; ++d) speed += set[d] ? w.devices[d].speed : 0.0;
    for (std::size_t r = 0; r < sets.size(); ++r) { // every set within this one
      bool within = true;
      for (std::size_t d = 0; d < devices && within; ++d) within = set[d] || !sets[r][d];
      confined += within ? work[r] : 0.0;
    }
    largest = std::max(largest, confined / speed);
  }
  return largest;
}

} // namespace detail

// The bound no schedule beats: max(the classic bound, the longest chain with
// its copies and launches, the unavoidable copies over the links, the work
// confined to some devices over their speed). The classic
// bound is max(total compute / D, the longest compute chain with shard 0's
// first fetch and input and its last write-back, the host's share: see
// lower_bound_parts::host). With devices of different speeds, D is the sum of
// their speeds and a chain computes at the fastest's (the chain with copies:
// each shard at the fastest that may run it).
//
// (Replayed runs whose controller retired or stopped models early run fewer
// tasks than the workload lists: their makespan may fall below this bound.)
//
// A model's chain with copies: its tasks run one after another, and each is
// launched (launch_seconds) only once its predecessor has completed, i.e. once
// its output has reached host memory and the runtime has heard of it
// (handoff_seconds); the task's own inputs then come in,
// after any state it fetches, on the same link. Every copy is charged at the
// fastest link any device offers, so the sum holds wherever the tasks run.
//
// With activations kept on the device (`handoff`),
// the copies a kept activation saves are not counted (see unavoidable_copies),
// and a task completes at its compute's end. With forward activations kept
// (`keep_forward_activations`), each backward is counted without its
// recomputation (its backward_seconds less the shard's forward_seconds) and
// without reading its checkpoint, as if every forward's activations stayed.
// Without `write_back_each_update`, each shard's update goes home once.
namespace detail {
[[nodiscard]] inline lower_bound_parts bound_of(workload const& w, activation_handoff handoff, bool keep_checkpoints,
                                                bool checkpoints_read, bool write_back_each_update) {
  lower_bound_parts out;
  std::vector<std::vector<bool>> placements; // per model (placement_of)
  placements.reserve(w.models.size());
  for (std::size_t m = 0; m < w.models.size(); ++m) placements.push_back(placement_of(w, m));
  distinct_links const links(w);
  double total = 0;
  double to_device_seconds = 0, to_host_seconds = 0, shared_bytes = 0;
  double fastest_in = 0, fastest_out = 0, least_latency = -1;
  // Devices that differ in speed: the whole pool computes at the sum of their
  // speeds, one chain at best at the fastest's.
  double total_speed = 0, fastest_speed = 0;
  for (auto const& device : w.devices) {
    total_speed += device.speed;
    fastest_speed = std::max(fastest_speed, device.speed);
    fastest_in = std::max(fastest_in, device.h2d_bytes_per_second);
    fastest_out = std::max(fastest_out, device.d2h_bytes_per_second);
    least_latency = least_latency < 0 ? device.latency_seconds : std::min(least_latency, device.latency_seconds);
  }
  // A link with a rate <= 0 is free: bytes cost nothing on it.
  bool const free_in =
      std::any_of(w.devices.begin(), w.devices.end(), [](device_spec const& d) { return d.h2d_bytes_per_second <= 0; });
  bool const free_out =
      std::any_of(w.devices.begin(), w.devices.end(), [](device_spec const& d) { return d.d2h_bytes_per_second <= 0; });
  for (std::size_t m = 0; m < w.models.size(); ++m) {
    auto const& model = w.models[m];
    double const chain = chain_seconds(model) / fastest_speed;
    // The same chain with each shard at the fastest device that may run it.
    double const placed_chain = detail::chain_at_fastest_allowed(w, m, placements[m], chain);
    total += chain_seconds(model);
    if (model.minibatches == 0) continue;
    // Shard 0's first fetch and input, both on one device's link, and its
    // last write-back: each link kind once, not each device.
    auto const& first = model.shards[0];
    double fastest_first_in = -1;
    for (auto const& [rate, latency] : links.to_device) {
      double const in =
          copy_seconds(first.forward_fetch_bytes(), rate, latency) + copy_seconds(first.input_bytes, rate, latency);
      fastest_first_in = fastest_first_in < 0 ? in : std::min(fastest_first_in, in);
    }
    double const fastest_last_out = links.fastest_copy(first.backward_fetch_bytes(), false);
    double const classic = chain + fastest_first_in + fastest_last_out;
    if (classic > out.longest_chain) {
      out.longest_chain = classic;
      out.longest_model = m;
    }
    auto const copies =
        detail::unavoidable_copies(links, model, handoff, keep_checkpoints, checkpoints_read, write_back_each_update);
    double const tasks = 2.0 * static_cast<double>(model.shards.size() * model.minibatches);
    double const with_copies =
        placed_chain + copies.chain_seconds + tasks * w.launch_seconds + (tasks - 1) * w.handoff_seconds;
    if (with_copies > out.chain_with_copies) {
      out.chain_with_copies = with_copies;
      out.chain_model = m;
    }
    to_device_seconds +=
        (free_in ? 0.0 : copies.to_device_bytes / fastest_in) + copies.to_device_copies * least_latency;
    to_host_seconds += (free_out ? 0.0 : copies.to_host_bytes / fastest_out) + copies.to_host_copies * least_latency;
    shared_bytes += copies.to_device_bytes + copies.to_host_bytes;
  }
  auto const devices = static_cast<double>(w.devices.size());
  out.work_per_device = total / total_speed;
  // Each device's link carries one copy at a time per direction.
  out.links = std::max(to_device_seconds, to_host_seconds) / devices;
  // The shared link carries every copy, both directions, one at a time: each
  // node's link its node's, so together the nodes' links carry them all.
  auto const nodes = static_cast<double>(node_count(w));
  if (w.shared_host_bytes_per_second > 0)
    out.links = std::max(out.links, shared_bytes / (w.shared_host_bytes_per_second * nodes));
  double tasks = 0;
  for (auto const& model : w.models) tasks += 2.0 * static_cast<double>(model.shards.size() * model.minibatches);
  // One launching thread per node.
  out.host = tasks * w.launch_seconds / nodes;
  out.placed_work = detail::placed_work(w, placements);
  // Every compute and every launch lies inside the makespan, each on a core.
  // (Other host work and copies are left out: a task's other host work may
  // still be running when the last device is done.)
  if (w.host_cores > 0)
    out.host = std::max(out.host, (total / fastest_speed + tasks * w.launch_seconds) /
                                      (static_cast<double>(w.host_cores) * nodes));
  return out;
}
} // namespace detail

[[nodiscard]] inline lower_bound_parts lower_bound(workload const& w,
                                                   activation_handoff handoff = activation_handoff::through_host,
                                                   bool keep_checkpoints = false, bool keep_forward_activations = false,
                                                   bool write_back_each_update = true) {
  if (!keep_forward_activations)
    return detail::bound_of(w, handoff, keep_checkpoints, /*checkpoints_read=*/true, write_back_each_update);
  workload unrecomputed = w;
  for (auto& model : unrecomputed.models)
    for (auto& shard : model.shards)
      shard.backward_seconds = std::max(0.0, shard.backward_seconds - shard.forward_seconds);
  return detail::bound_of(unrecomputed, handoff, keep_checkpoints, /*checkpoints_read=*/false, write_back_each_update);
}

// A uniform device list.
[[nodiscard]] inline std::vector<device_spec> identical_devices(std::size_t count, device_spec const& each) {
  return std::vector<device_spec>(count, each);
}

// `w`'s devices (one machine: every device's node is replaced) on each of
// `nodes` machines (node-major: node 0's devices first), joined by `link`:
// what a sweep would see scaled out to a cluster of copies of one machine.
// Its models are `w`'s.
[[nodiscard]] inline workload on_nodes(workload w, std::size_t nodes, node_link const& link = {}) {
  hydra::detail::expects(nodes > 0, "on_nodes: node count is 0; at least 1 node is required");
  hydra::detail::expects(w.devices.empty() || nodes <= max_devices / w.devices.size(),
                         "on_nodes: " + std::to_string(nodes) + " nodes of " + std::to_string(w.devices.size()) +
                             " devices exceed the limit of " + std::to_string(max_devices) + " devices");
  std::vector<device_spec> devices;
  devices.reserve(nodes * w.devices.size());
  for (std::size_t n = 0; n < nodes; ++n)
    for (device_spec device : w.devices) {
      device.node = n;
      devices.push_back(device);
    }
  w.devices = std::move(devices);
  w.between_nodes = link;
  if (nodes > 1) w.description += ", on " + std::to_string(nodes) + " nodes";
  return w;
}

} // namespace hydra::sim
