// A sweep controller chosen at run time (a command-line flag): any type
// satisfying hydra::sweep_controller, behind one virtual call per checkpoint.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "hydra/select/full_grid.hpp"
#include "hydra/select/sweep_controller.hpp"

namespace hydra {

class any_controller {
public:
  any_controller() : any_controller(full_grid{}) {}

  template <sweep_controller C>
  requires(!std::same_as<std::remove_cvref_t<C>, any_controller>) any_controller(C concrete)
      : self_(std::make_unique<holder<C>>(std::move(concrete))) {}

  // A copy is a controller of its own (two trainers given one options struct
  // must not share, and reset, one controller's state).
  any_controller(any_controller const& other) : self_(other.self_->clone()) {}
  any_controller& operator=(any_controller const& other) {
    if (this != &other) self_ = other.self_->clone();
    return *this;
  }
  any_controller(any_controller&&) noexcept = default;
  any_controller& operator=(any_controller&&) noexcept = default;
  ~any_controller() = default;

  void start(sweep_plan& plan) { self_->start(plan); }
  void on_checkpoint(sweep_plan& plan, checkpoint const& reached) { self_->on_checkpoint(plan, reached); }
  void on_failure(sweep_plan& plan, std::size_t model) { self_->on_failure(plan, model); }
  [[nodiscard]] std::string name() const { return self_->name(); }

  // The concrete controller, to read its state after a run (nullptr if it is not a C).
  template <class C>
  [[nodiscard]] C const* get() const noexcept {
    auto const* typed = dynamic_cast<holder<C> const*>(self_.get());
    return typed != nullptr ? &typed->controller : nullptr;
  }

private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void start(sweep_plan&) = 0;
    virtual void on_checkpoint(sweep_plan&, checkpoint const&) = 0;
    virtual void on_failure(sweep_plan&, std::size_t) = 0;
    virtual std::string name() const = 0;
    virtual std::unique_ptr<concept_t> clone() const = 0;
  };
  template <class C>
  struct holder final : concept_t {
    explicit holder(C concrete) : controller(std::move(concrete)) {}
    void start(sweep_plan& plan) override { controller.start(plan); }
    void on_checkpoint(sweep_plan& plan, checkpoint const& reached) override {
      controller.on_checkpoint(plan, reached);
    }
    void on_failure(sweep_plan& plan, std::size_t m) override {
      if constexpr (requires { controller.on_failure(plan, m); }) controller.on_failure(plan, m);
    }
    std::string name() const override { return controller.name(); }
    std::unique_ptr<concept_t> clone() const override { return std::make_unique<holder>(controller); }
    C controller;
  };

  std::unique_ptr<concept_t> self_;
};

static_assert(sweep_controller<any_controller>);

} // namespace hydra
