// The examples' multilayer perceptron on the CUDA backend: the host make_mlp's
// layers and parameter layout (so the two train the same model from the same
// initial parameters), with cublas_dense, cudnn_relu and the CUDA loss.
#pragma once

#if !defined(__CUDACC__)
#error "hydra/layers/cuda/mlp.cuh uses the CUDA loss kernels: include it from a .cu file compiled by nvcc"
#endif

#include <cstddef>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/graph/any_layer.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/layers/cuda/cublas_dense.hpp"
#include "hydra/layers/cuda/cudnn_relu.hpp"
#include "hydra/layers/cuda/softmax_cross_entropy.cuh"
#include "hydra/layers/mlp.hpp"

namespace hydra::cuda::layers {

inline sequential_model<cuda_execution_context> make_mlp(std::size_t inputs, std::size_t width, std::size_t depth,
                                                         std::size_t classes, std::size_t batch) {
  return hydra::layers::make_mlp_of<cuda_execution_context, cublas_dense, cudnn_relu, softmax_cross_entropy>(
      inputs, width, depth, classes, batch);
}

} // namespace hydra::cuda::layers
