// cuDNN descriptors as scoped objects for the CUDA layers: made for one call
// (they are cheap host-side structs), destroyed at scope end, errors reported
// through HYDRA_CHECK with file and line.
#pragma once

#include <cudnn.h>

#include <cstddef>

#include "hydra/backend/cuda/status.hpp"

namespace hydra::cuda::layers::detail {

// A fp32 NCHW tensor; [n, c, 1, 1] is a [batch x features] matrix.
class tensor_nchw {
public:
  tensor_nchw(std::size_t n, std::size_t c, std::size_t h = 1, std::size_t w = 1) {
    HYDRA_CHECK(cudnnCreateTensorDescriptor(&descriptor_));
    HYDRA_CHECK(cudnnSetTensor4dDescriptor(descriptor_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(n),
                                           static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)));
  }
  tensor_nchw(tensor_nchw const&) = delete;
  tensor_nchw& operator=(tensor_nchw const&) = delete;
  ~tensor_nchw() { static_cast<void>(cudnnDestroyTensorDescriptor(descriptor_)); }
  [[nodiscard]] cudnnTensorDescriptor_t get() const noexcept { return descriptor_; }

private:
  cudnnTensorDescriptor_t descriptor_ = nullptr;
};

// A fp32 filter [k output channels, c input channels, r rows, s columns].
class filter_kcrs {
public:
  filter_kcrs(std::size_t k, std::size_t c, std::size_t r, std::size_t s) {
    HYDRA_CHECK(cudnnCreateFilterDescriptor(&descriptor_));
    HYDRA_CHECK(cudnnSetFilter4dDescriptor(descriptor_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, static_cast<int>(k),
                                           static_cast<int>(c), static_cast<int>(r), static_cast<int>(s)));
  }
  filter_kcrs(filter_kcrs const&) = delete;
  filter_kcrs& operator=(filter_kcrs const&) = delete;
  ~filter_kcrs() { static_cast<void>(cudnnDestroyFilterDescriptor(descriptor_)); }
  [[nodiscard]] cudnnFilterDescriptor_t get() const noexcept { return descriptor_; }

private:
  cudnnFilterDescriptor_t descriptor_ = nullptr;
};

// Square padding and stride, no dilation, cross-correlation, fp32 math (no TF32).
class convolution_2d {
public:
  convolution_2d(std::size_t padding, std::size_t stride) {
    HYDRA_CHECK(cudnnCreateConvolutionDescriptor(&descriptor_));
    HYDRA_CHECK(cudnnSetConvolution2dDescriptor(descriptor_, static_cast<int>(padding), static_cast<int>(padding),
                                                static_cast<int>(stride), static_cast<int>(stride), 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    // fp32 FMA kernels only: CUDNN_DEFAULT_MATH would let cuDNN pick TF32
    // tensor-core kernels on Ampere and later (about 1e-3 relative error,
    // against the 1e-4 the layer is held to).
    HYDRA_CHECK(cudnnSetConvolutionMathType(descriptor_, CUDNN_FMA_MATH));
  }
  convolution_2d(convolution_2d const&) = delete;
  convolution_2d& operator=(convolution_2d const&) = delete;
  ~convolution_2d() { static_cast<void>(cudnnDestroyConvolutionDescriptor(descriptor_)); }
  [[nodiscard]] cudnnConvolutionDescriptor_t get() const noexcept { return descriptor_; }

private:
  cudnnConvolutionDescriptor_t descriptor_ = nullptr;
};

// Square max pooling, deterministic backward.
class max_pooling_2d {
public:
  max_pooling_2d(std::size_t window, std::size_t stride) {
    HYDRA_CHECK(cudnnCreatePoolingDescriptor(&descriptor_));
    HYDRA_CHECK(cudnnSetPooling2dDescriptor(descriptor_, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN,
                                            static_cast<int>(window), static_cast<int>(window), 0, 0,
                                            static_cast<int>(stride), static_cast<int>(stride)));
  }
  max_pooling_2d(max_pooling_2d const&) = delete;
  max_pooling_2d& operator=(max_pooling_2d const&) = delete;
  ~max_pooling_2d() { static_cast<void>(cudnnDestroyPoolingDescriptor(descriptor_)); }
  [[nodiscard]] cudnnPoolingDescriptor_t get() const noexcept { return descriptor_; }

private:
  cudnnPoolingDescriptor_t descriptor_ = nullptr;
};

// ReLU, exactly max(x, 0).
class relu_activation {
public:
  relu_activation() {
    HYDRA_CHECK(cudnnCreateActivationDescriptor(&descriptor_));
    HYDRA_CHECK(cudnnSetActivationDescriptor(descriptor_, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  }
  relu_activation(relu_activation const&) = delete;
  relu_activation& operator=(relu_activation const&) = delete;
  ~relu_activation() { static_cast<void>(cudnnDestroyActivationDescriptor(descriptor_)); }
  [[nodiscard]] cudnnActivationDescriptor_t get() const noexcept { return descriptor_; }

private:
  cudnnActivationDescriptor_t descriptor_ = nullptr;
};

} // namespace hydra::cuda::layers::detail
