// The first command of every GPU step (scripts/dev.sh gpu): says whether CUDA
// can be used here and on what, with the device gate's exit codes (0 present,
// 77 absent, 1 broken), so that a step skips only on a machine without a GPU.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdio>

#include "gpu/device_gate.hpp"

int main() {
  if (auto const exit_code = gpu_testing::pass_gate("gpu_probe")) return *exit_code;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) return 1;
  for (int d = 0; d < devices; ++d) {
    cudaDeviceProp properties{};
    std::size_t free = 0, total = 0;
    if (cudaGetDeviceProperties(&properties, d) != cudaSuccess || cudaSetDevice(d) != cudaSuccess ||
        cudaMemGetInfo(&free, &total) != cudaSuccess) {
      std::printf("FAILED: gpu_probe: device %d cannot be queried: %s\n", d, cudaGetErrorName(cudaGetLastError()));
      return 1;
    }
    std::printf("device %d: %s, sm_%d%d, %d SMs, %.1f GiB free of %.1f GiB after its context\n", d, properties.name,
                properties.major, properties.minor, properties.multiProcessorCount,
                static_cast<double>(free) / (1 << 30), static_cast<double>(total) / (1 << 30));
  }
  return 0;
}
