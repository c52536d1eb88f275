// Handles to host-backend streams and events: small, trivially copyable values,
// like cudaStream_t and a recorded cudaEvent_t. The host_backend that made them
// owns what they point to and must outlive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/host/detail/stream_worker.hpp"

namespace hydra {

class host_backend;

class host_stream {
public:
  host_stream() = default;

  [[nodiscard]] std::uint64_t id() const noexcept { return worker_->id(); }
  [[nodiscard]] std::size_t device() const noexcept { return worker_->device(); }
  [[nodiscard]] std::string const& name() const noexcept { return worker_->name(); }
  [[nodiscard]] bool valid() const noexcept { return worker_ != nullptr; }

  friend bool operator==(host_stream, host_stream) = default;

private:
  friend class host_backend;
  explicit host_stream(detail::stream_worker* worker) : worker_(worker) {}
  detail::stream_worker* worker_ = nullptr;
};

// A point in one stream's sequence: it has fired once every item enqueued on that
// stream before the record has finished. A default-constructed event has fired.
class host_event {
public:
  host_event() = default;

  [[nodiscard]] bool has_fired() const noexcept { return worker_ == nullptr || worker_->reached(ticket_); }

  friend bool operator==(host_event, host_event) = default;

private:
  friend class host_backend;
  host_event(detail::stream_worker const* worker, std::uint64_t ticket) : worker_(worker), ticket_(ticket) {}
  detail::stream_worker const* worker_ = nullptr;
  std::uint64_t ticket_ = 0;
};

} // namespace hydra
