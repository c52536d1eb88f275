// A sweep over MPI ranks: `mpirun -np N ./mpi_sweep [--devices D] [--models M]
// [--steps S] [--round R]`. Every rank builds the same 16 MLP configurations
// (widths, depths, optimizers and lengths that differ), drives D host devices
// of its own, and rank 0 prints each model's result, where it trained, the
// models that moved and the wall time. On a cluster: one rank per node
// (`mpirun --hostfile hosts --map-by ppr:1:node ./mpi_sweep`).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/mpi.hpp"

using namespace hydra::literals;

int main(int argc, char** argv) {
  hydra::mpi::environment mpi(argc, argv);
  std::size_t devices = 2, model_count = 16, steps = 400, round = 20;
  CLI::App app("A sweep of MLPs over MPI ranks, each rank driving its own host devices");
  app.add_option("--devices", devices, "host devices per rank")->check(CLI::Range(1, 64));
  app.add_option("--models", model_count, "configurations in the sweep")->check(CLI::Range(1, 4096));
  app.add_option("--steps", steps, "minibatches of the longest configuration")->check(CLI::Range(4, 1000000));
  app.add_option("--round", round, "minibatches per round between moves (0: no moves)")->check(CLI::Range(0, 1000000));
  try {
    app.parse(argc, argv);
  } catch (CLI::ParseError const& e) {
    return hydra::mpi::rank(MPI_COMM_WORLD) == 0 ? app.exit(e) : 1;
  }
  constexpr std::size_t features = 64, classes = 10, batch = 32;
  std::vector<hydra::model_config> configs;
  for (std::size_t m = 0; m < model_count; ++m) {
    std::size_t const width = 64 << (m % 3), depth = 2 + m % 4;
    // Lengths from a quarter of --steps to all of it, so the ranks' shares end unevenly.
    std::size_t const length = steps / 4 + (steps - steps / 4) * ((m * 7) % model_count) / model_count;
    hydra::model_config config{
        "mlp" + std::to_string(m) + " w" + std::to_string(width) + " d" + std::to_string(depth),
        hydra::layers::make_mlp(features, width, depth, classes, batch),
        hydra::adam{.learning_rate = 0.003F},
        length,
        hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = 100 + m},
        1 + m};
    if (m % 2 == 1) config.optimizer = hydra::sgd_momentum{.learning_rate = 0.05F};
    configs.push_back(std::move(config));
  }
  hydra::host_backend backend({.device_budgets = std::vector<std::size_t>(devices, 8_MiB)});
  auto const started = std::chrono::steady_clock::now();
  hydra::mpi::distributed_report report;
  try {
    report = hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, std::move(configs),
                                   [] { return hydra::any_policy(hydra::sharp{}); }, {}, {.round_minibatches = round});
  } catch (hydra::error const& e) {
    std::fprintf(stderr, "mpi_sweep (rank %d): %s\n", hydra::mpi::rank(MPI_COMM_WORLD), e.what());
    return 1;
  }
  double const wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (hydra::mpi::rank(MPI_COMM_WORLD) != 0) return report.error ? 1 : 0;

  std::printf("%-16s %5s %6s %5s %10s\n", "model", "rank", "start", "steps", "last loss");
  for (std::size_t m = 0; m < report.results.size(); ++m) {
    auto const& r = report.results[m];
    std::printf("%-16s %5zu %6zu %5zu %10.4f%s\n", r.name.c_str(), report.rank_of[m], report.starting_rank[m], r.steps,
                r.losses.empty() ? 0.0 : static_cast<double>(r.losses.back()),
                r.failure ? ("  FAILED: " + *r.failure).c_str() : "");
  }
  std::uint64_t bytes_moved = 0;
  for (std::size_t r = 0; r < report.ranks.size(); ++r) {
    auto const& summary = report.ranks[r];
    bytes_moved += summary.bytes_moved_in;
    std::printf("rank %zu on %s: %zu devices, %zu models at the end, busy %.2f s, took %llu models (%llu bytes)%s\n", r,
                summary.host.c_str(), summary.devices, summary.models.size(),
                std::chrono::duration<double>(summary.busy).count(),
                static_cast<unsigned long long>(summary.models_moved_in),
                static_cast<unsigned long long>(summary.bytes_moved_in),
                summary.error ? (", ended early: " + *summary.error).c_str() : "");
  }
  std::printf("%zu ranks, %zu rounds, %zu models moved (%llu bytes), wall %.2f s\n", report.ranks.size(), report.rounds,
              report.moves.size(), static_cast<unsigned long long>(bytes_moved), wall);
  bool any_failed = false;
  for (auto const& r : report.results) any_failed = any_failed || r.failure.has_value();
  return any_failed ? 1 : 0;
}
