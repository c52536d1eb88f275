// HYDRA_CHECK on real CUDA runtime, cuBLAS and cuDNN status codes. Compiled by
// g++ against the toolkit; runs with or without a GPU (a call that must fail
// either way provides the failing status).
#include <doctest/doctest.h>

#include <string>

#include "hydra/backend/cuda/status.hpp"

TEST_CASE("a failing CUDA runtime call throws backend_error with the error name, the call and the line") {
  int const line = __LINE__ + 2;
  try {
    HYDRA_CHECK(cudaSetDevice(100000)); // no machine has that many devices
    FAIL("cudaSetDevice(100000) did not fail");
  } catch (hydra::backend_error const& failure) {
    std::string const text = failure.what();
    CHECK(failure.library() == "CUDA");
    CHECK(failure.status_name().rfind("cudaError", 0) == 0);
    CHECK(text.find("cudaSetDevice(100000)") != std::string::npos);
    CHECK(text.find("cuda_status.test.cpp:" + std::to_string(line)) != std::string::npos);
  }
  // The error was cleared, so a later unrelated check does not see it again.
  // (Without a driver every call keeps failing with the initialisation error.)
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess) CHECK(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("cuBLAS and cuDNN statuses are named by their libraries") {
  CHECK_NOTHROW(HYDRA_CHECK(CUBLAS_STATUS_SUCCESS));
  CHECK_THROWS_WITH_AS(HYDRA_CHECK(CUBLAS_STATUS_INVALID_VALUE),
                       doctest::Contains("cuBLAS error CUBLAS_STATUS_INVALID_VALUE"), hydra::backend_error);
  CHECK_NOTHROW(HYDRA_CHECK(CUDNN_STATUS_SUCCESS));
  CHECK_THROWS_WITH_AS(HYDRA_CHECK(CUDNN_STATUS_BAD_PARAM), doctest::Contains("cuDNN error CUDNN_STATUS_BAD_PARAM"),
                       hydra::backend_error);
}
