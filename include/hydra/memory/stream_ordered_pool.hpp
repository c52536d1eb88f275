// A stream-ordered memory pool with a hard capacity: one reservation made up
// front, never grown, carved into 256-byte-aligned blocks.
//
// The contract (the same as RMM's and cudaMallocAsync's):
//  - allocate(stream, bytes) returns memory that work on `stream` may use at once;
//  - deallocate(stream, pointer) says "the last use of this block was enqueued on
//    `stream`"; the block is reusable at once by later work on `stream`;
//  - a block freed on stream A is handed to stream B only after the pool made B
//    wait on A's event: an edge in the streams, never a host-side synchronisation;
//  - reuse is deterministic: the same sequence of calls yields the same addresses,
//    whatever the streams' timing (no opportunistic reuse of "already finished"
//    frees, which would depend on timing);
//  - a request past capacity throws hydra::out_of_memory naming the request, the
//    bytes in use, the capacity and the largest free block, and changes nothing
//    (as does a failure a test backend injects: injects_faults).
// Thread-safe: calls may come from any number of threads. The backend, and every
// stream that freed into the pool, must outlive it (like RMM's contract).
//
// Under AddressSanitizer, where the pool's memory is host memory (the host
// backend), the pool tells ASan what is allocated: memory not handed out is
// poisoned, and so is each block's alignment slack past the bytes asked for
// (a redzone up to the 256-byte rounding; blocks are packed, so a block of a
// multiple of 256 bytes has none), so that a read or write into a freed block,
// or past a block into its slack or free memory, is reported where it
// happens. A block's bytes are unpoisoned when it is handed out, at once,
// because its user may touch them at once. All poisoning waits in stream
// order instead, because work enqueued before may still use the memory under
// an earlier allocation (a stream reuses its own frees at once): the slack's
// is a host function on the allocating stream, a freed block's one on the
// freeing stream. Each is dropped if, when it runs, the memory has been
// handed out again (checked under the pool's lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/backend/memory_reservation.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/spin_mutex.hpp"
#include "hydra/memory/detail/block_table.hpp"
#include "hydra/memory/pool_statistics.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace hydra {

template <stream_ordering Backend>
class stream_ordered_pool {
public:
  using backend_type = Backend;
  using stream = typename Backend::stream;
  using event = typename Backend::event;

  // Usable capacity is the reservation rounded down to the allocation alignment.
  stream_ordered_pool(Backend& backend, memory_reservation reservation, std::string name)
      : backend_(&backend), reservation_(std::move(reservation)), name_(std::move(name)),
        table_(align_down(reservation_.size(), allocation_alignment)) {
    detail::expects(is_aligned(reservation_.data(), allocation_alignment),
                    name_ + ": the reservation is not aligned to " + std::to_string(allocation_alignment) + " bytes");
    sanitizer_poison(reservation_.data(), table_.capacity()); // nothing handed out yet
  }

  stream_ordered_pool(stream_ordered_pool const&) = delete;
  stream_ordered_pool& operator=(stream_ordered_pool const&) = delete;

  // The reservation goes back only once the last free on every stream has run:
  // the one place the pool waits on the host, because afterwards nothing could.
  ~stream_ordered_pool() {
    for (owner_stream const& owner : owners_) backend_->synchronize(owner.last_free);
    if constexpr (sanitizes_memory) {
      for (auto const& [stream_id, queued] : sanitizer_work_) backend_->synchronize(queued);
      sanitizer_unpoison(reservation_.data(), table_.capacity());
    }
  }

  // Size 0 gives nullptr (and deallocate(stream, nullptr) does nothing).
  [[nodiscard]] void* allocate(stream on, std::size_t bytes) {
    if (bytes == 0) return nullptr;
    std::size_t const size = align_up(bytes, allocation_alignment);
    std::lock_guard lock(mutex_);
    if (size > table_.capacity()) throw_out_of_memory(bytes);
    if constexpr (injects_faults<Backend>) {
      if (backend_->inject_fault(fault_site::allocation)) {
        throw out_of_memory(name_ + " (fault injection)", bytes, table_.in_use(), table_.capacity(),
                            table_.largest_free_run());
      }
    }
    std::uint32_t const own = find_owner(on);
    std::size_t offset = 0;
    if (auto const fit = find_fit_for(own, size)) {
      if (fit->owner != own) order_after_owner(on, fit->owner);
      offset = table_.allocate_from(fit->block, size);
    } else {
      offset = allocate_across_owners(on, bytes, size);
    }
    std::size_t const in_use = table_.in_use();
    peak_in_use_ = in_use > peak_in_use_ ? in_use : peak_in_use_;
    if constexpr (sanitizes_memory) sanitizer_allocated(on, offset, bytes, size);
    return reservation_.data() + offset;
  }

  void deallocate(stream on, void* pointer) {
    if (pointer == nullptr) return;
    std::lock_guard lock(mutex_);
    std::size_t const offset = offset_within(pointer);
    std::uint32_t owner = find_owner(on);
    if (owner == no_owner) owner = add_owner(on);
    if constexpr (requires { backend_->memset_async(on, pointer, std::uint8_t{0}, std::size_t{0}); }) {
      // Poisoning: the freed bytes are overwritten in stream order, after their
      // last use and before any reuse, so a read through a missing event edge
      // sees the poison instead of plausible stale data.
      if (poison_) {
        auto const size = table_.live_size(offset);
        if (!size) throw_not_live(pointer);
        if constexpr (sanitizes_memory) // the slack too, which ASan was told is not to be touched
          backend_->enqueue(on, [pointer, bytes = *size, fill = *poison_] {
            sanitizer_unpoison(pointer, bytes);
            std::memset(pointer, fill, bytes);
          });
        else
          backend_->memset_async(on, pointer, *poison_, *size);
      }
    }
    auto const size = sanitizes_memory ? table_.live_size(offset) : std::nullopt;
    if (!table_.release(offset, owner)) throw_not_live(pointer);
    if constexpr (sanitizes_memory) sanitizer_freed(on, offset, *size);
    // Re-recorded on every free: it then covers every block this stream holds.
    owners_[owner - 1].last_free = backend_->record_event(on);
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return table_.capacity(); }
  [[nodiscard]] std::string const& name() const noexcept { return name_; }
  [[nodiscard]] Backend& backend() const noexcept { return *backend_; }

  // Byte offset of `pointer` from the start of the reservation: what makes
  // deterministic reuse checkable across two pools.
  [[nodiscard]] std::size_t offset_of(void const* pointer) const {
    return static_cast<std::size_t>(static_cast<std::byte const*>(pointer) - reservation_.data());
  }

  [[nodiscard]] pool_statistics statistics() const {
    std::lock_guard lock(mutex_);
    pool_statistics counters;
    counters.capacity = table_.capacity();
    counters.in_use = table_.in_use();
    counters.peak_in_use = peak_in_use_;
    counters.free = table_.capacity() - table_.in_use();
    counters.largest_free_block = table_.largest_free_run();
    counters.live_allocations = table_.live_blocks();
    for (std::uint32_t owner = 1; owner < table_.owner_count(); ++owner)
      if (!backend_->query(owners_[owner - 1].last_free)) counters.pending_free += table_.free_bytes_of(owner);
    return counters;
  }

  // Test aid: fill every freed block with `value` (0xFF makes fp32 NaNs) in
  // stream order; std::nullopt turns it off.
  void poison_freed_blocks(std::optional<std::uint8_t> value) {
    std::lock_guard lock(mutex_);
    poison_ = value;
  }

  void reset_peak() {
    std::lock_guard lock(mutex_);
    peak_in_use_ = table_.in_use();
  }

private:
  static constexpr std::uint32_t no_owner = ~std::uint32_t{0};

#if defined(__SANITIZE_ADDRESS__)
  static constexpr bool sanitizes_memory = requires {
    requires Backend::memory_is_host_memory;
  };
  static void sanitizer_poison(void const* address, std::size_t bytes) noexcept {
    if constexpr (sanitizes_memory) ASAN_POISON_MEMORY_REGION(address, bytes);
  }
  static void sanitizer_unpoison(void const* address, std::size_t bytes) noexcept {
    if constexpr (sanitizes_memory) ASAN_UNPOISON_MEMORY_REGION(address, bytes);
  }
#else
  static constexpr bool sanitizes_memory = false;
  static void sanitizer_poison(void const*, std::size_t) noexcept {}
  static void sanitizer_unpoison(void const*, std::size_t) noexcept {}
#endif

  // Sanitizer bookkeeping, under the pool's lock. A ticket names one
  // allocation, or one free: what a queued poisoning checks before it runs.
  struct freed_block {
    std::size_t end;
    std::uint64_t ticket;
  };

  void sanitizer_allocated(stream const& on, std::size_t offset, std::size_t bytes, std::size_t size) {
    // This memory leaves every free whose poisoning is still queued; what is
    // left of such a free either side stays queued under its ticket. Queued
    // frees never overlap each other (each freed a block that an allocation
    // had taken out of the ones before), so only the one just before
    // `offset` can reach into it from below.
    std::size_t const end = offset + size;
    auto at = freed_.lower_bound(offset);
    if (at != freed_.begin() && std::prev(at)->second.end > offset) --at;
    while (at != freed_.end() && at->first < end) {
      auto const [begin, piece] = *at;
      at = freed_.erase(at);
      if (begin < offset) freed_.emplace(begin, freed_block{offset, piece.ticket});
      if (piece.end > end) at = freed_.emplace(end, freed_block{piece.end, piece.ticket}).first;
    }
    sanitizer_unpoison(reservation_.data() + offset, bytes);
    std::uint64_t const ticket = ++tickets_;
    live_[offset] = ticket;
    if (bytes == size) return;
    after_queued_work(on, [this, offset, bytes, size, ticket] {
      auto const live = live_.find(offset);
      if (live != live_.end() && live->second == ticket) // not freed (and handed out again) since
        sanitizer_poison(reservation_.data() + offset + bytes, size - bytes);
    });
  }

  void sanitizer_freed(stream const& on, std::size_t offset, std::size_t size) {
    live_.erase(offset);
    std::uint64_t const ticket = ++tickets_;
    freed_[offset] = {offset + size, ticket};
    after_queued_work(on, [this, offset, end = offset + size, ticket] {
      // What is still free of it: the pieces under its ticket.
      for (auto at = freed_.lower_bound(offset); at != freed_.end() && at->first < end;) {
        if (at->second.ticket != ticket) {
          ++at;
          continue;
        }
        sanitizer_poison(reservation_.data() + at->first, at->second.end - at->first);
        at = freed_.erase(at);
      }
    });
  }

  // Runs `poison` under the pool's lock once the work enqueued on `on` so far
  // has run: as a host function there, or at once if the stream has been
  // destroyed (it ran all its work before it stopped).
  template <class Poison>
  void after_queued_work(stream const& on, Poison poison) {
    try {
      backend_->enqueue(on, [this, poison] {
        std::lock_guard lock(mutex_);
        poison();
      });
    } catch (invalid_argument const&) {
      poison();
      return;
    }
    queued_sanitizer_work(on);
  }

  // The destructor waits for the host functions above: they use the pool.
  void queued_sanitizer_work(stream const& on) {
    auto const id = static_cast<std::uint64_t>(on.id());
    for (auto& [stream_id, queued] : sanitizer_work_)
      if (stream_id == id) {
        queued = backend_->record_event(on);
        return;
      }
    sanitizer_work_.emplace_back(id, backend_->record_event(on));
  }

  // A stream that has freed into this pool, and its latest free's event.
  struct owner_stream {
    std::uint64_t stream_id;
    event last_free;
  };

  std::uint32_t find_owner(stream const& on) const {
    auto const id = static_cast<std::uint64_t>(on.id());
    for (std::size_t at = 0; at < owners_.size(); ++at)
      if (owners_[at].stream_id == id) return static_cast<std::uint32_t>(at + 1);
    return no_owner;
  }

  std::uint32_t add_owner(stream const& on) {
    owners_.push_back(owner_stream{static_cast<std::uint64_t>(on.id()), event{}});
    return table_.add_owner();
  }

  // Own blocks first (no wait), then never-used memory (no wait), then other
  // streams' blocks in the order those streams first freed here (one wait).
  std::optional<detail::block_table::fit> find_fit_for(std::uint32_t own, std::size_t size) const {
    if (own != no_owner)
      if (auto fit = table_.find_fit(own, size)) return fit;
    for (std::uint32_t owner = 0; owner < table_.owner_count(); ++owner) {
      if (owner == own) continue;
      if (auto fit = table_.find_fit(owner, size)) return fit;
    }
    return std::nullopt;
  }

  void order_after_owner(stream const& on, std::uint32_t owner) {
    if (owner == detail::block_table::unowned) return;
    event const& freed = owners_[owner - 1].last_free;
    if (!backend_->query(freed)) backend_->wait_event(on, freed);
  }

  // No single block fits, but adjacent free blocks of several owners may: wait on
  // each of their owners, merge the run into one block of ours, carve from it.
  std::size_t allocate_across_owners(stream const& on, std::size_t requested, std::size_t size) {
    auto const run = table_.find_run(size);
    if (!run) throw_out_of_memory(requested);
    std::uint32_t own = find_owner(on);
    if (own == no_owner) own = add_owner(on);
    std::vector<std::uint32_t> waited;
    auto const merged = table_.merge_run(*run, own, [&](std::uint32_t owner) {
      if (owner == own || owner == detail::block_table::unowned) return;
      for (std::uint32_t seen : waited)
        if (seen == owner) return;
      waited.push_back(owner);
      order_after_owner(on, owner);
    });
    // The merged remainder is ours now; others must order after those waits too.
    owners_[own - 1].last_free = backend_->record_event(on);
    return table_.allocate_from(merged, size);
  }

  std::size_t offset_within(void* pointer) const {
    auto const* byte = static_cast<std::byte const*>(pointer);
    if (byte < reservation_.data() || byte >= reservation_.data() + table_.capacity()) throw_not_live(pointer);
    return static_cast<std::size_t>(byte - reservation_.data());
  }

  [[noreturn]] void throw_out_of_memory(std::size_t requested) const {
    throw out_of_memory(name_, requested, table_.in_use(), table_.capacity(), table_.largest_free_run());
  }

  [[noreturn]] void throw_not_live(void const* pointer) const {
    char text[32];
    std::snprintf(text, sizeof text, "%p", pointer);
    throw invalid_argument(name_ + ": deallocate of " + text +
                           ", which is not a live allocation of this pool (double free, or another pool's memory)");
  }

  Backend* backend_;
  memory_reservation reservation_;
  std::string name_;
  mutable spin_mutex mutex_;
  detail::block_table table_;
  std::vector<owner_stream> owners_; // owners_[k - 1] is block_table owner k
  std::size_t peak_in_use_ = 0;
  std::optional<std::uint8_t> poison_;
  // Under AddressSanitizer only: live blocks and queued frees by offset.
  std::map<std::size_t, std::uint64_t> live_;
  std::map<std::size_t, freed_block> freed_;
  std::vector<std::pair<std::uint64_t, event>> sanitizer_work_; // stream id, its latest such work
  std::uint64_t tickets_ = 0;
};

} // namespace hydra
