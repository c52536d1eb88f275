// A discrete-event simulator of hydra's runtime: the same driver, scheduler
// core and policy objects, carried out by a cost model instead of kernels. What
// it models, as the multi-model trainer and spill engine do it:
//  - the decisions: sweep_driver's, after every completion, with the runtime's
//    queue depth unless options::driver says otherwise;
//  - per device three FIFO streams: compute, prefetch (H2D link) and spill (D2H
//    link). A task's copies are queued on them when it is launched, so a
//    look-ahead task's fetch overlaps the running task's compute;
//  - residency: a forward fetches a shard's parameters, a backward its whole
//    state (or the rest of it); a resident shard is fetched again only after it
//    was evicted. Eviction picks the unpinned shard needed furthest ahead in its
//    model's chain (pinned: the shards of the device's queued tasks), and frees
//    its memory on the spill stream, behind everything queued there; a fetch
//    that needs that memory waits for it. A shard resident elsewhere moves;
//  - every backward writes the shard's state home right after its compute (on
//    the spill stream), and a fetch of that state waits for the write-back
//    (options::write_back_on_eviction, as the runtime's option: only when the
//    shard is evicted, before its memory is freed, or once its model's
//    planned work has ended);
//  - boundary activations: each task copies its inputs in from host memory
//    (the checkpoint; a backward also the incoming gradient) and its output out
//    (forward: the next checkpoint; backward: the gradient for the shard
//    before). A task completes when its last spill-stream copy has. (With
//    options::activations they stay on the device too, as the runtime's
//    keep_activations does, or instead, a what-if; see activation_handoff;
//    with options::copy_activations_between_devices one kept on another
//    device is copied from there over workload::between_devices);
//  - task scratch (activations while it runs) is held from launch until the
//    spill stream passes its compute, or, with
//    options::keep_forward_activations, a training forward's until its
//    shard's backward takes it (no recomputation) or it leaves the device
//    (spilled home or dropped, by options::evicted_forward_activations);
//  - the host: launches are made one at a time (workload::launch_seconds
//    each), and a task's work starts once its launch is made. Where devices
//    are threads sharing the host's cores (workload::host_cores, the host
//    backend), every compute, copy and launch, and each task's other host
//    work, holds one core while it runs (first fit among the work booked).
//  - nodes: devices on several machines (device_spec::node) have a host each
//    (launching thread, cores, shared host link); each model runs within one
//    node, placed longest-first, and with options::move_models moves whole,
//    at a minibatch boundary, its state crossing workload::between_nodes
//    (one transfer at a time per node and direction).
// Not modelled: pool fragmentation (memory is counted in bytes), copy chunking,
// the host cores and shared host link a move between nodes would take (nor is
// a move in the trace), and contention beyond the shared cores and the
// optional shared host link, on which every copy also books its bytes /
// aggregate rate (first fit).
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/policy.hpp"
#include "hydra/sim/detail/simulation.hpp"
#include "hydra/sim/report.hpp"
#include "hydra/sim/workload.hpp"

namespace hydra::sim {

// Simulates `w` under `policy` (any hydra::policy: a built-in, any_policy, or
// the user's own type, called exactly as the runtime calls it).
template <policy P>
[[nodiscard]] report simulate(workload const& w, P& policy, options const& o = {}) {
  validate(w);
  return detail::simulation<P>(w, policy, o).run();
}

template <policy P>
requires(!std::is_lvalue_reference_v<P>) [[nodiscard]] report
    simulate(workload const& w, P&& policy, options const& o = {}) {
  P local = std::move(policy);
  return simulate(w, local, o);
}

// By name: sharp, fifo, round_robin, random_pick, model_parallel, task_parallel
// (task_parallel on a workload whose models each fit a device: see
// as_whole_models in sim/baselines.hpp).
[[nodiscard]] inline report simulate(workload const& w, std::string const& policy_name, options const& o = {},
                                     std::uint64_t seed = 1) {
  any_policy chosen = make_policy(policy_name, seed);
  return simulate(w, chosen, o);
}

} // namespace hydra::sim
