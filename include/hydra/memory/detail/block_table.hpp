// The bookkeeping of a stream-ordered pool, on offsets only (no memory, no
// streams, no locks), so that it is deterministic and testable with fake addresses.
//
// Every byte of the reservation belongs to exactly one block; blocks form an
// address-ordered list. A free block has an owner: `unowned` (never used, safe for
// anyone) or the owner slot of the stream that freed it (safe at once for that
// stream, for others only after a wait, which the pool inserts). Free blocks sit
// in per-owner segregated bins (one bin per power of two, LIFO), so a fit is found
// with a bit scan and an alloc/free pair of one size touches one bin head.
// Adjacent free blocks coalesce when they share an owner or one side is unowned.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/memory/detail/address_map.hpp"

namespace hydra::detail {

class block_table {
public:
  using index = std::uint32_t;
  static constexpr index none = ~index{0};
  static constexpr std::uint32_t unowned = 0;

  struct fit {
    index block;
    std::uint32_t owner;
  };

  // A maximal run of adjacent free blocks, in address order.
  struct free_run {
    index first = none;
    std::size_t bytes = 0;
  };

  explicit block_table(std::size_t capacity) : capacity_(capacity) {
    owners_.emplace_back();
    if (capacity_ == 0) return;
    index const whole = new_block(0, capacity_);
    head_ = whole;
    push_free(whole, unowned);
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }
  [[nodiscard]] std::size_t live_blocks() const noexcept { return live_.size(); }
  [[nodiscard]] std::size_t free_bytes_of(std::uint32_t owner) const { return owners_[owner].free_bytes; }
  [[nodiscard]] std::size_t owner_count() const noexcept { return owners_.size(); }

  std::uint32_t add_owner() {
    owners_.emplace_back();
    return static_cast<std::uint32_t>(owners_.size() - 1);
  }

  // First fit among the blocks of `owner`'s bin for `size`, else the most recently
  // freed block of the smallest non-empty larger bin (every block there is larger).
  [[nodiscard]] std::optional<fit> find_fit(std::uint32_t owner, std::size_t size) const {
    owner_bins const& bins = owners_[owner];
    unsigned const first_bin = bin_of(size);
    for (index at = bins.heads[first_bin]; at != none; at = blocks_[at].next_free)
      if (blocks_[at].size >= size) return fit{at, owner};
    std::uint64_t const larger = first_bin + 1 < bin_count ? bins.nonempty & (~std::uint64_t{0} << (first_bin + 1)) : 0;
    if (larger == 0) return std::nullopt;
    return fit{bins.heads[std::countr_zero(larger)], owner};
  }

  // Carves `size` bytes from the front of free block `block`; returns the offset.
  // The free remainder keeps its record (and its place in its bin, when its size
  // class does not change), so the common split costs no list surgery.
  std::size_t allocate_from(index block, std::size_t size) {
    index taken = block;
    if (blocks_[block].size == size) {
      pop_free(block);
    } else {
      taken = new_block(blocks_[block].offset, size);
      link_before(taken, block);
      resize_free(block, blocks_[block].offset + size, blocks_[block].size - size, blocks_[block].owner);
    }
    block_record& result = blocks_[taken];
    result.free = false;
    in_use_ += size;
    live_.insert(result.offset, taken);
    return result.offset;
  }

  // Size of the live block at `offset`, if there is one.
  [[nodiscard]] std::optional<std::size_t> live_size(std::size_t offset) const {
    auto const block = live_.find(offset);
    if (!block) return std::nullopt;
    return blocks_[*block].size;
  }

  // Frees the live block at `offset` into `owner`'s bins, coalescing with free
  // neighbours of the same owner or unowned. Returns false for an unknown offset.
  // Small blocks skip coalescing (like dlmalloc's fast bins): a free/allocate
  // pair of one small size then reuses the block as is instead of splitting and
  // re-merging its neighbour every time. They still merge when a larger
  // neighbour is freed, and find_run/merge_run gather them when no block fits,
  // so no request fails that a fully coalesced pool would serve.
  bool release(std::size_t offset, std::uint32_t owner) {
    auto const found = live_.find(offset);
    if (!found) return false;
    live_.erase(offset);
    index const block = *found;
    in_use_ -= blocks_[block].size;
    if (blocks_[block].size <= deferred_coalescing_limit) {
      push_free(block, owner);
      return true;
    }
    index const before = blocks_[block].previous;
    index const after = blocks_[block].next;
    bool const join_before = before != none && joinable(before, owner);
    bool const join_after = after != none && joinable(after, owner);
    if (!join_before && !join_after) {
      push_free(block, owner);
      return true;
    }
    // One free neighbour's record survives and grows over the others.
    index const survivor = join_before ? before : after;
    std::size_t const begin = join_before ? blocks_[before].offset : blocks_[block].offset;
    std::size_t const end =
        join_after ? blocks_[after].offset + blocks_[after].size : blocks_[block].offset + blocks_[block].size;
    if (join_before && join_after) {
      pop_free(after);
      unlink(after);
    }
    unlink(block);
    resize_free(survivor, begin, end - begin, owner);
    return true;
  }

  // The first run in address order of at least `size` bytes, whatever its owners.
  [[nodiscard]] std::optional<free_run> find_run(std::size_t size) const {
    std::optional<free_run> found;
    walk_runs([&](free_run run) {
      if (run.bytes >= size) found = run;
      return !found;
    });
    return found;
  }

  [[nodiscard]] std::size_t largest_free_run() const {
    std::size_t largest = 0;
    walk_runs([&](free_run run) {
      largest = run.bytes > largest ? run.bytes : largest;
      return true;
    });
    return largest;
  }

  // Calls `visit(owner)` for each block of the run (so the pool can wait on each
  // owner's event), then merges the run into one free block owned by `owner`.
  template <class Visit>
  index merge_run(free_run run, std::uint32_t owner, Visit&& visit) {
    for (index at = run.first; at != none && blocks_[at].free; at = blocks_[at].next) visit(blocks_[at].owner);
    pop_free(run.first);
    while (blocks_[run.first].next != none && blocks_[blocks_[run.first].next].free) {
      index const gone = blocks_[run.first].next;
      pop_free(gone);
      blocks_[run.first].size += blocks_[gone].size;
      unlink(gone);
    }
    push_free(run.first, owner);
    return run.first;
  }

  // Freed blocks up to this size are not coalesced at once (see release).
  static constexpr std::size_t deferred_coalescing_limit = 16 * 1024;

private:
  static constexpr unsigned bin_count = 64;

  struct block_record {
    std::size_t offset = 0;
    std::size_t size = 0;
    index previous = none; // address order
    index next = none;
    index previous_free = none; // within its bin
    index next_free = none;
    std::uint32_t owner = unowned;
    std::uint8_t bin = 0; // valid while free: saves recomputing it on unlink
    bool free = true;
  };

  struct owner_bins {
    std::array<index, bin_count> heads{make_empty_heads()};
    std::uint64_t nonempty = 0;
    std::size_t free_bytes = 0;
  };

  static constexpr std::array<index, bin_count> make_empty_heads() {
    std::array<index, bin_count> heads{};
    heads.fill(none);
    return heads;
  }

  // Bin k holds sizes in [2^k, 2^(k+1)) allocation units (a size below one unit
  // searches from bin 0).
  static unsigned bin_of(std::size_t size) noexcept {
    std::size_t const units = size / allocation_alignment;
    return units == 0 ? 0U : static_cast<unsigned>(std::bit_width(units) - 1);
  }

  [[nodiscard]] bool joinable(index neighbour, std::uint32_t owner) const {
    return blocks_[neighbour].free && (blocks_[neighbour].owner == owner || blocks_[neighbour].owner == unowned);
  }

  template <class Visit>
  void walk_runs(Visit&& visit) const {
    free_run run;
    for (index at = head_; at != none; at = blocks_[at].next) {
      if (blocks_[at].free) {
        if (run.first == none) run.first = at;
        run.bytes += blocks_[at].size;
        continue;
      }
      if (run.first != none && !visit(run)) return;
      run = free_run{};
    }
    if (run.first != none) visit(run);
  }

  index new_block(std::size_t offset, std::size_t size) {
    index id;
    if (!spare_.empty()) {
      id = spare_.back();
      spare_.pop_back();
      blocks_[id] = block_record{};
    } else {
      id = static_cast<index>(blocks_.size());
      blocks_.emplace_back();
    }
    blocks_[id].offset = offset;
    blocks_[id].size = size;
    return id;
  }

  // Puts record `block` just before `next` in address order.
  void link_before(index block, index next) {
    index const previous = blocks_[next].previous;
    blocks_[block].previous = previous;
    blocks_[block].next = next;
    blocks_[next].previous = block;
    if (previous != none)
      blocks_[previous].next = block;
    else
      head_ = block;
  }

  // Takes record `block` out of the address list and recycles it.
  void unlink(index block) {
    index const previous = blocks_[block].previous;
    index const next = blocks_[block].next;
    if (previous != none)
      blocks_[previous].next = next;
    else
      head_ = next;
    if (next != none) blocks_[next].previous = previous;
    spare_.push_back(block);
  }

  // Gives free block `block` a new extent and owner; it moves between bins only
  // when its owner or size class changes.
  void resize_free(index block, std::size_t offset, std::size_t size, std::uint32_t owner) {
    block_record& record = blocks_[block];
    if (record.owner == owner && bin_of(size) == record.bin) {
      owners_[owner].free_bytes = owners_[owner].free_bytes - record.size + size;
      record.offset = offset;
      record.size = size;
      return;
    }
    pop_free(block);
    blocks_[block].offset = offset;
    blocks_[block].size = size;
    push_free(block, owner);
  }

  void push_free(index block, std::uint32_t owner) {
    block_record& record = blocks_[block];
    owner_bins& bins = owners_[owner];
    unsigned const bin = bin_of(record.size);
    record.free = true;
    record.owner = owner;
    record.bin = static_cast<std::uint8_t>(bin);
    record.previous_free = none;
    record.next_free = bins.heads[bin];
    if (record.next_free != none) blocks_[record.next_free].previous_free = block;
    bins.heads[bin] = block;
    bins.nonempty |= std::uint64_t{1} << bin;
    bins.free_bytes += record.size;
  }

  void pop_free(index block) {
    block_record& record = blocks_[block];
    owner_bins& bins = owners_[record.owner];
    unsigned const bin = record.bin;
    if (record.previous_free != none)
      blocks_[record.previous_free].next_free = record.next_free;
    else
      bins.heads[bin] = record.next_free;
    if (record.next_free != none) blocks_[record.next_free].previous_free = record.previous_free;
    if (bins.heads[bin] == none) bins.nonempty &= ~(std::uint64_t{1} << bin);
    bins.free_bytes -= record.size;
    record.previous_free = record.next_free = none;
  }

  std::size_t capacity_;
  std::size_t in_use_ = 0;
  index head_ = none;
  std::vector<block_record> blocks_;
  std::vector<index> spare_;
  std::vector<owner_bins> owners_;
  address_map live_;
};

} // namespace hydra::detail
