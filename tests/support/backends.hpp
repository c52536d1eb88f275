// Backend set-ups shared by tests: every ordering test runs plain and with the
// delay-injecting mode, whose seeded random sleeps before each queued item turn a
// missing event edge into a visible wrong result.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "hydra/backend/host/host_backend.hpp"

namespace hydra::testing {

struct backend_mode {
  std::string name;
  delay_injection delays;
};

inline std::vector<backend_mode> backend_modes() {
  return {{"plain", {}},
          {"delay-injecting", {.enabled = true, .seed = 20261124, .max_delay = std::chrono::microseconds(300)}}};
}

inline host_backend_options options_for(backend_mode const& mode, std::vector<std::size_t> capacities) {
  return {.device_budgets = std::move(capacities), .delays = mode.delays};
}

} // namespace hydra::testing
