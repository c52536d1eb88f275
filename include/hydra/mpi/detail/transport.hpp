// Byte messages between two ranks: the length first, then the body in chunks
// of at most 1 GiB (one MPI message's count is an int, and a large model's
// state is more than that).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "hydra/mpi/environment.hpp"

namespace hydra::mpi::detail {

inline constexpr std::size_t chunk_bytes = std::size_t{1} << 30;

template <class Byte>
void send_bytes(MPI_Comm comm, int to, std::vector<Byte> const& bytes) {
  static_assert(sizeof(Byte) == 1);
  std::uint64_t const length = bytes.size();
  check(MPI_Send(&length, 1, MPI_UINT64_T, to, 0, comm), "MPI_Send");
  for (std::size_t at = 0; at < bytes.size(); at += chunk_bytes) {
    auto const n = static_cast<int>(std::min(chunk_bytes, bytes.size() - at));
    check(MPI_Send(bytes.data() + at, n, MPI_BYTE, to, 1, comm), "MPI_Send");
  }
}

// send_bytes without waiting: `length` and `bytes` must outlive the requests
// it adds (MPI_Waitall on them).
template <class Byte>
void post_bytes(MPI_Comm comm, int to, std::vector<Byte> const& bytes, std::uint64_t const& length,
                std::vector<MPI_Request>& requests) {
  static_assert(sizeof(Byte) == 1);
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

// Every rank's bytes to rank 0, in rank order there (rank 0's own first);
// elsewhere nothing. Collective.
inline std::vector<std::vector<char>> gather_bytes(MPI_Comm comm, std::vector<char> mine) {
  int const me = rank(comm), ranks = size(comm);
  std::vector<std::vector<char>> all;
  if (me != 0) {
    send_bytes(comm, 0, mine);
    return all;
  }
  all.push_back(std::move(mine));
  for (int from = 1; from < ranks; ++from) all.push_back(receive_bytes(comm, from));
  return all;
}

// Rank `root`'s values to every rank of `comm`.
inline void broadcast_values(MPI_Comm comm, std::vector<double>& values, int root = 0) {
  check(MPI_Bcast(values.data(), static_cast<int>(values.size()), MPI_DOUBLE, root, comm), "MPI_Bcast");
}

} // namespace hydra::mpi::detail
