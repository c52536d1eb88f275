// Each host layer's gradients against central finite differences of its forward.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "hydra/hydra.hpp"

using namespace hydra::literals;

namespace {

struct harness {
  hydra::host_backend backend{{.device_budgets = {1_MiB}}};
  hydra::host_stream stream = backend.create_stream(0);
  hydra::host_execution_context context{backend, stream};
};

std::vector<float> random_vector(std::size_t n, std::uint64_t seed, float scale = 1.0F) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<float> pick(-scale, scale);
  std::vector<float> values(n);
  for (float& value : values) value = pick(random);
  return values;
}

// Runs the layer's forward and waits for it.
template <class Layer>
std::vector<float> run_forward(harness& h, Layer const& layer, std::size_t batch, std::vector<float> const& input,
                               std::vector<float> const& parameters, std::vector<std::int32_t> const& labels) {
  std::vector<float> output(batch * layer.footprint(batch).output_features);
  hydra::forward_arguments a;
  a.batch = batch;
  a.input = input.data();
  a.output = output.data();
  a.parameters = parameters.data();
  a.labels = labels.data();
  layer.forward(h.context, a);
  h.backend.synchronize(h.stream);
  return output;
}

// L = sum(output * weights) for weighted layers, the mean loss for the loss layer.
template <class Layer>
double objective(harness& h, Layer const& layer, std::size_t batch, std::vector<float> const& input,
                 std::vector<float> const& parameters, std::vector<float> const& output_weights,
                 std::vector<std::int32_t> const& labels) {
  auto const output = run_forward(h, layer, batch, input, parameters, labels);
  double sum = 0;
  for (std::size_t k = 0; k < output.size(); ++k) sum += double(output[k]) * double(output_weights[k]);
  return sum;
}

template <class Layer>
void check_gradients(Layer const& layer, std::size_t batch, double tolerance, bool loss_layer = false) {
  harness h;
  auto const shape = layer.footprint(batch);
  auto input = random_vector(batch * shape.input_features, 1, 2.0F);
  for (float& x : input) // keep ReLU inputs away from the kink, where differences are wrong
    if (std::fabs(x) < 0.05F) x += 0.1F;
  auto parameters = random_vector(shape.parameter_count, 2, 0.5F);
  std::vector<float> output_weights = loss_layer ? std::vector<float>(batch, 1.0F / static_cast<float>(batch))
                                                 : random_vector(batch * shape.output_features, 3);
  std::vector<std::int32_t> labels(batch);
  for (std::size_t b = 0; b < batch; ++b) labels[b] = static_cast<std::int32_t>(b % shape.input_features);

  auto const output = run_forward(h, layer, batch, input, parameters, labels);
  std::vector<float> input_gradient(input.size()), parameter_gradient(parameters.size());
  hydra::backward_arguments b;
  b.batch = batch;
  b.input = input.data();
  b.output = output.data();
  b.output_gradient = loss_layer ? nullptr : output_weights.data();
  b.input_gradient = input_gradient.data();
  b.parameters = parameters.data();
  b.parameter_gradients = parameter_gradient.data();
  b.labels = labels.data();
  layer.backward(h.context, b);
  h.backend.synchronize(h.stream);

  auto numeric = [&](std::vector<float>& values, std::size_t at) {
    float const saved = values[at];
    float const step = 1e-2F;
    values[at] = saved + step;
    double const up = objective(h, layer, batch, input, parameters, output_weights, labels);
    values[at] = saved - step;
    double const down = objective(h, layer, batch, input, parameters, output_weights, labels);
    values[at] = saved;
    return (up - down) / (2.0 * step);
  };
  for (std::size_t at = 0; at < input.size(); at += 7) {
    CAPTURE(at);
    CHECK(input_gradient[at] == doctest::Approx(numeric(input, at)).epsilon(tolerance).scale(1.0));
  }
  for (std::size_t at = 0; at < parameters.size(); at += 5) {
    CAPTURE(at);
    CHECK(parameter_gradient[at] == doctest::Approx(numeric(parameters, at)).epsilon(tolerance).scale(1.0));
  }
}

} // namespace

TEST_CASE("dense: gradients of inputs, weights and biases match finite differences") {
  check_gradients(hydra::layers::dense(7, 5), 4, 2e-3);
}

TEST_CASE("relu: input gradients match finite differences") {
  check_gradients(hydra::layers::relu(9), 3, 2e-3);
}

TEST_CASE("softmax cross-entropy: logit gradients of the mean loss match finite differences") {
  check_gradients(hydra::layers::softmax_cross_entropy(6), 5, 2e-3, /*loss_layer=*/true);
}

TEST_CASE("softmax cross-entropy of uniform logits is log(classes)") {
  harness h;
  hydra::layers::softmax_cross_entropy const loss(10);
  std::vector<float> logits(2 * 10, 0.25F), output(2);
  std::vector<std::int32_t> labels{3, 9};
  hydra::forward_arguments f;
  f.batch = 2;
  f.input = logits.data();
  f.output = output.data();
  f.labels = labels.data();
  loss.forward(h.context, f);
  h.backend.synchronize(h.stream);
  CHECK(output[0] == doctest::Approx(std::log(10.0)));
  CHECK(output[1] == doctest::Approx(std::log(10.0)));
}

TEST_CASE("dense initialisation is Glorot-uniform and reproducible from its seed") {
  hydra::layers::dense const layer(30, 20);
  std::vector<float> a(layer.footprint(1).parameter_count), b(a.size());
  layer.initialize(a.data(), 5);
  layer.initialize(b.data(), 5);
  CHECK(a == b);
  float const limit = std::sqrt(6.0F / 50.0F);
  for (std::size_t k = 0; k < 600; ++k) CHECK(std::fabs(a[k]) <= limit);
  for (std::size_t k = 600; k < a.size(); ++k) CHECK(a[k] == 0.0F);
}
