// The cuBLAS and cuDNN handles of one stream: made on the stream's device,
// bound to the stream before anyone can use them (an unbound handle would
// issue its work on the legacy default stream and race with everything else),
// and destroyed on that device.
//
// Why warm_up(): the first handle of a process loads the libraries (cuDNN 9
// its sub-libraries too), and each kernel loads on its first launch (lazy
// module loading, CUDA's default). That costs tens to hundreds of milliseconds,
// and landing inside the first timed task it would inflate the device-busy
// figure and the profiled cost of the first shard, which the scheduler plans
// with. The CUDA backend warms the handles of every compute stream when it
// makes the stream, before any task runs.
//
// Math modes: the fp32 paths must stay fp32 (the GPU tests compare them with
// the host layers within 1e-4; TF32 would differ by about 1e-3). cuBLAS's
// default math with CUBLAS_COMPUTE_32F never uses TF32; cuDNN's default math
// may, so the convolution layer asks for CUDNN_FMA_MATH.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

#include "hydra/backend/cuda/device_scope.hpp"
#include "hydra/backend/cuda/status.hpp"

namespace hydra::cuda::detail {

class library_handles {
public:
  library_handles(std::size_t device, cudaStream_t stream) : device_(device) {
    device_scope on(device);
    HYDRA_CHECK(cublasCreate(&cublas_));
    try {
      HYDRA_CHECK(cublasSetStream(cublas_, stream));
      HYDRA_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
      HYDRA_CHECK(cudnnCreate(&cudnn_));
      HYDRA_CHECK(cudnnSetStream(cudnn_, stream));
    } catch (...) {
      release();
      throw;
    }
  }
  library_handles(library_handles const&) = delete;
  library_handles& operator=(library_handles const&) = delete;
  ~library_handles() { release(); }

  [[nodiscard]] cublasHandle_t cublas() const noexcept { return cublas_; }
  [[nodiscard]] cudnnHandle_t cudnn() const noexcept { return cudnn_; }

  // One small call of each kind the fp32 CUDA layers make (GEMM, bias add,
  // convolution forward) on `stream`, the handles' stream, waited for.
  void warm_up(cudaStream_t stream) const {
    device_scope on(device_);
    float* scratch = nullptr; // x, w, y: one float each
    HYDRA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&scratch), 4 * sizeof(float), stream));
    try {
      HYDRA_CHECK(cudaMemsetAsync(scratch, 0, 4 * sizeof(float), stream));
      float const one = 1.0F, zero = 0.0F;
      HYDRA_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, scratch + 1, CUDA_R_32F, 1, scratch,
                               CUDA_R_32F, 1, &zero, scratch + 2, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
      warm_up_cudnn(scratch, scratch + 1, scratch + 2);
    } catch (...) {
      static_cast<void>(cudaFreeAsync(scratch, stream));
      throw;
    }
    HYDRA_CHECK(cudaFreeAsync(scratch, stream));
    HYDRA_CHECK(cudaStreamSynchronize(stream));
  }

private:
  // The bias add must work (every CUDA layer with parameters uses it). The
  // convolution is best effort: a cuDNN that refuses it for a 1x1 image would
  // refuse cudnn_conv2d too, which then reports it with the layer's name, and a
  // model without convolutions must not fail for it.
  void warm_up_cudnn(float const* x, float const* w, float* y) const {
    float const one = 1.0F, zero = 0.0F;
    cudnnTensorDescriptor_t made = nullptr;
    HYDRA_CHECK(cudnnCreateTensorDescriptor(&made));
    std::unique_ptr<std::remove_pointer_t<cudnnTensorDescriptor_t>, decltype(&cudnnDestroyTensorDescriptor)> const
        tensor(made, &cudnnDestroyTensorDescriptor);
    HYDRA_CHECK(cudnnSetTensor4dDescriptor(tensor.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1));
    HYDRA_CHECK(cudnnAddTensor(cudnn_, &one, tensor.get(), x, &one, tensor.get(), y));

    cudnnFilterDescriptor_t filter = nullptr;
    cudnnConvolutionDescriptor_t convolution = nullptr;
    bool const described =
        cudnnCreateFilterDescriptor(&filter) == CUDNN_STATUS_SUCCESS &&
        cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 1, 1) == CUDNN_STATUS_SUCCESS &&
        cudnnCreateConvolutionDescriptor(&convolution) == CUDNN_STATUS_SUCCESS &&
        cudnnSetConvolution2dDescriptor(convolution, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
            CUDNN_STATUS_SUCCESS &&
        cudnnSetConvolutionMathType(convolution, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS;
    if (described)
      static_cast<void>(cudnnConvolutionForward(cudnn_, &one, tensor.get(), x, filter, w, convolution,
                                                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                                tensor.get(), y));
    if (convolution != nullptr) static_cast<void>(cudnnDestroyConvolutionDescriptor(convolution));
    if (filter != nullptr) static_cast<void>(cudnnDestroyFilterDescriptor(filter));
  }

  // Destroys on the handles' device (both libraries require it), whatever is
  // current; errors are moot here (the context may already be lost).
  void release() noexcept {
    device_scope const on(device_, std::nothrow);
    if (cudnn_ != nullptr) static_cast<void>(cudnnDestroy(cudnn_));
    if (cublas_ != nullptr) static_cast<void>(cublasDestroy(cublas_));
    cudnn_ = nullptr;
    cublas_ = nullptr;
  }

  std::size_t device_;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
};

} // namespace hydra::cuda::detail
