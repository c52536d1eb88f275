// Where a layer's kernels run on the host backend: one device's compute stream.
// Layers enqueue closures; hydra has bound every pointer they capture, and keeps
// it valid until the stream has run them.
#pragma once

#include <cstddef>
#include <utility>

#include <thrust/execution_policy.h>

#include "hydra/backend/host/host_backend.hpp"

namespace hydra {

class host_execution_context {
public:
  host_execution_context(host_backend& backend, host_stream stream) : backend_(&backend), stream_(stream) {}

  template <class Work>
  void enqueue(Work&& work) {
    backend_->enqueue(stream_, std::forward<Work>(work));
  }

  // The Thrust policy for elementwise work (the optimizers) run inside enqueued
  // work; the CUDA context answers thrust::cuda::par_nosync.on(stream).
  [[nodiscard]] static auto thrust_policy() { return thrust::host; }

  [[nodiscard]] host_backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] host_stream stream() const noexcept { return stream_; }
  [[nodiscard]] std::size_t device() const noexcept { return stream_.device(); }

private:
  host_backend* backend_;
  host_stream stream_;
};

} // namespace hydra
