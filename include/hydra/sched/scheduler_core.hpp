// The one decision core of hydra's scheduling. It knows every model's chain and
// cost estimates, keeps the ready set (at most one task per model: the next in
// its chain once the previous has completed), and, when a driver says "device d
// can take a task", asks the policy. It executes nothing: the runtime trainer and
// the simulator both drive it, so they make the same decisions for the same costs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/sched/policy.hpp"
#include "hydra/sched/task.hpp"

namespace hydra {

// Estimated compute seconds of each shard's forward and backward task, and how
// many minibatches the model trains.
struct model_costs {
  std::vector<double> forward_seconds;
  std::vector<double> backward_seconds;
  std::size_t minibatches = 0;

  friend bool operator==(model_costs const&, model_costs const&) = default;
};

// A stretch of a model's chain: `minibatches` training steps, or `minibatches`
// evaluation minibatches (forward only). A model's chain starts as one training
// segment of model_costs::minibatches and grows with scheduler_core::extend.
struct chain_segment {
  task_purpose purpose = task_purpose::train;
  std::size_t minibatches = 0;

  friend bool operator==(chain_segment const&, chain_segment const&) = default;
};

struct decision {
  std::size_t device;
  hydra::task task;
  friend bool operator==(decision const&, decision const&) = default;
};

class scheduler_core {
public:
  // `speeds`: each device's compute speed (device_view::speed); empty: all 1.
  scheduler_core(std::vector<model_costs> models, std::size_t devices, std::vector<double> speeds = {})
      : devices_(devices), speeds_(std::move(speeds)) {
    detail::expects(devices_ > 0, "scheduler: device count is 0; at least 1 device is required");
    if (speeds_.empty()) speeds_.assign(devices_, 1.0);
    detail::expects(speeds_.size() == devices_, "scheduler: " + std::to_string(speeds_.size()) + " device speeds for " +
                                                    std::to_string(devices_) + " devices");
    for (std::size_t d = 0; d < devices_; ++d)
      detail::expects(valid_device_speed(speeds_[d]), "scheduler: device " + std::to_string(d) + " has a speed of " +
                                                          std::to_string(speeds_[d]) +
                                                          "; a speed is > 0 and at most 1e6");
    detail::expects(!models.empty(), "scheduler: no models to train");
    for (std::size_t id = 0; id < models.size(); ++id) add_model(id, std::move(models[id]));
    for (std::size_t id = 0; id < models_.size(); ++id)
      if (models_[id].total > 0)
        make_ready(id);
      else
        models_[id].state = model_state::finished;
    advance_first_unfinished();
  }

  // Asks `choose` for a task for `device`; the chosen task is then in flight.
  // A pick of model `held`'s task is not taken: it stays ready and nothing is
  // returned (the policy was asked all the same; a policy that keeps state,
  // such as round_robin's turn, counts the pick).
  template <policy P>
  std::optional<task> decide(P& choose, std::size_t device, std::size_t held = nowhere) {
    if (device >= devices_) [[unlikely]]
      throw invalid_argument("scheduler: device " + std::to_string(device) + " asked for a task; there are " +
                             std::to_string(devices_) + " devices");
    if (ready_.empty()) return std::nullopt;
    std::span<ready_task const> offered = ready_;
    if (restricted_models_ > 0) {
      // Only what may run here; offered_index_ maps the policy's pick back.
      offered_.clear();
      offered_index_.clear();
      for (std::size_t i = 0; i < ready_.size(); ++i)
        if (may_run(ready_[i].task, device)) {
          offered_.push_back(ready_[i]);
          offered_index_.push_back(i);
        }
      if (offered_.empty()) return std::nullopt;
      offered = offered_;
    }
    device_view const view{device, devices_, models_.size(), first_unfinished_, speeds_.at(device)};
    std::optional<std::size_t> const picked = choose.pick(offered, view);
    if (!picked) return std::nullopt;
    detail::expects(*picked < offered.size(), "scheduler: the policy picked an index past the ready set");
    std::size_t const index = restricted_models_ > 0 ? offered_index_[*picked] : *picked;
    task const chosen = ready_[index].task;
    if (chosen.model == held) return std::nullopt;
    remove_ready(index);
    models_[chosen.model].state = model_state::in_flight;
    ++in_flight_;
    if (keep_log_) log_.push_back({device, chosen});
    return chosen;
  }

  // The in-flight task of its model finished (on `device`, where its output
  // activation was made: ready_task::activation_on); its successor becomes ready.
  void complete(task const& done, std::size_t device = nowhere) {
    auto& m = models_.at(done.model);
    if (m.state != model_state::in_flight || m.position != done.position) {
      throw invalid_argument("scheduler: completion of " + describe(done) + ", which is not in flight");
    }
    --in_flight_;
    m.last_device = device;
    m.remaining -= cost_of(done.model, done.position);
    ++m.position;
    if (m.position == m.total) {
      m.state = model_state::finished;
      advance_first_unfinished();
      return;
    }
    make_ready(done.model);
  }

  // An in-flight task could not be placed after all (no room on its device right
  // now): it becomes ready again, as the newest ready task.
  void release(task const& t) {
    ready_again(t, "release");
    if (keep_log_ && !log_.empty() && log_.back().task == t) log_.pop_back();
  }

  // A launched task taken back before its compute started
  // (sweep_driver::take_back): ready again, as the newest ready task. Its
  // decision stays in the log: it was carried out, then undone.
  void withdraw(task const& t) { ready_again(t, "withdrawal"); }

  // Takes a model out (a fault): its ready task is dropped and an in-flight one
  // is forgotten (the driver must not report its completion).
  void stop(std::size_t model) {
    auto& m = models_.at(model);
    if (m.state == model_state::ready) remove_ready(m.ready_index);
    if (m.state == model_state::in_flight) --in_flight_;
    m.state = model_state::stopped;
    advance_first_unfinished();
  }

  // Appends `more` to a model's chain (a sweep controller continuing it, an
  // evaluation after the run). A model whose chain had ended becomes ready
  // again; its remaining work, which the policies rank by, grows either way.
  void extend(std::size_t model, chain_segment const& more) {
    auto& m = models_.at(model);
    detail::expects(more.minibatches > 0, "scheduler: extending model " + std::to_string(model) + " by 0 minibatches");
    detail::expects(m.state != model_state::stopped,
                    "scheduler: model " + std::to_string(model) + " was stopped; its chain cannot be extended");
    append_segment(m, more);
    m.remaining = remaining_from(model, m.position);
    if (m.state == model_state::finished) {
      make_ready(model);
      first_unfinished_ = std::min(first_unfinished_, model);
    } else if (m.state == model_state::ready) {
      ready_[m.ready_index].remaining_seconds = m.remaining;
    }
  }

  // Where a model's shards may run: shard s only on the devices d with
  // runs_on[s * device_count() + d] (a shard whose working set fits some
  // devices' memory and not others'). Empty: anywhere. Each shard needs a device.
  void restrict_placement(std::size_t model, std::vector<bool> runs_on) {
    auto& m = models_.at(model);
    std::string const who = "scheduler: placement of model " + std::to_string(model);
    if (runs_on.empty()) {
      if (!m.runs_on.empty()) --restricted_models_;
      m.runs_on.clear();
      return;
    }
    detail::expects(runs_on.size() == m.shards * devices_,
                    who + " names " + std::to_string(runs_on.size()) + " shard-device pairs; it has " +
                        std::to_string(m.shards) + " shards x " + std::to_string(devices_) + " devices");
    for (std::size_t s = 0; s < m.shards; ++s) {
      auto const first = runs_on.begin() + static_cast<std::ptrdiff_t>(s * devices_);
      detail::expects(std::find(first, first + static_cast<std::ptrdiff_t>(devices_), true) !=
                          first + static_cast<std::ptrdiff_t>(devices_),
                      who + " leaves shard " + std::to_string(s) + " no device to run on");
    }
    if (m.runs_on.empty()) ++restricted_models_;
    m.runs_on = std::move(runs_on);
  }

  // Whether `t` may run on `device` (restrict_placement).
  [[nodiscard]] bool may_run(task const& t, std::size_t device) const {
    auto const& m = models_.at(t.model);
    return m.runs_on.empty() || (device < devices_ && t.shard < m.shards && m.runs_on[t.shard * devices_ + device]);
  }

  // Affinity: where `shard` of `model` is resident now (nowhere when evicted).
  void set_resident(std::size_t model, std::size_t shard, std::size_t device) {
    auto& m = models_.at(model);
    m.resident_on.at(shard) = device;
    if (m.state == model_state::ready && ready_[m.ready_index].task.shard == shard)
      ready_[m.ready_index].resident_on = device;
  }

  // Replaces a model's estimates (e.g. with what its profiling minibatch measured).
  void update_costs(std::size_t model, model_costs const& costs) {
    auto& m = models_.at(model);
    detail::expects(costs.forward_seconds.size() == m.shards && costs.backward_seconds.size() == m.shards,
                    "scheduler: new costs for model " + std::to_string(model) + " name a different shard count");
    m.costs.forward_seconds = costs.forward_seconds;
    m.costs.backward_seconds = costs.backward_seconds;
    m.remaining = remaining_from(model, m.position);
    if (m.state == model_state::ready) {
      ready_[m.ready_index].remaining_seconds = m.remaining;
      ready_[m.ready_index].task_seconds = cost_of(model, m.position);
    }
  }

  // The model with the most estimated work left among those still training
  // (ready or in flight; ties: the lowest id), or nowhere when none is.
  [[nodiscard]] std::size_t longest_remaining_model() const noexcept {
    std::size_t longest = nowhere;
    for (std::size_t id = first_unfinished_; id < models_.size(); ++id) {
      auto const& m = models_[id];
      if (m.state != model_state::ready && m.state != model_state::in_flight) continue;
      if (longest == nowhere || m.remaining > models_[longest].remaining) longest = id;
    }
    return longest;
  }

  [[nodiscard]] std::span<ready_task const> ready() const noexcept { return ready_; }
  [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
  [[nodiscard]] bool finished() const noexcept { return ready_.empty() && in_flight_ == 0; }
  [[nodiscard]] std::size_t model_count() const noexcept { return models_.size(); }
  [[nodiscard]] std::size_t device_count() const noexcept { return devices_; }
  [[nodiscard]] double device_speed(std::size_t device) const { return speeds_.at(device); }
  [[nodiscard]] bool model_done(std::size_t model) const { return models_.at(model).state == model_state::finished; }
  [[nodiscard]] bool model_stopped(std::size_t model) const { return models_.at(model).state == model_state::stopped; }
  [[nodiscard]] double remaining_seconds(std::size_t model) const { return models_.at(model).remaining; }
  [[nodiscard]] std::size_t tasks_of(std::size_t model) const { return models_.at(model).total; }
  [[nodiscard]] std::size_t shards_of(std::size_t model) const { return models_.at(model).shards; }
  [[nodiscard]] double task_seconds(task const& t) const { return cost_of(t.model, t.position); }
  // Where `model` stands in its chain: the position of its ready or in-flight
  // task, or its chain's length once the chain has ended.
  [[nodiscard]] std::size_t position_of(std::size_t model) const { return models_.at(model).position; }

  // The task at `position` of a model's chain.
  [[nodiscard]] task task_at_position(std::size_t model, std::size_t position) const {
    auto const& m = models_.at(model);
    std::size_t const k = segment_at(m, position);
    segment_entry const& g = m.segments[k];
    std::size_t const within = position - g.first_position;
    task t{};
    if (g.purpose == task_purpose::train) {
      t = task_at(model, m.shards, within);
      t.minibatch += g.first_minibatch;
    } else {
      t = {model, within / m.shards, within % m.shards, direction::forward, 0, task_purpose::evaluate, 0};
    }
    t.position = position;
    t.segment = k;
    return t;
  }

  // How many tasks after `position` `model` needs `shard` again; max() when
  // its chain (as planned so far) never does. What eviction ranks shards by.
  [[nodiscard]] std::size_t tasks_until_next_use(std::size_t model, std::size_t position, std::size_t shard) const {
    auto const& m = models_.at(model);
    if (m.segments.empty()) return std::numeric_limits<std::size_t>::max();
    for (std::size_t k = segment_at(m, std::min(position, m.total - 1)); k < m.segments.size(); ++k) {
      segment_entry const& g = m.segments[k];
      bool const training = g.purpose == task_purpose::train;
      std::size_t const per_minibatch = training ? 2 * m.shards : m.shards;
      std::size_t const end = g.first_position + per_minibatch * g.minibatches;
      std::size_t next = std::numeric_limits<std::size_t>::max();
      for (std::size_t const offset : {shard, training ? per_minibatch - 1 - shard : shard}) {
        std::size_t at = g.first_position + offset;
        if (position >= g.first_position) {
          std::size_t const within = (position - g.first_position) % per_minibatch;
          std::size_t const base = position - within;
          at = offset > within ? base + offset : base + per_minibatch + offset;
        }
        next = std::min(next, at);
      }
      if (next < end) return next - position;
    }
    return std::numeric_limits<std::size_t>::max();
  }

  // How many segments a model's chain has, and how many training minibatches
  // they hold (done or to do).
  [[nodiscard]] std::size_t segment_count(std::size_t model) const { return models_.at(model).segments.size(); }
  [[nodiscard]] std::size_t training_minibatches(std::size_t model) const { return models_.at(model).trained; }

  // The segments of a model's chain, in order.
  [[nodiscard]] std::vector<chain_segment> segments_of(std::size_t model) const {
    std::vector<chain_segment> out;
    for (auto const& g : models_.at(model).segments) out.push_back({g.purpose, g.minibatches});
    return out;
  }

  // Every decision, in order (device, task): what the simulator is compared on.
  [[nodiscard]] std::vector<decision> const& decisions() const noexcept { return log_; }
  void keep_decision_log(bool keep) noexcept { keep_log_ = keep; }

private:
  // In-flight task t becomes ready again (release, withdraw: `what`).
  void ready_again(task const& t, char const* what) {
    auto const& m = models_.at(t.model);
    if (m.state != model_state::in_flight || m.position != t.position)
      throw invalid_argument(std::string("scheduler: ") + what + " of " + describe(t) + ", which is not in flight");
    --in_flight_;
    make_ready(t.model);
  }

  enum class model_state : std::uint8_t { ready, in_flight, finished, stopped };

  struct segment_entry {
    task_purpose purpose = task_purpose::train;
    std::size_t minibatches = 0;
    std::size_t first_position = 0;
    std::size_t first_minibatch = 0; // training: the model's training minibatches before it
  };

  struct model_entry {
    model_costs costs;
    std::vector<segment_entry> segments;
    std::size_t shards = 0;
    std::size_t trained = 0;  // training minibatches in the chain
    std::size_t total = 0;    // tasks in the whole chain
    std::size_t position = 0; // of the ready or in-flight task
    double remaining = 0;     // estimated seconds from `position` on
    model_state state = model_state::ready;
    std::size_t ready_index = 0;
    std::vector<std::size_t> resident_on;
    std::size_t last_device = nowhere; // where its last completed task ran
    std::vector<bool> runs_on;         // shard x device (restrict_placement); empty: anywhere
  };

  void add_model(std::size_t id, model_costs costs) {
    detail::expects(!costs.forward_seconds.empty() && costs.forward_seconds.size() == costs.backward_seconds.size(),
                    "scheduler: model " + std::to_string(id) + " needs one forward and one backward cost per shard");
    model_entry m;
    m.shards = costs.forward_seconds.size();
    if (costs.minibatches > 0) append_segment(m, {task_purpose::train, costs.minibatches});
    m.resident_on.assign(m.shards, nowhere);
    m.costs = std::move(costs);
    models_.push_back(std::move(m));
    models_.back().remaining = remaining_from(id, 0);
  }

  static void append_segment(model_entry& m, chain_segment const& more) {
    std::size_t const per_minibatch = more.purpose == task_purpose::train ? 2 * m.shards : m.shards;
    m.segments.push_back({more.purpose, more.minibatches, m.total, m.trained});
    m.total += per_minibatch * more.minibatches;
    if (more.purpose == task_purpose::train) m.trained += more.minibatches;
  }

  // The segment holding `position` (< the chain's length).
  [[nodiscard]] static std::size_t segment_at(model_entry const& m, std::size_t position) {
    auto const after = std::upper_bound(m.segments.begin(), m.segments.end(), position,
                                        [](std::size_t p, segment_entry const& g) { return p < g.first_position; });
    return static_cast<std::size_t>(after - m.segments.begin()) - 1;
  }

  // Seconds of the chain from `position` on: per segment, the rest of its
  // minibatch, then whole minibatches (O(segments x shards), whatever the
  // number of minibatches).
  [[nodiscard]] double remaining_from(std::size_t model, std::size_t position) const {
    auto const& m = models_[model];
    if (position >= m.total) return 0;
    double total = 0;
    for (std::size_t k = segment_at(m, position); k < m.segments.size(); ++k) {
      segment_entry const& g = m.segments[k];
      bool const training = g.purpose == task_purpose::train;
      std::size_t const per_minibatch = training ? 2 * m.shards : m.shards;
      std::size_t const from = std::max(position, g.first_position) - g.first_position;
      double whole = 0, rest = 0;
      for (std::size_t within = 0; within < per_minibatch; ++within) {
        double const cost = training ? cost_in_minibatch(m, within) : m.costs.forward_seconds[within];
        whole += cost;
        if (within >= from % per_minibatch) rest += cost;
      }
      std::size_t const minibatches_after = g.minibatches - from / per_minibatch - 1;
      total += rest + static_cast<double>(minibatches_after) * whole;
    }
    return total;
  }

  // The cost of the task `within` a training minibatch.
  [[nodiscard]] static double cost_in_minibatch(model_entry const& m, std::size_t within) {
    return within < m.shards ? m.costs.forward_seconds[within] : m.costs.backward_seconds[2 * m.shards - 1 - within];
  }

  [[nodiscard]] double cost_of(std::size_t model, std::size_t position) const {
    auto const& m = models_[model];
    segment_entry const& g = m.segments[segment_at(m, position)];
    std::size_t const within = position - g.first_position;
    return g.purpose == task_purpose::train ? cost_in_minibatch(m, within % (2 * m.shards))
                                            : m.costs.forward_seconds[within % m.shards];
  }

  void make_ready(std::size_t id) {
    auto& m = models_[id];
    m.state = model_state::ready;
    m.ready_index = ready_.size();
    task const next = task_at_position(id, m.position);
    // A minibatch's first task reads its data from host memory; every other
    // reads the output of the task before it.
    bool const reads_previous = !(next.pass == direction::forward && next.shard == 0);
    ready_.push_back({next, cost_of(id, m.position), m.remaining, ready_sequence_++, m.resident_on[next.shard],
                      reads_previous ? m.last_device : nowhere});
  }

  // Swap-remove: the set's order carries no meaning (ready_since does).
  void remove_ready(std::size_t index) {
    if (index + 1 != ready_.size()) {
      ready_[index] = ready_.back();
      models_[ready_[index].task.model].ready_index = index;
    }
    ready_.pop_back();
  }

  void advance_first_unfinished() {
    while (first_unfinished_ < models_.size() && (models_[first_unfinished_].state == model_state::finished ||
                                                  models_[first_unfinished_].state == model_state::stopped))
      ++first_unfinished_;
  }

  std::size_t devices_;
  std::vector<double> speeds_; // per device
  std::vector<model_entry> models_;
  std::vector<ready_task> ready_;
  std::size_t restricted_models_ = 0;      // models with a restricted placement
  std::vector<ready_task> offered_;        // decide's scratch: the ready tasks a device may run
  std::vector<std::size_t> offered_index_; // their indices in ready_
  std::uint64_t ready_sequence_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t first_unfinished_ = 0;
  bool keep_log_ = true;
  std::vector<decision> log_;
};

} // namespace hydra
