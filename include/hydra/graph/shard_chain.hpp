// Partitioning a model into shards that fit a device budget.
//
// A shard is a run of consecutive layers. While one of its tasks runs, the device
// holds its *state extent* [parameters | optimizer state | gradients] and its
// *scratch* (every activation of the shard, two gradient buffers, the largest
// workspace, the labels). Its working set is both, each rounded to the pools'
// alignment. The rule that makes prefetch always possible: every shard's working
// set is at most half the budget, so the next shard's extent always fits beside
// the running one.
//
// Two partitioners: greedy (fill each shard until the next layer would not fit)
// and balanced (for a given shard count, minimise the largest shard's FLOPs:
// linear-partition dynamic programming over the same memory rule).
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/sched/working_set.hpp"

namespace hydra {

// One layer cannot form a shard of its own within the limit.
class layer_too_large : public error {
public:
  layer_too_large(std::size_t layer, std::string const& name, std::size_t bytes, std::size_t limit, std::size_t budget)
      : error("layer " + std::to_string(layer) + " (" + name + ") needs " + format_bytes(bytes) +
              " as a shard of its own, above the shard limit of " + format_bytes(limit) +
              " (half the device budget of " + format_bytes(budget) + ", keeping room for the next shard's prefetch)"),
        layer_(layer), bytes_(bytes), limit_(limit) {}
  [[nodiscard]] std::size_t layer() const noexcept { return layer_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

private:
  std::size_t layer_, bytes_, limit_;
};

// Byte offsets inside a shard's scratch block; every part 256-byte aligned.
struct scratch_layout {
  std::vector<std::size_t> activations; // [0] the shard's input, [k] the output of its k-th layer
  std::size_t gradients[2] = {0, 0};    // ping-pong dLoss/d activation buffers
  std::size_t workspace = 0;
  std::size_t labels = 0;
  std::size_t bytes = 0;
};

struct shard {
  std::size_t first_layer = 0; // [first_layer, end_layer)
  std::size_t end_layer = 0;
  std::size_t parameter_offset = 0; // into the model's flat parameter vector
  std::size_t parameter_count = 0;
  std::size_t state_floats_per_parameter = 0; // of the optimizer
  scratch_layout scratch;
  double flops = 0;

  [[nodiscard]] std::size_t layer_count() const noexcept { return end_layer - first_layer; }
  // Device extent: parameters, optimizer state, gradients (float each).
  [[nodiscard]] std::size_t extent_bytes() const noexcept {
    return parameter_count * (2 + state_floats_per_parameter) * sizeof(float);
  }
  // Host home: parameters and optimizer state (gradients live and die on the device).
  [[nodiscard]] std::size_t home_bytes() const noexcept {
    return parameter_count * (1 + state_floats_per_parameter) * sizeof(float);
  }
  [[nodiscard]] std::size_t parameter_bytes() const noexcept { return parameter_count * sizeof(float); }
  [[nodiscard]] std::size_t working_set_bytes() const noexcept {
    return align_up(extent_bytes(), allocation_alignment) + align_up(scratch.bytes, allocation_alignment);
  }
};

// What the partitioners need of a model: its layers' footprints and names.
struct partition_input {
  std::vector<layer_footprint> layers;
  std::vector<std::string> names;
  std::size_t batch = 0;
  std::size_t state_floats_per_parameter = 0;
  std::size_t budget = 0;
};

namespace detail {

inline scratch_layout layout_scratch(partition_input const& in, std::size_t first, std::size_t end) {
  scratch_layout layout;
  std::size_t cursor = 0;
  auto place = [&cursor](std::size_t bytes) {
    std::size_t const at = cursor;
    cursor += align_up(bytes, allocation_alignment);
    return at;
  };
  std::size_t widest = in.layers[first].input_features;
  std::size_t workspace = 0;
  layout.activations.push_back(place(in.batch * in.layers[first].input_features * sizeof(float)));
  for (std::size_t at = first; at < end; ++at) {
    layout.activations.push_back(place(in.batch * in.layers[at].output_features * sizeof(float)));
    widest = std::max(widest, in.layers[at].output_features);
    workspace = std::max(workspace, in.layers[at].workspace_bytes);
  }
  layout.gradients[0] = place(in.batch * widest * sizeof(float));
  layout.gradients[1] = place(in.batch * widest * sizeof(float));
  layout.workspace = place(workspace);
  layout.labels = place(in.batch * sizeof(std::int32_t));
  layout.bytes = cursor;
  return layout;
}

inline shard make_shard(partition_input const& in, std::size_t first, std::size_t end, std::size_t parameter_offset) {
  shard result;
  result.first_layer = first;
  result.end_layer = end;
  result.parameter_offset = parameter_offset;
  result.state_floats_per_parameter = in.state_floats_per_parameter;
  for (std::size_t at = first; at < end; ++at) {
    result.parameter_count += in.layers[at].parameter_count;
    result.flops += in.layers[at].flops;
  }
  result.scratch = layout_scratch(in, first, end);
  return result;
}

inline void check_input(partition_input const& in) {
  expects(!in.layers.empty(), "partition: the model has no layers");
  expects(in.names.size() == in.layers.size(), "partition: one name per layer is required");
  expects(in.batch > 0, "partition: the batch size is 0");
  std::size_t const limit = working_set_limit(in.budget);
  for (std::size_t at = 0; at < in.layers.size(); ++at) {
    std::size_t const alone = make_shard(in, at, at + 1, 0).working_set_bytes();
    if (alone > limit) throw layer_too_large(at, in.names[at], alone, limit, in.budget);
  }
}

} // namespace detail

// A model's shards in order: a training minibatch runs forward through them
// 0..S-1 and backward S-1..0, so they form a chain (the paper's "shard graph"
// of a sequential model).
class shard_chain {
public:
  // Greedy: each shard takes layers until the next one would push its working
  // set past half the budget. Fewest shards for the memory rule.
  static shard_chain greedy(partition_input const& in) {
    detail::check_input(in);
    shard_chain chain(in.budget);
    std::size_t first = 0, offset = 0;
    while (first < in.layers.size()) {
      std::size_t end = first + 1;
      while (end < in.layers.size() &&
             detail::make_shard(in, first, end + 1, offset).working_set_bytes() <= chain.shard_limit())
        ++end;
      chain.shards_.push_back(detail::make_shard(in, first, end, offset));
      offset += chain.shards_.back().parameter_count;
      first = end;
    }
    return chain;
  }

  // Balanced: exactly `shard_count` shards, each within half the budget,
  // minimising the largest shard's FLOPs (linear partition by dynamic programming).
  static shard_chain balanced(partition_input const& in, std::size_t shard_count) {
    detail::check_input(in);
    std::size_t const n = in.layers.size();
    detail::expects(shard_count >= 1 && shard_count <= n,
                    "partition: shard count " + std::to_string(shard_count) + " is outside 1.." + std::to_string(n));
    shard_chain chain(in.budget);
    double const infinity = std::numeric_limits<double>::infinity();
    // fits[a][b]: layers [a, b) form a shard within the limit; flops[a][b] its cost.
    std::vector<std::vector<double>> cost(n + 1, std::vector<double>(n + 1, infinity));
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t b = a + 1; b <= n; ++b) {
        shard const candidate = detail::make_shard(in, a, b, 0);
        if (candidate.working_set_bytes() > chain.shard_limit()) break; // longer runs only grow
        cost[a][b] = candidate.flops;
      }
    // best[k][b]: the smallest possible largest cost of splitting layers [0, b) into k shards.
    std::vector<std::vector<double>> best(shard_count + 1, std::vector<double>(n + 1, infinity));
    std::vector<std::vector<std::size_t>> cut(shard_count + 1, std::vector<std::size_t>(n + 1, 0));
    best[0][0] = 0;
    for (std::size_t k = 1; k <= shard_count; ++k)
      for (std::size_t b = k; b <= n; ++b)
        for (std::size_t a = k - 1; a < b; ++a) {
          double const candidate = std::max(best[k - 1][a], cost[a][b]);
          if (candidate < best[k][b]) {
            best[k][b] = candidate;
            cut[k][b] = a;
          }
        }
    if (best[shard_count][n] == infinity) {
      throw invalid_argument("partition: " + std::to_string(n) + " layers cannot be split into " +
                             std::to_string(shard_count) + " shards of at most " + format_bytes(chain.shard_limit()) +
                             " each; use more shards");
    }
    std::vector<std::size_t> ends;
    for (std::size_t k = shard_count, b = n; k > 0; b = cut[k][b], --k) ends.push_back(b);
    std::size_t first = 0, offset = 0;
    for (auto end = ends.rbegin(); end != ends.rend(); ++end) {
      chain.shards_.push_back(detail::make_shard(in, first, *end, offset));
      offset += chain.shards_.back().parameter_count;
      first = *end;
    }
    return chain;
  }

  [[nodiscard]] std::vector<shard> const& shards() const noexcept { return shards_; }
  [[nodiscard]] std::size_t size() const noexcept { return shards_.size(); }
  [[nodiscard]] shard const& operator[](std::size_t at) const { return shards_.at(at); }
  [[nodiscard]] std::size_t budget() const noexcept { return budget_; }
  [[nodiscard]] std::size_t shard_limit() const noexcept { return working_set_limit(budget_); }
  [[nodiscard]] double largest_flops() const {
    double largest = 0;
    for (shard const& s : shards_) largest = std::max(largest, s.flops);
    return largest;
  }

private:
  explicit shard_chain(std::size_t budget) : budget_(budget) {}
  std::vector<shard> shards_;
  std::size_t budget_;
};

} // namespace hydra
