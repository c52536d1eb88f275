// The first layer of a model: nothing upstream reads its input gradient (the
// trainer sends a shard's input gradient on only to an earlier shard), so a
// layer that can skip computing it is built to. For a dense layer on 784
// inputs that is a sixth of an MLP step's GEMM work.
#pragma once

#include <type_traits>
#include <utility>

namespace hydra::layers {

// Passed to a layer's constructor: backward leaves input_gradient unwritten.
struct skip_input_gradient_t {
  explicit skip_input_gradient_t() = default;
};
inline constexpr skip_input_gradient_t skip_input_gradient{};

// Layer(args..., skip_input_gradient) where Layer offers it, else Layer(args...).
template <class Layer, class... Args>
Layer make_first_layer(Args&&... args) {
  if constexpr (std::is_constructible_v<Layer, Args..., skip_input_gradient_t>)
    return Layer(std::forward<Args>(args)..., skip_input_gradient);
  else
    return Layer(std::forward<Args>(args)...);
}

} // namespace hydra::layers
