#include <doctest/doctest.h>

#include <cstdint>

#include "hydra/core/bytes.hpp"

using namespace hydra::literals;

TEST_CASE("byte literals are powers of 1024") {
  CHECK(1_KiB == 1024U);
  CHECK(3_MiB == 3U * 1024U * 1024U);
  CHECK(2_GiB == std::size_t{2} << 30U);
}

TEST_CASE("align_up rounds to the next multiple and saturates instead of wrapping") {
  CHECK(hydra::align_up(0, 256) == 0);
  CHECK(hydra::align_up(1, 256) == 256);
  CHECK(hydra::align_up(256, 256) == 256);
  CHECK(hydra::align_up(257, 256) == 512);
  CHECK(hydra::align_up(SIZE_MAX, 256) == (SIZE_MAX & ~std::size_t{255}));
  CHECK(hydra::align_down(511, 256) == 256);
}

TEST_CASE("format_bytes prints the exact count and a binary-unit gloss") {
  CHECK(hydra::format_bytes(1) == "1 byte");
  CHECK(hydra::format_bytes(255) == "255 bytes");
  CHECK(hydra::format_bytes(1_KiB) == "1024 bytes (1.00 KiB)");
  CHECK(hydra::format_bytes(1_MiB + 512_KiB) == "1572864 bytes (1.50 MiB)");
  CHECK(hydra::format_bytes(5_GiB) == "5368709120 bytes (5.00 GiB)");
}

TEST_CASE("parse_bytes reads a count with a decimal or binary unit, and nothing else") {
  CHECK(hydra::parse_bytes("4096") == 4096.0);
  CHECK(hydra::parse_bytes("16MiB") == 16.0 * 1024 * 1024);
  CHECK(hydra::parse_bytes("1.5 GiB") == 1.5 * 1024 * 1024 * 1024);
  CHECK(hydra::parse_bytes("80GB") == 80e9);
  CHECK(hydra::parse_bytes("2KB") == 2000.0);
  CHECK(hydra::parse_bytes("7B") == 7.0);
  CHECK(hydra::parse_bytes("1TiB") == 1099511627776.0);
  for (char const* bad : {"", "MiB", "lots", "-1MiB", "inf", "nan", "4 XB", "16mib", "1e400"}) {
    CAPTURE(bad);
    CHECK_FALSE(hydra::parse_bytes(bad).has_value());
  }
}
