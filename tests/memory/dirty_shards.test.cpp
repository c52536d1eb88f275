// The spill engine's updates left on the device (mark_dirty): the home keeps
// the old state until the shard is evicted or flushed, which write the new
// state home first; a discarded shard writes nothing; and only one copy home
// is made however many updates came before it.
#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"

using namespace hydra::literals;

namespace {

constexpr std::size_t floats = 16_KiB / sizeof(float);

// One device of 48 KiB with its pools and spill engine, and two shards of
// 16 KiB (8 KiB of parameters, 8 KiB of optimizer state), each home filled with 1.
struct one_device {
  hydra::host_backend backend{hydra::host_backend_options{.device_budgets = {48_KiB}}};
  hydra::device_pool<hydra::host_backend> device{backend, 0};
  hydra::host_pool<hydra::host_backend> host{backend, 1_MiB};
  hydra::spill_engine<hydra::host_backend> engine{backend, device, host, 0};
  std::vector<hydra::shard_home<hydra::host_event>> homes;
  std::vector<std::string> failures; // what on_write_back_failure heard

  one_device() {
    homes.reserve(2); // the engine keeps pointers to them
    for (int s = 0; s < 2; ++s) {
      homes.push_back(
          decltype(engine)::make_home(backend, host, engine.spill_stream(), std::vector<float>(floats, 1.0F)));
      engine.add_shard(16_KiB, 8_KiB, &homes.back());
    }
  }
  ~one_device() {
    for (std::size_t id = 0; id < homes.size(); ++id)
      if (engine.table()[id].resident()) engine.discard(id);
    for (auto& home : homes) host.deallocate(engine.spill_stream(), home.data);
    engine.synchronize();
  }

  // A backward's update of shard `id`: its extent filled with `value` on the
  // compute stream, left there (mark_dirty).
  void update(std::size_t id, float value) {
    std::vector<float> const values(floats, value);
    backend.wait_event(engine.compute_stream(), backend.record_event(engine.prefetch_stream())); // the fetch
    backend.copy_async(engine.compute_stream(), engine.extent(id), values.data(), 16_KiB);
    engine.mark_dirty(id, backend.record_event(engine.compute_stream()));
    engine.synchronize(); // `values` is read by the copy
  }
  // Every value in shard `id`'s home, once the streams have drained.
  std::vector<float> home(std::size_t id) {
    engine.synchronize();
    auto const* data = reinterpret_cast<float const*>(homes[id].data);
    return {data, data + floats};
  }
};

auto const next_use = [](std::size_t id) { return id; }; // shard 1 is needed after shard 0

} // namespace

TEST_CASE_FIXTURE(one_device, "a dirty shard goes home once, when it is evicted, with its last update") {
  CHECK_THROWS_WITH_AS(engine.mark_dirty(0, {}), doctest::Contains("needs on_write_back_failure"),
                       hydra::invalid_argument);
  engine.on_write_back_failure([this](std::size_t, std::string const& what) { failures.push_back(what); });
  CHECK_THROWS_WITH_AS(engine.mark_dirty(0, {}), doctest::Contains("without its state on the device"),
                       hydra::invalid_argument);
  engine.acquire(0, /*with_state=*/true, next_use);
  update(0, 2.0F);
  update(0, 3.0F);
  CHECK(engine.statistics().updates_left_dirty == 2);
  CHECK(engine.statistics().write_backs == 0);
  CHECK(engine.statistics().bytes_to_host == 0);
  CHECK(home(0) == std::vector<float>(floats, 1.0F)); // nothing went home yet

  engine.evict(0);
  CHECK(home(0) == std::vector<float>(floats, 3.0F));
  CHECK(engine.statistics().write_backs == 1);
  CHECK(engine.statistics().bytes_to_host == 16_KiB);
  // Fetched again, it is the last update; evicted clean, nothing goes home.
  engine.acquire(0, true, next_use);
  engine.evict(0);
  CHECK(engine.statistics().write_backs == 1);
  CHECK(failures.empty());
}

TEST_CASE_FIXTURE(one_device, "a flush writes a dirty shard home and keeps it, and a discard writes nothing") {
  engine.on_write_back_failure([this](std::size_t, std::string const& what) { failures.push_back(what); });
  engine.acquire(0, true, next_use);
  update(0, 4.0F);
  engine.flush(0);
  CHECK(engine.table()[0].resident());
  CHECK(home(0) == std::vector<float>(floats, 4.0F));
  engine.flush(0); // clean now: nothing more
  CHECK(engine.statistics().write_backs == 1);

  update(0, 5.0F);
  engine.discard(0);
  CHECK_FALSE(engine.table()[0].resident());
  CHECK(home(0) == std::vector<float>(floats, 4.0F));
  CHECK(engine.statistics().write_backs == 1);
  CHECK(failures.empty());
}

TEST_CASE_FIXTURE(one_device,
                  "memory pressure evicts a dirty shard through its write-back, before its room is reused") {
  engine.on_write_back_failure([this](std::size_t, std::string const& what) { failures.push_back(what); });
  engine.acquire(0, true, next_use);
  engine.acquire(1, true, next_use);
  update(1, 6.0F);
  engine.pin({0});
  // 32 KiB of the 48 are taken: a 32 KiB scratch needs shard 1's room.
  std::byte* scratch = engine.allocate_scratch(32_KiB, next_use);
  CHECK_FALSE(engine.table()[1].resident());
  CHECK(engine.statistics().write_backs == 1);
  // The scratch overwrites the freed extent only behind the write-back: the
  // home holds the update, not what the scratch's writer put there.
  std::vector<float> const zeros(32_KiB / sizeof(float), 0.0F);
  backend.wait_event(engine.compute_stream(), backend.record_event(engine.prefetch_stream()));
  backend.copy_async(engine.compute_stream(), scratch, zeros.data(), 32_KiB);
  engine.release_scratch(scratch, backend.record_event(engine.compute_stream()));
  CHECK(home(1) == std::vector<float>(floats, 6.0F));
  engine.pin({});
  CHECK(failures.empty());
}
