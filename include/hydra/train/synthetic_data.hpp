// A seeded synthetic classification task, for examples, tests and benchmarks
// that need minibatches but not a data set: standard-normal features, and
// labels that either carry a signal to learn or are noise. Minibatch k of a
// task is the same at every call (with the same standard library: the normal
// distribution's algorithm is the library's), so a model trained on it alone
// and in a sweep sees the same data.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/train/minibatch.hpp"

namespace hydra {

struct synthetic_classification {
  enum class label_rule : std::uint8_t {
    largest_feature, // the index of the largest of the first `classes` features (the default)
    linear_teacher,  // the best class under a fixed random linear map of the features (seeded by `seed`)
    random,          // independent of the features: nothing to learn (for timings)
  };

  std::size_t features = 0;
  std::size_t classes = 0;
  std::size_t batch = 0;
  label_rule labels = label_rule::largest_feature;
  std::uint64_t seed = 1; // tasks with different seeds draw different data

  // Minibatch `step` (usable as a data_source).
  [[nodiscard]] minibatch operator()(std::size_t step) const {
    detail::expects(features > 0 && classes > 0 && batch > 0,
                    "synthetic_classification: features, classes and batch must all be positive");
    detail::expects(labels != label_rule::largest_feature || classes <= features,
                    "synthetic_classification: largest_feature labels need classes (" + std::to_string(classes) +
                        ") <= features (" + std::to_string(features) + ")");
    std::seed_seq per_step = seed_sequence(static_cast<std::uint64_t>(step), 0);
    std::mt19937_64 random(per_step);
    std::normal_distribution<float> normal(0.0F, 1.0F);
    minibatch data;
    data.inputs.resize(batch * features);
    for (float& x : data.inputs) x = normal(random);
    data.labels.reserve(batch);
    std::vector<float> const teacher = labels == label_rule::linear_teacher ? teacher_weights() : std::vector<float>{};
    for (std::size_t b = 0; b < batch; ++b) {
      float const* row = data.inputs.data() + b * features;
      std::size_t label = 0;
      switch (labels) {
      case label_rule::random:
        label = static_cast<std::size_t>(random() % classes);
        break;
      case label_rule::largest_feature:
        label = static_cast<std::size_t>(std::max_element(row, row + classes) - row);
        break;
      case label_rule::linear_teacher:
        label = best_class(row, teacher);
        break;
      }
      data.labels.push_back(static_cast<std::int32_t>(label));
    }
    return data;
  }

private:
  // std::seed_seq keeps 32 bits of each value: the seed and the step go in as
  // halves, so that seeds or steps differing only in their high bits differ.
  [[nodiscard]] std::seed_seq seed_sequence(std::uint64_t step, std::uint32_t purpose) const {
    return std::seed_seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                         static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32), purpose};
  }

  // The teacher: a features x classes matrix of standard normals, the same for every step.
  [[nodiscard]] std::vector<float> teacher_weights() const {
    std::seed_seq for_teacher = seed_sequence(0, 1);
    std::mt19937_64 random(for_teacher);
    std::normal_distribution<float> normal(0.0F, 1.0F);
    std::vector<float> weights(features * classes);
    for (float& w : weights) w = normal(random);
    return weights;
  }

  [[nodiscard]] std::size_t best_class(float const* row, std::vector<float> const& teacher) const {
    std::size_t best = 0;
    float best_score = 0;
    for (std::size_t c = 0; c < classes; ++c) {
      float score = 0;
      for (std::size_t i = 0; i < features; ++i) score += row[i] * teacher[i * classes + c];
      if (c == 0 || score > best_score) {
        best_score = score;
        best = c;
      }
    }
    return best;
  }
};

} // namespace hydra
