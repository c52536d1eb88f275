// The three streams every device runs, named once: compute runs a task's
// kernels, prefetch brings its state and inputs to the device, spill sends its
// outputs and updated state home. Backends may give them different priorities,
// and traces label their slices with them.
#pragma once

#include <cstdint>

namespace hydra {

enum class stream_role : std::uint8_t { compute, prefetch, spill, other };

[[nodiscard]] inline char const* to_string(stream_role role) noexcept {
  switch (role) {
  case stream_role::compute:
    return "compute";
  case stream_role::prefetch:
    return "prefetch";
  case stream_role::spill:
    return "spill";
  default:
    return "other";
  }
}

} // namespace hydra
