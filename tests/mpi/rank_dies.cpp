// A rank killed in the middle of a sweep over MPI ranks (SIGKILL, as the
// out-of-memory killer or a node failure would): the run must end, not hang,
// with an error that names the rank and its machine. Open MPI's launcher
// reports it ("process rank 1 ... on node <host> exited on signal 9"); the
// ctest checks for that line. Run with 2 or more ranks.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/mpi.hpp"

using namespace hydra::literals;

int main(int argc, char** argv) {
  hydra::mpi::environment mpi(argc, argv);
  int const me = hydra::mpi::rank(MPI_COMM_WORLD);
  constexpr std::size_t features = 16, classes = 5, batch = 8;
  std::vector<hydra::model_config> configs;
  for (std::uint64_t m = 0; m < 6; ++m)
    configs.push_back(
        {"mlp " + std::to_string(m), hydra::layers::make_mlp(features, 24, 4, classes, batch), hydra::adam{}, 8,
         hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = 100 + m},
         1 + m});
  hydra::host_backend backend({.device_budgets = {96_KiB, 96_KiB}});
  int rounds = 0;
  auto const policy = [&] {
    // Rank 1 dies as its third round starts.
    if (me == 1 && ++rounds == 3) std::raise(SIGKILL);
    return hydra::any_policy(hydra::sharp{});
  };
  (void)hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, std::move(configs), policy, {}, {.round_minibatches = 1});
  std::printf("rank %d: the sweep ended without the killed rank\n", me);
  return 0;
}
