// The CUDA backend's stream and event handles (cuda_backend.hpp makes them),
// and what stands behind them: a stream's state (its CUDA stream, its library
// handles, the first failure of its host work) and the per-device event pools.
// Handles are cheap to copy; the backend owns what they point to and must
// outlive them, except events, which find their pool even after the backend
// is gone.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/cuda/device_scope.hpp"
#include "hydra/backend/cuda/library_handles.hpp"
#include "hydra/backend/cuda/status.hpp"

namespace hydra::cuda {

namespace detail {

struct stream_state {
  cudaStream_t handle = nullptr;
  std::size_t device = 0;
  std::uint64_t id = 0;
  std::string name;
  std::mutex mutex;
  std::exception_ptr failure; // the first exception thrown by host work on it
  // cuBLAS and cuDNN bound to this stream (layers on the stream's device share
  // them; one stream's work is issued from one thread).
  std::unique_ptr<library_handles> libraries;

  stream_state() = default;
  stream_state(stream_state const&) = delete;
  stream_state& operator=(stream_state const&) = delete;
  // The handles first (they are bound to the stream), then the stream, on its device.
  ~stream_state() {
    libraries.reset();
    if (handle == nullptr) return;
    device_scope const on(device, std::nothrow);
    static_cast<void>(cudaStreamDestroy(handle));
  }
};

// Reusable events of one device. Shared with every event handed out, so an
// event released after the backend is gone still finds its pool.
class event_pool {
public:
  explicit event_pool(std::size_t device, unsigned flags = cudaEventDisableTiming) : device_(device), flags_(flags) {}
  event_pool(event_pool const&) = delete;
  event_pool& operator=(event_pool const&) = delete;
  ~event_pool() {
    for (cudaEvent_t e : free_) static_cast<void>(cudaEventDestroy(e));
  }

  cudaEvent_t take() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        cudaEvent_t e = free_.back();
        free_.pop_back();
        return e;
      }
    }
    device_scope on(device_);
    cudaEvent_t e = nullptr;
    HYDRA_CHECK(cudaEventCreateWithFlags(&e, flags_));
    return e;
  }
  void give_back(cudaEvent_t e) noexcept {
    std::lock_guard lock(mutex_);
    free_.push_back(e);
  }

private:
  std::size_t device_;
  unsigned flags_;
  std::mutex mutex_;
  std::vector<cudaEvent_t> free_;
};

} // namespace detail

class cuda_stream {
public:
  cuda_stream() = default;
  [[nodiscard]] std::uint64_t id() const noexcept { return state_ ? state_->id : 0; }
  [[nodiscard]] cudaStream_t handle() const noexcept { return state_ ? state_->handle : nullptr; }
  [[nodiscard]] std::size_t device() const noexcept { return state_ ? state_->device : 0; }
  friend bool operator==(cuda_stream const& a, cuda_stream const& b) noexcept { return a.state_ == b.state_; }

private:
  friend class cuda_backend;
  explicit cuda_stream(detail::stream_state* state) : state_(state) {}
  detail::stream_state* state_ = nullptr;
};

class cuda_event {
public:
  cuda_event() = default; // never recorded: counts as fired
  [[nodiscard]] cudaEvent_t handle() const noexcept { return slot_ ? *slot_ : nullptr; }

private:
  friend class cuda_backend;
  explicit cuda_event(std::shared_ptr<cudaEvent_t> slot) : slot_(std::move(slot)) {}
  std::shared_ptr<cudaEvent_t> slot_;
};

// An event that records a time, for elapsed_seconds.
class cuda_timed_event {
public:
  cuda_timed_event() = default;
  [[nodiscard]] cudaEvent_t handle() const noexcept { return event_.handle(); }

private:
  friend class cuda_backend;
  explicit cuda_timed_event(cuda_event event) : event_(std::move(event)) {}
  cuda_event event_;
};

} // namespace hydra::cuda
