// hydra with its CUDA parts: everything in hydra/hydra.hpp plus the CUDA
// backend's headers. Include this only in code built against the CUDA toolkit.
// (The CUDA backend itself arrives with the CUDA-backend issue; for now this
// brings in the status checks for the CUDA runtime, cuBLAS and cuDNN.)
#pragma once

#include "hydra/hydra.hpp"

#include "hydra/backend/cuda/status.hpp"
