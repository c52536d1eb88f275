// The backend concept over CUDA: the only part of hydra that touches the CUDA
// runtime. Host code only (runtime API), so g++ compiles it without nvcc.
//  - streams: created non-blocking; a spill engine's prefetch stream gets the
//    device's highest priority, so fetches overtake write-backs on the copy
//    engines (research/offload_peers.md: give prefetch priority over spill);
//  - events: pooled per device (creating events is expensive and takes a
//    driver lock), created with cudaEventDisableTiming; a default-constructed
//    event counts as already fired, as on the host backend. Timed events
//    (record_timed_event, elapsed_seconds) come from a second pool: the
//    multi-model trainer times each task's compute with a pair of them, since
//    CUDA keeps no per-stream busy counter;
//  - copies: cudaMemcpyAsync between pinned host memory and device memory
//    only. A pageable host pointer is refused with an error: it would turn the
//    copy silently synchronous. Copies touching this backend's pinned range
//    are cut at its chunk boundaries;
//  - NVTX: annotate(name) opens a range in hydra's domain (the trainers name
//    each task with it); every copy_async is a range too;
//  - host work: cudaLaunchHostFunc; an exception thrown there is kept and
//    reported by the next synchronize() of that stream, as a stream_error;
//  - memory: each device's budget is one cudaMalloc slab behind hydra's own
//    stream-ordered pool (device_pool), host memory one pinned range behind
//    host_pool. Why a slab and not cudaMallocAsync from a dedicated pool: the
//    same pool code and counters as on the host backend, tested there, and a
//    budget that is a hard number. The benchmark the CUDA-backend issue asks
//    for (slab pool vs cudaMalloc vs cudaMallocAsync) has not run on a GPU yet.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/backend/cuda/device.hpp"
#include "hydra/backend/cuda/nvtx.hpp"
#include "hydra/backend/cuda/pinned_host_memory.hpp"
#include "hydra/backend/cuda/status.hpp"
#include "hydra/backend/memory_reservation.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"

namespace hydra::cuda {

struct cuda_backend_options {
  // One entry per device used (devices 0..n-1): the bytes hydra may use there.
  std::vector<std::size_t> device_budgets;
  std::size_t pin_chunk_bytes = default_pin_chunk_bytes;
};

namespace detail {

// Switches the calling thread's current device for a scope.
class device_scope {
public:
  explicit device_scope(std::size_t device) {
    HYDRA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != static_cast<int>(device)) HYDRA_CHECK(cudaSetDevice(static_cast<int>(device)));
  }
  device_scope(device_scope const&) = delete;
  device_scope& operator=(device_scope const&) = delete;
  ~device_scope() { static_cast<void>(cudaSetDevice(previous_)); }

private:
  int previous_ = 0;
};

struct stream_state {
  cudaStream_t handle = nullptr;
  std::size_t device = 0;
  std::uint64_t id = 0;
  std::string name;
  std::mutex mutex;
  std::exception_ptr failure; // the first exception thrown by host work on it
  // Library handles bound to this stream, made on first use (layers on the
  // stream's device share them; one stream's work is issued from one thread).
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
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

class cuda_backend {
public:
  using stream = cuda_stream;
  using event = cuda_event;
  using timed_event = cuda_timed_event;

  explicit cuda_backend(cuda_backend_options options) : options_(std::move(options)) {
    std::size_t const available = hydra::cuda::device_count(); // not the member: the machine's count
    hydra::detail::expects(available > 0,
                           "cuda_backend: no CUDA device (cudaGetDeviceCount reports none, or there is no driver)");
    hydra::detail::expects(!options_.device_budgets.empty(), "cuda_backend: device count is 0; at least 1 is required");
    hydra::detail::expects(options_.device_budgets.size() <= available,
                           "cuda_backend: " + std::to_string(options_.device_budgets.size()) +
                               " devices requested, but this machine has " + std::to_string(available));
    for (std::size_t d = 0; d < options_.device_budgets.size(); ++d) {
      detail::device_scope on(d);
      std::size_t free = 0, total = 0;
      HYDRA_CHECK(cudaMemGetInfo(&free, &total));
      hydra::detail::expects(options_.device_budgets[d] >= allocation_alignment,
                             "cuda_backend: device " + std::to_string(d) + " budget " +
                                 format_bytes(options_.device_budgets[d]) + " is below the minimum of " +
                                 format_bytes(allocation_alignment));
      hydra::detail::expects(options_.device_budgets[d] <= total,
                             "cuda_backend: device " + std::to_string(d) + " budget " +
                                 format_bytes(options_.device_budgets[d]) + " is above its memory (" +
                                 format_bytes(total) + ")");
      pools_.push_back(std::make_shared<detail::event_pool>(d));
      timed_pools_.push_back(std::make_shared<detail::event_pool>(d, cudaEventDefault));
    }
  }

  cuda_backend(cuda_backend const&) = delete;
  cuda_backend& operator=(cuda_backend const&) = delete;

  // Drains every stream before the memory its work may touch goes away.
  ~cuda_backend() {
    for (auto& s : streams_) {
      static_cast<void>(cudaStreamSynchronize(s->handle));
      if (s->cublas != nullptr) static_cast<void>(cublasDestroy(s->cublas));
      if (s->cudnn != nullptr) static_cast<void>(cudnnDestroy(s->cudnn));
      static_cast<void>(cudaStreamDestroy(s->handle));
    }
  }

  [[nodiscard]] std::size_t device_count() const noexcept { return options_.device_budgets.size(); }
  [[nodiscard]] std::size_t device_capacity(std::size_t device) const {
    check_device(device);
    return options_.device_budgets[device];
  }
  [[nodiscard]] std::string device_name(std::size_t device) const {
    check_device(device);
    cudaDeviceProp properties{};
    HYDRA_CHECK(cudaGetDeviceProperties(&properties, static_cast<int>(device)));
    return "CUDA device " + std::to_string(device) + " (" + properties.name + ")";
  }

  // ---- streams and events -------------------------------------------------

  cuda_stream create_stream(std::size_t device, std::string name = {}, stream_role role = stream_role::other) {
    check_device(device);
    detail::device_scope on(device);
    int least = 0, greatest = 0; // numerically: greatest priority is the lowest number
    HYDRA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    int const priority = role == stream_role::prefetch ? greatest : least;
    auto state = std::make_unique<detail::stream_state>();
    HYDRA_CHECK(cudaStreamCreateWithPriority(&state->handle, cudaStreamNonBlocking, priority));
    state->device = device;
    std::lock_guard lock(mutex_);
    state->id = streams_.size() + 1;
    state->name = name.empty() ? "stream " + std::to_string(state->id) : std::move(name);
    streams_.push_back(std::move(state));
    return cuda_stream(streams_.back().get());
  }

  [[nodiscard]] cuda_event record_event(cuda_stream s) { return record_from(pools_.at(s.device()), s); }

  [[nodiscard]] cuda_timed_event record_timed_event(cuda_stream s) {
    return cuda_timed_event(record_from(timed_pools_.at(s.device()), s));
  }

  // Seconds between two timed events of one device (recorded in that order on
  // one stream). Waits for `to` if it has not fired yet: the trainer asks when a
  // task's completion arrives, which the event recorded just after the task's
  // last kernel may not have reached.
  [[nodiscard]] double elapsed_seconds(cuda_timed_event const& from, cuda_timed_event const& to) {
    hydra::detail::expects(from.handle() != nullptr && to.handle() != nullptr,
                           "cuda_backend::elapsed_seconds: an event was never recorded");
    HYDRA_CHECK(cudaEventSynchronize(to.handle()));
    float milliseconds = 0.0F;
    HYDRA_CHECK(cudaEventElapsedTime(&milliseconds, from.handle(), to.handle()));
    return static_cast<double>(milliseconds) * 1e-3;
  }

  void wait_event(cuda_stream s, cuda_event const& e) {
    if (e.handle() != nullptr) HYDRA_CHECK(cudaStreamWaitEvent(s.handle(), e.handle(), 0));
  }

  [[nodiscard]] bool query(cuda_event const& e) {
    if (e.handle() == nullptr) return true;
    cudaError_t const status = cudaEventQuery(e.handle());
    if (status == cudaErrorNotReady) {
      static_cast<void>(cudaGetLastError());
      return false;
    }
    HYDRA_CHECK(status);
    return true;
  }

  void synchronize(cuda_event const& e) {
    if (e.handle() != nullptr) HYDRA_CHECK(cudaEventSynchronize(e.handle()));
  }

  // Waits for everything enqueued on `s`; rethrows (as stream_error) the first
  // exception its host work threw.
  void synchronize(cuda_stream s) {
    HYDRA_CHECK(cudaStreamSynchronize(s.handle()));
    std::exception_ptr failure;
    {
      std::lock_guard lock(s.state_->mutex);
      failure = std::exchange(s.state_->failure, nullptr);
    }
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (std::exception const& e) {
      throw stream_error(s.state_->name + ": host work failed: " + e.what());
    } catch (...) {
      throw stream_error(s.state_->name + ": host work failed with a non-standard exception");
    }
  }

  // An NVTX range named `name`, open until the returned object goes.
  [[nodiscard]] static nvtx_range annotate(std::string const& name) { return nvtx_range(name); }

  // cuBLAS and cuDNN handles that issue their work on `s` (made on first use).
  [[nodiscard]] cublasHandle_t cublas(cuda_stream s) {
    auto* state = s.state_;
    if (state->cublas == nullptr) {
      detail::device_scope on(state->device);
      HYDRA_CHECK(cublasCreate(&state->cublas));
      HYDRA_CHECK(cublasSetStream(state->cublas, state->handle));
    }
    return state->cublas;
  }
  [[nodiscard]] cudnnHandle_t cudnn(cuda_stream s) {
    auto* state = s.state_;
    if (state->cudnn == nullptr) {
      detail::device_scope on(state->device);
      HYDRA_CHECK(cudnnCreate(&state->cudnn));
      HYDRA_CHECK(cudnnSetStream(state->cudnn, state->handle));
    }
    return state->cudnn;
  }

  // ---- work -----------------------------------------------------------------

  // Host work in stream order. It must not call CUDA (a host function may not);
  // an exception it throws is kept for the stream's next synchronize().
  template <class Function>
  void enqueue(cuda_stream s, Function&& function) {
    auto* item = new host_item{std::function<void()>(std::forward<Function>(function)), s.state_};
    cudaError_t const status = cudaLaunchHostFunc(s.handle(), &run_host_item, item);
    if (status != cudaSuccess) delete item;
    HYDRA_CHECK(status);
  }

  // Between pinned host memory and device memory (or device to device), in
  // stream order. A pageable host pointer is refused.
  void copy_async(cuda_stream s, void* destination, void const* source, std::size_t bytes) {
    if (bytes == 0) return;
    bool const to_device = require_copyable(destination, "destination") == cudaMemoryTypeDevice;
    bool const from_device = require_copyable(source, "source") == cudaMemoryTypeDevice;
    static constexpr char const* names[2][2] = {{"copy host to host (bytes)", "copy host to device (bytes)"},
                                                {"copy device to host (bytes)", "copy device to device (bytes)"}};
    nvtx_range const range(names[from_device][to_device], bytes);
    std::lock_guard lock(mutex_); // pinned_ grows when a host pool is made
    auto* to = static_cast<std::byte*>(destination);
    auto const* from = static_cast<std::byte const*>(source);
    while (bytes > 0) {
      std::size_t piece = bytes;
      for (auto const& region : pinned_) {
        if (region.contains(from)) piece = std::min(piece, static_cast<std::size_t>(region.next_boundary(from) - from));
        if (region.contains(to)) piece = std::min(piece, static_cast<std::size_t>(region.next_boundary(to) - to));
      }
      HYDRA_CHECK(cudaMemcpyAsync(to, from, piece, cudaMemcpyDefault, s.handle()));
      to += piece;
      from += piece;
      bytes -= piece;
    }
  }

  void memset_async(cuda_stream s, void* destination, std::uint8_t value, std::size_t bytes) {
    HYDRA_CHECK(cudaMemsetAsync(destination, value, bytes, s.handle()));
  }

  // ---- memory ---------------------------------------------------------------

  // The device's whole budget as one slab, once.
  [[nodiscard]] memory_reservation reserve_device_memory(std::size_t device, std::size_t bytes) {
    check_device(device);
    detail::device_scope on(device);
    void* slab = nullptr;
    cudaError_t const status = cudaMalloc(&slab, bytes);
    if (status == cudaErrorMemoryAllocation) {
      static_cast<void>(cudaGetLastError());
      std::size_t free = 0, total = 0;
      HYDRA_CHECK(cudaMemGetInfo(&free, &total));
      throw out_of_memory("CUDA device " + std::to_string(device) + " reservation", bytes, total - free, total, free);
    }
    HYDRA_CHECK(status);
    return memory_reservation(slab, bytes, [device](void* data, std::size_t) {
      int previous = 0;
      static_cast<void>(cudaGetDevice(&previous));
      static_cast<void>(cudaSetDevice(static_cast<int>(device)));
      static_cast<void>(cudaFree(data));
      static_cast<void>(cudaSetDevice(previous));
    });
  }

  // Pinned host memory, pinned now in chunks (see pinned_host_memory.hpp).
  [[nodiscard]] memory_reservation reserve_host_memory(std::size_t bytes) {
    pinned_region region;
    memory_reservation reservation = pin_host_memory(bytes, options_.pin_chunk_bytes, &region);
    std::lock_guard lock(mutex_);
    pinned_.push_back(region);
    return reservation;
  }

private:
  static cuda_event record_from(std::shared_ptr<detail::event_pool> const& pool, cuda_stream s) {
    std::shared_ptr<cudaEvent_t> slot(new cudaEvent_t(pool->take()), [pool](cudaEvent_t* e) {
      pool->give_back(*e);
      delete e;
    });
    HYDRA_CHECK(cudaEventRecord(*slot, s.handle()));
    return cuda_event(std::move(slot));
  }

  struct host_item {
    std::function<void()> function;
    detail::stream_state* stream;
  };

  static void CUDART_CB run_host_item(void* data) {
    std::unique_ptr<host_item> item(static_cast<host_item*>(data));
    try {
      item->function();
    } catch (...) {
      std::lock_guard lock(item->stream->mutex);
      if (!item->stream->failure) item->stream->failure = std::current_exception();
    }
  }

  void check_device(std::size_t device) const {
    if (device >= options_.device_budgets.size()) {
      throw invalid_argument("cuda_backend: device " + std::to_string(device) + " does not exist; there are " +
                             std::to_string(options_.device_budgets.size()));
    }
  }

  // Where `pointer` lives; refuses pageable host memory.
  static cudaMemoryType require_copyable(void const* pointer, char const* which) {
    cudaPointerAttributes attributes{};
    HYDRA_CHECK(cudaPointerGetAttributes(&attributes, pointer));
    if (attributes.type == cudaMemoryTypeUnregistered) {
      char address[32];
      std::snprintf(address, sizeof address, "%p", pointer);
      throw invalid_argument(std::string("cuda_backend::copy_async: the ") + which + " (" + address +
                             ") is pageable host memory; copies run asynchronously only between pinned host "
                             "memory (a host_pool on this backend) and device memory, and a pageable copy would "
                             "silently run synchronously");
    }
    return attributes.type;
  }

  cuda_backend_options options_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<detail::stream_state>> streams_;
  std::vector<std::shared_ptr<detail::event_pool>> pools_;
  std::vector<std::shared_ptr<detail::event_pool>> timed_pools_;
  std::vector<pinned_region> pinned_;
};

static_assert(backend<cuda_backend>);

} // namespace hydra::cuda
