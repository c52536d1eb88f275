// The multi-model trainer's member definitions, out of its class so that the
// class reads as a table of contents.
#pragma once

#include "hydra/train/multi_model_trainer.hpp"

namespace hydra {

// ---- set-up: everything that can be refused is checked before work is enqueued

template <class Backend, class Context>
basic_multi_model_trainer<Backend, Context>::basic_multi_model_trainer(Backend& backend,
                                                                       std::vector<config_type> configs,
                                                                       any_policy policy, multi_model_options options)
    : backend_(&backend), policy_(std::move(policy)), configs_(std::move(configs)),
      stream_check_interval_(options.stream_check_interval) {
  detail::expects(!configs_.empty(), "multi_model_trainer: the sweep has no models");
  detail::expects(stream_check_interval_.count() > 0,
                  "multi_model_trainer: the stream check interval must be positive");
  std::vector<shard_graph> graphs;
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    graphs.push_back(partition(m));
    auto const& config = configs_[m];
    if (auto const& from = config.resume) {
      std::size_t const n = config.model.parameter_count();
      std::size_t const k = any_optimizer<Context>(config.optimizer).state_per_parameter();
      if (from->parameters.size() != n || from->optimizer_state.size() != n * k) {
        throw invalid_argument("model " + std::to_string(m) + " (" + config.name +
                               "): the snapshot to resume from holds " + std::to_string(from->parameters.size()) +
                               " parameters and " + std::to_string(from->optimizer_state.size()) +
                               " optimizer values; the model needs " + std::to_string(n) + " and " +
                               std::to_string(n * k));
      }
    }
    if (auto const& given = config.estimates) {
      detail::expects(given->forward_seconds.size() == graphs.back().size() &&
                          given->backward_seconds.size() == graphs.back().size(),
                      "model " + std::to_string(m) + " (" + config.name + "): estimates for " +
                          std::to_string(given->forward_seconds.size()) + " shards, but it has " +
                          std::to_string(graphs.back().size()));
    }
  }
  set_up(std::move(graphs), options);
}

// Shards must fit every device (a task may run on any); task_parallel instead
// needs the whole model to fit the one device it is bound to.
template <class Backend, class Context>
shard_graph basic_multi_model_trainer<Backend, Context>::partition(std::size_t m) const {
  auto const& config = configs_[m];
  auto const& model = config.model;
  detail::expects(model.footprint(model.size() - 1).output_features == 1,
                  "model " + std::to_string(m) + " (" + config.name + "): the last layer must be a loss");
  std::size_t const state = any_optimizer<Context>(config.optimizer).state_per_parameter();
  bool const whole = policy_.needs_whole_models();
  std::size_t const budget = whole ? backend_->device_budget(m % backend_->device_count()) : smallest_budget();
  partition_input const in = model.describe(state, budget);
  if (!whole) return shard_graph::greedy(in);
  std::size_t const needed = detail::make_shard(in, 0, model.size(), 0).working_set_bytes();
  if (needed > working_set_limit(budget)) {
    throw invalid_argument("task_parallel: model " + std::to_string(m) + " (" + config.name + ") needs " +
                           format_bytes(needed) + " whole, above half the budget of device " +
                           std::to_string(m % backend_->device_count()) + " (" + format_bytes(budget) +
                           "); use a shard-parallel policy such as sharp");
  }
  return shard_graph::balanced(in, 1);
}

template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::set_up(std::vector<shard_graph> graphs,
                                                         multi_model_options const& options) {
  std::size_t host_bytes = 0;
  for (std::size_t m = 0; m < configs_.size(); ++m)
    host_bytes += runner_type::host_bytes(graphs[m], configs_[m].model, /*minibatches_in_flight=*/2);
  executor_ = std::make_unique<executor_type>(*backend_, host_bytes, options.poison_freed_blocks);
  std::vector<model_costs> costs;
  std::vector<model_profile> profiles;
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    auto const& config = configs_[m];
    shard_graph const& graph = graphs[m];
    // A first estimate from FLOPs (forward a third, backward with its recompute
    // the rest); what matters to the policies is the models' relative work.
    model_costs estimate{{}, {}, config.steps};
    model_profile profile{config.name, "flops", {}, {}, std::vector<double>(graph.size(), 0.0), {}};
    for (shard const& s : graph.shards()) {
      estimate.forward_seconds.push_back(s.flops / 3.0 * 1e-9);
      estimate.backward_seconds.push_back(s.flops * 1e-9);
      profile.state_bytes.push_back(s.extent_bytes());
    }
    if (auto const& given = config.estimates) {
      estimate.forward_seconds = given->forward_seconds;
      estimate.backward_seconds = given->backward_seconds;
      profile.source = "estimates";
    }
    profile.forward_seconds = estimate.forward_seconds;
    profile.backward_seconds = estimate.backward_seconds;
    profiles.push_back(std::move(profile));
    costs.push_back(std::move(estimate));

    any_optimizer<Context> optimizer(config.optimizer);
    auto& host = executor_->host_memory();
    auto const stream = executor_->setup_stream();
    auto runner =
        config.resume
            ? std::make_unique<runner_type>(*backend_, host, config.model, std::move(optimizer), std::move(graphs[m]),
                                            config.resume->parameters, config.resume->optimizer_state,
                                            config.resume->minibatches_done, stream, /*keep_last_activations=*/false)
            : std::make_unique<runner_type>(*backend_, host, config.model, std::move(optimizer), std::move(graphs[m]),
                                            config.seed, stream,
                                            /*keep_last_activations=*/false);
    executor_->add_model({config.name, config.data, done_before(m), std::move(runner)});
  }
  driver_ = std::make_unique<sweep_driver>(std::move(costs), backend_->device_count(), options.driver);
  driver_->keep_logs(options.record_decisions);
  results_.resize(configs_.size());

  if (options.record_trace) {
    std::vector<std::string> names;
    for (auto const& config : configs_) names.push_back(config.name);
    tracer_ = std::make_shared<trace_observer<Backend>>(*backend_, std::move(names));
    observe(tracer_);
  }
  profiler_ = std::make_shared<profile_observer<Backend>>(
      *backend_, std::move(profiles),
      [this](std::size_t m, model_costs const& measured) { driver_->update_costs(m, measured); });
  observe(profiler_);
  if (options.on_progress) {
    observe(std::make_shared<progress_observer<Backend>>([this] { return progress(); }, options.on_progress,
                                                         options.progress_interval));
  }
}

// ---- the run ---------------------------------------------------------------------

template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::run() {
  detail::expects(!running_, "multi_model_trainer: run() is already running");
  running_ = true;
  started_ = std::chrono::steady_clock::now();
  // A model stopped while its task was being enqueued is stopped in the driver
  // once the launch returns; observers hear of it after that, so that what
  // they ask (progress()) already counts it.
  std::vector<std::size_t> stopped_at_launch;
  auto const report_stops = [&] {
    for (std::size_t m : stopped_at_launch) stop(m, *results_[m].failure);
    stopped_at_launch.clear();
  };
  driver_->run(
      policy_,
      [&](task const& t, std::size_t d) {
        launch_outcome const outcome = executor_->launch(t, d, *driver_, observers_);
        if (outcome == launch_outcome::stopped) {
          results_[t.model].failure = executor_->stop_reason();
          stopped_at_launch.push_back(t.model);
        }
        return outcome;
      },
      [&] {
        report_stops();
        on_completion(executor_->await(stream_check_interval_));
      },
      "multi_model_trainer");
  report_stops();
  executor_->finish();
  makespan_ = std::chrono::steady_clock::now() - started_;
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    results_[m].name = configs_[m].name;
    results_[m].losses = runner(m).losses();
    if (!results_[m].failure) results_[m].parameters = runner(m).parameters();
  }
  for (auto* observer : observers_) observer->on_finish();
  running_ = false;
}

template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::on_completion(typename executor_type::completion const& done) {
  task const& t = done.what;
  executor_->completed(done);
  if (auto const reason = executor_->fault(t.model)) {
    driver_->fail(t, done.device);
    executor_->stop(t.model, done.device);
    stop(t.model, *reason);
    return;
  }
  driver_->complete(t, done.device);
  if (t.pass == direction::backward && t.shard == 0) ++results_[t.model].steps;
  if (driver_->core().model_done(t.model))
    results_[t.model].finished =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started_);
  for (auto* observer : observers_) observer->on_complete(t, done.device);
}

// Records why model m stopped; its memory has been given back already.
template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::stop(std::size_t m, std::string const& reason) {
  results_[m].failure = reason;
  for (auto* observer : observers_) observer->on_stop(m, reason);
}

// ---- reports ---------------------------------------------------------------------

template <class Backend, class Context>
sweep_progress basic_multi_model_trainer<Backend, Context>::progress() const {
  sweep_progress p;
  p.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started_);
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    p.steps_done.push_back(results_[m].steps);
    p.steps_total.push_back(configs_[m].steps);
    p.models_finished += driver_->core().model_done(m);
    p.models_stopped += driver_->core().model_stopped(m);
  }
  for (std::size_t d = 0; d < backend_->device_count(); ++d) {
    auto const busy = executor_->compute_busy(d);
    p.device_busy_fraction.push_back(
        p.elapsed.count() == 0 ? 0.0 : static_cast<double>(busy.count()) / static_cast<double>(p.elapsed.count()));
  }
  return p;
}

template <class Backend, class Context>
sweep_report basic_multi_model_trainer<Backend, Context>::report() const {
  sweep_report out;
  out.policy = policy_.name();
  out.makespan = std::chrono::duration_cast<std::chrono::nanoseconds>(makespan_);
  std::chrono::nanoseconds transfer{0}, exposed{0};
  for (std::size_t d = 0; d < backend_->device_count(); ++d) {
    auto const& engine = executor_->engines()[d];
    out.device_busy_fraction.push_back(makespan_.count() == 0
                                           ? 0.0
                                           : static_cast<double>(executor_->compute_busy(d).count()) /
                                                 static_cast<double>(out.makespan.count()));
    if constexpr (measures_streams<Backend>) {
      transfer += backend_->statistics(engine->prefetch_stream()).busy;
      exposed += backend_->statistics(engine->compute_stream()).waiting;
    }
    out.bytes_to_device += engine->statistics().bytes_to_device;
    out.bytes_to_host += engine->statistics().bytes_to_host;
  }
  out.cross_device_moves = executor_->cross_device_moves();
  if constexpr (measures_streams<Backend>) {
    out.hidden_transfer_fraction =
        transfer.count() == 0
            ? 1.0
            : 1.0 - std::min(1.0, static_cast<double>(exposed.count()) / static_cast<double>(transfer.count()));
  } else {
    out.hidden_transfer_fraction = std::numeric_limits<double>::quiet_NaN();
  }
  out.decisions = driver_->core().decisions();
  out.driver_log = driver_->log();
  return out;
}

} // namespace hydra
