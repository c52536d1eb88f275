// Builds against hydra::mpi from an installed hydra: its headers and MPI's.
#include <cstdio>

#include "hydra/mpi.hpp"

int main(int argc, char** argv) {
  hydra::mpi::environment mpi(argc, argv);
  std::printf("rank %d of %d\n", hydra::mpi::rank(MPI_COMM_WORLD), hydra::mpi::size(MPI_COMM_WORLD));
  return 0;
}
