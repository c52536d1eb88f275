// hydra with its CUDA parts: everything in hydra/hydra.hpp plus the CUDA
// backend, its layers and the trainer aliases. Include this only in code built
// against the CUDA toolkit (host code using the runtime API compiles with g++
// alone; no nvcc needed). Code that trains, or uses the CUDA loss, is compiled
// by nvcc and includes hydra/cuda.cuh.
#pragma once

#include "hydra/hydra.hpp"

#include "hydra/backend/cuda/cuda_backend.hpp"
#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/backend/cuda/device.hpp"
#include "hydra/backend/cuda/pinned_host_memory.hpp"
#include "hydra/backend/cuda/status.hpp"

#include "hydra/layers/cuda/cublas_dense.hpp"
#include "hydra/layers/cuda/cudnn_conv2d.hpp"
#include "hydra/layers/cuda/cudnn_max_pool2d.hpp"
#include "hydra/layers/cuda/cudnn_relu.hpp"
#include "hydra/train/cuda/trainers.hpp"

namespace hydra {
static_assert(stream_ordered_resource<device_pool<cuda::cuda_backend>>);
static_assert(stream_ordered_resource<host_pool<cuda::cuda_backend>>);
} // namespace hydra
