// Where a layer's kernels run on the CUDA backend: one device's compute
// stream, with cuBLAS and cuDNN handles bound to it. Layers issue library calls
// (or their own kernels) on stream_handle(); hydra has bound every pointer they
// use to memory on this device and keeps it valid until the stream has run.
// Host work (enqueue) may not call CUDA.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <utility>

#include "hydra/backend/cuda/cuda_backend.hpp"
#include "hydra/core/fault_record.hpp"

namespace hydra::cuda {

class cuda_execution_context {
public:
  cuda_execution_context(cuda_backend& backend, cuda_stream stream, std::shared_ptr<fault_record> faults = nullptr)
      : backend_(&backend), stream_(stream), faults_(std::move(faults)) {}

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

private:
  cuda_backend* backend_;
  cuda_stream stream_;
  std::shared_ptr<fault_record> faults_;
};

} // namespace hydra::cuda
