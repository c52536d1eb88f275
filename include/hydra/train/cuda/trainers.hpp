// The trainers on the CUDA backend. The aliases compile with g++; training
// instantiates the optimizers' Thrust transforms on the compute stream
// (cuda_execution_context::run_thrust), so a translation unit that trains must
// be compiled by nvcc (a .cu file; include "hydra/cuda.cuh").
#pragma once

#include "hydra/backend/cuda/cuda_backend.hpp"
#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/train/multi_model_trainer.hpp"
#include "hydra/train/optimizer.hpp"
#include "hydra/train/single_model_trainer.hpp"

namespace hydra::cuda {

using model_config = basic_model_config<cuda_execution_context>;
using multi_model_trainer = basic_multi_model_trainer<cuda_backend, cuda_execution_context>;

template <optimizer Optimizer>
using single_model_trainer = hydra::single_model_trainer<Optimizer, cuda_backend, cuda_execution_context>;

} // namespace hydra::cuda
