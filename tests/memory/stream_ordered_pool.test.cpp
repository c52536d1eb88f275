// Behaviour specific to the stream-ordered pools beyond the conformance suite:
// deterministic reuse, waits across owners, misuse errors.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/backends.hpp"
#include "support/gate.hpp"

using namespace hydra::literals;

namespace {

// A scripted sequence over three streams, with frees on one stream and reuse on
// another; returns the offset of every allocation.
std::vector<std::size_t> run_script(hydra::delay_injection delays) {
  hydra::host_backend backend({.device_budgets = {16_MiB}, .delays = delays});
  hydra::device_pool pool(backend, 0);
  std::vector<hydra::host_stream> streams{backend.create_stream(0), backend.create_stream(0), backend.create_stream(0)};
  std::mt19937_64 random(99);
  std::vector<std::pair<void*, std::size_t>> live; // block, stream that uses it
  std::vector<std::size_t> offsets;
  for (int step = 0; step < 1500; ++step) {
    std::size_t const stream = random() % streams.size();
    // Work on the stream so that events really are pending when frees happen.
    backend.enqueue(streams[stream], [] {});
    if (live.empty() || random() % 2 == 0) {
      try {
        void* block = pool.allocate(streams[stream], 1 + random() % 1_MiB);
        live.emplace_back(block, stream);
        offsets.push_back(pool.offset_of(block));
      } catch (hydra::out_of_memory const&) {
        offsets.push_back(SIZE_MAX);
      }
    } else {
      std::size_t const victim = random() % live.size();
      // Freed on a stream other than the one that allocated it half of the time.
      std::size_t const freeing = random() % 2 == 0 ? live[victim].second : (live[victim].second + 1) % streams.size();
      pool.deallocate(streams[freeing], live[victim].first);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
    }
  }
  for (auto const& [block, stream] : live) pool.deallocate(streams[stream], block);
  return offsets;
}

} // namespace

TEST_CASE("reuse is deterministic: the same calls give the same addresses whatever the streams' timing") {
  auto const plain = run_script({});
  auto const delayed = run_script({.enabled = true, .seed = 1, .max_delay = std::chrono::microseconds(50)});
  auto const delayed_other_seed = run_script({.enabled = true, .seed = 2, .max_delay = std::chrono::microseconds(50)});
  CHECK(plain.size() > 500);
  CHECK(plain == delayed);
  CHECK(plain == delayed_other_seed);
}

TEST_CASE("memory freed by two streams is merged for a third only behind waits on both") {
  hydra::host_backend backend({.device_budgets = {4_MiB}});
  hydra::device_pool pool(backend, 0);
  auto owner_a = backend.create_stream(0, "a");
  auto owner_b = backend.create_stream(0, "b");
  auto taker = backend.create_stream(0, "c");
  std::vector<void*> quarters;
  for (int i = 0; i < 4; ++i) quarters.push_back(pool.allocate(owner_a, 1_MiB));
  hydra::testing::gate gate_a, gate_b;
  backend.enqueue(owner_a, gate_a.hold());
  backend.enqueue(owner_b, gate_b.hold());
  pool.deallocate(owner_a, quarters[0]);
  pool.deallocate(owner_a, quarters[1]);
  pool.deallocate(owner_b, quarters[2]);
  pool.deallocate(owner_b, quarters[3]);
  CHECK(pool.statistics().pending_free == 4_MiB);
  CHECK(pool.statistics().largest_free_block == 4_MiB);

  // No single owner holds 3 MiB; the contiguous run of a's and b's blocks does.
  void* merged = pool.allocate(taker, 3_MiB);
  CHECK(pool.offset_of(merged) == 0);
  bool ran = false;
  backend.enqueue(taker, [&] { ran = true; });
  auto const taker_done = backend.record_event(taker);
  gate_a.open();
  backend.synchronize(owner_a);
  CHECK_FALSE(backend.query(taker_done)); // still behind b
  gate_b.open();
  backend.synchronize(taker_done);
  CHECK(ran);
  pool.deallocate(taker, merged);
}

TEST_CASE("deallocating what the pool does not hold is refused with a clear error") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  hydra::device_pool pool(backend, 0);
  auto stream = backend.create_stream(0);
  void* block = pool.allocate(stream, 4_KiB);
  int outside = 0;
  CHECK_THROWS_WITH_AS(pool.deallocate(stream, &outside), doctest::Contains("not a live allocation of this pool"),
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(pool.deallocate(stream, static_cast<std::byte*>(block) + 256),
                       doctest::Contains("device 0 pool: deallocate of"), hydra::invalid_argument);
  pool.deallocate(stream, block);
  CHECK_THROWS_AS(pool.deallocate(stream, block), hydra::invalid_argument); // double free
  CHECK(pool.statistics().in_use == 0);
}

TEST_CASE("a device pool is the device's one reservation: a second pool on the device finds no room") {
  hydra::host_backend backend({.device_budgets = {2_MiB, 2_MiB}});
  hydra::device_pool whole(backend, 0);
  CHECK(whole.capacity() == 2_MiB);
  CHECK(backend.reserved_device_bytes(0) == 2_MiB);
  CHECK_THROWS_WITH_AS(hydra::device_pool(backend, 0, 1_MiB),
                       doctest::Contains("host virtual device 0 reservation: cannot allocate 1048576 bytes"),
                       hydra::out_of_memory);
  hydra::device_pool half(backend, 1, 1_MiB);
  hydra::device_pool other_half(backend, 1, 1_MiB);
  CHECK(half.capacity() + other_half.capacity() == 2_MiB);
}

TEST_CASE("a pool's capacity is its reservation rounded down to the 256-byte alignment") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  hydra::host_pool pool(backend, 1000);
  CHECK(pool.capacity() == 768);
  auto stream = backend.create_stream(0);
  CHECK_THROWS_AS(static_cast<void>(pool.allocate(stream, 769)), hydra::out_of_memory);
  pool.deallocate(stream, pool.allocate(stream, 768));
}

TEST_CASE("blocks freed on a stream that is then destroyed stay usable by other streams") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  hydra::device_pool pool(backend, 0);
  auto doomed = backend.create_stream(0);
  auto survivor = backend.create_stream(0);
  void* block = pool.allocate(doomed, 1_MiB);
  backend.enqueue(doomed, [] {});
  pool.deallocate(doomed, block);
  backend.destroy_stream(doomed);
  CHECK(pool.statistics().pending_free == 0); // its last free has run
  void* again = pool.allocate(survivor, 1_MiB);
  CHECK(again == block);
  pool.deallocate(survivor, again);
}

TEST_CASE("reset_peak starts the peak again from what is in use now") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  hydra::device_pool pool(backend, 0);
  auto stream = backend.create_stream(0);
  void* big = pool.allocate(stream, 512_KiB);
  void* small = pool.allocate(stream, 1_KiB);
  pool.deallocate(stream, big);
  CHECK(pool.statistics().peak_in_use == 512_KiB + 1_KiB);
  pool.reset_peak();
  CHECK(pool.statistics().peak_in_use == 1_KiB);
  pool.deallocate(stream, small);
}

TEST_CASE("small blocks freed without coalescing are gathered when a large request needs them") {
  hydra::host_backend backend({.device_budgets = {64_KiB}});
  hydra::device_pool pool(backend, 0);
  auto stream = backend.create_stream(0);
  std::vector<void*> small;
  for (int i = 0; i < 256; ++i) small.push_back(pool.allocate(stream, 256));
  CHECK_THROWS_AS(static_cast<void>(pool.allocate(stream, 1)), hydra::out_of_memory);
  for (void* block : small) pool.deallocate(stream, block);
  CHECK(pool.statistics().largest_free_block == 64_KiB);
  CHECK(pool.statistics().fragmentation() == 0.0);
  void* whole = pool.allocate(stream, 64_KiB);
  CHECK(pool.offset_of(whole) == 0);
  pool.deallocate(stream, whole);
}
