// Softmax cross-entropy loss on the host backend, as the last layer of a model.
// Input: logits [batch x classes]; output: each sample's loss [batch x 1]; the
// model's loss is their mean. Backward ignores output_gradient (the chain starts
// here) and writes d(mean loss)/d logits = (softmax - one_hot(label)) / batch.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/graph/layer.hpp"

namespace hydra::layers {

class softmax_cross_entropy {
public:
  static constexpr bool is_loss = true; // the loss-layer contract (hydra/graph/layer.hpp)
  explicit softmax_cross_entropy(std::size_t classes) : classes_(classes) {}

  [[nodiscard]] std::string name() const { return "softmax cross-entropy " + std::to_string(classes_); }

  [[nodiscard]] layer_footprint footprint(std::size_t batch) const {
    return {.parameter_count = 0,
            .input_features = classes_,
            .output_features = 1,
            .workspace_bytes = 0,
            .flops = 8.0 * static_cast<double>(batch * classes_)};
  }

  void initialize(float*, std::uint64_t) const {}

  void forward(host_execution_context& context, forward_arguments const& a) const {
    context.enqueue([a, classes = classes_] {
      for (std::size_t b = 0; b < a.batch; ++b) {
        float const* z = a.input + b * classes;
        float const top = row_max(z, classes);
        a.output[b] = std::log(exp_sum(z, classes, top)) - (z[a.labels[b]] - top);
      }
    });
  }

  void backward(host_execution_context& context, backward_arguments const& a) const {
    context.enqueue([a, classes = classes_] {
      float const scale = 1.0F / static_cast<float>(a.batch);
      for (std::size_t b = 0; b < a.batch; ++b) {
        float const* z = a.input + b * classes;
        float* dz = a.input_gradient + b * classes;
        float const top = row_max(z, classes);
        float const sum = exp_sum(z, classes, top);
        for (std::size_t c = 0; c < classes; ++c) {
          float const target = static_cast<std::size_t>(a.labels[b]) == c ? 1.0F : 0.0F;
          dz[c] = (std::exp(z[c] - top) / sum - target) * scale;
        }
      }
    });
  }

  static float row_max(float const* z, std::size_t classes) {
    float top = z[0];
    for (std::size_t c = 1; c < classes; ++c) top = z[c] > top ? z[c] : top;
    return top;
  }
  static float exp_sum(float const* z, std::size_t classes, float top) {
    float sum = 0.0F;
    for (std::size_t c = 0; c < classes; ++c) sum += std::exp(z[c] - top);
    return sum;
  }

private:
  std::size_t classes_;
};

static_assert(layer<softmax_cross_entropy, host_execution_context>);

} // namespace hydra::layers
