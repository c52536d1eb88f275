// Byte sizes: literals (64_MiB), alignment arithmetic, and a human-readable
// formatter used by every error message so that numbers read the same everywhere.
// Exact byte counts are always printed; the binary-unit rendering is only a gloss.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace hydra {

inline namespace literals {
constexpr std::size_t operator""_KiB(unsigned long long n) {
  return static_cast<std::size_t>(n) << 10U;
}
constexpr std::size_t operator""_MiB(unsigned long long n) {
  return static_cast<std::size_t>(n) << 20U;
}
constexpr std::size_t operator""_GiB(unsigned long long n) {
  return static_cast<std::size_t>(n) << 30U;
}
} // namespace literals

// Every pool hands out blocks aligned to this (CUDA guarantees 256 for cudaMalloc,
// and the host backend matches it so that both backends carve identical layouts).
inline constexpr std::size_t allocation_alignment = 256;

[[nodiscard]] constexpr bool is_power_of_two(std::size_t value) noexcept {
  return std::has_single_bit(value);
}

// Rounds `bytes` up to a multiple of `alignment` (a power of two). Saturates
// instead of wrapping so that a huge request stays huge and fails as too large.
[[nodiscard]] constexpr std::size_t align_up(std::size_t bytes, std::size_t alignment) noexcept {
  std::size_t const mask = alignment - 1;
  if (bytes > SIZE_MAX - mask) return SIZE_MAX & ~mask;
  return (bytes + mask) & ~mask;
}

[[nodiscard]] constexpr std::size_t align_down(std::size_t bytes, std::size_t alignment) noexcept {
  return bytes & ~(alignment - 1);
}

[[nodiscard]] inline bool is_aligned(void const* pointer, std::size_t alignment) noexcept {
  return (reinterpret_cast<std::uintptr_t>(pointer) & (alignment - 1)) == 0;
}

// "1048576 bytes (1.00 MiB)"; small values stay plain: "255 bytes".
[[nodiscard]] inline std::string format_bytes(std::size_t bytes) {
  std::string text = std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  if (bytes < 1024) return text;
  static constexpr char const* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char gloss[32];
  std::snprintf(gloss, sizeof gloss, " (%.2f %s)", value, units[unit]);
  return text + gloss;
}

} // namespace hydra
