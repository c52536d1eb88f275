// Under AddressSanitizer the host backend's pools tell ASan what is allocated:
// a block is addressable from the moment it is handed out, its alignment
// slack and the memory never handed out are not, and a freed block stops
// being addressable once its last use (the work enqueued before the free on
// the freeing stream) has run, unless the pool has handed it out again
// meanwhile. Other builds have nothing to check here.
#include <doctest/doctest.h>

#if defined(__SANITIZE_ADDRESS__)

#include <sanitizer/asan_interface.h>

#include <cstring>
#include <string>

#include "hydra/hydra.hpp"
#include "support/child_process.hpp"
#include "support/gate.hpp"
#include "support/scratch.hpp"

using namespace hydra::literals;

namespace {

bool addressable(void const* block, std::size_t bytes) {
  return __asan_region_is_poisoned(const_cast<void*>(block), bytes) == nullptr;
}

bool poisoned(void const* block, std::size_t bytes) {
  auto const* byte = static_cast<char const*>(block);
  for (std::size_t k = 0; k < bytes; ++k)
    if (__asan_address_is_poisoned(byte + k) == 0) return false;
  return true;
}

// A pool on one host device, and a stream, with a gate to hold the stream.
struct one_stream {
  hydra::host_backend backend{{.device_budgets = {1_MiB}}};
  hydra::device_pool<hydra::host_backend> pool{backend, 0};
  hydra::host_stream stream = backend.create_stream(0);
  hydra::testing::gate gate;
};

} // namespace

TEST_CASE("a block handed out is addressable, its slack and the memory never handed out are not") {
  one_stream f;
  auto& [backend, pool, stream, gate] = f;
  auto* block = static_cast<char*>(pool.allocate(stream, 100));
  CHECK(addressable(block, 100));
  CHECK(poisoned(block + 100, 156)); // the rest of its 256-byte block
  CHECK(poisoned(block + 256, 4096));
  pool.deallocate(stream, block);
  backend.synchronize(stream);
  CHECK(poisoned(block, 256));
}

TEST_CASE("a block's slack is poisoned in stream order, after the work that used the memory before") {
  one_stream f;
  auto& [backend, pool, stream, gate] = f;
  auto* block = static_cast<char*>(pool.allocate(stream, 1024));
  backend.enqueue(stream, gate.hold());
  backend.enqueue(stream, [block] { std::memset(block, 4, 1024); }); // its last use, all 1024 bytes
  pool.deallocate(stream, block);
  auto* again = static_cast<char*>(pool.allocate(stream, 100)); // the stream's own free, at once
  REQUIRE(again == block);
  CHECK(addressable(again, 100));
  CHECK(addressable(again + 100, 156)); // not yet: the write above has still to run
  gate.open();
  backend.synchronize(stream); // (poisoned at once, the write would have been reported)
  CHECK(poisoned(again + 100, 156));
  CHECK(addressable(again, 100));
  pool.deallocate(stream, again);
}

TEST_CASE("what is left of a freed block after part of it is handed out again is still poisoned") {
  one_stream f;
  auto& [backend, pool, stream, gate] = f;
  auto* block = static_cast<char*>(pool.allocate(stream, 4096));
  backend.enqueue(stream, gate.hold());
  pool.deallocate(stream, block);
  auto* front = static_cast<char*>(pool.allocate(stream, 256)); // the front of that free, at once
  REQUIRE(front == block);
  gate.open();
  backend.synchronize(stream);
  CHECK(addressable(front, 256));
  CHECK(poisoned(block + 256, 4096 - 256));
  pool.deallocate(stream, front);
}

TEST_CASE("a freed block stays addressable until the work enqueued before its free has run") {
  one_stream f;
  auto& [backend, pool, stream, gate] = f;
  auto* block = static_cast<char*>(pool.allocate(stream, 512));
  bool was_addressable = false;
  backend.enqueue(stream, gate.hold());
  backend.enqueue(stream, [&] {
    was_addressable = addressable(block, 512);
    std::memset(block, 1, 512); // the block's last use
  });
  pool.deallocate(stream, block);
  CHECK(addressable(block, 512)); // its last use has not run yet
  gate.open();
  backend.synchronize(stream);
  CHECK(was_addressable);
  CHECK(poisoned(block, 512));
}

TEST_CASE("a block handed out again before its earlier free's last use has run is not poisoned by that free") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  hydra::device_pool pool(backend, 0);
  auto a = backend.create_stream(0), b = backend.create_stream(0);

  SUBCASE("on the same stream, at once") {
    hydra::testing::gate gate;
    void* first = pool.allocate(a, 1000);
    backend.enqueue(a, gate.hold());
    pool.deallocate(a, first);
    void* again = pool.allocate(a, 1000);
    REQUIRE(again == first);     // the stream's own free, reused at once
    std::memset(again, 2, 1000); // host code may use it at once
    bool used = false;
    backend.enqueue(a, [&] { used = addressable(again, 1000); });
    gate.open();
    backend.synchronize(a);
    CHECK(used);
    CHECK(addressable(again, 1000));
    pool.deallocate(a, again);
    backend.synchronize(a);
    CHECK(poisoned(again, 1000));
  }

  SUBCASE("on another stream, behind the free's event") {
    hydra::testing::gate gate;
    void* first = pool.allocate(a, 300_KiB);
    void* filler = pool.allocate(a, 600_KiB); // leaves no other room for the next request
    backend.enqueue(a, gate.hold());
    pool.deallocate(a, first);
    void* taken = pool.allocate(b, 300_KiB);
    REQUIRE(taken == first);
    std::memset(taken, 3, 300_KiB);
    gate.open();
    backend.synchronize(a);
    backend.synchronize(b);
    CHECK(addressable(taken, 300_KiB));
    pool.deallocate(b, taken);
    pool.deallocate(a, filler);
    backend.synchronize(a);
    backend.synchronize(b);
    CHECK(poisoned(taken, 300_KiB));
  }
}

TEST_CASE("a write past a pool block is reported by AddressSanitizer where it happens") {
  auto const ended = hydra::testing::run_forked(
      [] { // ASan stops the process at the write
        one_stream f;
        auto* block = static_cast<char*>(f.pool.allocate(f.stream, 100));
        std::memset(block, 0, 104); // 4 bytes too many
      },
      hydra::testing::scratch_directory("pool_sanitizer") / "asan.txt");
  CHECK_FALSE(ended.exited_cleanly);
  CHECK(ended.error_output.find("use-after-poison") != std::string::npos);
  CHECK(ended.error_output.find("WRITE of size 104") != std::string::npos);
}

#endif
