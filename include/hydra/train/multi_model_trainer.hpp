// Shard parallelism: a sweep of models, each larger than a device, trained at
// once on several devices. The scheduler core decides, a policy chooses, and this
// driver executes: after every completion it asks for a task for each idle
// device, then for one more on each device (the task ahead, whose prefetch
// overlaps the running one); a task's completion, reported from its device's
// spill stream once its output is home, readies the model's next. A backward's
// write-back is queued behind its completion: the next task does not wait for it.
//
// A model whose layer throws, or whose loss stops being finite, is stopped: its
// device memory and minibatch buffers are released, the reason is reported, and
// every other model trains on exactly as it would have without it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/graph/shard_graph.hpp"
#include "hydra/memory/device_pool.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/spill_engine.hpp"
#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/scheduler_core.hpp"
#include "hydra/trace/chrome_trace.hpp"
#include "hydra/trace/trace_recorder.hpp"
#include "hydra/train/detail/model_runner.hpp"
#include "hydra/train/minibatch.hpp"
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
};

using model_config = basic_model_config<host_execution_context>;

// Where a running sweep stands (multi_model_options::on_progress).
struct sweep_progress {
  std::chrono::nanoseconds elapsed{0};
  std::vector<std::size_t> steps_done;  // per model, this run
  std::vector<std::size_t> steps_total; // per model, this run
  std::size_t models_finished = 0;
  std::size_t models_stopped = 0;
  std::vector<double> device_busy_fraction; // compute busy time / elapsed, per device
};

// What the policies were told about one model: given estimates, or measured.
struct model_profile {
  std::string name;
  std::string source; // "estimates" (given), "measured" (profiling minibatch) or "flops" (not measured yet)
  std::vector<double> forward_seconds;  // per shard, compute stream, prefetch waits included
  std::vector<double> backward_seconds; // with the recomputed forward and the optimizer step
  std::vector<double> fetch_seconds;    // prefetch stream, per shard, forward and backward together
  std::vector<std::size_t> state_bytes; // device extent per shard
};

// The profiles as JSON: {"models":[{"name":..,"source":..,"shards":[{"forward_seconds":..}, ...]}]}.
inline void write_profile_json(std::ostream& out, std::vector<model_profile> const& profiles) {
  out << "{\"models\":[";
  char number[64];
  for (std::size_t m = 0; m < profiles.size(); ++m) {
    auto const& p = profiles[m];
    out << (m ? "," : "") << "{\"name\":\"" << detail::json_escape(p.name) << "\",\"source\":\"" << p.source
        << "\",\"shards\":[";
    for (std::size_t s = 0; s < p.forward_seconds.size(); ++s) {
      std::snprintf(number, sizeof number, "%.9g", p.forward_seconds[s]);
      out << (s ? "," : "") << "{\"forward_seconds\":" << number;
      std::snprintf(number, sizeof number, "%.9g", p.backward_seconds[s]);
      out << ",\"backward_seconds\":" << number;
      std::snprintf(number, sizeof number, "%.9g", s < p.fetch_seconds.size() ? p.fetch_seconds[s] : 0.0);
      out << ",\"fetch_seconds\":" << number << ",\"state_bytes\":" << p.state_bytes[s] << "}";
    }
    out << "]}";
  }
  out << "]}\n";
}

struct model_result {
  std::string name;
  std::vector<float> losses;            // mean loss of each minibatch it finished
  std::size_t steps = 0;                // minibatches completed
  std::optional<std::string> failure;   // why it was stopped, if it was
  std::chrono::nanoseconds finished{0}; // since the start of the run
  std::vector<float> parameters;        // final (empty for a stopped model)
};

struct sweep_report {
  std::string policy;
  std::chrono::nanoseconds makespan{0};
  std::vector<double> device_busy_fraction; // compute busy time / makespan
  std::uint64_t bytes_to_device = 0;
  std::uint64_t bytes_to_host = 0;
  std::uint64_t cross_device_moves = 0; // shards evicted from one device because their next task went to another
  // 1 - compute's wait on prefetch / prefetch busy time; NaN on a backend
  // that does not measure its streams' busy and waiting times (CUDA).
  double hidden_transfer_fraction = 0;
  std::vector<decision> decisions;
};

struct multi_model_options {
  std::optional<std::uint8_t> poison_freed_blocks{}; // test aid
  // Record the schedule (trace(), write_trace()). Off by default: the marks are
  // six more stream items per task, which on the host backend costs about as
  // much as a small task itself.
  bool record_trace = false;
  // Called from run()'s thread after a completion, at most once per interval,
  // and once at the end.
  std::function<void(sweep_progress const&)> on_progress{};
  std::chrono::milliseconds progress_interval{500};
};

namespace detail {

// Backends that count each stream's busy and waiting time (the host backend).
template <class Backend>
concept measures_streams = requires(Backend& backend, typename Backend::stream stream) {
  backend.statistics(stream).busy;
  backend.statistics(stream).waiting;
};

// Backends that time an interval of a stream with a pair of events (CUDA).
template <class Backend>
concept times_intervals = requires(Backend& backend, typename Backend::stream stream,
                                   typename Backend::timed_event const& event) {
  { backend.record_timed_event(stream) } -> std::same_as<typename Backend::timed_event>;
  { backend.elapsed_seconds(event, event) } -> std::convertible_to<double>;
};

template <class Backend>
struct compute_interval {}; // nothing to time: the backend counts busy time itself

template <times_intervals Backend>
requires(!measures_streams<Backend>) struct compute_interval<Backend> {
  typename Backend::timed_event start, end; // around one task's compute, after its wait on prefetch
};

} // namespace detail

// The trainer over backend Backend, whose models' layers run on Context. Use the
// aliases: multi_model_trainer (host backend), cuda::multi_model_trainer.
template <class Backend, class Context>
class basic_multi_model_trainer {
  static_assert(detail::measures_streams<Backend> || detail::times_intervals<Backend>,
                "the multi-model trainer reports device utilisation: the backend must count its streams' busy "
                "time (statistics(stream)) or time intervals (record_timed_event, elapsed_seconds)");

public:
  using backend_type = Backend;
  using context = Context;
  using config_type = basic_model_config<Context>;
  using engine_type = spill_engine<Backend>;
  using stream_type = typename Backend::stream;

  basic_multi_model_trainer(Backend& backend, std::vector<config_type> configs, any_policy policy,
                            multi_model_options options = {})
      : backend_(&backend), policy_(std::move(policy)), configs_(std::move(configs)),
        record_trace_(options.record_trace), on_progress_(std::move(options.on_progress)),
        progress_interval_(options.progress_interval) {
    detail::expects(!configs_.empty(), "multi_model_trainer: the sweep has no models");
    std::vector<shard_graph> graphs;
    std::size_t host_bytes = 0;
    for (std::size_t m = 0; m < configs_.size(); ++m) {
      graphs.push_back(partition(m));
      host_bytes += host_bytes_needed(graphs.back(), configs_[m].model);
      if (auto const& from = configs_[m].resume) {
        std::size_t const n = configs_[m].model.parameter_count();
        std::size_t const k = state_per_parameter(configs_[m]);
        if (from->parameters.size() != n || from->optimizer_state.size() != n * k) {
          throw invalid_argument("model " + std::to_string(m) + " (" + configs_[m].name +
                                 "): the snapshot to resume from holds " + std::to_string(from->parameters.size()) +
                                 " parameters and " + std::to_string(from->optimizer_state.size()) +
                                 " optimizer values; the model needs " + std::to_string(n) + " and " +
                                 std::to_string(n * k));
        }
      }
      if (auto const& given = configs_[m].estimates) {
        detail::expects(given->forward_seconds.size() == graphs.back().size() &&
                            given->backward_seconds.size() == graphs.back().size(),
                        "model " + std::to_string(m) + " (" + configs_[m].name + "): estimates for " +
                            std::to_string(given->forward_seconds.size()) + " shards, but it has " +
                            std::to_string(graphs.back().size()));
      }
    }
    // Everything that can be refused has been checked: from here on, work is
    // enqueued on streams, and must drain before any memory goes.
    try {
      set_up(std::move(graphs), host_bytes, options);
    } catch (...) {
      drain();
      throw;
    }
  }

private:
  void set_up(std::vector<shard_graph> graphs, std::size_t host_bytes, multi_model_options const& options) {
    for (std::size_t d = 0; d < backend_->device_count(); ++d)
      device_pools_.push_back(std::make_unique<device_pool<Backend>>(*backend_, d));
    host_pool_ = std::make_unique<host_pool<Backend>>(*backend_, host_bytes);
    for (std::size_t d = 0; d < backend_->device_count(); ++d)
      engines_.push_back(std::make_unique<engine_type>(*backend_, *device_pools_[d], *host_pool_, d));
    if (options.poison_freed_blocks) {
      for (auto& pool : device_pools_) pool->poison_freed_blocks(options.poison_freed_blocks);
      host_pool_->poison_freed_blocks(options.poison_freed_blocks);
    }
    std::vector<model_costs> costs;
    for (std::size_t m = 0; m < configs_.size(); ++m) {
      runners_.push_back(make_runner(m, std::move(graphs[m])));
      auto const& graph = runners_.back()->graph();
      model_costs model_estimate = estimate_costs(graph, configs_[m].steps);
      model_profile profile{configs_[m].name,
                            "flops",
                            model_estimate.forward_seconds,
                            model_estimate.backward_seconds,
                            std::vector<double>(graph.size(), 0.0),
                            {}};
      if (auto const& given = configs_[m].estimates) {
        model_estimate.forward_seconds = profile.forward_seconds = given->forward_seconds;
        model_estimate.backward_seconds = profile.backward_seconds = given->backward_seconds;
        profile.source = "estimates";
      }
      for (shard const& sh : graph.shards()) profile.state_bytes.push_back(sh.extent_bytes());
      profiles_.push_back(std::move(profile));
      measuring_.push_back(configs_[m].estimates ? nullptr : std::make_shared<measurement>(graph.size()));
      costs.push_back(std::move(model_estimate));
    }
    for (auto& engine : engines_)
      for (std::size_t m = 0; m < runners_.size(); ++m) {
        std::size_t const base = runners_[m]->register_with(*engine);
        if (engine.get() == engines_.front().get()) {
          bases_.push_back(base);
          for (std::size_t s = 0; s < runners_[m]->graph().size(); ++s) owners_.push_back({m, s});
        }
      }
    core_ = std::make_unique<scheduler_core>(std::move(costs), backend_->device_count());
    results_.resize(configs_.size());
    positions_.assign(configs_.size(), 0);
    busy_.assign(engines_.size(), std::chrono::nanoseconds{0});
    intervals_.resize(engines_.size());
  }

public:
  basic_multi_model_trainer(basic_multi_model_trainer const&) = delete;
  basic_multi_model_trainer& operator=(basic_multi_model_trainer const&) = delete;
  ~basic_multi_model_trainer() { drain(); }

  // Trains the whole sweep; returns when every model finished or was stopped.
  void run() {
    auto const started = std::chrono::steady_clock::now();
    std::vector<std::vector<task>> in_flight(engines_.size());
    std::vector<bool> full; // a task did not fit beside a device's queue this round
    while (!core_->finished()) {
      // Idle devices first, then one task ahead on each: a ready task goes to
      // an idle device rather than queue behind a busy one. (sim/ drives the
      // core the same way.)
      full.assign(engines_.size(), false);
      for (std::size_t level = 1; level <= 2; ++level)
        for (std::size_t d = 0; d < engines_.size(); ++d) {
          if (in_flight[d].size() >= level || full[d]) continue;
          auto const next = core_->decide(policy_, d);
          if (!next) continue;
          if (!launch(*next, d, in_flight[d])) {
            full[d] = true;
            continue;
          }
          in_flight[d].push_back(*next);
        }
      if (core_->in_flight() == 0) {
        if (core_->finished()) break;
        throw error("multi_model_trainer: policy " + policy_.name() + " declined every ready task while no task ran");
      }
      auto const [done, device] = next_completion();
      auto& queue = in_flight[device];
      queue.erase(std::find(queue.begin(), queue.end(), done));
      finish(done, device, std::chrono::steady_clock::now() - started);
      report_progress(started, false);
    }
    // The sweep is over: give the devices back their memory.
    for (auto& engine : engines_)
      for (std::size_t id = 0; id < engine->table().size(); ++id)
        if (engine->table()[id].resident()) engine->evict(id);
    drain();
    makespan_ = std::chrono::steady_clock::now() - started;
    for (std::size_t m = 0; m < runners_.size(); ++m) {
      results_[m].name = configs_[m].name;
      results_[m].losses = runners_[m]->losses();
      if (!results_[m].failure) results_[m].parameters = runners_[m]->parameters();
    }
    report_progress(started, true);
  }

  // A model's parameters, optimizer state and minibatch count after run(), for
  // a checkpoint (model_config::resume continues from it). Empty for a stopped model.
  [[nodiscard]] std::optional<model_snapshot> snapshot(std::size_t model) const {
    if (results_.at(model).failure) return std::nullopt;
    model_snapshot out = runners_.at(model)->state();
    out.minibatches_done = done_before(model) + results_[model].steps;
    return out;
  }

  [[nodiscard]] std::vector<model_result> const& results() const noexcept { return results_; }

  [[nodiscard]] sweep_report report() const {
    sweep_report out;
    out.policy = policy_.name();
    out.makespan = std::chrono::duration_cast<std::chrono::nanoseconds>(makespan_);
    std::chrono::nanoseconds transfer{0}, exposed{0};
    for (std::size_t d = 0; d < engines_.size(); ++d) {
      auto const& engine = engines_[d];
      out.device_busy_fraction.push_back(makespan_.count() == 0 ? 0.0
                                                                : static_cast<double>(compute_busy(d).count()) /
                                                                      static_cast<double>(out.makespan.count()));
      if constexpr (detail::measures_streams<Backend>) {
        transfer += backend_->statistics(engine->prefetch_stream()).busy;
        exposed += backend_->statistics(engine->compute_stream()).waiting;
      }
      out.bytes_to_device += engine->statistics().bytes_to_device;
      out.bytes_to_host += engine->statistics().bytes_to_host;
    }
    out.cross_device_moves = cross_device_moves_;
    if constexpr (detail::measures_streams<Backend>) {
      out.hidden_transfer_fraction =
          transfer.count() == 0
              ? 1.0
              : 1.0 - std::min(1.0, static_cast<double>(exposed.count()) / static_cast<double>(transfer.count()));
    } else {
      out.hidden_transfer_fraction = std::numeric_limits<double>::quiet_NaN();
    }
    out.decisions = core_->decisions();
    return out;
  }

  [[nodiscard]] std::vector<pool_statistics> device_memory() const {
    std::vector<pool_statistics> out;
    for (auto const& pool : device_pools_) out.push_back(pool->statistics());
    return out;
  }

  [[nodiscard]] shard_graph const& shards_of(std::size_t model) const { return runners_.at(model)->graph(); }

  // What the policies were told of each model's costs (valid after run()).
  [[nodiscard]] std::vector<model_profile> const& profiles() const noexcept { return profiles_; }
  void write_profile(std::ostream& out) const { write_profile_json(out, profiles_); }

  // The executed schedule: one slice per task and stream (valid after run()).
  [[nodiscard]] std::vector<trace_slice> trace() const { return trace_.slices(); }

  // Writes the schedule as Chrome trace JSON (open it in ui.perfetto.dev).
  void write_trace(std::ostream& out) const { write_chrome_trace(out, trace_.slices()); }

private:
  // The runner of one model behind one interface, whatever its optimizer.
  struct runner_interface {
    virtual ~runner_interface() = default;
    virtual std::size_t register_with(engine_type&) = 0;
    virtual bool staged(std::size_t minibatch) const = 0;
    virtual void begin_minibatch(engine_type&, std::size_t index, minibatch) = 0;
    virtual void run(engine_type&, std::size_t base, task const&, typename engine_type::next_use_function const&,
                     detail::compute_interval<Backend>*) = 0;
    virtual void flush_write_back(engine_type&) = 0;
    virtual void abandon(engine_type&) = 0;
    virtual void release_homes(stream_type) = 0;
    virtual std::vector<float> parameters() const = 0;
    virtual model_snapshot state() const = 0;
    virtual std::vector<float> const& losses() const = 0;
    virtual shard_graph const& graph() const = 0;
    virtual std::optional<std::string> fault() const = 0;
  };

  template <class Optimizer>
  struct runner_holder final : runner_interface {
    template <class... Args>
    explicit runner_holder(Args&&... args) : runner(std::forward<Args>(args)...) {}
    std::size_t register_with(engine_type& e) override { return runner.register_with(e); }
    bool staged(std::size_t index) const override { return runner.staged(index); }
    void begin_minibatch(engine_type& e, std::size_t index, minibatch data) override {
      runner.begin_minibatch(e, index, std::move(data));
    }
    void run(engine_type& e, std::size_t base, task const& t, typename engine_type::next_use_function const& next,
             detail::compute_interval<Backend>* interval) override {
      if constexpr (std::is_empty_v<detail::compute_interval<Backend>>) {
        runner.run(
            e, base, t, next, [] {}, [](std::size_t) {});
      } else {
        auto& backend = e.backend();
        runner.run(
            e, base, t, next, [&] { interval->start = backend.record_timed_event(e.compute_stream()); },
            [&](std::size_t) { interval->end = backend.record_timed_event(e.compute_stream()); });
      }
    }
    void flush_write_back(engine_type& e) override { runner.flush_write_back(e); }
    void abandon(engine_type& e) override { runner.abandon(e); }
    void release_homes(stream_type on) override { runner.release_homes(on); }
    std::vector<float> parameters() const override { return runner.parameters(); }
    model_snapshot state() const override { return runner.state(); }
    std::vector<float> const& losses() const override { return runner.losses(); }
    shard_graph const& graph() const override { return runner.graph(); }
    std::optional<std::string> fault() const override { return runner.fault()->reason(); }
    detail::model_runner<Optimizer, Backend, Context> runner;
  };

  // Optimizer values kept per parameter (momentum: 1; Adam: 2).
  static std::size_t state_per_parameter(config_type const& config) {
    return std::visit([](auto const& o) { return std::decay_t<decltype(o)>::state_per_parameter; }, config.optimizer);
  }

  [[nodiscard]] std::size_t smallest_capacity() const {
    std::size_t smallest = std::numeric_limits<std::size_t>::max();
    for (std::size_t d = 0; d < backend_->device_count(); ++d)
      smallest = std::min(smallest, backend_->device_capacity(d));
    return smallest;
  }

  // Shards must fit every device (a task may run on any); task_parallel instead
  // needs the whole model to fit the one device it is bound to.
  shard_graph partition(std::size_t m) const {
    auto const& config = configs_[m];
    auto const& model = config.model;
    detail::expects(model.footprint(model.size() - 1).output_features == 1,
                    "model " + std::to_string(m) + " (" + config.name + "): the last layer must be a loss");
    std::size_t const state = state_per_parameter(config);
    bool const whole = policy_.needs_whole_models();
    std::size_t const budget = whole ? backend_->device_capacity(m % backend_->device_count()) : smallest_capacity();
    partition_input in{{}, {}, model.batch(), state, budget};
    for (std::size_t at = 0; at < model.size(); ++at) {
      in.layers.push_back(model.footprint(at));
      in.names.push_back(model.layer(at).name());
    }
    if (whole) {
      std::size_t const needed = detail::make_shard(in, 0, model.size(), 0).working_set_bytes();
      if (needed > budget / 2) {
        throw invalid_argument("task_parallel: model " + std::to_string(m) + " (" + config.name + ") needs " +
                               format_bytes(needed) + " whole, above half the budget of device " +
                               std::to_string(m % backend_->device_count()) + " (" + format_bytes(budget) +
                               "); use a shard-parallel policy such as sharp");
      }
      return shard_graph::balanced(in, 1);
    }
    return shard_graph::greedy(in);
  }

  static std::size_t host_bytes_needed(shard_graph const& graph, sequential_model<Context> const& model) {
    std::size_t homes = 0, per_step = 0;
    for (shard const& s : graph.shards()) {
      homes += align_up(s.home_bytes(), allocation_alignment);
      per_step += 2 * align_up(model.batch() * model.footprint(s.first_layer).input_features * sizeof(float),
                               allocation_alignment);
    }
    per_step += 2 * align_up(model.batch() * sizeof(float), allocation_alignment);
    return homes + 2 * per_step;
  }

  // A first estimate from FLOPs (forward a third, backward with its recompute
  // the rest); what matters to the policies is the models' relative work.
  static model_costs estimate_costs(shard_graph const& graph, std::size_t steps) {
    model_costs costs;
    costs.minibatches = steps;
    for (shard const& s : graph.shards()) {
      costs.forward_seconds.push_back(s.flops / 3.0 * 1e-9);
      costs.backward_seconds.push_back(s.flops * 1e-9);
    }
    return costs;
  }

  std::unique_ptr<runner_interface> make_runner(std::size_t m, shard_graph graph) {
    auto& config = configs_[m];
    return std::visit(
        [&](auto const& optimizer) -> std::unique_ptr<runner_interface> {
          using optimizer_type = std::decay_t<decltype(optimizer)>;
          auto const stream = engines_.front()->spill_stream();
          auto holder = config.resume
                            ? std::make_unique<runner_holder<optimizer_type>>(
                                  *backend_, *host_pool_, config.model, optimizer, std::move(graph),
                                  config.resume->parameters, config.resume->optimizer_state,
                                  config.resume->minibatches_done, stream, /*keep_last_activations=*/false)
                            : std::make_unique<runner_holder<optimizer_type>>(*backend_, *host_pool_, config.model,
                                                                              optimizer, std::move(graph), config.seed,
                                                                              stream, /*keep_last_activations=*/false);
          holder->runner.defer_write_backs(true);
          return holder;
        },
        config.optimizer);
  }

  // Enqueues `t` on device `d`; false when the model was stopped instead.
  bool launch(task const& t, std::size_t d, std::vector<task> const& queued) {
    auto& engine = *engines_[d];
    auto& runner = *runners_[t.model];
    std::size_t const id = bases_[t.model] + t.shard;
    for (std::size_t e = 0; e < engines_.size(); ++e) {
      if (e == d || !engines_[e]->table()[id].resident()) continue;
      engines_[e]->evict(id); // one device holds a shard's state at a time
      ++cross_device_moves_;
    }
    std::vector<std::size_t> pins{id};
    for (task const& other : queued) pins.push_back(bases_[other.model] + other.shard);
    engine.pin(pins);
    positions_[t.model] = t.position;
    [[maybe_unused]] auto const range = detail::annotate_task(*backend_, configs_[t.model].name, t);
    auto const starts = mark_starts(engine);
    auto const profiling = t.minibatch == 0 ? measuring_[t.model] : nullptr;
    profile_starts profile_marks;
    if (profiling) profile_marks = mark_profile_start(engine);
    try {
      if (t.pass == direction::forward && t.shard == 0 && !runner.staged(t.minibatch))
        runner.begin_minibatch(engine, t.minibatch, configs_[t.model].data(done_before(t.model) + t.minibatch));
      detail::compute_interval<Backend> interval;
      runner.run(
          engine, bases_[t.model], t, [this](std::size_t shard_id) { return next_use(shard_id); }, &interval);
      if constexpr (!std::is_empty_v<detail::compute_interval<Backend>>) intervals_[d].push_back({t, interval});
    } catch (does_not_fit const&) {
      // Only the task queued behind a running one can meet this (the partition
      // guarantees a task fits a device running nothing else): retry it later.
      // Nothing of it was enqueued; shards it evicted or fetched are just cache.
      core_->release(t);
      return false;
    } catch (invalid_argument const& bad_input) { // e.g. a malformed minibatch: this model only
      stop(t.model, d, bad_input.what());
      return false;
    }
    mark_ends(engine, starts, t, d);
    if (profiling) mark_profile_end(engine, profiling, profile_marks, t);
    core_->set_resident(t.model, t.shard, d);
    backend_->enqueue(engine.spill_stream(), [this, t, d] {
      {
        std::lock_guard lock(completions_mutex_);
        completions_.push_back({t, d});
      }
      completions_ready_.notify_one();
    });
    runner.flush_write_back(engine); // behind the completion: off the model's chain
    return true;
  }

  // One start mark per stream, enqueued before a task's work; the end marks,
  // enqueued after it, turn each into a slice of the trace.
  using start_marks = std::array<std::shared_ptr<std::chrono::nanoseconds>, 3>;

  start_marks mark_starts(engine_type& engine) {
    start_marks starts;
    if (!record_trace_) return starts;
    auto const streams = streams_of(engine);
    for (std::size_t k = 0; k < 3; ++k) {
      starts[k] = std::make_shared<std::chrono::nanoseconds>(0);
      backend_->enqueue(streams[k], [mark = starts[k], this] { *mark = trace_.now(); });
    }
    return starts;
  }

  void mark_ends(engine_type& engine, start_marks const& starts, task const& t, std::size_t d) {
    if (!record_trace_) return;
    auto const streams = streams_of(engine);
    for (std::size_t k = 0; k < 3; ++k) {
      backend_->enqueue(streams[k], [this, start = starts[k], t, d, kind = static_cast<stream_kind>(k),
                                     name = configs_[t.model].name] {
        trace_.add({t, name, d, kind, *start, trace_.now()});
      });
    }
  }

  static std::array<stream_type, 3> streams_of(engine_type const& engine) {
    return {engine.compute_stream(), engine.prefetch_stream(), engine.spill_stream()}; // in stream_kind order
  }

  // Per-shard times of a model's profiling minibatch, written by stream threads.
  struct measurement {
    explicit measurement(std::size_t shards) : forward(shards, 0.0), backward(shards, 0.0), fetch(shards, 0.0) {}
    std::mutex mutex;
    std::vector<double> forward, backward, fetch;
    std::vector<typename Backend::event> marks; // after every end mark: what adopt_profile waits for
  };

  // Start marks of one task on its compute and prefetch streams: per task, so a
  // late end mark of the previous task on another device cannot race with them.
  using profile_starts = std::array<std::shared_ptr<std::chrono::nanoseconds>, 2>;

  profile_starts mark_profile_start(engine_type& engine) {
    profile_starts starts{std::make_shared<std::chrono::nanoseconds>(0), std::make_shared<std::chrono::nanoseconds>(0)};
    backend_->enqueue(engine.compute_stream(), [mark = starts[0], this] { *mark = trace_.now(); });
    backend_->enqueue(engine.prefetch_stream(), [mark = starts[1], this] { *mark = trace_.now(); });
    return starts;
  }

  void mark_profile_end(engine_type& engine, std::shared_ptr<measurement> const& into, profile_starts const& starts,
                        task const& t) {
    backend_->enqueue(engine.prefetch_stream(), [into, start = starts[1], t, this] {
      double const seconds = static_cast<double>((trace_.now() - *start).count()) * 1e-9;
      std::lock_guard lock(into->mutex);
      into->fetch[t.shard] += seconds;
    });
    backend_->enqueue(engine.compute_stream(), [into, start = starts[0], t, this] {
      double const seconds = static_cast<double>((trace_.now() - *start).count()) * 1e-9;
      std::lock_guard lock(into->mutex);
      (t.pass == direction::forward ? into->forward : into->backward)[t.shard] = seconds;
    });
    std::lock_guard lock(into->mutex);
    into->marks.push_back(backend_->record_event(engine.compute_stream()));
    into->marks.push_back(backend_->record_event(engine.prefetch_stream()));
  }

  // The profiling minibatch is done: the policies see measured costs from now on.
  void adopt_profile(std::size_t m) {
    auto const into = std::move(measuring_[m]);
    std::vector<typename Backend::event> marks;
    {
      std::lock_guard lock(into->mutex);
      marks = into->marks;
    }
    for (auto const& mark : marks) backend_->synchronize(mark); // end marks may trail the completions
    std::lock_guard lock(into->mutex);
    model_costs measured{into->forward, into->backward, configs_[m].steps};
    core_->update_costs(m, measured);
    profiles_[m].source = "measured";
    profiles_[m].forward_seconds = into->forward;
    profiles_[m].backward_seconds = into->backward;
    profiles_[m].fetch_seconds = into->fetch;
  }

  std::pair<task, std::size_t> next_completion() {
    std::unique_lock lock(completions_mutex_);
    completions_ready_.wait(lock, [this] { return !completions_.empty(); });
    auto const next = completions_.front();
    completions_.pop_front();
    return next;
  }

  void finish(task const& t, std::size_t d, std::chrono::steady_clock::duration at) {
    if constexpr (!std::is_empty_v<detail::compute_interval<Backend>>) {
      // The completion is reported behind the task's compute: its interval has ended.
      auto& timed = intervals_[d];
      auto const it = std::find_if(timed.begin(), timed.end(), [&](auto const& entry) { return entry.first == t; });
      if (it != timed.end()) {
        busy_[d] += std::chrono::nanoseconds(
            static_cast<std::int64_t>(backend_->elapsed_seconds(it->second.start, it->second.end) * 1e9));
        timed.erase(it);
      }
    }
    if (auto const reason = runners_[t.model]->fault()) {
      stop(t.model, d, *reason);
      return;
    }
    core_->complete(t);
    if (t.pass == direction::backward && t.shard == 0) ++results_[t.model].steps;
    if (t.minibatch == 0 && t.pass == direction::backward && t.shard == 0 && measuring_[t.model])
      adopt_profile(t.model);
    if (core_->model_done(t.model))
      results_[t.model].finished = std::chrono::duration_cast<std::chrono::nanoseconds>(at);
  }

  void stop(std::size_t m, std::size_t d, std::string const& reason) {
    core_->stop(m);
    results_[m].failure = reason;
    runners_[m]->abandon(*engines_[d]);
    for (auto& engine : engines_) {
      for (std::size_t s = 0; s < runners_[m]->graph().size(); ++s)
        if (engine->table()[bases_[m] + s].resident()) engine->evict(bases_[m] + s);
    }
    runners_[m]->release_homes(engines_[d]->spill_stream());
  }

  [[nodiscard]] std::size_t done_before(std::size_t m) const {
    return configs_[m].resume ? configs_[m].resume->minibatches_done : 0;
  }

  void report_progress(std::chrono::steady_clock::time_point started, bool final) {
    if (!on_progress_) return;
    auto const now = std::chrono::steady_clock::now();
    if (!final && now - last_progress_ < progress_interval_) return;
    last_progress_ = now;
    sweep_progress p;
    p.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - started);
    for (std::size_t m = 0; m < configs_.size(); ++m) {
      p.steps_done.push_back(results_[m].steps);
      p.steps_total.push_back(configs_[m].steps);
      p.models_finished += core_->model_done(m);
      p.models_stopped += core_->model_stopped(m);
    }
    for (std::size_t d = 0; d < engines_.size(); ++d) {
      auto const busy = compute_busy(d);
      p.device_busy_fraction.push_back(
          p.elapsed.count() == 0 ? 0.0 : static_cast<double>(busy.count()) / static_cast<double>(p.elapsed.count()));
    }
    on_progress_(p);
  }

  // Tasks until the shard's model needs it again, counted along its own chain.
  [[nodiscard]] std::size_t next_use(std::size_t shard_id) const {
    auto const [m, s] = owners_[shard_id];
    std::size_t const shards = runners_[m]->graph().size();
    std::size_t const total = core_->tasks_of(m);
    for (std::size_t ahead = 1; ahead <= 2 * shards; ++ahead) {
      if (positions_[m] + ahead >= total) break;
      if (task_at(m, shards, positions_[m] + ahead).shard == s) return ahead;
    }
    return std::numeric_limits<std::size_t>::max();
  }

  // Device d's compute stream's busy time so far.
  [[nodiscard]] std::chrono::nanoseconds compute_busy(std::size_t d) const {
    if constexpr (detail::measures_streams<Backend>)
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
          backend_->statistics(engines_[d]->compute_stream()).busy);
    else
      return busy_[d];
  }

  void drain() {
    for (auto& engine : engines_) {
      try {
        engine->synchronize();
      } catch (...) { // stream errors are per model and were recorded as faults
      }
    }
  }

  Backend* backend_;
  any_policy policy_;
  std::vector<config_type> configs_;
  bool record_trace_;
  std::function<void(sweep_progress const&)> on_progress_;
  std::chrono::milliseconds progress_interval_;
  std::chrono::steady_clock::time_point last_progress_{};
  std::vector<std::unique_ptr<device_pool<Backend>>> device_pools_;
  std::unique_ptr<host_pool<Backend>> host_pool_;
  std::vector<std::unique_ptr<engine_type>> engines_;
  std::vector<std::unique_ptr<runner_interface>> runners_;  // after the engines: destroyed first
  std::vector<std::size_t> bases_;                          // id of each model's shard 0 in every engine
  std::vector<std::pair<std::size_t, std::size_t>> owners_; // engine shard id -> (model, shard)
  std::vector<std::size_t> positions_;                      // each model's latest launched task
  std::unique_ptr<scheduler_core> core_;
  std::vector<model_result> results_;
  std::mutex completions_mutex_;
  std::condition_variable completions_ready_;
  std::deque<std::pair<task, std::size_t>> completions_;
  std::uint64_t cross_device_moves_ = 0;
  trace_recorder trace_;
  std::vector<model_profile> profiles_;
  std::vector<std::shared_ptr<measurement>> measuring_; // null once measured, or when estimates were given
  std::chrono::steady_clock::duration makespan_{};
  // Backends that time intervals: each device's compute busy time, summed from
  // the intervals of its finished tasks, and those of its tasks in flight.
  std::vector<std::chrono::nanoseconds> busy_;
  std::vector<std::deque<std::pair<task, detail::compute_interval<Backend>>>> intervals_;
};

// The multi-model trainer on the host backend.
using multi_model_trainer = basic_multi_model_trainer<host_backend, host_execution_context>;

} // namespace hydra
