// hydra with its CUDA parts, for translation units compiled by nvcc: everything
// in hydra/cuda.hpp plus what defines or launches device code (the CUDA loss,
// the bf16 dense layer, the CUDA MLP) and the trainers on the CUDA backend.
#pragma once

#if !defined(__CUDACC__)
#error "hydra/cuda.cuh is for .cu files compiled by nvcc; host code includes hydra/cuda.hpp"
#endif

#include "hydra/cuda.hpp"

#include "hydra/layers/cuda/cublas_dense_bf16.cuh"
#include "hydra/layers/cuda/cnn.cuh"
#include "hydra/layers/cuda/mlp.cuh"
#include "hydra/layers/cuda/softmax_cross_entropy.cuh"
#include "hydra/train/cuda/trainers.hpp"
