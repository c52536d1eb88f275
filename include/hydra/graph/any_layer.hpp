// A type-erased layer, so that one model can mix layer types, including ones
// hydra has never seen.
//
// Trade-off, chosen deliberately: std::variant<dense, relu, ...> would avoid the
// virtual call and the heap allocation, but it closes the set of layer types
// inside hydra: a user's own cuBLAS or cuDNN layer could not join a model without
// editing hydra. Type erasure keeps the set open. Its cost is one virtual call per
// layer per task (next to kernels that run for micro- to milliseconds) and one
// allocation per layer when the model is built.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "hydra/graph/layer.hpp"

namespace hydra {

template <class Context>
class any_layer {
public:
  template <class L>
  requires layer<L, Context> &&(!std::same_as<std::remove_cvref_t<L>, any_layer>)any_layer(L concrete)
      : self_(std::make_shared<holder<L>>(std::move(concrete))) {}

  [[nodiscard]] std::string name() const { return self_->name(); }
  [[nodiscard]] layer_footprint footprint(std::size_t batch) const { return self_->footprint(batch); }
  [[nodiscard]] bool is_loss() const noexcept { return self_->is_loss(); } // is_loss_layer
  void initialize(float* parameters, std::uint64_t seed) const { self_->initialize(parameters, seed); }
  void forward(Context& context, forward_arguments const& arguments) const { self_->forward(context, arguments); }
  void backward(Context& context, backward_arguments const& arguments) const { self_->backward(context, arguments); }

private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual std::string name() const = 0;
    virtual layer_footprint footprint(std::size_t batch) const = 0;
    virtual bool is_loss() const noexcept = 0;
    virtual void initialize(float* parameters, std::uint64_t seed) const = 0;
    virtual void forward(Context& context, forward_arguments const& arguments) const = 0;
    virtual void backward(Context& context, backward_arguments const& arguments) const = 0;
  };

  template <class L>
  struct holder final : concept_t {
    explicit holder(L concrete) : layer(std::move(concrete)) {}
    std::string name() const override { return layer.name(); }
    layer_footprint footprint(std::size_t batch) const override { return layer.footprint(batch); }
    bool is_loss() const noexcept override { return is_loss_layer<L>; }
    void initialize(float* parameters, std::uint64_t seed) const override { layer.initialize(parameters, seed); }
    void forward(Context& context, forward_arguments const& arguments) const override {
      layer.forward(context, arguments);
    }
    void backward(Context& context, backward_arguments const& arguments) const override {
      layer.backward(context, arguments);
    }
    L layer;
  };

  // Shared and immutable: copying a model copies handles, not layers.
  std::shared_ptr<concept_t const> self_;
};

} // namespace hydra
