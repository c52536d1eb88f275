// One upfront reservation of raw memory: a pool's whole world. A backend hands it
// out (device memory of a virtual or real device, host DRAM, pinned DRAM) and the
// reservation gives it back on destruction. Move-only; never grows.
#pragma once

#include <cstddef>
#include <functional>
#include <utility>

namespace hydra {

class memory_reservation {
public:
  using release_function = std::function<void(void*, std::size_t)>;

  memory_reservation() = default;
  memory_reservation(void* data, std::size_t bytes, release_function release)
      : data_(data), bytes_(bytes), release_(std::move(release)) {}

  memory_reservation(memory_reservation&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)),
        release_(std::move(other.release_)) {}

  memory_reservation& operator=(memory_reservation&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
      release_ = std::move(other.release_);
    }
    return *this;
  }

  memory_reservation(memory_reservation const&) = delete;
  memory_reservation& operator=(memory_reservation const&) = delete;
  ~memory_reservation() { reset(); }

  [[nodiscard]] std::byte* data() const noexcept { return static_cast<std::byte*>(data_); }
  [[nodiscard]] std::size_t size() const noexcept { return bytes_; }

  void reset() noexcept {
    if (data_ != nullptr && release_) release_(data_, bytes_);
    data_ = nullptr;
    bytes_ = 0;
  }

private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  release_function release_;
};

} // namespace hydra
