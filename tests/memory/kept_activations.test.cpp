// The spill engine's kept activations: a boundary activation left in the device
// pool for the model's next task. It never displaces another kept one, it is
// dropped only once no unpinned shard is left to evict, and a dropped or
// foreign one is not found; what is kept is what its reader gets back.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "hydra/hydra.hpp"

using namespace hydra::literals;

namespace {

// One device of 64 KiB with its pools and spill engine; add_two_shards()
// registers two shards of 16 KiB, their homes in host memory.
struct one_device {
  hydra::host_backend backend{hydra::host_backend_options{.device_budgets = {64_KiB}}};
  hydra::device_pool<hydra::host_backend> device{backend, 0};
  hydra::host_pool<hydra::host_backend> host{backend, 1_MiB};
  hydra::spill_engine<hydra::host_backend> engine{backend, device, host, 0};
  std::vector<hydra::shard_home<hydra::host_event>> homes;

  void add_two_shards() {
    homes.reserve(2); // the engine keeps pointers to them
    for (int s = 0; s < 2; ++s) {
      homes.push_back(decltype(engine)::make_home(backend, host, engine.spill_stream(),
                                                  std::vector<float>(16_KiB / sizeof(float), 1.0F)));
      engine.add_shard(16_KiB, 16_KiB, &homes.back());
    }
  }
  // Once every shard was evicted: the homes go back to host memory.
  void release_homes() {
    for (auto& home : homes) host.deallocate(engine.spill_stream(), home.data);
    engine.synchronize();
  }
};

} // namespace

TEST_CASE_FIXTURE(
    one_device,
    "kept activations are dropped after every unpinned shard, never to keep another, and read back intact") {
  add_two_shards();
  std::size_t const floats = 16_KiB / sizeof(float);
  auto const next_use = [](std::size_t id) { return id; }; // shard 1 is needed after shard 0
  engine.acquire(0, false, next_use);
  engine.acquire(1, false, next_use);
  engine.pin({0});

  // Two fit in what is free; a third evicts the unpinned shard; a fourth
  // finds only the pinned shard and kept activations: none.
  auto const first = engine.keep_activation(16_KiB, 0, next_use);
  auto const second = engine.keep_activation(16_KiB, 0, next_use);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(engine.statistics().evictions == 0);
  auto const third = engine.keep_activation(16_KiB, 0, next_use);
  REQUIRE(third);
  CHECK(engine.statistics().evictions == 1);
  CHECK_FALSE(engine.table()[1].resident());
  CHECK_FALSE(engine.keep_activation(16_KiB, 0, next_use));
  CHECK(engine.kept_count() == 3);

  // What the second holds comes back to its reader.
  std::vector<float> written(floats);
  for (std::size_t i = 0; i < floats; ++i) written[i] = static_cast<float>(i) * 0.5F;
  backend.copy_async(engine.compute_stream(), engine.kept_data(*second), written.data(), 16_KiB);
  engine.kept_written(*second, backend.record_event(engine.compute_stream()));

  // A task's own memory drops the oldest kept activation (no shard can go).
  std::byte* scratch = engine.allocate_scratch(16_KiB, next_use);
  CHECK(engine.statistics().activations_dropped == 1);
  CHECK_FALSE(engine.take_activation(*first));
  auto taken = engine.take_activation(*second);
  REQUIRE(taken);
  CHECK(taken->bytes == 16_KiB);
  std::vector<float> read(floats, -1.0F);
  backend.wait_event(engine.prefetch_stream(), taken->written);
  backend.copy_async(engine.prefetch_stream(), read.data(), taken->data, 16_KiB);
  engine.release_taken(*taken, engine.prefetch_stream());
  backend.synchronize(engine.prefetch_stream());
  CHECK(std::memcmp(read.data(), written.data(), 16_KiB) == 0);
  CHECK_FALSE(engine.take_activation(*second)); // taken once
  CHECK(engine.statistics().activations_read_here == 1);
  CHECK(engine.statistics().activation_bytes_read_here == 16_KiB);

  engine.release_scratch(scratch, backend.record_event(engine.compute_stream()));
  engine.drop_kept(*third);
  engine.drop_kept(*third); // a no-op the second time
  CHECK(engine.kept_count() == 0);
  CHECK(engine.statistics().activations_kept == 3);
  CHECK(engine.statistics().activations_dropped == 2);
  engine.evict(0);
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
  release_homes();
}

TEST_CASE_FIXTURE(one_device,
                  "under pressure the lowest owner's kept activation goes first, the launching task's owner's last") {
  auto const next_use = [](std::size_t id) { return id; };
  auto const of_two = engine.keep_activation(16_KiB, 2, next_use);
  auto const of_zero = engine.keep_activation(16_KiB, 0, next_use);
  auto const of_one = engine.keep_activation(16_KiB, 1, next_use);
  REQUIRE((of_two && of_zero && of_one));
  engine.pin({}, 0); // model 0's task is being launched
  std::byte* first = engine.allocate_scratch(32_KiB, next_use);
  CHECK_FALSE(engine.take_activation(*of_one));        // the lowest other owner first
  auto const taken = engine.take_activation(*of_zero); // taken: no longer droppable
  REQUIRE(taken);
  std::byte* second = engine.allocate_scratch(16_KiB, next_use);
  CHECK_FALSE(engine.take_activation(*of_two));
  CHECK(engine.statistics().activations_dropped == 2);
  CHECK(engine.kept_count() == 0);
  // No shard to evict, nothing kept to drop (a keep would not drop it anyway): no room.
  CHECK_FALSE(engine.keep_activation(16_KiB, 1, next_use));
  auto const done = backend.record_event(engine.compute_stream());
  engine.release_scratch(first, done);
  engine.release_scratch(second, done);
  engine.release_taken(*taken, engine.prefetch_stream());
  // The launching owner's own goes last, but it does go.
  auto const own = engine.keep_activation(16_KiB, 2, next_use);
  REQUIRE(own);
  engine.pin({}, 2);
  std::byte* whole = engine.allocate_scratch(64_KiB, next_use);
  CHECK_FALSE(engine.take_activation(*own));
  CHECK(engine.statistics().activations_dropped == 3);
  engine.release_scratch(whole, backend.record_event(engine.compute_stream()));
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
}

TEST_CASE_FIXTURE(
    one_device,
    "kept checkpoints go before kept activations, the one read furthest ahead first, and a taken one is kept") {
  auto const next_use = [](std::size_t id) { return id; }; // a higher shard id is read later
  auto const near = engine.keep_activation(16_KiB, 1, next_use, /*checkpoint_of=*/3);
  auto const handoff = engine.keep_activation(16_KiB, 0, next_use);
  auto const far = engine.keep_activation(16_KiB, 2, next_use, /*checkpoint_of=*/7);
  REQUIRE((handoff && near && far));
  CHECK(engine.statistics().activations_kept == 1);
  CHECK(engine.statistics().checkpoints_kept == 2);

  // The handoff, taken, stays on as a checkpoint: same block, same bytes.
  std::vector<float> written(16_KiB / sizeof(float), 2.5F);
  backend.copy_async(engine.compute_stream(), engine.kept_data(*handoff), written.data(), 16_KiB);
  engine.kept_written(*handoff, backend.record_event(engine.compute_stream()));
  auto taken = engine.take_activation(*handoff);
  REQUIRE(taken);
  std::byte* const block = taken->data;
  auto const again = engine.keep_taken(*taken, 0, /*checkpoint_of=*/5, taken->written);
  CHECK(engine.kept_data(again) == block);
  CHECK(engine.statistics().checkpoints_kept == 3);
  CHECK(engine.kept_count() == 3);

  // A task's own 48 KiB: the two checkpoints read furthest ahead go (shard
  // 7's, then 5's); 3's stays, though its owner is not the launching one.
  engine.pin({}, 0);
  std::byte* scratch = engine.allocate_scratch(48_KiB, next_use);
  CHECK_FALSE(engine.take_activation(*far));
  CHECK_FALSE(engine.take_activation(again));
  auto const read = engine.take_activation(*near);
  REQUIRE(read);
  CHECK(engine.statistics().activations_dropped == 2);
  CHECK(engine.statistics().checkpoints_read_here == 1);
  CHECK(engine.statistics().checkpoint_bytes_read_here == 16_KiB);
  CHECK(engine.statistics().activations_read_here == 1); // the handoff, taken before it was kept again
  engine.release_taken(*read, engine.prefetch_stream());
  engine.release_scratch(scratch, backend.record_event(engine.compute_stream()));
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
}

TEST_CASE_FIXTURE(one_device, "kept checkpoints read equally far ahead go lowest owner first, then its first shard's") {
  auto const same_use = [](std::size_t) { return std::size_t{4}; };
  auto const of_two = engine.keep_activation(16_KiB, 2, same_use, /*checkpoint_of=*/1);
  auto const of_one_later = engine.keep_activation(16_KiB, 1, same_use, /*checkpoint_of=*/9);
  auto const of_one = engine.keep_activation(16_KiB, 1, same_use, /*checkpoint_of=*/8);
  auto const handoff = engine.keep_activation(16_KiB, 0, same_use);
  REQUIRE((of_two && of_one_later && of_one && handoff));
  std::byte* first = engine.allocate_scratch(16_KiB, same_use);
  CHECK_FALSE(engine.take_activation(*of_one)); // model 1's, its shard 8's before its shard 9's
  CHECK(engine.kept_count() == 3);
  std::byte* second = engine.allocate_scratch(16_KiB, same_use);
  CHECK_FALSE(engine.take_activation(*of_one_later));
  std::byte* third = engine.allocate_scratch(16_KiB, same_use);
  CHECK_FALSE(engine.take_activation(*of_two));
  CHECK(engine.kept_count() == 1); // the kept output, after every checkpoint
  auto const done = backend.record_event(engine.compute_stream());
  for (std::byte* scratch : {first, second, third}) engine.release_scratch(scratch, done);
  engine.drop_kept(*handoff);
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
}

TEST_CASE_FIXTURE(
    one_device, "kept forward activations go after the checkpoints and before the kept outputs, furthest read first") {
  auto const next_use = [](std::size_t id) { return id; }; // a higher shard id is read later
  // Two forwards' scratch, kept for their backwards (shards 2 and 6), beside
  // a checkpoint read sooner than both and a kept output.
  std::byte* near_scratch = engine.allocate_scratch(16_KiB, next_use);
  std::byte* far_scratch = engine.allocate_scratch(16_KiB, next_use);
  auto const written = backend.record_event(engine.compute_stream());
  auto const near = engine.keep_forward_activations(near_scratch, 16_KiB, 1, /*backward_of=*/2, written);
  auto const far = engine.keep_forward_activations(far_scratch, 16_KiB, 1, /*backward_of=*/6, written);
  auto const checkpoint = engine.keep_activation(16_KiB, 1, next_use, /*checkpoint_of=*/1);
  auto const output = engine.keep_activation(16_KiB, 0, next_use);
  REQUIRE((checkpoint && output));
  CHECK(engine.statistics().forward_activations_kept == 2);
  CHECK(engine.kept_count() == 4);

  // 32 KiB for a task: the checkpoint goes first, though read soonest of
  // all, then the forward activations read furthest ahead; the nearer ones
  // and the output stay.
  std::byte* scratch = engine.allocate_scratch(32_KiB, next_use);
  CHECK_FALSE(engine.take_activation(*checkpoint));
  CHECK_FALSE(engine.take_activation(far));
  CHECK(engine.statistics().forward_activations_dropped == 1);
  CHECK(engine.statistics().activations_dropped == 1); // the checkpoint
  // The backward takes its forward's scratch back: the same block, no copy.
  auto const taken = engine.take_activation(near);
  REQUIRE(taken);
  CHECK(taken->data == near_scratch);
  CHECK(taken->bytes == 16_KiB);
  CHECK(engine.statistics().recomputations_avoided == 1);
  CHECK(engine.statistics().activations_read_here == 0); // counted apart from the boundary activations
  auto const read = engine.take_activation(*output);
  REQUIRE(read);
  CHECK(engine.kept_count() == 0);
  auto const done = backend.record_event(engine.compute_stream());
  engine.release_scratch(taken->data, done);
  engine.release_scratch(scratch, done);
  engine.release_taken(*read, engine.prefetch_stream());
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
}

TEST_CASE_FIXTURE(one_device,
                  "kept forward activations and unpinned shards go furthest next use first, a shard on a tie") {
  add_two_shards();
  auto const next_use = [](std::size_t id) { return id; }; // shard 1 is needed after shard 0
  engine.acquire(0, false, next_use);
  engine.acquire(1, false, next_use);
  engine.pin({0});
  // The forwards of two shards (ids 5 and 1 here: read after shard 1 is
  // needed, and as soon) keep their scratch; the pool is full.
  std::byte* later_scratch = engine.allocate_scratch(16_KiB, next_use);
  std::byte* tied_scratch = engine.allocate_scratch(16_KiB, next_use);
  auto const written = backend.record_event(engine.compute_stream());
  auto const later = engine.keep_forward_activations(later_scratch, 16_KiB, 1, /*backward_of=*/5, written);
  auto const tied = engine.keep_forward_activations(tied_scratch, 16_KiB, 1, /*backward_of=*/1, written);

  // Read after shard 1 is needed: dropped, and shard 1 stays.
  std::byte* first = engine.allocate_scratch(16_KiB, next_use);
  CHECK(engine.statistics().forward_activations_dropped == 1);
  CHECK(engine.statistics().evictions == 0);
  CHECK(engine.table()[1].resident());
  CHECK_FALSE(engine.take_activation(later));
  // Read when shard 1 is needed: a tie, and shard 1 goes instead.
  std::byte* second = engine.allocate_scratch(16_KiB, next_use);
  CHECK(engine.statistics().evictions == 1);
  CHECK_FALSE(engine.table()[1].resident());
  auto const taken = engine.take_activation(tied);
  REQUIRE(taken);
  CHECK(taken->data == tied_scratch);

  auto const done = backend.record_event(engine.compute_stream());
  for (std::byte* scratch : {first, second, taken->data}) engine.release_scratch(scratch, done);
  engine.evict(0);
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
  release_homes();
}

TEST_CASE_FIXTURE(one_device, "kept forward activations marked before_shards go before any shard and any checkpoint, "
                              "but not for a prefetch or another kept block") {
  add_two_shards();
  auto const next_use = [](std::size_t id) { return id; }; // shard 1 is needed after shard 0
  engine.acquire(0, false, next_use);
  engine.pin({0});
  // The forward of shard 1's model kept before_shards and read as soon as
  // shard 1 is needed (competing by next use, the shard would go on the
  // tie), beside a checkpoint read later and a kept output; the pool is full.
  std::byte* cheap_scratch = engine.allocate_scratch(16_KiB, next_use);
  auto const written = backend.record_event(engine.compute_stream());
  auto const cheap = engine.keep_forward_activations(cheap_scratch, 16_KiB, 1, /*backward_of=*/1, written,
                                                     /*spill_home=*/false, /*before_shards=*/true);
  auto const checkpoint = engine.keep_activation(16_KiB, 1, next_use, /*checkpoint_of=*/4);
  auto const output = engine.keep_activation(16_KiB, 2, next_use);
  REQUIRE((checkpoint && output));
  CHECK(device.statistics().in_use == 64_KiB);

  // Neither a prefetch nor another kept block gives them up.
  CHECK_FALSE(engine.prefetch(1, false, next_use));
  CHECK_FALSE(engine.keep_activation(16_KiB, 3, next_use));
  CHECK(engine.kept_count() == 3);
  CHECK(engine.statistics().forward_activations_given_up_first == 0);
  // The output read, shard 1 fits where it was.
  auto const read_output = engine.take_activation(*output);
  REQUIRE(read_output);
  engine.release_taken(*read_output, engine.prefetch_stream());
  engine.acquire(1, false, next_use);

  // 16 KiB for a task: the cheap forward activations go, though read
  // sooner than the checkpoint and no later than shard 1; shard 1 stays.
  std::byte* scratch = engine.allocate_scratch(16_KiB, next_use);
  CHECK(engine.statistics().forward_activations_given_up_first == 1);
  CHECK(engine.statistics().forward_activations_dropped == 1);
  CHECK(engine.statistics().evictions == 0);
  CHECK(engine.table()[1].resident());
  CHECK_FALSE(engine.take_activation(cheap));
  auto const read = engine.take_activation(*checkpoint);
  REQUIRE(read);

  auto const done = backend.record_event(engine.compute_stream());
  engine.release_scratch(scratch, done);
  engine.release_taken(*read, engine.prefetch_stream());
  engine.evict(0);
  engine.evict(1);
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
  release_homes();
}

TEST_CASE_FIXTURE(one_device, "kept forward activations marked both to spill and before_shards are spilled, not "
                              "given up first") {
  add_two_shards();
  auto const next_use = [](std::size_t id) { return id; };
  engine.acquire(0, false, next_use);
  engine.acquire(1, false, next_use);
  engine.pin({0});
  std::byte* kept_scratch = engine.allocate_scratch(16_KiB, next_use);
  std::byte* other_scratch = engine.allocate_scratch(16_KiB, next_use);
  auto const written = backend.record_event(engine.compute_stream());
  auto const both = engine.keep_forward_activations(kept_scratch, 16_KiB, 1, /*backward_of=*/5, written,
                                                    /*spill_home=*/true, /*before_shards=*/true);
  auto const other = engine.keep_forward_activations(other_scratch, 16_KiB, 2, /*backward_of=*/6, written);
  // 16 KiB for a task: the furthest read go before shard 1, by next use
  // alone (the first-to-go step passes over the spilled kind).
  std::byte* scratch = engine.allocate_scratch(16_KiB, next_use);
  CHECK(engine.statistics().forward_activations_given_up_first == 0);
  CHECK(engine.statistics().forward_activations_dropped == 1); // `other`, read furthest ahead
  CHECK(engine.statistics().forward_activations_spilled == 0);
  CHECK(engine.table()[1].resident());
  CHECK_FALSE(engine.take_activation(other));
  auto const taken = engine.take_activation(both);
  REQUIRE(taken);

  auto const done = backend.record_event(engine.compute_stream());
  engine.release_scratch(scratch, done);
  engine.release_scratch(taken->data, done);
  engine.evict(0);
  engine.evict(1);
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
  release_homes();
}

TEST_CASE_FIXTURE(one_device, "a pinned shard's kept forward activations go last of all, and a prefetch drops none") {
  auto const next_use = [](std::size_t id) { return id; };
  add_two_shards();
  // The forwards of shards 0 (pinned: its backward is being launched) and 9
  // kept, beside two other models' kept outputs; the pool is full.
  std::byte* pinned_scratch = engine.allocate_scratch(16_KiB, next_use);
  std::byte* other_scratch = engine.allocate_scratch(16_KiB, next_use);
  auto const written = backend.record_event(engine.compute_stream());
  auto const pinned = engine.keep_forward_activations(pinned_scratch, 16_KiB, 1, /*backward_of=*/0, written);
  auto const other = engine.keep_forward_activations(other_scratch, 16_KiB, 1, /*backward_of=*/9, written);
  auto const output = engine.keep_activation(16_KiB, 2, next_use);
  auto const another = engine.keep_activation(16_KiB, 3, next_use);
  REQUIRE((output && another));
  engine.pin({0}, 1);

  // A prefetch of shard 1 would have to drop something kept: deferred.
  CHECK_FALSE(engine.prefetch(1, false, next_use));
  CHECK(engine.statistics().prefetches_deferred == 1);
  CHECK(engine.kept_count() == 4);
  // 48 KiB for the task: the unpinned forward activations, then the outputs;
  // the pinned shard's stay.
  std::byte* scratch = engine.allocate_scratch(48_KiB, next_use);
  CHECK_FALSE(engine.take_activation(other));
  CHECK_FALSE(engine.take_activation(*output));
  CHECK_FALSE(engine.take_activation(*another));
  auto const taken = engine.take_activation(pinned);
  REQUIRE(taken);

  auto const done = backend.record_event(engine.compute_stream());
  engine.release_scratch(scratch, done);
  engine.release_scratch(taken->data, done);
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
  release_homes();
}

TEST_CASE_FIXTURE(one_device,
                  "kept forward activations marked to spill are copied home under pressure, the others dropped") {
  auto const next_use = [](std::size_t id) { return id; };
  std::size_t const floats = 16_KiB / sizeof(float);
  auto fill = [&](std::byte* block, float value) {
    backend.enqueue(engine.compute_stream(),
                    [block, floats, value] { std::fill_n(reinterpret_cast<float*>(block), floats, value); });
  };
  // Three forwards keep their scratch: two to spill (read by the backwards of
  // shards 7 and 8), one to drop (shard 9, read furthest ahead of all).
  std::byte* spilled_scratch = engine.allocate_scratch(16_KiB, next_use);
  std::byte* sent_scratch = engine.allocate_scratch(16_KiB, next_use);
  std::byte* dropped_scratch = engine.allocate_scratch(16_KiB, next_use);
  fill(spilled_scratch, 7.0F);
  fill(sent_scratch, 8.0F);
  fill(dropped_scratch, 9.0F);
  auto const written = backend.record_event(engine.compute_stream());
  auto const spilled = engine.keep_forward_activations(spilled_scratch, 16_KiB, 1, 7, written, /*spill_home=*/true);
  auto const sent = engine.keep_forward_activations(sent_scratch, 16_KiB, 1, 8, written, /*spill_home=*/true);
  auto const dropped = engine.keep_forward_activations(dropped_scratch, 16_KiB, 1, 9, written);

  // 48 KiB for a task: shard 9's are dropped, then shard 8's spilled; 7's stay.
  std::byte* scratch = engine.allocate_scratch(48_KiB, next_use);
  CHECK(engine.statistics().forward_activations_dropped == 1);
  CHECK(engine.statistics().forward_activations_spilled == 1);
  CHECK(engine.statistics().forward_activation_bytes_spilled == 16_KiB);
  CHECK(engine.kept_count() == 1);
  CHECK(engine.spilled_count() == 1);
  CHECK_FALSE(engine.take_activation(dropped));
  CHECK_FALSE(engine.take_spilled(dropped));
  CHECK_FALSE(engine.take_activation(sent)); // not on the device: at home
  // The backward of shard 7 runs on another device: send_home spills them.
  engine.send_home(spilled);
  CHECK(engine.statistics().forward_activations_spilled == 2);
  CHECK(engine.kept_count() == 0);

  // Each spilled block holds what the forward wrote; its reader frees it.
  for (auto const& [id, value] : {std::pair{spilled, 7.0F}, std::pair{sent, 8.0F}}) {
    auto const home = engine.take_spilled(id);
    REQUIRE(home);
    CHECK(home->bytes == 16_KiB);
    backend.wait_event(engine.prefetch_stream(), home->written);
    std::vector<float> read(floats);
    backend.enqueue(engine.prefetch_stream(), [&read, data = home->data] { std::memcpy(read.data(), data, 16_KiB); });
    host.deallocate(engine.prefetch_stream(), home->data);
    engine.synchronize();
    CHECK(std::count(read.begin(), read.end(), value) == static_cast<std::ptrdiff_t>(floats));
  }
  CHECK(engine.statistics().recomputations_avoided == 2);
  CHECK_FALSE(engine.take_spilled(sent)); // taken once
  engine.release_scratch(scratch, backend.record_event(engine.compute_stream()));
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
  CHECK(host.statistics().in_use == 0);
}

TEST_CASE_FIXTURE(one_device, "a spilled block its backward never takes is freed by drop_kept, or with the engine") {
  auto const next_use = [](std::size_t id) { return id; };
  auto keep_and_spill = [&](std::size_t backward_of) {
    std::byte* scratch = engine.allocate_scratch(16_KiB, next_use);
    auto const id = engine.keep_forward_activations(scratch, 16_KiB, 1, backward_of,
                                                    backend.record_event(engine.compute_stream()), true);
    engine.send_home(id);
    return id;
  };
  auto const abandoned = keep_and_spill(3);
  keep_and_spill(4);
  CHECK(engine.spilled_count() == 2);
  CHECK(host.statistics().in_use == 32_KiB);
  engine.drop_kept(abandoned); // its model failed: freed on the spill stream
  engine.synchronize();
  CHECK(engine.spilled_count() == 1);
  CHECK(host.statistics().in_use == 16_KiB);
  CHECK_FALSE(engine.take_spilled(abandoned));
}

TEST_CASE("kept forward activations that find no host room are dropped instead of spilled") {
  hydra::host_backend backend{hydra::host_backend_options{.device_budgets = {64_KiB}}};
  hydra::device_pool<hydra::host_backend> device{backend, 0};
  hydra::host_pool<hydra::host_backend> host{backend, 8_KiB}; // less than one block
  hydra::spill_engine<hydra::host_backend> engine{backend, device, host, 0};
  auto const next_use = [](std::size_t id) { return id; };
  std::byte* scratch = engine.allocate_scratch(16_KiB, next_use);
  auto const id =
      engine.keep_forward_activations(scratch, 16_KiB, 1, 2, backend.record_event(engine.compute_stream()), true);
  engine.send_home(id);
  CHECK(engine.statistics().forward_activations_spilled == 0);
  CHECK(engine.statistics().forward_activations_dropped == 1);
  CHECK_FALSE(engine.take_spilled(id));
  engine.synchronize();
  CHECK(device.statistics().in_use == 0);
}

TEST_CASE("spilling beats recomputing when the copies out and back take less time") {
  // 1 MB out at 1 GB/s and back at 2 GB/s: 1.5 ms.
  CHECK(hydra::spill_beats_recompute(1'000'000, 2e-3, 1e9, 2e9));
  CHECK_FALSE(hydra::spill_beats_recompute(1'000'000, 1e-3, 1e9, 2e9));
  CHECK_FALSE(hydra::spill_beats_recompute(1024, 2.0, 1024, 1024)); // a tie recomputes
  // An unknown figure recomputes.
  CHECK_FALSE(hydra::spill_beats_recompute(1'000'000, 2e-3, 0, 2e9));
  CHECK_FALSE(hydra::spill_beats_recompute(1'000'000, 2e-3, 1e9, std::numeric_limits<double>::quiet_NaN()));
  CHECK_FALSE(hydra::spill_beats_recompute(1'000'000, 0, 1e9, 2e9));
}

TEST_CASE("recomputing beats fetching the bytes again when it takes less time than their copy in") {
  // 1 MB in at 1 GB/s: 1 ms.
  CHECK(hydra::recompute_beats_refetch(1'000'000, 0.5e-3, 1e9));
  CHECK_FALSE(hydra::recompute_beats_refetch(1'000'000, 2e-3, 1e9));
  CHECK_FALSE(hydra::recompute_beats_refetch(1024, 1.0, 1024)); // a tie keeps them competing
  // An unknown figure says no.
  CHECK_FALSE(hydra::recompute_beats_refetch(1'000'000, 0.5e-3, 0));
  CHECK_FALSE(hydra::recompute_beats_refetch(1'000'000, 0.5e-3, std::numeric_limits<double>::quiet_NaN()));
  CHECK_FALSE(hydra::recompute_beats_refetch(1'000'000, 0, 1e9));
}

TEST_CASE("a kept activation taken by another device is copied there and freed on the device that kept it") {
  hydra::host_backend backend{
      hydra::host_backend_options{.device_budgets = {64_KiB, 64_KiB},
                                  .delays = {.enabled = true, .seed = 3, .max_delay = std::chrono::microseconds(200)}}};
  hydra::device_pool<hydra::host_backend> pool_a{backend, 0}, pool_b{backend, 1};
  pool_a.poison_freed_blocks(std::uint8_t{0xFF});
  hydra::host_pool<hydra::host_backend> host{backend, 1_MiB};
  hydra::spill_engine<hydra::host_backend> a{backend, pool_a, host, 0}, b{backend, pool_b, host, 1};
  auto const next_use = [](std::size_t id) { return id; };
  std::size_t const floats = 16_KiB / sizeof(float);

  auto const kept = a.keep_activation(16_KiB, 0, next_use);
  REQUIRE(kept);
  std::vector<float> written(floats);
  for (std::size_t i = 0; i < floats; ++i) written[i] = static_cast<float>(i) + 0.25F;
  backend.copy_async(a.compute_stream(), a.kept_data(*kept), written.data(), 16_KiB);
  a.kept_written(*kept, backend.record_event(a.compute_stream()));

  // Device b's task takes it: a's pool holds it until b's copy has read it.
  auto taken = a.take_activation(*kept, /*by_another_device=*/true);
  REQUIRE(taken);
  CHECK(taken->holder == &a);
  std::byte* scratch = b.allocate_scratch(16_KiB, next_use);
  backend.wait_event(b.prefetch_stream(), taken->written);
  backend.copy_async(b.prefetch_stream(), scratch, taken->data, 16_KiB);
  b.release_taken(*taken, b.prefetch_stream()); // back to a's pool, in b's stream order
  std::vector<float> read(floats, -1.0F);
  backend.copy_async(b.prefetch_stream(), read.data(), scratch, 16_KiB);
  backend.synchronize(b.prefetch_stream());
  a.synchronize();
  CHECK(std::memcmp(read.data(), written.data(), 16_KiB) == 0);
  CHECK(pool_a.statistics().in_use == 0);
  CHECK(a.statistics().activations_read_by_other_devices == 1);
  CHECK(a.statistics().activation_bytes_read_by_other_devices == 16_KiB);
  CHECK(a.statistics().activations_read_here == 0);
  CHECK_FALSE(a.take_activation(*kept)); // taken once

  // Kept here again as a checkpoint: only a block this device holds.
  auto const other = a.keep_activation(16_KiB, 0, next_use);
  REQUIRE(other);
  auto const foreign = a.take_activation(*other, /*by_another_device=*/true);
  REQUIRE(foreign);
  CHECK_THROWS_AS(b.keep_taken(*foreign, 0, 0, backend.record_event(b.prefetch_stream())), hydra::invalid_argument);
  b.release_taken(*foreign, b.prefetch_stream());
  b.release_scratch(scratch, backend.record_event(b.compute_stream()));
  a.synchronize();
  b.synchronize();
  CHECK(pool_a.statistics().in_use == 0);
}
