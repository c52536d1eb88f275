// status_traits for the CUDA runtime, cuBLAS and cuDNN, so that HYDRA_CHECK(call)
// turns their return codes into hydra::backend_error with file and line.
// CUDA-only: includes the toolkit's headers (which g++ compiles without nvcc).
//
// Two kinds of CUDA runtime error: most fail one call and leave the process
// able to go on (a bad argument, an allocation that does not fit); a few
// poison the device's context (an illegal address in a kernel, a trap, an
// uncorrectable ECC error): every later CUDA call of the process fails with
// the same error, and work queued before it never runs. HYDRA_CHECK throws the
// second kind as cuda::device_fault, so that a caller can stop one model on
// the first and must end the run on the second.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <atomic>
#include <source_location>
#include <string>
#include <utility>

#include "hydra/core/error.hpp"
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

namespace cuda {

// The runtime errors its documentation says leave "the process in an
// inconsistent state": any further CUDA work returns the same error, and the
// process must be restarted. Uncorrectable ECC and NVLink errors are listed
// too: the device lost data, so nothing it computes afterwards can be trusted.
[[nodiscard]] constexpr bool poisons_context(cudaError_t status) noexcept {
  switch (status) {
  case cudaErrorECCUncorrectable:
  case cudaErrorNvlinkUncorrectable:
  case cudaErrorContained:
  case cudaErrorIllegalAddress:
  case cudaErrorLaunchTimeout:
  case cudaErrorAssert:
  case cudaErrorHardwareStackError:
  case cudaErrorIllegalInstruction:
  case cudaErrorMisalignedAddress:
  case cudaErrorInvalidAddressSpace:
  case cudaErrorInvalidPc:
  case cudaErrorLaunchFailure:
  case cudaErrorTensorMemoryLeak:
  case cudaErrorMpsClientTerminated:
  case cudaErrorExternalDevice:
    return true;
  default:
    return false;
  }
}

// A CUDA error that poisoned the context (poisons_context): the run cannot go
// on in this process. Its last checkpoint is whatever was written before.
class device_fault : public backend_error {
public:
  device_fault(std::string status_name, std::string const& description, std::string const& expression,
               std::source_location where)
      : backend_error("CUDA", std::move(status_name),
                      description + "; the device's CUDA context is lost: every later CUDA call of this process "
                                    "fails, so the process must restart",
                      expression, where) {}
};

namespace detail {
inline std::atomic<bool>& context_lost_flag() noexcept {
  static std::atomic<bool> lost{false};
  return lost;
}
} // namespace detail

// Whether this process has already reported a device_fault. From then on the
// CUDA backend's calls that only order or wait on work (record an event, wait
// for one) do nothing: that work will never run, and the teardown that follows
// (pools and spill engines giving memory back in stream order) must not throw
// from destructors.
[[nodiscard]] inline bool context_lost() noexcept {
  return detail::context_lost_flag().load(std::memory_order_acquire);
}

// Throws device_fault for `status` (a context-poisoning error) and records
// that the context is lost.
[[noreturn]] inline void report_device_fault(cudaError_t status, std::string const& expression,
                                             std::source_location where) {
  detail::context_lost_flag().store(true, std::memory_order_release);
  throw device_fault(cudaGetErrorName(status), cudaGetErrorString(status), expression, where);
}

} // namespace cuda

// HYDRA_CHECK of a CUDA runtime call: this overload (preferred to the generic
// template of status_check.hpp, since it is not a template) throws device_fault
// for a context-poisoning error and backend_error for any other.
inline void check_status(cudaError_t status, char const* expression,
                         std::source_location where = std::source_location::current()) {
  using traits = status_traits<cudaError_t>;
  if (traits::succeeded(status)) [[likely]]
    return;
  traits::on_failure(status);
  if (cuda::poisons_context(status)) cuda::report_device_fault(status, expression, where);
  throw backend_error(traits::library, traits::name(status), traits::description(status), expression, where);
}

} // namespace hydra
