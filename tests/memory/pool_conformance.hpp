// The memory-resource conformance suite, written once against a resource's
// traits and instantiated for every pool on every backend:
// tests/memory/pool_conformance.test.cpp (host backend, plain and
// delay-injecting) and tests/gpu/pool_conformance_cuda.test.cpp (CUDA backend).
//
// A Resource provides: pool (the type under test), backend_type, stream_type,
// make_backend(), make(backend); and, because device memory may not be touched
// from the host, fill(backend, stream, block, bytes, value) and
// holds(backend, stream, block, bytes, value), which act at once (the suite
// calls them only where no enqueued work touches the block; they must not wait
// for the stream, which a gate may hold), and fill_on_stream(backend, stream,
// block, bytes, value), which enqueues the fill in stream order.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/memory/memory_resource.hpp"
#include "support/gate.hpp"

namespace pool_conformance {

using namespace hydra::literals;

inline constexpr std::size_t capacity = 4_MiB;

// The backend, a resource of the type under test and its streams, torn down in
// the right order (streams drain before the pool's memory goes).
template <class Resource>
struct fixture {
  std::unique_ptr<typename Resource::backend_type> owned_backend = Resource::make_backend();
  typename Resource::backend_type& backend = *owned_backend;
  std::unique_ptr<typename Resource::pool> pool = Resource::make(backend);
  typename Resource::stream_type stream = backend.create_stream(0, "a");
  typename Resource::stream_type other = backend.create_stream(0, "b");
};

// Opens a gate and drains the fixture's streams when a subcase is left, a
// failed REQUIRE included: a stream still held would hang the run, and would
// outlive the gate it waits on.
template <class Fixture>
struct gate_guard {
  hydra::testing::gate& gate;
  Fixture& fixture;
  ~gate_guard() {
    gate.open();
    fixture.backend.synchronize(fixture.stream);
    fixture.backend.synchronize(fixture.other);
  }
};

// Largest gap between live blocks: what the pool's largest free block must be
// once free neighbours have coalesced.
inline std::size_t largest_gap(std::map<std::size_t, std::size_t> const& live, std::size_t total) {
  std::size_t largest = 0, cursor = 0;
  for (auto const& [offset, size] : live) {
    largest = std::max(largest, offset - cursor);
    cursor = offset + size;
  }
  return std::max(largest, total - cursor);
}

} // namespace pool_conformance

TEST_CASE_TEMPLATE_DEFINE("memory resource conformance", Resource, conformance) {
  using namespace pool_conformance;
  fixture<Resource> f;
  auto& pool = *f.pool;
  static_assert(hydra::stream_ordered_resource<typename Resource::pool>);
  REQUIRE(pool.capacity() == capacity);

  SUBCASE("size 0 gives nullptr and freeing nullptr does nothing") {
    CHECK(pool.allocate(f.stream, 0) == nullptr);
    CHECK_NOTHROW(pool.deallocate(f.stream, nullptr));
    CHECK(pool.statistics().in_use == 0);
    CHECK(pool.statistics().live_allocations == 0);
  }

  SUBCASE("sizes 1, 4 KiB, 1 MiB and capacity - 1 succeed, aligned to at least 256 bytes") {
    for (std::size_t bytes : {std::size_t{1}, 4_KiB, 1_MiB, capacity - 1}) {
      CAPTURE(bytes);
      void* block = pool.allocate(f.stream, bytes);
      REQUIRE(block != nullptr);
      CHECK(hydra::is_aligned(block, 256));
      CHECK(pool.statistics().in_use == hydra::align_up(bytes, 256));
      Resource::fill(f.backend, f.stream, block, bytes, 0x5A);
      CHECK(Resource::holds(f.backend, f.stream, block, bytes, 0x5A));
      pool.deallocate(f.stream, block);
      CHECK(pool.statistics().in_use == 0);
    }
    CHECK(pool.statistics().peak_in_use == capacity);
  }

  SUBCASE("capacity + 1 throws out_of_memory naming the numbers and changes nothing") {
    void* held = pool.allocate(f.stream, 1_MiB);
    auto const before = pool.statistics();
    try {
      static_cast<void>(pool.allocate(f.stream, capacity + 1));
      FAIL("allocation past capacity did not throw");
    } catch (hydra::out_of_memory const& failure) {
      std::string const text = failure.what();
      CHECK(text.find("cannot allocate 4194305 bytes") != std::string::npos);
      CHECK(text.find("in use 1048576 bytes") != std::string::npos);
      CHECK(text.find("capacity 4194304 bytes") != std::string::npos);
      CHECK(text.find("largest free block 3145728 bytes") != std::string::npos);
      CHECK(failure.largest_free_block() == 3_MiB);
    }
    CHECK(pool.statistics() == before);
    pool.deallocate(f.stream, held);
  }

  SUBCASE("100 random sizes are aligned, disjoint and intact, and all come back") {
    std::mt19937_64 random(100);
    std::vector<std::pair<std::uint8_t*, std::size_t>> blocks;
    std::size_t expected_in_use = 0;
    for (int i = 0; i < 100; ++i) {
      std::size_t const bytes = 1 + random() % (capacity / 200);
      auto* block = static_cast<std::uint8_t*>(pool.allocate(f.stream, bytes));
      REQUIRE(block != nullptr);
      CHECK(hydra::is_aligned(block, 256));
      Resource::fill(f.backend, f.stream, block, bytes, static_cast<std::uint8_t>(i));
      blocks.emplace_back(block, bytes);
      expected_in_use += hydra::align_up(bytes, 256);
    }
    CHECK(pool.statistics().in_use == expected_in_use);
    CHECK(pool.statistics().live_allocations == 100);
    auto sorted = blocks;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i)
      CHECK(sorted[i - 1].first + sorted[i - 1].second <= sorted[i].first);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      CHECK(Resource::holds(f.backend, f.stream, blocks[i].first, blocks[i].second, static_cast<std::uint8_t>(i)));
      pool.deallocate(f.stream, blocks[i].first);
    }
    CHECK(pool.statistics().in_use == 0);
    CHECK(pool.statistics().live_allocations == 0);
  }

  SUBCASE("a random allocate/free walk keeps exact counters after every step and ends with nothing live") {
    // Hold the stream so that no free's event fires during the walk: then every
    // free byte is pending, which makes pending_free exactly checkable too.
    hydra::testing::gate gate;
    f.backend.enqueue(f.stream, gate.hold());
    gate_guard<fixture<Resource>> const opens{gate, f};
    pool.deallocate(f.stream, pool.allocate(f.stream, capacity)); // every byte now belongs to the stream
    struct live_block {
      void* pointer;
      std::size_t bytes;
      std::uint8_t mark;
    };
    std::map<std::size_t, live_block> live;     // by offset
    std::map<std::size_t, std::size_t> extents; // offset -> aligned size
    std::size_t peak = capacity;
    std::mt19937_64 random(2026);
    for (int step = 0; step < 3000; ++step) {
      CAPTURE(step);
      if (live.empty() || random() % 5 < 3) {
        std::size_t const bytes = 1 + random() % (capacity / 16);
        if (hydra::align_up(bytes, 256) > largest_gap(extents, capacity)) {
          CHECK_THROWS_AS(static_cast<void>(pool.allocate(f.stream, bytes)), hydra::out_of_memory);
        } else {
          void* block = pool.allocate(f.stream, bytes);
          std::size_t const offset = pool.offset_of(block);
          REQUIRE_FALSE(extents.contains(offset));
          auto const mark = static_cast<std::uint8_t>(step);
          Resource::fill(f.backend, f.stream, block, bytes, mark);
          live[offset] = live_block{block, bytes, mark};
          extents[offset] = hydra::align_up(bytes, 256);
        }
      } else {
        auto victim = live.begin();
        std::advance(victim, static_cast<std::ptrdiff_t>(random() % live.size()));
        CHECK(Resource::holds(f.backend, f.stream, victim->second.pointer, victim->second.bytes,
                              victim->second.mark)); // no overlap clobbered it
        pool.deallocate(f.stream, victim->second.pointer);
        extents.erase(victim->first);
        live.erase(victim);
      }
      std::size_t in_use = 0;
      for (auto const& extent : extents) in_use += extent.second;
      peak = std::max(peak, in_use);
      auto const counters = pool.statistics();
      CHECK(counters.in_use == in_use);
      CHECK(counters.free == capacity - in_use);
      CHECK(counters.live_allocations == live.size());
      CHECK(counters.peak_in_use == peak);
      CHECK(counters.pending_free == capacity - in_use);
      CHECK(counters.largest_free_block == largest_gap(extents, capacity));
      CHECK(counters.fragmentation() ==
            doctest::Approx(counters.free == 0 ? 0.0
                                               : 1.0 - double(counters.largest_free_block) / double(counters.free)));
    }
    for (auto const& [offset, block] : live) pool.deallocate(f.stream, block.pointer);
    gate.open();
    f.backend.synchronize(f.stream);
    auto const counters = pool.statistics();
    CHECK(counters.in_use == 0);
    CHECK(counters.live_allocations == 0);
    CHECK(counters.pending_free == 0);
    CHECK(counters.largest_free_block == capacity);
    CHECK(counters.fragmentation() == 0.0);
  }

  SUBCASE("4 threads allocate and free at once, each on its own stream") {
    constexpr int threads = 4;
    std::vector<typename Resource::stream_type> streams;
    for (int t = 0; t < threads; ++t) streams.push_back(f.backend.create_stream(0));
    std::vector<std::thread> workers;
    std::atomic<int> corrupted{0};
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        std::mt19937_64 random(static_cast<std::uint64_t>(t));
        std::vector<std::pair<void*, std::size_t>> held;
        auto const mark = static_cast<std::uint8_t>(t + 1);
        for (int i = 0; i < 2000; ++i) {
          if (held.size() < 4 && random() % 2 == 0) {
            std::size_t const bytes = 1 + random() % (capacity / 32);
            void* block = pool.allocate(streams[static_cast<std::size_t>(t)], bytes);
            Resource::fill(f.backend, streams[static_cast<std::size_t>(t)], block, bytes, mark);
            held.emplace_back(block, bytes);
          } else if (!held.empty()) {
            if (!Resource::holds(f.backend, streams[static_cast<std::size_t>(t)], held.back().first, held.back().second,
                                 mark))
              ++corrupted;
            pool.deallocate(streams[static_cast<std::size_t>(t)], held.back().first);
            held.pop_back();
          }
        }
        for (auto const& [block, bytes] : held) pool.deallocate(streams[static_cast<std::size_t>(t)], block);
      });
    }
    for (auto& worker : workers) worker.join();
    CHECK(corrupted == 0);
    auto const counters = pool.statistics();
    CHECK(counters.in_use == 0);
    CHECK(counters.live_allocations == 0);
    CHECK(counters.peak_in_use <= capacity);
    for (auto stream : streams) f.backend.synchronize(stream);
    CHECK(pool.statistics().largest_free_block == capacity);
  }

  SUBCASE("a block freed on stream A and reused on stream B orders B's work after A's") {
    hydra::testing::gate gate;
    std::vector<char> order;
    std::mutex order_mutex;
    auto note = [&](char who) {
      std::lock_guard lock(order_mutex);
      order.push_back(who);
    };
    // The block is the whole pool, so B can only get it back from A.
    auto* block = static_cast<std::uint8_t*>(pool.allocate(f.stream, capacity));
    f.backend.enqueue(f.stream, gate.hold());
    gate_guard<fixture<Resource>> const opens{gate, f};
    Resource::fill_on_stream(f.backend, f.stream, block, capacity, 0xAA);
    f.backend.enqueue(f.stream, [&] { note('A'); });
    pool.deallocate(f.stream, block);
    auto* reused = static_cast<std::uint8_t*>(pool.allocate(f.other, capacity));
    REQUIRE(reused == block);
    Resource::fill_on_stream(f.backend, f.other, reused, capacity, 0xBB);
    f.backend.enqueue(f.other, [&] { note('B'); });
    auto const b_done = f.backend.record_event(f.other);
    CHECK_FALSE(f.backend.query(b_done)); // B is held behind A's gate
    gate.open();
    f.backend.synchronize(b_done);
    CHECK(order == std::vector<char>{'A', 'B'});
    CHECK(Resource::holds(f.backend, f.other, reused, capacity, 0xBB));
    pool.deallocate(f.other, reused);
  }
}
