// Whether this process can use CUDA devices, and why not. Three answers, kept
// apart because they call for different reactions:
//  - present: devices to run on;
//  - absent: no device, or no driver at all (cudaDriverGetVersion reports 0) -
//    a machine without a GPU, where GPU tests are skipped;
//  - broken: a driver is installed but the runtime cannot use it (a driver
//    older than the runtime, a device busy in exclusive mode, a failed
//    initialisation) - a GPU machine with a problem, which must fail loudly
//    rather than look like a machine without a GPU.
// The runtime reports cudaErrorInsufficientDriver both without a driver and
// with one too old, so the driver version tells the two apart.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace hydra::cuda {

enum class device_presence : std::uint8_t { present, absent, broken };

// What cudaGetDeviceCount returned (status, count) and cudaDriverGetVersion
// reported (0: no driver installed), classified.
[[nodiscard]] constexpr device_presence classify_devices(cudaError_t status, int devices, int driver_version) noexcept {
  if (status == cudaSuccess) return devices > 0 ? device_presence::present : device_presence::absent;
  if (status == cudaErrorNoDevice) return device_presence::absent;
  if (status == cudaErrorInsufficientDriver && driver_version == 0) return device_presence::absent;
  return device_presence::broken;
}

// The runtime's answers and their classification.
struct device_report {
  device_presence presence = device_presence::absent;
  cudaError_t status = cudaSuccess; // of cudaGetDeviceCount
  int devices = 0;
  int driver_version = 0; // e.g. 13000 for CUDA 13.0; 0: no driver
  int runtime_version = 0;

  // One line for logs: "2 CUDA devices (driver 13.0, runtime 13.0)", "no CUDA
  // device (cudaErrorNoDevice, ...)", or "CUDA is broken here (...)".
  [[nodiscard]] std::string describe() const {
    auto const version = [](int v) {
      return v == 0 ? std::string("none") : std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
    };
    std::string const versions = "driver " + version(driver_version) + ", runtime " + version(runtime_version);
    switch (presence) {
    case device_presence::present:
      return std::to_string(devices) + " CUDA device" + (devices == 1 ? "" : "s") + " (" + versions + ")";
    case device_presence::absent:
      return std::string("no CUDA device (cudaGetDeviceCount: ") + cudaGetErrorName(status) + ", " +
             std::to_string(devices) + " devices; " + versions + ")";
    case device_presence::broken:
      break;
    }
    return std::string("CUDA is broken on this machine: cudaGetDeviceCount failed with ") + cudaGetErrorName(status) +
           " (" + cudaGetErrorString(status) + "; " + versions + ")";
  }
};

// Asks the runtime; clears the (non-sticky) error a failed query leaves behind.
[[nodiscard]] inline device_report query_devices() noexcept {
  device_report report;
  int devices = 0;
  report.status = cudaGetDeviceCount(&devices);
  if (report.status != cudaSuccess) static_cast<void>(cudaGetLastError());
  report.devices = report.status == cudaSuccess && devices > 0 ? devices : 0;
  if (cudaDriverGetVersion(&report.driver_version) != cudaSuccess) report.driver_version = 0;
  if (cudaRuntimeGetVersion(&report.runtime_version) != cudaSuccess) report.runtime_version = 0;
  static_cast<void>(cudaGetLastError());
  report.presence = classify_devices(report.status, report.devices, report.driver_version);
  return report;
}

// How many CUDA devices this process can use: 0, never an exception, on a
// machine without a GPU or driver, and also where CUDA is broken (callers
// that must tell those apart use query_devices()).
[[nodiscard]] inline std::size_t device_count() noexcept {
  device_report const report = query_devices();
  return report.presence == device_presence::present ? static_cast<std::size_t>(report.devices) : 0;
}

} // namespace hydra::cuda
