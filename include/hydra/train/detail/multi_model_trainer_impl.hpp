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
      stream_check_interval_(options.stream_check_interval), controller_(options.controller),
      resume_history_(options.resume_history), on_checkpoint_(options.on_checkpoint) {
  detail::expects(!configs_.empty(), "multi_model_trainer: the sweep has no models");
  detail::expects(stream_check_interval_.count() > 0,
                  "multi_model_trainer: the stream check interval must be positive");
  std::size_t const devices = backend.device_count();
  auto const& speeds = options.device_speeds;
  detail::expects(speeds.empty() || speeds.size() == devices,
                  "multi_model_trainer: device_speeds gives " + std::to_string(speeds.size()) +
                      " speeds for the backend's " + std::to_string(devices) + " devices");
  for (std::size_t d = 0; d < speeds.size(); ++d)
    detail::expects(valid_device_speed(speeds[d]), "multi_model_trainer: device_speeds gives device " +
                                                       std::to_string(d) + " a speed of " + std::to_string(speeds[d]) +
                                                       "; a speed is > 0 and at most 1e6");
  detail::expects(
      !options.keep_activation_checkpoints || options.keep_activations,
      "multi_model_trainer: keep_activation_checkpoints keeps checkpoints beside the activations kept on the device: "
      "set keep_activations too");
  detail::expects(!options.copy_activations_between_devices || options.keep_activations,
                  "multi_model_trainer: copy_activations_between_devices copies the activations kept on a device: "
                  "set keep_activations too");
  std::vector<shard_chain> graphs;
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    auto const& config = configs_[m];
    try {
      std::visit([](auto const& optimizer) { optimizer.schedule.validate(); }, config.optimizer);
    } catch (invalid_argument const& refused) {
      throw invalid_argument("model " + std::to_string(m) + " (" + config.name + "): " + refused.what());
    }
    graphs.push_back(partition(m));
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
    detail::expects(config.validation_minibatches == 0 || config.validation,
                    "model " + std::to_string(m) + " (" + config.name +
                        "): " + std::to_string(config.validation_minibatches) +
                        " validation minibatches, but no validation data source");
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

template <class Backend, class Context>
std::vector<double> basic_multi_model_trainer<Backend, Context>::device_speeds(std::vector<double> given) const {
  if (!given.empty()) return given;
  if constexpr (declares_device_speeds<Backend>)
    for (std::size_t d = 0; d < backend_->device_count(); ++d) given.push_back(backend_->device_speed(d));
  return given; // empty: every device at 1
}

// How model m's shards' kept forward activations leave their device, asked
// at each training forward on the device that ran it (see
// multi_model_options::evicted_forward_activations): spilled where rule
// says so, and given up before any shard where recomputing them costs less
// than fetching their bytes of shard state again.
template <class Backend, class Context>
typename basic_multi_model_trainer<Backend, Context>::runner_type::kept_forward_rule
basic_multi_model_trainer<Backend, Context>::kept_forward_rule(std::size_t m, evicted_activations rule,
                                                               shard_chain const& graph) const {
  using engine_type = typename runner_type::engine_type;
  using plan = typename runner_type::kept_forward_plan;
  // Always spilled: losing them costs copies out and back, more than a fetch.
  if (rule == evicted_activations::spill) return [](std::size_t, engine_type const&) { return plan{true, false}; };
  if constexpr (!measures_copies<Backend>) {
    return nullptr; // no link rates: recomputed, competing with the shards
  } else {
    std::vector<std::uint64_t> bytes;
    for (shard const& s : graph.shards()) bytes.push_back(s.scratch.bytes);
    return [this, m, rule, bytes = std::move(bytes)](std::size_t s, engine_type const& engine) {
      auto const& seconds = forward_seconds_[m];
      if (seconds.size() <= s) return plan{}; // not measured yet
      auto const rate = [&](auto const& statistics) {
        double const spent = std::chrono::duration<double>(statistics.copying).count();
        return spent > 0 ? static_cast<double>(statistics.copied_bytes) / spent : 0.0;
      };
      double const h2d = rate(backend_->statistics(engine.prefetch_stream()));
      plan p;
      p.spill_home =
          rule == evicted_activations::by_cost &&
          spill_beats_recompute(bytes[s], seconds[s], rate(backend_->statistics(engine.spill_stream())), h2d);
      p.before_shards = !p.spill_home && recompute_beats_refetch(bytes[s], seconds[s], h2d);
      return p;
    };
  }
}

template <class Backend, class Context>
std::size_t basic_multi_model_trainer<Backend, Context>::partition_budget(std::size_t m) const {
  auto const& config = configs_[m];
  std::size_t const devices = backend_->device_count();
  std::size_t smallest = std::numeric_limits<std::size_t>::max();
  for (std::size_t const d : config.partition_for) {
    detail::expects(d < devices, "model " + std::to_string(m) + " (" + config.name + "): partition_for names device " +
                                     std::to_string(d) + "; the backend has " + std::to_string(devices) +
                                     " devices (0 to " + std::to_string(devices - 1) + ")");
    smallest = std::min(smallest, backend_->device_budget(d));
  }
  if (config.partition_for.empty())
    for (std::size_t d = 0; d < devices; ++d) smallest = std::min(smallest, backend_->device_budget(d));
  return smallest;
}

// Shards are cut for the smallest of the devices the model is partitioned for
// (every device by default), and each then runs on the devices whose
// half-budget holds it (set_up); task_parallel instead needs the whole model
// to fit the one device it is bound to.
template <class Backend, class Context>
shard_chain basic_multi_model_trainer<Backend, Context>::partition(std::size_t m) const {
  auto const& config = configs_[m];
  auto const& model = config.model;
  std::size_t const state = any_optimizer<Context>(config.optimizer).state_per_parameter();
  bool const whole = policy_.needs_whole_models();
  std::size_t const cut_for = partition_budget(m); // checks partition_for under every policy
  std::size_t const budget = whole ? backend_->device_budget(m % backend_->device_count()) : cut_for;
  partition_input const in = model.describe(state, budget);
  if (!whole) return shard_chain::greedy(in);
  std::size_t const needed = detail::make_shard(in, 0, model.size(), 0).working_set_bytes();
  if (needed > working_set_limit(budget)) {
    throw invalid_argument("task_parallel: model " + std::to_string(m) + " (" + config.name + ") needs " +
                           format_bytes(needed) + " whole, above half the budget of device " +
                           std::to_string(m % backend_->device_count()) + " (" + format_bytes(budget) +
                           "); use a shard-parallel policy such as sharp");
  }
  return shard_chain::balanced(in, 1);
}

template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::set_up(std::vector<shard_chain> graphs,
                                                         multi_model_options const& options) {
  std::size_t host_bytes = 0;
  // by_cost needs copy rates: where the backend measures none, nothing is spilled.
  bool const may_spill =
      options.keep_forward_activations &&
      (options.evicted_forward_activations == evicted_activations::spill ||
       (options.evicted_forward_activations == evicted_activations::by_cost && measures_copies<Backend>));
  for (std::size_t m = 0; m < configs_.size(); ++m)
    host_bytes += runner_type::host_bytes(graphs[m], configs_[m].model, /*minibatches_in_flight=*/2, may_spill);
  executor_ = std::make_unique<executor_type>(*backend_, host_bytes, options.poison_freed_blocks);
  executor_->write_back_on_eviction(options.write_back_on_eviction);
  std::vector<model_costs> costs;
  std::vector<model_profile> profiles;
  std::vector<std::uint64_t> budgets;
  for (std::size_t d = 0; d < backend_->device_count(); ++d) budgets.push_back(backend_->device_budget(d));
  std::vector<std::vector<bool>> placements; // per model (sweep_driver::restrict_placement)
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    auto const& config = configs_[m];
    shard_chain const& graph = graphs[m];
    // As the device's pool allocates them; the profile's state and scratch
    // bytes sum to the same, so a simulator places the shards as this run did.
    std::vector<std::uint64_t> working_sets;
    for (shard const& s : graph.shards()) working_sets.push_back(s.working_set_bytes());
    placements.push_back(placement_by_memory(working_sets, budgets));
    // A first estimate from FLOPs (forward a third, backward with its recompute
    // the rest); what matters to the policies is the models' relative work.
    model_costs estimate{{}, {}, 0}; // the chain is the controller's to plan (run())
    model_profile profile;
    profile.name = config.name;
    profile.source = "flops";
    profile.fetch_seconds.assign(graph.size(), 0.0);
    std::size_t const sample_bytes = config.model.batch() * sizeof(float);
    for (shard const& s : graph.shards()) {
      estimate.forward_seconds.push_back(detail::estimated_forward_seconds(s.flops));
      estimate.backward_seconds.push_back(detail::estimated_backward_seconds(s.flops));
      profile.state_bytes.push_back(s.extent_bytes());
      profile.parameter_bytes.push_back(s.parameter_bytes());
      profile.home_bytes.push_back(s.home_bytes());
      profile.scratch_bytes.push_back(s.working_set_bytes() - s.extent_bytes());
      profile.input_bytes.push_back(config.model.footprint(s.first_layer).input_features * sample_bytes);
    }
    if (auto const& given = config.estimates) {
      estimate.forward_seconds = given->forward_seconds;
      estimate.backward_seconds = given->backward_seconds;
      profile.source = "estimates";
    }
    profile.forward_seconds = estimate.forward_seconds;
    profile.backward_seconds = estimate.backward_seconds;
    // Seconds only where they are seconds: FLOP estimates are ratios.
    forward_seconds_.push_back(config.estimates ? estimate.forward_seconds : std::vector<double>{});
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
    runner->keep_activations(options.keep_activations);
    runner->keep_checkpoints(options.keep_activation_checkpoints);
    runner->copy_between_devices(options.copy_activations_between_devices);
    runner->keep_forward_activations(options.keep_forward_activations);
    if (options.keep_forward_activations)
      runner->plan_kept_forward(kept_forward_rule(m, options.evicted_forward_activations, runner->graph()));
    runner->set_metric(config.metric);
    runner->guard_layers(options.guard_layers);
    executor_->add_model({config.name, [this, m](task const& t) { return data_for(m, t); }, std::move(runner)});
  }
  driver_ = std::make_unique<sweep_driver>(std::move(costs), backend_->device_count(), options.driver,
                                           device_speeds(options.device_speeds));
  driver_->keep_logs(options.record_decisions);
  for (std::size_t m = 0; m < configs_.size(); ++m)
    if (!placements[m].empty()) driver_->restrict_placement(m, std::move(placements[m]));
  results_.resize(configs_.size());
  stopped_.assign(configs_.size(), false);
  evaluations_.resize(configs_.size());
  evaluated_.resize(configs_.size());

  if (options.record_trace) {
    std::vector<std::string> names;
    for (auto const& config : configs_) names.push_back(config.name);
    tracer_ = std::make_shared<trace_observer<Backend>>(*backend_, std::move(names));
    observe(tracer_);
  }
  profiler_ = std::make_shared<profile_observer<Backend>>(*backend_, std::move(profiles), options.profile_minibatches,
                                                          [this](std::size_t m, model_costs const& measured) {
                                                            driver_->update_costs(m, measured);
                                                            forward_seconds_[m] = measured.forward_seconds;
                                                          });
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
  detail::expects(plan_ == nullptr, "multi_model_trainer: run() runs once; evaluate() after it");
  running_ = true;
  struct not_running {
    bool* flag;
    ~not_running() { *flag = false; }
  } const reset{&running_};
  started_ = std::chrono::steady_clock::now();
  auto const cpu_started = detail::process_cpu_time();
  auto const copies_before = copies_so_far();
  plan_ = std::make_unique<plan_type>(*this);
  controlling_ = true;
  if (resume_history_.empty())
    controller_.start(*plan_);
  else
    replay_history();
  drive();
  controlling_ = false;
  executor_->finish();
  makespan_ = std::chrono::steady_clock::now() - started_;
  run_cpu_time_ = detail::process_cpu_time() - cpu_started;
  run_launch_time_ = launch_time_; // run() runs once, before any evaluate()
  run_launched_ = launched_;
  run_copies_ = copies_so_far();
  for (std::size_t d = 0; d < run_copies_.size(); ++d) {
    run_copies_[d].to_device_bytes -= copies_before[d].to_device_bytes;
    run_copies_[d].to_device_time -= copies_before[d].to_device_time;
    run_copies_[d].to_host_bytes -= copies_before[d].to_host_bytes;
    run_copies_[d].to_host_time -= copies_before[d].to_host_time;
  }
  // The machine's hand-off latency, for the profile: measured now that every
  // stream is idle (finish() drained them), outside the figures above.
  run_handoff_ = executor_->handoff_round_trip(handoff_rounds, stream_check_interval_);
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    results_[m].name = configs_[m].name;
    results_[m].losses = runner(m).losses();
    if (out(m)) continue;
    results_[m].parameters = runner(m).parameters();
    if (planned(m) < configs_[m].steps)
      results_[m].stopped_early = controller_.name() + " did not continue it after " +
                                  std::to_string(done_before(m) + planned(m)) + " of " +
                                  std::to_string(done_before(m) + configs_[m].steps) + " minibatches";
  }
  for (auto* observer : observers_) observer->on_finish();
}

template <class Backend, class Context>
std::vector<std::optional<evaluation>>
basic_multi_model_trainer<Backend, Context>::evaluate(std::vector<std::size_t> const& models, data_source data,
                                                      std::size_t minibatches) {
  detail::expects(!running_, "multi_model_trainer: evaluate() cannot run during run()");
  detail::expects(plan_ != nullptr, "multi_model_trainer: evaluate() comes after run()");
  detail::expects(data != nullptr, "multi_model_trainer: evaluate() needs a data source");
  detail::expects(minibatches > 0, "multi_model_trainer: evaluate() over 0 minibatches");
  for (std::size_t m : models) {
    detail::expects(m < configs_.size(), "multi_model_trainer: evaluate(): there is no model " + std::to_string(m) +
                                             " (the sweep has " + std::to_string(configs_.size()) + ")");
    detail::expects(!stopped_[m], "multi_model_trainer: evaluate(): model " + std::to_string(m) + " (" +
                                      configs_[m].name + ") was stopped by its controller; its weights are gone");
  }
  // Malformed data would stop a model at its launch and take its trained
  // weights with it: the first minibatch's shape is checked for each model now.
  minibatch const first = data(0);
  for (std::size_t m : models) {
    auto const& model = configs_[m].model;
    try {
      detail::check_minibatch(first, model.batch(), model.input_features(),
                              model.footprint(model.size() - 1).input_features);
    } catch (invalid_argument const& bad) {
      throw invalid_argument("multi_model_trainer: evaluate(): model " + std::to_string(m) + " (" + configs_[m].name +
                             "): " + bad.what());
    }
  }
  std::vector<std::size_t> planned;
  for (std::size_t m : models) {
    evaluated_[m].reset();
    if (out(m) || std::find(planned.begin(), planned.end(), m) != planned.end()) continue;
    evaluations_[m].push_back({next_segment(m), minibatches, data, false});
    driver_->extend(m, {task_purpose::evaluate, minibatches});
    planned.push_back(m);
  }
  running_ = true;
  struct not_running {
    bool* flag;
    ~not_running() { *flag = false; }
  } const reset{&running_};
  drive();
  executor_->finish();
  std::vector<std::optional<evaluation>> out_of;
  for (std::size_t m : models) out_of.push_back(out(m) ? std::nullopt : evaluated_[m]);
  return out_of;
}

// The driver's loop, carried out on the executor.
template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::drive() {
  // A model stopped while its task was being enqueued is stopped in the driver
  // once the launch returns; observers hear of it after that, so that what
  // they ask (progress()) already counts it.
  std::vector<std::size_t> stopped_at_launch;
  auto const report_stops = [&] {
    for (std::size_t m : stopped_at_launch) {
      stop(m, *results_[m].failure);
      failed(m);
    }
    stopped_at_launch.clear();
  };
  // A stop reported after the driver's last round may give a controller work
  // to plan (the next rung, a new configuration): drive again until none is left.
  do {
    driver_->run(
        policy_,
        [&](task const& t, std::size_t d) {
          auto const launching = detail::thread_cpu_time();
          launch_outcome const outcome = executor_->launch(t, d, *driver_, observers_);
          if (outcome == launch_outcome::launched) {
            launch_time_ += detail::thread_cpu_time() - launching;
            ++launched_;
          }
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
  } while (!driver_->finished());
}

// Where a task's minibatch comes from: the model's training data, or the data
// of the evaluation pass its segment belongs to.
template <class Backend, class Context>
minibatch basic_multi_model_trainer<Backend, Context>::data_for(std::size_t m, task const& t) const {
  if (t.purpose == task_purpose::train) return configs_[m].data(done_before(m) + t.minibatch);
  for (auto const& pass : evaluations_[m])
    if (pass.segment == t.segment) return pass.data(t.minibatch);
  throw error("multi_model_trainer: no evaluation pass planned for " + describe(t)); // a bug, not bad input
}

template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::on_completion(typename executor_type::completion const& done) {
  task const& t = done.what;
  std::size_t const m = t.model;
  executor_->completed(done);
  last_device_ = done.device;
  if (auto const reason = executor_->fault(m)) {
    driver_->fail(t, done.device);
    executor_->stop(m, done.device);
    stop(m, *reason);
    failed(m);
    return;
  }
  driver_->complete(t, done.device);
  if (t.purpose == task_purpose::train && t.pass == direction::backward && t.shard == 0) ++results_[m].steps;
  // Its planned work has ended: updates still on a device
  // (write_back_on_eviction) go home now, as the simulator has them go, so
  // that its state at this checkpoint is there to read.
  if (driver_->core().model_done(m)) {
    executor_->flush(m);
    if (auto const reason = executor_->fault(m)) { // a write-back refused: its home is stale
      for (auto* observer : observers_) observer->on_complete(t, done.device); // the task itself completed
      driver_->retire(m);
      executor_->stop(m, done.device);
      stop(m, *reason);
      failed(m);
      return;
    }
  }
  std::optional<evaluation> validation;
  if (t.purpose == task_purpose::evaluate && t.shard + 1 == runner(m).graph().size()) {
    auto const pass = std::find_if(evaluations_[m].begin(), evaluations_[m].end(),
                                   [&](planned_evaluation const& e) { return e.segment == t.segment; });
    if (pass != evaluations_[m].end() && t.minibatch + 1 == pass->minibatches) { // the pass's last task
      evaluation const scored = executor_->take_evaluation(m);
      if (pass->validation) {
        results_[m].validations.push_back({done_before(m) + results_[m].steps, scored});
        validation = scored;
      } else {
        evaluated_[m] = scored;
      }
    }
  }
  // The end of the model's planned work is a checkpoint (during run() only:
  // an evaluate() pass after it is not training).
  if (controlling_ && driver_->core().model_done(m)) reached_checkpoint(m, validation);
  for (auto* observer : observers_) observer->on_complete(t, done.device);
}

// Model m's planned work has ended: its controller decides what comes next.
template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::reached_checkpoint(std::size_t m,
                                                                     std::optional<evaluation> validation) {
  results_[m].finished =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started_);
  checkpoint const reached{m, done_before(m) + results_[m].steps, std::move(validation)};
  history_.push_back({reached, std::nullopt});
  // Taken before the decision: a model continued now has its next task queued
  // as soon as the driver runs again.
  std::optional<model_snapshot> state;
  if (on_checkpoint_) {
    state = runner(m).settled_state();
    executor_->check_devices(); // a lost device may have dropped write-backs: no stale state handed out
    state->minibatches_done = reached.minibatches;
  }
  stopped_now_.clear();
  controller_.on_checkpoint(*plan_, reached);
  if (on_checkpoint_) {
    if (stopped_[m]) state.reset();
    on_checkpoint_(model_checkpoint{reached, std::move(state), runner(m).losses(), stopped_now_, &history_});
  }
}

// Model m failed (its reason is in its result): its controller hears of it.
template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::failed(std::size_t m) {
  if (!controlling_) return;
  history_.push_back({{m, done_before(m) + results_[m].steps, std::nullopt}, results_[m].failure});
  controller_.on_failure(*plan_, m);
}

// Rebuilds the controller's state from the history of the run being resumed
// and leaves the sweep as that history left it: stopped and failed models
// out, every other one planned as far as its controller had planned it.
template <class Backend, class Context>
void basic_multi_model_trainer<Backend, Context>::replay_history() {
  std::vector<detail::replay_plan::model_shape> shapes;
  for (std::size_t m = 0; m < configs_.size(); ++m)
    shapes.push_back({done_before(m) + configs_[m].steps, configs_[m].validation_minibatches > 0});
  detail::replay_plan replay(controller_.name(), std::move(shapes), backend_->device_count());
  controller_.start(replay);
  for (controller_event const& event : resume_history_) {
    if (event.failure) {
      replay.failed(event.reached.model, *event.failure);
      controller_.on_failure(replay, event.reached.model);
    } else {
      replay.reached(event.reached);
      controller_.on_checkpoint(replay, event.reached);
    }
  }
  // Checked for every model before any is changed.
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    if (replay.out(m)) continue; // whatever it resumes from is not needed
    detail::expects(done_before(m) == replay.last_checkpoint(m),
                    "multi_model_trainer: resume history: model " + std::to_string(m) + " (" + configs_[m].name +
                        ") resumes from minibatch " + std::to_string(done_before(m)) +
                        ", but its last checkpoint in the history is at minibatch " +
                        std::to_string(replay.last_checkpoint(m)) + "; resume it from the state taken there");
  }
  history_ = resume_history_;
  for (std::size_t m = 0; m < configs_.size(); ++m) {
    if (replay.out(m)) {
      driver_->retire(m);
      executor_->stop(m, 0);
      if (auto const& why = replay.failure(m)) {
        stop(m, *why);
      } else {
        stopped_[m] = true;
        results_[m].stopped_early = replay.stopped(m);
      }
      continue;
    }
    std::size_t const planned_there = replay.planned_minibatches(m);
    if (planned_there > done_before(m)) plan_->train(m, planned_there - done_before(m));
  }
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
std::vector<typename basic_multi_model_trainer<Backend, Context>::copy_totals>
basic_multi_model_trainer<Backend, Context>::copies_so_far() const {
  std::vector<copy_totals> out(backend_->device_count());
  if constexpr (measures_copies<Backend>) {
    for (std::size_t d = 0; d < out.size(); ++d) {
      auto const& engine = executor_->engines()[d];
      auto const in = backend_->statistics(engine->prefetch_stream());
      auto const back = backend_->statistics(engine->spill_stream());
      out[d] = {in.copied_bytes, in.copying, back.copied_bytes, back.copying};
    }
  }
  return out;
}

template <class Backend, class Context>
sweep_profile basic_multi_model_trainer<Backend, Context>::profile() const {
  // Everything here is of run() alone: not of filling the homes before it,
  // nor of evaluate() after it.
  auto const seconds = [](auto duration) { return std::chrono::duration<double>(duration).count(); };
  sweep_profile out;
  out.models = profiles();
  std::vector<double> const speeds = profiler_->device_speeds(backend_->device_count());
  for (std::size_t d = 0; d < backend_->device_count(); ++d) {
    device_profile device{.budget_bytes = backend_->device_budget(d), .speed = speeds[d]};
    if (d < run_copies_.size()) {
      auto const& c = run_copies_[d];
      auto rate = [&](std::uint64_t bytes, std::chrono::nanoseconds spent) {
        return spent.count() > 0 ? static_cast<double>(bytes) / seconds(spent) : 0.0;
      };
      device.h2d_bytes_per_second = rate(c.to_device_bytes, c.to_device_time);
      device.d2h_bytes_per_second = rate(c.to_host_bytes, c.to_host_time);
    }
    out.devices.push_back(device);
  }
  out.handoff_seconds = seconds(run_handoff_);
  if (run_launched_ == 0) return out;
  double const tasks = static_cast<double>(run_launched_);
  out.launch_seconds = seconds(run_launch_time_) / tasks;
  if constexpr (shares_host_cores<Backend> && measures_copies<Backend>) {
    // The host's cores ran the compute, the copies, the launches and the rest:
    // stream hand-offs, pool bookkeeping, completions. That rest, per task, is
    // what the run's CPU time leaves once the others are taken out (compute
    // as profiled, times the minibatches each measured model trained; the
    // compute of evaluation passes stays in the rest).
    out.host_cores = std::max(1U, std::thread::hardware_concurrency());
    double other = seconds(run_cpu_time_) - seconds(run_launch_time_);
    for (auto const& c : run_copies_) other -= seconds(c.to_device_time) + seconds(c.to_host_time);
    for (std::size_t m = 0; m < out.models.size(); ++m) {
      auto const& p = out.models[m];
      if (p.source != "measured") continue; // estimates and FLOP counts are not seconds of this machine
      double minibatch = 0;
      for (std::size_t s = 0; s < p.forward_seconds.size(); ++s)
        minibatch += p.forward_seconds[s] + p.backward_seconds[s];
      other -= minibatch * static_cast<double>(results_[m].steps);
    }
    out.task_host_seconds = std::max(0.0, other / tasks);
  }
  return out;
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
    out.write_backs += engine->statistics().write_backs;
    out.activations_kept += engine->statistics().activations_kept;
    out.activations_read_on_device += engine->statistics().activations_read_here;
    out.activation_bytes_read_on_device += engine->statistics().activation_bytes_read_here;
    out.activation_checkpoints_kept += engine->statistics().checkpoints_kept;
    out.activation_checkpoints_read_on_device += engine->statistics().checkpoints_read_here;
    out.activation_checkpoint_bytes_read_on_device += engine->statistics().checkpoint_bytes_read_here;
    out.activations_copied_between_devices += engine->statistics().activations_read_by_other_devices;
    out.activation_bytes_copied_between_devices += engine->statistics().activation_bytes_read_by_other_devices;
    out.forward_activations_kept += engine->statistics().forward_activations_kept;
    out.recomputations_avoided += engine->statistics().recomputations_avoided;
    out.forward_activations_spilled += engine->statistics().forward_activations_spilled;
    out.forward_activation_bytes_spilled += engine->statistics().forward_activation_bytes_spilled;
    out.forward_activations_given_up_first += engine->statistics().forward_activations_given_up_first;
    out.fragmented_evictions += engine->statistics().fragmented_evictions;
  }
  for (auto const& model : executor_->models()) {
    out.activation_bytes_to_device += model.runner->activation_bytes_in();
    out.forward_activation_bytes_read_back += model.runner->forward_activation_bytes_in();
    out.activation_bytes_to_host += model.runner->activation_bytes_out();
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
