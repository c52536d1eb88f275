// The fully connected layer with bf16 GEMMs and fp32 accumulation: the
// parameters, activations and gradients hydra stores stay fp32 (the optimizer
// updates fp32 master weights, as in mixed-precision training), and each call
// rounds the GEMM operands to bf16 in its workspace first, then runs
// cublasGemmEx with bf16 inputs, fp32 outputs and CUBLAS_COMPUTE_32F (tensor
// cores). Same parameter layout and footprint as cublas_dense, plus the
// workspace for the bf16 copies: 2 bytes x (inputs x outputs + batch x
// (inputs + outputs)). Results differ from fp32 by bf16 rounding (8 bits of
// mantissa): tests compare within 3e-2 relative.
//
// A .cuh header: the rounding is a kernel, so only nvcc compiles it.
#pragma once

#if !defined(__CUDACC__)
#error "hydra/layers/cuda/cublas_dense_bf16.cuh defines a CUDA kernel: include it from a .cu file compiled by nvcc"
#endif

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cudnn.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/backend/cuda/status.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/cuda/cudnn_descriptors.hpp"
#include "hydra/layers/dense.hpp"

namespace hydra::cuda::layers {

namespace detail {

// A template, like every kernel in hydra's headers: a non-template __global__
// function defined in a header breaks the one-definition rule across .cu files.
template <class Float>
__global__ void round_to_bf16(Float const* in, __nv_bfloat16* out, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}

inline __nv_bfloat16* to_bf16(cudaStream_t stream, float const* in, void* out, std::size_t n) {
  auto* rounded = static_cast<__nv_bfloat16*>(out);
  if (n == 0) return rounded;
  unsigned const blocks = static_cast<unsigned>(std::min<std::size_t>((n + 255) / 256, 4096));
  round_to_bf16<float><<<blocks, 256, 0, stream>>>(in, rounded, n);
  HYDRA_CHECK(cudaGetLastError());
  return rounded;
}

} // namespace detail

class cublas_dense_bf16 {
public:
  cublas_dense_bf16(std::size_t inputs, std::size_t outputs) : inputs_(inputs), outputs_(outputs) {}

  [[nodiscard]] std::string name() const {
    return "cublas dense bf16 " + std::to_string(inputs_) + "x" + std::to_string(outputs_);
  }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    layer_footprint f = hydra::layers::dense(inputs_, outputs_).footprint(batch);
    f.workspace_bytes = workspace_layout(batch).total;
    return f;
  }
  void initialize(float* parameters, std::uint64_t seed) const {
    hydra::layers::dense(inputs_, outputs_).initialize(parameters, seed);
  }

  // Y' = W' X' (see cublas_dense for the column-major view), then + b.
  void forward(cuda_execution_context& c, forward_arguments const& a) const {
    auto const at = workspace_layout(a.batch);
    auto* workspace = static_cast<std::byte*>(a.workspace);
    auto const* w = detail::to_bf16(c.stream_handle(), a.parameters, workspace + at.weights, inputs_ * outputs_);
    auto const* x = detail::to_bf16(c.stream_handle(), a.input, workspace + at.inputs, a.batch * inputs_);
    float const one = 1.0F, zero = 0.0F;
    int const in = static_cast<int>(inputs_), out = static_cast<int>(outputs_), batch = static_cast<int>(a.batch);
    HYDRA_CHECK(cublasGemmEx(c.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, out, batch, in, &one, w, CUDA_R_16BF, out, x,
                             CUDA_R_16BF, in, &zero, a.output, CUDA_R_32F, out, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT));
    detail::tensor_nchw const bias(1, outputs_), y(a.batch, outputs_);
    HYDRA_CHECK(
        cudnnAddTensor(c.cudnn(), &one, bias.get(), a.parameters + inputs_ * outputs_, &one, y.get(), a.output));
  }

  void backward(cuda_execution_context& c, backward_arguments const& a) const {
    auto const at = workspace_layout(a.batch);
    auto* workspace = static_cast<std::byte*>(a.workspace);
    auto const* w = detail::to_bf16(c.stream_handle(), a.parameters, workspace + at.weights, inputs_ * outputs_);
    auto const* x = detail::to_bf16(c.stream_handle(), a.input, workspace + at.inputs, a.batch * inputs_);
    auto const* dy =
        detail::to_bf16(c.stream_handle(), a.output_gradient, workspace + at.output_gradients, a.batch * outputs_);
    float const one = 1.0F, zero = 0.0F;
    int const in = static_cast<int>(inputs_), out = static_cast<int>(outputs_), batch = static_cast<int>(a.batch);
    // dW' = dY' X'^T
    HYDRA_CHECK(cublasGemmEx(c.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, out, in, batch, &one, dy, CUDA_R_16BF, out, x,
                             CUDA_R_16BF, in, &zero, a.parameter_gradients, CUDA_R_32F, out, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT));
    // db = sum over the batch of dy (fp32)
    detail::tensor_nchw const dy_desc(a.batch, outputs_), db(1, outputs_);
    HYDRA_CHECK(cudnnConvolutionBackwardBias(c.cudnn(), &one, dy_desc.get(), a.output_gradient, &zero, db.get(),
                                             a.parameter_gradients + inputs_ * outputs_));
    // dX' = W'^T dY'
    HYDRA_CHECK(cublasGemmEx(c.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, in, batch, out, &one, w, CUDA_R_16BF, out, dy,
                             CUDA_R_16BF, out, &zero, a.input_gradient, CUDA_R_32F, in, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT));
  }

private:
  // Byte offsets of the bf16 copies in the workspace, each 256-byte aligned.
  struct layout {
    std::size_t weights = 0, inputs = 0, output_gradients = 0, total = 0;
  };
  [[nodiscard]] layout workspace_layout(std::size_t batch) const {
    auto const bytes = [](std::size_t n) { return align_up(n * sizeof(__nv_bfloat16), 256); };
    layout l;
    l.inputs = l.weights + bytes(inputs_ * outputs_);
    l.output_gradients = l.inputs + bytes(batch * inputs_);
    l.total = l.output_gradients + bytes(batch * outputs_);
    return l;
  }

  std::size_t inputs_;
  std::size_t outputs_;
};

static_assert(layer<cublas_dense_bf16, cuda_execution_context>);

} // namespace hydra::cuda::layers
