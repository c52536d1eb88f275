// The backend concept over CUDA: the only part of hydra that touches the CUDA
// runtime. Host code only (runtime API), so g++ compiles it without nvcc.
//  - streams: created non-blocking (no implicit sync with the legacy default
//    stream). A compute stream (stream_role::compute) gets its cuBLAS and cuDNN
//    handles at creation, warmed up (library_handles.hpp), so that no library
//    start-up lands inside a timed task; other streams get them on first use;
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
//    A copy between two devices' memory (a kept activation read on another
//    device) is a peer copy: the constructor enables peer access between
//    every pair of devices that can reach each other, so that it goes over
//    their link; elsewhere the driver stages it through host memory;
//  - NVTX: annotate(name) opens a range in hydra's domain (the trainers name
//    each task with it); every copy_async is a range too;
//  - host work: cudaLaunchHostFunc; an exception thrown there is kept and
//    reported by the next synchronize() of that stream, as a stream_error.
//    After a device fault such host work never runs (the runtime skips host
//    functions once the context is lost), so whoever waits for it polls
//    check(stream), which reports the fault without waiting;
//  - device faults: a context-poisoning error is thrown once as device_fault
//    (status.hpp); after that, the calls that only order or wait (record,
//    wait for, query or synchronize an event) do nothing, so that pools and
//    spill engines can still be destroyed, while every call that starts work
//    keeps throwing;
//  - memory: each device's budget is one cudaMalloc slab behind hydra's own
//    stream-ordered pool (device_pool), host memory one pinned range behind
//    host_pool. Why a slab and not cudaMallocAsync from a dedicated pool: the
//    same pool code and counters as on the host backend, tested there, and a
//    budget that is a hard number. The budget must fit the device's free
//    memory once the CUDA context and a warmed set of library handles exist,
//    less headroom for what the libraries allocate later (their workspaces
//    and lazily loaded kernels live outside the budget).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/backend/cuda/cuda_stream.hpp"
#include "hydra/backend/cuda/device.hpp"
#include "hydra/backend/cuda/device_scope.hpp"
#include "hydra/backend/cuda/library_handles.hpp"
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
  // Device memory each budget must leave free beyond what the CUDA context and
  // one warmed set of cuBLAS/cuDNN handles take when the backend starts: the
  // cuBLAS workspace of each compute stream's handle (32 MiB recommended on
  // Hopper), kernels loaded on first use, cuDNN's own allocations.
  std::size_t headroom_bytes = 512_MiB;
};

namespace detail {

// Why a slab of `budget` bytes cannot be reserved on `device`, given its free
// and total memory now (the context and warmed handles already made); empty
// when it can.
[[nodiscard]] inline std::string budget_refusal(std::size_t device, std::size_t budget, std::size_t free,
                                                std::size_t total, std::size_t headroom) {
  std::string const which = "cuda_backend: device " + std::to_string(device) + " budget " + format_bytes(budget);
  if (budget < allocation_alignment) return which + " is below the minimum of " + format_bytes(allocation_alignment);
  std::size_t const usable = free > headroom ? free - headroom : 0;
  if (budget <= usable) return {};
  return which + " does not fit: " + format_bytes(free) + " of its " + format_bytes(total) +
         " are free after the CUDA context and the cuBLAS/cuDNN handles, less " + format_bytes(headroom) +
         " of headroom for the libraries (cuda_backend_options::headroom_bytes) leaves at most " + format_bytes(usable);
}

} // namespace detail

class cuda_backend {
public:
  using stream = cuda_stream;
  using event = cuda_event;
  using timed_event = cuda_timed_event;

  explicit cuda_backend(cuda_backend_options options) : options_(std::move(options)) {
    device_report const found = query_devices(); // not device_count(): the machine's count
    if (found.presence == device_presence::absent) throw invalid_argument("cuda_backend: " + found.describe());
    if (found.presence == device_presence::broken) {
      throw backend_error("CUDA", cudaGetErrorName(found.status), found.describe(), "cudaGetDeviceCount",
                          std::source_location::current());
    }
    hydra::detail::expects(!options_.device_budgets.empty(), "cuda_backend: device count is 0; at least 1 is required");
    hydra::detail::expects(options_.device_budgets.size() <= static_cast<std::size_t>(found.devices),
                           "cuda_backend: " + std::to_string(options_.device_budgets.size()) +
                               " devices requested, but this machine has " + std::to_string(found.devices));
    for (std::size_t d = 0; d < options_.device_budgets.size(); ++d) {
      auto const [free, total] = free_memory_after_start_up(d);
      std::string const refusal =
          detail::budget_refusal(d, options_.device_budgets[d], free, total, options_.headroom_bytes);
      if (!refusal.empty()) throw invalid_argument(refusal);
      pools_.push_back(std::make_shared<detail::event_pool>(d));
      timed_pools_.push_back(std::make_shared<detail::event_pool>(d, cudaEventDefault));
    }
    enable_peer_access();
  }

  cuda_backend(cuda_backend const&) = delete;
  cuda_backend& operator=(cuda_backend const&) = delete;

  // Drains every stream before the memory its work may touch goes away; then
  // each stream and its handles go, on their device.
  ~cuda_backend() {
    for (auto& s : streams_) static_cast<void>(cudaStreamSynchronize(s->handle));
    streams_.clear();
  }

  [[nodiscard]] std::size_t device_count() const noexcept { return options_.device_budgets.size(); }
  [[nodiscard]] std::size_t device_budget(std::size_t device) const {
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

  // Priorities are not used: the prefetch and spill streams carry only copies
  // and host functions, and stream priority orders kernels alone.
  cuda_stream create_stream(std::size_t device, std::string name = {}, stream_role role = stream_role::other) {
    check_device(device);
    detail::device_scope on(device);
    auto state = std::make_unique<detail::stream_state>();
    HYDRA_CHECK(cudaStreamCreateWithFlags(&state->handle, cudaStreamNonBlocking));
    state->device = device;
    if (role == stream_role::compute) {
      state->libraries = std::make_unique<detail::library_handles>(device, state->handle);
      state->libraries->warm_up(state->handle);
    }
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
    if (context_lost()) throw error("cuda_backend::elapsed_seconds: the CUDA context was lost; nothing more is timed");
    hydra::detail::expects(from.handle() != nullptr && to.handle() != nullptr,
                           "cuda_backend::elapsed_seconds: an event was never recorded");
    HYDRA_CHECK(cudaEventSynchronize(to.handle()));
    float milliseconds = 0.0F;
    HYDRA_CHECK(cudaEventElapsedTime(&milliseconds, from.handle(), to.handle()));
    return static_cast<double>(milliseconds) * 1e-3;
  }

  void wait_event(cuda_stream s, cuda_event const& e) {
    if (e.handle() != nullptr && !context_lost()) HYDRA_CHECK(cudaStreamWaitEvent(s.handle(), e.handle(), 0));
  }

  [[nodiscard]] bool query(cuda_event const& e) {
    if (e.handle() == nullptr || context_lost()) return true;
    cudaError_t const status = cudaEventQuery(e.handle());
    if (status == cudaErrorNotReady) {
      static_cast<void>(cudaGetLastError());
      return false;
    }
    HYDRA_CHECK(status);
    return true;
  }

  void synchronize(cuda_event const& e) {
    if (e.handle() != nullptr && !context_lost()) HYDRA_CHECK(cudaEventSynchronize(e.handle()));
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

  // Whether the work queued on `s` can still run, without waiting
  // (cudaStreamQuery). Returns while it can (running or done); throws
  // device_fault when the device's context is lost, so that nothing queued on
  // any stream of that device, host functions included, will ever run, and
  // backend_error for any other error the query reports. A thread that waits
  // for host work queued on streams (the multi-model trainer's completions)
  // calls it on each stream whenever its wait times out.
  void check(cuda_stream s) const {
    cudaError_t const status = cudaStreamQuery(s.handle());
    if (status == cudaSuccess || status == cudaErrorNotReady) return;
    std::string const call =
        "cudaStreamQuery(stream '" + s.state_->name + "' of CUDA device " + std::to_string(s.device()) + ")";
    hydra::check_status(status, call.c_str());
  }

  // An NVTX range named `name`, open until the returned object goes.
  [[nodiscard]] static nvtx_range annotate(std::string const& name) { return nvtx_range(name); }

  // cuBLAS and cuDNN handles that issue their work on `s`: a compute stream's
  // were made and warmed with it, any other stream's are made on first use.
  [[nodiscard]] cublasHandle_t cublas(cuda_stream s) { return libraries(s).cublas(); }
  [[nodiscard]] cudnnHandle_t cudnn(cuda_stream s) { return libraries(s).cudnn(); }

  // ---- work -----------------------------------------------------------------

  // Host work in stream order. It must not call CUDA (a host function may not);
  // an exception it throws is kept for the stream's next synchronize().
  template <class Function>
  void enqueue(cuda_stream s, Function&& function) {
    detail::device_scope on(s.device());
    auto item = std::make_unique<host_item>(std::function<void()>(std::forward<Function>(function)), s.state_);
    HYDRA_CHECK(cudaLaunchHostFunc(s.handle(), &run_host_item, item.get()));
    static_cast<void>(item.release()); // run_host_item owns it now
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
    detail::device_scope on(s.device());
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
      detail::device_scope const on(device, std::nothrow);
      static_cast<void>(cudaFree(data));
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
  // Peer access from each device to every other it can reach. Best effort:
  // a pair that cannot have it (already enabled by an earlier backend in
  // this process, or past the driver's peer limit) is copied as without it,
  // staged by the driver.
  void enable_peer_access() const {
    int const devices = static_cast<int>(options_.device_budgets.size());
    for (int d = 0; d < devices; ++d) {
      detail::device_scope on(static_cast<std::size_t>(d));
      for (int peer = 0; peer < devices; ++peer) {
        if (peer == d) continue;
        int reachable = 0;
        HYDRA_CHECK(cudaDeviceCanAccessPeer(&reachable, d, peer));
        if (reachable == 0) continue;
        if (cudaDeviceEnablePeerAccess(peer, 0) != cudaSuccess)
          static_cast<void>(cudaGetLastError()); // clears it: not a sticky error
      }
    }
  }

  // Device memory once the device's context exists and one set of library
  // handles has been made and warmed there (their code loaded): what a budget
  // must fit in. The handles go again; the next ones on this device start fast.
  static std::pair<std::size_t, std::size_t> free_memory_after_start_up(std::size_t device) {
    detail::device_scope on(device);
    cudaStream_t made = nullptr;
    HYDRA_CHECK(cudaStreamCreateWithFlags(&made, cudaStreamNonBlocking));
    std::unique_ptr<CUstream_st, decltype(&cudaStreamDestroy)> const stream(made, &cudaStreamDestroy);
    std::size_t free = 0, total = 0;
    {
      detail::library_handles const handles(device, stream.get());
      handles.warm_up(stream.get());
      HYDRA_CHECK(cudaMemGetInfo(&free, &total));
    }
    return {free, total};
  }

  detail::library_handles& libraries(cuda_stream s) {
    auto* state = s.state_;
    // Published only once made and bound to the stream.
    if (!state->libraries) state->libraries = std::make_unique<detail::library_handles>(state->device, state->handle);
    return *state->libraries;
  }

  // After a device fault there is nothing to order: a default event (fired).
  static cuda_event record_from(std::shared_ptr<detail::event_pool> const& pool, cuda_stream s) {
    if (context_lost()) return cuda_event{};
    std::shared_ptr<cudaEvent_t> slot(new cudaEvent_t(pool->take()), [pool](cudaEvent_t* e) {
      pool->give_back(*e);
      delete e;
    });
    HYDRA_CHECK(cudaEventRecord(*slot, s.handle()));
    return cuda_event(std::move(slot));
  }

  struct host_item {
    host_item(std::function<void()> f, detail::stream_state* on) : function(std::move(f)), stream(on) {}
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
