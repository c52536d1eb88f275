// Main of the GPU tests: without a usable CUDA device it exits 77, which ctest
// (SKIP_RETURN_CODE 77) reports as skipped, never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cstdio>

int main(int argc, char** argv) {
  int devices = 0;
  cudaError_t const status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s, %d devices)\n", cudaGetErrorName(status), devices);
    return 77;
  }
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, 0) == cudaSuccess)
    std::printf("GPU tests on %s (sm_%d%d), %d device(s)\n", properties.name, properties.major, properties.minor,
                devices);
  doctest::Context context(argc, argv);
  return context.run();
}
