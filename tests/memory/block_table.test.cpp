// The pool's bookkeeping on fake addresses: no memory and no streams involved.
#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "hydra/memory/detail/block_table.hpp"

using hydra::detail::block_table;
using namespace hydra::literals;

namespace {
std::size_t take(block_table& table, std::uint32_t owner, std::size_t size) {
  auto const fit = table.find_fit(owner, size);
  REQUIRE(fit.has_value());
  return table.allocate_from(fit->block, size);
}
} // namespace

TEST_CASE("blocks are carved in address order and coalesce back into one run") {
  block_table table(1_MiB);
  std::vector<std::size_t> offsets;
  for (int i = 0; i < 4; ++i) offsets.push_back(take(table, block_table::unowned, 256_KiB));
  CHECK(offsets == std::vector<std::size_t>{0, 256_KiB, 512_KiB, 768_KiB});
  CHECK(table.in_use() == 1_MiB);
  CHECK(table.largest_free_run() == 0);
  CHECK_FALSE(table.find_fit(block_table::unowned, 256).has_value());
  std::uint32_t const owner = table.add_owner();
  for (std::size_t offset : {256_KiB, 768_KiB, 0_KiB, 512_KiB}) CHECK(table.release(offset, owner));
  CHECK(table.in_use() == 0);
  CHECK(table.free_bytes_of(owner) == 1_MiB);
  CHECK(table.largest_free_run() == 1_MiB);
  CHECK_FALSE(table.release(0, owner)); // double free is refused
}

TEST_CASE("a block freed by one owner is found in that owner's bins only") {
  block_table table(1_MiB);
  std::uint32_t const first = table.add_owner();
  std::uint32_t const second = table.add_owner();
  std::size_t const a = take(table, block_table::unowned, 512_KiB);
  std::size_t const b = take(table, block_table::unowned, 512_KiB);
  table.release(a, first);
  CHECK(table.find_fit(first, 512_KiB).has_value());
  CHECK_FALSE(table.find_fit(second, 512_KiB).has_value());
  CHECK_FALSE(table.find_fit(block_table::unowned, 1).has_value());
  // Neighbours of different owners do not coalesce; a run still spans both.
  table.release(b, second);
  CHECK(table.free_bytes_of(first) == 512_KiB);
  CHECK(table.free_bytes_of(second) == 512_KiB);
  CHECK_FALSE(table.find_fit(first, 1_MiB).has_value());
  auto const run = table.find_run(1_MiB);
  REQUIRE(run.has_value());
  CHECK(run->bytes == 1_MiB);
  std::vector<std::uint32_t> visited;
  auto const merged = table.merge_run(*run, first, [&](std::uint32_t owner) { visited.push_back(owner); });
  CHECK(visited == std::vector<std::uint32_t>{first, second});
  CHECK(table.free_bytes_of(first) == 1_MiB);
  CHECK(table.free_bytes_of(second) == 0);
  CHECK(table.allocate_from(merged, 1_MiB) == 0);
}

TEST_CASE("a fit takes a block of the request's size class before a larger one") {
  block_table table(4_MiB);
  std::uint32_t const owner = table.add_owner();
  std::size_t const big = take(table, block_table::unowned, 2_MiB);
  take(table, block_table::unowned, 256_KiB); // keeps the two apart
  std::size_t const small = take(table, block_table::unowned, 256_KiB);
  take(table, block_table::unowned, 256_KiB); // keeps small from the unowned rest
  table.release(big, owner);
  table.release(small, owner);
  CHECK(take(table, owner, 200_KiB) == small);
  CHECK(take(table, owner, 300_KiB) == big);
}

TEST_CASE("the same call sequence gives the same offsets") {
  auto run = [] {
    block_table table(8_MiB);
    std::uint32_t const owner = table.add_owner();
    std::vector<std::size_t> live, trace;
    std::size_t state = 12345;
    for (int step = 0; step < 2000; ++step) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      std::size_t const size = hydra::align_up((state >> 33) % 256_KiB + 1, 256);
      if (live.empty() || (state >> 20) % 3 != 0) {
        if (auto const fit = table.find_fit(owner, size) ? table.find_fit(owner, size)
                                                         : table.find_fit(block_table::unowned, size)) {
          live.push_back(table.allocate_from(fit->block, size));
          trace.push_back(live.back());
        }
      } else {
        std::size_t const victim = (state >> 40) % live.size();
        table.release(live[victim], owner);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
      }
    }
    return trace;
  };
  CHECK(run() == run());
}
