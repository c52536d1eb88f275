// Guard mode: each layer call runs on private copies of the regions hydra bound
// for it, each between two canaries. A layer's regions are packed next to each
// other inside one block of a shard's extent or scratch, so a layer that
// writes past its footprint would otherwise overwrite its neighbour's
// parameters or activations silently (a sanitizer sees the pool's blocks, not
// the regions packed inside one). Here the copy is made, and the canaries set,
// on the stream before the layer's work; after it, the canaries are checked, the
// regions the layer may only read are compared with what they were copied
// from, and what the layer writes is copied back. A damaged canary, or a
// changed read-only region, fails the model, naming the layer and the region.
// Under AddressSanitizer the canaries are also poisoned, so that the write
// itself is reported, with the layer's code on its stack.
//
// The copies are host memory: guard mode is for host layers (the host backend).
// It costs a copy of every bound region per layer call; the arithmetic is the
// layer's own, so the weights are the same as without it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/layer.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HYDRA_GUARD_POISON(address, size) ASAN_POISON_MEMORY_REGION(address, size)
#define HYDRA_GUARD_UNPOISON(address, size) ASAN_UNPOISON_MEMORY_REGION(address, size)
#else
#define HYDRA_GUARD_POISON(address, size) ((void)(address), (void)(size))
#define HYDRA_GUARD_UNPOISON(address, size) ((void)(address), (void)(size))
#endif

namespace hydra::detail {

// AddressSanitizer builds guard host layers unless told not to: there the
// canaries are poisoned, so an overrun is reported where it happens, with the
// layer's code on the stack. Without guard mode ASan could not see it: the
// regions of neighbouring layers share one live pool block.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool guard_layers_by_default = true;
#else
inline constexpr bool guard_layers_by_default = false;
#endif

class layer_guard {
public:
  static constexpr std::size_t canary_bytes = 64;
  static constexpr std::uint8_t canary_value = 0xA5;

  // `who` names the layer in errors ("layer 3 (dense 32x10)").
  explicit layer_guard(std::string who) : who_(std::move(who)) {}
  layer_guard(layer_guard const&) = delete;
  layer_guard& operator=(layer_guard const&) = delete;
  ~layer_guard() {
    if (buffer_) HYDRA_GUARD_UNPOISON(buffer_.get(), size_);
  }

  // What the layer may do with a region.
  enum class access : std::uint8_t {
    read,    // compared afterwards with what it was copied from
    write,   // copied back afterwards
    scratch, // neither (the workspace)
  };

  // Adds a region of `bytes` at `original` (nullptr: not bound, stays null);
  // returns its index, for shadow(). Every region is added before allocate().
  std::size_t add(char const* what, void const* original, std::size_t bytes, access may) {
    regions_.push_back({what, static_cast<std::byte*>(const_cast<void*>(original)), bytes, may, 0});
    return regions_.size() - 1;
  }

  // Adds the region `field` points at, and once allocate() has run, points
  // `field` at its copy instead.
  template <class T>
  void bind(char const* what, T*& field, std::size_t bytes, access may) {
    std::size_t const k = add(what, field, bytes, may);
    rebind_.push_back([this, k, &field] { field = shadow<T>(k); });
  }

  // Lays the regions out in one buffer: [canary | region | canary] each, and
  // points the bound fields at their copies.
  void allocate() {
    std::size_t at = 0;
    for (auto& region : regions_) {
      if (region.original == nullptr) continue;
      region.offset = at + canary_bytes;
      at = align_up(region.offset + region.bytes + canary_bytes, alignment);
    }
    size_ = std::max<std::size_t>(at, alignment);
    buffer_.reset(static_cast<std::byte*>(::operator new[](size_, std::align_val_t{alignment})));
    std::memset(buffer_.get(), canary_value, size_);
    for (auto const& rebind : rebind_) rebind();
    rebind_.clear();
  }

  // The copy the layer is given in place of region k.
  template <class T>
  [[nodiscard]] T* shadow(std::size_t k) const {
    auto const& region = regions_[k];
    return region.original == nullptr ? nullptr : reinterpret_cast<T*>(buffer_.get() + region.offset);
  }

  // On the stream, before the layer's work: the regions' contents in, the canaries set.
  void fill() {
    for (auto const& region : regions_) {
      if (region.original == nullptr) continue;
      if (region.bytes != 0) std::memcpy(buffer_.get() + region.offset, region.original, region.bytes);
      HYDRA_GUARD_POISON(buffer_.get() + region.offset - canary_bytes, canary_bytes);
      HYDRA_GUARD_POISON(buffer_.get() + region.offset + region.bytes, canary_bytes);
    }
  }

  // On the stream, after the layer's work: the canaries checked, then what the
  // layer wrote copied back. Throws hydra::error naming the layer and the region.
  void check_and_return() {
    HYDRA_GUARD_UNPOISON(buffer_.get(), size_);
    for (auto const& region : regions_) {
      if (region.original == nullptr) continue;
      std::byte const* const data = buffer_.get() + region.offset;
      // The farthest damaged byte on each side tells how far out the write went.
      for (std::size_t k = canary_bytes; k-- > 0;)
        if (data[region.bytes + k] != std::byte{canary_value}) fail(region, k + 1, "after its end");
      for (std::size_t k = canary_bytes; k-- > 0;)
        if (data[-static_cast<std::ptrdiff_t>(k) - 1] != std::byte{canary_value}) fail(region, k + 1, "before it");
    }
    for (auto const& region : regions_) {
      if (region.original == nullptr || region.may != access::read || region.bytes == 0) continue;
      if (std::memcmp(region.original, buffer_.get() + region.offset, region.bytes) != 0) {
        std::string message = who_;
        throw error(message.append(" wrote into its ").append(region.what).append(", which it may only read"));
      }
    }
    for (auto const& region : regions_)
      if (region.original != nullptr && region.may == access::write && region.bytes != 0)
        std::memcpy(region.original, buffer_.get() + region.offset, region.bytes);
  }

private:
  static constexpr std::size_t alignment = 64;

  struct region_entry {
    char const* what;
    std::byte* original;
    std::size_t bytes;
    access may;
    std::size_t offset; // of its data in buffer_
  };

  [[noreturn]] void fail(region_entry const& region, std::size_t distance, char const* where) const {
    std::string message = who_;
    message.append(" wrote outside its ")
        .append(region.what)
        .append(": ")
        .append(distance == canary_bytes ? "at least " : "")
        .append(std::to_string(distance))
        .append(distance == 1 ? " byte " : " bytes ")
        .append(where)
        .append(" (the region is ")
        .append(format_bytes(region.bytes))
        .append(", as the layer's footprint gives it)");
    throw error(message);
  }

  std::string who_;
  std::vector<region_entry> regions_;
  std::vector<std::function<void()>> rebind_; // until allocate()
  struct aligned_delete {
    void operator()(std::byte* memory) const noexcept { ::operator delete[](memory, std::align_val_t{alignment}); }
  };
  std::unique_ptr<std::byte, aligned_delete> buffer_;
  std::size_t size_ = 0;
};

// `call()`, which enqueues a layer's work on the copies, between the guard's
// copy-in and its check on `context`'s stream. The last of the three to run
// holds the guard, and with it the copies, until it has run.
template <class Context, class Call>
void run_guarded(Context& context, std::shared_ptr<layer_guard> const& guard, Call&& call) {
  context.enqueue([guard] { guard->fill(); });
  call();
  context.enqueue([guard] { guard->check_and_return(); });
}

// A layer's forward (backward) called on guarded copies of its arguments on
// `context`'s stream; `who` names it in errors.
template <class Layer, class Context>
void guarded_forward(Layer const& layer, Context& context, forward_arguments const& arguments, std::string who) {
  auto const shape = layer.footprint(arguments.batch);
  std::size_t const in = arguments.batch * shape.input_features * sizeof(float),
                    out = arguments.batch * shape.output_features * sizeof(float),
                    parameters = shape.parameter_count * sizeof(float);
  auto guard = std::make_shared<layer_guard>(std::move(who));
  using access = layer_guard::access;
  forward_arguments shadowed = arguments;
  guard->bind("input", shadowed.input, in, access::read);
  guard->bind("output", shadowed.output, out, access::write);
  guard->bind("parameters", shadowed.parameters, parameters, access::read);
  guard->bind("workspace", shadowed.workspace, shape.workspace_bytes, access::scratch);
  guard->bind("labels", shadowed.labels, arguments.batch * sizeof(std::int32_t), access::read);
  guard->allocate();
  run_guarded(context, guard, [&] { layer.forward(context, shadowed); });
}

template <class Layer, class Context>
void guarded_backward(Layer const& layer, Context& context, backward_arguments const& arguments, std::string who) {
  auto const shape = layer.footprint(arguments.batch);
  std::size_t const in = arguments.batch * shape.input_features * sizeof(float),
                    out = arguments.batch * shape.output_features * sizeof(float),
                    parameters = shape.parameter_count * sizeof(float);
  auto guard = std::make_shared<layer_guard>(std::move(who));
  using access = layer_guard::access;
  backward_arguments shadowed = arguments;
  guard->bind("input", shadowed.input, in, access::read);
  guard->bind("output", shadowed.output, out, access::read);
  guard->bind("output gradient", shadowed.output_gradient, out, access::read);
  guard->bind("input gradient", shadowed.input_gradient, in, access::write);
  guard->bind("parameters", shadowed.parameters, parameters, access::read);
  guard->bind("parameter gradients", shadowed.parameter_gradients, parameters, access::write);
  guard->bind("workspace", shadowed.workspace, shape.workspace_bytes, access::scratch);
  guard->bind("labels", shadowed.labels, arguments.batch * sizeof(std::int32_t), access::read);
  guard->allocate();
  run_guarded(context, guard, [&] { layer.backward(context, shadowed); });
}

} // namespace hydra::detail

#undef HYDRA_GUARD_POISON
#undef HYDRA_GUARD_UNPOISON
