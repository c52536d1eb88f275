// Trains one model on one device whose budget may be far smaller than the
// model's footprint: the model is partitioned into shards (shard_graph), and each
// minibatch runs as the chain forward 0..S-1, backward S-1..0 with the optimizer
// step fused into each backward task. The spill engine makes each shard resident
// just in time and prefetches the next task's shard behind the running one.
//
// Activations: the input of every shard is checkpointed to host memory during
// forward; backward recomputes the shard's forward from it (Hydra's default), then
// runs its backward. The last shard's forward is followed directly by its backward,
// so its activations (and its state) simply stay on the device in between.
//
// The host thread only enqueues work; it waits on the device only to keep at most
// two minibatches in flight, and at the end.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/graph/shard_graph.hpp"
#include "hydra/memory/device_pool.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/spill_engine.hpp"
#include "hydra/train/minibatch.hpp"
#include "hydra/train/optimizer.hpp"

namespace hydra {

struct single_model_options {
  std::size_t device = 0;
  std::size_t budget = 0;         // device bytes the model may use; 0: the device's whole capacity
  std::size_t shard_count = 0;    // 0: greedy partition (fewest shards); else balanced into this many
  std::size_t prefetch_depth = 1; // tasks ahead whose shards are fetched behind the running one; 0: none
  std::uint64_t seed = 1;         // initial parameters (layer k uses seed + k)
  std::optional<std::uint8_t> poison_freed_blocks{}; // test aid: fill freed device and host blocks
};

struct training_report {
  std::size_t steps = 0;
  std::chrono::nanoseconds wall{0};
  std::chrono::nanoseconds compute_busy{0};
  std::chrono::nanoseconds compute_waiting{0}; // compute blocked on prefetches
  spill_statistics spill;
  pool_statistics device_memory;
  // Time compute waited on prefetch, over compute's total (busy + waiting).
  [[nodiscard]] double exposed_wait_fraction() const {
    auto const total = compute_busy + compute_waiting;
    return total.count() == 0 ? 0.0 : static_cast<double>(compute_waiting.count()) / static_cast<double>(total.count());
  }
};

template <optimizer Optimizer, class Backend = host_backend, class Context = host_execution_context>
class single_model_trainer {
public:
  single_model_trainer(Backend& backend, sequential_model<Context> model, Optimizer optimizer,
                       single_model_options options = {})
      : backend_(&backend), model_(validated(std::move(model))), optimizer_(optimizer), options_(options),
        graph_(partition(model_, options_, backend)),
        device_pool_(backend, options_.device, options_.budget == 0 ? std::nullopt : std::optional(options_.budget)),
        host_pool_(backend, host_bytes_needed()), engine_(backend, device_pool_, host_pool_, options_.device) {
    if (options_.poison_freed_blocks) {
      device_pool_.poison_freed_blocks(options_.poison_freed_blocks);
      host_pool_.poison_freed_blocks(options_.poison_freed_blocks);
    }
    std::vector<float> const initial = model_.initial_parameters(options_.seed);
    for (shard const& s : graph_.shards()) {
      std::vector<float> home(s.parameter_count * (1 + Optimizer::state_per_parameter), 0.0F);
      std::copy_n(initial.begin() + static_cast<std::ptrdiff_t>(s.parameter_offset), s.parameter_count, home.begin());
      engine_.add_shard(s.extent_bytes(), s.parameter_bytes(), std::move(home));
    }
  }

  single_model_trainer(single_model_trainer const&) = delete;
  single_model_trainer& operator=(single_model_trainer const&) = delete;
  // Drains the streams before the pools go. An error a stream still holds was
  // either reported by train() already or is moot now; it must not escape here.
  ~single_model_trainer() {
    try {
      engine_.synchronize();
    } catch (...) {
      try {
        engine_.synchronize(); // the first error is cleared; wait for the rest
      } catch (...) {
      }
    }
  }

  // Runs `steps` minibatches from `data` (asked for steps done_, done_+1, ...).
  void train(std::size_t steps, data_source const& data) {
    auto const started = std::chrono::steady_clock::now();
    total_tasks_ = task_position_ + steps * tasks_per_step();
    std::vector<typename Backend::event> step_done;
    for (std::size_t step = 0; step < steps; ++step) {
      run_step(data(steps_done_));
      ++steps_done_;
      step_done.push_back(backend_->record_event(engine_.compute_stream()));
      if (step >= 2) backend_->synchronize(step_done[step - 2]); // at most two minibatches in flight
    }
    engine_.synchronize();
    wall_ += std::chrono::steady_clock::now() - started;
  }

  // The trained parameters, in the model's layer order (waits for the device).
  [[nodiscard]] std::vector<float> parameters() {
    engine_.synchronize();
    std::vector<float> flat(model_.parameter_count());
    for (std::size_t id = 0; id < graph_.size(); ++id) {
      auto const* home = reinterpret_cast<float const*>(engine_.table()[id].home);
      std::copy_n(home, graph_[id].parameter_count,
                  flat.begin() + static_cast<std::ptrdiff_t>(graph_[id].parameter_offset));
    }
    return flat;
  }

  // Mean loss of every minibatch so far (valid after train() returned).
  [[nodiscard]] std::vector<float> const& losses() const noexcept { return losses_; }
  [[nodiscard]] shard_graph const& shards() const noexcept { return graph_; }
  [[nodiscard]] spill_engine<Backend> const& engine() const noexcept { return engine_; }

  [[nodiscard]] training_report report() const {
    auto const compute = backend_->statistics(engine_.compute_stream());
    return {steps_done_,          std::chrono::duration_cast<std::chrono::nanoseconds>(wall_),
            compute.busy,         compute.waiting,
            engine_.statistics(), device_pool_.statistics()};
  }

  // Bytes to train `model` in memory, unsharded: all state plus all activations.
  [[nodiscard]] static std::size_t footprint(sequential_model<Context> const& model) {
    partition_input in = describe(model, std::numeric_limits<std::size_t>::max());
    return detail::make_shard(in, 0, model.size(), 0).working_set_bytes();
  }

private:
  using event = typename Backend::event;
  using shard_id = std::size_t;

  // Checked before anything is reserved on the device.
  static sequential_model<Context> validated(sequential_model<Context> model) {
    detail::expects(model.footprint(model.size() - 1).output_features == 1,
                    "single_model_trainer: the last layer must be a loss (one output per sample); it is " +
                        model.layer(model.size() - 1).name());
    return model;
  }

  static partition_input describe(sequential_model<Context> const& model, std::size_t budget) {
    partition_input in{{}, {}, model.batch(), Optimizer::state_per_parameter, budget};
    for (std::size_t at = 0; at < model.size(); ++at) {
      in.layers.push_back(model.footprint(at));
      in.names.push_back(model.layer(at).name());
    }
    return in;
  }

  static shard_graph partition(sequential_model<Context> const& model, single_model_options const& options,
                               Backend& backend) {
    std::size_t const budget = options.budget == 0 ? backend.device_capacity(options.device) : options.budget;
    partition_input const in = describe(model, budget);
    return options.shard_count == 0 ? shard_graph::greedy(in) : shard_graph::balanced(in, options.shard_count);
  }

  // Homes, and two minibatches' worth of checkpoints, gradients, labels and losses.
  std::size_t host_bytes_needed() const {
    std::size_t homes = 0, per_step = 0;
    std::size_t const batch = model_.batch();
    for (shard const& s : graph_.shards()) {
      homes += align_up(s.home_bytes(), allocation_alignment);
      std::size_t const boundary =
          align_up(batch * model_.footprint(s.first_layer).input_features * sizeof(float), allocation_alignment);
      per_step += 2 * boundary; // its input checkpoint and the gradient arriving at its output
    }
    per_step += 2 * align_up(batch * sizeof(float), allocation_alignment); // labels, losses
    return homes + 3 * per_step;
  }

  [[nodiscard]] std::size_t tasks_per_step() const noexcept { return 2 * graph_.size(); }

  // The shard of the task at `position` in the whole run.
  [[nodiscard]] shard_id shard_at(std::size_t position) const {
    std::size_t const within = position % tasks_per_step();
    return within < graph_.size() ? within : tasks_per_step() - 1 - within;
  }

  // Tasks from the running one until `id` is needed again (Belady's lookahead).
  [[nodiscard]] std::size_t next_use(shard_id id) const {
    for (std::size_t ahead = 1; ahead <= tasks_per_step(); ++ahead) {
      if (task_position_ + ahead >= total_tasks_) break;
      if (shard_at(task_position_ + ahead) == id) return ahead;
    }
    return std::numeric_limits<std::size_t>::max();
  }

  // Fetches the shards of the next `prefetch_depth` tasks, nearest first, each
  // pinned with the running one so that a later prefetch cannot evict an earlier.
  void prefetch_next(shard_id running) {
    std::vector<shard_id> pinned{running};
    for (std::size_t ahead = 1; ahead <= options_.prefetch_depth; ++ahead) {
      std::size_t const position = task_position_ + ahead;
      if (position >= total_tasks_) return;
      bool const backward = position % tasks_per_step() >= graph_.size();
      pinned.push_back(shard_at(position));
      engine_.pin(pinned);
      if (!engine_.prefetch(shard_at(position), backward, lookahead())) return; // no room: the rest waits too
    }
  }

  [[nodiscard]] typename spill_engine<Backend>::next_use_function lookahead() const {
    return [this](shard_id id) { return next_use(id); };
  }

  // One minibatch: stage its data, then the 2S tasks of its chain.
  void run_step(minibatch batch_data) {
    std::size_t const batch = model_.batch();
    std::size_t const inputs = model_.input_features();
    std::size_t const classes = model_.footprint(model_.size() - 1).input_features;
    check_minibatch(batch_data, batch, inputs, classes);
    auto shared = std::make_shared<minibatch const>(std::move(batch_data));
    step_state state(graph_.size());
    auto prefetch = engine_.prefetch_stream();
    state.checkpoint[0] = host_pool_.allocate(prefetch, batch * inputs * sizeof(float));
    state.labels = host_pool_.allocate(prefetch, batch * sizeof(std::int32_t));
    backend_->enqueue(prefetch, [shared, input = state.checkpoint[0], labels = state.labels] {
      std::memcpy(input, shared->inputs.data(), shared->inputs.size() * sizeof(float));
      std::memcpy(labels, shared->labels.data(), shared->labels.size() * sizeof(std::int32_t));
    });
    state.checkpoint_ready[0] = backend_->record_event(prefetch);
    for (shard_id s = 0; s < graph_.size(); ++s, ++task_position_) forward_task(s, state);
    for (shard_id s = graph_.size(); s-- > 0; ++task_position_) backward_task(s, state);
  }

  static void check_minibatch(minibatch const& data, std::size_t batch, std::size_t inputs, std::size_t classes) {
    if (data.inputs.size() != batch * inputs || data.labels.size() != batch) {
      throw invalid_argument("minibatch: expected " + std::to_string(batch) + " samples of " + std::to_string(inputs) +
                             " features (" + std::to_string(batch * inputs) + " floats) and " + std::to_string(batch) +
                             " labels, got " + std::to_string(data.inputs.size()) + " floats and " +
                             std::to_string(data.labels.size()) + " labels");
    }
    for (std::size_t b = 0; b < batch; ++b) {
      if (data.labels[b] < 0 || static_cast<std::size_t>(data.labels[b]) >= classes) {
        throw invalid_argument("minibatch: label " + std::to_string(data.labels[b]) + " of sample " +
                               std::to_string(b) + " is outside 0.." + std::to_string(classes - 1));
      }
    }
  }

  // Host blocks and events of one minibatch's boundaries.
  struct step_state {
    explicit step_state(std::size_t shards)
        : checkpoint(shards), checkpoint_ready(shards), gradient(shards), gradient_ready(shards) {}
    std::vector<void*> checkpoint; // input of shard s
    std::vector<event> checkpoint_ready;
    std::vector<void*> gradient; // dLoss/d output of shard s
    std::vector<event> gradient_ready;
    void* labels = nullptr;
    std::byte* last_scratch = nullptr; // the last shard's activations, kept from forward to backward
  };

  void forward_task(shard_id s, step_state& state) {
    shard const& shard = graph_[s];
    bool const last = s + 1 == graph_.size();
    auto const prefetch = engine_.prefetch_stream(), compute = engine_.compute_stream(), spill = engine_.spill_stream();
    engine_.pin({s});
    engine_.acquire(s, /*with_state=*/last, lookahead()); // the last shard's backward comes next
    std::byte* scratch = engine_.allocate_scratch(shard.scratch.bytes, lookahead());
    std::size_t const input_bytes = activation_bytes(shard.first_layer);
    backend_->wait_event(prefetch, state.checkpoint_ready[s]);
    backend_->copy_async(prefetch, scratch + shard.scratch.activations[0], state.checkpoint[s], input_bytes);
    if (last) {
      backend_->copy_async(prefetch, scratch + shard.scratch.labels, state.labels,
                           model_.batch() * sizeof(std::int32_t));
      host_pool_.deallocate(prefetch, state.checkpoint[s]); // no recompute for the last shard
      host_pool_.deallocate(prefetch, state.labels);
    }
    backend_->wait_event(compute, backend_->record_event(prefetch));
    run_forward(shard, engine_.extent(s), scratch);
    event const done = backend_->record_event(compute);
    engine_.used_by_compute(s, done);
    prefetch_next(s);
    backend_->wait_event(spill, done);
    std::size_t const output_bytes = activation_bytes(shard.end_layer);
    if (!last) {
      state.checkpoint[s + 1] = host_pool_.allocate(spill, output_bytes);
      backend_->copy_async(spill, state.checkpoint[s + 1], scratch + shard.scratch.activations.back(), output_bytes);
      state.checkpoint_ready[s + 1] = backend_->record_event(spill);
      engine_.release_scratch(scratch, done);
      return;
    }
    // The per-sample losses come home for the loss curve; the scratch stays.
    state.last_scratch = scratch;
    void* losses = host_pool_.allocate(spill, output_bytes);
    backend_->copy_async(spill, losses, scratch + shard.scratch.activations.back(), output_bytes);
    backend_->enqueue(spill, [this, losses, batch = model_.batch()] {
      float sum = 0.0F;
      for (std::size_t b = 0; b < batch; ++b) sum += static_cast<float const*>(losses)[b];
      losses_.push_back(sum / static_cast<float>(batch));
    });
    host_pool_.deallocate(spill, losses);
  }

  void backward_task(shard_id s, step_state& state) {
    shard const& shard = graph_[s];
    bool const last = s + 1 == graph_.size();
    auto const prefetch = engine_.prefetch_stream(), compute = engine_.compute_stream(), spill = engine_.spill_stream();
    engine_.pin({s});
    engine_.acquire(s, /*with_state=*/true, lookahead());
    std::byte* scratch = state.last_scratch;
    if (!last) {
      scratch = engine_.allocate_scratch(shard.scratch.bytes, lookahead());
      backend_->wait_event(prefetch, state.checkpoint_ready[s]);
      backend_->copy_async(prefetch, scratch + shard.scratch.activations[0], state.checkpoint[s],
                           activation_bytes(shard.first_layer));
      backend_->wait_event(prefetch, state.gradient_ready[s]);
      backend_->copy_async(prefetch, scratch + shard.scratch.gradients[0], state.gradient[s],
                           activation_bytes(shard.end_layer));
      host_pool_.deallocate(prefetch, state.checkpoint[s]);
      host_pool_.deallocate(prefetch, state.gradient[s]);
    }
    backend_->wait_event(compute, backend_->record_event(prefetch));
    std::byte* extent = engine_.extent(s);
    if (!last) run_forward(shard, extent, scratch); // recompute from the checkpoint
    std::size_t const input_gradient = run_backward(shard, extent, scratch, last);
    if (shard.parameter_count > 0) {
      Context context(*backend_, compute);
      context.enqueue([extent, step = steps_done_ + 1, optimizer = optimizer_, n = shard.parameter_count,
                       home_bytes = shard.home_bytes()] {
        auto* parameters = reinterpret_cast<float*>(extent);
        optimizer.step(Context::thrust_policy(), parameters, reinterpret_cast<float const*>(extent + home_bytes),
                       parameters + n, n, step);
      });
    }
    event const done = backend_->record_event(compute);
    engine_.used_by_compute(s, done);
    prefetch_next(s);
    if (shard.parameter_count > 0) engine_.write_back(s, done);
    backend_->wait_event(spill, done);
    if (s > 0) {
      std::size_t const bytes = activation_bytes(shard.first_layer);
      state.gradient[s - 1] = host_pool_.allocate(spill, bytes);
      backend_->copy_async(spill, state.gradient[s - 1], scratch + input_gradient, bytes);
      state.gradient_ready[s - 1] = backend_->record_event(spill);
    }
    engine_.release_scratch(scratch, done);
  }

  // Bytes of the activation entering layer `layer` (or leaving the model at the end).
  [[nodiscard]] std::size_t activation_bytes(std::size_t layer) const {
    std::size_t const features = layer < model_.size() ? model_.footprint(layer).input_features
                                                       : model_.footprint(model_.size() - 1).output_features;
    return model_.batch() * features * sizeof(float);
  }

  [[nodiscard]] float* parameters_of(shard const& shard, std::byte* extent, std::size_t layer) const {
    return reinterpret_cast<float*>(extent) + (model_.parameter_offset(layer) - shard.parameter_offset);
  }

  void run_forward(shard const& shard, std::byte* extent, std::byte* scratch) {
    Context context(*backend_, engine_.compute_stream());
    for (std::size_t k = 0; k < shard.layer_count(); ++k) {
      std::size_t const layer = shard.first_layer + k;
      forward_arguments arguments;
      arguments.batch = model_.batch();
      arguments.input = reinterpret_cast<float const*>(scratch + shard.scratch.activations[k]);
      arguments.output = reinterpret_cast<float*>(scratch + shard.scratch.activations[k + 1]);
      arguments.parameters = parameters_of(shard, extent, layer);
      arguments.workspace = scratch + shard.scratch.workspace;
      // Only the shard holding the loss has labels on the device.
      if (shard.end_layer == model_.size())
        arguments.labels = reinterpret_cast<std::int32_t const*>(scratch + shard.scratch.labels);
      model_.layer(layer).forward(context, arguments);
    }
  }

  // Backward through the shard's layers, last to first; returns the scratch
  // offset that holds dLoss/d(shard input) afterwards.
  std::size_t run_backward(shard const& shard, std::byte* extent, std::byte* scratch, bool last) {
    Context context(*backend_, engine_.compute_stream());
    std::size_t incoming = shard.scratch.gradients[0], outgoing = shard.scratch.gradients[1];
    float* gradients = reinterpret_cast<float*>(extent + shard.home_bytes());
    for (std::size_t k = shard.layer_count(); k-- > 0;) {
      std::size_t const layer = shard.first_layer + k;
      backward_arguments arguments;
      arguments.batch = model_.batch();
      arguments.input = reinterpret_cast<float const*>(scratch + shard.scratch.activations[k]);
      arguments.output = reinterpret_cast<float const*>(scratch + shard.scratch.activations[k + 1]);
      bool const starts_chain = last && k + 1 == shard.layer_count();
      arguments.output_gradient = starts_chain ? nullptr : reinterpret_cast<float const*>(scratch + incoming);
      arguments.input_gradient = reinterpret_cast<float*>(scratch + outgoing);
      arguments.parameters = parameters_of(shard, extent, layer);
      arguments.parameter_gradients = gradients + (model_.parameter_offset(layer) - shard.parameter_offset);
      arguments.workspace = scratch + shard.scratch.workspace;
      if (last) arguments.labels = reinterpret_cast<std::int32_t const*>(scratch + shard.scratch.labels);
      model_.layer(layer).backward(context, arguments);
      std::swap(incoming, outgoing);
    }
    return incoming;
  }

  Backend* backend_;
  sequential_model<Context> model_;
  Optimizer optimizer_;
  single_model_options options_;
  shard_graph graph_;
  device_pool<Backend> device_pool_;
  host_pool<Backend> host_pool_;
  spill_engine<Backend> engine_; // last: its streams drain before the pools go
  std::vector<float> losses_;
  std::size_t steps_done_ = 0;
  std::size_t task_position_ = 0;
  std::size_t total_tasks_ = 0;
  std::chrono::steady_clock::duration wall_{};
};

} // namespace hydra
