// A 2-D convolution on the CUDA backend with cuDNN (fp32, cross-correlation as
// in every deep-learning framework), plus a per-channel bias.
//
// Layout: a sample's row of the [batch x features] activation matrix is its
// image in CHW order, so [batch x C*H*W] is exactly cuDNN's NCHW tensor and no
// transposition is needed between layers. Parameters: the filter [K x C x R x S]
// (KCRS, cuDNN's NCHW filter layout), then the bias [K].
//
// Algorithms: the footprint has to state the workspace before any GPU is
// touched (the partitioner plans on it), so the layer uses algorithms that need
// none: implicit GEMM forward, ALGO_0 backward for data and filter. The
// backward ones accumulate with atomics: results are not bitwise repeatable
// from run to run, and GPU tests compare within a tolerance. Each call checks
// the workspace cuDNN asks for against what the footprint declared and refuses
// with the layer's name if a cuDNN version ever wants more.
//
// The legacy cuDNN calls (cudnnConvolutionForward and friends) are deprecated
// in cuDNN 9 in favour of the graph API but fully supported; they are used here
// for their stable, small surface.
#pragma once

#include <cudnn.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/backend/cuda/status.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/cuda/cudnn_descriptors.hpp"

namespace hydra::cuda::layers {

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

class cudnn_conv2d {
public:
  cudnn_conv2d(image_shape input, std::size_t output_channels, conv2d_options options = {})
      : input_(input), options_(options) {
    hydra::detail::expects(input.channels > 0 && input.height > 0 && input.width > 0 && output_channels > 0,
                           "cudnn_conv2d: every dimension must be at least 1");
    hydra::detail::expects(options.kernel > 0 && options.stride > 0, "cudnn_conv2d: kernel and stride must be >= 1");
    hydra::detail::expects(options.kernel <= input.height + 2 * options.padding &&
                               options.kernel <= input.width + 2 * options.padding,
                           "cudnn_conv2d: a " + std::to_string(options.kernel) + "x" + std::to_string(options.kernel) +
                               " kernel is larger than the padded " + std::to_string(input.height) + "x" +
                               std::to_string(input.width) + " image");
    output_ = {output_channels, (input.height + 2 * options.padding - options.kernel) / options.stride + 1,
               (input.width + 2 * options.padding - options.kernel) / options.stride + 1};
  }

  [[nodiscard]] std::string name() const {
    return "cudnn conv2d " + std::to_string(input_.channels) + "x" + std::to_string(input_.height) + "x" +
           std::to_string(input_.width) + " -> " + std::to_string(output_.channels) + "x" +
           std::to_string(output_.height) + "x" + std::to_string(output_.width) + " (" +
           std::to_string(options_.kernel) + "x" + std::to_string(options_.kernel) + ")";
  }

  [[nodiscard]] image_shape output_shape() const noexcept { return output_; }
  [[nodiscard]] std::size_t filter_count() const noexcept {
    return output_.channels * input_.channels * options_.kernel * options_.kernel;
  }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    double const macs =
        static_cast<double>(batch * output_.features() * input_.channels * options_.kernel * options_.kernel);
    return {.parameter_count = filter_count() + output_.channels,
            .input_features = input_.features(),
            .output_features = output_.features(),
            .workspace_bytes = 0,
            .flops = 6.0 * macs}; // forward 2, backward data 2, backward filter 2 per multiply-add
  }

  // He-uniform filters (fan-in C*R*S), zero bias.
  void initialize(float* parameters, std::uint64_t seed) const {
    std::mt19937_64 random(seed);
    float const limit = std::sqrt(6.0F / static_cast<float>(input_.channels * options_.kernel * options_.kernel));
    std::uniform_real_distribution<float> pick(-limit, limit);
    for (std::size_t i = 0; i < filter_count(); ++i) parameters[i] = pick(random);
    for (std::size_t k = 0; k < output_.channels; ++k) parameters[filter_count() + k] = 0.0F;
  }

  void forward(cuda_execution_context& c, forward_arguments const& a) const {
    descriptors const d(*this, a.batch);
    float const one = 1.0F, zero = 0.0F;
    require_no_workspace("forward", [&](std::size_t* bytes) {
      return cudnnGetConvolutionForwardWorkspaceSize(c.cudnn(), d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                     forward_algorithm, bytes);
    });
    HYDRA_CHECK(cudnnConvolutionForward(c.cudnn(), &one, d.x.get(), a.input, d.w.get(), a.parameters, d.conv.get(),
                                        forward_algorithm, nullptr, 0, &zero, d.y.get(), a.output));
    HYDRA_CHECK(
        cudnnAddTensor(c.cudnn(), &one, d.bias.get(), a.parameters + filter_count(), &one, d.y.get(), a.output));
  }

  void backward(cuda_execution_context& c, backward_arguments const& a) const {
    descriptors const d(*this, a.batch);
    float const one = 1.0F, zero = 0.0F;
    require_no_workspace("backward filter", [&](std::size_t* bytes) {
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(c.cudnn(), d.x.get(), d.y.get(), d.conv.get(), d.w.get(),
                                                            filter_algorithm, bytes);
    });
    require_no_workspace("backward data", [&](std::size_t* bytes) {
      return cudnnGetConvolutionBackwardDataWorkspaceSize(c.cudnn(), d.w.get(), d.y.get(), d.conv.get(), d.x.get(),
                                                          data_algorithm, bytes);
    });
    HYDRA_CHECK(cudnnConvolutionBackwardFilter(c.cudnn(), &one, d.x.get(), a.input, d.y.get(), a.output_gradient,
                                               d.conv.get(), filter_algorithm, nullptr, 0, &zero, d.w.get(),
                                               a.parameter_gradients));
    HYDRA_CHECK(cudnnConvolutionBackwardBias(c.cudnn(), &one, d.y.get(), a.output_gradient, &zero, d.bias.get(),
                                             a.parameter_gradients + filter_count()));
    HYDRA_CHECK(cudnnConvolutionBackwardData(c.cudnn(), &one, d.w.get(), a.parameters, d.y.get(), a.output_gradient,
                                             d.conv.get(), data_algorithm, nullptr, 0, &zero, d.x.get(),
                                             a.input_gradient));
  }

private:
  static constexpr cudnnConvolutionFwdAlgo_t forward_algorithm = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  static constexpr cudnnConvolutionBwdDataAlgo_t data_algorithm = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
  static constexpr cudnnConvolutionBwdFilterAlgo_t filter_algorithm = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;

  // Everything cuDNN needs for one batch size, destroyed at scope end.
  struct descriptors {
    descriptors(cudnn_conv2d const& layer, std::size_t batch)
        : x(batch, layer.input_.channels, layer.input_.height, layer.input_.width),
          y(batch, layer.output_.channels, layer.output_.height, layer.output_.width),
          bias(1, layer.output_.channels, 1, 1),
          w(layer.output_.channels, layer.input_.channels, layer.options_.kernel, layer.options_.kernel),
          conv(layer.options_.padding, layer.options_.stride) {}
    detail::tensor_nchw x, y, bias;
    detail::filter_kcrs w;
    detail::convolution_2d conv;
  };

  template <class Query>
  void require_no_workspace(char const* pass, Query&& query) const {
    std::size_t bytes = 0;
    HYDRA_CHECK(query(&bytes));
    if (bytes > 0) {
      throw error(name() + ": cuDNN asks for " + std::to_string(bytes) + " bytes of workspace for its " + pass +
                  " algorithm; the layer declared 0 (this cuDNN version differs from the one hydra was written for)");
    }
  }

  image_shape input_;
  conv2d_options options_;
  image_shape output_{};
};

static_assert(layer<cudnn_conv2d, cuda_execution_context>);

} // namespace hydra::cuda::layers
