// A checker for a user's own host layer, before it joins a model: does it keep
// to its footprint (it writes nothing outside the regions its footprint gives,
// in initialize, forward and backward), and do its gradients match central
// finite differences of its forward? hydra packs the regions of neighbouring
// layers side by side, so a layer that writes past its footprint corrupts its
// neighbours without a crash; this finds it on the layer alone.
//
//   auto const report = hydra::check_layer(my_layer{...});
//   if (!report.passed()) for (auto const& p : report.problems) std::cerr << p << '\n';
//
// The objective differentiated is sum(output * w) for random weights w, or for
// a loss layer (is_loss_layer) the mean loss over the batch, which is what a
// loss layer's backward must return the gradient of.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "hydra/backend/host/host_backend.hpp"
#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/core/bytes.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/train/detail/layer_guard.hpp"

namespace hydra {

struct layer_check_options {
  std::size_t batch = 4;
  std::uint64_t seed = 1;
  float step = 1e-2F;       // of the central differences
  double tolerance = 2e-3;  // |analytic - numeric| <= tolerance * (1 + max(|analytic|, |numeric|))
  std::size_t samples = 64; // coordinates compared per gradient, spread evenly
};

struct layer_check_report {
  std::vector<std::string> problems;         // what failed, each naming the layer; empty when it passed
  double worst_input_gradient_error = 0;     // the largest |analytic - numeric| / (1 + magnitude) seen
  double worst_parameter_gradient_error = 0; // the same for the parameter gradients
  [[nodiscard]] bool passed() const noexcept { return problems.empty(); }
};

namespace detail {

template <class Layer>
class layer_checker {
public:
  layer_checker(Layer const& layer, layer_check_options const& options)
      : layer_(layer), options_(options), shape_(layer.footprint(options.batch)),
        who_("layer " + std::string(layer.name())) {}

  layer_check_report run() {
    constexpr bool loss = is_loss_layer<Layer>;
    if (loss && shape_.output_features != 1)
      problem("is a loss layer but outputs " + std::to_string(shape_.output_features) +
              " features per sample; a loss outputs 1 (the sample's loss)");
    std::size_t const batch = options_.batch;
    input_ = random_values(batch * shape_.input_features, 1, 2.0F);
    for (float& x : input_) // away from the kinks (ReLU, max-pool ties) where differences are wrong
      if (std::fabs(x) < 0.05F) x += 0.1F;
    labels_.resize(batch);
    for (std::size_t b = 0; b < batch; ++b)
      labels_[b] = static_cast<std::int32_t>(b % std::max<std::size_t>(shape_.input_features, 1));
    weights_ = loss ? std::vector<float>(batch, 1.0F / static_cast<float>(batch))
                    : random_values(batch * shape_.output_features, 3, 1.0F);
    if (!initialize()) return report_;

    std::vector<float> output;
    if (!forward(input_, parameters_, output, true)) return report_;
    for (std::size_t k = 0; k < output.size(); ++k) {
      if (!std::isfinite(output[k])) {
        problem("forward wrote a non-finite output at " + std::to_string(k));
        return report_;
      }
    }
    std::vector<float> input_gradient(input_.size()), parameter_gradient(parameters_.size());
    if (!backward(output, input_gradient, parameter_gradient)) return report_;
    compare("input gradient", input_gradient, input_, report_.worst_input_gradient_error);
    compare("parameter gradient", parameter_gradient, parameters_, report_.worst_parameter_gradient_error);
    return report_;
  }

private:
  std::vector<float> random_values(std::size_t n, std::uint64_t salt, float scale) const {
    std::mt19937_64 random(options_.seed * 7919 + salt);
    std::uniform_real_distribution<float> pick(-scale, scale);
    std::vector<float> values(n);
    for (float& v : values) v = pick(random);
    return values;
  }

  void problem(std::string const& what) {
    std::string line = who_;
    report_.problems.push_back(line.append(" ").append(what));
  }

  // initialize() writes the parameters on the host: inside its region only.
  bool initialize() {
    // Never empty, so that even a layer without parameters gets a real, guarded address.
    std::vector<float> initial(std::max<std::size_t>(shape_.parameter_count, 1), 0.0F);
    layer_guard guard(who_ + " initialize()");
    auto const parameters =
        guard.add("parameters", initial.data(), shape_.parameter_count * sizeof(float), layer_guard::access::write);
    guard.allocate();
    guard.fill();
    layer_.initialize(guard.shadow<float>(parameters), options_.seed);
    try {
      guard.check_and_return();
    } catch (error const& outside) {
      report_.problems.push_back(outside.what());
      return false;
    }
    parameters_ = std::move(initial);
    return true;
  }

  // Runs `work` on the stream and waits; a failure there (a canary, a throw) becomes a problem.
  template <class Work>
  bool on_stream(char const* what, Work&& work) {
    try {
      work();
      backend_.synchronize(stream_);
      return true;
    } catch (std::exception const& failed) {
      std::string why = failed.what();
      if (std::string const prefix = ": enqueued work threw: "; why.find(prefix) != std::string::npos)
        why = why.substr(why.find(prefix) + prefix.size());
      report_.problems.push_back(std::string(what) + ": " + why);
      return false;
    }
  }

  bool forward(std::vector<float> const& input, std::vector<float> const& parameters, std::vector<float>& output,
               bool guarded) {
    output.assign(options_.batch * shape_.output_features, 0.0F);
    std::vector<std::byte> workspace(shape_.workspace_bytes);
    forward_arguments a;
    a.batch = options_.batch;
    a.input = input.data();
    a.output = output.data();
    a.parameters = parameters.data();
    a.workspace = workspace.data();
    a.labels = labels_.data();
    return on_stream("forward", [&] {
      if (guarded)
        guarded_forward(layer_, context_, a, who_ + " forward()");
      else
        layer_.forward(context_, a);
    });
  }

  bool backward(std::vector<float> const& output, std::vector<float>& input_gradient,
                std::vector<float>& parameter_gradient) {
    std::vector<std::byte> workspace(shape_.workspace_bytes);
    backward_arguments a;
    a.batch = options_.batch;
    a.input = input_.data();
    a.output = output.data();
    a.output_gradient = is_loss_layer<Layer> ? nullptr : weights_.data();
    a.input_gradient = input_gradient.data();
    a.parameters = parameters_.data();
    a.parameter_gradients = parameter_gradient.data();
    a.workspace = workspace.data();
    a.labels = labels_.data();
    return on_stream("backward", [&] { guarded_backward(layer_, context_, a, who_ + " backward()"); });
  }

  double objective(std::vector<float> const& input, std::vector<float> const& parameters) {
    std::vector<float> output;
    if (!forward(input, parameters, output, false)) return std::nan("");
    double sum = 0;
    for (std::size_t k = 0; k < output.size(); ++k) sum += static_cast<double>(output[k]) * weights_[k];
    return sum;
  }

  // Analytic against central differences of objective() in `values` (the
  // input or the parameters), at up to `samples` coordinates.
  void compare(char const* what, std::vector<float> const& analytic, std::vector<float>& values, double& worst) {
    if (values.empty()) return;
    std::size_t const stride = std::max<std::size_t>(1, values.size() / std::max<std::size_t>(options_.samples, 1));
    for (std::size_t at = 0; at < values.size(); at += stride) {
      float const saved = values[at];
      values[at] = saved + options_.step;
      double const up = objective(input_, parameters_);
      values[at] = saved - options_.step;
      double const down = objective(input_, parameters_);
      values[at] = saved;
      double const numeric = (up - down) / (2.0 * static_cast<double>(options_.step));
      double const given = analytic[at];
      double const error = std::fabs(given - numeric) / (1.0 + std::max(std::fabs(given), std::fabs(numeric)));
      worst = std::max(worst, std::isnan(error) ? INFINITY : error);
      if (!(error <= options_.tolerance)) {
        problem(std::string("backward's ") + what + " [" + std::to_string(at) + "] is " + std::to_string(given) +
                "; central differences of forward give " + std::to_string(numeric));
        return; // one line per gradient says enough
      }
    }
  }

  Layer const& layer_;
  layer_check_options options_;
  layer_footprint shape_;
  std::string who_;
  host_backend backend_{{.device_budgets = {1_MiB}}};
  host_stream stream_ = backend_.create_stream(0, "layer check");
  host_execution_context context_{backend_, stream_};
  std::vector<float> input_, parameters_, weights_;
  std::vector<std::int32_t> labels_;
  layer_check_report report_;
};

} // namespace detail

// Checks `layer` on the host backend: its footprint against what it writes,
// its gradients against central finite differences.
template <class Layer>
requires layer<Layer, host_execution_context>
[[nodiscard]] layer_check_report check_layer(Layer const& layer, layer_check_options const& options = {}) {
  detail::expects(options.batch > 0, "check_layer: the batch is 0");
  return detail::layer_checker<Layer>(layer, options).run();
}

} // namespace hydra
