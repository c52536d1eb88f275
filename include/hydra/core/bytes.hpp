// Byte sizes: literals (64_MiB), alignment arithmetic, a human-readable
// formatter used by every error message so that numbers read the same
// everywhere, and a parser for sizes given on command lines.
// Exact byte counts are always printed; the binary-unit rendering is only a gloss.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

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

// "16MiB", "1.5 GiB", "80GB", "4096": a byte count with an optional unit (B;
// KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024), or
// nullopt for anything else, a negative or non-finite value included. The
// caller checks the range it needs.
[[nodiscard]] inline std::optional<double> parse_bytes(std::string_view text) {
  std::string const whole(text);
  char const* begin = whole.c_str();
  char* end = nullptr;
  double const value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value) || value < 0) return std::nullopt;
  std::string_view unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  struct scale {
    std::string_view name;
    double factor;
  };
  static constexpr scale scales[] = {
      {"", 1},      {"B", 1},        {"KB", 1e3},        {"MB", 1e6},           {"GB", 1e9},
      {"TB", 1e12}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  for (auto const& s : scales)
    if (unit == s.name) return value * s.factor;
  return std::nullopt;
}

} // namespace hydra
