// HYDRA_HOST_DEVICE marks functions that run on the host and, under nvcc, on the
// device too (the optimizers' elementwise updates); with g++ it expands to nothing.
#pragma once

#if defined(__CUDACC__)
#define HYDRA_HOST_DEVICE __host__ __device__
#else
#define HYDRA_HOST_DEVICE
#endif
