// Where a layer's kernels run on the host backend: one device's compute stream.
// Layers enqueue closures; hydra has bound every pointer they capture, and keeps
// it valid until the stream has run them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include <thrust/execution_policy.h>

#include "hydra/backend/host/host_backend.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/fault_record.hpp"

namespace hydra {

class host_execution_context {
public:
  // With a fault record, an exception thrown by enqueued work is caught on the
  // stream and recorded there (the model is then stopped by its trainer) instead
  // of failing the stream for every model that shares it.
  host_execution_context(host_backend& backend, host_stream stream, std::shared_ptr<fault_record> faults = nullptr)
      : backend_(&backend), stream_(stream), faults_(std::move(faults)) {}

  // Under fault_injection, work with a fault record may throw instead of
  // running: the fault then stops only the model that enqueued it. The work
  // is kept until it would have run, as work that fails when it runs would
  // be: what it owns may be what earlier work on the stream uses (a guarded
  // layer's copies are freed by the last work that holds them).
  template <class Work>
  void enqueue(Work&& work) {
    if (faults_ && backend_->inject_fault(fault_site::host_work)) {
      backend_->enqueue(
          stream_, detail::recording_faults(
                       [name = "host work on device " + std::to_string(device()), unrun = std::forward<Work>(work)] {
                         throw error("fault injection: " + name + " threw instead of running");
                       },
                       faults_));
    } else if (faults_)
      backend_->enqueue(stream_, detail::recording_faults(std::forward<Work>(work), faults_));
    else
      backend_->enqueue(stream_, std::forward<Work>(work));
  }

  // Elementwise work written once for both backends (the optimizers):
  // `work(policy)` issues Thrust algorithms with `policy`. Here it runs in
  // stream order on the host with thrust::host; the CUDA context issues it on
  // its stream with thrust::cuda::par_nosync. `work` is copied: capture by value.
  template <class Work>
  void run_thrust(Work&& work) {
    enqueue([work = std::forward<Work>(work)] { work(thrust::host); });
  }

  [[nodiscard]] host_backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] host_stream stream() const noexcept { return stream_; }
  [[nodiscard]] std::size_t device() const noexcept { return stream_.device(); }

private:
  host_backend* backend_;
  host_stream stream_;
  std::shared_ptr<fault_record> faults_;
};

} // namespace hydra
