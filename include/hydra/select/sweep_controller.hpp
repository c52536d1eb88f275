// The SweepController concept: model selection's decisions, pluggable like the
// scheduling policy and kept apart from it. The policy decides which ready task
// a device runs next; the controller decides how far each configuration trains.
// At each of a model's checkpoints (the end of what was planned for it,
// followed by an evaluation on its validation data when it has some) the
// controller sees the metrics and may train the model further, stop it (its
// memory and state are released, its result and metrics kept), or start
// configurations that have not trained yet. The trainer carries the decisions
// out through sweep_plan; the scheduler's remaining-work estimates follow them.
#pragma once

#include <concepts>
#include <cstddef>
#include <optional>
#include <string>

#include "hydra/select/evaluation.hpp"

namespace hydra {

// What a controller may ask of the sweep. The trainer implements it.
class sweep_plan {
public:
  sweep_plan() = default;
  sweep_plan(sweep_plan const&) = delete;
  sweep_plan& operator=(sweep_plan const&) = delete;
  virtual ~sweep_plan() = default;

  [[nodiscard]] virtual std::size_t model_count() const = 0;
  [[nodiscard]] virtual std::size_t device_count() const = 0;
  // The most minibatches `model` may train. A controller counts a model's
  // minibatches from its first: those before a snapshot it resumed from count
  // (its configuration's `steps` are then the ones still to train).
  [[nodiscard]] virtual std::size_t max_minibatches(std::size_t model) const = 0;
  // Training minibatches planned for `model` so far, done or to do.
  [[nodiscard]] virtual std::size_t planned_minibatches(std::size_t model) const = 0;
  // Whether `model` is evaluated at its checkpoints (its configuration has validation data).
  [[nodiscard]] virtual bool has_validation(std::size_t model) const = 0;
  // Whether `model` has failed or been stopped (it can train no further).
  [[nodiscard]] virtual bool out(std::size_t model) const = 0;
  // Trains `model` for `minibatches` more (at most up to its maximum), then
  // evaluates it on its validation data and reports the checkpoint. A model
  // that has not trained yet starts: a configuration added to the running sweep.
  virtual void train(std::size_t model, std::size_t minibatches) = 0;
  // Stops `model` for good; `reason` goes into its result. Only a model whose
  // planned work has ended (at or after its checkpoint) can be stopped:
  // stopping one mid-chain would depend on the schedule.
  virtual void stop(std::size_t model, std::string const& reason) = 0;
};

// A model's checkpoint, as its controller sees it.
struct checkpoint {
  std::size_t model = 0;
  std::size_t minibatches = 0;          // trained so far (from the model's first)
  std::optional<evaluation> validation; // none when the model has no validation data
};

// A controller: start() plans the first stretch of the sweep; on_checkpoint()
// is called as each model's planned work ends. Both run on the trainer's
// thread. A controller must not keep the plan between calls (a resumed run
// shows it its history through a plan of its own), and its decisions must
// depend only on what it is shown and on the plan's answers: that is what lets
// a resumed run rebuild it by showing it the same again. A controller may also define on_failure(plan, model), called
// when a model fails (it will report no checkpoint); one without it must not wait for that model's checkpoint.
template <class C>
concept sweep_controller = requires(C& c, sweep_plan& plan, checkpoint const& reached) {
  c.start(plan);
  c.on_checkpoint(plan, reached);
  { c.name() } -> std::convertible_to<std::string>;
};

} // namespace hydra
