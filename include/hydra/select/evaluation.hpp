// What an evaluation pass measures: a model's forward pass over held-out
// minibatches, scored from its logits. The trainer runs it as evaluation tasks
// through the same shards, spilling and devices as training.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>

namespace hydra {

// One evaluated minibatch, as a user metric sees it: the logits (the loss
// layer's input, batch x classes, row-major) and the labels.
struct evaluation_batch {
  std::span<float const> logits;
  std::span<std::int32_t const> labels;
  std::size_t classes = 0;
};

// A user metric: a value per minibatch, averaged over the pass. It runs on a
// stream's host thread, so it must only read its argument (and be thread-safe
// if it shares state with other models' metrics).
using metric_function = std::function<double(evaluation_batch const&)>;

struct evaluation {
  double loss = 0;     // mean per-sample loss
  double accuracy = 0; // fraction of samples whose largest logit (the first, on ties) is the label
  double metric = std::numeric_limits<double>::quiet_NaN(); // mean of the user metric; NaN without one
  std::size_t samples = 0;
};

// Orders evaluations best first: higher accuracy, then lower loss. Model
// selection ranks with it, so that ties are broken the same way everywhere.
// A loss that is not a number ranks below every other (so that the order stays
// a strict weak order, which sorting needs).
[[nodiscard]] inline bool better_than(evaluation const& a, evaluation const& b) noexcept {
  if (a.accuracy != b.accuracy) return a.accuracy > b.accuracy;
  if (std::isnan(a.loss) || std::isnan(b.loss)) return !std::isnan(a.loss) && std::isnan(b.loss);
  return a.loss < b.loss;
}

} // namespace hydra
