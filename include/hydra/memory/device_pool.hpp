// The stream-ordered pool of one device: it reserves the device's whole budget
// at construction (backend.reserve_device_memory) and never asks for more, so the
// budget is a hard limit that no schedule can exceed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "hydra/backend/backend.hpp"
#include "hydra/memory/stream_ordered_pool.hpp"

namespace hydra {

template <backend Backend>
class device_pool : public stream_ordered_pool<Backend> {
public:
  // `budget` defaults to the device's whole budget (backend.device_budget).
  device_pool(Backend& backend, std::size_t device, std::optional<std::size_t> budget = std::nullopt)
      : stream_ordered_pool<Backend>(
            backend, backend.reserve_device_memory(device, budget.value_or(backend.device_budget(device))),
            "device " + std::to_string(device) + " pool"),
        device_(device) {}

  [[nodiscard]] std::size_t device() const noexcept { return device_; }

private:
  std::size_t device_;
};

} // namespace hydra
