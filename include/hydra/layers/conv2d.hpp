// A 2-D convolution on the host backend (fp32, cross-correlation as in every
// deep-learning framework), plus a per-channel bias: im2col, then the host GEMM
// (layers/detail/gemm.hpp), one sample at a time.
//
// Layout, the CUDA convolution's: a sample's row of the [batch x features]
// activation matrix is its image in CHW order (so [batch x C*H*W] is NCHW);
// parameters are the filter [K x C x R x S], then the bias [K]. With the
// filter as a [K x CRS] matrix and one sample's columns as [CRS x PQ] (im2col:
// column (p, q) holds the input patch under output pixel (p, q), zeros where it
// overhangs the padding), one sample is
//   forward   y  = W cols + b                           [K x PQ], CHW already
//   backward  dW += dy cols^T,  db += the row sums of dy,
//             dcols = W^T dy, added back into dx (col2im)
// The workspace holds one sample's columns: C*R*S*P*Q floats.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/detail/gemm.hpp"
#include "hydra/layers/input_gradient.hpp"

namespace hydra::layers {

// Channels x height x width of one sample.
struct image_shape {
  std::size_t channels = 0, height = 0, width = 0;
  [[nodiscard]] std::size_t features() const noexcept { return channels * height * width; }
  friend bool operator==(image_shape const&, image_shape const&) = default;
};

struct conv2d_options {
  std::size_t kernel = 3;  // R = S
  std::size_t stride = 1;  // both directions
  std::size_t padding = 1; // zeros on every side
};

class conv2d {
public:
  // As a model's first layer: backward computes no dx (see input_gradient.hpp).
  conv2d(image_shape input, std::size_t output_channels, skip_input_gradient_t)
      : conv2d(input, output_channels, conv2d_options{}) {
    input_gradient_ = false;
  }
  conv2d(image_shape input, std::size_t output_channels, conv2d_options options, skip_input_gradient_t)
      : conv2d(input, output_channels, options) {
    input_gradient_ = false;
  }

  conv2d(image_shape input, std::size_t output_channels, conv2d_options options = {})
      : input_(input), options_(options) {
    hydra::detail::expects(input.channels > 0 && input.height > 0 && input.width > 0 && output_channels > 0,
                           "conv2d: every dimension must be at least 1");
    hydra::detail::expects(options.kernel > 0 && options.stride > 0, "conv2d: kernel and stride must be >= 1");
    hydra::detail::expects(options.kernel <= input.height + 2 * options.padding &&
                               options.kernel <= input.width + 2 * options.padding,
                           "conv2d: a " + std::to_string(options.kernel) + "x" + std::to_string(options.kernel) +
                               " kernel is larger than the padded " + std::to_string(input.height) + "x" +
                               std::to_string(input.width) + " image");
    output_ = {output_channels, (input.height + 2 * options.padding - options.kernel) / options.stride + 1,
               (input.width + 2 * options.padding - options.kernel) / options.stride + 1};
  }

  [[nodiscard]] std::string name() const {
    return "conv2d " + std::to_string(input_.channels) + "x" + std::to_string(input_.height) + "x" +
           std::to_string(input_.width) + " -> " + std::to_string(output_.channels) + "x" +
           std::to_string(output_.height) + "x" + std::to_string(output_.width) + " (" +
           std::to_string(options_.kernel) + "x" + std::to_string(options_.kernel) + ")";
  }

  [[nodiscard]] image_shape input_shape() const noexcept { return input_; }
  [[nodiscard]] image_shape output_shape() const noexcept { return output_; }
  [[nodiscard]] conv2d_options options() const noexcept { return options_; }
  [[nodiscard]] std::size_t filter_count() const noexcept { return output_.channels * patch_size(); }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    double const macs = static_cast<double>(batch * output_.features() * patch_size());
    return {.parameter_count = filter_count() + output_.channels,
            .input_features = input_.features(),
            .output_features = output_.features(),
            .workspace_bytes = patch_size() * pixels() * sizeof(float),
            .flops = (input_gradient_ ? 6.0 : 4.0) * macs}; // forward 2, filter 2, data 2 per multiply-add
  }

  // He-uniform filters (fan-in C*R*S), zero bias: the CUDA convolution's rule.
  void initialize(float* parameters, std::uint64_t seed) const {
    std::mt19937_64 random(seed);
    float const limit = std::sqrt(6.0F / static_cast<float>(patch_size()));
    std::uniform_real_distribution<float> pick(-limit, limit);
    for (std::size_t i = 0; i < filter_count(); ++i) parameters[i] = pick(random);
    for (std::size_t k = 0; k < output_.channels; ++k) parameters[filter_count() + k] = 0.0F;
  }

  void forward(host_execution_context& context, forward_arguments const& a) const {
    context.enqueue([layer = *this, a] { layer.forward_kernel(a); });
  }

  void backward(host_execution_context& context, backward_arguments const& a) const {
    backward_arguments bound = a;
    if (!input_gradient_) bound.input_gradient = nullptr;
    context.enqueue([layer = *this, bound] { layer.backward_kernel(bound); });
  }

  void forward_kernel(forward_arguments const& a) const {
    auto* columns = static_cast<float*>(a.workspace);
    float const* bias = a.parameters + filter_count();
    std::size_t const K = output_.channels, PQ = pixels(), CRS = patch_size();
    for (std::size_t n = 0; n < a.batch; ++n) {
      float* y = a.output + n * output_.features();
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t at = 0; at < PQ; ++at) y[k * PQ + at] = bias[k];
      image_to_columns(a.input + n * input_.features(), columns);
      detail::gemm(detail::transpose::no, detail::transpose::no, K, PQ, CRS, a.parameters, CRS, columns, PQ,
                   /*accumulate=*/true, y, PQ);
    }
  }

  // A null input_gradient skips dx (nothing upstream wants it).
  void backward_kernel(backward_arguments const& a) const {
    auto* columns = static_cast<float*>(a.workspace);
    float* bias_gradient = a.parameter_gradients + filter_count();
    std::size_t const K = output_.channels, PQ = pixels(), CRS = patch_size();
    for (std::size_t k = 0; k < K; ++k) bias_gradient[k] = 0.0F;
    for (std::size_t n = 0; n < a.batch; ++n) {
      float const* dy = a.output_gradient + n * output_.features();
      image_to_columns(a.input + n * input_.features(), columns);
      detail::gemm(detail::transpose::no, detail::transpose::yes, K, CRS, PQ, dy, PQ, columns, PQ,
                   /*accumulate=*/n > 0, a.parameter_gradients, CRS);
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t at = 0; at < PQ; ++at) bias_gradient[k] += dy[k * PQ + at];
      if (a.input_gradient == nullptr) continue;
      detail::gemm(detail::transpose::yes, detail::transpose::no, CRS, PQ, K, a.parameters, CRS, dy, PQ,
                   /*accumulate=*/false, columns, PQ);
      columns_to_image(columns, a.input_gradient + n * input_.features());
    }
    if (a.batch == 0)
      for (std::size_t i = 0; i < filter_count(); ++i) a.parameter_gradients[i] = 0.0F;
  }

private:
  [[nodiscard]] std::size_t patch_size() const noexcept { return input_.channels * options_.kernel * options_.kernel; }
  [[nodiscard]] std::size_t pixels() const noexcept { return output_.height * output_.width; }

  // Calls f(column row, input row or -1, first q, last q + 1, input column of q = 0)
  // for each (c, r, s, p): the output pixels q whose tap (r, s) falls inside the
  // image are [first, last); the input column of output pixel q is origin + q * stride.
  template <class Row>
  void for_each_row(Row&& row) const {
    auto const stride = static_cast<std::ptrdiff_t>(options_.stride);
    auto const padding = static_cast<std::ptrdiff_t>(options_.padding);
    auto const height = static_cast<std::ptrdiff_t>(input_.height), width = static_cast<std::ptrdiff_t>(input_.width);
    auto const Q = static_cast<std::ptrdiff_t>(output_.width);
    std::size_t index = 0;
    for (std::size_t c = 0; c < input_.channels; ++c)
      for (std::size_t r = 0; r < options_.kernel; ++r)
        for (std::size_t s = 0; s < options_.kernel; ++s, ++index) {
          std::ptrdiff_t const origin = static_cast<std::ptrdiff_t>(s) - padding; // input column of q = 0
          // Output columns whose input column origin + q * stride lies in [0, width).
          std::ptrdiff_t first = origin >= 0 ? 0 : (-origin + stride - 1) / stride;
          std::ptrdiff_t last = origin >= width ? 0 : (width - 1 - origin) / stride + 1;
          if (first > Q) first = Q;
          if (last > Q) last = Q;
          if (last < first) last = first;
          for (std::size_t p = 0; p < output_.height; ++p) {
            std::ptrdiff_t const h = static_cast<std::ptrdiff_t>(p) * stride + static_cast<std::ptrdiff_t>(r) - padding;
            std::ptrdiff_t const input_row = h < 0 || h >= height ? -1 : static_cast<std::ptrdiff_t>(c) * height + h;
            row(index * pixels() + p * output_.width, input_row, static_cast<std::size_t>(first),
                static_cast<std::size_t>(last), origin);
          }
        }
  }

  // One sample's [C x H x W] image to its [CRS x PQ] columns.
  void image_to_columns(float const* image, float* columns) const {
    std::size_t const W = input_.width, Q = output_.width, stride = options_.stride;
    for_each_row(
        [&](std::size_t at, std::ptrdiff_t input_row, std::size_t first, std::size_t last, std::ptrdiff_t origin) {
          float* out = columns + at;
          if (input_row < 0) {
            for (std::size_t q = 0; q < Q; ++q) out[q] = 0.0F;
            return;
          }
          for (std::size_t q = 0; q < first; ++q) out[q] = 0.0F;
          float const* in = image + static_cast<std::size_t>(input_row) * W +
                            static_cast<std::size_t>(origin + static_cast<std::ptrdiff_t>(first * stride));
          if (stride == 1) // contiguous: a copy the compiler vectorises
            for (std::size_t q = first; q < last; ++q) out[q] = in[q - first];
          else
            for (std::size_t q = first; q < last; ++q) out[q] = in[(q - first) * stride];
          for (std::size_t q = last; q < Q; ++q) out[q] = 0.0F;
        });
  }

  // Adds [CRS x PQ] columns back into one sample's [C x H x W] gradient, after
  // zeroing it: each input's sum runs over (c, r, s, p, q) in index order.
  void columns_to_image(float const* columns, float* image) const {
    for (std::size_t i = 0; i < input_.features(); ++i) image[i] = 0.0F;
    std::size_t const W = input_.width, stride = options_.stride;
    for_each_row(
        [&](std::size_t at, std::ptrdiff_t input_row, std::size_t first, std::size_t last, std::ptrdiff_t origin) {
          if (input_row < 0) return;
          float const* in = columns + at;
          float* out = image + static_cast<std::size_t>(input_row) * W +
                       static_cast<std::size_t>(origin + static_cast<std::ptrdiff_t>(first * stride));
          if (stride == 1)
            for (std::size_t q = first; q < last; ++q) out[q - first] += in[q];
          else
            for (std::size_t q = first; q < last; ++q) out[(q - first) * stride] += in[q];
        });
  }

  image_shape input_;
  conv2d_options options_;
  image_shape output_{};
  bool input_gradient_ = true;
};

static_assert(layer<conv2d, host_execution_context>);

} // namespace hydra::layers
