// What a simulation is asked (options) and what it answers (report).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hydra/memory/evicted_activations.hpp"
#include "hydra/sched/node_balancer.hpp"
#include "hydra/sched/scheduler_core.hpp"
#include "hydra/sched/sweep_driver.hpp"
#include "hydra/sim/workload.hpp"
#include "hydra/trace/trace_recorder.hpp"

namespace hydra::sim {

struct options {
  driver_options driver{};     // the same options the runtime's driver takes (queue depth)
  bool record_trace = false;   // report::trace: one slice per task and stream used
  bool keep_decisions = false; // report::decisions: every (device, task) in order
  // Replay a recorded run (sweep_report::driver_log): completions come in the
  // recorded order instead of by simulated time, a launch the run could not
  // place (or whose model it stopped) ends the same way here, and cost updates
  // arrive where they did. The simulator's driver then takes the recorded
  // run's decisions, or the replay stops with an error at the first that
  // differs. Simulated times are computed as usual.
  std::vector<driver_event> replay{};
  // Where the devices sit on more than one node, each model starts on the node
  // place_longest_first picks (sched/node_balancer.hpp) and runs only on its
  // devices. With move_models, after each completion a node short of work may
  // take a model waiting at a minibatch boundary elsewhere (pick_move), whose
  // state then crosses workload::between_nodes before its next task can fetch it.
  bool move_models = false;
  // How boundary activations reach a model's next task (see
  // activation_handoff): through host memory as the runtime does it by
  // default, kept on the device and sent home as it does with
  // multi_model_options::keep_activations, or kept without going home (a
  // what-if). A copy within one device's memory is taken as free (between
  // devices an activation goes through host memory, unless
  // copy_activations_between_devices). Replay takes the first two only.
  activation_handoff activations = activation_handoff::through_host;
  // With activations kept: a training forward's input also stays on its
  // device as the checkpoint its backward recomputes from; under memory
  // pressure a kept checkpoint is dropped once no shard can go, before the
  // other kept activations, the one read furthest ahead first (it is home).
  // With kept_and_sent_home, the runtime's
  // multi_model_options::keep_activation_checkpoints.
  bool keep_checkpoints = false;
  // With activations kept: an activation or checkpoint kept on one device
  // whose reader runs on another is copied from the holder's memory into the
  // reader's over workload::between_devices, on the reader's stream for
  // copies in, and freed on the holder once read (the runtime's
  // multi_model_options::copy_activations_between_devices), instead of being
  // read from host memory (sent there first, if it is not there yet).
  // Forward activations kept for a backward elsewhere still go through host
  // memory, as in the runtime.
  bool copy_activations_between_devices = false;
  // A what-if of a look-ahead that does not strand a chain: a task queued
  // behind a busy device has its compute booked only when that device's
  // compute reaches it; then, if the model that just computed there has more
  // work left than the queued task's (sweep_driver::take_back, by this rule),
  // the queued task goes back to the ready set and the device waits for
  // that model's task to complete, free for its next. The runtime does not do this: it commits a
  // queued task's compute at launch. Through host memory, on one node, with
  // a queue, without replay.
  take_back_rule take_back = take_back_rule::none;
  // The runtime's multi_model_options::keep_forward_activations: a training
  // forward's scratch stays on its device until its shard's backward, which,
  // run there, takes it as its own scratch, reads no checkpoint and computes
  // its backward_seconds less the shard's forward_seconds (no
  // recomputation). Under memory pressure those cheaper to recompute than
  // their bytes are to fetch again at the device's h2d rate
  // (recompute_beats_refetch; never where they are spilled) go first; the
  // others compete with the unpinned shards, furthest next use first, and
  // once no shard is left go after the checkpoints, a pinned shard's last
  // of all, as the spill engine chooses.
  // One that must leave its device (pressure, or its backward placed on
  // another) is dropped (the backward recomputes) or spilled home on that
  // device's link and copied into the backward's scratch, as
  // evicted_forward_activations says (by_cost: spilled where its bytes out
  // and back at that device's two link rates take less than the shard's
  // forward there; a free link costs nothing, where the runtime, which
  // measures its rates, recomputes while it knows none). Any
  // activation handoff; with keep_checkpoints too, the checkpoint is kept
  // beside them as the fallback had they been given up, and dropped by a
  // backward that takes them. Not with take-back.
  bool keep_forward_activations = false;
  evicted_activations evicted_forward_activations = evicted_activations::by_cost;
  // A shard cache that writes back, as the runtime's
  // multi_model_options::write_back_on_eviction does: a backward's update
  // stays on its device, dirty, and goes home only when the shard is evicted
  // (there, on the spill stream, before its memory is freed; a fetch
  // elsewhere waits for it) or once its model's planned work has ended,
  // instead of after every backward. A stopped model's is given up. Not with
  // models moving between nodes.
  bool write_back_on_eviction = false;
};

// A model's move between nodes: when its state left and when it had arrived.
struct timed_move {
  model_move move;
  double start_seconds = 0, end_seconds = 0;
  std::uint64_t bytes = 0;
};

struct report {
  std::string policy;
  double makespan_seconds = 0;
  lower_bound_parts bound;
  std::vector<double> device_busy_fraction; // compute busy / makespan
  std::uint64_t tasks = 0;
  std::uint64_t bytes_to_device = 0; // shard state and activations
  std::uint64_t bytes_to_host = 0;
  // options::copy_activations_between_devices: kept activations and
  // checkpoints copied from one device's memory into another's, and their
  // bytes (not in bytes_to_device, even where the devices reach each other
  // only at their host links' rate).
  std::uint64_t activations_copied_between_devices = 0;
  std::uint64_t bytes_between_devices = 0;
  std::uint64_t fetches = 0; // shard-state copies to a device
  // Shard-state copies home (options::write_back_on_eviction: those made at
  // an eviction or the end of a model's planned work; else one per training
  // backward).
  std::uint64_t write_backs = 0;
  std::uint64_t evictions = 0;
  std::uint64_t cross_device_moves = 0; // evicted because the next task went to another device
  std::uint64_t released = 0;           // decisions taken back: no room beside the queued tasks
  std::uint64_t taken_back = 0;         // queued tasks handed back before their compute (options::take_back)
  double copy_wait_seconds = 0;         // compute idle, waiting for a launched task's copies
  // Activations kept on a device that the model's next task read there
  // (sweep_report::activations_read_on_device at run time).
  std::uint64_t activations_read_on_device = 0;
  // Kept checkpoints that their backward read there
  // (sweep_report::activation_checkpoints_read_on_device at run time).
  std::uint64_t checkpoints_read_on_device = 0;
  // options::keep_forward_activations: kept, backwards that recomputed
  // nothing (spilled ones read back included), those spilled home, and
  // those given up before any shard was evicted (cheaper to recompute than
  // their bytes are to fetch again).
  std::uint64_t forward_activations_kept = 0;
  std::uint64_t recomputations_avoided = 0;
  std::uint64_t forward_activations_spilled = 0;
  std::uint64_t forward_activations_given_up_first = 0;
  std::vector<decision> decisions;
  std::vector<trace_slice> trace;
  // Across nodes: each model's first node, and every move (options::move_models).
  std::vector<std::size_t> starting_node;
  std::vector<timed_move> moves;
  std::uint64_t bytes_between_nodes = 0;

  [[nodiscard]] double ratio_to_lower_bound() const noexcept {
    return bound.seconds() > 0 ? makespan_seconds / bound.seconds() : 1.0;
  }
  [[nodiscard]] double mean_utilisation() const noexcept {
    double sum = 0;
    for (double busy : device_busy_fraction) sum += busy;
    return device_busy_fraction.empty() ? 0.0 : sum / static_cast<double>(device_busy_fraction.size());
  }
};

} // namespace hydra::sim
