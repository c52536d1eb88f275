// What every GPU test and benchmark program does first: ask the CUDA runtime
// whether a device is there (hydra/backend/cuda/device.hpp), say what it
// found in one line, and decide:
//  - run: a device is present;
//  - skip (exit 77, ctest's SKIP_RETURN_CODE): no device and no driver, the
//    machine simply has no GPU; unless HYDRA_REQUIRE_GPU=1 (scripts/dev.sh sets
//    it where nvidia-smi lists a GPU), which makes that a failure;
//  - fail (exit 1): CUDA is broken (a driver older than the runtime, a device
//    that cannot be used): never a skip, which would look like success.
// Host code: g++ and nvcc both compile it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "hydra/backend/cuda/device.hpp"

namespace gpu_testing {

enum class gate { run, skip, fail };

inline constexpr int skip_exit_code = 77;

[[nodiscard]] constexpr gate decide(hydra::cuda::device_presence presence, bool gpu_required) noexcept {
  switch (presence) {
  case hydra::cuda::device_presence::present:
    return gate::run;
  case hydra::cuda::device_presence::absent:
    return gpu_required ? gate::fail : gate::skip;
  case hydra::cuda::device_presence::broken:
    break;
  }
  return gate::fail;
}

[[nodiscard]] inline bool gpu_required() {
  char const* value = std::getenv("HYDRA_REQUIRE_GPU");
  return value != nullptr && std::string(value) == "1";
}

// Prints what was found; returns nothing when the program should run, else
// the exit code it should end with.
[[nodiscard]] inline std::optional<int> pass_gate(char const* program) {
  hydra::cuda::device_report const found = hydra::cuda::query_devices();
  bool const required = gpu_required();
  switch (decide(found.presence, required)) {
  case gate::run:
    break;
  case gate::skip:
    std::printf("SKIPPED: %s: %s\n", program, found.describe().c_str());
    return skip_exit_code;
  case gate::fail:
    std::printf("FAILED: %s: %s%s\n", program, found.describe().c_str(),
                required && found.presence == hydra::cuda::device_presence::absent
                    ? " (HYDRA_REQUIRE_GPU=1: this machine should have one)"
                    : "");
    return 1;
  }
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, 0) == cudaSuccess) {
    std::printf("%s: %s; device 0: %s (sm_%d%d, %.1f GiB)\n", program, found.describe().c_str(), properties.name,
                properties.major, properties.minor,
                static_cast<double>(properties.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  }
  return std::nullopt;
}

} // namespace gpu_testing
