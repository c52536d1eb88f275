// The values a sweep is described and reported with: one configuration per
// model, the options of a run, where a running sweep stands, each model's
// result and the run's report. Plain data; the trainer fills them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "hydra/graph/sequential_model.hpp"
#include "hydra/memory/evicted_activations.hpp"
#include "hydra/sched/scheduler_core.hpp"
#include "hydra/sched/sweep_driver.hpp"
#include "hydra/select/any_controller.hpp"
#include "hydra/select/controller_history.hpp"
#include "hydra/select/evaluation.hpp"
#include "hydra/train/minibatch.hpp"
#include "hydra/train/model_snapshot.hpp"
#include "hydra/train/optimizer.hpp"

namespace hydra {

// One configuration of the sweep; its layers run on execution context Context
// (host_execution_context, or cuda::cuda_execution_context on the CUDA backend).
template <class Context>
struct basic_model_config {
  std::string name;
  sequential_model<Context> model;
  std::variant<sgd_momentum, adam> optimizer;
  std::size_t steps = 1; // minibatches
  data_source data;
  std::uint64_t seed = 1; // initial parameters (layer k uses seed + k)
  // Per-shard compute seconds for the policies. Without them the model's first
  // minibatch is its profiling minibatch: the scheduler starts from FLOP counts
  // and switches to what that minibatch measured once it has finished.
  std::optional<model_costs> estimates{};
  // Continue from a checkpoint: `steps` then counts the minibatches still to
  // train, and data(k) is asked for k = resume->minibatches_done onwards. The
  // result is bitwise what an uninterrupted run would have given.
  std::optional<model_snapshot> resume{};
  // Held-out data to select on: at each checkpoint the model is evaluated on
  // validation(0 .. validation_minibatches - 1), as forward-only tasks
  // scheduled like its training. Without it a checkpoint carries no metrics.
  data_source validation{};
  std::size_t validation_minibatches = 0;
  // An extra score of each evaluated minibatch (evaluation::metric).
  metric_function metric{};
  // The devices whose memory the model's shards are cut for: each shard fits
  // half the smallest budget among them. A shard then runs on every device
  // whose half-budget holds it: these, and any other at least as large. Empty:
  // every device, so any device may run any shard. Naming only the large
  // devices of a mixed set gives fewer, larger shards that the small ones never run.
  std::vector<std::size_t> partition_for{};
};

// A model's validation metrics after `minibatches` training minibatches
// (counted from its first, those before a snapshot it resumed from included).
struct validation_point {
  std::size_t minibatches = 0;
  evaluation metrics;
};

// Where a running sweep stands (multi_model_options::on_progress).
struct sweep_progress {
  std::chrono::nanoseconds elapsed{0};
  std::vector<std::size_t> steps_done;      // per model, this run
  std::vector<std::size_t> steps_total;     // per model, this run
  std::size_t models_finished = 0;          // trained as far as planned
  std::size_t models_stopped = 0;           // stopped by their controller, or failed
  std::vector<double> device_busy_fraction; // compute busy time / elapsed, per device
};

// A model's checkpoint with what resuming the sweep from it needs
// (multi_model_options::on_checkpoint).
struct model_checkpoint {
  checkpoint reached; // minibatches counted from the model's first
  // Its parameters and optimizer state there; nullopt when its controller
  // stopped it at this checkpoint (its state is gone).
  std::optional<model_snapshot> state;
  std::vector<float> losses;         // the mean loss of each minibatch it trained in this run, up to here
  std::vector<std::size_t> stopped;  // the models its controller stopped in its decision here
  controller_history const* history; // every event the controller was shown so far, this one last
};

struct multi_model_options {
  std::optional<std::uint8_t> poison_freed_blocks{}; // test aid
  // Guard mode: each layer call runs on copies of its regions between
  // canaries; a layer that writes outside its footprint stops its model, with
  // the layer and the region named (host layers only; it costs a copy of every
  // region per call). Unset: on in AddressSanitizer builds for host layers
  // (ASan then reports the write itself), off otherwise.
  std::optional<bool> guard_layers{};
  // Record the schedule (trace(); hydra::write_chrome_trace writes it). Off by default: the marks are
  // six more stream items per task, which on the host backend costs about as
  // much as a small task itself.
  bool record_trace = false;
  // Called from run()'s thread after a completion, at most once per interval,
  // and once at the end.
  std::function<void(sweep_progress const&)> on_progress{};
  std::chrono::milliseconds progress_interval{500};
  // Minibatches timed for each model's profile after its first (which is
  // timed too, but only stands in until the next has finished): the profile
  // is the per-shard median of these (model_profile).
  std::size_t profile_minibatches = 5;
  // Keep each boundary activation (a forward's output, a backward's input
  // gradient) in the producing device's pool as well as sending it home, while
  // room allows beside the queued tasks' shards: the model's next task reads
  // it there when it runs on that device, instead of from host memory. Kept
  // copies are clean, so memory pressure drops them (after every unpinned
  // shard) and nothing moves. The weights are bitwise those without it. The
  // simulator's counterpart is sim::activation_handoff::kept_and_sent_home.
  bool keep_activations = false;
  // With keep_activations: each training forward's input also stays on its
  // device as the checkpoint its shard's backward recomputes from, while room
  // allows; that backward reads it there when it runs on that device, instead
  // of from host memory. Under memory pressure checkpoints are dropped before
  // the other kept activations (after every unpinned shard), the one read
  // furthest ahead first; like them they are home already. Same weights,
  // bitwise. The simulator's counterpart is sim::options::keep_checkpoints.
  // With keep_forward_activations too, the checkpoint is kept beside the
  // forward activations (which hold the input as well): the fallback their
  // backward recomputes from on the device where they were given up under
  // pressure, for the input's bytes again; a backward that takes the
  // activations drops it.
  bool keep_activation_checkpoints = false;
  // With keep_activations: a kept activation or checkpoint whose reader is
  // placed on another device is copied from the device that kept it into
  // the reader's memory (device to device: on CUDA a peer copy where the
  // GPUs reach each other, which the backend enables, else staged by the
  // driver), instead of being dropped there and read from host memory.
  // Same weights, bitwise. The simulator's counterpart is
  // sim::options::copy_activations_between_devices.
  bool copy_activations_between_devices = false;
  // Keep each training forward's activations (its whole scratch: the shard's
  // input and every layer's output in it) on its device for the shard's
  // backward, while room allows: that backward, when it runs on that device,
  // starts from them instead of recomputing the forward from its checkpoint.
  // Under memory pressure, those cheaper to recompute than their bytes of
  // shard state are to fetch again (recompute_beats_refetch: the shard's
  // forward seconds as below, against the device's measured host-to-device
  // rate; never on CUDA, which measures none) go before any shard; the
  // others compete with the unpinned shards, furthest next use first, and
  // once no shard is left they go after the kept checkpoints (a pinned
  // shard's last of all). Where they go when they leave is
  // evicted_forward_activations. Same arithmetic: the weights are bitwise
  // those without it. The simulator's counterpart is
  // sim::options::keep_forward_activations.
  bool keep_forward_activations = false;
  // With keep_forward_activations: kept forward activations that leave their
  // device (memory pressure, or a backward placed on another device) are
  // dropped and recomputed, or spilled to host memory and copied back into
  // the backward's scratch (on whichever device it runs). by_cost decides per
  // shard at each forward (spill_beats_recompute): the shard's forward
  // seconds, measured once its profile is (profile_minibatches) or given
  // (model_config::estimates), against the device's copy rates measured so
  // far; without both figures (a backend that does not measure its copies,
  // CUDA), it recomputes. Spilled or recomputed, the same bits. (The forward
  // seconds are those measured on whichever device ran the shard, not
  // scaled by device_speeds; the simulator divides by the keeping device's
  // speed, so on devices of unequal speed the two may decide differently.)
  evicted_activations evicted_forward_activations = evicted_activations::by_cost;
  // Leave each backward's update (a shard's parameters and optimizer state)
  // on its device instead of writing it home at once: it goes home when
  // memory pressure evicts the shard there, when the shard's next task is
  // placed on another device (which then fetches it behind that write-back),
  // or when its model's planned work ends (each checkpoint, whether or not
  // on_checkpoint is set). A shard that stays resident across several minibatches
  // then crosses the link once instead of once per minibatch; an eviction
  // waits for its write-back before its memory can be reused. A write-back
  // that fails at an eviction fails the shard's model, not the task that
  // needed the room; one that fails at the end of its planned work fails it
  // there. Same arithmetic: the weights are bitwise those without
  // it. The simulator's counterpart is sim::options::write_back_on_eviction.
  bool write_back_on_eviction = false;
  // The decisions' options, the same the simulator takes (queue depth).
  driver_options driver{};
  // Each device's compute speed against the device the models' cost
  // estimates describe, as policies see it (device_view::speed) and as the
  // simulator's devices give it (sim::device_spec::speed): a policy may keep
  // the longest chains off slow devices. Empty: the speeds the backend
  // declares (host_backend_options::device_speeds), else 1 for every device.
  // Each in (0, 1e6]. The costs a profile adopts mid-run are times on
  // whichever device ran each shard, not divided back by its speed.
  std::vector<double> device_speeds{};
  // Keep every decision and everything the driver was told, for report()
  // (decisions, driver_log: what sim::options::replay replays). About 150
  // bytes per task: turn it off for sweeps of many millions of tasks.
  bool record_decisions = true;
  // How far each configuration trains: every one to its end (full_grid), or
  // as model selection decides from validation metrics (successive_halving,
  // asha, or a user's sweep_controller).
  any_controller controller{};
  // Called on run()'s thread at each model's checkpoint, after its controller
  // decided what comes next, with the model's state there: what a checkpoint
  // file needs. Taking the state waits until the model's write-backs have
  // reached its host copy; without a callback nothing waits.
  std::function<void(model_checkpoint const&)> on_checkpoint{};
  // Resumes a controlled sweep: the history (model_checkpoint::history) of the
  // run being continued. run() shows it to the controller before anything
  // trains, which rebuilds the controller's state; models it stopped, or that
  // failed, stay out; each other model continues from its config's resume
  // snapshot, which must be its state at its last checkpoint in the history
  // (none if it had none), and trains on to what the controller planned.
  // Needs the same models, controller, options and device count as that run,
  // and a history that starts with the sweep (a run that itself resumed from
  // snapshots without a history records one that starts part-way, which a
  // fresh controller cannot replay).
  controller_history resume_history{};
  // How long run() waits for a completion before it asks the backend whether
  // a stream has failed in a way that means no completion will come (a CUDA
  // device fault), and ends the run with that error instead of hanging.
  std::chrono::milliseconds stream_check_interval{100};
};

struct model_result {
  std::string name;
  std::vector<float> losses;          // mean loss of each minibatch it finished
  std::size_t steps = 0;              // minibatches completed
  std::optional<std::string> failure; // why it failed, if it did (a fault: a layer threw, the loss diverged)
  // Why it trained fewer than its steps without failing: its controller
  // stopped it (its memory was released: no parameters), or never continued
  // it (its parameters are kept).
  std::optional<std::string> stopped_early;
  std::vector<validation_point> validations; // at each checkpoint, in order
  std::chrono::nanoseconds finished{0};      // since the start of the run
  std::vector<float> parameters;             // final (empty for a failed model, or one its controller stopped)
};

struct sweep_report {
  std::string policy;
  std::chrono::nanoseconds makespan{0};
  std::vector<double> device_busy_fraction; // compute busy time / makespan
  std::uint64_t bytes_to_device = 0;
  std::uint64_t bytes_to_host = 0;
  std::uint64_t cross_device_moves = 0; // shards evicted from one device because their next task went to another
  // Shard states written home: one per training backward, or, with
  // write_back_on_eviction, one per eviction or model end that found an
  // update still on the device (sim::report::write_backs).
  std::uint64_t write_backs = 0;
  // Boundary activations (each minibatch's input included) copied into task
  // scratch from host memory, and sent home; not in the two above, which are
  // shard state.
  std::uint64_t activation_bytes_to_device = 0;
  std::uint64_t activation_bytes_to_host = 0;
  // multi_model_options::keep_activations: boundary activations kept on their
  // device, and those (and their bytes) the next task read there rather than
  // from host memory.
  std::uint64_t activations_kept = 0;
  std::uint64_t activations_read_on_device = 0;
  std::uint64_t activation_bytes_read_on_device = 0;
  // multi_model_options::keep_activation_checkpoints: checkpoints kept on their device,
  // and those (and their bytes) a backward read there.
  std::uint64_t activation_checkpoints_kept = 0;
  std::uint64_t activation_checkpoints_read_on_device = 0;
  std::uint64_t activation_checkpoint_bytes_read_on_device = 0;
  // copy_activations_between_devices: kept activations and checkpoints a
  // task on another device copied from the device that kept them (rather
  // than from host memory; in none of the figures above), and their bytes.
  std::uint64_t activations_copied_between_devices = 0;
  std::uint64_t activation_bytes_copied_between_devices = 0;
  // multi_model_options::keep_forward_activations: forward activations kept on
  // their device, and the backwards that started from them instead of
  // recomputing their shard's forward.
  std::uint64_t forward_activations_kept = 0;
  std::uint64_t recomputations_avoided = 0; // spilled ones read back from host memory included
  // evicted_forward_activations: forward activations spilled to host memory
  // rather than dropped, their bytes, and the bytes copied back into a
  // backward's scratch (in neither activation_bytes figure above).
  std::uint64_t forward_activations_spilled = 0;
  std::uint64_t forward_activation_bytes_spilled = 0;
  std::uint64_t forward_activation_bytes_read_back = 0;
  // Forward activations given up under memory pressure before any shard was
  // evicted: those that cost less to recompute than their bytes of shard
  // state cost to fetch again (recompute_beats_refetch), by the copy rates
  // measured so far (none on CUDA, where they compete with the shards).
  std::uint64_t forward_activations_given_up_first = 0;
  // Shards evicted and kept activations dropped although the device's free
  // bytes covered the request (spill_statistics::fragmented_evictions).
  std::uint64_t fragmented_evictions = 0;
  // 1 - compute's wait on prefetch / prefetch busy time; NaN on a backend
  // that does not measure its streams' busy and waiting times (CUDA).
  double hidden_transfer_fraction = 0;
  std::vector<decision> decisions;      // (device, task) in the order the driver took them
  std::vector<driver_event> driver_log; // everything the driver was told, in order (sim::options::replay)
};

} // namespace hydra
