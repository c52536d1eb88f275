// Pinned (page-locked) host memory for the spilled state: one contiguous range,
// pinned once at start in chunks, so that no pin happens while training and a
// failure says exactly how far it got. cudaHostRegister of an anonymous mapping
// rather than one huge cudaHostAlloc: a large single pin is what users report
// failing ("invalid argument" for a 7 GB cudaHostAlloc), and chunks let the
// error name the bytes pinned before the failure.
// A copy must not span two chunks (each is its own registration): cuda_backend
// splits copies at chunk boundaries (pinned_region::split_at).
#pragma once

#include <sys/mman.h>
#include <sys/resource.h>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hydra/backend/memory_reservation.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"

namespace hydra::cuda {

inline constexpr std::size_t default_pin_chunk_bytes = 512_MiB;

// Pinning failed: carries the request, what was pinned before the failure and
// the runtime's error, then the process's RLIMIT_MEMLOCK. The limit is only a
// possible cause: the NVIDIA driver does not always charge pinned memory to it
// (large pins often work under the default limit).
class pinning_failed : public error {
public:
  pinning_failed(std::size_t requested, std::size_t pinned, std::string const& memlock, std::string const& cause)
      : error("pinned host memory: pinning " + format_bytes(requested) + " failed after " + format_bytes(pinned) +
              " were pinned (" + cause + "); if the machine has the memory, check RLIMIT_MEMLOCK, which is " + memlock +
              " (`ulimit -l`, or the container's memlock limit), or lower the host budget"),
        requested_(requested), pinned_(pinned) {}
  [[nodiscard]] std::size_t requested() const noexcept { return requested_; }
  [[nodiscard]] std::size_t pinned() const noexcept { return pinned_; }

private:
  std::size_t requested_;
  std::size_t pinned_;
};

namespace detail {
inline std::string memlock_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return "unknown";
  auto text = [](rlim_t value) { return value == RLIM_INFINITY ? std::string("unlimited") : format_bytes(value); };
  return text(limit.rlim_cur) + " (hard limit " + text(limit.rlim_max) + ")";
}
} // namespace detail

// Where the chunks of one pinned range begin: a copy touching [address, address + bytes)
// must be cut at the returned boundary when it is below the end.
struct pinned_region {
  std::byte const* begin = nullptr;
  std::size_t bytes = 0;
  std::size_t chunk_bytes = 0;

  [[nodiscard]] bool contains(void const* p) const noexcept {
    auto const* b = static_cast<std::byte const*>(p);
    return b >= begin && b < begin + bytes;
  }
  // The first chunk boundary after `p` (or the region's end).
  [[nodiscard]] std::byte const* next_boundary(void const* p) const noexcept {
    auto const offset = static_cast<std::size_t>(static_cast<std::byte const*>(p) - begin);
    std::size_t const next = (offset / chunk_bytes + 1) * chunk_bytes;
    return begin + (next < bytes ? next : bytes);
  }
};

// Maps `bytes` of host memory and pins it in chunks of `chunk_bytes`. On
// failure, unpins what it pinned, unmaps, and throws pinning_failed.
inline memory_reservation pin_host_memory(std::size_t bytes, std::size_t chunk_bytes, pinned_region* where = nullptr) {
  hydra::detail::expects(bytes > 0, "pinned host memory: 0 bytes requested");
  hydra::detail::expects(chunk_bytes > 0, "pinned host memory: chunk size 0");
  void* mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw pinning_failed(bytes, 0, detail::memlock_limit(), "mmap failed");
  auto* base = static_cast<std::byte*>(mapped);
  std::size_t pinned = 0;
  while (pinned < bytes) {
    std::size_t const piece = bytes - pinned < chunk_bytes ? bytes - pinned : chunk_bytes;
    cudaError_t const status = cudaHostRegister(base + pinned, piece, cudaHostRegisterDefault);
    if (status != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
      for (std::size_t done = 0; done < pinned; done += chunk_bytes) static_cast<void>(cudaHostUnregister(base + done));
      munmap(mapped, bytes);
      throw pinning_failed(bytes, pinned, detail::memlock_limit(),
                           std::string("cudaHostRegister: ") + cudaGetErrorName(status) + ", " +
                               cudaGetErrorString(status));
    }
    pinned += piece;
  }
  if (where != nullptr) *where = pinned_region{base, bytes, chunk_bytes};
  return memory_reservation(mapped, bytes, [chunk_bytes](void* data, std::size_t size) {
    auto* start = static_cast<std::byte*>(data);
    for (std::size_t done = 0; done < size; done += chunk_bytes) static_cast<void>(cudaHostUnregister(start + done));
    munmap(data, size);
  });
}

} // namespace hydra::cuda
