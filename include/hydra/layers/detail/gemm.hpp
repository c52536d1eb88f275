// The host layers' one matrix product: C = op(A) op(B), or C += op(A) op(B),
// row-major fp32, on the calling thread (a host stream's). With OpenBLAS
// (HYDRA_WITH_OPENBLAS, set by HYDRA_HOST_BLAS) it is cblas_sgemm; without, plain
// loops that sum every element of C in index order, the loops the host dense
// layer has always had, so a build without a BLAS keeps its results bit for bit.
//
// Either way the result is a function of the inputs and the shapes only: the
// same GEMM gives the same bits on any stream, device or schedule, which is what
// keeps a sweep's models bitwise equal to their solo runs. (OpenBLAS picks its
// kernels by CPU and shape and packs its operands into its own buffers, so
// neither the operands' addresses nor the calling thread change its sums, as
// long as it runs on one thread.)
#pragma once

#include <climits>
#include <cstddef>
#include <string>

#if defined(HYDRA_WITH_OPENBLAS)
#include <cblas.h>
#endif

#include "hydra/core/error.hpp"

namespace hydra::layers::detail {

enum class transpose : bool { no, yes };

// Whether the host layers run on OpenBLAS in this build.
inline constexpr bool host_gemm_uses_blas =
#if defined(HYDRA_WITH_OPENBLAS)
    true;
#else
    false;
#endif

#if defined(HYDRA_WITH_OPENBLAS)
// One thread per GEMM. Each virtual device's compute stream is one thread, and
// the devices are the parallelism hydra schedules: a BLAS that spread each GEMM
// over every core would run devices x cores threads on the cores, and a device's
// busy time would no longer be its own. hydra sets the count rather than asking
// for Debian's serial OpenBLAS: this works with whichever variant is installed
// (libopenblas-dev brings the pthread one; calls from many threads at once are
// safe there, while the serial build is safe so only when built with
// USE_LOCKING). Set once per calling thread, since the OpenMP variant keeps the
// count per thread, and again whenever the application changed it.
inline void keep_openblas_single_threaded() {
  thread_local bool set_on_this_thread = false;
  if (set_on_this_thread && openblas_get_num_threads() == 1) return;
  openblas_set_num_threads(1);
  set_on_this_thread = true;
}
#endif

namespace loops {

// C[i, j] (+)= sum over p of A(i, p) B(p, j), each sum in p order. The loop
// nests are the ones whose inner loop runs along contiguous memory.
inline void gemm(transpose transpose_a, transpose transpose_b, std::size_t m, std::size_t n, std::size_t k,
                 float const* a, std::size_t lda, float const* b, std::size_t ldb, bool accumulate, float* c,
                 std::size_t ldc) {
  if (transpose_b == transpose::no) { // B(p, j) = b[p * ldb + j]: rows of C grow along j
    if (!accumulate)
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = 0.0F;
    for (std::size_t i = 0; i < m; ++i) {
      float* row = c + i * ldc;
      for (std::size_t p = 0; p < k; ++p) {
        float const scale = transpose_a == transpose::no ? a[i * lda + p] : a[p * lda + i];
        float const* b_row = b + p * ldb;
        for (std::size_t j = 0; j < n; ++j) row[j] += scale * b_row[j];
      }
    }
    return;
  }
  // B(p, j) = b[j * ldb + p]: one dot product per element of C.
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      float const* b_row = b + j * ldb;
      float sum = 0.0F;
      if (transpose_a == transpose::no) {
        float const* a_row = a + i * lda;
        for (std::size_t p = 0; p < k; ++p) sum += a_row[p] * b_row[p];
      } else {
        for (std::size_t p = 0; p < k; ++p) sum += a[p * lda + i] * b_row[p];
      }
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
    }
  }
}

} // namespace loops

// C (m x n, leading dimension ldc) = op(A) op(B), or += with `accumulate`.
// op(A) is m x k: A itself (m x k, lda) or, transposed, A stored k x m.
// op(B) is k x n: B itself (k x n, ldb) or, transposed, B stored n x k.
inline void gemm(transpose transpose_a, transpose transpose_b, std::size_t m, std::size_t n, std::size_t k,
                 float const* a, std::size_t lda, float const* b, std::size_t ldb, bool accumulate, float* c,
                 std::size_t ldc) {
  if (m == 0 || n == 0) return;
#if defined(HYDRA_WITH_OPENBLAS)
  if (k == 0) { // BLAS would only scale C; keep the contract without asking it
    if (!accumulate)
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = 0.0F;
    return;
  }
  auto const limit = static_cast<std::size_t>(INT_MAX);
  if (m > limit || n > limit || k > limit || lda > limit || ldb > limit || ldc > limit) {
    throw invalid_argument("host gemm: a " + std::to_string(m) + " x " + std::to_string(n) + " x " + std::to_string(k) +
                           " product (leading dimensions " + std::to_string(lda) + ", " + std::to_string(ldb) + ", " +
                           std::to_string(ldc) + ") exceeds OpenBLAS's 32-bit limit of " + std::to_string(INT_MAX));
  }
  keep_openblas_single_threaded();
  cblas_sgemm(CblasRowMajor, transpose_a == transpose::no ? CblasNoTrans : CblasTrans,
              transpose_b == transpose::no ? CblasNoTrans : CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0F, a, static_cast<int>(lda), b, static_cast<int>(ldb), accumulate ? 1.0F : 0.0F,
              c, static_cast<int>(ldc));
#else
  loops::gemm(transpose_a, transpose_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
#endif
}

} // namespace hydra::layers::detail
