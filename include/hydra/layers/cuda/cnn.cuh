// The convolutional model of hydra/layers/cnn.hpp on the CUDA backend: the host
// make_cnn's layers and parameter layout (so the two train the same model from
// the same initial parameters), with cudnn_conv2d, cudnn_max_pool2d,
// cudnn_relu, cublas_dense and the CUDA loss.
#pragma once

#if !defined(__CUDACC__)
#error "hydra/layers/cuda/cnn.cuh uses the CUDA loss kernels: include it from a .cu file compiled by nvcc"
#endif

#include <cstddef>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/layers/cnn.hpp"
#include "hydra/layers/cuda/cublas_dense.hpp"
#include "hydra/layers/cuda/cudnn_conv2d.hpp"
#include "hydra/layers/cuda/cudnn_max_pool2d.hpp"
#include "hydra/layers/cuda/cudnn_relu.hpp"
#include "hydra/layers/cuda/softmax_cross_entropy.cuh"

namespace hydra::cuda::layers {

inline sequential_model<cuda_execution_context> make_cnn(hydra::layers::cnn_shape const& shape, std::size_t batch) {
  return hydra::layers::make_cnn_of<cuda_execution_context, cudnn_conv2d, cudnn_max_pool2d, cudnn_relu, cublas_dense,
                                    softmax_cross_entropy>(shape, batch);
}

} // namespace hydra::cuda::layers
