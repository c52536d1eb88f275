// Shard parallelism: a sweep of models, each larger than a device, trained at
// once on several devices. The sweep driver decides (which task each device
// gets, which is queued ahead), a policy chooses among the ready tasks, and the
// executor carries the launches out on the backend; the trace, the profiler and
// progress reports watch as observers. A task's completion readies its model's
// next task.
//
// How far each model trains is its sweep controller's decision (every model to
// its end by default; successive halving or ASHA for model selection): at each
// checkpoint the model is evaluated on its validation data by evaluation tasks
// (forward only, scheduled like training) and the controller continues it,
// stops it, or starts configurations that have not trained yet.
//
// A model whose layer throws, or whose loss stops being finite, is stopped: its
// device memory and minibatch buffers are released, the reason is reported, and
// every other model trains on exactly as it would have without it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/core/cpu_time.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/graph/shard_chain.hpp"
#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/sweep_driver.hpp"
#include "hydra/select/any_controller.hpp"
#include "hydra/select/controller_history.hpp"
#include "hydra/select/sweep_controller.hpp"
#include "hydra/trace/trace_recorder.hpp"
#include "hydra/train/any_optimizer.hpp"
#include "hydra/train/detail/sweep_executor.hpp"
#include "hydra/train/flop_estimate.hpp"
#include "hydra/train/model_profile.hpp"
#include "hydra/train/observers/profile_observer.hpp"
#include "hydra/train/observers/progress_observer.hpp"
#include "hydra/train/observers/trace_observer.hpp"
#include "hydra/train/sweep_observer.hpp"
#include "hydra/train/sweep_types.hpp"

namespace hydra {

// The trainer over backend Backend, whose models' layers run on Context. Use the
// aliases: multi_model_trainer (host backend), cuda::multi_model_trainer.
template <class Backend, class Context>
class basic_multi_model_trainer {
public:
  using backend_type = Backend;
  using context = Context;
  using config_type = basic_model_config<Context>;
  using observer_type = sweep_observer<Backend>;

  // Checks and partitions every model, then sets the sweep up on the devices.
  basic_multi_model_trainer(Backend& backend, std::vector<config_type> configs, any_policy policy,
                            multi_model_options options = {});

  basic_multi_model_trainer(basic_multi_model_trainer const&) = delete;
  basic_multi_model_trainer& operator=(basic_multi_model_trainer const&) = delete;
  ~basic_multi_model_trainer() = default; // the executor drains the streams first

  // Adds an observer of run() (kept alive by the trainer); before run().
  void observe(std::shared_ptr<observer_type> observer) {
    detail::expects(!running_, "multi_model_trainer: observers are added before run(), not during it");
    detail::expects(observer != nullptr, "multi_model_trainer: the observer is null");
    observers_.push_back(observer.get());
    owned_observers_.push_back(std::move(observer));
  }

  // Trains the whole sweep; returns when every model finished or was stopped.
  void run();

  // After run(): evaluates each of `models` on data(0 .. minibatches - 1)
  // (a held-out test set, say), as evaluation tasks through the same shards,
  // spilling and devices. nullopt for a model that failed, during the run or
  // now; a model its controller stopped has no weights left to evaluate.
  std::vector<std::optional<evaluation>> evaluate(std::vector<std::size_t> const& models, data_source data,
                                                  std::size_t minibatches);

  // A model's parameters, optimizer state and minibatch count after run(), for
  // a checkpoint (model_config::resume continues from it). Empty for a stopped model.
  [[nodiscard]] std::optional<model_snapshot> snapshot(std::size_t model) const {
    if (out(model)) return std::nullopt;
    model_snapshot out = runner(model).state();
    out.minibatches_done = done_before(model) + results_[model].steps;
    return out;
  }

  [[nodiscard]] std::vector<model_result> const& results() const noexcept { return results_; }
  [[nodiscard]] sweep_report report() const;
  [[nodiscard]] std::vector<pool_statistics> device_memory() const {
    std::vector<pool_statistics> out;
    for (auto const& pool : executor_->device_pools()) out.push_back(pool->statistics());
    return out;
  }
  // The host pool that holds every model's shard homes and boundary buffers.
  [[nodiscard]] pool_statistics host_memory() const { return executor_->host_memory().statistics(); }
  [[nodiscard]] shard_chain const& shards_of(std::size_t model) const { return runner(model).graph(); }

  // Every event the controller was shown, in order (a resumed run's history
  // first): what multi_model_options::resume_history takes to continue it.
  [[nodiscard]] controller_history const& history() const noexcept { return history_; }

  // The controller, to read its state after run() (e.g. controller().get<asha>()).
  [[nodiscard]] any_controller const& controller() const noexcept { return controller_; }

  // What the policies were told of each model's costs (valid after run()).
  [[nodiscard]] std::vector<model_profile> const& profiles() const noexcept { return profiler_->profiles(); }

  // What this run measured of its models and its machine (valid after run()):
  // sim::to_workload turns it into the simulator's workload,
  // hydra::write_profile_json writes it as one.
  [[nodiscard]] sweep_profile profile() const;

  // The executed schedule: one slice per task and stream (valid after run()
  // with multi_model_options::record_trace).
  [[nodiscard]] std::vector<trace_slice> trace() const {
    return tracer_ ? tracer_->slices() : std::vector<trace_slice>{};
  }
  // The moment the trace's times count from (with record_trace; else the
  // clock's epoch): to place one trainer's slices among another's.
  [[nodiscard]] std::chrono::steady_clock::time_point trace_origin() const {
    return tracer_ ? tracer_->origin() : std::chrono::steady_clock::time_point{};
  }

  // Where the sweep stands now (what on_progress receives).
  [[nodiscard]] sweep_progress progress() const;

private:
  using executor_type = detail::sweep_executor<Backend, Context>;
  using runner_type = typename executor_type::runner_type;
  class plan_type;

  // An evaluation pass in a model's chain.
  struct planned_evaluation {
    std::size_t segment = 0;
    std::size_t minibatches = 0;
    data_source data;
    bool validation = true; // else an evaluate() call's
  };

  shard_chain partition(std::size_t m) const;
  void set_up(std::vector<shard_chain> graphs, multi_model_options const& options);
  void on_completion(typename executor_type::completion const& done);
  void stop(std::size_t m, std::string const& reason);
  void drive();
  void replay_history();
  void reached_checkpoint(std::size_t m, std::optional<evaluation> validation);
  void failed(std::size_t m);
  // Training minibatches planned for model m so far, done or to do.
  [[nodiscard]] std::size_t planned(std::size_t m) const { return driver_->core().training_minibatches(m); }
  // The index the next segment of model m's chain will have.
  [[nodiscard]] std::size_t next_segment(std::size_t m) const { return driver_->core().segment_count(m); }
  [[nodiscard]] bool out(std::size_t m) const { return results_.at(m).failure || stopped_.at(m); }
  [[nodiscard]] minibatch data_for(std::size_t m, task const& t) const;

  [[nodiscard]] runner_type const& runner(std::size_t m) const { return *executor_->models().at(m).runner; }
  [[nodiscard]] std::size_t done_before(std::size_t m) const {
    return configs_[m].resume ? configs_[m].resume->minibatches_done : 0;
  }
  // What policies see as each device's speed: `given`, else the backend's declared speeds.
  [[nodiscard]] std::vector<double> device_speeds(std::vector<double> given) const;
  [[nodiscard]] typename runner_type::kept_forward_rule kept_forward_rule(std::size_t m, evicted_activations rule,
                                                                          shard_chain const& graph) const;
  // The smallest budget among the devices model m's shards are cut for.
  [[nodiscard]] std::size_t partition_budget(std::size_t m) const;

  Backend* backend_;
  any_policy policy_;
  std::vector<config_type> configs_;
  std::chrono::milliseconds stream_check_interval_;
  std::unique_ptr<sweep_driver> driver_;
  std::vector<model_result> results_;
  any_controller controller_;
  std::unique_ptr<plan_type> plan_;      // the controller's view of the sweep, during run()
  std::vector<bool> stopped_;            // per model: stopped by its controller
  // Per model and shard: forward seconds once measured (or given as
  // estimates); empty before (evicted_activations::by_cost).
  std::vector<std::vector<double>> forward_seconds_;
  std::vector<std::size_t> stopped_now_; // by the controller's decision in progress
  controller_history history_;
  controller_history resume_history_;
  std::function<void(model_checkpoint const&)> on_checkpoint_;
  std::vector<std::vector<planned_evaluation>> evaluations_;
  std::vector<std::optional<evaluation>> evaluated_; // evaluate()'s results, per model
  std::size_t last_device_ = 0;                      // of the latest completion
  bool controlling_ = false;                         // run() is on: checkpoints go to the controller
  std::chrono::steady_clock::time_point started_{};
  bool running_ = false;
  std::chrono::steady_clock::duration makespan_{};
  std::chrono::nanoseconds launch_time_{0}; // run()'s thread's CPU time in launches that enqueued a task
  std::uint64_t launched_ = 0;
  // What profile() reports, taken over run() alone (evaluate() launches too).
  struct copy_totals {
    std::uint64_t to_device_bytes = 0;
    std::chrono::nanoseconds to_device_time{0};
    std::uint64_t to_host_bytes = 0;
    std::chrono::nanoseconds to_host_time{0};
  };
  [[nodiscard]] std::vector<copy_totals> copies_so_far() const; // per device; zeros where not measured
  std::chrono::nanoseconds run_cpu_time_{0};                    // the process's CPU time during run()
  std::chrono::nanoseconds run_launch_time_{0};
  std::uint64_t run_launched_ = 0;
  std::chrono::nanoseconds run_handoff_{0}; // sweep_profile::handoff_seconds
  // Enough round trips for a median that one preempted trip does not move,
  // few enough to cost about a millisecond on a host backend.
  static constexpr std::size_t handoff_rounds = 24;
  std::vector<copy_totals> run_copies_;
  std::vector<std::shared_ptr<observer_type>> owned_observers_;
  std::vector<observer_type*> observers_; // in the order they were added
  std::shared_ptr<trace_observer<Backend>> tracer_;
  std::shared_ptr<profile_observer<Backend>> profiler_;
  // Last: destroyed first, it drains the streams while the observers whose
  // marks they may still hold are alive.
  std::unique_ptr<executor_type> executor_;
};

// The multi-model trainer on the host backend.
using model_config = basic_model_config<host_execution_context>;
using multi_model_trainer = basic_multi_model_trainer<host_backend, host_execution_context>;

} // namespace hydra

#include "hydra/train/detail/multi_model_trainer_impl.hpp"
#include "hydra/train/detail/trainer_sweep_plan.hpp"
