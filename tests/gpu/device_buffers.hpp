// Support for the GPU tests: device copies of host vectors, random inputs and
// the relative-error measure their tolerances are stated in. Host code (g++ and
// nvcc both compile it).
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "hydra/backend/cuda/status.hpp"

namespace gpu_testing {

inline std::vector<float> random_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> v(n);
  for (float& x : v) x = normal(random);
  return v;
}

// Largest |got - want| / (1 + |want|) over the elements (inf on a size mismatch).
inline double max_relative_error(std::vector<float> const& got, std::vector<float> const& want) {
  if (got.size() != want.size()) return INFINITY;
  double worst = 0.0;
  for (std::size_t k = 0; k < got.size(); ++k)
    worst = std::max(worst, std::fabs(static_cast<double>(got[k]) - want[k]) / (1.0 + std::fabs(want[k])));
  return worst;
}

// Device memory for one test, copied from and to host vectors, freed at scope
// end. An upload has landed when it returns, for work on any stream.
struct device_buffers {
  std::vector<void*> pointers;
  device_buffers() = default;
  device_buffers(device_buffers const&) = delete;
  device_buffers& operator=(device_buffers const&) = delete;
  ~device_buffers() {
    for (void* p : pointers) static_cast<void>(cudaFree(p));
  }

  template <class T>
  T* upload(std::vector<T> const& host) {
    void* p = nullptr;
    HYDRA_CHECK(cudaMalloc(&p, std::max<std::size_t>(1, host.size() * sizeof(T))));
    pointers.push_back(p);
    HYDRA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    // From pageable memory cudaMemcpy may return before its DMA has landed,
    // and the backend's non-blocking streams do not wait for the legacy
    // stream it ran on: wait for that stream here (only for it, so that a
    // test holding a backend stream behind a gate cannot deadlock).
    HYDRA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
    return static_cast<T*>(p);
  }
  float* make(std::size_t n) { return upload(std::vector<float>(n, 0.0F)); }
  template <class T>
  static std::vector<T> download(T const* p, std::size_t n) {
    std::vector<T> host(n);
    HYDRA_CHECK(cudaMemcpy(host.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
};

} // namespace gpu_testing
