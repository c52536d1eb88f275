// One sweep over MPI ranks, one rank per machine: every rank describes the
// same configurations (the program runs the same code on each), every rank
// computes the same placement of whole models on ranks (rank_placement.hpp),
// and each trains its own models with the multi-model trainer on its own
// devices, in rounds. Between rounds the ranks tell each other how far their
// models are; rank 0 shows the checkpoints reached to the sweep's controller
// (full_grid, successive halving, ASHA, a user's), which decides from every
// rank's validation metrics how far each model trains next and which stop;
// and a rank short of work takes a model from the rank expected to finish
// last. A model trains exactly as it would alone, wherever it is and however
// often it moves, so its final weights are bitwise those of a one-process
// sweep. Rank 0 then gathers every model's result.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/mpi/detail/global_plan.hpp"
#include "hydra/mpi/detail/transport.hpp"
#include "hydra/mpi/detail/wire.hpp"
#include "hydra/mpi/environment.hpp"
#include "hydra/mpi/rank_placement.hpp"
#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/node_balancer.hpp"
#include "hydra/select/full_grid.hpp"
#include "hydra/train/multi_model_trainer.hpp"
#include "hydra/train/sweep_checkpoint.hpp"

namespace hydra::mpi {

struct rank_summary {
  std::string host;
  // Why its sweep ended early (its device was lost, a model did not fit its
  // devices): its models that had not finished carry it as their failure.
  std::optional<std::string> error;
  std::size_t devices = 0;
  std::vector<std::size_t> models;   // the configurations it ended with, by index
  std::chrono::nanoseconds busy{0};  // its trainers' runs, summed over the rounds
  std::uint64_t bytes_to_device = 0; // its trainers' copies, summed over the rounds
  std::uint64_t bytes_to_host = 0;
  std::uint64_t bytes_sent_to_rank_zero = 0; // its results message
  std::uint64_t models_moved_in = 0;         // models it took from other ranks
  std::uint64_t bytes_moved_in = 0;          // their messages
};

// A model that changed ranks between two rounds.
struct rank_move {
  std::size_t model = 0, from = 0, to = 0;
  std::size_t after_minibatches = 0; // how far it had trained
  std::uint64_t bytes = 0;           // its message (known to the receiving rank; 0 elsewhere)
};

struct distributed_report {
  // Every rank: each configuration's rank at the start and at the end, the
  // moves between, the rounds, and why this rank's sweep ended early, if it did.
  std::vector<std::size_t> rank_of;
  std::vector<std::size_t> starting_rank;
  std::vector<rank_move> moves;
  std::size_t rounds = 0; // rounds trained
  std::optional<std::string> error;
  // Rank 0 only: every checkpoint the controller was shown, in order (global
  // model indices), and the controller after the run (its rungs, say).
  controller_history history;
  std::optional<any_controller> controller;
  // Rank 0 only (empty elsewhere): every configuration's result in the
  // configurations' order, and each rank's summary.
  std::vector<model_result> results;
  std::vector<rank_summary> ranks;
  // Rank 0, with multi_model_options::record_trace: every rank's schedule,
  // its models by their configurations' indices, its devices numbered after
  // the lower ranks' (rank 0's first), its times since the sweep began on its
  // own clock, training minibatches counted over each model's training (a
  // task's position and segment count within its rank's round).
  std::vector<trace_slice> trace;
};

// How the ranks share the work beyond the first placement.
struct distributed_options {
  // Minibatches each model trains per round at most (a round also ends at
  // each model's next checkpoint). Between rounds a rank with fewer
  // unfinished models than devices takes one from the rank expected to finish
  // last (the node balancer's rule): the model's state, losses and validation
  // points go over in one message, in the checkpoint format, and it continues
  // there bitwise as if it had not moved. 0: rounds end at checkpoints only,
  // and no model moves.
  std::size_t round_minibatches = 0;
  // The network's rate, for the balancer's estimate of what a move costs.
  double network_bytes_per_second = 12.5e9;
  // Called on rank 0 after each round with every model's state, losses and
  // failure, and the controller's history (what checkpoint_directory::save
  // writes). With it, every rank sends its models' state to rank 0 each round.
  std::function<void(sweep_checkpoint const&)> on_round{};
  // Continue from such a checkpoint (the same on every rank: read it from a
  // shared file system, or broadcast() it): each model resumes from its state
  // there, its losses and validation points so far kept; a model that had
  // failed stays failed. The configurations stay those of the original sweep
  // (the same steps); the rank count may differ. The result is bitwise that
  // of an uninterrupted run. The controller is shown the checkpoint's history
  // again, as one process's trainer shows it resume_history, so that it plans
  // from where it was: successive halving's rungs resume where they were.
  // (ASHA's decisions depend on how many models train at once, twice the
  // devices of all ranks unless asha_options::max_running fixes it: resumed
  // on other devices, it keeps other models.)
  std::optional<sweep_checkpoint> resume_from{};
  // What on_round's checkpoints are labelled with, and what resume_from's
  // must carry. Empty: "mpi sweep " and a hash of the configurations. A
  // program that also runs its sweep in one process, with a checkpoint file
  // of its own in the same format, can pass the label it writes there, so
  // that one checkpoint resumes either way.
  std::string fingerprint{};
};

namespace detail {

// FNV-1a, for the values every rank must agree on.
inline void mix(std::uint64_t& hash, void const* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    hash ^= static_cast<unsigned char const*>(data)[i];
    hash *= 1099511628211ULL;
  }
}

// The configurations' names, step counts and parameter counts: ranks that
// describe different sweeps would place and gather nonsense.
template <class Context>
[[nodiscard]] std::uint64_t sweep_fingerprint(std::vector<basic_model_config<Context>> const& configs) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (auto const& config : configs) {
    mix(hash, config.name.data(), config.name.size());
    std::uint64_t const shape[2] = {config.steps, config.model.parameter_count()};
    mix(hash, shape, sizeof shape);
  }
  return hash;
}

} // namespace detail

// Runs the sweep `configs` (the same on every rank of `comm`) over the ranks,
// each training its share on `backend` (its own devices) with a policy from
// `make_policy` (one per round) and `options` (the controller among them: it
// runs on rank 0). Collective: every rank of `comm` calls it, with the same
// configurations and options. Rank 0 returns every model's result. A rank
// whose sweep ends with an error (which would end a one-process sweep) does
// not end the others': its unfinished models fail with the error, naming the
// rank and its machine, it takes no more models, and the rest go on.
// options.on_progress is called on rank 0 after each round, with every
// model's minibatches (device_busy_fraction is left empty).
// options.device_speeds, when given, must fit every rank's devices (left
// empty, each rank's backend declares its own).
template <class Backend, class Context>
distributed_report run_sweep(MPI_Comm comm, Backend& backend, std::vector<basic_model_config<Context>> configs,
                             std::function<any_policy()> const& make_policy, multi_model_options options = {},
                             distributed_options sharing = {}) {
  int const me = rank(comm);
  int const ranks = size(comm);
  auto const self = static_cast<std::size_t>(me);
  std::size_t const models = configs.size();

  // First the ranks agree on the sweep and on every option that shapes it, so
  // that each refusal below is reached alike on every rank (none left waiting
  // for one that gave up), and every rank decides the same moves.
  std::uint64_t options_hash = 14695981039346656037ULL;
  std::string const controller_name = options.controller.name();
  detail::mix(options_hash, controller_name.data(), controller_name.size());
  std::uint64_t const round = sharing.round_minibatches;
  detail::mix(options_hash, &round, sizeof round);
  detail::mix(options_hash, &sharing.network_bytes_per_second, sizeof(double));
  detail::mix(options_hash, sharing.fingerprint.data(), sharing.fingerprint.size());
  if (sharing.resume_from) { // all of it: a rank with an older copy would decide otherwise
    auto const bytes = encode(*sharing.resume_from);
    detail::mix(options_hash, bytes.data(), bytes.size());
  }
  std::string const host = host_name(); // before any collective call: it may throw
  bool const own_snapshots = std::any_of(configs.begin(), configs.end(), [](auto const& c) { return c.resume; });
  std::uint64_t const flags = (options.resume_history.empty() ? 0U : 1U) | (own_snapshots ? 2U : 0U) |
                              (options.on_checkpoint ? 4U : 0U) | (sharing.resume_from ? 8U : 0U) |
                              (options.record_trace ? 16U : 0U);
  std::uint64_t const agreed[4] = {detail::sweep_fingerprint(configs), models, options_hash, flags};
  std::uint64_t lowest[4] = {}, highest[4] = {};
  check(MPI_Allreduce(agreed, lowest, 4, MPI_UINT64_T, MPI_MIN, comm), "MPI_Allreduce");
  check(MPI_Allreduce(agreed, highest, 4, MPI_UINT64_T, MPI_MAX, comm), "MPI_Allreduce");
  hydra::detail::expects(lowest[0] == highest[0] && lowest[1] == highest[1],
                         "mpi sweep: the ranks describe different sweeps (model counts " + std::to_string(lowest[1]) +
                             " to " + std::to_string(highest[1]) +
                             ", or other names or step counts): every rank must build the same configurations");
  hydra::detail::expects(
      lowest[2] == highest[2] && lowest[3] == highest[3],
      "mpi sweep: the ranks were given different options (controller, round_minibatches, network "
      "rate, fingerprint, checkpoint to resume from, record_trace, or callbacks): every rank must be given the "
      "same");
  hydra::detail::expects(options.resume_history.empty(),
                         "mpi sweep: resume_history resumes a one-process sweep; across ranks a sweep resumes from a "
                         "checkpoint of the whole sweep (distributed_options::resume_from)");
  hydra::detail::expects(!own_snapshots,
                         "mpi sweep: a model resumes from a snapshot of its own; across ranks a sweep "
                         "resumes from a checkpoint of the whole sweep (distributed_options::resume_from)");
  hydra::detail::expects(
      !options.on_checkpoint,
      "mpi sweep: options.on_checkpoint would see each rank's models under the rank's own "
      "numbers; across ranks every model's state comes to rank 0 through distributed_options::on_round");
  hydra::detail::expects(sharing.network_bytes_per_second > 0,
                         "mpi sweep: the network's rate must be > 0 bytes per second");

  std::uint64_t const my_devices = backend.device_count();
  std::vector<std::uint64_t> devices(static_cast<std::size_t>(ranks));
  check(MPI_Allgather(&my_devices, 1, MPI_UINT64_T, devices.data(), 1, MPI_UINT64_T, comm), "MPI_Allgather");
  std::vector<std::size_t> const device_counts(devices.begin(), devices.end());
  std::size_t first_device = 0; // this rank's device 0 among every rank's
  for (std::size_t r = 0; r < self; ++r) first_device += device_counts[r];
  std::vector<trace_slice> my_trace;
  distributed_report report;
  report.rank_of = place_on_ranks(configs, device_counts);
  report.starting_rank = report.rank_of;

  // What every rank knows of every model (the same on each), as doubles so
  // that one MPI_MAX reduction merges what each model's owner says.
  std::vector<double> done(models, 0), planned(models, 0), failed(models, 0), stopped(models, 0);
  std::vector<double> per_minibatch(models, 0), rank_failed(static_cast<std::size_t>(ranks), 0);
  for (std::size_t m = 0; m < models; ++m)
    per_minibatch[m] = estimated_seconds(configs[m]) / static_cast<double>(std::max<std::size_t>(configs[m].steps, 1));
  // What only a model's owner holds.
  struct held {
    std::optional<model_snapshot> state;
    model_result result;
  };
  std::vector<std::optional<held>> own(models);
  for (std::size_t m = 0; m < models; ++m)
    if (report.rank_of[m] == self) {
      own[m].emplace();
      own[m]->result.name = configs[m].name;
    }
  std::string const fingerprint_text =
      sharing.fingerprint.empty() ? "mpi sweep " + std::to_string(agreed[0]) : sharing.fingerprint;
  std::vector<std::size_t> failed_before; // in the checkpoint resumed from
  if (auto const& from = sharing.resume_from) {
    hydra::detail::expects(from->fingerprint == fingerprint_text && from->models.size() == models,
                           "mpi sweep: the checkpoint to resume from is of another sweep (" + from->fingerprint + ", " +
                               std::to_string(from->models.size()) + " models; this one is " + fingerprint_text + ", " +
                               std::to_string(models) + " models)");
    for (std::size_t m = 0; m < models; ++m) {
      auto const& saved = from->models[m];
      hydra::detail::expects(saved.name == configs[m].name, "mpi sweep: the checkpoint's model " + std::to_string(m) +
                                                                " is " + saved.name + ", not " + configs[m].name);
      std::size_t const trained = saved.state ? saved.state->minibatches_done : saved.losses.size();
      hydra::detail::expects(trained <= configs[m].steps,
                             "mpi sweep: the checkpoint's " + saved.name + " has trained " + std::to_string(trained) +
                                 " minibatches, more than its " + std::to_string(configs[m].steps));
      if (!saved.failure.empty()) failed_before.push_back(m);
      done[m] = static_cast<double>(trained);
      if (!own[m]) continue;
      own[m]->state = saved.state;
      own[m]->result.losses = saved.losses;
      own[m]->result.steps = trained;
      if (!saved.failure.empty()) own[m]->result.failure = saved.failure;
      for (auto const& event : from->history)
        if (event.reached.model == m && event.reached.validation)
          own[m]->result.validations.push_back(
              {.minibatches = event.reached.minibatches, .metrics = *event.reached.validation});
    }
  }

  // The controller, on rank 0 only; its decisions reach the others by broadcast.
  std::optional<detail::global_plan> plan;
  if (me == 0) {
    std::vector<std::size_t> max;
    std::vector<bool> validation;
    for (auto const& config : configs) {
      max.push_back(config.steps);
      validation.push_back(config.validation_minibatches > 0);
    }
    std::size_t all_devices = 0;
    for (std::size_t d : device_counts) all_devices += d;
    plan.emplace(std::move(max), std::move(validation), all_devices, controller_name, done, planned, failed, stopped);
    report.controller = options.controller;
    if (sharing.resume_from) report.history = sharing.resume_from->history;
  }
  // Rank 0 runs `decide` (the controller, the user's callback) and tells every
  // rank whether it threw; if it did, every rank throws, none waits.
  auto on_rank_zero = [&](auto&& decide) {
    std::exception_ptr thrown;
    if (me == 0) {
      try {
        decide();
      } catch (...) {
        thrown = std::current_exception();
      }
    }
    int failed_here = thrown ? 1 : 0;
    check(MPI_Bcast(&failed_here, 1, MPI_INT, 0, comm), "MPI_Bcast");
    if (thrown) std::rethrow_exception(thrown);
    if (failed_here != 0)
      throw error("mpi sweep: rank 0 ended the sweep (its controller, on_round or on_progress threw)");
  };
  // A resumed sweep's controller is shown its history again, as the
  // one-process trainer does, so that it plans from where it was.
  on_rank_zero([&] {
    report.controller->start(*plan);
    if (!sharing.resume_from) return;
    for (auto const& event : sharing.resume_from->history) {
      if (event.failure) {
        failed[event.reached.model] = 1;
        report.controller->on_failure(*plan, event.reached.model);
      } else {
        report.controller->on_checkpoint(*plan, event.reached);
      }
    }
  });
  detail::broadcast_values(comm, planned);
  detail::broadcast_values(comm, stopped);
  for (std::size_t m : failed_before) failed[m] = 1;

  int wants_checkpoints = sharing.on_round ? 1 : 0; // rank 0's callback is the one that counts
  check(MPI_Bcast(&wants_checkpoints, 1, MPI_INT, 0, comm), "MPI_Bcast");
  std::chrono::nanoseconds busy{0};
  std::uint64_t bytes_in = 0, moves_in = 0, to_device = 0, to_host = 0;
  auto const started = std::chrono::steady_clock::now();
  auto unfinished = [&](std::size_t m) { return failed[m] == 0 && stopped[m] == 0 && done[m] < planned[m]; };
  // The local trainers get every model's plan from here: each runs its round
  // to the end under full_grid.
  multi_model_options local_options = options;
  local_options.controller = full_grid{};
  local_options.on_progress = nullptr; // a rank's trainer would count its own models: rank 0 reports all
  std::vector<double> const done_at_start = done;

  for (std::size_t round_index = 0;; ++round_index) {
    report.rounds = round_index + 1;
    // This rank's share of the round: each model to its next checkpoint, or
    // round_minibatches, whichever comes first; evaluated only at a checkpoint.
    std::vector<std::size_t> mine;
    std::vector<bool> reaches;
    std::vector<basic_model_config<Context>> local;
    for (std::size_t m = 0; m < models; ++m) {
      if (report.rank_of[m] != self || !unfinished(m) || own[m]->result.failure) continue;
      auto const left = static_cast<std::size_t>(planned[m] - done[m]);
      basic_model_config<Context> config = configs[m];
      config.steps = sharing.round_minibatches == 0 ? left : std::min(left, sharing.round_minibatches);
      config.resume = own[m]->state;
      reaches.push_back(config.steps == left);
      if (!reaches.back()) {
        config.validation = {};
        config.validation_minibatches = 0;
      }
      mine.push_back(m);
      local.push_back(std::move(config));
    }
    std::vector<double> my_done(models, 0), my_failed(models, 0), my_per_minibatch(models, 0);
    std::vector<detail::round_event> events;
    std::size_t recorded = 0; // of `mine`, the models whose round is fully taken in
    try {
      if (!local.empty() && !report.error) {
        basic_multi_model_trainer<Backend, Context> trainer(backend, std::move(local), make_policy(), local_options);
        trainer.run();
        if (options.record_trace) {
          auto const shift = std::chrono::duration_cast<std::chrono::nanoseconds>(trainer.trace_origin() - started);
          for (auto slice : trainer.trace()) {
            // A training task's minibatch counted over the model's whole training, not this round's.
            if (slice.task.purpose == task_purpose::train)
              slice.task.minibatch += static_cast<std::size_t>(done[mine[slice.task.model]]);
            slice.task.model = mine[slice.task.model];
            slice.device += first_device;
            slice.start += shift;
            slice.end += shift;
            my_trace.push_back(std::move(slice));
          }
        }
        auto const copied = trainer.report();
        busy += copied.makespan;
        to_device += copied.bytes_to_device;
        to_host += copied.bytes_to_host;
        auto const profiles = trainer.profiles();
        for (std::size_t k = 0; k < mine.size(); ++k) {
          std::size_t const m = mine[k];
          auto& mine_now = *own[m];
          auto const& r = trainer.results()[k];
          mine_now.result.losses.insert(mine_now.result.losses.end(), r.losses.begin(), r.losses.end());
          mine_now.result.steps += r.steps;
          mine_now.result.validations.insert(mine_now.result.validations.end(), r.validations.begin(),
                                             r.validations.end());
          mine_now.result.finished = std::chrono::steady_clock::now() - started;
          if (r.failure) {
            mine_now.result.failure = r.failure;
            mine_now.state.reset();
            events.push_back(
                {.model = m, .failure = r.failure, .minibatches = mine_now.result.steps, .validation = {}});
          } else {
            mine_now.state = trainer.snapshot(k);
            if (reaches[k])
              events.push_back(
                  {.model = m,
                   .failure = std::nullopt,
                   .minibatches = mine_now.result.steps,
                   .validation = r.validations.empty() ? std::nullopt : std::optional(r.validations.back().metrics)});
          }
          if (profiles[k].source == "measured") {
            double seconds = 0;
            for (double f : profiles[k].forward_seconds) seconds += f;
            for (double b : profiles[k].backward_seconds) seconds += b;
            my_per_minibatch[m] = seconds;
          }
          ++recorded;
        }
      }
    } catch (std::exception const& e) {
      report.error = e.what();
    } catch (...) {
      report.error = "an exception that is not a std::exception";
    }
    if (report.error) // the models whose round was not taken in are in no known state
      for (std::size_t k = recorded; k < mine.size(); ++k) {
        own[mine[k]]->state.reset();
        own[mine[k]]->result.failure =
            "rank " + std::to_string(me) + " (on " + host + ") ended its sweep: " + *report.error;
      }
    // A rank whose sweep ended fails every model of its own still short of
    // its plan; every failure the others have not heard of (this round's, a
    // model lost in a move) goes to the controller.
    for (std::size_t m = 0; m < models; ++m) {
      if (report.rank_of[m] != self) continue;
      auto& mine_now = *own[m];
      bool const short_of_plan = static_cast<double>(mine_now.result.steps) < planned[m];
      if (report.error && !mine_now.result.failure && stopped[m] == 0 && short_of_plan)
        mine_now.result.failure = "rank " + std::to_string(me) + " (on " + host + ") ended its sweep: " + *report.error;
      bool const told = std::any_of(events.begin(), events.end(), [&](auto const& e) { return e.model == m; });
      if (mine_now.result.failure && failed[m] == 0 && !told)
        events.push_back(
            {.model = m, .failure = mine_now.result.failure, .minibatches = mine_now.result.steps, .validation = {}});
      my_done[m] = static_cast<double>(mine_now.result.steps);
      my_failed[m] = mine_now.result.failure ? 1 : 0;
    }
    std::vector<double> my_rank_failed(static_cast<std::size_t>(ranks), 0);
    my_rank_failed[self] = report.error ? 1 : 0;
    std::vector<double> measured(models, 0);
    check(MPI_Allreduce(my_done.data(), done.data(), static_cast<int>(models), MPI_DOUBLE, MPI_MAX, comm),
          "MPI_Allreduce");
    check(MPI_Allreduce(my_failed.data(), failed.data(), static_cast<int>(models), MPI_DOUBLE, MPI_MAX, comm),
          "MPI_Allreduce");
    check(MPI_Allreduce(my_rank_failed.data(), rank_failed.data(), ranks, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
    check(MPI_Allreduce(my_per_minibatch.data(), measured.data(), static_cast<int>(models), MPI_DOUBLE, MPI_MAX, comm),
          "MPI_Allreduce");
    for (std::size_t m = 0; m < models; ++m)
      if (measured[m] > 0) per_minibatch[m] = measured[m];

    // The checkpoints reached and the failures, to rank 0's controller, in
    // model order (the same whatever the ranks' timing); its decisions back.
    detail::wire_writer reached;
    for (auto const& event : events) detail::put(reached, event);
    auto const gathered = detail::gather_bytes(comm, std::move(reached.bytes()));
    on_rank_zero([&] {
      std::vector<detail::round_event> all;
      for (std::size_t from = 0; from < gathered.size(); ++from) {
        detail::wire_reader in(gathered[from], "rank " + std::to_string(from));
        while (!in.done()) all.push_back(detail::get_round_event(in));
      }
      std::sort(all.begin(), all.end(), [](auto const& a, auto const& b) { return a.model < b.model; });
      for (auto const& event : all) {
        if (event.model >= models) throw error("mpi sweep: a round event for model " + std::to_string(event.model));
        checkpoint const at{.model = event.model, .minibatches = event.minibatches, .validation = event.validation};
        if (event.failure) {
          report.history.push_back({.reached = at, .failure = event.failure});
          report.controller->on_failure(*plan, event.model);
        } else {
          report.history.push_back({.reached = at, .failure = std::nullopt});
          report.controller->on_checkpoint(*plan, at);
        }
      }
      if (!options.on_progress) return;
      sweep_progress progress;
      progress.elapsed = std::chrono::steady_clock::now() - started;
      for (std::size_t m = 0; m < models; ++m) {
        progress.steps_done.push_back(static_cast<std::size_t>(done[m] - done_at_start[m]));
        progress.steps_total.push_back(configs[m].steps - static_cast<std::size_t>(done_at_start[m]));
        if (stopped[m] != 0 || failed[m] != 0) // as in one process: a failed model is stopped
          ++progress.models_stopped;
        else if (planned[m] > 0 && done[m] >= planned[m]) // (a model not started has a plan of 0)
          ++progress.models_finished;
      }
      options.on_progress(progress);
    });
    detail::broadcast_values(comm, planned);
    detail::broadcast_values(comm, stopped);
    for (std::size_t m = 0; m < models; ++m)
      if (stopped[m] != 0 && own[m]) own[m]->state.reset(); // its memory is released: no weights to keep
    bool any_left = false;
    for (std::size_t m = 0; m < models; ++m) any_left = any_left || unfinished(m);

    if (wants_checkpoints) {
      // Every model's state at this round's end, to rank 0.
      detail::wire_writer states;
      for (std::size_t m = 0; m < models; ++m) {
        if (!own[m]) continue;
        states.put<std::uint64_t>(m);
        detail::put_saved(states, own[m]->state, own[m]->result);
      }
      auto const parts = detail::gather_bytes(comm, std::move(states.bytes()));
      on_rank_zero([&] {
        sweep_checkpoint saved{.fingerprint = fingerprint_text,
                               .elapsed_seconds =
                                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                               .models = std::vector<sweep_checkpoint::model>(models),
                               .history = report.history};
        for (std::size_t from = 0; from < parts.size(); ++from) {
          detail::wire_reader in(parts[from], "rank " + std::to_string(from));
          while (!in.done()) {
            auto const m = in.get<std::uint64_t>();
            if (m >= models)
              throw error("mpi sweep: rank " + std::to_string(from) + " sent the state of model " + std::to_string(m) +
                          " of " + std::to_string(models));
            saved.models[m] = detail::get_saved(in);
          }
        }
        sharing.on_round(saved);
      });
    }
    if (!any_left) break;

    // Moves, decided alike on every rank from what every rank now knows.
    std::vector<placed_model> view(models);
    for (std::size_t m = 0; m < models; ++m) {
      double const state_bytes = static_cast<double>(configs[m].model.parameter_count()) * sizeof(float) * 3;
      view[m] = {.node = report.rank_of[m],
                 .remaining_seconds = per_minibatch[m] * std::max(0.0, planned[m] - done[m]),
                 .unfinished = unfinished(m),
                 .movable = true,
                 .move_seconds = state_bytes / sharing.network_bytes_per_second};
    }
    std::vector<node_capacity> nodes;
    for (std::size_t devices_here : device_counts)
      nodes.push_back({.devices = devices_here, .speed = static_cast<double>(devices_here)});
    std::vector<rank_move> moves;
    while (sharing.round_minibatches > 0) {
      auto const move = pick_move(view, nodes, [&](std::size_t, std::size_t node) { return rank_failed[node] == 0; });
      if (!move) break;
      view[move->model].node = move->to;
      view[move->model].movable = false; // one move per model per round
      moves.push_back({.model = move->model,
                       .from = move->from,
                       .to = move->to,
                       .after_minibatches = static_cast<std::size_t>(done[move->model]),
                       .bytes = 0});
    }
    // Each moved model as a one-model checkpoint (its validation points ride
    // in the format's history, under its index in the message, 0): sends
    // posted first, so that two ranks sending to each other do not wait on
    // each other.
    std::vector<std::vector<std::byte>> outgoing;
    outgoing.reserve(moves.size());
    std::vector<std::uint64_t> lengths(moves.size());
    std::vector<MPI_Request> requests;
    for (std::size_t k = 0; k < moves.size(); ++k) {
      auto const& move = moves[k];
      if (move.from != self) continue;
      auto& leaving = *own[move.model];
      sweep_checkpoint message;
      message.fingerprint = fingerprint_text;
      message.models.push_back(
          {.name = leaving.result.name, .state = leaving.state, .losses = leaving.result.losses, .failure = {}});
      for (auto const& point : leaving.result.validations)
        message.history.push_back(
            {.reached = {.model = 0, .minibatches = point.minibatches, .validation = point.metrics},
             .failure = std::nullopt});
      // Posted whatever happens (the receiver waits for it): a model that
      // cannot be encoded goes as an empty message, which fails it there.
      try {
        outgoing.push_back(encode(message));
      } catch (...) {
        outgoing.emplace_back();
      }
      lengths[k] = outgoing.back().size();
      detail::post_bytes(comm, static_cast<int>(move.to), outgoing.back(), lengths[k], requests);
      own[move.model].reset();
    }
    for (auto& move : moves) {
      report.rank_of[move.model] = move.to;
      if (move.to != self) continue;
      std::vector<char> const bytes = detail::receive_bytes(comm, static_cast<int>(move.from));
      auto& taken = own[move.model].emplace();
      taken.result.name = configs[move.model].name;
      taken.result.steps = static_cast<std::size_t>(done[move.model]);
      try {
        auto const arrived =
            decode(std::as_bytes(std::span(bytes)), "a model moved from rank " + std::to_string(move.from));
        hydra::detail::expects(arrived.models.size() == 1 && arrived.models[0].name == configs[move.model].name,
                               "mpi sweep: the model that arrived from rank " + std::to_string(move.from) + " is not " +
                                   configs[move.model].name);
        taken.state = arrived.models[0].state;
        taken.result.losses = arrived.models[0].losses;
        for (auto const& event : arrived.history)
          if (event.reached.validation)
            taken.result.validations.push_back(
                {.minibatches = event.reached.minibatches, .metrics = *event.reached.validation});
      } catch (std::exception const& e) {
        // The model is lost (its sender let it go); the sweep goes on. The
        // next round tells every rank it failed.
        taken.result.failure = e.what();
      }
      move.bytes = bytes.size();
      bytes_in += bytes.size();
      ++moves_in;
    }
    if (!requests.empty())
      check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    report.moves.insert(report.moves.end(), moves.begin(), moves.end());
  }

  // Every rank's own models to rank 0.
  detail::wire_writer out;
  out.put(host);
  out.put<std::uint64_t>(my_devices);
  out.put<std::int64_t>(busy.count());
  out.put(report.error);
  out.put<std::uint64_t>(bytes_in);
  out.put<std::uint64_t>(moves_in);
  out.put<std::uint64_t>(to_device);
  out.put<std::uint64_t>(to_host);
  out.put<std::uint64_t>(my_trace.size());
  for (auto const& slice : my_trace) detail::put(out, slice);
  for (std::size_t m = 0; m < models; ++m) {
    if (!own[m]) continue;
    if (own[m]->state && !own[m]->result.failure) own[m]->result.parameters = own[m]->state->parameters;
    out.put<std::uint64_t>(m);
    detail::put(out, own[m]->result);
  }
  // Every message is received before any is read: a rank whose message
  // cannot be read must not leave the ranks after it waiting to send.
  auto const all = detail::gather_bytes(comm, std::move(out.bytes()));
  if (me != 0) return report;
  report.results.resize(models);
  for (int from = 0; from < ranks; ++from) {
    auto const& bytes = all[static_cast<std::size_t>(from)];
    detail::wire_reader in(bytes, "rank " + std::to_string(from));
    rank_summary summary;
    summary.bytes_sent_to_rank_zero = from == 0 ? 0 : bytes.size();
    summary.host = in.text();
    summary.devices = in.get<std::uint64_t>();
    summary.busy = std::chrono::nanoseconds(in.get<std::int64_t>());
    summary.error = in.maybe_text();
    summary.bytes_moved_in = in.get<std::uint64_t>();
    summary.models_moved_in = in.get<std::uint64_t>();
    summary.bytes_to_device = in.get<std::uint64_t>();
    summary.bytes_to_host = in.get<std::uint64_t>();
    auto const slices = in.get<std::uint64_t>();
    for (std::uint64_t k = 0; k < slices; ++k) {
      report.trace.push_back(detail::get_trace_slice(in));
      if (report.trace.back().task.model >= models)
        throw error("mpi sweep: rank " + std::to_string(from) + " sent a trace slice of model " +
                    std::to_string(report.trace.back().task.model));
    }
    while (!in.done()) {
      auto const m = in.get<std::uint64_t>();
      if (m >= models || report.rank_of[m] != static_cast<std::size_t>(from))
        throw error("mpi sweep: rank " + std::to_string(from) + " sent a result for model " + std::to_string(m) +
                    ", which is not its own");
      report.results[m] = detail::get_result(in);
      summary.models.push_back(m);
    }
    report.ranks.push_back(std::move(summary));
  }
  // What the controller decided, in each result's words.
  for (std::size_t m = 0; m < models; ++m) {
    auto& r = report.results[m];
    if (r.failure) continue;
    if (auto const& why = plan->reason(m)) {
      r.stopped_early = *why;
      r.parameters.clear();
    } else if (r.steps < configs[m].steps) {
      r.stopped_early = controller_name + " did not continue it after " + std::to_string(r.steps) + " of " +
                        std::to_string(configs[m].steps) + " minibatches";
    }
  }
  return report;
}

} // namespace hydra::mpi
