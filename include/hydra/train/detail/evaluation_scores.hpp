// The running scores of one model's evaluation pass: each evaluated minibatch
// adds its samples' losses, its correct predictions and the user metric, on
// the stream thread that received its logits; the trainer takes the totals
// once the pass's last task has completed (which orders the two).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "hydra/select/evaluation.hpp"

namespace hydra::detail {

class evaluation_scores {
public:
  void set_metric(metric_function metric) { metric_ = std::move(metric); }

  // One minibatch: `logits` batch x classes, `losses` and `labels` per sample.
  void add(float const* logits, float const* losses, std::int32_t const* labels, std::size_t batch,
           std::size_t classes) {
    for (std::size_t b = 0; b < batch; ++b) {
      float const* row = logits + b * classes;
      std::size_t best = 0; // the first of equal logits, as std::max_element picks
      for (std::size_t c = 1; c < classes; ++c)
        if (row[c] > row[best]) best = c;
      correct_ += static_cast<std::int64_t>(best) == labels[b] ? 1 : 0;
      loss_sum_ += static_cast<double>(losses[b]);
    }
    samples_ += batch;
    ++minibatches_;
    if (metric_) metric_sum_ += metric_({{logits, batch * classes}, {labels, batch}, classes});
  }

  // The pass's evaluation, and a fresh start for the next pass.
  [[nodiscard]] evaluation take() {
    evaluation out;
    out.samples = samples_;
    if (samples_ > 0) {
      out.loss = loss_sum_ / static_cast<double>(samples_);
      out.accuracy = static_cast<double>(correct_) / static_cast<double>(samples_);
    }
    if (metric_ && minibatches_ > 0) out.metric = metric_sum_ / static_cast<double>(minibatches_);
    loss_sum_ = metric_sum_ = 0;
    correct_ = samples_ = minibatches_ = 0;
    return out;
  }

private:
  metric_function metric_;
  double loss_sum_ = 0;
  double metric_sum_ = 0;
  std::size_t correct_ = 0;
  std::size_t samples_ = 0;
  std::size_t minibatches_ = 0;
};

} // namespace hydra::detail
