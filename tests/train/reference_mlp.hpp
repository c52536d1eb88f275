// An independent reference for the trainer tests: an MLP trained fully in memory
// by plain loops, using none of hydra's machinery (no backend, pools, shards,
// streams, layers or Thrust). Every sum runs in index order, as in hydra's
// plain-loop GEMM: a build without a BLAS must match it bitwise. With OpenBLAS
// the host layers sum in OpenBLAS's order, and the tests compare within a stated
// tolerance.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace reference {

struct dense_spec {
  std::size_t inputs, outputs;
};

// hidden: dense(i -> o) followed by ReLU; the last dense has no ReLU and feeds a
// softmax cross-entropy loss. rate_factors, if given, scales the learning rate
// at step t (1-based) by rate_factors[t-1]: a learning-rate schedule written out.
class mlp {
public:
  mlp(std::vector<dense_spec> layers, std::vector<float> parameters, std::size_t batch, std::string optimizer,
      float learning_rate, std::vector<float> rate_factors = {})
      : layers_(std::move(layers)), parameters_(std::move(parameters)), batch_(batch), optimizer_(optimizer),
        learning_rate_(learning_rate), rate_factors_(std::move(rate_factors)) {
    state_.assign(parameters_.size() * (optimizer == "adam" ? 2 : 1), 0.0F);
  }

  float step(std::vector<float> const& inputs, std::vector<std::int32_t> const& labels) {
    ++steps_;
    std::size_t const n = layers_.size();
    // Forward, keeping every dense input and output (pre-ReLU) and ReLU output.
    std::vector<std::vector<float>> x(n + 1), z(n);
    x[0] = inputs;
    std::size_t offset = 0;
    std::vector<std::size_t> offsets;
    for (std::size_t l = 0; l < n; ++l) {
      offsets.push_back(offset);
      auto const [in, out] = layers_[l];
      float const* w = parameters_.data() + offset;
      float const* bias = w + in * out;
      z[l].assign(batch_ * out, 0.0F);
      for (std::size_t b = 0; b < batch_; ++b) {
        for (std::size_t o = 0; o < out; ++o) z[l][b * out + o] = bias[o];
        for (std::size_t i = 0; i < in; ++i)
          for (std::size_t o = 0; o < out; ++o) z[l][b * out + o] += x[l][b * in + i] * w[i * out + o];
      }
      x[l + 1] = z[l];
      if (l + 1 < n)
        for (float& value : x[l + 1]) value = value > 0.0F ? value : 0.0F;
      offset += in * out + out;
    }
    // Loss and its gradient.
    std::size_t const classes = layers_.back().outputs;
    std::vector<float> dz(batch_ * classes);
    float loss_sum = 0.0F;
    float const scale = 1.0F / static_cast<float>(batch_);
    for (std::size_t b = 0; b < batch_; ++b) {
      float const* logits = x[n].data() + b * classes;
      float top = logits[0];
      for (std::size_t c = 1; c < classes; ++c) top = logits[c] > top ? logits[c] : top;
      float sum = 0.0F;
      for (std::size_t c = 0; c < classes; ++c) sum += std::exp(logits[c] - top);
      loss_sum += std::log(sum) - (logits[labels[b]] - top);
      for (std::size_t c = 0; c < classes; ++c) {
        float const target = static_cast<std::size_t>(labels[b]) == c ? 1.0F : 0.0F;
        dz[b * classes + c] = (std::exp(logits[c] - top) / sum - target) * scale;
      }
    }
    // Backward and update, last layer first.
    std::vector<float> gradients(parameters_.size());
    for (std::size_t l = n; l-- > 0;) {
      auto const [in, out] = layers_[l];
      float const* w = parameters_.data() + offsets[l];
      float* gw = gradients.data() + offsets[l];
      float* gb = gw + in * out;
      std::vector<float> dx(batch_ * in);
      for (std::size_t b = 0; b < batch_; ++b) {
        for (std::size_t i = 0; i < in; ++i)
          for (std::size_t o = 0; o < out; ++o) gw[i * out + o] += x[l][b * in + i] * dz[b * out + o];
        for (std::size_t o = 0; o < out; ++o) gb[o] += dz[b * out + o];
        for (std::size_t i = 0; i < in; ++i) {
          float sum = 0.0F;
          for (std::size_t o = 0; o < out; ++o) sum += dz[b * out + o] * w[i * out + o];
          dx[b * in + i] = sum;
        }
      }
      if (l > 0) // through the ReLU in front of this layer
        for (std::size_t k = 0; k < dx.size(); ++k) dx[k] = z[l - 1][k] > 0.0F ? dx[k] : 0.0F;
      dz = std::move(dx);
    }
    update(gradients);
    return loss_sum / static_cast<float>(batch_);
  }

  [[nodiscard]] std::vector<float> const& parameters() const { return parameters_; }

private:
  void update(std::vector<float> const& g) {
    std::size_t const count = parameters_.size();
    float const rate = rate_factors_.empty() ? learning_rate_ : learning_rate_ * rate_factors_.at(steps_ - 1);
    if (optimizer_ == "sgd") {
      float const momentum = 0.9F;
      for (std::size_t k = 0; k < count; ++k) {
        state_[k] = momentum * state_[k] + g[k];
        parameters_[k] = parameters_[k] - rate * state_[k];
      }
      return;
    }
    float const beta1 = 0.9F, beta2 = 0.999F, epsilon = 1e-8F;
    auto const t = static_cast<float>(steps_);
    float const c1 = 1.0F - std::pow(beta1, t), c2 = 1.0F - std::pow(beta2, t);
    // Per shard hydra updates each shard's own range; elementwise, so the same.
    for (std::size_t k = 0; k < count; ++k) {
      float& m = state_[k];
      float& v = state_[count + k];
      m = beta1 * m + (1.0F - beta1) * g[k];
      v = beta2 * v + (1.0F - beta2) * g[k] * g[k];
      float const m_hat = m / c1, v_hat = v / c2;
      parameters_[k] = parameters_[k] - rate * m_hat / (std::sqrt(v_hat) + epsilon);
    }
  }

  std::vector<dense_spec> layers_;
  std::vector<float> parameters_;
  std::vector<float> state_;
  std::size_t batch_;
  std::string optimizer_;
  float learning_rate_;
  std::vector<float> rate_factors_;
  std::size_t steps_ = 0;
};

} // namespace reference
