// The one driver of a sweep: which task each device gets, which task is queued
// ahead of the running one, how soon each shard is needed again, and so which
// resident object to evict. It does no I/O and keeps no clock. The runtime
// trainers and the simulator feed it completions and carry out its launches
// (kernels on streams in one case, a cost model in the other), so they make the
// same decisions by construction; a completion order recorded by one and
// replayed into the other gives the same decision list.
//
// A round (fill): every device with nothing queued is offered a task first, in
// device order; then every device with one task is offered one more, and so on
// up to 1 + queue_depth tasks per device. A ready task thus goes to an idle
// device rather than queue behind a busy one (and, with
// driver_options::never_queue_longest, the longest model's task never queues
// behind one). A launch that finds no room beside the device's queued tasks
// puts its task back in the ready set and closes that device for the round.
// With take_back (a simulator what-if), a device whose compute frees may hand
// its queued task back for its running model's next one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/sched/eviction.hpp"
#include "hydra/sched/policy.hpp"
#include "hydra/sched/scheduler_core.hpp"
#include "hydra/sched/task.hpp"
#include "hydra/sched/working_set.hpp"

namespace hydra {

struct driver_options {
  // Tasks queued on a device behind the one it runs; their fetches overlap its
  // compute. 0: a device is offered a task only when it is idle.
  std::size_t queue_depth = 1;
  // A task queued ahead starts only when its device's running task is done,
  // even if another device goes idle first: its compute is committed at
  // launch. Set (with queue_depth > 0), the ready task of the model with the
  // most estimated work left (scheduler_core::longest_remaining_model: one
  // model for the whole pool, ties to the lowest id) is never queued behind a
  // busy device: where the policy picks it there, the busy device is not
  // given it, and it stays ready until a device with nothing queued is
  // offered it. Whether that device takes it is the policy's choice (sharp
  // does; a refused pick still counts as round_robin's turn or one of
  // random_pick's draws). It shortens the longest chain at the price of
  // queued work elsewhere; whether it pays depends on the workload (simulate
  // both).
  bool never_queue_longest = false;
};

// When a device whose compute frees hands back the task queued behind its
// running one (sweep_driver::take_back).
enum class take_back_rule : std::uint8_t {
  none,    // never: a queued task starts where it was queued
  longest, // when the running task is the longest model's (the most estimated work left)
  any,     // when the running task's model has more work left than the queued task's
};

// What became of a launch the driver asked for.
enum class launch_outcome : std::uint8_t {
  launched, // carried out: the task is queued on the device until its completion is reported
  no_room,  // it did not fit beside the device's queued tasks: ready again, and the device is closed for the round
  stopped,  // its model was stopped instead (a fault while it was being enqueued)
};

// One thing the driver was told, in order: a launch's outcome, a completion,
// new cost estimates for a model, or a sweep controller extending a model's
// chain or retiring the model. A recorded run's events, fed to another
// driver in the same order, make it take the same decisions (sim::options::replay).
struct driver_event {
  enum class kind : std::uint8_t { launched, no_room, stopped, completed, failed, costs_updated, extended, retired };
  kind what = kind::launched;
  std::size_t device = 0;  // launches and completions
  hydra::task task{};      // launches and completions; costs_updated, extended, retired: task.model only
  model_costs costs{};     // costs_updated only
  chain_segment segment{}; // extended only

  friend bool operator==(driver_event const&, driver_event const&) = default;
};

class sweep_driver {
public:
  // `device_speeds`: each device's compute speed against the device the cost
  // estimates describe (what policies see as device_view::speed); empty: all alike.
  sweep_driver(std::vector<model_costs> models, std::size_t devices, driver_options options = {},
               std::vector<double> device_speeds = {})
      : core_(std::move(models), devices, std::move(device_speeds)), options_(options), queues_(devices),
        closed_(devices, false), waits_for_(devices), launched_at_(core_.model_count(), 0) {}

  // One round of launches (see the header comment). `launch(task, device)`
  // carries out a decision and returns a launch_outcome.
  template <policy P, class Launch>
  void fill(P& policy, Launch&& launch) {
    std::size_t const per_device = 1 + options_.queue_depth;
    std::fill(closed_.begin(), closed_.end(), false);
    // Once per round (a model stopped at its launch may change it within one;
    // the next round sees that).
    std::size_t const held =
        options_.never_queue_longest && options_.queue_depth > 0 ? core_.longest_remaining_model() : nowhere;
    for (std::size_t level = 1; level <= per_device && !core_.ready().empty(); ++level) {
      for (std::size_t d = 0; d < queues_.size(); ++d) {
        if (queues_[d].size() >= level || closed_[d] || (level > 1 && waits_for_[d])) continue;
        auto const next = core_.decide(policy, d, queues_[d].empty() ? nowhere : held);
        if (!next) continue;
        launch_outcome const outcome = launch(*next, d);
        if (keep_log_) log_.push_back({event_kind(outcome), d, *next, {}, {}});
        switch (outcome) {
        case launch_outcome::launched:
          queues_[d].push_back(*next);
          launched_at_[next->model] = next->position;
          core_.set_resident(next->model, next->shard, d);
          break;
        case launch_outcome::no_room:
          core_.release(*next);
          ++released_;
          closed_[d] = true;
          break;
        case launch_outcome::stopped:
          core_.stop(next->model);
          closed_[d] = true;
          ++stopped_at_launch_;
          break;
        }
        if (core_.ready().empty()) break;
      }
    }
  }

  // Drives the sweep to its end: a round, then `await()`, which must report at
  // least one completion (complete or fail), until every model finished or stopped.
  template <policy P, class Launch, class Await>
  void run(P& policy, Launch&& launch, Await&& await, std::string const& who) {
    while (!core_.finished()) {
      std::uint64_t const released_before = released_, stopped_before = stopped_at_launch_;
      fill(policy, launch);
      if (core_.in_flight() == 0) {
        if (core_.finished()) break;
        // A model stopped at its launch closed its device for the round; the
        // other models' tasks are still to be placed (on one device: there).
        if (stopped_at_launch_ != stopped_before) continue;
        if (released_ != released_before)
          throw does_not_fit(who + ": no ready task fits beside what its device holds, and no task runs that "
                                   "could free memory (a fragmented device pool)");
        throw error(who + ": policy " + std::string(policy.name()) + " declined every ready task while no task ran" +
                    placement_hint());
      }
      std::uint64_t const ended_before = ended_;
      await();
      if (ended_ == ended_before)
        throw invalid_argument(who + ": the completion wait returned without reporting a completion");
    }
  }

  // Take-back, when a device's compute frees: `device` has finished its
  // running task's compute and is about to start `next`, queued behind it.
  // If the running task's model has more estimated work left after it than
  // next's model (any), or is the model with the most work left of all
  // (longest; then also more than next's), and its next task may run here,
  // that task, ready once the running one completes, should find this
  // device free, as it would where nothing is queued ahead. So `next`, its
  // compute not started, is handed back to the ready set (`withdraw(task,
  // device)` undoes its launch and says whether it could), and this device
  // queues nothing ahead until the running task completes: the next round
  // offers it a task as an idle device (the policy decides which; sharp
  // takes the ready task with the most work left, most often that chain's).
  // A deeper queue hands back every task behind `next` too, the last first,
  // whatever their models; a refused withdrawal stops there (those handed
  // back stay so, and the device does not wait). Returns whether all were.
  // The runtime does not do this (it enqueues a queued task's compute at
  // launch, and a CUDA stream cannot withdraw a kernel): it is the
  // simulator's what-if (sim::options::take_back) of a runtime that enqueues
  // compute only when its device reaches it. It is not logged: the log then
  // holds launches that never end, and is not for replay.
  template <class Withdraw>
  bool take_back(take_back_rule rule, std::size_t device, task const& next, Withdraw&& withdraw) {
    auto& queue = queues_.at(device);
    auto const at = std::find(queue.begin(), queue.end(), next);
    if (rule == take_back_rule::none || at == queue.end() || at == queue.begin()) return false;
    std::size_t const first = static_cast<std::size_t>(at - queue.begin());
    task const running = queue[first - 1];
    auto const following = after(running, 1);
    if (!following || !core_.may_run(*following, device)) return false;
    if (rule == take_back_rule::longest && running.model != core_.longest_remaining_model()) return false;
    double const after_running = core_.remaining_seconds(running.model) - core_.task_seconds(running);
    if (after_running <= core_.remaining_seconds(next.model)) return false;
    // `next` and every task behind it, the last first.
    while (queue.size() > first) {
      task const last = queue.back();
      if (!withdraw(last, device)) break;
      queue.pop_back();
      core_.withdraw(last);
      launched_at_[last.model] = last.position > 0 ? last.position - 1 : 0;
      ++taken_back_;
    }
    if (queue.size() > first) return false;
    waits_for_[device] = running;
    return true;
  }

  // Task `done` on `device` completed: its model's next task becomes ready.
  // (By value: `done` may be an element of queued(device), which this erases.)
  void complete(task const done, std::size_t device) {
    dequeue(done, device, driver_event::kind::completed);
    if (waits_for_[device] == done) waits_for_[device].reset();
    core_.complete(done, device);
  }

  // Task `done` on `device` ended, and its model failed: the model is stopped.
  void fail(task const done, std::size_t device) {
    dequeue(done, device, driver_event::kind::failed);
    if (waits_for_[device] == done) waits_for_[device].reset();
    core_.stop(done.model);
  }

  // New estimates of a model's costs (what its profiling minibatch measured).
  void update_costs(std::size_t model, model_costs const& costs) {
    core_.update_costs(model, costs);
    if (keep_log_) log_.push_back({driver_event::kind::costs_updated, 0, task{model}, costs, {}});
  }

  // Where a model's shards may run (see scheduler_core::restrict_placement).
  // Not logged: a replaying driver restricts from the same workload.
  void restrict_placement(std::size_t model, std::vector<bool> runs_on) {
    core_.restrict_placement(model, std::move(runs_on));
  }

  // Appends `more` to a model's chain (see scheduler_core::extend).
  void extend(std::size_t model, chain_segment const& more) {
    core_.extend(model, more);
    if (keep_log_) log_.push_back({driver_event::kind::extended, 0, task{model}, {}, more});
  }

  // Takes a model out for good between its tasks (a sweep controller stopping
  // it): nothing of it may be queued on a device.
  void retire(std::size_t model) {
    for (auto const& queue : queues_)
      for (task const& t : queue)
        detail::expects(t.model != model, "driver: model " + std::to_string(model) +
                                              " cannot be retired while its task " + describe(t) + " is queued");
    core_.stop(model);
    if (keep_log_) log_.push_back({driver_event::kind::retired, 0, task{model}, {}, {}});
  }

  // How many tasks after its latest launched one `model` needs `shard` again
  // (from its first task when none was launched yet). A launch in progress
  // does not count yet: while task k > 0 is being enqueued, distances are
  // measured from the model's task k - 1.
  [[nodiscard]] std::size_t next_use(std::size_t model, std::size_t shard) const {
    return core_.tasks_until_next_use(model, launched_at_[model], shard);
  }

  // The task `ahead` places after `t` in its model's chain, if the chain has it.
  [[nodiscard]] std::optional<task> after(task const& t, std::size_t ahead) const {
    std::size_t const position = t.position + ahead;
    if (position >= core_.tasks_of(t.model)) return std::nullopt;
    return core_.task_at_position(t.model, position);
  }

  // The tasks launched on `device` and not yet completed, oldest first: the
  // running one and those queued behind it. Their shards must stay resident.
  [[nodiscard]] std::span<task const> queued(std::size_t device) const { return queues_.at(device); }

  // Everything the driver was told, in order (unless keep_logs(false)).
  [[nodiscard]] std::vector<driver_event> const& log() const noexcept { return log_; }

  // What the policies decide from (read-only: every change goes through the driver).
  [[nodiscard]] scheduler_core const& core() const noexcept { return core_; }
  // Keep the decisions (core().decisions()) and this driver's log; on by
  // default. Off, a long sweep's memory stays flat.
  void keep_logs(bool keep) noexcept {
    keep_log_ = keep;
    core_.keep_decision_log(keep);
  }
  [[nodiscard]] driver_options const& options() const noexcept { return options_; }
  [[nodiscard]] std::size_t device_count() const noexcept { return queues_.size(); }
  [[nodiscard]] bool finished() const noexcept { return core_.finished(); }
  // Decisions taken back because the task found no room beside a device's queue.
  [[nodiscard]] std::uint64_t released() const noexcept { return released_; }
  // Queued tasks handed back to the ready set by take_back.
  [[nodiscard]] std::uint64_t taken_back() const noexcept { return taken_back_; }

private:
  // Why a policy that places by rule may find nothing it wants: the devices
  // the lowest model's restricted ready task may run on (empty when no ready
  // task is restricted).
  [[nodiscard]] std::string placement_hint() const {
    auto const runs_on = [this](task const& t) {
      std::vector<std::size_t> devices;
      for (std::size_t d = 0; d < queues_.size(); ++d)
        if (core_.may_run(t, d)) devices.push_back(d);
      return devices;
    };
    std::optional<task> lowest;
    for (ready_task const& r : core_.ready())
      if ((!lowest || r.task.model < lowest->model) && runs_on(r.task).size() < queues_.size()) lowest = r.task;
    if (!lowest) return {};
    auto const allowed = runs_on(*lowest);
    std::string devices;
    for (std::size_t const d : allowed) devices.append(devices.empty() ? "" : ", ").append(std::to_string(d));
    std::size_t const count = allowed.size();
    return " (shards run only on the devices whose memory holds them, which a policy that fixes each shard's device "
           "may not respect: " +
           describe(*lowest) + " may run on device" + (count == 1 ? " " : "s ") + devices + ")";
  }

  void dequeue(task const& done, std::size_t device, driver_event::kind what) {
    auto& queue = queues_.at(device);
    auto const at = std::find(queue.begin(), queue.end(), done);
    if (at == queue.end())
      throw invalid_argument("driver: completion of " + describe(done) + " on device " + std::to_string(device) +
                             ", which is not queued there");
    queue.erase(at);
    ++ended_;
    if (keep_log_) log_.push_back({what, device, done, {}, {}});
  }

  static driver_event::kind event_kind(launch_outcome outcome) noexcept {
    switch (outcome) {
    case launch_outcome::launched:
      return driver_event::kind::launched;
    case launch_outcome::no_room:
      return driver_event::kind::no_room;
    default:
      return driver_event::kind::stopped;
    }
  }

  scheduler_core core_;
  driver_options options_;
  std::vector<std::vector<task>> queues_; // per device, in launch order
  std::vector<bool> closed_;              // per device: a launch found no room this round
  std::vector<std::optional<task>> waits_for_; // per device: queues nothing ahead until this task completes (take_back)
  std::vector<std::size_t> launched_at_;  // per model: position of its latest launched task
  std::vector<driver_event> log_;
  bool keep_log_ = true;
  std::uint64_t released_ = 0;
  std::uint64_t taken_back_ = 0;
  std::uint64_t stopped_at_launch_ = 0; // launches that stopped their model
  std::uint64_t ended_ = 0;             // completions and failures reported
};

} // namespace hydra
