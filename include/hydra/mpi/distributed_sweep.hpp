// One sweep over MPI ranks, one rank per machine: every rank describes the
// same configurations (the program runs the same code on each), every rank
// computes the same placement of whole models on ranks (rank_placement.hpp),
// and each trains its own models with the multi-model trainer on its own
// devices. A model trains exactly as it would alone, wherever it is placed, so
// its final weights are bitwise those of a one-process sweep. Rank 0 then
// gathers every model's result.
//
// Not across ranks (refused by name): controllers that decide from several
// models' metrics (successive halving, ASHA) and resuming a controlled sweep.
// Models do not move between ranks once placed.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/mpi/detail/wire.hpp"
#include "hydra/mpi/environment.hpp"
#include "hydra/mpi/rank_placement.hpp"
#include "hydra/sched/any_policy.hpp"
#include "hydra/train/multi_model_trainer.hpp"

namespace hydra::mpi {

struct rank_summary {
  std::string host;
  // Why its sweep ended early (its device was lost, a model did not fit its
  // devices): its models that had not finished carry it as their failure.
  std::optional<std::string> error;
  std::size_t devices = 0;
  std::vector<std::size_t> models;           // the configurations it trained, by index
  std::chrono::nanoseconds makespan{0};      // its trainer's run
  std::uint64_t bytes_sent_to_rank_zero = 0; // its results message
};

struct distributed_report {
  // Every rank: each configuration's rank, and why this rank's sweep ended
  // early, if it did.
  std::vector<std::size_t> rank_of;
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
    check(MPI_Send(bytes.data() + at, n, MPI_CHAR, to, 1, comm), "MPI_Send");
  }
}

inline std::vector<char> receive_bytes(MPI_Comm comm, int from) {
  std::uint64_t length = 0;
  check(MPI_Recv(&length, 1, MPI_UINT64_T, from, 0, comm, MPI_STATUS_IGNORE), "MPI_Recv");
  std::vector<char> bytes(static_cast<std::size_t>(length));
  for (std::size_t at = 0; at < bytes.size(); at += chunk_bytes) {
    auto const n = static_cast<int>(std::min(chunk_bytes, bytes.size() - at));
    check(MPI_Recv(bytes.data() + at, n, MPI_CHAR, from, 1, comm, MPI_STATUS_IGNORE), "MPI_Recv");
  }
  return bytes;
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

// Runs the sweep `configs` (the same on every rank of `comm`) over the ranks,
// each training its share on `backend` (its own devices) under `policy` with
// `options`. Collective: every rank of `comm` calls it. Rank 0 returns every
// model's result. A rank whose sweep ends with an error (which would end a
// one-process sweep) does not end the others': its models fail with the error,
// naming the rank and its machine, and the rest are reported as they finished.
template <class Backend, class Context>
distributed_report run_sweep(MPI_Comm comm, Backend& backend, std::vector<basic_model_config<Context>> configs,
                             any_policy policy, multi_model_options options = {}) {
  int const me = rank(comm);
  int const ranks = size(comm);
  // Refusals every rank reaches alike (the same configurations and options on
  // each), so none of them waits for a rank that gave up.
  hydra::detail::expects(options.controller.name() == "full_grid",
                         "mpi sweep: the controller is " + options.controller.name() +
                             "; across ranks every configuration trains to its end (full_grid): a controller "
                             "that compares models needs every rank's metrics");
  hydra::detail::expects(options.resume_history.empty(), "mpi sweep: resuming a controlled sweep across ranks is "
                                                         "not supported");
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
  distributed_report report;
  report.rank_of = place_on_ranks(configs, device_counts);

  std::vector<std::string> names;
  for (auto const& config : configs) names.push_back(config.name);
  std::vector<std::size_t> mine;
  std::vector<basic_model_config<Context>> local;
  for (std::size_t m = 0; m < configs.size(); ++m) {
    if (report.rank_of[m] != static_cast<std::size_t>(me)) continue;
    mine.push_back(m);
    local.push_back(std::move(configs[m]));
  }

  // This rank's share.
  std::vector<model_result> results;
  std::chrono::nanoseconds makespan{0};
  try {
    if (!local.empty()) {
      basic_multi_model_trainer<Backend, Context> trainer(backend, std::move(local), std::move(policy),
                                                          std::move(options));
      trainer.run();
      results = trainer.results();
      makespan = trainer.report().makespan;
    }
  } catch (std::exception const& e) {
    report.error = e.what();
    results.clear();
  }

  hydra::mpi::detail::wire_writer out;
  out.put(host_name());
  out.put<std::uint64_t>(my_devices);
  out.put<std::int64_t>(makespan.count());
  out.put(report.error);
  out.put<std::uint64_t>(results.size());
  for (std::size_t k = 0; k < results.size(); ++k) {
    out.put<std::uint64_t>(mine[k]);
    detail::put_result(out, results[k]);
  }

  if (me != 0) {
    detail::send_bytes(comm, 0, out.bytes());
    return report;
  }
  report.results.resize(names.size());
  for (int from = 0; from < ranks; ++from) {
    std::vector<char> const bytes = from == 0 ? std::move(out.bytes()) : detail::receive_bytes(comm, from);
    detail::wire_reader in(bytes, "rank " + std::to_string(from));
    rank_summary summary;
    summary.bytes_sent_to_rank_zero = from == 0 ? 0 : bytes.size();
    summary.host = in.text();
    summary.devices = in.get<std::uint64_t>();
    summary.makespan = std::chrono::nanoseconds(in.get<std::int64_t>());
    summary.error = in.maybe_text();
    auto const count = in.get<std::uint64_t>();
    for (std::uint64_t k = 0; k < count; ++k) {
      auto const m = in.get<std::uint64_t>();
      if (m >= names.size() || report.rank_of[m] != static_cast<std::size_t>(from))
        throw error("mpi sweep: rank " + std::to_string(from) + " sent a result for model " + std::to_string(m) +
                    ", which is not its own");
      report.results[m] = detail::get_result(in);
      summary.models.push_back(m);
    }
    if (!in.done())
      throw error("mpi sweep: the message from rank " + std::to_string(from) + " is longer than its content");
    if (summary.error) {
      for (std::size_t m = 0; m < names.size(); ++m) {
        if (report.rank_of[m] != static_cast<std::size_t>(from)) continue;
        auto& result = report.results[m];
        if (result.name.empty()) result.name = names[m];
        if (result.parameters.empty() && !result.failure)
          result.failure =
              "rank " + std::to_string(from) + " (on " + summary.host + ") ended its sweep: " + *summary.error;
      }
    }
    report.ranks.push_back(std::move(summary));
  }
  return report;
}

} // namespace hydra::mpi
