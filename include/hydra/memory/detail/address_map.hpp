// Live-allocation lookup for the pools: block offset -> block index, as an
// open-addressing hash table with linear probing and backward-shift deletion.
// Device memory cannot carry an inline header, so deallocate(stream, pointer)
// needs an out-of-band map; this one allocates only when it grows, which keeps
// allocate/free free of per-call heap traffic.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace hydra::detail {

class address_map {
public:
  address_map() { slots_.assign(initial_slots, slot{}); }

  // Keys are block offsets; they are unique among live blocks.
  void insert(std::uint64_t key, std::uint32_t value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(key, value);
    ++size_;
  }

  [[nodiscard]] std::optional<std::uint32_t> find(std::uint64_t key) const {
    for (std::size_t at = home(key);; at = next(at)) {
      if (slots_[at].key == empty) return std::nullopt;
      if (slots_[at].key == key) return slots_[at].value;
    }
  }

  // Removes `key`; returns whether it was present.
  bool erase(std::uint64_t key) {
    std::size_t at = home(key);
    for (;; at = next(at)) {
      if (slots_[at].key == empty) return false;
      if (slots_[at].key == key) break;
    }
    // Backward shift: pull later members of the probe run into the hole so that
    // lookups never need tombstones.
    std::size_t hole = at;
    for (std::size_t scan = next(hole);; scan = next(scan)) {
      if (slots_[scan].key == empty) break;
      std::size_t const wanted = home(slots_[scan].key);
      bool const movable = hole <= scan ? (wanted <= hole || wanted > scan) : (wanted <= hole && wanted > scan);
      if (movable) {
        slots_[hole] = slots_[scan];
        hole = scan;
      }
    }
    slots_[hole] = slot{};
    --size_;
    return true;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
  static constexpr std::uint64_t empty = ~std::uint64_t{0};
  static constexpr std::size_t initial_slots = 64;
  struct slot {
    std::uint64_t key = empty;
    std::uint32_t value = 0;
  };

  [[nodiscard]] std::size_t home(std::uint64_t key) const noexcept {
    // Offsets are multiples of 256: mix before masking (Fibonacci hashing).
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> (64 - std::countr_zero(slots_.size())));
  }
  [[nodiscard]] std::size_t next(std::size_t at) const noexcept { return (at + 1) & (slots_.size() - 1); }

  void place(std::uint64_t key, std::uint32_t value) {
    std::size_t at = home(key);
    while (slots_[at].key != empty) at = next(at);
    slots_[at] = slot{key, value};
  }

  void grow() {
    std::vector<slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (slot const& entry : old)
      if (entry.key != empty) place(entry.key, entry.value);
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

} // namespace hydra::detail
