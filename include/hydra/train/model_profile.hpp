// What a run measured of its models and its machine, in the terms the
// simulator takes: per shard the compute seconds of its forward and backward
// and every size a task moves or holds; per device its budget and measured
// link rates; and the host time the runtime spends launching each task.
// multi_model_trainer::profile() returns one; hydra::sim::to_workload
// (sim/profile_workload.hpp) turns it into a workload and
// hydra::write_profile_json (json/profile_json.hpp) writes it as one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hydra {

namespace detail {
// Shard s's figure in one of a profile's per-shard lists, or 0 where the list
// is shorter (a profile built by hand may leave figures out).
template <class T>
[[nodiscard]] T figure_or_zero(std::vector<T> const& values, std::size_t s) {
  return s < values.size() ? values[s] : T{};
}
} // namespace detail

struct model_profile {
  std::string name;
  // "measured" (its profiling minibatches), "estimates" (given), or "flops"
  // (no profiling minibatch finished: FLOP counts stand in)
  std::string source;
  // Per shard, compute only: from the moment the task's inputs and state are
  // on the device until its last compute work ends (waits excluded).
  std::vector<double> forward_seconds;
  std::vector<double> backward_seconds; // with the recomputed forward and the optimizer step
  // Per shard: the prefetch stream's time for the task's fetches, forward and
  // backward together, from their first item to their last (waits for room or
  // for a write-back included; CPU time on the host backend): for reading, the
  // simulator derives copy times from sizes and link rates.
  std::vector<double> fetch_seconds;
  std::vector<std::uint64_t> state_bytes;     // device extent: parameters, gradients, optimizer state
  std::vector<std::uint64_t> parameter_bytes; // what a forward fetches
  std::vector<std::uint64_t> home_bytes;      // what a backward needs from host memory and writes back
  // One task's activations and workspace, with the pool's rounding of its
  // allocations: state + scratch is the working set a device must hold.
  std::vector<std::uint64_t> scratch_bytes;
  std::vector<std::uint64_t> input_bytes; // its boundary activation (and the gradient through it)
  // How many minibatches the measured figures are the medians of. The first
  // minibatch of a run counts only while no other has finished: its first
  // fetches, cold caches and first-touch page faults are not what the rest of
  // the run costs.
  std::size_t measured_minibatches = 0;
};

struct device_profile {
  std::uint64_t budget_bytes = 0;
  // Measured over the run: bytes copied / time spent copying on the device's
  // prefetch (host to device) and spill (device to host) streams. 0: not
  // measured (a backend that does not count its streams' busy time).
  double h2d_bytes_per_second = 0;
  double d2h_bytes_per_second = 0;
  // Measured compute speed against the models' profiled figures: a task
  // took its figure / speed here (devices that differ differ in it).
  double speed = 1;
};

struct sweep_profile {
  std::vector<model_profile> models;
  std::vector<device_profile> devices;
  // CPU time run()'s thread spends launching a task (its minibatch's data for
  // a first shard, making room, enqueueing its work): the mean over the run.
  // The runtime launches one task at a time.
  double launch_seconds = 0;
  // Where devices share the host's cores (the host backend): how many cores,
  // and the CPU time per task of the runtime's work that is neither compute,
  // nor copies, nor launches (stream hand-offs, pool bookkeeping, completions).
  // 0 and 0 elsewhere.
  std::size_t host_cores = 0;
  double task_host_seconds = 0;
  // The wall-clock time one task's hand-offs take when nothing else is
  // running: run()'s thread enqueues work that does nothing on a device's
  // prefetch stream, its compute stream waits for that, its spill stream for
  // the compute stream, and the completion comes back to run()'s thread the
  // way a task's does. The median of round trips measured at the end of
  // run(), over the devices in turn, with every stream idle. Threads waking for one another hold no
  // core, so this is latency, not host work: a chain that runs alone
  // (model_parallel) waits for it at every task.
  double handoff_seconds = 0;
};

} // namespace hydra
