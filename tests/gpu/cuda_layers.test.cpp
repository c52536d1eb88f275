// The CUDA layers against independent plain-loop implementations (the host
// layers; tests/support/reference_conv.hpp for convolution and pooling, whose
// backward loops tests/layers/reference_conv.test.cpp checks by finite
// differences): forward and backward on the same random data. cuBLAS and cuDNN
// sum in their own order, so dense and conv2d agree within 1e-4 (relative to
// the magnitude of the values); relu and max pooling agree bitwise.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "gpu/device_buffers.hpp"
#include "hydra/cuda.hpp"
#include "support/reference_conv.hpp"

namespace {

using gpu_testing::device_buffers;
using gpu_testing::random_values;

void check_close(std::vector<float> const& got, std::vector<float> const& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO("element " << k);
    CHECK(std::fabs(got[k] - want[k]) <= 1e-4F * (1.0F + std::fabs(want[k])));
  }
}

} // namespace

TEST_CASE("cublas_dense matches the host dense layer, forward and backward") {
  using namespace hydra::literals;
  hydra::cuda::cuda_backend backend({.device_budgets = {64_MiB}});
  auto stream = backend.create_stream(0, "compute", hydra::stream_role::compute);
  hydra::cuda::cuda_execution_context context(backend, stream);
  std::size_t const batch = 7, in = 33, out = 19;
  hydra::cuda::layers::cublas_dense layer(in, out);
  std::vector<float> parameters(in * out + out);
  layer.initialize(parameters.data(), 5);
  for (std::size_t o = 0; o < out; ++o) parameters[in * out + o] = 0.1F * static_cast<float>(o); // a non-zero bias
  auto const x = random_values(batch * in, 1), dy = random_values(batch * out, 2);

  std::vector<float> y(batch * out), dx(batch * in), dp(parameters.size());
  hydra::forward_arguments hf{batch, x.data(), y.data(), parameters.data(), nullptr, nullptr};
  hydra::layers::dense::forward_kernel(hf, in, out);
  hydra::backward_arguments hb{batch,     x.data(), y.data(), dy.data(), dx.data(), parameters.data(),
                               dp.data(), nullptr,  nullptr};
  hydra::layers::dense::backward_kernel(hb, in, out);

  device_buffers d;
  float* dx_d = d.make(dx.size());
  float* y_d = d.make(y.size());
  float* dp_d = d.make(dp.size());
  float const* x_d = d.upload(x);
  float const* dy_d = d.upload(dy);
  float const* p_d = d.upload(parameters);
  layer.forward(context, {batch, x_d, y_d, p_d, nullptr, nullptr});
  layer.backward(context, {batch, x_d, y_d, dy_d, dx_d, p_d, dp_d, nullptr, nullptr});
  backend.synchronize(stream);
  check_close(device_buffers::download(y_d, y.size()), y);
  check_close(device_buffers::download(dx_d, dx.size()), dx);
  check_close(device_buffers::download(dp_d, dp.size()), dp);
}

TEST_CASE("cudnn_relu matches the host relu bitwise") {
  using namespace hydra::literals;
  hydra::cuda::cuda_backend backend({.device_budgets = {64_MiB}});
  auto stream = backend.create_stream(0);
  hydra::cuda::cuda_execution_context context(backend, stream);
  std::size_t const batch = 5, features = 41;
  auto const x = random_values(batch * features, 3), dy = random_values(batch * features, 4);
  std::vector<float> y(x.size()), dx(x.size());
  for (std::size_t k = 0; k < x.size(); ++k) {
    y[k] = x[k] > 0.0F ? x[k] : 0.0F;
    dx[k] = x[k] > 0.0F ? dy[k] : 0.0F;
  }
  device_buffers d;
  float* y_d = d.make(y.size());
  float* dx_d = d.make(dx.size());
  float const* x_d = d.upload(x);
  float const* dy_d = d.upload(dy);
  hydra::cuda::layers::cudnn_relu relu(features);
  relu.forward(context, {batch, x_d, y_d, nullptr, nullptr, nullptr});
  relu.backward(context, {batch, x_d, y_d, dy_d, dx_d, nullptr, nullptr, nullptr, nullptr});
  backend.synchronize(stream);
  CHECK(device_buffers::download(y_d, y.size()) == y);
  CHECK(device_buffers::download(dx_d, dx.size()) == dx);
}

TEST_CASE("cudnn_conv2d matches the plain-loop reference, forward and backward (stride 1 and 2)") {
  using namespace hydra::literals;
  hydra::cuda::cuda_backend backend({.device_budgets = {64_MiB}});
  auto stream = backend.create_stream(0, "compute", hydra::stream_role::compute);
  hydra::cuda::cuda_execution_context context(backend, stream);
  for (std::size_t const stride : {std::size_t{1}, std::size_t{2}}) {
    CAPTURE(stride);
    reference::conv_shape const s{3, 4, 9, 7, 5, 3, stride, 1};
    hydra::cuda::layers::cudnn_conv2d layer({4, 9, 7}, 5, {.kernel = 3, .stride = stride, .padding = 1});
    auto const out = layer.output_shape();
    REQUIRE(out == hydra::cuda::layers::image_shape{5, s.out_height(), s.out_width()});
    auto const footprint = layer.footprint(s.batch);
    REQUIRE(footprint.parameter_count == s.filter_size() + 5);
    REQUIRE(footprint.output_features * s.batch == s.output_size());
    std::vector<float> parameters(footprint.parameter_count);
    layer.initialize(parameters.data(), 9);
    for (std::size_t k = 0; k < 5; ++k) parameters[s.filter_size() + k] = 0.1F * static_cast<float>(k + 1);
    std::vector<float> const w(parameters.begin(), parameters.begin() + static_cast<std::ptrdiff_t>(s.filter_size()));
    std::vector<float> const b(parameters.begin() + static_cast<std::ptrdiff_t>(s.filter_size()), parameters.end());
    auto const x = random_values(s.input_size(), 10), dy = random_values(s.output_size(), 11);
    auto const y = reference::conv_forward(s, x, w, b);
    auto const g = reference::conv_backward(s, x, w, dy);

    device_buffers d;
    float* y_d = d.make(y.size());
    float* dx_d = d.make(x.size());
    float* dp_d = d.make(parameters.size());
    float const* x_d = d.upload(x);
    float const* dy_d = d.upload(dy);
    float const* p_d = d.upload(parameters);
    layer.forward(context, {s.batch, x_d, y_d, p_d, nullptr, nullptr});
    layer.backward(context, {s.batch, x_d, y_d, dy_d, dx_d, p_d, dp_d, nullptr, nullptr});
    backend.synchronize(stream);
    check_close(device_buffers::download(y_d, y.size()), y);
    check_close(device_buffers::download(dx_d, x.size()), g.input);
    auto const dp = device_buffers::download(dp_d, parameters.size());
    check_close(std::vector<float>(dp.begin(), dp.begin() + static_cast<std::ptrdiff_t>(s.filter_size())), g.filter);
    check_close(std::vector<float>(dp.begin() + static_cast<std::ptrdiff_t>(s.filter_size()), dp.end()), g.bias);
  }
}

TEST_CASE("cudnn_max_pool2d matches the plain-loop reference bitwise") {
  using namespace hydra::literals;
  hydra::cuda::cuda_backend backend({.device_budgets = {64_MiB}});
  auto stream = backend.create_stream(0);
  hydra::cuda::cuda_execution_context context(backend, stream);
  reference::pool_shape const s{3, 4, 8, 6, 2, 2};
  hydra::cuda::layers::cudnn_max_pool2d layer({4, 8, 6});
  REQUIRE(layer.output_shape() == hydra::cuda::layers::image_shape{4, 4, 3});
  auto const x = random_values(3 * 4 * 8 * 6, 12), dy = random_values(3 * 4 * 4 * 3, 13);
  auto const y = reference::max_pool_forward(s, x, nullptr);
  auto const dx = reference::max_pool_backward(s, x, dy);
  device_buffers d;
  float* y_d = d.make(y.size());
  float* dx_d = d.make(dx.size());
  float const* x_d = d.upload(x);
  float const* dy_d = d.upload(dy);
  layer.forward(context, {s.batch, x_d, y_d, nullptr, nullptr, nullptr});
  layer.backward(context, {s.batch, x_d, y_d, dy_d, dx_d, nullptr, nullptr, nullptr, nullptr});
  backend.synchronize(stream);
  CHECK(device_buffers::download(y_d, y.size()) == y);
  CHECK(device_buffers::download(dx_d, dx.size()) == dx);
}

TEST_CASE("the CUDA layers refuse impossible shapes, naming the limit") {
  using hydra::cuda::layers::cudnn_conv2d;
  using hydra::cuda::layers::cudnn_max_pool2d;
  CHECK_THROWS_WITH_AS(cudnn_conv2d({1, 2, 2}, 4, {.kernel = 7, .stride = 1, .padding = 1}),
                       doctest::Contains("7x7 kernel is larger than the padded 2x2 image"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(cudnn_max_pool2d({1, 3, 3}, 4), doctest::Contains("4x4 window is larger than the 3x3 image"),
                       hydra::invalid_argument);
}
