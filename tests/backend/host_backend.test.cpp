#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hydra/backend/host/host_backend.hpp"
#include "hydra/core/cpu_time.hpp"
#include "hydra/core/stream_role.hpp"
#include "support/backends.hpp"
#include "support/gate.hpp"

using namespace hydra::literals;
using hydra::testing::backend_modes;
using hydra::testing::options_for;

TEST_CASE("a host backend needs at least one device, and each a usable budget") {
  CHECK_THROWS_WITH_AS(hydra::host_backend({.device_budgets = {}}), doctest::Contains("device count is 0"),
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::host_backend({.device_budgets = {1_MiB, 100}}),
                       doctest::Contains("device 1 budget is 100 bytes"), hydra::invalid_argument);
  hydra::host_backend backend({.device_budgets = {1_MiB, 2_MiB}});
  CHECK(backend.device_count() == 2);
  CHECK(backend.device_budget(1) == 2_MiB);
  CHECK_THROWS_WITH_AS(backend.create_stream(2), doctest::Contains("device index 2 is out of range; it has 2"),
                       hydra::invalid_argument);
}

TEST_CASE("a slower virtual device's compute stream takes 1 / speed as long in CPU time, and bad speeds are refused") {
  CHECK_THROWS_WITH_AS(hydra::host_backend({.device_budgets = {1_MiB, 1_MiB}, .device_speeds = {1.0}}),
                       doctest::Contains("1 device speeds for 2 devices"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::host_backend({.device_budgets = {1_MiB}, .device_speeds = {0.0}}),
                       doctest::Contains("device 0 has a speed of 0"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::host_backend({.device_budgets = {1_MiB}, .device_speeds = {2.0}}),
                       doctest::Contains("a virtual device's speed is in [0.001, 1]"), hydra::invalid_argument);
  hydra::host_backend backend({.device_budgets = {1_MiB, 1_MiB}, .device_speeds = {1.0, 0.25}});
  // The same CPU-bound work on each device's compute stream and on a stream of
  // no role on the slow device: only the slow compute stream takes longer. Each
  // figure is the stream's CPU time over the work's own, so the ratio does not
  // depend on how fast the work itself ran this time (a shared CI core can make
  // one run of it 1.6x another); the median of five runs damps what is left.
  auto stretch_of = [&](hydra::host_stream stream) {
    std::vector<double> stretches;
    for (int run = 0; run < 5; ++run) {
      auto started = std::make_shared<std::chrono::nanoseconds>(0);
      auto own = std::make_shared<std::chrono::nanoseconds>(0);
      auto whole = std::make_shared<std::chrono::nanoseconds>(0);
      backend.enqueue(stream, [started, own] {
        *started = hydra::detail::thread_cpu_time();
        volatile double sink = 0;
        for (int i = 0; i < 2'000'000; ++i) sink = sink + 1e-9 * i;
        *own = hydra::detail::thread_cpu_time() - *started;
      });
      backend.enqueue(stream, [started, whole] { *whole = hydra::detail::thread_cpu_time() - *started; });
      backend.synchronize(stream);
      stretches.push_back(static_cast<double>(whole->count()) / static_cast<double>(own->count()));
    }
    std::sort(stretches.begin(), stretches.end());
    return stretches[2];
  };
  double const fast = stretch_of(backend.create_stream(0, "fast compute", hydra::stream_role::compute));
  double const slow = stretch_of(backend.create_stream(1, "slow compute", hydra::stream_role::compute));
  double const other = stretch_of(backend.create_stream(1, "slow prefetch", hydra::stream_role::prefetch));
  CHECK(fast < 1.5);
  CHECK(slow > 3.5); // 4x: the work, then three times its CPU time burnt
  CHECK(slow < 5.0);
  CHECK(other < 1.5);
}

TEST_CASE("work on one stream runs in the order it was enqueued") {
  for (auto const& mode : backend_modes()) {
    CAPTURE(mode.name);
    hydra::host_backend backend(options_for(mode, {1_MiB}));
    auto stream = backend.create_stream(0);
    std::vector<int> seen;
    int const count = mode.delays.enabled ? 200 : 2000;
    for (int i = 0; i < count; ++i) backend.enqueue(stream, [&seen, i] { seen.push_back(i); });
    backend.synchronize(stream);
    std::vector<int> expected(static_cast<std::size_t>(count));
    std::iota(expected.begin(), expected.end(), 0);
    CHECK(seen == expected);
  }
}

TEST_CASE("each stream runs its work on its own thread") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  auto first = backend.create_stream(0);
  auto second = backend.create_stream(0);
  std::thread::id first_thread, second_thread;
  backend.enqueue(first, [&] { first_thread = std::this_thread::get_id(); });
  backend.enqueue(second, [&] { second_thread = std::this_thread::get_id(); });
  backend.synchronize(first);
  backend.synchronize(second);
  CHECK(first_thread != second_thread);
  CHECK(first_thread != std::this_thread::get_id());
  CHECK(first != second);
  CHECK(first.id() != second.id());
}

TEST_CASE("an event fires only once the work enqueued before it has run, host waits see its effects") {
  for (auto const& mode : backend_modes()) {
    CAPTURE(mode.name);
    hydra::host_backend backend(options_for(mode, {1_MiB}));
    auto stream = backend.create_stream(0);
    CHECK(backend.query(backend.record_event(stream))); // nothing enqueued yet
    hydra::testing::gate gate;
    int value = 0;
    backend.enqueue(stream, gate.hold());
    backend.enqueue(stream, [&] { value = 42; });
    auto const done = backend.record_event(stream);
    CHECK_FALSE(backend.query(done));
    gate.open();
    backend.synchronize(done);
    CHECK(backend.query(done));
    CHECK(value == 42);
    CHECK(backend.query(hydra::host_event{})); // the empty event has always fired
  }
}

TEST_CASE("a stream that waits on another stream's event runs its later work after that event") {
  for (auto const& mode : backend_modes()) {
    CAPTURE(mode.name);
    hydra::host_backend backend(options_for(mode, {1_MiB, 1_MiB}));
    auto producer = backend.create_stream(0);
    auto consumer = backend.create_stream(1);
    int const rounds = mode.delays.enabled ? 50 : 500;
    std::vector<int> produced(static_cast<std::size_t>(rounds), 0);
    std::vector<int> consumed(static_cast<std::size_t>(rounds), -1);
    for (int round = 0; round < rounds; ++round) {
      auto const at = static_cast<std::size_t>(round);
      backend.enqueue(producer, [&produced, at, round] { produced[at] = round + 1; });
      backend.wait_event(consumer, backend.record_event(producer));
      backend.enqueue(consumer, [&produced, &consumed, at] { consumed[at] = produced[at]; });
    }
    backend.synchronize(consumer);
    for (int round = 0; round < rounds; ++round) CHECK(consumed[static_cast<std::size_t>(round)] == round + 1);
  }
}

TEST_CASE("a cross-stream wait holds the waiting stream until the event fires") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  auto first = backend.create_stream(0);
  auto second = backend.create_stream(0);
  hydra::testing::gate gate;
  std::atomic<int> order{0};
  int first_finished = 0, second_ran = 0;
  backend.enqueue(first, gate.hold());
  backend.enqueue(first, [&] { first_finished = ++order; });
  backend.wait_event(second, backend.record_event(first));
  backend.enqueue(second, [&] { second_ran = ++order; });
  auto const second_done = backend.record_event(second);
  CHECK_FALSE(backend.query(second_done));
  gate.open();
  backend.synchronize(second_done);
  CHECK(first_finished == 1);
  CHECK(second_ran == 2);
}

TEST_CASE("copy_async copies on the stream, after earlier work and before later work") {
  for (auto const& mode : backend_modes()) {
    CAPTURE(mode.name);
    hydra::host_backend backend(options_for(mode, {1_MiB}));
    auto stream = backend.create_stream(0);
    std::vector<std::uint8_t> source(1_MiB, 0), destination(1_MiB, 0);
    bool matched = false;
    backend.enqueue(stream, [&] { std::memset(source.data(), 0xAB, source.size()); });
    backend.copy_async(stream, destination.data(), source.data(), source.size());
    backend.enqueue(stream, [&] { matched = destination == source; });
    backend.synchronize(stream);
    CHECK(matched);
    CHECK(destination.front() == 0xAB);
    CHECK(destination.back() == 0xAB);
  }
}

TEST_CASE("an exception thrown by enqueued work is reported at the next synchronisation, and later work still runs") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  auto stream = backend.create_stream(0, "compute");
  bool later_ran = false;
  backend.enqueue(stream, [] { throw std::runtime_error("layer 3 exploded"); });
  backend.enqueue(stream, [&] { later_ran = true; });
  CHECK_THROWS_WITH_AS(backend.synchronize(stream),
                       doctest::Contains("host stream 'compute' on device 0: enqueued work threw: layer 3 exploded"),
                       hydra::stream_error);
  CHECK(later_ran);
  CHECK_NOTHROW(backend.synchronize(stream)); // reported once
  try {
    backend.enqueue(stream, [] { throw std::logic_error("cause"); });
    backend.synchronize(stream);
  } catch (hydra::stream_error const& failure) {
    CHECK_THROWS_WITH_AS(std::rethrow_if_nested(failure), "cause", std::logic_error);
  }
}

TEST_CASE("a destroyed stream refuses new work, and its events still fire") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  auto stream = backend.create_stream(0, "spill");
  int ran = 0;
  backend.enqueue(stream, [&] { ++ran; });
  auto const event = backend.record_event(stream);
  backend.destroy_stream(stream);
  CHECK(ran == 1); // destroy drains first
  CHECK(backend.query(event));
  CHECK_THROWS_WITH_AS(backend.enqueue(stream, [] {}), doctest::Contains("'spill' was destroyed"),
                       hydra::invalid_argument);
}

TEST_CASE("device memory reservations are held to each device's budget") {
  hydra::host_backend backend({.device_budgets = {1_MiB, 4_MiB}});
  auto whole = backend.reserve_device_memory(0, 1_MiB);
  CHECK(hydra::is_aligned(whole.data(), hydra::allocation_alignment));
  CHECK(backend.reserved_device_bytes(0) == 1_MiB);
  CHECK_THROWS_WITH_AS(static_cast<void>(backend.reserve_device_memory(0, 1)),
                       doctest::Contains("host virtual device 0 reservation: cannot allocate 1 byte; in use "
                                         "1048576 bytes (1.00 MiB) of capacity 1048576 bytes (1.00 MiB)"),
                       hydra::out_of_memory);
  auto part = backend.reserve_device_memory(1, 3_MiB);
  CHECK_THROWS_AS(static_cast<void>(backend.reserve_device_memory(1, 2_MiB)), hydra::out_of_memory);
  whole.reset();
  CHECK(backend.reserved_device_bytes(0) == 0);
  auto again = backend.reserve_device_memory(0, 1_MiB);
  CHECK(again.size() == 1_MiB);
  auto host = backend.reserve_host_memory(8_MiB);
  CHECK(host.size() == 8_MiB);
  CHECK(hydra::is_aligned(host.data(), hydra::allocation_alignment));
}

TEST_CASE("many threads can enqueue onto one stream at once, per-thread order is kept") {
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  auto stream = backend.create_stream(0);
  constexpr int threads = 4, per_thread = 500;
  std::vector<std::vector<int>> seen(threads);
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i)
        backend.enqueue(stream, [&seen, t, i] { seen[static_cast<std::size_t>(t)].push_back(i); });
    });
  }
  for (auto& producer : producers) producer.join();
  backend.synchronize(stream);
  for (auto const& one : seen) {
    REQUIRE(one.size() == per_thread);
    CHECK(std::is_sorted(one.begin(), one.end()));
  }
}

TEST_CASE("a lost device's streams stop running their work, their waits still return, and check() names them") {
  hydra::host_backend backend(
      {.device_budgets = {1_MiB, 1_MiB}, .stall = {.enabled = true, .stream = 1, .after_items = 3}});
  auto other_device = backend.create_stream(1, "other device");
  auto stalling = backend.create_stream(0, "stalling");
  auto same_device = backend.create_stream(0, "same device");
  std::atomic<int> ran{0};
  for (int k = 0; k < 6; ++k) backend.enqueue(stalling, [&ran] { ++ran; });
  backend.synchronize(backend.record_event(stalling)); // returns: the dropped items count as completed
  CHECK(ran == 3);
  CHECK_NOTHROW(backend.check(other_device));
  CHECK_THROWS_WITH_AS(backend.check(stalling),
                       doctest::Contains("host stream 'stalling' on device 0: the device was lost after stream 1 "
                                         "ran 3 items"),
                       hydra::stream_error);
  CHECK_THROWS_AS(backend.check(same_device), hydra::stream_error);
  std::atomic<bool> after_wait{false}, on_lost_device{false};
  backend.enqueue(same_device, [&on_lost_device] { on_lost_device = true; });
  backend.wait_event(other_device, backend.record_event(stalling));
  backend.enqueue(other_device, [&after_wait] { after_wait = true; });
  backend.synchronize(other_device);
  backend.synchronize(same_device);
  CHECK(after_wait); // a stream waiting on a lost one goes on
  CHECK_FALSE(on_lost_device);
}
