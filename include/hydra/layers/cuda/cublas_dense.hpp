// A fully connected layer on the CUDA backend: y = x W + b with cuBLAS (fp32,
// CUBLAS_COMPUTE_32F) and cuDNN for the bias. Same parameter layout as the host
// dense layer (W row-major [inputs x outputs], then b), so parameters move
// between the two. Results agree with the host layer within rounding (cuBLAS
// sums in its own order), not bitwise.
//
// Row-major matrices are column-major transposes, so with W' = W^T (outputs x
// inputs, leading dimension outputs), X' = x^T, Y' = y^T:
//   forward   Y'  = W' X'                  gemm(N, N, out, batch, in)
//   backward  dW' = dY' X'^T               gemm(N, T, out, in, batch)
//             dX' = W'^T dY'               gemm(T, N, in, batch, out)
//             db  = sum over the batch of dy  (cudnnConvolutionBackwardBias)
// The bias add is cudnnAddTensor of a [1, out, 1, 1] tensor over [batch, out, 1, 1].
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/cuda/cuda_execution_context.hpp"
#include "hydra/backend/cuda/status.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/layers/cuda/cudnn_descriptors.hpp"
#include "hydra/layers/dense.hpp"

namespace hydra::cuda::layers {

class cublas_dense {
public:
  cublas_dense(std::size_t inputs, std::size_t outputs) : inputs_(inputs), outputs_(outputs) {}

  [[nodiscard]] std::string name() const {
    return "cublas dense " + std::to_string(inputs_) + "x" + std::to_string(outputs_);
  }

  // Footprint and initial parameters are the host dense layer's (same layout).
  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    return hydra::layers::dense(inputs_, outputs_).footprint(batch);
  }
  void initialize(float* parameters, std::uint64_t seed) const {
    hydra::layers::dense(inputs_, outputs_).initialize(parameters, seed);
  }

  void forward(cuda_execution_context& c, forward_arguments const& a) const {
    float const one = 1.0F, zero = 0.0F;
    int const in = static_cast<int>(inputs_), out = static_cast<int>(outputs_), batch = static_cast<int>(a.batch);
    HYDRA_CHECK(cublasGemmEx(c.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, out, batch, in, &one, a.parameters, CUDA_R_32F, out,
                             a.input, CUDA_R_32F, in, &zero, a.output, CUDA_R_32F, out, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT));
    detail::tensor_nchw const bias(1, outputs_), y(a.batch, outputs_);
    HYDRA_CHECK(
        cudnnAddTensor(c.cudnn(), &one, bias.get(), a.parameters + inputs_ * outputs_, &one, y.get(), a.output));
  }

  void backward(cuda_execution_context& c, backward_arguments const& a) const {
    float const one = 1.0F, zero = 0.0F;
    int const in = static_cast<int>(inputs_), out = static_cast<int>(outputs_), batch = static_cast<int>(a.batch);
    // dW' = dY' X'^T
    HYDRA_CHECK(cublasGemmEx(c.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, out, in, batch, &one, a.output_gradient, CUDA_R_32F,
                             out, a.input, CUDA_R_32F, in, &zero, a.parameter_gradients, CUDA_R_32F, out,
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    // db = sum over the batch of dy
    detail::tensor_nchw const dy(a.batch, outputs_), db(1, outputs_);
    HYDRA_CHECK(cudnnConvolutionBackwardBias(c.cudnn(), &one, dy.get(), a.output_gradient, &zero, db.get(),
                                             a.parameter_gradients + inputs_ * outputs_));
    // dX' = W'^T dY'
    HYDRA_CHECK(cublasGemmEx(c.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, in, batch, out, &one, a.parameters, CUDA_R_32F, out,
                             a.output_gradient, CUDA_R_32F, out, &zero, a.input_gradient, CUDA_R_32F, in,
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

private:
  std::size_t inputs_;
  std::size_t outputs_;
};

static_assert(layer<cublas_dense, cuda_execution_context>);

} // namespace hydra::cuda::layers
