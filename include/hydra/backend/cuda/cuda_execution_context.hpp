// Where a layer's kernels run on the CUDA backend: one device's compute
// stream, with cuBLAS and cuDNN handles bound to it. Layers issue library calls
// (or their own kernels) on stream_handle(); hydra has bound every pointer they
// use to memory on this device and keeps it valid until the stream has run.
// Host work (enqueue) may not call CUDA.
//
// While a context lives, the calling thread's current device is the stream's
// (kernels, Thrust and library calls issued through it land there); the
// previous device comes back when it goes. Hence it is neither copied nor moved.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <utility>

#include "hydra/backend/cuda/cuda_backend.hpp"
#include "hydra/backend/cuda/device_scope.hpp"
#include "hydra/core/fault_record.hpp"

#if defined(__CUDACC__)
#include <thrust/system/cuda/execution_policy.h>
#endif

namespace hydra::cuda {

class cuda_execution_context {
public:
  cuda_execution_context(cuda_backend& backend, cuda_stream stream, std::shared_ptr<fault_record> faults = nullptr)
      : backend_(&backend), stream_(stream), faults_(std::move(faults)), on_device_(stream.device()) {}
  cuda_execution_context(cuda_execution_context const&) = delete;
  cuda_execution_context& operator=(cuda_execution_context const&) = delete;

  [[nodiscard]] cuda_backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] cuda_stream stream() const noexcept { return stream_; }
  [[nodiscard]] cudaStream_t stream_handle() const noexcept { return stream_.handle(); }
  [[nodiscard]] std::size_t device() const noexcept { return stream_.device(); }
  [[nodiscard]] cublasHandle_t cublas() const { return backend_->cublas(stream_); }
  [[nodiscard]] cudnnHandle_t cudnn() const { return backend_->cudnn(stream_); }

  // Host work in stream order; with a fault record, its exception is recorded
  // there instead of failing the stream.
  template <class Work>
  void enqueue(Work&& work) {
    if (faults_)
      backend_->enqueue(stream_, hydra::detail::recording_faults(std::forward<Work>(work), faults_));
    else
      backend_->enqueue(stream_, std::forward<Work>(work));
  }

  // Elementwise work written once for both backends (the optimizers):
  // `work(policy)` issues Thrust algorithms with `policy`, here
  // thrust::cuda::par_nosync on this stream: asynchronous, no synchronisation
  // after it. That is device code, so the translation unit that instantiates
  // this must be compiled by nvcc.
  template <class Work>
  void run_thrust(Work&& work) {
#if defined(__CUDACC__)
    work(thrust::cuda::par_nosync.on(stream_handle()));
    HYDRA_CHECK(cudaGetLastError());
#else
    static_assert(compiled_by_nvcc<Work>, "cuda_execution_context::run_thrust launches device code (the "
                                          "optimizers' Thrust transforms): compile this translation unit with "
                                          "nvcc, as a .cu file");
#endif
  }

private:
  template <class>
  static constexpr bool compiled_by_nvcc = false;

  cuda_backend* backend_;
  cuda_stream stream_;
  std::shared_ptr<fault_record> faults_;
  detail::device_scope on_device_;
};

} // namespace hydra::cuda
