// The host layers' GEMM (layers/detail/gemm.hpp): right for every transpose
// combination, the same bits from any thread and any operand address, the old
// loop order without a BLAS, and one thread per call with OpenBLAS.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hydra/hydra.hpp"
#include "support/run_layer.hpp"

namespace {

using hydra::layers::detail::transpose;

struct product {
  transpose ta, tb;
  std::size_t m, n, k;
  std::size_t lda() const { return ta == transpose::no ? k : m; }
  std::size_t ldb() const { return tb == transpose::no ? n : k; }
  float a_at(std::vector<float> const& a, std::size_t i, std::size_t p) const {
    return ta == transpose::no ? a[i * lda() + p] : a[p * lda() + i];
  }
  float b_at(std::vector<float> const& b, std::size_t p, std::size_t j) const {
    return tb == transpose::no ? b[p * ldb() + j] : b[j * ldb() + p];
  }
};

std::vector<product> products() {
  std::vector<product> all;
  for (transpose ta : {transpose::no, transpose::yes})
    for (transpose tb : {transpose::no, transpose::yes}) {
      all.push_back({ta, tb, 7, 5, 3});
      all.push_back({ta, tb, 33, 70, 129});
    }
  return all;
}

std::vector<float> run_gemm(product const& g, std::vector<float> const& a, std::vector<float> const& b,
                            std::vector<float> c, bool accumulate) {
  hydra::layers::detail::gemm(g.ta, g.tb, g.m, g.n, g.k, a.data(), g.lda(), b.data(), g.ldb(), accumulate, c.data(),
                              g.n);
  return c;
}

} // namespace

TEST_CASE("the host GEMM computes op(A) op(B), or adds it to C, for every transpose combination") {
  for (product const& g : products()) {
    CAPTURE(int(g.ta));
    CAPTURE(int(g.tb));
    CAPTURE(g.k);
    auto const a = hydra::testing::random_floats(g.m * g.k, 1), b = hydra::testing::random_floats(g.k * g.n, 2);
    auto const c = hydra::testing::random_floats(g.m * g.n, 3);
    for (bool accumulate : {false, true}) {
      auto const actual = run_gemm(g, a, b, c, accumulate);
      double worst = 0;
      for (std::size_t i = 0; i < g.m; ++i)
        for (std::size_t j = 0; j < g.n; ++j) {
          double expected = accumulate ? c[i * g.n + j] : 0.0;
          for (std::size_t p = 0; p < g.k; ++p) expected += double(g.a_at(a, i, p)) * double(g.b_at(b, p, j));
          worst = std::max(worst, std::fabs(expected - actual[i * g.n + j]));
        }
      CHECK(worst <= 1e-5 * double(g.k)); // fp32 rounding of k terms below 1 in magnitude
    }
  }
}

TEST_CASE("the host GEMM gives the same bits from another thread and for operands at other addresses") {
  for (product const& g : products()) {
    auto const a = hydra::testing::random_floats(g.m * g.k, 4), b = hydra::testing::random_floats(g.k * g.n, 5);
    std::vector<float> const c(g.m * g.n, 0.5F);
    auto const here = run_gemm(g, a, b, c, true);
    std::vector<float> there;
    std::thread([&] { there = run_gemm(g, a, b, c, true); }).join();
    CHECK(std::memcmp(here.data(), there.data(), here.size() * sizeof(float)) == 0);
    // The same operands one float further into their buffers (no longer 64-byte aligned).
    std::vector<float> a1(a.size() + 1), b1(b.size() + 1), c1(c.size() + 1);
    std::copy(a.begin(), a.end(), a1.begin() + 1);
    std::copy(b.begin(), b.end(), b1.begin() + 1);
    std::copy(c.begin(), c.end(), c1.begin() + 1);
    hydra::layers::detail::gemm(g.ta, g.tb, g.m, g.n, g.k, a1.data() + 1, g.lda(), b1.data() + 1, g.ldb(), true,
                                c1.data() + 1, g.n);
    CHECK(std::memcmp(here.data(), c1.data() + 1, here.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("the plain-loop GEMM sums each element in index order, the host dense layer's old loops bit for bit") {
  for (product const& g : products()) {
    auto const a = hydra::testing::random_floats(g.m * g.k, 6), b = hydra::testing::random_floats(g.k * g.n, 7);
    auto const c = hydra::testing::random_floats(g.m * g.n, 8);
    for (bool accumulate : {false, true}) {
      std::vector<float> actual = c;
      hydra::layers::detail::loops::gemm(g.ta, g.tb, g.m, g.n, g.k, a.data(), g.lda(), b.data(), g.ldb(), accumulate,
                                         actual.data(), g.n);
      std::size_t differing = 0;
      for (std::size_t i = 0; i < g.m; ++i)
        for (std::size_t j = 0; j < g.n; ++j) {
          float expected = 0.0F;
          if (g.tb == transpose::no) { // added into C one term at a time
            expected = accumulate ? c[i * g.n + j] : 0.0F;
            for (std::size_t p = 0; p < g.k; ++p) expected += g.a_at(a, i, p) * g.b_at(b, p, j);
          } else { // a dot product, then added to C
            float sum = 0.0F;
            for (std::size_t p = 0; p < g.k; ++p) sum += g.a_at(a, i, p) * g.b_at(b, p, j);
            expected = accumulate ? c[i * g.n + j] + sum : sum;
          }
          differing += std::memcmp(&expected, &actual[i * g.n + j], sizeof(float)) != 0 ? 1 : 0;
        }
      CHECK(differing == 0);
    }
  }
}
