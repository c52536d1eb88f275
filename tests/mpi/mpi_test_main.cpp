// The MPI tests' main: every rank runs every test case (the sweep functions are
// collective, so the ranks must call them in the same order), and the program
// fails on every rank when a check failed on any.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "hydra/mpi.hpp"

int main(int argc, char** argv) {
  hydra::mpi::environment mpi(argc, argv);
  doctest::Context context(argc, argv);
  int const failed = context.run();
  int any = 0;
  hydra::mpi::check(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return context.shouldExit() ? failed : any;
}
