#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <unordered_map>

#include "hydra/memory/detail/address_map.hpp"

TEST_CASE("address_map agrees with std::unordered_map over a random insert/erase walk") {
  hydra::detail::address_map map;
  std::unordered_map<std::uint64_t, std::uint32_t> reference;
  std::mt19937_64 random(7);
  for (std::uint32_t step = 0; step < 20000; ++step) {
    std::uint64_t const key = (random() % 4096) * 256; // offsets collide in the low bits, as real ones do
    if (random() % 3 != 0 && !reference.contains(key)) {
      map.insert(key, step);
      reference[key] = step;
    } else {
      CHECK(map.erase(key) == (reference.erase(key) == 1));
    }
    std::uint64_t const probe = (random() % 4096) * 256;
    auto const found = map.find(probe);
    auto const expected = reference.find(probe);
    REQUIRE(found.has_value() == (expected != reference.end()));
    if (found) CHECK(*found == expected->second);
  }
  CHECK(map.size() == reference.size());
  for (auto const& [key, value] : reference) CHECK(map.find(key) == value);
}
