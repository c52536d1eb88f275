// The main job over MPI ranks: `mpirun -np N model_selection ...` with the
// flags of a one-process run. Every rank reads the same data and builds the
// same grid; hydra::mpi::run_sweep places whole models on the ranks, runs the
// search's controller on rank 0 from every rank's validation metrics, and
// moves models between rounds to ranks with idle devices. Rank 0 writes the
// checkpoints (in the one-process run's format and under its fingerprint, so
// that either kind of run resumes the other's), judges the chosen model on
// the test set and prints the table. A header beside sweep.hpp, whose pieces
// (the checks, the data, the configurations, the summary) it shares with the
// one-process run.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include "hydra/mpi.hpp"
#include "sweep.hpp"

namespace model_selection {

// Whether an MPI launcher (mpirun, mpiexec, srun) started this process: its
// environment says so. A process started without one never touches MPI.
inline bool launched_by_mpi() {
  for (char const* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

// What rank 0 reports beyond a one-process run's outcome.
struct across_ranks_report {
  std::size_t ranks = 0, devices = 0, rounds = 0; // devices: of every rank
  std::vector<hydra::mpi::rank_summary> summaries;
  std::vector<hydra::mpi::rank_move> moves;
  std::vector<std::size_t> rank_of;       // each model's rank at the end
  std::vector<std::size_t> starting_rank; // and where it was placed
};

namespace across_ranks_detail {

// Discards what ranks other than 0 would log.
class null_buffer : public std::streambuf {
protected:
  int_type overflow(int_type c) override { return traits_type::not_eof(c); }
};

} // namespace across_ranks_detail

// Runs `step` on every rank of `comm`; when it threw on any, every rank
// throws, with the message of the lowest rank where it threw (naming that
// rank and its machine unless it is rank 0). Steps that can fail on one rank
// alone (a data file missing on one machine, a budget larger than one
// machine's memory) must not leave the others waiting in the next collective
// call.
template <class Step>
void on_every_rank(MPI_Comm comm, Step&& step) {
  std::string message;
  bool failed = false;
  try {
    step();
  } catch (std::exception const& e) {
    failed = true;
    message = e.what();
  } catch (...) {
    failed = true;
    message = "an exception that is not a std::exception";
  }
  int const me = hydra::mpi::rank(comm), ranks = hydra::mpi::size(comm);
  if (failed && me != 0) { // before the collective calls: naming the machine may throw too
    try {
      message = "rank " + std::to_string(me) + " (on " + hydra::mpi::host_name() + "): " + message;
    } catch (std::exception const&) {
      message = "rank " + std::to_string(me) + ": " + message;
    }
  }
  int const mine = failed ? me : ranks;
  int first = 0;
  hydra::mpi::check(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  if (first == ranks) return;
  std::uint64_t length = message.size();
  hydra::mpi::check(MPI_Bcast(&length, 1, MPI_UINT64_T, first, comm), "MPI_Bcast");
  message.resize(static_cast<std::size_t>(length));
  hydra::mpi::check(MPI_Bcast(message.data(), static_cast<int>(length), MPI_CHAR, first, comm), "MPI_Bcast");
  throw hydra::invalid_argument(message);
}

// Runs the sweep `o` over the ranks of `comm`, each rank with o.devices
// devices of its own. Collective. Rank 0 returns the outcome (and fills
// `ranks_report`); the others return nullopt (after a --stop-after too, when
// rank 0's outcome says it stopped early). A refusal or an
// error before the sweep starts, or rank 0's during it, is thrown on every
// rank alike.
template <class Training>
std::optional<outcome> run_across_ranks(options const& o, std::ostream& log_on_rank_zero, MPI_Comm comm,
                                        across_ranks_report& ranks_report) {
  int const me = hydra::mpi::rank(comm);
  int const ranks = hydra::mpi::size(comm);
  across_ranks_detail::null_buffer discard;
  std::ostream quiet(&discard);
  std::ostream& log = me == 0 ? log_on_rank_zero : quiet;

  std::unique_ptr<typename Training::backend> backend;
  on_every_rank(comm, [&] {
    check_options(o);
    if (o.profile_path)
      throw hydra::invalid_argument("--profile: a profile describes one machine's devices; across " +
                                    std::to_string(ranks) + " MPI ranks it is not available (profile one process)");
    backend = Training::make_backend(o.devices, o.budget_bytes);
  });
  std::uint64_t const mine = o.devices;
  std::uint64_t devices_in_all = 0;
  hydra::mpi::check(MPI_Allreduce(&mine, &devices_in_all, 1, MPI_UINT64_T, MPI_SUM, comm), "MPI_Allreduce");

  // The data on every rank (each machine reads its own copy); the checkpoint
  // directory on rank 0 alone, whose checkpoint every rank then receives.
  std::optional<prepared_sweep> prepared;
  std::vector<typename Training::config> configs;
  std::optional<hydra::checkpoint_directory> store;
  std::optional<hydra::sweep_checkpoint> resume_from;
  on_every_rank(comm, [&] {
    prepared.emplace(prepare(o, static_cast<std::size_t>(devices_in_all), log));
    // Every model from its first minibatch: a checkpoint reaches the sweep as a whole (resume_from).
    configs =
        make_configs<Training>(o, *prepared, std::vector<std::optional<hydra::model_snapshot>>(prepared->grid.size()));
    if (me != 0 || !o.checkpoint_directory) return;
    probe_checkpoint_directory(*o.checkpoint_directory, o.resume, o.overwrite, o.keep_checkpoints);
    store.emplace(*o.checkpoint_directory, o.keep_checkpoints);
    for (auto const& left : store->removed()) log << "removed " << left << ", a write interrupted by a crash\n";
    if (!o.resume) return;
    auto loaded = store->load();
    for (auto const& passed : loaded.skipped) log << "passed over " << passed << "\n";
    if (loaded.checkpoint.fingerprint != prepared->fingerprint)
      throw hydra::invalid_argument("--resume: the checkpoint " + loaded.path + " is of another sweep (" +
                                    loaded.checkpoint.fingerprint + "), not this one (" + prepared->fingerprint + ")");
    hydra::check_against(loaded.checkpoint, prepared->names, prepared->total_steps, loaded.path);
    log << "resuming from " << loaded.path << " after "
        << trained_in_all(loaded.checkpoint.history, prepared->grid.size()) << " minibatches in all (a model trains "
        << prepared->total_steps << " at most)\n";
    resume_from = std::move(loaded.checkpoint);
  });
  auto const& p = *prepared;
  int resuming = resume_from ? 1 : 0;
  hydra::mpi::check(MPI_Bcast(&resuming, 1, MPI_INT, 0, comm), "MPI_Bcast");
  if (resuming != 0) hydra::mpi::broadcast(comm, resume_from);
  double const elapsed_before = resume_from ? resume_from->elapsed_seconds : 0.0;
  std::vector<std::size_t> before(p.grid.size(), 0);
  if (resume_from)
    for (std::size_t m = 0; m < p.grid.size(); ++m) {
      auto const& saved = resume_from->models[m];
      before[m] = saved.state ? saved.state->minibatches_done : saved.losses.size();
    }

  auto const started = std::chrono::steady_clock::now();
  auto const elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  hydra::multi_model_options mo;
  mo.controller = make_controller(o, p.grid.size(), p.total_steps, p.per_epoch);
  mo.record_trace = o.trace_path.has_value() || o.report_path.has_value();
  mo.keep_activations = o.keep_activations;
  mo.keep_activation_checkpoints = o.keep_activation_checkpoints;
  mo.copy_activations_between_devices = o.copy_activations_between_devices;
  mo.keep_forward_activations = o.keep_forward_activations;
  mo.write_back_on_eviction = o.write_back_on_eviction;
  mo.evicted_forward_activations = evicted_activations_named(o.evicted_forward_activations);
  // A line after the first round, then at most one each progress interval,
  // and the last: rounds can be far shorter than a line is worth.
  auto const interval = std::chrono::milliseconds(o.progress_is_terminal ? 250 : 5000);
  std::optional<std::chrono::steady_clock::time_point> shown;
  mo.on_progress = [&](hydra::sweep_progress const& progress) {
    std::size_t const settled = progress.models_finished + progress.models_stopped;
    auto const now = std::chrono::steady_clock::now();
    if (shown && now - *shown < interval && settled < p.grid.size()) return;
    shown = now;
    log_progress(o, p.grid.size(), p.total_steps, before, progress, elapsed(), log);
  };
  hydra::mpi::distributed_options sharing;
  sharing.round_minibatches = o.round_minibatches.value_or(p.per_epoch);
  sharing.fingerprint = p.fingerprint;
  sharing.resume_from = resume_from;
  // Rank 0 writes the checkpoint file as a one-process run does: once
  // `every` more minibatches per model have been trained in all.
  std::size_t const every =
      (o.checkpoint_every ? o.checkpoint_every : std::max<std::size_t>(1, (p.total_steps + 3) / 4)) * p.grid.size();
  std::size_t written_at = resume_from ? trained_in_all(resume_from->history, p.grid.size()) : 0;
  // What the file holds, as a one-process run's does: each model's state and
  // losses at its latest checkpoint (a round can end between two of a
  // model's checkpoints, and a one-process resume starts from a checkpoint).
  std::optional<hydra::sweep_checkpoint> saved;
  if (o.checkpoint_directory) {
    if (resume_from) {
      saved = *resume_from;
    } else {
      saved.emplace();
      for (auto const& name : p.names)
        saved->models.push_back({.name = name, .state = {}, .losses = {}, .failure = {}});
    }
    sharing.on_round = [&](hydra::sweep_checkpoint const& round) {
      auto const latest = latest_checkpoints(round.history, p.grid.size());
      for (std::size_t m = 0; m < p.grid.size(); ++m) {
        auto const& now = round.models[m];
        // Without a state: stopped, failed or not started, as the history says.
        if (!now.state || now.state->minibatches_done == latest[m]) saved->models[m] = now;
      }
      saved->fingerprint = round.fingerprint;
      saved->history = round.history;
      saved->elapsed_seconds = elapsed();
      std::size_t const in_all = trained_in_all(round.history, p.grid.size());
      if (in_all < written_at + every) return;
      written_at = in_all;
      store->save(*saved);
      if (o.progress_is_terminal) log << "\n";
      log << "checkpoint after " << in_all << " minibatches in all: " << checkpoint_path(*o.checkpoint_directory)
          << "\n";
      if (o.stop_after_steps && in_all >= *o.stop_after_steps) throw simulated_crash{};
    };
  }

  // Every rank leaves run_sweep alike (a refusal on all, rank 0's callback
  // throwing on all, or its end); then rank 0 tells the others how it ended.
  auto const policy = [&] { return hydra::make_policy(o.policy); };
  hydra::mpi::distributed_report report;
  enum : int { ended = 0, stopped_as_asked = 1, failed = 2 };
  int how = ended;
  std::exception_ptr thrown;
  try {
    report = hydra::mpi::run_sweep(comm, *backend, std::move(configs), policy, mo, sharing);
  } catch (simulated_crash const&) {
    how = stopped_as_asked;
  } catch (...) {
    how = failed;
    thrown = std::current_exception();
  }
  hydra::mpi::check(MPI_Bcast(&how, 1, MPI_INT, 0, comm), "MPI_Bcast");
  if (me != 0) {
    if (how == failed) throw hydra::invalid_argument("rank 0 ended the sweep (its message says why)");
    return std::nullopt;
  }
  if (thrown) std::rethrow_exception(thrown);
  outcome result;
  result.total_steps = p.total_steps;
  result.validation_images = p.validation_minibatches * o.batch;
  result.test_images = p.test_minibatches * o.batch;
  result.models.resize(p.grid.size());
  if (how == stopped_as_asked) {
    result.stopped_early = true;
    return result;
  }
  if (o.progress_is_terminal) log << "\n";
  result.makespan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (auto const& summary : report.ranks) {
    result.bytes_to_device += summary.bytes_to_device;
    result.bytes_to_host += summary.bytes_to_host;
  }
  if (mo.record_trace) {
    // Each device's compute time over the sweep's, from the trace: the
    // devices of every rank, rank 0's first.
    result.device_busy_fraction.assign(static_cast<std::size_t>(devices_in_all), 0.0);
    for (auto const& slice : report.trace)
      if (slice.stream == hydra::stream_role::compute && slice.device < result.device_busy_fraction.size())
        result.device_busy_fraction[slice.device] +=
            std::chrono::duration<double>(slice.end - slice.start).count() / result.makespan_seconds;
    result.trace = std::move(report.trace);
  }
  ranks_report = {.ranks = static_cast<std::size_t>(ranks),
                  .devices = static_cast<std::size_t>(devices_in_all),
                  .rounds = report.rounds,
                  .summaries = report.ranks,
                  .moves = report.moves,
                  .rank_of = report.rank_of,
                  .starting_rank = report.starting_rank};

  std::vector<std::size_t> steps(p.grid.size());
  std::vector<std::string> failures(p.grid.size());
  std::vector<std::vector<float>> parameters(p.grid.size()), losses(p.grid.size());
  std::vector<std::size_t> to_test; // the models with weights after the search
  for (std::size_t m = 0; m < p.grid.size(); ++m) {
    auto& r = report.results[m];
    steps[m] = r.steps;
    losses[m] = std::move(r.losses);
    if (r.failure) {
      failures[m] = *r.failure;
      continue;
    }
    if (r.stopped_early) result.models[m].stopped_early = *r.stopped_early;
    if (r.parameters.empty()) continue; // stopped by the search: its weights are gone
    parameters[m] = std::move(r.parameters);
    to_test.push_back(m);
  }
  if (!to_test.empty()) {
    // The test set on rank 0's devices, through the same shards: the final
    // weights (evaluation reads no optimizer state, which stays zero here).
    std::vector<std::optional<hydra::model_snapshot>> final_weights(p.grid.size());
    auto const all = make_configs<Training>(o, p, final_weights);
    std::vector<typename Training::config> tested_configs;
    for (std::size_t m : to_test) {
      auto config = all[m];
      std::size_t const k =
          hydra::any_optimizer<typename Training::trainer::context>(config.optimizer).state_per_parameter();
      config.resume = hydra::model_snapshot{.parameters = parameters[m],
                                            .optimizer_state = std::vector<float>(parameters[m].size() * k, 0.0F),
                                            .minibatches_done = steps[m]};
      config.steps = 0;
      config.validation = {};
      config.validation_minibatches = 0;
      tested_configs.push_back(std::move(config));
    }
    typename Training::trainer judge(*backend, std::move(tested_configs), hydra::make_policy(o.policy));
    judge.run();
    std::vector<std::size_t> all_of_them(to_test.size());
    for (std::size_t j = 0; j < all_of_them.size(); ++j) all_of_them[j] = j;
    record_test(result, to_test, judge.evaluate(all_of_them, in_order(p.test, o.batch), p.test_minibatches));
  }
  if (saved) {
    saved->elapsed_seconds = elapsed();
    store->save(*saved);
    log << "checkpoint at the end: " << checkpoint_path(*o.checkpoint_directory) << "\n";
  }
  summarize(result, p, report.history, steps, failures, std::move(parameters), losses);
  return result;
}

// Set by cuda_sweep.cu's static initialiser in a build with the CUDA parts.
inline std::optional<outcome> (*run_on_cuda_across_ranks)(options const&, std::ostream&, MPI_Comm,
                                                          across_ranks_report&) = nullptr;

// run_across_ranks on the backend `o` names.
inline std::optional<outcome> run_on_ranks(options const& o, std::ostream& log, MPI_Comm comm,
                                           across_ranks_report& ranks_report) {
  if (o.backend == "cuda") {
    if (run_on_cuda_across_ranks == nullptr)
      throw hydra::invalid_argument("--backend cuda: this build has no CUDA parts (configure with the CUDA "
                                    "toolkit and HYDRA_ENABLE_CUDA=AUTO or ON); use --backend host");
    return run_on_cuda_across_ranks(o, log, comm, ranks_report);
  }
  return run_across_ranks<host_training>(o, log, comm, ranks_report);
}

} // namespace model_selection
