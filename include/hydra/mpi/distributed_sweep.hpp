// One sweep over MPI ranks, one rank per machine: every rank describes the
// same configurations (the program runs the same code on each), every rank
// computes the same placement of whole models on ranks (rank_placement.hpp),
// and each trains its own models with the multi-model trainer on its own
// devices. A model trains exactly as it would alone, wherever it is placed, so
// its final weights are bitwise those of a one-process sweep. Rank 0 then
// gathers every model's result.
//
// Between rounds of a few minibatches (distributed_options), a rank short of
// work takes a model from the rank expected to finish last.
//
// Not across ranks (refused by name): controllers that decide from several
// models' metrics (successive halving, ASHA) and resuming a controlled sweep.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/mpi/detail/wire.hpp"
#include "hydra/mpi/environment.hpp"
#include "hydra/mpi/rank_placement.hpp"
#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/node_balancer.hpp"
#include "hydra/train/multi_model_trainer.hpp"
#include "hydra/train/sweep_checkpoint.hpp"

namespace hydra::mpi {

struct rank_summary {
  std::string host;
  // Why its sweep ended early (its device was lost, a model did not fit its
  // devices): its models that had not finished carry it as their failure.
  std::optional<std::string> error;
  std::size_t devices = 0;
  std::vector<std::size_t> models;           // the configurations it ended with, by index
  std::chrono::nanoseconds busy{0};          // its trainers' runs, summed over the rounds
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
  // Rank 0 only (empty elsewhere): every configuration's result in the
  // configurations' order, and each rank's summary.
  std::vector<model_result> results;
  std::vector<rank_summary> ranks;
};

namespace detail {

// FNV-1a over the configurations' names and step counts: ranks that describe
// different sweeps would place and gather nonsense.
template <class Context>
[[nodiscard]] std::uint64_t sweep_fingerprint(std::vector<basic_model_config<Context>> const& configs) {
  std::uint64_t hash = 14695981039346656037ULL;
  auto mix = [&](void const* data, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      hash ^= static_cast<unsigned char const*>(data)[i];
      hash *= 1099511628211ULL;
    }
  };
  for (auto const& config : configs) {
    mix(config.name.data(), config.name.size());
    std::uint64_t const steps = config.steps;
    mix(&steps, sizeof steps);
  }
  return hash;
}

// Large parameter vectors exceed what one MPI message's int count holds: the
// length goes first, then chunks of at most 1 GiB.
inline constexpr std::size_t chunk_bytes = std::size_t{1} << 30;

inline void send_bytes(MPI_Comm comm, int to, std::vector<char> const& bytes) {
  std::uint64_t const length = bytes.size();
  check(MPI_Send(&length, 1, MPI_UINT64_T, to, 0, comm), "MPI_Send");
  for (std::size_t at = 0; at < bytes.size(); at += chunk_bytes) {
    auto const n = static_cast<int>(std::min(chunk_bytes, bytes.size() - at));
    check(MPI_Send(bytes.data() + at, n, MPI_BYTE, to, 1, comm), "MPI_Send");
  }
}

// send_bytes without waiting: `length` and `bytes` must outlive the requests
// it adds (MPI_Waitall on them).
inline void post_bytes(MPI_Comm comm, int to, std::vector<std::byte> const& bytes, std::uint64_t const& length,
                       std::vector<MPI_Request>& requests) {
  requests.emplace_back();
  check(MPI_Isend(&length, 1, MPI_UINT64_T, to, 0, comm, &requests.back()), "MPI_Isend");
  for (std::size_t at = 0; at < bytes.size(); at += chunk_bytes) {
    auto const n = static_cast<int>(std::min(chunk_bytes, bytes.size() - at));
    requests.emplace_back();
    check(MPI_Isend(bytes.data() + at, n, MPI_BYTE, to, 1, comm, &requests.back()), "MPI_Isend");
  }
}

inline std::vector<char> receive_bytes(MPI_Comm comm, int from) {
  std::uint64_t length = 0;
  check(MPI_Recv(&length, 1, MPI_UINT64_T, from, 0, comm, MPI_STATUS_IGNORE), "MPI_Recv");
  std::vector<char> bytes(static_cast<std::size_t>(length));
  for (std::size_t at = 0; at < bytes.size(); at += chunk_bytes) {
    auto const n = static_cast<int>(std::min(chunk_bytes, bytes.size() - at));
    check(MPI_Recv(bytes.data() + at, n, MPI_BYTE, from, 1, comm, MPI_STATUS_IGNORE), "MPI_Recv");
  }
  return bytes;
}

// A model's entry of a round's checkpoint.
inline void put_saved(wire_writer& out, std::optional<model_snapshot> const& state, model_result const& r) {
  out.put(r.name);
  out.put(r.failure);
  out.put(r.losses);
  out.put<std::uint8_t>(state ? 1 : 0);
  if (!state) return;
  out.put(state->parameters);
  out.put(state->optimizer_state);
  out.put<std::uint64_t>(state->minibatches_done);
}

inline sweep_checkpoint::model get_saved(wire_reader& in) {
  sweep_checkpoint::model saved;
  saved.name = in.text();
  saved.failure = in.maybe_text().value_or("");
  saved.losses = in.floats();
  if (in.get<std::uint8_t>() == 0) return saved;
  model_snapshot state;
  state.parameters = in.floats();
  state.optimizer_state = in.floats();
  state.minibatches_done = in.get<std::uint64_t>();
  saved.state = std::move(state);
  return saved;
}

inline void put_result(wire_writer& out, model_result const& r) {
  out.put(r.name);
  out.put(r.losses);
  out.put<std::uint64_t>(r.steps);
  out.put(r.failure);
  out.put(r.stopped_early);
  out.put<std::uint64_t>(r.validations.size());
  for (auto const& point : r.validations) {
    out.put<std::uint64_t>(point.minibatches);
    out.put(point.metrics.loss);
    out.put(point.metrics.accuracy);
    out.put(point.metrics.metric);
    out.put<std::uint64_t>(point.metrics.samples);
  }
  out.put<std::int64_t>(r.finished.count());
  out.put(r.parameters);
}

inline model_result get_result(wire_reader& in) {
  model_result r;
  r.name = in.text();
  r.losses = in.floats();
  r.steps = in.get<std::uint64_t>();
  r.failure = in.maybe_text();
  r.stopped_early = in.maybe_text();
  auto const points = in.get<std::uint64_t>();
  for (std::uint64_t p = 0; p < points; ++p) {
    validation_point point;
    point.minibatches = in.get<std::uint64_t>();
    point.metrics.loss = in.get<double>();
    point.metrics.accuracy = in.get<double>();
    point.metrics.metric = in.get<double>();
    point.metrics.samples = in.get<std::uint64_t>();
    r.validations.push_back(point);
  }
  r.finished = std::chrono::nanoseconds(in.get<std::int64_t>());
  r.parameters = in.floats();
  return r;
}

} // namespace detail

// Gives every rank of `comm` the checkpoint rank `root` holds (read from its
// disk, say), so that all can resume from it without a shared file system.
// Collective. On `root`, `checkpoint` must hold one.
inline void broadcast(MPI_Comm comm, std::optional<sweep_checkpoint>& checkpoint, int root = 0) {
  bool const sender = rank(comm) == root;
  hydra::detail::expects(!sender || checkpoint.has_value(), "mpi sweep: broadcast() from a rank without a checkpoint");
  std::vector<std::byte> bytes = sender ? encode(*checkpoint) : std::vector<std::byte>{};
  std::uint64_t length = bytes.size();
  check(MPI_Bcast(&length, 1, MPI_UINT64_T, root, comm), "MPI_Bcast");
  bytes.resize(static_cast<std::size_t>(length));
  for (std::size_t at = 0; at < bytes.size(); at += detail::chunk_bytes) {
    auto const n = static_cast<int>(std::min(detail::chunk_bytes, bytes.size() - at));
    check(MPI_Bcast(bytes.data() + at, n, MPI_BYTE, root, comm), "MPI_Bcast");
  }
  if (!sender) checkpoint = decode(bytes, "the checkpoint broadcast from rank " + std::to_string(root));
}

// How the ranks share the work beyond the first placement.
struct distributed_options {
  // Minibatches each model trains per round. Between rounds every rank tells
  // the others how far its models are, and a rank with fewer unfinished models
  // than devices takes one from the rank expected to finish last (the node
  // balancer's rule): the model's state, losses and validation points go over
  // in one message, in the checkpoint format, and it continues there bitwise as if it had not
  // moved. 0: one round, every model on the rank it was placed on.
  std::size_t round_minibatches = 0;
  // The network's rate, for the balancer's estimate of what a move costs.
  double network_bytes_per_second = 12.5e9;
  // Called on rank 0 after each round with every model's state, losses and
  // failure (what checkpoint_directory::save writes); rank 0's callback is the
  // one that counts, and with one every rank sends its models' state to rank 0
  // each round.
  std::function<void(sweep_checkpoint const&)> on_round{};
  // Continue from such a checkpoint (the same on every rank: read it from a
  // shared file system, or broadcast() it): each model resumes from its state
  // there, its losses so far kept, a model that had failed stays failed. The
  // configurations stay those of the original sweep (the same steps); the
  // rank count may differ. The result is bitwise that of an uninterrupted run.
  std::optional<sweep_checkpoint> resume_from{};
};

// Runs the sweep `configs` (the same on every rank of `comm`) over the ranks,
// each training its share on `backend` (its own devices) with a policy from
// `make_policy` (one per round) and `options`. Collective: every rank of `comm`
// calls it. Rank 0 returns every model's result. A rank whose sweep ends with
// an error (which would end a one-process sweep) does not end the others': its
// unfinished models fail with the error, naming the rank and its machine, it
// takes no more models, and the rest are reported as they finished.
template <class Backend, class Context>
distributed_report run_sweep(MPI_Comm comm, Backend& backend, std::vector<basic_model_config<Context>> configs,
                             std::function<any_policy()> const& make_policy, multi_model_options options = {},
                             distributed_options sharing = {}) {
  int const me = rank(comm);
  int const ranks = size(comm);
  auto const self = static_cast<std::size_t>(me);
  // Refusals every rank reaches alike (the same configurations and options on
  // each), so none of them waits for a rank that gave up.
  hydra::detail::expects(options.controller.name() == "full_grid",
                         "mpi sweep: the controller is " + options.controller.name() +
                             "; across ranks every configuration trains to its end (full_grid): a controller "
                             "that compares models needs every rank's metrics");
  hydra::detail::expects(options.resume_history.empty(), "mpi sweep: resuming a controlled sweep across ranks is "
                                                         "not supported");
  for (auto const& config : configs)
    hydra::detail::expects(!config.resume,
                           "mpi sweep: model " + config.name +
                               " resumes from a snapshot of its own; across ranks a sweep resumes "
                               "from a checkpoint of the whole sweep (distributed_options::resume_from)");
  hydra::detail::expects(sharing.network_bytes_per_second > 0,
                         "mpi sweep: the network's rate must be > 0 bytes per second");
  std::uint64_t const fingerprint[2] = {detail::sweep_fingerprint(configs), configs.size()};
  std::uint64_t lowest[2] = {}, highest[2] = {};
  check(MPI_Allreduce(fingerprint, lowest, 2, MPI_UINT64_T, MPI_MIN, comm), "MPI_Allreduce");
  check(MPI_Allreduce(fingerprint, highest, 2, MPI_UINT64_T, MPI_MAX, comm), "MPI_Allreduce");
  hydra::detail::expects(lowest[0] == highest[0] && lowest[1] == highest[1],
                         "mpi sweep: the ranks describe different sweeps (model counts " + std::to_string(lowest[1]) +
                             " to " + std::to_string(highest[1]) +
                             ", or other names or step counts): every rank must build the same configurations");

  std::uint64_t const my_devices = backend.device_count();
  std::vector<std::uint64_t> devices(static_cast<std::size_t>(ranks));
  check(MPI_Allgather(&my_devices, 1, MPI_UINT64_T, devices.data(), 1, MPI_UINT64_T, comm), "MPI_Allgather");
  std::vector<std::size_t> const device_counts(devices.begin(), devices.end());
  std::size_t const models = configs.size();
  distributed_report report;
  report.rank_of = place_on_ranks(configs, device_counts);
  report.starting_rank = report.rank_of;

  // What every rank knows of every model (the same on each), and what only
  // its owner holds.
  std::vector<double> done(models, 0), failed(models, 0), per_minibatch(models, 0);
  for (std::size_t m = 0; m < models; ++m)
    per_minibatch[m] = estimated_seconds(configs[m]) / static_cast<double>(std::max<std::size_t>(configs[m].steps, 1));
  std::vector<double> rank_failed(static_cast<std::size_t>(ranks), 0);
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
  std::string const fingerprint_text = "mpi sweep " + std::to_string(fingerprint[0]);
  if (auto const& from = sharing.resume_from) {
    hydra::detail::expects(from->fingerprint == fingerprint_text && from->models.size() == models,
                           "mpi sweep: the checkpoint to resume from is of another sweep (" + from->fingerprint + ", " +
                               std::to_string(from->models.size()) + " models; this one is " + fingerprint_text + ", " +
                               std::to_string(models) + " models)");
    for (std::size_t m = 0; m < models; ++m) {
      auto const& saved = from->models[m];
      hydra::detail::expects(saved.name == configs[m].name, "mpi sweep: the checkpoint's model " + std::to_string(m) +
                                                                " is " + saved.name + ", not " + configs[m].name);
      if (saved.state)
        hydra::detail::expects(saved.state->minibatches_done <= configs[m].steps,
                               "mpi sweep: the checkpoint's " + saved.name + " has trained " +
                                   std::to_string(saved.state->minibatches_done) + " minibatches, more than its " +
                                   std::to_string(configs[m].steps));
      if (!saved.failure.empty()) failed[m] = 1;
      if (saved.state) done[m] = static_cast<double>(saved.state->minibatches_done);
      if (!own[m]) continue;
      own[m]->state = saved.state;
      own[m]->result.losses = saved.losses;
      own[m]->result.steps = static_cast<std::size_t>(done[m]);
      if (!saved.failure.empty()) own[m]->result.failure = saved.failure;
    }
  }
  int const wants_checkpoints_here = sharing.on_round ? 1 : 0;
  int wants_checkpoints = 0;
  check(MPI_Allreduce(&wants_checkpoints_here, &wants_checkpoints, 1, MPI_INT, MPI_MAX, comm), "MPI_Allreduce");
  std::chrono::nanoseconds busy{0};
  std::uint64_t bytes_in = 0, moves_in = 0;
  auto const started = std::chrono::steady_clock::now();

  auto unfinished = [&](std::size_t m) { return failed[m] == 0 && done[m] < static_cast<double>(configs[m].steps); };
  for (std::size_t round = 0;; ++round) {
    report.rounds = round + 1;
    // This rank's share of the round.
    std::vector<std::size_t> mine;
    std::vector<basic_model_config<Context>> local;
    for (std::size_t m = 0; m < models; ++m) {
      if (report.rank_of[m] != self || !unfinished(m)) continue;
      auto const left = configs[m].steps - static_cast<std::size_t>(done[m]);
      basic_model_config<Context> config = configs[m];
      config.steps = sharing.round_minibatches == 0 ? left : std::min(left, sharing.round_minibatches);
      config.resume = own[m]->state;
      mine.push_back(m);
      local.push_back(std::move(config));
    }
    std::vector<double> my_done(models, 0), my_failed(models, 0), my_per_minibatch(models, 0);
    try {
      if (!local.empty() && !report.error) {
        basic_multi_model_trainer<Backend, Context> trainer(backend, std::move(local), make_policy(), options);
        trainer.run();
        busy += trainer.report().makespan;
        auto const profiles = trainer.profiles();
        for (std::size_t k = 0; k < mine.size(); ++k) {
          auto& mine_now = *own[mine[k]];
          auto const& r = trainer.results()[k];
          mine_now.result.losses.insert(mine_now.result.losses.end(), r.losses.begin(), r.losses.end());
          mine_now.result.steps += r.steps;
          mine_now.result.validations.insert(mine_now.result.validations.end(), r.validations.begin(),
                                             r.validations.end());
          mine_now.result.finished = std::chrono::steady_clock::now() - started;
          if (r.failure) {
            mine_now.result.failure = r.failure;
            mine_now.state.reset();
          } else {
            mine_now.state = trainer.snapshot(k);
          }
          if (profiles[k].source == "measured") {
            double seconds = 0;
            for (double f : profiles[k].forward_seconds) seconds += f;
            for (double b : profiles[k].backward_seconds) seconds += b;
            my_per_minibatch[mine[k]] = seconds;
          }
        }
      }
    } catch (std::exception const& e) {
      report.error = e.what();
    }
    // Everything a rank knows of its own models, to every rank.
    for (std::size_t m = 0; m < models; ++m) {
      if (report.rank_of[m] != self) continue;
      auto const& mine_now = *own[m];
      my_done[m] = static_cast<double>(mine_now.result.steps);
      my_failed[m] = (mine_now.result.failure || report.error) ? 1 : 0;
      if (report.error && !mine_now.result.failure && unfinished(m))
        own[m]->result.failure =
            "rank " + std::to_string(me) + " (on " + host_name() + ") ended its sweep: " + *report.error;
    }
    std::vector<double> my_rank_failed(static_cast<std::size_t>(ranks), 0);
    my_rank_failed[self] = report.error ? 1 : 0;
    check(MPI_Allreduce(my_done.data(), done.data(), static_cast<int>(models), MPI_DOUBLE, MPI_MAX, comm),
          "MPI_Allreduce");
    check(MPI_Allreduce(my_failed.data(), failed.data(), static_cast<int>(models), MPI_DOUBLE, MPI_MAX, comm),
          "MPI_Allreduce");
    check(MPI_Allreduce(my_rank_failed.data(), rank_failed.data(), ranks, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
    std::vector<double> measured(models, 0);
    check(MPI_Allreduce(my_per_minibatch.data(), measured.data(), static_cast<int>(models), MPI_DOUBLE, MPI_MAX, comm),
          "MPI_Allreduce");
    for (std::size_t m = 0; m < models; ++m)
      if (measured[m] > 0) per_minibatch[m] = measured[m];
    bool any_left = false;
    for (std::size_t m = 0; m < models; ++m) any_left = any_left || unfinished(m);
    if (wants_checkpoints) {
      // Every model's state at this round's end, to rank 0.
      hydra::mpi::detail::wire_writer states;
      for (std::size_t m = 0; m < models; ++m) {
        if (!own[m]) continue;
        states.put<std::uint64_t>(m);
        detail::put_saved(states, own[m]->state, own[m]->result);
      }
      if (me != 0) {
        detail::send_bytes(comm, 0, states.bytes());
      } else {
        sweep_checkpoint saved{.fingerprint = fingerprint_text,
                               .elapsed_seconds =
                                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                               .models = std::vector<sweep_checkpoint::model>(models),
                               .history = {}};
        for (int from = 0; from < ranks; ++from) {
          std::vector<char> const bytes = from == 0 ? std::move(states.bytes()) : detail::receive_bytes(comm, from);
          detail::wire_reader in(bytes, "rank " + std::to_string(from));
          while (!in.done()) {
            auto const m = in.get<std::uint64_t>();
            if (m >= models)
              throw error("mpi sweep: rank " + std::to_string(from) + " sent the state of model " + std::to_string(m) +
                          " of " + std::to_string(models));
            saved.models[m] = detail::get_saved(in);
          }
        }
        sharing.on_round(saved);
      }
    }
    if (!any_left) break;

    // Moves, decided alike on every rank from what every rank now knows.
    std::vector<placed_model> view(models);
    for (std::size_t m = 0; m < models; ++m) {
      double const state_bytes = static_cast<double>(configs[m].model.parameter_count()) * sizeof(float) * 3;
      view[m] = {.node = report.rank_of[m],
                 .remaining_seconds = per_minibatch[m] * (static_cast<double>(configs[m].steps) - done[m]),
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
    // The moved models' state and losses, as one checkpoint-format message
    // each: sends posted first, so that two ranks sending to each other do not
    // wait on each other.
    std::vector<std::vector<std::byte>> outgoing;
    std::vector<MPI_Request> requests;
    outgoing.reserve(moves.size());
    std::vector<std::uint64_t> lengths(moves.size());
    for (std::size_t k = 0; k < moves.size(); ++k) {
      auto const& move = moves[k];
      if (move.from != self) continue;
      auto& leaving = *own[move.model];
      sweep_checkpoint message;
      message.fingerprint = "mpi sweep move";
      message.models.push_back(
          {.name = leaving.result.name, .state = leaving.state, .losses = leaving.result.losses, .failure = {}});
      // Its validation points ride in the format's history, as the checkpoints
      // its controller was shown.
      for (auto const& point : leaving.result.validations)
        message.history.push_back(
            {.reached = {.model = move.model, .minibatches = point.minibatches, .validation = point.metrics},
             .failure = std::nullopt});
      outgoing.push_back(encode(message));
      lengths[k] = outgoing.back().size();
      detail::post_bytes(comm, static_cast<int>(move.to), outgoing.back(), lengths[k], requests);
      own[move.model].reset();
    }
    for (auto& move : moves) {
      report.rank_of[move.model] = move.to;
      if (move.to != self) continue;
      std::vector<char> const bytes = detail::receive_bytes(comm, static_cast<int>(move.from));
      auto const arrived =
          decode(std::as_bytes(std::span(bytes)), "a model moved from rank " + std::to_string(move.from));
      hydra::detail::expects(arrived.models.size() == 1 && arrived.models[0].name == configs[move.model].name,
                             "mpi sweep: the model that arrived from rank " + std::to_string(move.from) + " is not " +
                                 configs[move.model].name);
      auto& taken = own[move.model].emplace();
      taken.state = arrived.models[0].state;
      taken.result.name = arrived.models[0].name;
      taken.result.losses = arrived.models[0].losses;
      taken.result.steps = static_cast<std::size_t>(done[move.model]);
      for (auto const& event : arrived.history)
        if (event.reached.validation)
          taken.result.validations.push_back(
              {.minibatches = event.reached.minibatches, .metrics = *event.reached.validation});
      move.bytes = bytes.size();
      bytes_in += bytes.size();
      ++moves_in;
    }
    if (!requests.empty())
      check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    report.moves.insert(report.moves.end(), moves.begin(), moves.end());
  }

  // Every rank's own models to rank 0.
  hydra::mpi::detail::wire_writer out;
  out.put(host_name());
  out.put<std::uint64_t>(my_devices);
  out.put<std::int64_t>(busy.count());
  out.put(report.error);
  out.put<std::uint64_t>(bytes_in);
  out.put<std::uint64_t>(moves_in);
  std::uint64_t owned = 0;
  for (auto const& o : own) owned += o.has_value() ? 1 : 0;
  out.put<std::uint64_t>(owned);
  for (std::size_t m = 0; m < models; ++m) {
    if (!own[m]) continue;
    if (own[m]->state && !own[m]->result.failure) own[m]->result.parameters = own[m]->state->parameters;
    out.put<std::uint64_t>(m);
    detail::put_result(out, own[m]->result);
  }
  if (me != 0) {
    detail::send_bytes(comm, 0, out.bytes());
    return report;
  }
  report.results.resize(models);
  for (int from = 0; from < ranks; ++from) {
    std::vector<char> const bytes = from == 0 ? std::move(out.bytes()) : detail::receive_bytes(comm, from);
    detail::wire_reader in(bytes, "rank " + std::to_string(from));
    rank_summary summary;
    summary.bytes_sent_to_rank_zero = from == 0 ? 0 : bytes.size();
    summary.host = in.text();
    summary.devices = in.get<std::uint64_t>();
    summary.busy = std::chrono::nanoseconds(in.get<std::int64_t>());
    summary.error = in.maybe_text();
    summary.bytes_moved_in = in.get<std::uint64_t>();
    summary.models_moved_in = in.get<std::uint64_t>();
    auto const count = in.get<std::uint64_t>();
    for (std::uint64_t k = 0; k < count; ++k) {
      auto const m = in.get<std::uint64_t>();
      if (m >= models || report.rank_of[m] != static_cast<std::size_t>(from))
        throw error("mpi sweep: rank " + std::to_string(from) + " sent a result for model " + std::to_string(m) +
                    ", which is not its own");
      report.results[m] = detail::get_result(in);
      summary.models.push_back(m);
    }
    if (!in.done())
      throw error("mpi sweep: the message from rank " + std::to_string(from) + " is longer than its content");
    report.ranks.push_back(std::move(summary));
  }
  return report;
}

} // namespace hydra::mpi
