// MPI for hydra: starting and ending it, and its errors as hydra's. Only what
// includes hydra/mpi.hpp needs MPI (the hydra::mpi target links it).
#pragma once

#include <mpi.h>

#include <source_location>
#include <string>

#include "hydra/core/error.hpp"

namespace hydra::mpi {

// Throws backend_error naming the MPI call, its error and where it was made.
// hydra's MPI calls return their errors (environment sets MPI_ERRORS_RETURN on
// the world communicator) so that they end a sweep with a message, not an abort.
inline void check(int code, char const* call, std::source_location where = std::source_location::current()) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw backend_error("MPI", std::to_string(code), std::string(text, static_cast<std::size_t>(length)), call, where);
}

// Starts MPI for the program's lifetime (MPI_Init_thread asking for
// MPI_THREAD_FUNNELED: only the thread that made the environment calls MPI;
// hydra's stream threads never do) unless the program started it itself, and
// ends it (MPI_Finalize) when it started it. Make one in main(), before any
// other MPI call.
class environment {
public:
  environment(int& argc, char**& argv) {
    int started = 0;
    MPI_Initialized(&started);
    if (!started) {
      int provided = 0;
      check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_ = true;
    }
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  }
  environment(environment const&) = delete;
  environment& operator=(environment const&) = delete;
  ~environment() {
    int ended = 0;
    MPI_Finalized(&ended);
    if (owns_ && !ended) MPI_Finalize();
  }

private:
  bool owns_ = false;
};

// This process's rank in `comm`, and how many ranks `comm` has.
[[nodiscard]] inline int rank(MPI_Comm comm) {
  int r = 0;
  check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}
[[nodiscard]] inline int size(MPI_Comm comm) {
  int n = 0;
  check(MPI_Comm_size(comm, &n), "MPI_Comm_size");
  return n;
}

// The name of the machine this rank runs on (what errors name a rank by).
[[nodiscard]] inline std::string host_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  check(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name");
  return {name, static_cast<std::size_t>(length)};
}

} // namespace hydra::mpi
