// How many CUDA devices this process can use: 0, never an exception, on a
// machine without a GPU or without a driver (where the runtime reports
// cudaErrorInsufficientDriver or cudaErrorNoDevice).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace hydra::cuda {

[[nodiscard]] inline std::size_t device_count() noexcept {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) {
    static_cast<void>(cudaGetLastError()); // not sticky: clear it for the next caller
    return 0;
  }
  return devices > 0 ? static_cast<std::size_t>(devices) : 0;
}

} // namespace hydra::cuda
