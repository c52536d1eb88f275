// Where each shard's state is, per device: its home in host memory (always
// valid once home_ready has fired) and, while it is resident, its device extent
// [parameters | optimizer state | gradients], with which parts are valid there.
// The events say when each copy completes; the spill engine keeps this table and
// is the only code that changes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hydra {

// A shard's home in host memory: parameters, then optimizer state. One per
// shard, shared by every device's table, so a shard updated on one device is
// fetched on another only after its write-back (`ready`).
template <class Event>
struct shard_home {
  std::byte* data = nullptr; // host pool block
  std::size_t bytes = 0;
  Event ready{}; // the last write into it
};

template <class Event>
struct shard_residency {
  std::size_t extent_bytes = 0;      // on the device
  std::size_t parameter_bytes = 0;   // the first part of extent and home
  shard_home<Event>* home = nullptr; // owned by the trainer
  std::byte* device = nullptr;       // device pool block, or nullptr when not resident
  bool parameters_on_device = false;
  bool state_on_device = false;    // optimizer state
  // The extent holds an update its home lacks (spill_engine::mark_dirty):
  // evicting it writes the home first.
  bool dirty = false;
  Event device_ready{};            // the last copy into the extent
  Event last_compute_use{};        // the last compute work that read or wrote the extent
  std::uint64_t fetched_bytes = 0; // host -> device, over the run
  std::uint64_t written_back_bytes = 0;

  [[nodiscard]] bool resident() const noexcept { return device != nullptr; }
};

template <class Event>
using residency_table = std::vector<shard_residency<Event>>;

} // namespace hydra
