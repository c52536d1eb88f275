// status_traits for the CUDA runtime, cuBLAS and cuDNN, so that HYDRA_CHECK(call)
// turns their return codes into hydra::backend_error with file and line.
// CUDA-only: includes the toolkit's headers (which g++ compiles without nvcc).
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "hydra/core/status_check.hpp"

namespace hydra {

template <>
struct status_traits<cudaError_t> {
  static constexpr char const* library = "CUDA";
  static bool succeeded(cudaError_t status) noexcept { return status == cudaSuccess; }
  static char const* name(cudaError_t status) noexcept { return cudaGetErrorName(status); }
  static char const* description(cudaError_t status) noexcept { return cudaGetErrorString(status); }
  // A non-sticky runtime error stays readable through cudaGetLastError(); clear
  // it so that the next unrelated check does not report it a second time.
  static void on_failure(cudaError_t) noexcept { static_cast<void>(cudaGetLastError()); }
};

template <>
struct status_traits<cublasStatus_t> {
  static constexpr char const* library = "cuBLAS";
  static bool succeeded(cublasStatus_t status) noexcept { return status == CUBLAS_STATUS_SUCCESS; }
  static char const* name(cublasStatus_t status) noexcept { return cublasGetStatusName(status); }
  static char const* description(cublasStatus_t status) noexcept { return cublasGetStatusString(status); }
};

template <>
struct status_traits<cudnnStatus_t> {
  static constexpr char const* library = "cuDNN";
  static bool succeeded(cudnnStatus_t status) noexcept { return status == CUDNN_STATUS_SUCCESS; }
  // cuDNN has one call for both; its string is the enumerator's name.
  static char const* name(cudnnStatus_t status) noexcept { return cudnnGetErrorString(status); }
  static char const* description(cudnnStatus_t status) noexcept { return cudnnGetErrorString(status); }
};

} // namespace hydra
