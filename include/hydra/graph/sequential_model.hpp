// A model as hydra sees it: a chain of layers (possibly of different types) and
// the batch size it trains with. Describes only: it owns no memory and runs
// nothing. Consecutive layers must agree on their feature sizes.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/graph/any_layer.hpp"
#include "hydra/graph/shard_chain.hpp"

namespace hydra {

template <class Context>
class sequential_model {
public:
  sequential_model(std::vector<any_layer<Context>> layers, std::size_t batch)
      : layers_(std::move(layers)), batch_(batch) {
    detail::expects(!layers_.empty(), "sequential_model: a model needs at least one layer");
    detail::expects(batch_ > 0, "sequential_model: the batch size is 0");
    for (std::size_t at = 0; at < layers_.size(); ++at) {
      footprints_.push_back(layers_[at].footprint(batch_));
      parameter_offsets_.push_back(parameter_count_);
      parameter_count_ += footprints_.back().parameter_count;
      if (at > 0 && footprints_[at - 1].output_features != footprints_[at].input_features) {
        throw invalid_argument("sequential_model: layer " + std::to_string(at - 1) + " (" + layers_[at - 1].name() +
                               ") outputs " + std::to_string(footprints_[at - 1].output_features) +
                               " features but layer " + std::to_string(at) + " (" + layers_[at].name() + ") takes " +
                               std::to_string(footprints_[at].input_features));
      }
    }
    check_loss_layer();
  }

  [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
  [[nodiscard]] std::size_t batch() const noexcept { return batch_; }
  [[nodiscard]] any_layer<Context> const& layer(std::size_t at) const { return layers_.at(at); }
  [[nodiscard]] layer_footprint const& footprint(std::size_t at) const { return footprints_.at(at); }
  [[nodiscard]] std::size_t parameter_count() const noexcept { return parameter_count_; }
  // Where layer `at`'s parameters start in the model's flat parameter vector.
  [[nodiscard]] std::size_t parameter_offset(std::size_t at) const { return parameter_offsets_.at(at); }
  [[nodiscard]] std::size_t input_features() const { return footprints_.front().input_features; }
  // "layer 3 (dense 32x10)": how errors name a layer.
  [[nodiscard]] std::string describe_layer(std::size_t at) const {
    std::string text = "layer ";
    return text.append(std::to_string(at)).append(" (").append(layers_.at(at).name()).append(")");
  }

  // What the partitioners need to split it for an optimizer that keeps
  // `state_floats_per_parameter` floats per parameter, under `budget` bytes.
  [[nodiscard]] partition_input describe(std::size_t state_floats_per_parameter, std::size_t budget) const {
    partition_input in{footprints_, {}, batch_, state_floats_per_parameter, budget};
    for (auto const& layer : layers_) in.names.push_back(layer.name());
    return in;
  }

  // The whole model's initial parameters, layer by layer (seed + layer index).
  [[nodiscard]] std::vector<float> initial_parameters(std::uint64_t seed) const {
    std::vector<float> parameters(parameter_count_);
    for (std::size_t at = 0; at < layers_.size(); ++at)
      layers_[at].initialize(parameters.data() + parameter_offsets_[at], seed + at);
    return parameters;
  }

private:
  // The loss-layer contract (layer.hpp): the last layer is a loss, with one
  // output per sample, and no other layer is. Checked here, where the model is
  // made, rather than on a stream thread once it first trains.
  void check_loss_layer() const {
    for (std::size_t at = 0; at + 1 < layers_.size(); ++at) {
      if (layers_[at].is_loss())
        throw invalid_argument("sequential_model: " + describe_layer(at) +
                               " is a loss layer, but only the last layer may be one");
    }
    std::size_t const last = layers_.size() - 1;
    if (!layers_[last].is_loss()) {
      throw invalid_argument("sequential_model: the last layer, " + describe_layer(last) +
                             ", is not a loss layer. A model ends with one: it reads the labels, writes one loss per "
                             "sample and starts the backward pass (a loss layer type declares "
                             "`static constexpr bool is_loss = true;`)");
    }
    if (footprints_[last].output_features != 1) {
      throw invalid_argument("sequential_model: the loss layer, " + describe_layer(last) + ", outputs " +
                             std::to_string(footprints_[last].output_features) +
                             " features per sample; a loss outputs 1 (the sample's loss)");
    }
  }

  std::vector<any_layer<Context>> layers_;
  std::size_t batch_;
  std::vector<layer_footprint> footprints_;
  std::vector<std::size_t> parameter_offsets_;
  std::size_t parameter_count_ = 0;
};

} // namespace hydra
