// Model spilling on one device: shard state lives in host memory and is made
// resident just before a task needs it, then written back and evicted.
//
// Three streams: compute, prefetch (host -> device) and spill (device -> host).
//  - Every copy is issued on the stream that performs it, and its completion is an
//    event recorded there; compute waits on that event, never on the host.
//  - Device memory comes from a device_pool whose capacity is the budget. Space is
//    found by evicting resident shards that are not pinned (the running task's
//    and the next one's), the one needed furthest in the future first (Belady,
//    from the caller's lookahead). Eviction frees the extent on the spill stream
//    after it waited for the shard's last compute use and last copy, so the pool
//    hands the bytes to a prefetch only behind those: "wait for spills", in
//    stream order, never failing and never blocking the host.
//  - Write-back copies only dirty state: parameters and optimizer state after a
//    backward task (which fuses the update). Gradients never leave the device:
//    each backward overwrites them and its fused update consumes them. A
//    caller may leave an update on the device instead (mark_dirty): the
//    extent then goes home only when it is evicted (or flushed), so a shard
//    updated by several backwards in a row crosses the link once.
//  - Each direction is one contiguous copy per shard, issued in chunks.
//  - Kept activations (keep_activation): a copy of a boundary activation that
//    also went home, left in this pool for the model's next task in case that
//    task runs here (or, taken by another device's task, copied from here).
//    It is clean, so under pressure it is dropped (freed, never copied), and
//    only once no unpinned shard is left to evict; the launching task's own
//    input last. A checkpoint (a forward's input kept for its shard's
//    backward) is kept the same way, and dropped before them.
//  - Kept forward activations (keep_forward_activations): a training
//    forward's whole scratch, every activation inside its shard, left here for
//    the shard's backward, which then need not recompute them. Its input went
//    home as a checkpoint, so it too is dropped rather than copied. Under
//    pressure they compete with the unpinned shards, furthest next use first
//    (a shard needed sooner is not evicted to keep them); once no shard is
//    left, they go after the checkpoints (a recomputation costs more than a
//    copy in) and before the boundary activations (read by the very next
//    task), except a pinned shard's, which go last. A prefetch drops nothing.
//    Forward activations kept with `spill_home` (their caller found copying
//    them home and back cheaper than recomputing them) are not dropped but
//    spilled: copied to a host block on the spill stream, where the backward
//    takes them from (take_spilled), on this device or another. Those kept
//    `before_shards` (their caller found recomputing them cheaper than
//    fetching as many bytes of shard state again) go first of all, before
//    any shard is evicted for a task's own memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/memory/device_pool.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/pool_statistics.hpp"
#include "hydra/memory/residency_table.hpp"
#include "hydra/sched/eviction.hpp"

namespace hydra {

struct spill_statistics {
  std::uint64_t bytes_to_device = 0;     // shard state fetched
  std::uint64_t bytes_to_host = 0;       // shard state written back
  std::uint64_t fetches = 0;             // acquisitions that had to copy something
  std::uint64_t resident_hits = 0;       // acquisitions that found everything resident
  std::uint64_t prefetches_issued = 0;   // one-ahead prefetches that went ahead
  std::uint64_t prefetches_deferred = 0; // no room beside the running task; fetched when due
  std::uint64_t evictions = 0;
  std::uint64_t activations_kept = 0;      // boundary activations left on the device for the next task
  std::uint64_t activations_read_here = 0; // ... that the next task read here, not from host memory
  std::uint64_t activation_bytes_read_here = 0;
  std::uint64_t activations_dropped = 0; // ... freed unread (memory pressure, or the next task ran elsewhere)
  // Checkpoints (a training forward's input, kept for its shard's backward to
  // recompute from): kept here, read here by that backward, and their bytes.
  // A dropped one counts in activations_dropped.
  std::uint64_t checkpoints_kept = 0;
  std::uint64_t checkpoints_read_here = 0;
  std::uint64_t checkpoint_bytes_read_here = 0;
  // Boundary activations and checkpoints kept here that a task on another
  // device copied from here (take_activation for another device), and their
  // bytes: a copy between devices instead of one from host memory.
  std::uint64_t activations_read_by_other_devices = 0;
  std::uint64_t activation_bytes_read_by_other_devices = 0;
  // Forward activations (a training forward's scratch, kept for its shard's
  // backward): kept here, reused by that backward here instead of recomputed,
  // and dropped unread (memory pressure, or the backward ran elsewhere).
  std::uint64_t forward_activations_kept = 0;
  std::uint64_t recomputations_avoided = 0;
  std::uint64_t forward_activations_dropped = 0;
  // ... of those given up, copied home instead (kept with spill_home), and
  // their bytes; a spilled block taken by its backward (take_spilled) counts
  // in recomputations_avoided too.
  std::uint64_t forward_activations_spilled = 0;
  std::uint64_t forward_activation_bytes_spilled = 0;
  // ... of those given up, the ones kept before_shards given up before any
  // shard was evicted (recomputing them was cheaper than a fetch).
  std::uint64_t forward_activations_given_up_first = 0;
  // Shard-state copies home (write_back, at once or at an eviction or a
  // flush), and the updates left on the device (mark_dirty) instead of
  // written home at once.
  std::uint64_t write_backs = 0;
  std::uint64_t updates_left_dirty = 0;
  // Evictions and drops made while the pool's free bytes already covered the
  // request: room was there, but not in one piece. (The simulator counts
  // bytes, so these are where its memory and a run's part.)
  std::uint64_t fragmented_evictions = 0;
};

template <backend Backend>
class spill_engine {
public:
  using stream = typename Backend::stream;
  using event = typename Backend::event;
  using shard_id = std::size_t;
  using kept_id = std::uint64_t;
  // How many tasks from now `shard` is needed next (larger = later; max = never).
  using next_use_function = std::function<std::size_t(shard_id)>;

  static constexpr std::size_t copy_chunk_bytes = 16_MiB; // within the 4-64 MiB band

  spill_engine(Backend& backend, device_pool<Backend>& device, host_pool<Backend>& host, std::size_t device_index)
      : backend_(&backend), device_(&device), host_(&host),
        compute_(make_stream(backend, device_index, "compute", stream_role::compute)),
        prefetch_(make_stream(backend, device_index, "prefetch", stream_role::prefetch)),
        spill_(make_stream(backend, device_index, "spill", stream_role::spill)) {}

  spill_engine(spill_engine const&) = delete;
  spill_engine& operator=(spill_engine const&) = delete;

  // Gives every resident extent and kept activation back, in stream order.
  ~spill_engine() {
    for (shard_id id = 0; id < table_.size(); ++id)
      if (table_[id].resident()) release_extent(id);
    while (!kept_.empty()) drop_kept(kept_.front().id);
    while (!spilled_.empty()) drop_kept(spilled_.front().id);
  }

  // Registers a shard whose home the caller owns (see make_home); returns its id.
  shard_id add_shard(std::size_t extent_bytes, std::size_t parameter_bytes, shard_home<event>* home) {
    shard_residency<event> entry;
    entry.extent_bytes = extent_bytes;
    entry.parameter_bytes = parameter_bytes;
    entry.home = home;
    table_.push_back(entry);
    return table_.size() - 1;
  }

  // A shard home in `host`, filled from `initial` (parameters, then optimizer
  // state) on `on`, in stream order.
  static shard_home<event> make_home(Backend& backend, host_pool<Backend>& host, stream on,
                                     std::vector<float> initial) {
    shard_home<event> home;
    home.bytes = initial.size() * sizeof(float);
    home.data = static_cast<std::byte*>(host.allocate(on, home.bytes));
    backend.enqueue(on, [data = home.data, values = std::move(initial)] {
      std::copy(values.begin(), values.end(), reinterpret_cast<float*>(data));
    });
    home.ready = backend.record_event(on);
    return home;
  }

  // Makes `id` resident with its parameters (and optimizer state when
  // `with_state`), evicting unpinned shards as needed. The copies (or, for a
  // resident shard about to be updated, a wait on its last write-back) go on the
  // prefetch stream: compute orders itself after that stream, not after the host.
  void acquire(shard_id id, bool with_state, next_use_function const& next_use) {
    if (!make_resident(id, with_state, next_use)) {
      throw does_not_fit("spill engine: shard " + std::to_string(id) + " (" + format_bytes(table_[id].extent_bytes) +
                         ") does not fit beside the pinned shards on " + device_->name() + " (" +
                         format_bytes(device_->capacity()) + "); the partition broke its memory rule");
    }
  }

  // The one-ahead prefetch: as acquire, but deferred (returns false) when the
  // room would have to come from a pinned shard or a kept activation (the
  // task's own acquire may take it from those, once the shards pinned now are
  // not: a prefetch that dropped a backward's kept forward activations would
  // cost that backward a recomputation to save a copy).
  bool prefetch(shard_id id, bool with_state, next_use_function const& next_use) {
    bool const issued = make_resident(id, with_state, next_use, /*may_drop_kept=*/false);
    ++(issued ? statistics_.prefetches_issued : statistics_.prefetches_deferred);
    return issued;
  }

  // Device scratch for one task, allocated on the prefetch stream (its first
  // writer); evicts unpinned shards if needed.
  std::byte* allocate_scratch(std::size_t bytes, next_use_function const& next_use) {
    if (!make_room(bytes, next_use)) {
      throw does_not_fit("spill engine: " + format_bytes(bytes) +
                         " of task scratch do not fit beside the pinned shards on " + device_->name());
    }
    return static_cast<std::byte*>(device_->allocate(prefetch_, bytes));
  }

  // Frees scratch after its last use on compute (and on the spill stream, which
  // waits for compute first).
  void release_scratch(std::byte* scratch, event compute_done) {
    backend_->wait_event(spill_, compute_done);
    device_->deallocate(spill_, scratch);
  }

  // A block of `bytes` for a boundary activation kept here (allocated on the
  // prefetch stream, so compute, which waits on that stream, may write it).
  // Room comes from unpinned shards only: one kept activation never displaces
  // another. Nothing when there is none (the activation then goes home only).
  // Call kept_written once the copy into it is enqueued.
  // `owner`: whose it is (the runtime passes the model), for the drop order.
  // `checkpoint_of`: the shard whose backward reads it, when it is a
  // checkpoint rather than the input of the owner's very next task; under
  // memory pressure checkpoints go first, the one read furthest ahead first.
  std::optional<kept_id> keep_activation(std::size_t bytes, std::size_t owner, next_use_function const& next_use,
                                         std::optional<shard_id> checkpoint_of = std::nullopt) {
    if (!make_room(bytes, next_use, /*may_drop_kept=*/false)) return std::nullopt;
    kept_.reserve(kept_.size() + 1); // the push below cannot throw and lose the block
    auto* data = static_cast<std::byte*>(device_->allocate(prefetch_, bytes));
    kept_.push_back({next_kept_id_, owner, checkpoint_of, data, bytes, {}});
    ++(checkpoint_of ? statistics_.checkpoints_kept : statistics_.activations_kept);
    return next_kept_id_++;
  }
  [[nodiscard]] std::byte* kept_data(kept_id id) { return find_kept(id)->data; }
  // The copy into kept activation `id` ends at `written` (on any stream of this device).
  void kept_written(kept_id id, event written) { find_kept(id)->written = written; }

  // A kept activation, taken for the next task (no longer droppable): the
  // block, the event its readers wait for, and the engine whose pool holds
  // it; nothing if it was dropped. The taker frees it with release_taken
  // once its readers are enqueued. `by_another_device`: the taker runs on
  // another device and copies the block from here into its own memory (a
  // copy between devices; the backend's copy reaches another device's
  // memory, as CUDA's does under unified addressing).
  struct taken_activation {
    std::byte* data = nullptr;
    std::size_t bytes = 0;
    event written{};
    spill_engine* holder = nullptr;
  };
  std::optional<taken_activation> take_activation(kept_id id, bool by_another_device = false) {
    auto const at = kept_at(id);
    if (at == kept_.end()) return std::nullopt;
    detail::expects(!(by_another_device && at->forward_activations),
                    "spill engine: forward activations are taken only on their own device");
    taken_activation taken{at->data, at->bytes, at->written, this};
    if (by_another_device) {
      ++statistics_.activations_read_by_other_devices;
      statistics_.activation_bytes_read_by_other_devices += taken.bytes;
    } else if (at->forward_activations) {
      ++statistics_.recomputations_avoided;
    } else {
      ++(at->checkpoint_of ? statistics_.checkpoints_read_here : statistics_.activations_read_here);
      (at->checkpoint_of ? statistics_.checkpoint_bytes_read_here : statistics_.activation_bytes_read_here) +=
          taken.bytes;
    }
    kept_.erase(at);
    return taken;
  }
  // A taken activation kept again, as the checkpoint of `checkpoint_of` (a
  // forward's input, which its backward reads too): no new block, no copy.
  // `last_read`: the event its last reader so far ends at (a later free waits for it).
  kept_id keep_taken(taken_activation const& taken, std::size_t owner, shard_id checkpoint_of, event last_read) {
    detail::expects(taken.holder == this, "spill engine: a block taken from another device is not kept here");
    kept_.push_back({next_kept_id_, owner, checkpoint_of, taken.data, taken.bytes, last_read});
    ++statistics_.checkpoints_kept;
    return next_kept_id_++;
  }
  // A training forward's scratch (from allocate_scratch), kept for the
  // backward of `backward_of`, which takes it (take_activation) as its own
  // scratch instead of recomputing the activations in it. It holds no room
  // of its own: it is the forward's block, not freed. `last_use`: where the
  // forward's compute work on it ends (its readers on the spill stream, the
  // copies home, are ordered before any free, which goes on that stream; the
  // backward writes only its gradient and workspace regions, never the
  // activations those copies read).
  // `spill_home`: under pressure, or when send_home asks, they are copied
  // to host memory rather than dropped (see spill_kept). `before_shards`:
  // under pressure they go before any shard (see make_room); ignored with
  // spill_home (a spill costs more than the fetch it would spare).
  kept_id keep_forward_activations(std::byte* scratch, std::size_t bytes, std::size_t owner, shard_id backward_of,
                                   event last_use, bool spill_home = false, bool before_shards = false) {
    kept_.push_back({next_kept_id_, owner, backward_of, scratch, bytes, last_use, /*forward_activations=*/true,
                     spill_home, before_shards && !spill_home});
    ++statistics_.forward_activations_kept;
    return next_kept_id_++;
  }
  // Frees a taken activation on `after`, behind the copy that filled it and
  // the work enqueued there so far (its readers). `after` may be a stream of
  // another device (the taker's, whichever engine is called): the block goes
  // back to its holder's pool in that stream's order, as any stream-ordered
  // free (the holder's streams wait for it only when they reuse the block,
  // not for the taker's other work).
  void release_taken(taken_activation const& taken, stream after) {
    backend_->wait_event(after, taken.written);
    taken.holder->device_->deallocate(after, taken.data);
  }

  // Kept forward activations that were spilled (spill_home), taken by their
  // backward: the host block and the event of the copy into it. The taker
  // reads it on a stream of its own device, behind `written`, and frees it
  // there (host_pool::deallocate) behind that read.
  struct spilled_activation {
    std::byte* data = nullptr;
    std::size_t bytes = 0;
    event written{};
  };
  std::optional<spilled_activation> take_spilled(kept_id id) {
    auto const at = std::ranges::find(spilled_, id, &spilled_block::id);
    if (at == spilled_.end()) return std::nullopt;
    spilled_activation const taken{at->data, at->bytes, at->written};
    ++statistics_.recomputations_avoided;
    spilled_.erase(at);
    return taken;
  }

  // Kept activation `id` leaves the device because its reader runs on
  // another: spilled home where it was kept with spill_home (the reader then
  // takes it with take_spilled), dropped otherwise.
  // A spill that fails (no host room, or its copy refused) drops them
  // instead: the backward recomputes, and the task that needed the room is
  // not failed for another model's activations.
  void send_home(kept_id id) {
    auto const at = kept_at(id);
    if (at == kept_.end()) return;
    if (at->spill_home) {
      try {
        if (spill_kept(*at)) return;
      } catch (...) {
      }
    }
    drop_kept(id);
  }

  // Gives kept activation `id` up unread, if it is still here: freed on the
  // spill stream behind the copy into it, or its last read (keep_taken); it
  // went home too: nothing moves. A spilled one's host block is freed the same way.
  void drop_kept(kept_id id) {
    if (auto const spilled = std::ranges::find(spilled_, id, &spilled_block::id); spilled != spilled_.end()) {
      backend_->wait_event(spill_, spilled->written);
      host_->deallocate(spill_, spilled->data);
      spilled_.erase(spilled);
      return;
    }
    auto const at = kept_at(id);
    if (at == kept_.end()) return;
    backend_->wait_event(spill_, at->written);
    device_->deallocate(spill_, at->data);
    ++(at->forward_activations ? statistics_.forward_activations_dropped : statistics_.activations_dropped);
    kept_.erase(at);
  }
  [[nodiscard]] std::size_t kept_count() const noexcept { return kept_.size(); }
  [[nodiscard]] std::size_t spilled_count() const noexcept { return spilled_.size(); }

  // Pins: these shards are never chosen for eviction, and the forward
  // activations kept for their backwards are dropped last of all; the kept
  // activations of `owner` (the launching task's model: its input may be
  // among them) are dropped after the others (checkpoints aside, which go
  // first, whosever they are).
  void pin(std::vector<shard_id> shards, std::optional<std::size_t> owner = std::nullopt) {
    pinned_ = std::move(shards);
    launching_owner_ = owner;
  }

  [[nodiscard]] std::byte* extent(shard_id id) const { return table_.at(id).device; }

  // The compute work enqueued up to `compute_done` used the extent of `id`.
  void used_by_compute(shard_id id, event compute_done) { table_.at(id).last_compute_use = compute_done; }

  // After a backward task: copies the updated parameters and optimizer state
  // home on the spill stream, behind the compute work that produced them.
  void write_back(shard_id id, event compute_done) {
    auto& entry = table_.at(id);
    entry.last_compute_use = compute_done;
    entry.dirty = false;
    backend_->wait_event(spill_, compute_done);
    try {
      copy_in_chunks(spill_, entry.home->data, entry.device, entry.home->bytes);
    } catch (...) {
      // The chunks already issued still write the home: whoever frees it must
      // order after them. What the home holds now is neither state.
      entry.home->ready = backend_->record_event(spill_);
      throw;
    }
    entry.home->ready = backend_->record_event(spill_);
    entry.written_back_bytes += entry.home->bytes;
    statistics_.bytes_to_host += entry.home->bytes;
    ++statistics_.write_backs;
  }

  // After a backward task, instead of write_back: the updated parameters and
  // optimizer state stay on the device alone until `id` is evicted (evict,
  // which writes them home first, on the spill stream, before the extent is
  // freed) or flushed. A fetch of `id` on another device must follow that
  // eviction here, as one device holds a shard's state at a time; it then
  // waits for the write-back like any other (home->ready). A write-back that
  // fails is reported to on_write_back_failure, which must be set: whoever
  // evicts is then not the shard's owner, and the owner's home is stale.
  void mark_dirty(shard_id id, event compute_done) {
    detail::expects(static_cast<bool>(write_back_failed_),
                    "spill engine: mark_dirty needs on_write_back_failure, which hears of a stale home");
    auto& entry = table_.at(id);
    detail::expects(entry.resident() && entry.state_on_device,
                    "spill engine: shard " + std::to_string(id) + " is marked dirty without its state on the device");
    entry.last_compute_use = compute_done;
    entry.dirty = true;
    ++statistics_.updates_left_dirty;
  }

  // Who hears that the write-back of a dirty shard failed (`what` says why):
  // its home holds neither state now, so its owner must fail.
  void on_write_back_failure(std::function<void(shard_id, std::string const& what)> handler) {
    write_back_failed_ = std::move(handler);
  }

  // Writes a dirty shard home now and keeps it resident (a snapshot of its
  // model is about to be read from the homes); nothing for a clean one.
  void flush(shard_id id) { write_dirty_home(id, "at a flush"); }

  // Frees the extent of `id` in stream order, writing it home first if dirty.
  void evict(shard_id id) {
    write_dirty_home(id, "at its eviction");
    release_extent(id);
    ++statistics_.evictions;
  }

  // Frees the extent of `id` without writing anything home: its model is
  // stopped, and its homes are about to go too.
  void discard(shard_id id) {
    table_.at(id).dirty = false;
    release_extent(id);
    ++statistics_.evictions;
  }

  [[nodiscard]] stream compute_stream() const noexcept { return compute_; }
  [[nodiscard]] stream prefetch_stream() const noexcept { return prefetch_; }
  [[nodiscard]] stream spill_stream() const noexcept { return spill_; }
  [[nodiscard]] Backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] device_pool<Backend>& device_memory() const noexcept { return *device_; }
  [[nodiscard]] host_pool<Backend>& host_memory() const noexcept { return *host_; }
  [[nodiscard]] spill_statistics const& statistics() const noexcept { return statistics_; }
  [[nodiscard]] residency_table<event> const& table() const noexcept { return table_; }

  // Waits (on the host) until every stream of the engine has drained.
  void synchronize() {
    backend_->synchronize(compute_);
    backend_->synchronize(prefetch_);
    backend_->synchronize(spill_);
  }

  // The same for a teardown, which must not throw: each stream is waited on
  // separately, and again after a wait that ended in a stored error (which
  // clears it), a few times at most (a lost CUDA context answers every wait
  // with its error). The errors were reported already, or are moot now.
  void drain() noexcept {
    for (stream const s : {compute_, prefetch_, spill_}) {
      for (int attempt = 0; attempt < 3; ++attempt) {
        try {
          backend_->synchronize(s);
          break;
        } catch (...) {
        }
      }
    }
  }

private:
  static stream make_stream(Backend& backend, std::size_t device, char const* what, stream_role role) {
    std::string name = "device " + std::to_string(device) + " " + what;
    if constexpr (assigns_stream_roles<Backend>)
      return backend.create_stream(device, std::move(name), role);
    else
      return backend.create_stream(device, std::move(name));
  }

  bool make_resident(shard_id id, bool with_state, next_use_function const& next_use, bool may_drop_kept = true) {
    auto& entry = table_.at(id);
    bool const needs_parameters = !entry.parameters_on_device;
    bool const needs_state = with_state && !entry.state_on_device;
    if (!needs_parameters && !needs_state) {
      // A task that will update the state (a backward) must not start writing
      // while the previous write-back is still reading the extent: order the
      // prefetch stream, which compute waits on, after it.
      if (with_state) backend_->wait_event(prefetch_, entry.home->ready);
      ++statistics_.resident_hits;
      return true;
    }
    if (!entry.resident()) {
      if (!make_room(entry.extent_bytes, next_use, may_drop_kept)) return false;
      entry.device = static_cast<std::byte*>(device_->allocate(prefetch_, entry.extent_bytes));
    }
    // The home may still be receiving a write-back: copy only after it.
    backend_->wait_event(prefetch_, entry.home->ready);
    std::size_t const first = needs_parameters ? 0 : entry.parameter_bytes;
    std::size_t const last = needs_state ? entry.home->bytes : entry.parameter_bytes;
    try {
      copy_in_chunks(prefetch_, entry.device + first, entry.home->data + first, last - first);
    } catch (...) {
      // The extent stays allocated but holds nothing valid (a later acquire
      // copies again); its free must order after the chunks already issued.
      entry.device_ready = backend_->record_event(prefetch_);
      entry.parameters_on_device = entry.state_on_device = false;
      throw;
    }
    entry.device_ready = backend_->record_event(prefetch_);
    entry.parameters_on_device = true;
    entry.state_on_device = entry.state_on_device || needs_state;
    entry.fetched_bytes += last - first;
    statistics_.bytes_to_device += last - first;
    ++statistics_.fetches;
    return true;
  }

  // Evicts unpinned resident shards, furthest next use first, until a block of
  // `bytes` fits; then (`may_drop_kept`) drops kept activations. Each is read
  // by its owner's very next task, so next use does not tell them apart: the
  // lowest owner's goes first (as the simulator chooses), the launching
  // owner's last; but checkpoints, read only by a backward further ahead,
  // go before them, furthest next use first. Kept forward activations
  // kept before_shards go before anything else, furthest read first, except
  // a pinned shard's (last of all, as below); the others compete with the
  // shards (see below). False when only pinned shards remain.
  bool make_room(std::size_t bytes, next_use_function const& next_use, bool may_drop_kept = true) {
    std::size_t const needed = align_up(bytes, allocation_alignment);
    for (pool_statistics room = device_->statistics(); room.largest_free_block < needed; room = device_->statistics()) {
      bool const fragmented = room.free >= needed;
      if (kept_block const* const cheap =
              may_drop_kept ? furthest_read(next_use, /*forward_activations=*/true, /*before_shards_only=*/true)
                            : nullptr) {
        send_home(cheap->id);
        ++statistics_.forward_activations_given_up_first;
        if (fragmented) ++statistics_.fragmented_evictions;
        continue;
      }
      auto const victim = furthest_next_use(
          std::views::iota(shard_id{0}, table_.size()),
          [this](shard_id id) { return table_[id].resident() && !is_pinned(id); }, next_use);
      // Forward activations compete with the shards: whichever is needed
      // furthest ahead goes (on a tie, the shard), so that keeping them never
      // costs a shard that is needed sooner a fetch. With no shard left, the
      // drop order below.
      kept_block const* const forward =
          may_drop_kept && victim ? furthest_read(next_use, /*forward_activations=*/true) : nullptr;
      if (forward != nullptr && next_use(*forward->checkpoint_of) > next_use(*victim)) {
        send_home(forward->id);
      } else if (victim) {
        evict(*victim);
      } else if (may_drop_kept && !kept_.empty()) {
        send_home(next_to_drop(next_use));
      } else {
        return false;
      }
      if (fragmented) ++statistics_.fragmented_evictions;
    }
    return true;
  }

  struct kept_block {
    kept_id id = 0;
    std::size_t owner = 0;
    std::optional<shard_id> checkpoint_of; // a checkpoint or forward activations: the shard whose backward reads it
    std::byte* data = nullptr;
    std::size_t bytes = 0;
    event written{};
    bool forward_activations = false; // a forward's scratch (keep_forward_activations), not a checkpoint
    bool spill_home = false;          // ... copied home when given up, not dropped
    bool before_shards = false;       // ... given up before any shard is evicted
  };
  struct spilled_block {
    kept_id id = 0;
    std::byte* data = nullptr; // in host memory
    std::size_t bytes = 0;
    event written{};
  };

  // Copies kept forward activations to a host block on the spill stream,
  // behind the work that wrote them, then frees their device block there.
  // False, with nothing changed, when the host pool has no room for them:
  // the caller drops them instead (the backward recomputes).
  bool spill_kept(kept_block const& kept) {
    spilled_.reserve(spilled_.size() + 1); // the push below cannot throw and lose the block
    std::byte* home = nullptr;
    try {
      home = static_cast<std::byte*>(host_->allocate(spill_, kept.bytes));
    } catch (out_of_memory const&) {
      return false;
    }
    try {
      backend_->wait_event(spill_, kept.written);
      copy_in_chunks(spill_, home, kept.data, kept.bytes);
      spilled_.push_back({kept.id, home, kept.bytes, backend_->record_event(spill_)});
    } catch (...) { // still kept here; the chunks issued still write the host block, freed behind them
      host_->deallocate(spill_, home);
      throw;
    }
    std::byte* const data = kept.data;
    ++statistics_.forward_activations_spilled;
    statistics_.forward_activation_bytes_spilled += kept.bytes;
    kept_.erase(kept_at(kept.id)); // `kept` is gone: no second free of its block, whatever follows
    device_->deallocate(spill_, data);
    return true;
  }
  [[nodiscard]] auto kept_at(kept_id id) {
    return std::find_if(kept_.begin(), kept_.end(), [id](kept_block const& k) { return k.id == id; });
  }
  [[nodiscard]] kept_block* find_kept(kept_id id) {
    auto const at = kept_at(id);
    detail::expects(at != kept_.end(),
                    "spill engine: kept activation " + std::to_string(id) + " is not on " + device_->name());
    return &*at;
  }

  // The kept block make_room gives up next (see there); kept_ is not empty.
  // Checkpoints first, then forward activations (a dropped checkpoint costs
  // its backward a copy in; dropped forward activations cost a recomputation
  // as well), each the one read furthest ahead first; then the boundary
  // activations; last, the forward activations of pinned shards, whose
  // backwards are being launched or queued: dropping those frees room the
  // backward then needs again for its scratch.
  [[nodiscard]] kept_id next_to_drop(next_use_function const& next_use) const {
    for (bool const forward_activations : {false, true})
      if (kept_block const* const furthest = furthest_read(next_use, forward_activations)) return furthest->id;
    auto const order = [this](kept_block const& k) {
      return std::tuple(k.forward_activations, k.owner == launching_owner_, k.owner);
    };
    return std::ranges::min(kept_, {}, order).id;
  }

  // Of the kept blocks a backward reads (checkpoints, or forward activations
  // whose shard is not pinned), the one read furthest ahead; ties: the lowest
  // owner's, its first shard's (as the simulator chooses among checkpoints).
  // `before_shards_only`: only forward activations kept before_shards.
  // Null when there is none.
  [[nodiscard]] kept_block const* furthest_read(next_use_function const& next_use, bool forward_activations,
                                                bool before_shards_only = false) const {
    kept_block const* furthest = nullptr;
    std::size_t furthest_use = 0;
    for (kept_block const& k : kept_) {
      if (!k.checkpoint_of || k.forward_activations != forward_activations) continue;
      if (before_shards_only && !k.before_shards) continue;
      if (forward_activations && is_pinned(*k.checkpoint_of)) continue; // last of all (next_to_drop)
      std::size_t const use = next_use(*k.checkpoint_of);
      bool const earlier = furthest != nullptr &&
                           std::pair(k.owner, *k.checkpoint_of) < std::pair(furthest->owner, *furthest->checkpoint_of);
      if (furthest == nullptr || use > furthest_use || (use == furthest_use && earlier)) {
        furthest = &k;
        furthest_use = use;
      }
    }
    return furthest;
  }

  void release_extent(shard_id id) {
    auto& entry = table_.at(id);
    // The spill stream orders after every reader and writer of the extent.
    backend_->wait_event(spill_, entry.last_compute_use);
    backend_->wait_event(spill_, entry.device_ready);
    device_->deallocate(spill_, entry.device);
    entry.device = nullptr;
    entry.parameters_on_device = entry.state_on_device = false;
  }

  // A dirty shard's write-back (flush, evict); a refusal goes to
  // on_write_back_failure, saying `when` it was made.
  void write_dirty_home(shard_id id, char const* when) {
    auto& entry = table_.at(id);
    if (!entry.dirty) return;
    entry.dirty = false;
    try {
      write_back(id, entry.last_compute_use);
    } catch (std::exception const& failure) {
      write_back_failed_(id, std::string(when) + ": " + failure.what());
    } catch (...) {
      write_back_failed_(id, std::string(when) + ": an exception not derived from std::exception");
    }
  }

  [[nodiscard]] bool is_pinned(shard_id id) const {
    return std::find(pinned_.begin(), pinned_.end(), id) != pinned_.end();
  }

  void copy_in_chunks(stream on, std::byte* destination, std::byte const* source, std::size_t bytes) {
    for (std::size_t done = 0; done < bytes; done += copy_chunk_bytes)
      backend_->copy_async(on, destination + done, source + done, std::min(copy_chunk_bytes, bytes - done));
  }

  Backend* backend_;
  device_pool<Backend>* device_;
  host_pool<Backend>* host_;
  stream compute_;
  stream prefetch_;
  stream spill_;
  residency_table<event> table_;
  std::vector<shard_id> pinned_;
  std::vector<kept_block> kept_;
  std::vector<spilled_block> spilled_; // kept forward activations spilled home, until their backward takes them
  std::optional<std::size_t> launching_owner_;
  kept_id next_kept_id_ = 0;
  std::function<void(shard_id, std::string const&)> write_back_failed_; // mark_dirty's shards
  spill_statistics statistics_;
};

} // namespace hydra
