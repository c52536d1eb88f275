// A sweep checkpoint from one rank to all: what resuming a sweep over MPI
// ranks needs on every rank where there is no file system they share.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/mpi/detail/transport.hpp"
#include "hydra/mpi/environment.hpp"
#include "hydra/train/sweep_checkpoint.hpp"

namespace hydra::mpi {

// Gives every rank of `comm` the checkpoint rank `root` holds (read from its
// disk, say). Collective. On `root`, `checkpoint` must hold one.
inline void broadcast(MPI_Comm comm, std::optional<sweep_checkpoint>& checkpoint, int root = 0) {
  bool const sender = rank(comm) == root;
  // Every rank learns whether the root has one, so that none waits for bytes that never come.
  int held = sender && checkpoint.has_value() ? 1 : 0;
  check(MPI_Bcast(&held, 1, MPI_INT, root, comm), "MPI_Bcast");
  hydra::detail::expects(held == 1,
                         "mpi sweep: broadcast() from rank " + std::to_string(root) + ", which holds no checkpoint");
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

} // namespace hydra::mpi
