// How one model's shard tasks are enqueued on a device: the part shared by the
// single-model and the multi-model trainers. A runner owns the model's shard
// graph, the homes of its shards and the host blocks of its current minibatch;
// each task may run on a different device's spill engine.
//
// Per task: make the shard resident (prefetch stream), bring the inputs from
// host memory into the task's scratch (prefetch stream), compute (compute stream,
// behind an event), send the outputs and dirty state home (spill stream, behind
// an event). Every boundary goes to host memory, so the next task of the
// model may run on any device. With keep_activations, a boundary also stays in
// the producing device's pool (spill_engine::keep_activation) while room allows,
// and the model's next task reads it there when it runs on that device: no host
// round trip, and the home copy makes dropping it free; with
// copy_between_devices, a next task on another device copies it from there
// instead of from home. With keep_checkpoints,
// a training forward's input stays there too, as the checkpoint its shard's
// backward recomputes from. With keep_forward_activations, a training
// forward's whole scratch stays there too, and the shard's backward, when it
// runs on that device, starts from it instead of recomputing the forward;
// where copying them home and back costs less than recomputing them
// (plan_kept_forward), they are spilled to host memory instead of dropped,
// and a backward that runs elsewhere reads them from there; where
// recomputing them costs less than fetching as many bytes of shard state
// again, they are the first to go under memory pressure. In
// the single-model trainer the last shard keeps its activations on the device
// between its forward and backward regardless. A backward that lands on
// another device, or finds them dropped, recomputes from its checkpoint
// (kept beside them with keep_checkpoints, and copied from that device with
// copy_between_devices, else from host memory), unless they were spilled.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/fault_record.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/graph/shard_chain.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/spill_engine.hpp"
#include "hydra/sched/task.hpp"
#include "hydra/select/evaluation.hpp"
#include "hydra/train/any_optimizer.hpp"
#include "hydra/train/detail/evaluation_scores.hpp"
#include "hydra/train/detail/shard_compute.hpp"
#include "hydra/train/detail/shard_home_layout.hpp"
#include "hydra/train/detail/shard_homes.hpp"
#include "hydra/train/detail/task_annotation.hpp"
#include "hydra/train/detail/task_failure.hpp"
#include "hydra/train/minibatch.hpp"
#include "hydra/train/model_snapshot.hpp"

namespace hydra::detail {

template <class Backend, class Context>
class model_runner {
public:
  using engine_type = spill_engine<Backend>;
  using event = typename Backend::event;
  using next_use_function = typename engine_type::next_use_function;

  // `stream` is where the homes are filled (any stream of the run).
  // `keep_last_activations`: the last shard's forward leaves its activations on
  // the device for its backward (one model per device: the single-model trainer);
  // otherwise its backward recomputes like every shard's, which keeps each task's
  // memory within the partition's rule when many models share the devices.
  model_runner(Backend& backend, host_pool<Backend>& host, sequential_model<Context> model,
               any_optimizer<Context> optimizer, shard_chain graph, std::uint64_t seed, typename Backend::stream stream,
               bool keep_last_activations = true)
      : backend_(&backend), host_(&host), model_(std::move(model)), optimizer_(std::move(optimizer)),
        graph_(std::move(graph)), homes_(backend, host, graph_, model_.initial_parameters(seed), stream),
        fault_(std::make_shared<fault_record>()), state_(graph_.size()), keep_last_activations_(keep_last_activations) {
  }

  // Continues from `parameters` and `optimizer_state` (as state() returns them)
  // after `minibatches_done` minibatches: the optimizer's step count goes on from there.
  model_runner(Backend& backend, host_pool<Backend>& host, sequential_model<Context> model,
               any_optimizer<Context> optimizer, shard_chain graph, std::vector<float> const& parameters,
               std::vector<float> const& optimizer_state, std::size_t minibatches_done, typename Backend::stream stream,
               bool keep_last_activations)
      : backend_(&backend), host_(&host), model_(std::move(model)), optimizer_(std::move(optimizer)),
        graph_(std::move(graph)), homes_(backend, host, graph_, model_.parameter_count(),
                                         optimizer_.state_per_parameter(), parameters, optimizer_state, stream),
        fault_(std::make_shared<fault_record>()), state_(graph_.size()), keep_last_activations_(keep_last_activations),
        step_offset_(minibatches_done) {}

  model_runner(model_runner const&) = delete;

  // Host bytes a runner of `model` partitioned as `graph` needs (see runner_host_bytes).
  [[nodiscard]] static std::size_t host_bytes(shard_chain const& graph, sequential_model<Context> const& model,
                                              std::size_t minibatches_in_flight,
                                              bool spilled_forward_activations = false) {
    return runner_host_bytes(
        graph, model.batch(), minibatches_in_flight,
        [&](std::size_t layer) { return model.footprint(layer).input_features; }, spilled_forward_activations);
  }

  // Deferred write-backs (the multi-model trainer): a backward leaves its
  // write-back for the driver to issue with flush_write_back() once it has
  // queued the task's completion, so that the model's next task, which does
  // not need this shard, is not held up while its state goes home.
  void defer_write_backs(bool defer) noexcept { defer_write_backs_ = defer; }
  // With deferred write-backs: a backward's update is not written home at
  // all but left on its device, dirty, until the shard is evicted there or
  // flushed (spill_engine::mark_dirty). The arithmetic is the same; only
  // when the home catches up changes.
  void write_back_on_eviction(bool on) noexcept { write_back_on_eviction_ = on; }

  // Keep each boundary activation on the device that produced it as well as
  // sending it home (see the header comment). The arithmetic is the same
  // either way: only where the next task reads its input from changes.
  void keep_activations(bool keep) noexcept { keep_activations_ = keep; }
  // Keep each training forward's input on its device for the shard's
  // backward as well (a kept input taken here stays where it is; one from
  // home or another device is copied within the device). Same arithmetic
  // either way.
  void keep_checkpoints(bool keep) noexcept { keep_checkpoints_ = keep; }
  // A kept boundary activation or checkpoint whose reader runs on another
  // device is copied from the device that kept it into the reader's scratch
  // (a copy between devices), instead of being dropped there and read from
  // its home copy. Same arithmetic: the same bytes arrive.
  void copy_between_devices(bool copy) noexcept { copy_between_devices_ = copy; }
  // Keep each training forward's scratch (every activation of its shard) on
  // its device for the shard's backward, which then skips the recomputation
  // when it runs there. The scratch holds the forward's input; with
  // keep_checkpoints too, the input is also kept apart as the checkpoint, the
  // fallback where the activations are given up (dropped by a backward that
  // takes them). Same layers, same inputs: the same bits.
  void keep_forward_activations(bool keep) noexcept { keep_forward_activations_ = keep; }
  // How a shard's kept forward activations leave their device (memory
  // pressure, or a backward placed elsewhere): spilled home rather than
  // dropped, and whether they go before any shard under pressure (see
  // spill_engine::keep_forward_activations). Asked at each training forward
  // with the shard and the device's engine. Unset: dropped, competing with
  // the shards (the backward recomputes them).
  struct kept_forward_plan {
    bool spill_home = false;
    bool before_shards = false;
  };
  using kept_forward_rule = std::function<kept_forward_plan(std::size_t shard, engine_type const& engine)>;
  void plan_kept_forward(kept_forward_rule rule) { kept_forward_rule_ = std::move(rule); }

  // Guard mode (layer_guard.hpp): every layer call on guarded copies of its
  // regions; unset, as the build decides (guard_layers_by_default).
  void guard_layers(std::optional<bool> guard) {
    detail::expects(!guard.value_or(false) || guards_layers<Context>,
                    "guard_layers: guard mode runs host layers only (on CUDA, run compute-sanitizer instead)");
    guard_layers_ = guard.value_or(guards_layers<Context> && guard_layers_by_default);
  }
  // A write-back that cannot be issued leaves the model's home stale: the
  // model is failed through its fault record, stopped at the completion that
  // was queued ahead of the write-back.
  void flush_write_back(engine_type& engine) {
    if (!deferred_write_back_) return;
    auto const [shard_id, done] = *deferred_write_back_;
    deferred_write_back_.reset();
    if (write_back_on_eviction_) {
      engine.mark_dirty(shard_id, done);
      return;
    }
    try {
      engine.write_back(shard_id, done);
    } catch (std::exception const& failure) {
      fault_->record(std::string("writing a shard's state home failed: ") + failure.what());
    } catch (...) {
      fault_->record(std::string("writing a shard's state home failed: an exception not derived from std::exception"));
    }
  }
  model_runner& operator=(model_runner const&) = delete;

  // Registers this model's shards with a device's engine; returns the id of
  // shard 0 there (the others follow in order).
  std::size_t register_with(engine_type& engine) { return homes_.register_with(engine, graph_); }

  // Bytes of boundary activations (a minibatch's input included) copied into
  // task scratch from host memory, and sent home, so far.
  [[nodiscard]] std::uint64_t activation_bytes_in() const noexcept { return activation_bytes_in_; }
  [[nodiscard]] std::uint64_t activation_bytes_out() const noexcept { return activation_bytes_out_; }
  // Bytes of spilled forward activations copied back into a backward's scratch.
  [[nodiscard]] std::uint64_t forward_activation_bytes_in() const noexcept { return forward_activation_bytes_in_; }

  // Whether the minibatch of task `t` has been staged (begin_minibatch) already.
  [[nodiscard]] bool staged(task const& t) const noexcept {
    return staged_minibatch_ == std::pair<std::size_t, std::size_t>{t.segment, t.minibatch};
  }

  // Checks and stages the minibatch of task `t` (its chain segment's shard 0
  // forward) in host memory, on `engine`'s prefetch stream.
  void begin_minibatch(engine_type& engine, task const& t, minibatch data) {
    std::size_t const batch = model_.batch();
    check_minibatch(data, batch, model_.input_features(), classes());
    auto shared = std::make_shared<minibatch const>(std::move(data));
    auto const prefetch = engine.prefetch_stream();
    before_enqueue(t, [&] { // what it allocated before failing is freed by abandon()
      state_.checkpoint[0] = host_->allocate(prefetch, batch * model_.input_features() * sizeof(float));
      state_.labels = host_->allocate(prefetch, batch * sizeof(std::int32_t));
    });
    backend_->enqueue(prefetch, [shared, input = state_.checkpoint[0], labels = state_.labels] {
      std::memcpy(input, shared->inputs.data(), shared->inputs.size() * sizeof(float));
      std::memcpy(labels, shared->labels.data(), shared->labels.size() * sizeof(std::int32_t));
    });
    state_.checkpoint_ready[0] = backend_->record_event(prefetch);
    staged_minibatch_ = {t.segment, t.minibatch};
  }

  // Enqueues task `t` of this model on `engine`, whose ids for this model's
  // shards start at `base`. `before_compute()` runs when the compute stream has
  // been told to wait for the task's inputs and nothing of its compute is
  // enqueued yet; `after_compute(shard id)` once its compute work is enqueued
  // (the single-model trainer prefetches there; the multi-model trainer on CUDA
  // records a timing event at both).
  template <class BeforeCompute, class AfterCompute>
  void run(engine_type& engine, std::size_t base, task const& t, next_use_function const& next_use,
           BeforeCompute&& before_compute, AfterCompute&& after_compute) {
    if (t.purpose == task_purpose::evaluate)
      evaluate(engine, base, t, next_use, before_compute, after_compute);
    else if (t.pass == direction::forward)
      forward(engine, base, t, next_use, before_compute, after_compute);
    else
      backward(engine, base, t, next_use, before_compute, after_compute);
  }
  template <class AfterCompute>
  void run(engine_type& engine, std::size_t base, task const& t, next_use_function const& next_use,
           AfterCompute&& after_compute) {
    run(
        engine, base, t, next_use, [] {}, after_compute);
  }

  // A metric computed from each evaluated minibatch's logits (evaluation::metric).
  void set_metric(metric_function metric) { scores_.set_metric(std::move(metric)); }

  // The scores of the evaluation minibatches since the last call, and a fresh
  // start for the next pass. Call once the pass's last task has completed.
  [[nodiscard]] evaluation take_evaluation() { return scores_.take(); }

  // After a fault: returns every host block of the interrupted minibatch and the
  // kept scratch, in stream order on `engine`, and drops the model's kept
  // output and checkpoints wherever they are.
  void abandon(engine_type& engine) {
    auto const spill = engine.spill_stream();
    // Each was written by this device's spill stream, or by an earlier task
    // whose completion was reported behind that copy, before this launch.
    for (void*& block : state_.checkpoint) release_host(spill, block);
    for (void*& block : state_.gradient) release_host(spill, block);
    release_host(spill, state_.labels);
    drop_quietly(handoff_);
    for (auto& checkpoint : state_.kept_checkpoint) drop_quietly(checkpoint);
    for (auto& activations : state_.kept_forward) drop_quietly(activations);
    if (state_.last_scratch) {
      state_.last_scratch_engine->release_scratch(state_.last_scratch, state_.last_scratch_done);
      state_.last_scratch = nullptr;
    }
    deferred_write_back_.reset(); // of a task that failed after its compute was enqueued: never issued
  }

  // Parameters and optimizer state, independent of the partition (see
  // model_snapshot). Call once the streams have drained.
  [[nodiscard]] model_snapshot state() const {
    return homes_.state(graph_, model_.parameter_count(), optimizer_.state_per_parameter());
  }

  // state() while the sweep runs, with no task of this model queued (at its
  // checkpoint): waits for its last write-backs to reach the homes first.
  [[nodiscard]] model_snapshot settled_state() const {
    homes_.wait_written();
    return state();
  }

  // The trained parameters in layer order (call once the streams have drained).
  [[nodiscard]] std::vector<float> parameters() const { return state().parameters; }

  [[nodiscard]] shard_chain const& graph() const noexcept { return graph_; }
  [[nodiscard]] sequential_model<Context> const& model() const noexcept { return model_; }
  // Mean loss of each finished minibatch (written by the spill streams: read after they drained).
  [[nodiscard]] std::vector<float> const& losses() const noexcept { return losses_; }
  [[nodiscard]] std::shared_ptr<fault_record> const& fault() const noexcept { return fault_; }

  // Frees the homes (on `stream`); the runner is unusable afterwards.
  void release_homes(typename Backend::stream stream) { homes_.release(stream); }

private:
  // A boundary activation kept on a device (by the task that produced it, or,
  // as a checkpoint, by the forward that read it), and where.
  struct kept_handoff {
    engine_type* engine = nullptr;
    typename engine_type::kept_id id = 0;
  };

  struct step_state {
    explicit step_state(std::size_t shards)
        : checkpoint(shards, nullptr), checkpoint_ready(shards), kept_checkpoint(shards), kept_forward(shards),
          gradient(shards, nullptr), gradient_ready(shards) {}
    std::vector<void*> checkpoint; // input of shard s
    std::vector<event> checkpoint_ready;
    std::vector<std::optional<kept_handoff>> kept_checkpoint; // ... also kept on a device (keep_checkpoints)
    std::vector<std::optional<kept_handoff>> kept_forward;    // shard s's forward scratch (keep_forward_activations)
    std::vector<void*> gradient; // dLoss/d output of shard s
    std::vector<event> gradient_ready;
    void* labels = nullptr;
    std::byte* last_scratch = nullptr; // the last shard's activations, kept from forward to backward
    engine_type* last_scratch_engine = nullptr;
    event last_scratch_done{};
  };

  using taken_activation = typename engine_type::taken_activation;
  using spilled_activation = typename engine_type::spilled_activation;

  // The model's kept output for the task about to run on `engine`: taken
  // when it is still there (making room for this task drops it only when
  // nothing else can go: spill_engine::pin); dropped where it is otherwise.
  // Without it, the task reads the home copy. Shard s's kept checkpoint
  // (take_checkpoint) is taken the same way by its backward, though under
  // pressure checkpoints, its own included, go before any kept output.
  // With copy_between_devices, one kept on another device is taken there
  // (the taken block's holder is then not `engine`): the reader copies it.
  std::optional<taken_activation> take_handoff(engine_type& engine) { return take_kept(handoff_, engine); }
  std::optional<taken_activation> take_checkpoint(engine_type& engine, std::size_t s) {
    return take_kept(state_.kept_checkpoint[s], engine);
  }
  std::optional<taken_activation> take_kept(std::optional<kept_handoff>& slot, engine_type& engine) {
    bool const elsewhere = slot && slot->engine != &engine;
    if (!slot || (elsewhere && !copy_between_devices_)) {
      drop_quietly(slot);
      return std::nullopt;
    }
    kept_handoff const kept = *slot;
    slot.reset();
    return kept.engine->take_activation(kept.id, /*by_another_device=*/elsewhere);
  }
  // Gives a kept activation up where it is (if it is still there).
  static void drop_quietly(std::optional<kept_handoff>& slot) noexcept {
    if (!slot) return;
    kept_handoff const kept = *slot;
    slot.reset();
    try {
      kept.engine->drop_kept(kept.id);
    } catch (...) { // that device's stream failed: it is lost, and its pool with it
    }
  }
  // Shard s's kept forward activations, spilled to host memory: where they
  // were spilled already, or, still kept on another device than the
  // backward's, spilled now (send_home: dropped there instead unless kept to
  // spill). Nothing when they are gone: the backward recomputes.
  std::optional<spilled_activation> take_spilled_forward(std::size_t s) {
    auto& slot = state_.kept_forward[s];
    if (!slot) return std::nullopt;
    kept_handoff const kept = *slot;
    try {
      kept.engine->send_home(kept.id);
      slot.reset();
      return kept.engine->take_spilled(kept.id);
    } catch (...) { // that device's stream failed: they are lost with its pool
      drop_quietly(slot);
      return std::nullopt;
    }
  }
  // A taken home copy of forward activations whose task did not read it.
  void give_back(std::optional<spilled_activation>& spilled, typename Backend::stream on) noexcept {
    if (!spilled) return;
    try {
      backend_->wait_event(on, spilled->written);
      host_->deallocate(on, spilled->data);
    } catch (...) {
    }
    spilled.reset();
  }

  // A taken input whose task did not get as far as reading it.
  static void give_back(engine_type& engine, std::optional<taken_activation>& taken) noexcept {
    if (!taken) return;
    try {
      engine.release_taken(*taken, engine.spill_stream());
    } catch (...) {
    }
    taken.reset();
  }

  // A kept output whose task failed: freed (a no-op if it was dropped already).
  void discard(engine_type& engine, std::optional<typename engine_type::kept_id> const& kept) noexcept {
    if (!kept) return;
    if (handoff_ && handoff_->id == *kept && handoff_->engine == &engine) handoff_.reset();
    try {
      engine.drop_kept(*kept);
    } catch (...) {
    }
  }

  // The output at `output` in `scratch` (written by compute up to `done`) also
  // kept on the device, when room is found beside the queued tasks' shards:
  // copied on the compute stream (its block was allocated on the prefetch
  // stream, which compute has waited on). Returns the event the scratch's
  // free must wait for.
  event keep_output(engine_type& engine, std::optional<typename engine_type::kept_id> const& kept, std::byte* output,
                    std::size_t bytes, event const& done) {
    if (!kept) return done;
    auto const compute = engine.compute_stream();
    try {
      backend_->copy_async(compute, engine.kept_data(*kept), output, bytes);
    } catch (...) {
      engine.drop_kept(*kept); // its home copy is on its way: nothing is lost
      throw;
    }
    event const written = backend_->record_event(compute);
    engine.kept_written(*kept, written);
    detail::expects(!handoff_, "model_runner: a kept output replaces one no task has taken");
    handoff_ = kept_handoff{&engine, *kept};
    return written;
  }

  // A block for this task's output on the device, found before its compute is
  // enqueued (nothing when activations are not kept, or there is no room).
  // An allocation that fails fails the task, as its scratch's would; the
  // scratch is given back first.
  std::optional<typename engine_type::kept_id> room_for_output(engine_type& engine, std::size_t base, task const& t,
                                                               std::byte* scratch, std::size_t bytes,
                                                               next_use_function const& next_use) {
    if (!keep_activations_ || bytes == 0) return std::nullopt;
    try {
      return engine.keep_activation(bytes, t.model, next_use);
    } catch (...) {
      abandon_task(*backend_, engine, base + t.shard, scratch);
      fail_task(t);
    }
  }

  // The task's input into its scratch: from the taken kept block (on the
  // prefetch stream, behind the copy that filled it; from another device's
  // memory where it was kept there), else from home.
  // `checkpoint`: the input is also kept on the device as the checkpoint of
  // shard id `checkpoint->first` there: the taken block itself (kept here),
  // or the block `checkpoint->second` (if any), filled from the scratch on
  // the prefetch stream.
  using checkpoint_plan = std::pair<std::size_t, std::optional<typename engine_type::kept_id>>;
  void copy_input_in(engine_type& engine, shard const& shard, std::size_t s, std::byte* scratch, bool last,
                     std::optional<taken_activation>& taken, std::optional<checkpoint_plan> const& checkpoint,
                     std::size_t owner) {
    auto const prefetch = engine.prefetch_stream();
    std::byte* const input = scratch + shard.scratch.activations[0];
    if (!taken) {
      copy_checkpoint_in(prefetch, shard, s, scratch, last);
    } else {
      if (checkpoint && taken->holder == &engine) {
        backend_->wait_event(prefetch, taken->written);
        backend_->copy_async(prefetch, input, taken->data, taken->bytes);
        auto const kept = engine.keep_taken(*taken, owner, checkpoint->first, backend_->record_event(prefetch));
        taken.reset();
        state_.kept_checkpoint[s] = kept_handoff{&engine, kept};
      } else {
        copy_taken_in(engine, taken, input);
      }
      if (last)
        backend_->copy_async(prefetch, scratch + shard.scratch.labels, state_.labels,
                             model_.batch() * sizeof(std::int32_t));
    }
    // A block of its own for the checkpoint (the input came from home or
    // another device), filled from the scratch.
    if (!checkpoint || !checkpoint->second) return;
    auto const block = *checkpoint->second;
    backend_->copy_async(prefetch, engine.kept_data(block), input, activation_bytes(shard.first_layer));
    engine.kept_written(block, backend_->record_event(prefetch));
    state_.kept_checkpoint[s] = kept_handoff{&engine, block};
  }

  // A taken kept block into `destination`, on the prefetch stream behind the
  // copy that filled it; freed there behind this read (into its holder's
  // pool where another device kept it).
  void copy_taken_in(engine_type& engine, std::optional<taken_activation>& taken, std::byte* destination) {
    auto const prefetch = engine.prefetch_stream();
    backend_->wait_event(prefetch, taken->written);
    backend_->copy_async(prefetch, destination, taken->data, taken->bytes);
    engine.release_taken(*taken, prefetch);
    taken.reset();
  }

  [[nodiscard]] std::size_t classes() const { return model_.footprint(model_.size() - 1).input_features; }

  // A step before any of task t's compute is enqueued (making its shard
  // resident, allocating its scratch or its input's host blocks): a failure
  // other than does_not_fit (the task is retried later) fails the task; what
  // it holds by then (a partly fetched extent, host blocks) is given back when
  // its model is stopped.
  template <class Step>
  static decltype(auto) before_enqueue(task const& t, Step&& step) {
    try {
      return std::forward<Step>(step)();
    } catch (...) {
      fail_task(t);
    }
  }

  void release_host(typename Backend::stream on, void*& block) {
    if (block != nullptr) host_->deallocate(on, block);
    block = nullptr;
  }

  Context context_on(engine_type& engine) const { return Context(*backend_, engine.compute_stream(), fault_); }

  template <class BeforeCompute, class AfterCompute>
  void forward(engine_type& engine, std::size_t base, task const& t, next_use_function const& next_use,
               BeforeCompute& before_compute, AfterCompute& after_compute) {
    std::size_t const s = t.shard;
    shard const& shard = graph_[s];
    bool const last = s + 1 == graph_.size();
    detail::expects(!state_.kept_checkpoint[s] && !state_.kept_forward[s],
                    "model_runner: a checkpoint or forward activations are kept that no backward has read");
    auto const spill = engine.spill_stream();
    before_enqueue(t, [&] { engine.acquire(base + s, /*with_state=*/last, next_use); }); // its backward comes next
    std::byte* scratch = before_enqueue(t, [&] { return engine.allocate_scratch(shard.scratch.bytes, next_use); });
    std::optional<typename engine_type::kept_id> const kept =
        last ? std::nullopt : room_for_output(engine, base, t, scratch, activation_bytes(shard.end_layer), next_use);
    std::optional<taken_activation> input = s > 0 ? take_handoff(engine) : std::nullopt;
    // Its input kept as the backward's checkpoint: where it was taken here, it
    // stays; from home or another device, a block is found beside the queued
    // tasks' shards.
    std::optional<checkpoint_plan> checkpoint;
    // (Beside kept forward activations too: it is what their backward
    // recomputes from, here, if they are given up.)
    if (keep_checkpoints_ && activation_bytes(shard.first_layer) > 0) {
      checkpoint = checkpoint_plan{base + s, std::nullopt};
      if (!input || input->holder != &engine) {
        try {
          checkpoint->second = engine.keep_activation(activation_bytes(shard.first_layer), t.model, next_use, base + s);
        } catch (...) { // as room_for_output: the task fails with what it holds given back
          abandon_task(*backend_, engine, base + s, scratch);
          give_back(engine, input); // taken from another device
          discard(engine, kept);
          fail_task(t);
        }
      }
    }
    bool handed_on = false; // the scratch was freed in stream order, or kept for the backward
    try {
      copy_input_in(engine, shard, s, scratch, last, input, checkpoint, t.model);
      event const done = compute_forward(engine, base, s, scratch, before_compute, after_compute);
      std::size_t const output_bytes = activation_bytes(shard.end_layer);
      if (!last) {
        event const last_use = send_output_on(engine, s, scratch, done, kept);
        handed_on = true;
        keep_or_release_forward(engine, base, t, scratch, last_use);
        return;
      }
      // The per-sample losses come home for the loss curve; the scratch stays, or
      // goes now when the backward will recompute.
      void* losses = host_->allocate(spill, output_bytes);
      try {
        backend_->copy_async(spill, losses, scratch + shard.scratch.activations.back(), output_bytes);
      } catch (...) {
        host_->deallocate(spill, losses); // the block is this task's alone: give it back with the task
        throw;
      }
      // As the model's own work: skipped once it has failed (its compute was
      // skipped then, and `losses` holds no loss of its own).
      backend_->enqueue(spill, recording_faults(
                                   [this, losses, batch = model_.batch(), step = t.minibatch] {
                                     float sum = 0.0F;
                                     for (std::size_t b = 0; b < batch; ++b)
                                       sum += static_cast<float const*>(losses)[b];
                                     float const mean = sum / static_cast<float>(batch);
                                     losses_.push_back(mean);
                                     if (!std::isfinite(mean))
                                       fault_->record("the loss became " + std::to_string(mean) + " at minibatch " +
                                                      std::to_string(step));
                                   },
                                   fault_));
      host_->deallocate(spill, losses);
      handed_on = true;
      if (keep_last_activations_) {
        state_.last_scratch = scratch;
        state_.last_scratch_engine = &engine;
        state_.last_scratch_done = done;
      } else {
        keep_or_release_forward(engine, base, t, scratch, done);
      }
    } catch (...) {
      // The scratch first: its free orders the spill stream, where the kept
      // blocks below are freed, after every read enqueued on the prefetch stream.
      if (!handed_on) abandon_task(*backend_, engine, base + s, scratch);
      give_back(engine, input);
      discard(engine, kept);
      if (checkpoint && checkpoint->second) discard(engine, checkpoint->second); // filled or not
      fail_task(t);
    }
  }

  // The compute half of a shard's forward, once its inputs are being copied in
  // on the prefetch stream: compute waits for them, runs the layers, and the
  // spill stream waits for compute. Returns the event of compute's end.
  template <class BeforeCompute, class AfterCompute>
  event compute_forward(engine_type& engine, std::size_t base, std::size_t s, std::byte* scratch,
                        BeforeCompute& before_compute, AfterCompute& after_compute) {
    auto const compute = engine.compute_stream();
    backend_->wait_event(compute, backend_->record_event(engine.prefetch_stream()));
    before_compute();
    Context context = context_on(engine);
    run_shard_forward(model_, context, graph_[s], engine.extent(base + s), scratch, guard_layers_);
    event const done = backend_->record_event(compute);
    engine.used_by_compute(base + s, done);
    after_compute(base + s);
    backend_->wait_event(engine.spill_stream(), done);
    return done;
  }

  // A shard's output goes home as the next shard's input checkpoint (spill
  // stream), and into `kept` on the device if it has a block. Returns the
  // event the scratch's free must wait for (on the spill stream, which the
  // copy home is already on).
  event send_output_on(engine_type& engine, std::size_t s, std::byte* scratch, event const& done,
                       std::optional<typename engine_type::kept_id> const& kept) {
    auto const spill = engine.spill_stream();
    shard const& shard = graph_[s];
    std::size_t const output_bytes = activation_bytes(shard.end_layer);
    std::byte* const output = scratch + shard.scratch.activations.back();
    state_.checkpoint[s + 1] = host_->allocate(spill, output_bytes);
    backend_->copy_async(spill, state_.checkpoint[s + 1], output, output_bytes);
    activation_bytes_out_ += output_bytes;
    state_.checkpoint_ready[s + 1] = backend_->record_event(spill);
    return keep_output(engine, kept, output, output_bytes, done);
  }

  // A training forward's scratch, freed behind `last_use`, or kept on the
  // device for the shard's backward (keep_forward_activations).
  void keep_or_release_forward(engine_type& engine, std::size_t base, task const& t, std::byte* scratch,
                               event const& last_use) {
    if (!keep_forward_activations_) {
      engine.release_scratch(scratch, last_use);
      return;
    }
    try {
      kept_forward_plan const plan = kept_forward_rule_ ? kept_forward_rule_(t.shard, engine) : kept_forward_plan{};
      state_.kept_forward[t.shard] = kept_handoff{
          &engine, engine.keep_forward_activations(scratch, graph_[t.shard].scratch.bytes, t.model, base + t.shard,
                                                   last_use, plan.spill_home, plan.before_shards)};
    } catch (...) { // not kept (no memory for its record): freed; the backward recomputes
      engine.release_scratch(scratch, last_use);
    }
  }

  // An evaluation task: the forward of its shard, with each boundary's input
  // released as soon as it is read (no backward follows); the last shard sends
  // the logits and per-sample losses home, where they are scored on the spill
  // stream. Nothing of the model's state changes.
  template <class BeforeCompute, class AfterCompute>
  void evaluate(engine_type& engine, std::size_t base, task const& t, next_use_function const& next_use,
                BeforeCompute& before_compute, AfterCompute& after_compute) {
    std::size_t const s = t.shard;
    shard const& shard = graph_[s];
    bool const last = s + 1 == graph_.size();
    auto const prefetch = engine.prefetch_stream(), spill = engine.spill_stream();
    before_enqueue(t, [&] { engine.acquire(base + s, /*with_state=*/false, next_use); });
    std::byte* scratch = before_enqueue(t, [&] { return engine.allocate_scratch(shard.scratch.bytes, next_use); });
    std::optional<typename engine_type::kept_id> const kept =
        last ? std::nullopt : room_for_output(engine, base, t, scratch, activation_bytes(shard.end_layer), next_use);
    std::optional<taken_activation> input = s > 0 ? take_handoff(engine) : std::nullopt;
    try {
      // The home copy is read by that copy only, or, where the input was kept
      // here, by nothing: this device's spill stream wrote it and frees it.
      // (Kept on another device, that device's spill stream wrote it: freed
      // there, so that this device's copy need not wait for that write.)
      engine_type* const kept_on = input ? input->holder : nullptr;
      copy_input_in(engine, shard, s, scratch, last, input, std::nullopt, t.model);
      release_host(kept_on != nullptr ? kept_on->spill_stream() : prefetch, state_.checkpoint[s]);
      event const done = compute_forward(engine, base, s, scratch, before_compute, after_compute);
      if (!last) {
        engine.release_scratch(scratch, send_output_on(engine, s, scratch, done, kept));
        return;
      }
      std::size_t const output_bytes = activation_bytes(shard.end_layer);
      std::size_t const batch = model_.batch(), classes = this->classes();
      std::size_t const logits_bytes = batch * classes * sizeof(float);
      void* logits = host_->allocate(spill, logits_bytes);
      void* losses = nullptr;
      try {
        losses = host_->allocate(spill, output_bytes);
        // The loss layer is the shard's last: its input is the logits.
        backend_->copy_async(spill, logits, scratch + shard.scratch.activations[shard.layer_count() - 1], logits_bytes);
        backend_->copy_async(spill, losses, scratch + shard.scratch.activations.back(), output_bytes);
      } catch (...) {
        host_->deallocate(spill, logits); // this task's alone: given back with the task
        host_->deallocate(spill, losses);
        throw;
      }
      void* labels = state_.labels;
      state_.labels = nullptr;
      backend_->enqueue(spill, recording_faults( // as the loss above
                                   [this, logits, losses, labels, batch, classes] {
                                     scores_.add(static_cast<float const*>(logits), static_cast<float const*>(losses),
                                                 static_cast<std::int32_t const*>(labels), batch, classes);
                                   },
                                   fault_));
      host_->deallocate(spill, logits);
      host_->deallocate(spill, losses);
      host_->deallocate(spill, labels);
      engine.release_scratch(scratch, done);
    } catch (...) {
      abandon_task(*backend_, engine, base + s, scratch); // first, as in forward
      give_back(engine, input);
      discard(engine, kept);
      fail_task(t);
    }
  }

  template <class BeforeCompute, class AfterCompute>
  void backward(engine_type& engine, std::size_t base, task const& t, next_use_function const& next_use,
                BeforeCompute& before_compute, AfterCompute& after_compute) {
    std::size_t const s = t.shard;
    shard const& shard = graph_[s];
    bool const last = s + 1 == graph_.size();
    auto const prefetch = engine.prefetch_stream(), compute = engine.compute_stream(), spill = engine.spill_stream();
    before_enqueue(t, [&] { engine.acquire(base + s, /*with_state=*/true, next_use); });
    // The forward's activations, where they stayed on this device: its scratch
    // becomes this task's, and nothing is recomputed.
    std::optional<taken_activation> const forward_activations =
        state_.kept_forward[s] && state_.kept_forward[s]->engine == &engine
            ? engine.take_activation(state_.kept_forward[s]->id)
            : std::nullopt;
    if (forward_activations) state_.kept_forward[s].reset();
    bool const last_reused = last && state_.last_scratch != nullptr && state_.last_scratch_engine == &engine;
    bool const reuse = last_reused || forward_activations.has_value();
    std::byte* scratch = last_reused ? state_.last_scratch : nullptr;
    if (forward_activations) scratch = forward_activations->data;
    // The last shard's forward ran elsewhere: its activations are dropped there.
    if (last && !last_reused && state_.last_scratch != nullptr)
      state_.last_scratch_engine->release_scratch(state_.last_scratch, state_.last_scratch_done);
    state_.last_scratch = nullptr;
    state_.last_scratch_engine = nullptr;
    if (!reuse) scratch = before_enqueue(t, [&] { return engine.allocate_scratch(shard.scratch.bytes, next_use); });
    std::optional<typename engine_type::kept_id> const kept =
        s > 0 ? room_for_output(engine, base, t, scratch, activation_bytes(shard.first_layer), next_use) : std::nullopt;
    // Else the forward's activations spilled to host memory: copied into
    // this task's scratch, and again nothing is recomputed.
    std::optional<spilled_activation> from_home = reuse ? std::nullopt : take_spilled_forward(s);
    bool const recompute = !reuse && !from_home;
    if (reuse) drop_quietly(state_.kept_forward[s]); // (the single-model trainer's last shard keeps none)
    // The checkpoint it recomputes from and the gradient from the shard after
    // this one, where they were kept here.
    // (With the forward's activations, it needs no checkpoint.)
    if (!recompute) drop_quietly(state_.kept_checkpoint[s]);
    std::optional<taken_activation> checkpoint = recompute ? take_checkpoint(engine, s) : std::nullopt;
    std::optional<taken_activation> gradient = last ? std::nullopt : take_handoff(engine);
    try {
      // Where it was kept (here or on another device), that device's spill
      // stream wrote its home copy: freed there below.
      engine_type* const gradient_kept_on = gradient ? gradient->holder : nullptr;
      // Kept forward activations: the prefetch stream writes the gradient
      // below into that scratch only behind the forward's compute on it.
      // Reusing the forward's scratch, nothing reads the home checkpoint now:
      // it is freed on the prefetch stream behind its writer.
      if (forward_activations) backend_->wait_event(prefetch, forward_activations->written);
      if (from_home) {
        backend_->wait_event(prefetch, from_home->written);
        backend_->copy_async(prefetch, scratch, from_home->data, from_home->bytes);
        forward_activation_bytes_in_ += from_home->bytes;
        host_->deallocate(prefetch, from_home->data);
        from_home.reset();
      }
      if (!recompute) backend_->wait_event(prefetch, state_.checkpoint_ready[s]);
      if (recompute) {
        if (checkpoint) {
          copy_taken_in(engine, checkpoint, scratch + shard.scratch.activations[0]);
          if (last)
            backend_->copy_async(prefetch, scratch + shard.scratch.labels, state_.labels,
                                 model_.batch() * sizeof(std::int32_t));
          // Its home copy is freed below on this stream: behind its writer, perhaps another device's stream.
          backend_->wait_event(prefetch, state_.checkpoint_ready[s]);
        } else {
          copy_checkpoint_in(prefetch, shard, s, scratch, last);
        }
      }
      if (gradient) {
        copy_taken_in(engine, gradient, scratch + shard.scratch.gradients[0]);
      } else if (!last) {
        backend_->wait_event(prefetch, state_.gradient_ready[s]);
        backend_->copy_async(prefetch, scratch + shard.scratch.gradients[0], state_.gradient[s],
                             activation_bytes(shard.end_layer));
        activation_bytes_in_ += activation_bytes(shard.end_layer);
      }
      release_host(prefetch, state_.checkpoint[s]); // its last readers are on the prefetch stream
      // The gradient's home copy was read there too, or, where it was kept,
      // by nothing: the spill stream that wrote it frees it.
      release_host(gradient_kept_on != nullptr ? gradient_kept_on->spill_stream() : prefetch, state_.gradient[s]);
      if (last) release_host(prefetch, state_.labels);
      backend_->wait_event(compute, backend_->record_event(prefetch));
      before_compute();
      std::byte* extent = engine.extent(base + s);
      Context context = context_on(engine);
      if (recompute) run_shard_forward(model_, context, shard, extent, scratch, guard_layers_);
      std::size_t const input_gradient = run_shard_backward(model_, context, shard, extent, scratch, guard_layers_);
      if (shard.parameter_count > 0) {
        auto* parameters = reinterpret_cast<float*>(extent);
        std::size_t const n = shard.parameter_count;
        optimizer_.enqueue_step(context, parameters, reinterpret_cast<float const*>(extent + shard.home_bytes()),
                                parameters + n, n, step_offset_ + t.minibatch + 1);
      }
      event const done = backend_->record_event(compute);
      engine.used_by_compute(base + s, done);
      after_compute(base + s);
      if (shard.parameter_count > 0) {
        if (defer_write_backs_)
          deferred_write_back_ = {base + s, done};
        else
          engine.write_back(base + s, done);
      }
      backend_->wait_event(spill, done);
      event scratch_done = done;
      if (s > 0) {
        std::size_t const bytes = activation_bytes(shard.first_layer);
        state_.gradient[s - 1] = host_->allocate(spill, bytes);
        backend_->copy_async(spill, state_.gradient[s - 1], scratch + input_gradient, bytes);
        activation_bytes_out_ += bytes;
        state_.gradient_ready[s - 1] = backend_->record_event(spill);
        scratch_done = keep_output(engine, kept, scratch + input_gradient, bytes, done);
      }
      engine.release_scratch(scratch, scratch_done);
    } catch (...) {
      abandon_task(*backend_, engine, base + s, scratch); // first, as in forward
      give_back(engine, checkpoint);
      give_back(engine, gradient);
      give_back(from_home, spill);
      discard(engine, kept);
      fail_task(t);
    }
  }

  // The shard's input checkpoint (and, for the shard with the loss, the labels)
  // into its scratch, on the prefetch stream, once the checkpoint is written.
  void copy_checkpoint_in(typename Backend::stream prefetch, shard const& shard, std::size_t s, std::byte* scratch,
                          bool last) {
    backend_->wait_event(prefetch, state_.checkpoint_ready[s]);
    backend_->copy_async(prefetch, scratch + shard.scratch.activations[0], state_.checkpoint[s],
                         activation_bytes(shard.first_layer));
    activation_bytes_in_ += activation_bytes(shard.first_layer);
    if (last)
      backend_->copy_async(prefetch, scratch + shard.scratch.labels, state_.labels,
                           model_.batch() * sizeof(std::int32_t));
  }

  // Bytes of the activation entering layer `layer` (or leaving the model at the end).
  [[nodiscard]] std::size_t activation_bytes(std::size_t layer) const {
    std::size_t const features = layer < model_.size() ? model_.footprint(layer).input_features
                                                       : model_.footprint(model_.size() - 1).output_features;
    return model_.batch() * features * sizeof(float);
  }

  Backend* backend_;
  host_pool<Backend>* host_;
  sequential_model<Context> model_;
  any_optimizer<Context> optimizer_;
  shard_chain graph_;
  shard_homes<Backend> homes_;
  std::vector<float> losses_;
  std::shared_ptr<fault_record> fault_;
  step_state state_;
  bool guard_layers_ = false;
  bool keep_last_activations_;
  bool keep_activations_ = false;
  bool keep_checkpoints_ = false;
  bool copy_between_devices_ = false;
  bool keep_forward_activations_ = false;
  std::optional<kept_handoff> handoff_; // the model's last boundary output, where it was kept on a device
  bool defer_write_backs_ = false;
  bool write_back_on_eviction_ = false;
  std::size_t step_offset_ = 0; // minibatches trained before this runner (a resumed run)
  std::uint64_t activation_bytes_in_ = 0, activation_bytes_out_ = 0, forward_activation_bytes_in_ = 0;
  kept_forward_rule kept_forward_rule_;
  std::optional<std::pair<std::size_t, event>> deferred_write_back_;
  std::optional<std::pair<std::size_t, std::size_t>> staged_minibatch_; // (segment, minibatch)
  evaluation_scores scores_;                                            // written by the spill streams, in chain order
};

} // namespace hydra::detail
