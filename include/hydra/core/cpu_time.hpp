// CPU time, as opposed to wall time: what a piece of host work costs whether or
// not its thread was descheduled meanwhile. Profiles of the host backend
// measure in CPU time, because there devices, copies and the runtime's own
// thread share the machine's cores, and the simulator shares them out again
// (sim::workload::host_cores).
#pragma once

#include <time.h> // clock_gettime (POSIX)

#include <chrono>

namespace hydra::detail {

[[nodiscard]] inline std::chrono::nanoseconds cpu_clock(clockid_t clock) noexcept {
  timespec now{};
  if (clock_gettime(clock, &now) != 0) return std::chrono::nanoseconds(0);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

// The calling thread's CPU time so far.
[[nodiscard]] inline std::chrono::nanoseconds thread_cpu_time() noexcept {
  return cpu_clock(CLOCK_THREAD_CPUTIME_ID);
}

// The whole process's CPU time so far (every thread).
[[nodiscard]] inline std::chrono::nanoseconds process_cpu_time() noexcept {
  return cpu_clock(CLOCK_PROCESS_CPUTIME_ID);
}

} // namespace hydra::detail
