// Trains one model on one device whose budget may be far smaller than the
// model's footprint: the model is partitioned into shards (shard_chain), and each
// minibatch runs as the chain forward 0..S-1, backward S-1..0 with the optimizer
// step fused into each backward task. The spill engine makes each shard resident
// just in time and prefetches the next task's shard behind the running one.
//
// Activations: the input of every shard is checkpointed to host memory during
// forward; backward recomputes the shard's forward from it (Hydra's default), then
// runs its backward. The last shard's forward is followed directly by its backward,
// so its activations (and its state) simply stay on the device in between.
//
// The chain is driven by the same sweep driver as a sweep's, with one model on
// one device: the driver hands out the tasks in chain order and ranks shards
// for eviction by their next use. On one device stream order already keeps the
// chain's order, so a task counts as complete once it is enqueued, and the host
// thread waits on the device only to keep at most two minibatches in flight,
// and at the end.
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
#include "hydra/graph/shard_chain.hpp"
#include "hydra/memory/device_pool.hpp"
#include "hydra/memory/evicted_activations.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/spill_engine.hpp"
#include "hydra/sched/policies.hpp"
#include "hydra/sched/sweep_driver.hpp"
#include "hydra/sched/task.hpp"
#include "hydra/train/any_optimizer.hpp"
#include "hydra/train/detail/model_runner.hpp"
#include "hydra/train/flop_estimate.hpp"
#include "hydra/train/minibatch.hpp"
#include "hydra/train/optimizer.hpp"

namespace hydra {

struct single_model_options {
  std::size_t device = 0;
  std::size_t budget = 0;         // device bytes the model may use; 0: the device's whole budget
  std::size_t shard_count = 0;    // 0: greedy partition (fewest shards); else balanced into this many
  std::size_t prefetch_depth = 1; // tasks ahead whose shards are fetched behind the running one; 0: none
  std::uint64_t seed = 1;         // initial parameters (layer k uses seed + k)
  std::optional<std::uint8_t> poison_freed_blocks{}; // test aid: fill freed device and host blocks
  // Guard mode: each layer call runs on copies of its regions between
  // canaries; a layer that writes outside its footprint fails the training,
  // named (host layers only; it costs a copy of every region per call).
  // Unset: on in AddressSanitizer builds for host layers (ASan then reports
  // the write itself), off otherwise.
  std::optional<bool> guard_layers{};
  // Keep each shard's forward activations on the device for its backward,
  // while room allows, instead of recomputing them there (the last shard's
  // stay regardless). Same bits (see multi_model_options).
  bool keep_forward_activations = false;
  // ... and what becomes of those that must leave the device (see
  // multi_model_options::evicted_forward_activations): spill copies them to
  // host memory and back. by_cost needs a shard's forward seconds, which this
  // trainer does not measure: it recomputes.
  evicted_activations evicted_forward_activations = evicted_activations::by_cost;
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
      : backend_(&backend), options_(options), graph_(partition(model, options_, backend)),
        device_pool_(backend, options_.device, options_.budget == 0 ? std::nullopt : std::optional(options_.budget)),
        host_pool_(backend, host_bytes(graph_, model, options_)),
        engine_(backend, device_pool_, host_pool_, options_.device),
        runner_(backend, host_pool_, std::move(model), any_optimizer<Context>(optimizer), graph_, options_.seed,
                engine_.spill_stream()) {
    if (options_.poison_freed_blocks) {
      device_pool_.poison_freed_blocks(options_.poison_freed_blocks);
      host_pool_.poison_freed_blocks(options_.poison_freed_blocks);
    }
    runner_.guard_layers(options_.guard_layers);
    runner_.keep_forward_activations(options_.keep_forward_activations);
    if (spills(options_))
      runner_.plan_kept_forward([](std::size_t, typename runner_type::engine_type const&) {
        return typename runner_type::kept_forward_plan{.spill_home = true};
      });
    runner_.register_with(engine_);
  }

  single_model_trainer(single_model_trainer const&) = delete;
  single_model_trainer& operator=(single_model_trainer const&) = delete;
  // Drains the streams before the pools go. An error a stream still holds was
  // either reported by train() already or is moot now; it must not escape here.
  ~single_model_trainer() { engine_.drain(); }

  // Runs `steps` minibatches from `data` (asked for steps done_, done_+1, ...).
  void train(std::size_t steps, data_source const& data) {
    auto const started = std::chrono::steady_clock::now();
    if (steps > 0) {
      // One model's chain on one device: the driver never has a second ready
      // task to queue, so its queue depth does not matter; prefetch_depth is
      // how far prefetch_after() looks ahead along the chain.
      sweep_driver driver({estimate_costs(steps)}, 1);
      driver.keep_logs(false);
      fifo in_chain_order;
      std::size_t const first_position = steps_done_ * tasks_per_step();
      std::vector<typename Backend::event> step_done;
      driver.run(
          in_chain_order,
          [&](task const& t, std::size_t) {
            launch(driver, t, task_at(0, shard_count(), first_position + t.position), data);
            return launch_outcome::launched;
          },
          [&] {
            task const done = driver.queued(0).front();
            driver.complete(done, 0); // enqueued in order on the model's one device: its successor may follow
            if (done.pass != direction::backward || done.shard != 0) return;
            ++steps_done_;
            step_done.push_back(backend_->record_event(engine_.compute_stream()));
            if (step_done.size() > 2) { // at most two minibatches in flight
              backend_->synchronize(step_done[step_done.size() - 3]);
              throw_if_failed();
            }
          },
          "single_model_trainer");
    }
    engine_.synchronize();
    wall_ += std::chrono::steady_clock::now() - started;
    throw_if_failed();
  }

  // The trained parameters, in the model's layer order (waits for the device).
  [[nodiscard]] std::vector<float> parameters() {
    engine_.synchronize();
    return runner_.parameters();
  }

  // Mean loss of every minibatch so far (valid after train() returned).
  [[nodiscard]] std::vector<float> const& losses() const noexcept { return runner_.losses(); }
  [[nodiscard]] shard_chain const& shards() const noexcept { return runner_.graph(); }
  [[nodiscard]] spill_engine<Backend> const& engine() const noexcept { return engine_; }

  // On a backend that counts its streams' busy and waiting time (the host
  // backend; CUDA has no such counters).
  [[nodiscard]] training_report report() const requires measures_streams<Backend> {
    auto const compute = backend_->statistics(engine_.compute_stream());
    return {steps_done_,          std::chrono::duration_cast<std::chrono::nanoseconds>(wall_),
            compute.busy,         compute.waiting,
            engine_.statistics(), device_pool_.statistics()};
  }

  // Bytes to train `model` in memory, unsharded: all state plus all activations.
  [[nodiscard]] static std::size_t footprint(sequential_model<Context> const& model) {
    partition_input const in = model.describe(Optimizer::state_per_parameter, std::numeric_limits<std::size_t>::max());
    return detail::make_shard(in, 0, model.size(), 0).working_set_bytes();
  }

private:
  using runner_type = detail::model_runner<Backend, Context>;

  [[nodiscard]] static bool spills(single_model_options const& options) {
    return options.keep_forward_activations && options.evicted_forward_activations == evicted_activations::spill;
  }
  // The homes and boundary buffers, and with spills() every shard's forward
  // activations spilled at once.
  [[nodiscard]] static std::size_t host_bytes(shard_chain const& graph, sequential_model<Context> const& model,
                                              single_model_options const& options) {
    return runner_type::host_bytes(graph, model, /*minibatches_in_flight=*/3, spills(options));
  }
  using shard_id = std::size_t;

  static shard_chain partition(sequential_model<Context> const& model, single_model_options const& options,
                               Backend& backend) {
    std::size_t const budget = options.budget == 0 ? backend.device_budget(options.device) : options.budget;
    partition_input const in = model.describe(Optimizer::state_per_parameter, budget);
    return options.shard_count == 0 ? shard_chain::greedy(in) : shard_chain::balanced(in, options.shard_count);
  }

  void throw_if_failed() const {
    if (auto const reason = runner_.fault()->reason()) throw model_failed("single_model_trainer: " + *reason);
  }

  [[nodiscard]] std::size_t shard_count() const noexcept { return runner_.graph().size(); }
  [[nodiscard]] std::size_t tasks_per_step() const noexcept { return 2 * shard_count(); }

  // A first estimate from FLOPs: the one model's order is its chain's, so the
  // costs only have to be well-formed.
  [[nodiscard]] model_costs estimate_costs(std::size_t steps) const {
    model_costs costs{{}, {}, steps};
    for (shard const& s : graph_.shards()) {
      costs.forward_seconds.push_back(detail::estimated_forward_seconds(s.flops));
      costs.backward_seconds.push_back(detail::estimated_backward_seconds(s.flops));
    }
    return costs;
  }

  // Enqueues `t` (the driver's `chain_task` at its place in the whole run),
  // staging its minibatch first when it opens one, and fetches the shards of
  // the next prefetch_depth tasks behind its compute.
  void launch(sweep_driver const& driver, task const& chain_task, task const& t, data_source const& data) {
    if (t.pass == direction::forward && t.shard == 0) runner_.begin_minibatch(engine_, t, data(t.minibatch));
    [[maybe_unused]] auto const range = detail::annotate_task(*backend_, "model", t);
    auto const next_use = [&driver](shard_id id) { return driver.next_use(0, id); };
    engine_.pin({t.shard});
    runner_.run(engine_, 0, t, next_use, [&](shard_id running) { prefetch_after(driver, chain_task, running); });
  }

  // Fetches the shards of the next prefetch_depth tasks after `running_task`,
  // nearest first, each pinned with the running one so that a later prefetch
  // cannot evict an earlier.
  void prefetch_after(sweep_driver const& driver, task const& running_task, shard_id running) {
    std::vector<shard_id> pinned{running};
    auto const next_use = [&driver](shard_id id) { return driver.next_use(0, id); };
    for (std::size_t ahead = 1; ahead <= options_.prefetch_depth; ++ahead) {
      auto const upcoming = driver.after(running_task, ahead);
      if (!upcoming) return;
      pinned.push_back(upcoming->shard);
      engine_.pin(pinned);
      if (!engine_.prefetch(upcoming->shard, upcoming->pass == direction::backward, next_use))
        return; // no room: the rest waits too
    }
  }

  Backend* backend_;
  single_model_options options_;
  shard_chain graph_; // first: a model that cannot be partitioned reserves nothing
  device_pool<Backend> device_pool_;
  host_pool<Backend> host_pool_;
  spill_engine<Backend> engine_; // its streams drain before the pools go
  runner_type runner_;
  std::size_t steps_done_ = 0;
  std::chrono::steady_clock::duration wall_{};
};

} // namespace hydra
