// Makes one CUDA device the calling thread's current device for a scope; the
// previous one comes back at its end. Every CUDA call that creates something
// on a device (streams, events, handles, allocations) or launches work there
// runs inside one, so that hydra never depends on which device the caller left
// current.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <new>

#include "hydra/backend/cuda/status.hpp"

namespace hydra::cuda::detail {

class device_scope {
public:
  explicit device_scope(std::size_t device) {
    HYDRA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != static_cast<int>(device)) {
      HYDRA_CHECK(cudaSetDevice(static_cast<int>(device)));
      switched_ = true;
    }
  }
  // For teardown: switches if it can, never throws (the context may be lost).
  device_scope(std::size_t device, std::nothrow_t) noexcept {
    switched_ = cudaGetDevice(&previous_) == cudaSuccess && previous_ != static_cast<int>(device) &&
                cudaSetDevice(static_cast<int>(device)) == cudaSuccess;
  }
  device_scope(device_scope const&) = delete;
  device_scope& operator=(device_scope const&) = delete;
  ~device_scope() {
    if (switched_) static_cast<void>(cudaSetDevice(previous_));
  }

private:
  int previous_ = 0;
  bool switched_ = false;
};

} // namespace hydra::cuda::detail
