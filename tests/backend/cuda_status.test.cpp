// HYDRA_CHECK on real CUDA runtime, cuBLAS and cuDNN status codes, the
// context-poisoning errors told apart, and whether CUDA is present, absent or
// broken. Compiled by g++ against the toolkit; runs with or without a GPU (a
// call that must fail either way provides the failing status).
#include <doctest/doctest.h>

#include <string>

#include "hydra/backend/cuda/device.hpp"
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

TEST_CASE("context-poisoning CUDA errors are told apart from errors that fail one call") {
  using hydra::cuda::poisons_context;
  for (cudaError_t const sticky : {cudaErrorIllegalAddress, cudaErrorLaunchFailure, cudaErrorAssert,
                                   cudaErrorIllegalInstruction, cudaErrorMisalignedAddress, cudaErrorHardwareStackError,
                                   cudaErrorInvalidPc, cudaErrorLaunchTimeout, cudaErrorECCUncorrectable}) {
    CAPTURE(cudaGetErrorName(sticky));
    CHECK(poisons_context(sticky));
  }
  for (cudaError_t const one_call : {cudaSuccess, cudaErrorNotReady, cudaErrorInvalidValue, cudaErrorMemoryAllocation,
                                     cudaErrorLaunchOutOfResources, cudaErrorInvalidConfiguration,
                                     cudaErrorInsufficientDriver, cudaErrorNoDevice, cudaErrorInvalidResourceHandle}) {
    CAPTURE(cudaGetErrorName(one_call));
    CHECK_FALSE(poisons_context(one_call));
  }
}

TEST_CASE("HYDRA_CHECK throws device_fault for a context-poisoning error and marks the context lost") {
  CHECK_FALSE(hydra::cuda::context_lost()); // nothing has reported a fault in this process yet
  try {
    HYDRA_CHECK(cudaErrorInvalidValue);
    FAIL("no exception");
  } catch (hydra::cuda::device_fault const&) {
    FAIL("an invalid argument was reported as a lost context");
  } catch (hydra::backend_error const& e) {
    CHECK(std::string(e.what()).find("cudaErrorInvalidValue") != std::string::npos);
  }
  CHECK_FALSE(hydra::cuda::context_lost());
  int const line = __LINE__ + 2;
  try {
    HYDRA_CHECK(cudaErrorIllegalAddress);
    FAIL("no exception");
  } catch (hydra::cuda::device_fault const& e) {
    std::string const text = e.what();
    CHECK(e.library() == "CUDA");
    CHECK(e.status_name() == "cudaErrorIllegalAddress");
    CHECK(text.find("the device's CUDA context is lost") != std::string::npos);
    CHECK(text.find("cuda_status.test.cpp:" + std::to_string(line)) != std::string::npos);
  }
  CHECK(hydra::cuda::context_lost());
}

TEST_CASE("no device and no driver is absent, while a driver the runtime cannot use is broken, never absent") {
  using hydra::cuda::classify_devices;
  using hydra::cuda::device_presence;
  CHECK(classify_devices(cudaSuccess, 1, 13000) == device_presence::present);
  CHECK(classify_devices(cudaSuccess, 8, 13000) == device_presence::present);
  CHECK(classify_devices(cudaSuccess, 0, 13000) == device_presence::absent);
  CHECK(classify_devices(cudaErrorNoDevice, 0, 13000) == device_presence::absent);
  // The runtime answers cudaErrorInsufficientDriver both without a driver
  // (version 0) and with one older than itself.
  CHECK(classify_devices(cudaErrorInsufficientDriver, 0, 0) == device_presence::absent);
  CHECK(classify_devices(cudaErrorInsufficientDriver, 0, 12020) == device_presence::broken);
  CHECK(classify_devices(cudaErrorSystemDriverMismatch, 0, 13000) == device_presence::broken);
  CHECK(classify_devices(cudaErrorDevicesUnavailable, 0, 13000) == device_presence::broken);
  CHECK(classify_devices(cudaErrorInitializationError, 0, 13000) == device_presence::broken);
  CHECK(classify_devices(cudaErrorUnknown, 0, 13000) == device_presence::broken);
}

TEST_CASE("the device report says what the runtime answered, and agrees with device_count()") {
  auto const report = hydra::cuda::query_devices();
  CHECK(report.runtime_version > 0);
  CHECK(hydra::cuda::device_count() ==
        (report.presence == hydra::cuda::device_presence::present ? static_cast<std::size_t>(report.devices) : 0));
  std::string const text = report.describe();
  MESSAGE(text);
  switch (report.presence) {
  case hydra::cuda::device_presence::present:
    CHECK(text.find(" CUDA device") != std::string::npos);
    break;
  case hydra::cuda::device_presence::absent:
    CHECK(text.rfind("no CUDA device (cudaGetDeviceCount: ", 0) == 0);
    break;
  case hydra::cuda::device_presence::broken:
    CHECK(text.rfind("CUDA is broken on this machine: cudaGetDeviceCount failed with cuda", 0) == 0);
    break;
  }
  hydra::cuda::device_report broken{hydra::cuda::device_presence::broken, cudaErrorInsufficientDriver, 0, 12020, 13000};
  CHECK(broken.describe() == "CUDA is broken on this machine: cudaGetDeviceCount failed with "
                             "cudaErrorInsufficientDriver (" +
                                 std::string(cudaGetErrorString(cudaErrorInsufficientDriver)) +
                                 "; driver 12.2, runtime 13.0)");
}
