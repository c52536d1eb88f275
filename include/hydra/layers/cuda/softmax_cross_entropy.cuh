// Softmax cross-entropy loss on the CUDA backend: the host layer's contract
// (hydra/layers/softmax_cross_entropy.hpp) with one CUDA block per sample.
// Input: logits [batch x classes]; output: each sample's loss [batch x 1];
// backward writes d(mean loss)/d logits = (softmax - one_hot(label)) / batch.
// The row's maximum and its sum of exponentials are block reductions (warp
// shuffles, then one value per warp in shared memory), so any class count runs
// at full width: 10 Fashion-MNIST classes and a 50k vocabulary alike. It agrees
// with the host layer within float rounding (expf/logf and summation order).
//
// A .cuh header: it defines kernels, so only nvcc compiles it (include it from a
// .cu file). Everything else of hydra's CUDA backend compiles with g++.
#pragma once

#if !defined(__CUDACC__)
#error "hydra/layers/cuda/softmax_cross_entropy.cuh defines CUDA kernels: include it from a .cu file compiled by nvcc"
#endif

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/backend/cuda/status.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/softmax_cross_entropy.hpp"

namespace hydra::cuda::layers {

namespace detail {

inline constexpr unsigned loss_threads = 256; // per block; a multiple of the warp size

struct maximum {
  static constexpr float identity = -3.402823466e38F;
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct sum {
  static constexpr float identity = 0.0F;
  __device__ float operator()(float a, float b) const { return a + b; }
};

template <class Op>
__device__ float warp_reduce(float value, Op op) {
  for (int offset = 16; offset > 0; offset /= 2) value = op(value, __shfl_xor_sync(0xffffffffU, value, offset));
  return value;
}

// Every thread of the block gets op over the block's values.
template <class Op>
__device__ float block_reduce(float value, Op op) {
  __shared__ float per_warp[32];
  unsigned const lane = threadIdx.x % 32U, warp = threadIdx.x / 32U, warps = (blockDim.x + 31U) / 32U;
  value = warp_reduce(value, op);
  if (lane == 0) per_warp[warp] = value;
  __syncthreads();
  value = threadIdx.x < warps ? per_warp[threadIdx.x] : Op::identity;
  if (warp == 0) value = warp_reduce(value, op);
  if (threadIdx.x == 0) per_warp[0] = value;
  __syncthreads();
  float const all = per_warp[0];
  __syncthreads(); // per_warp is reused by the next reduction
  return all;
}

// Block b handles sample b. Forward writes its loss; backward its gradient row.
template <bool Backward>
__global__ void __launch_bounds__(loss_threads)
    softmax_cross_entropy_kernel(float const* logits, std::int32_t const* labels, std::size_t classes, float* out,
                                 float scale) {
  std::size_t const b = blockIdx.x;
  float const* z = logits + b * classes;
  float top = maximum::identity;
  for (std::size_t c = threadIdx.x; c < classes; c += blockDim.x) top = fmaxf(top, z[c]);
  top = block_reduce(top, maximum{});
  float partial = 0.0F;
  for (std::size_t c = threadIdx.x; c < classes; c += blockDim.x) partial += expf(z[c] - top);
  float const total = block_reduce(partial, sum{});
  auto const label = static_cast<std::size_t>(labels[b]);
  if constexpr (Backward) {
    float* dz = out + b * classes;
    for (std::size_t c = threadIdx.x; c < classes; c += blockDim.x)
      dz[c] = (expf(z[c] - top) / total - (c == label ? 1.0F : 0.0F)) * scale;
  } else {
    if (threadIdx.x == 0) out[b] = logf(total) - (z[label] - top);
  }
}

} // namespace detail

class softmax_cross_entropy {
public:
  static constexpr bool is_loss = true; // the loss-layer contract (hydra/graph/layer.hpp)
  explicit softmax_cross_entropy(std::size_t classes) : classes_(classes) {}

  [[nodiscard]] std::string name() const { return "cuda softmax cross-entropy " + std::to_string(classes_); }
  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    return hydra::layers::softmax_cross_entropy(classes_).footprint(batch);
  }
  void initialize(float*, std::uint64_t) const {}

  void forward(cuda_execution_context& c, forward_arguments const& a) const {
    if (a.batch == 0) return;
    detail::softmax_cross_entropy_kernel<false>
        <<<static_cast<unsigned>(a.batch), detail::loss_threads, 0, c.stream_handle()>>>(a.input, a.labels, classes_,
                                                                                         a.output, 1.0F);
    HYDRA_CHECK(cudaGetLastError());
  }

  void backward(cuda_execution_context& c, backward_arguments const& a) const {
    if (a.batch == 0) return;
    detail::softmax_cross_entropy_kernel<true>
        <<<static_cast<unsigned>(a.batch), detail::loss_threads, 0, c.stream_handle()>>>(
            a.input, a.labels, classes_, a.input_gradient, 1.0F / static_cast<float>(a.batch));
    HYDRA_CHECK(cudaGetLastError());
  }

private:
  std::size_t classes_;
};

static_assert(layer<softmax_cross_entropy, cuda_execution_context>);

} // namespace hydra::cuda::layers
