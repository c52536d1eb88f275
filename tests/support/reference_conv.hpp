// Plain-loop 2-D convolution and max pooling, NCHW: the test oracle for every
// convolution and pooling layer, the host ones (tests/layers/conv2d.test.cpp,
// max_pool2d.test.cpp) and the cuDNN ones (tests/gpu/cuda_layers.test.cpp).
// Its filter index is [K x C x R x S], then the bias: the parameter layout the
// layers share. Templated on the number type so that
// tests/layers/reference_conv.test.cpp can check the backward loops against
// finite differences in double precision, on any machine.
#pragma once

#include <cstddef>
#include <vector>

namespace reference {

struct conv_shape {
  std::size_t batch, channels, height, width; // input
  std::size_t filters, kernel, stride, padding;
  [[nodiscard]] std::size_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  [[nodiscard]] std::size_t out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  [[nodiscard]] std::size_t input_size() const { return batch * channels * height * width; }
  [[nodiscard]] std::size_t output_size() const { return batch * filters * out_height() * out_width(); }
  [[nodiscard]] std::size_t filter_size() const { return filters * channels * kernel * kernel; }
};

// Calls f(n, k, p, q, c, r, s, input index, filter index, output index) for
// every multiply-add of the convolution that touches an input inside the image.
template <class F>
void for_each_tap(conv_shape const& s, F&& f) {
  std::size_t const P = s.out_height(), Q = s.out_width();
  for (std::size_t n = 0; n < s.batch; ++n)
    for (std::size_t k = 0; k < s.filters; ++k)
      for (std::size_t p = 0; p < P; ++p)
        for (std::size_t q = 0; q < Q; ++q)
          for (std::size_t c = 0; c < s.channels; ++c)
            for (std::size_t r = 0; r < s.kernel; ++r)
              for (std::size_t t = 0; t < s.kernel; ++t) {
                std::size_t const h = p * s.stride + r, w = q * s.stride + t; // in padded coordinates
                if (h < s.padding || w < s.padding || h - s.padding >= s.height || w - s.padding >= s.width) continue;
                std::size_t const x = ((n * s.channels + c) * s.height + (h - s.padding)) * s.width + (w - s.padding);
                std::size_t const wi = ((k * s.channels + c) * s.kernel + r) * s.kernel + t;
                std::size_t const y = ((n * s.filters + k) * P + p) * Q + q;
                f(x, wi, y);
              }
}

// y = conv(x, w) + b[k]
template <class T>
std::vector<T> conv_forward(conv_shape const& s, std::vector<T> const& x, std::vector<T> const& w,
                            std::vector<T> const& b) {
  std::vector<double> y(s.output_size(), 0.0);
  for_each_tap(s, [&](std::size_t xi, std::size_t wi, std::size_t yi) { y[yi] += double(x[xi]) * double(w[wi]); });
  std::size_t const plane = s.out_height() * s.out_width();
  std::vector<T> out(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) out[i] = static_cast<T>(y[i] + double(b[(i / plane) % s.filters]));
  return out;
}

template <class T>
struct conv_gradients {
  std::vector<T> input, filter, bias;
};

template <class T>
conv_gradients<T> conv_backward(conv_shape const& s, std::vector<T> const& x, std::vector<T> const& w,
                                std::vector<T> const& dy) {
  std::vector<double> dx(s.input_size(), 0.0), dw(s.filter_size(), 0.0), db(s.filters, 0.0);
  for_each_tap(s, [&](std::size_t xi, std::size_t wi, std::size_t yi) {
    dx[xi] += double(w[wi]) * double(dy[yi]);
    dw[wi] += double(x[xi]) * double(dy[yi]);
  });
  std::size_t const plane = s.out_height() * s.out_width();
  for (std::size_t i = 0; i < dy.size(); ++i) db[(i / plane) % s.filters] += double(dy[i]);
  auto cast = [](std::vector<double> const& v) { return std::vector<T>(v.begin(), v.end()); };
  return {cast(dx), cast(dw), cast(db)};
}

struct pool_shape {
  std::size_t batch, channels, height, width, window, stride;
  [[nodiscard]] std::size_t out_height() const { return (height - window) / stride + 1; }
  [[nodiscard]] std::size_t out_width() const { return (width - window) / stride + 1; }
};

// Max pooling; `argmax` receives, per output, the input index it came from.
template <class T>
std::vector<T> max_pool_forward(pool_shape const& s, std::vector<T> const& x, std::vector<std::size_t>* argmax) {
  std::size_t const P = s.out_height(), Q = s.out_width();
  std::vector<T> y;
  for (std::size_t nc = 0; nc < s.batch * s.channels; ++nc)
    for (std::size_t p = 0; p < P; ++p)
      for (std::size_t q = 0; q < Q; ++q) {
        std::size_t best = nc * s.height * s.width + p * s.stride * s.width + q * s.stride;
        for (std::size_t r = 0; r < s.window; ++r)
          for (std::size_t t = 0; t < s.window; ++t) {
            std::size_t const at = nc * s.height * s.width + (p * s.stride + r) * s.width + q * s.stride + t;
            if (x[at] > x[best]) best = at;
          }
        y.push_back(x[best]);
        if (argmax) argmax->push_back(best);
      }
  return y;
}

template <class T>
std::vector<T> max_pool_backward(pool_shape const& s, std::vector<T> const& x, std::vector<T> const& dy) {
  std::vector<std::size_t> argmax;
  max_pool_forward(s, x, &argmax);
  std::vector<T> dx(x.size(), T{0});
  for (std::size_t i = 0; i < dy.size(); ++i) dx[argmax[i]] += dy[i];
  return dx;
}

} // namespace reference
