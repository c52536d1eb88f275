// The discrete-event simulation behind sim::simulate (see sim/simulator.hpp for
// what it models): the sweep driver's launches carried out by a cost model of
// each device's three streams, its memory and its host link.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/sched/eviction.hpp"
#include "hydra/sched/node_balancer.hpp"
#include "hydra/sched/policy.hpp"
#include "hydra/sched/sweep_driver.hpp"
#include "hydra/sched/task.hpp"
#include "hydra/sim/detail/replay_cursor.hpp"
#include "hydra/sim/report.hpp"
#include "hydra/sim/workload.hpp"
#include "hydra/trace/trace_recorder.hpp"

namespace hydra::sim {

namespace detail {

inline constexpr std::uint32_t no_device = std::numeric_limits<std::uint32_t>::max();
inline constexpr std::uint32_t no_shard = std::numeric_limits<std::uint32_t>::max();

template <class Policy>
class simulation {
public:
  simulation(workload const& w, Policy& policy, options const& o)
      : workload_(w), policy_(policy), options_(o), driver_(costs_of(w), w.devices.size(), o.driver, speeds_of(w)),
        replay_(o.replay) {
    driver_.keep_logs(o.keep_decisions);
    for (std::size_t m = 0; m < w.models.size(); ++m) placements_.push_back(placement_of(w, m));
    std::size_t const nodes = node_count(w);
    host_free_.assign(nodes, 0.0);
    core_busy_by_node_.resize(nodes);
    shared_busy_by_node_.resize(nodes);
    send_free_.assign(nodes, 0.0);
    receive_free_.assign(nodes, 0.0);
    if (nodes > 1) {
      if (!o.replay.empty())
        throw invalid_argument("simulator: a recorded run is replayed on one node; this workload has " +
                               std::to_string(nodes) + " nodes");
      place_on_nodes(nodes);
    } else {
      node_of_.assign(w.models.size(), 0);
      for (std::size_t m = 0; m < w.models.size(); ++m)
        if (!placements_[m].empty()) driver_.restrict_placement(m, placements_[m]);
    }
    std::size_t shard_count = 0;
    for (auto const& model : w.models) {
      bases_.push_back(shard_count);
      shard_count += model.shards.size();
    }
    shards_.resize(shard_count);
    models_.resize(w.models.size());
    devices_.resize(w.devices.size());
    for (std::size_t m = 0; m < w.models.size(); ++m)
      for (std::size_t s = 0; s < w.models[m].shards.size(); ++s) {
        auto& shard = shards_[bases_[m] + s];
        shard.spec = &w.models[m].shards[s];
        shard.model = m;
        shard.index = s;
      }
    for (std::size_t d = 0; d < devices_.size(); ++d) devices_[d].spec = &w.devices[d];
    if (o.activations != activation_handoff::through_host) {
      if (!o.replay.empty() && o.activations != activation_handoff::kept_and_sent_home)
        throw invalid_argument("simulator: a recorded run is replayed with the activations as the runtime handles "
                               "them: activation_handoff::through_host, or kept_and_sent_home "
                               "(multi_model_options::keep_activations), with or without keep_checkpoints; kept "
                               "is a what-if the runtime does not do");
      for (std::size_t m = 0; m < w.models.size(); ++m) {
        models_[m].checkpoint_home.assign(w.models[m].shards.size(), 0);
        models_[m].checkpoint_on.assign(w.models[m].shards.size(), no_device);
        models_[m].checkpoint_written.assign(w.models[m].shards.size(), 0);
      }
    } else if (o.keep_checkpoints || o.copy_activations_between_devices) {
      throw invalid_argument(std::string("simulator: ") +
                             (o.keep_checkpoints ? "keep_checkpoints keeps the checkpoints of activations kept"
                                                 : "copy_activations_between_devices copies activations kept") +
                             " on the device: give activations kept or kept_and_sent_home");
    }
    if (o.keep_forward_activations) {
      for (std::size_t m = 0; m < w.models.size(); ++m) {
        models_[m].forward_on.assign(w.models[m].shards.size(), no_device);
        models_[m].forward_written.assign(w.models[m].shards.size(), 0);
        models_[m].forward_home.assign(w.models[m].shards.size(), std::nullopt);
      }
    }
  }

  report run() {
    if (options_.write_back_on_eviction && options_.move_models)
      throw invalid_argument("simulator: write_back_on_eviction does not combine with models moving between nodes");
    if (options_.take_back != take_back_rule::none) {
      std::string const why = !options_.replay.empty() ? "a replay (the runtime does not take back)"
                              : options_.activations != activation_handoff::through_host
                                  ? "activations kept on the device (it models take-back through host memory only)"
                              : options_.keep_forward_activations ? "forward activations kept on the device"
                              : node_count(workload_) > 1         ? "more than one node"
                              : options_.driver.queue_depth == 0  ? "queue depth 0 (nothing is queued to take back)"
                                                                  : "";
      if (!why.empty()) throw invalid_argument("simulator: take_back is a what-if that does not combine with " + why);
    }
    // A sweep controller's first plan comes before any launch; and, as in the
    // trainer, what it plans after the driver's last round (a model stopped at
    // its launch) means another round.
    replay_.apply_updates(driver_);
    for (std::size_t before = 0; before != replay_.position() || !driver_.finished();) {
      before = replay_.position();
      driver_.run(
          policy_, [this](task const& t, std::size_t d) { return launch(t, d); }, [this] { complete_next(); },
          "simulator");
      replay_.apply_updates(driver_);
    }
    if (!replay_.done())
      throw error("simulator: replay diverged: the sweep ended here after " + std::to_string(replay_.position()) +
                  " of " + std::to_string(options_.replay.size()) + " recorded events");
    return make_report();
  }

private:
  static std::vector<double> speeds_of(workload const& w) {
    std::vector<double> out;
    for (auto const& device : w.devices) out.push_back(device.speed);
    return out;
  }

  // ---- nodes ------------------------------------------------------------------------

  // Whether model m's every shard may run on some device of node n.
  [[nodiscard]] bool fits_node(std::size_t m, std::size_t n) const {
    auto const& runs_on = placements_[m];
    if (runs_on.empty()) return true;
    std::size_t const devices = workload_.devices.size();
    for (std::size_t s = 0; s < workload_.models[m].shards.size(); ++s) {
      bool some = false;
      for (std::size_t d = 0; d < devices && !some; ++d)
        some = workload_.devices[d].node == n && runs_on[s * devices + d];
      if (!some) return false;
    }
    return true;
  }

  // Model m runs on node n's devices only (where its shards fit).
  void confine(std::size_t m, std::size_t n) {
    std::size_t const devices = workload_.devices.size(), shards = workload_.models[m].shards.size();
    std::vector<bool> runs_on(shards * devices);
    for (std::size_t s = 0; s < shards; ++s)
      for (std::size_t d = 0; d < devices; ++d)
        runs_on[s * devices + d] =
            workload_.devices[d].node == n && (placements_[m].empty() || placements_[m][s * devices + d]);
    driver_.restrict_placement(m, std::move(runs_on));
    node_of_[m] = n;
  }

  void place_on_nodes(std::size_t nodes) {
    capacities_.assign(nodes, node_capacity{0, 0});
    for (auto const& device : workload_.devices) {
      ++capacities_[device.node].devices;
      capacities_[device.node].speed += device.speed;
    }
    std::vector<double> work;
    for (auto const& model : workload_.models) work.push_back(chain_seconds(model));
    node_of_ = place_longest_first(work, capacities_, [this](std::size_t m, std::size_t n) { return fits_node(m, n); });
    starting_node_ = node_of_;
    for (std::size_t m = 0; m < node_of_.size(); ++m) {
      confine(m, node_of_[m]);
      // A move carries every shard's home state (what a backward fetches and writes back).
      std::uint64_t bytes = 0;
      for (auto const& shard : workload_.models[m].shards)
        bytes += std::max(shard.backward_fetch_bytes(), shard.forward_fetch_bytes());
      move_bytes_.push_back(bytes);
      move_seconds_.push_back(
          copy_seconds(bytes, workload_.between_nodes.bytes_per_second, workload_.between_nodes.latency_seconds));
    }
  }

  // After a completion: nodes short of work take models (pick_move) until no
  // move is worth it. A model moved now is not moved again before the next completion.
  void move_models() {
    auto const& core = driver_.core();
    std::vector<placed_model> view(workload_.models.size());
    for (std::size_t m = 0; m < view.size(); ++m) {
      view[m].node = node_of_[m];
      view[m].unfinished = !core.model_done(m) && !core.model_stopped(m);
      view[m].remaining_seconds = core.remaining_seconds(m);
      view[m].move_seconds = move_seconds_[m];
    }
    for (ready_task const& r : core.ready())
      view[r.task.model].movable =
          r.task.pass == direction::forward && r.task.shard == 0 && r.task.purpose == task_purpose::train;
    while (auto const move = pick_move(std::span<placed_model const>(view), capacities_,
                                       [this](std::size_t m, std::size_t n) { return fits_node(m, n); })) {
      std::size_t const m = move->model;
      auto& model = models_[m];
      double start = std::max({now_, send_free_[move->from], receive_free_[move->to], model.checkpoint_home_at});
      for (std::size_t s = 0; s < workload_.models[m].shards.size(); ++s)
        start = std::max(start, shards_[bases_[m] + s].home_ready_at);
      std::uint64_t const bytes = move_bytes_[m];
      double const end = start + move_seconds_[m];
      send_free_[move->from] = receive_free_[move->to] = end;
      for (std::size_t s = 0; s < workload_.models[m].shards.size(); ++s) {
        auto const id = static_cast<std::uint32_t>(bases_[m] + s);
        // What the old node's devices still hold of it is of no more use there.
        if (shards_[id].device != no_device) evict(shards_[id].device, id);
        // Its next fetches read the state the move brought.
        shards_[id].home_ready_at = end;
      }
      model.checkpoint_home_at = end;
      confine(m, move->to);
      moves_.push_back({*move, start, end, bytes});
      bytes_between_nodes_ += bytes;
      view[m].node = move->to;
      view[m].movable = false;
    }
  }

  struct shard_state {
    shard_spec const* spec = nullptr;
    std::size_t model = 0, index = 0;
    std::uint32_t device = no_device;
    bool state_on_device = false; // else parameters only
    double ready_at = 0;          // its last fetch landed
    double home_ready_at = 0;     // its last write-back landed
    double last_use_end = 0;      // compute end of its last task
    bool dirty = false;           // options::write_back_on_eviction: updated here, not home yet
  };

  struct model_state {
    // What the model's next task's inputs wait for: when the last boundary
    // copy-out landed (with activations kept: the last task's compute end, or
    // when an output spilled under memory pressure got home).
    double checkpoint_home_at = 0;
    // With activations kept (options::activations): when each shard's input
    // checkpoint reached host memory, and the output of the model's last task
    // that its next task takes (at most one: the chain runs one task at a time).
    std::vector<double> checkpoint_home;
    std::uint32_t handoff_device = no_device;
    double handoff_ready = 0; // its producer's compute end
    std::uint64_t handoff_bytes = 0;
    std::optional<double> handoff_home; // when it reached host memory, if it was sent there
    // With options::keep_checkpoints: the device holding each shard's input
    // checkpoint for its backward (no_device: none does; it is home), and
    // when it was written there.
    std::vector<std::uint32_t> checkpoint_on;
    std::vector<double> checkpoint_written;
    // With options::keep_forward_activations, per shard: the device holding
    // its training forward's scratch (no_device: none), when the forward was
    // done with it, and, once spilled, when its copy landed at home.
    std::vector<std::uint32_t> forward_on;
    std::vector<double> forward_written;
    std::vector<std::optional<double>> forward_home;
  };

  struct pending_free {
    double at;
    std::uint64_t bytes;
  };

  // A launched task whose compute is not booked yet (options::take_back):
  // what its launch found, for start_compute.
  struct staged_task {
    task what;
    std::uint64_t sequence = 0; // launch order: ties among completions
    double issued = 0;          // its launch was made
    double inputs_ready = 0;
    std::uint64_t output = 0;
    std::optional<double> output_room; // kept on the device: when its block is usable
    double fetch_start = 0, fetch_end = 0;
    bool host_work_booked = false; // its host work after the launch is on the cores already
    bool recomputes = true;        // a backward without its forward's kept activations
  };

  struct device_state {
    device_spec const* spec = nullptr;
    double compute_free = 0, h2d_free = 0, d2h_free = 0;
    std::uint64_t used = 0;            // resident extents and scratch, as the pool would count them
    std::vector<pending_free> pending; // freed on a stream that has not reached the free yet
    std::uint64_t pending_bytes = 0;
    std::vector<std::uint32_t> resident; // global shard ids
    double busy = 0;
    std::vector<staged_task> staged; // options::take_back: launched, compute not booked, in launch order
    std::vector<std::pair<std::size_t, std::size_t>> forwards; // kept forward activations here: (model, shard)
  };

  struct completion {
    double time;
    std::uint64_t sequence;
    std::size_t device;
    task what;
    // std::push_heap keeps the greatest on top: "less" means later.
    friend bool operator<(completion const& a, completion const& b) noexcept {
      return a.time != b.time ? a.time > b.time : a.sequence > b.sequence;
    }
  };

  // Queues a copy on one direction of device d's link; returns when it lands.
  // `from_another_device`: a copy into d from another device's memory
  // (options::copy_activations_between_devices), queued where the runtime
  // enqueues it, on d's stream for copies in, at workload::between_devices'
  // rate, which takes no share of a shared host link unless it is the host
  // links' own.
  double copy(device_state& device, bool to_device, double earliest, std::uint64_t bytes,
              bool from_another_device = false) {
    if (bytes == 0) return earliest;
    double& link = to_device ? device.h2d_free : device.d2h_free;
    device_link const& peer = workload_.between_devices;
    bool const own_link = from_another_device && peer.bytes_per_second > 0;
    double const rate = own_link    ? peer.bytes_per_second
                        : to_device ? device.spec->h2d_bytes_per_second
                                    : device.spec->d2h_bytes_per_second;
    double const latency = own_link ? peer.latency_seconds : device.spec->latency_seconds;
    double const seconds = copy_seconds(bytes, rate, latency);
    std::size_t const node = device.spec->node;
    double start = take_core(node, std::max(earliest, link), seconds);
    double end = start + seconds;
    if (workload_.shared_host_bytes_per_second > 0 && !own_link) {
      double const shared = static_cast<double>(bytes) / workload_.shared_host_bytes_per_second;
      start = reserve_shared_link(node, start, shared);
      end = std::max(start + seconds, start + shared);
    }
    link = end;
    (from_another_device ? bytes_between_devices_ : to_device ? bytes_to_device_ : bytes_to_host_) += bytes;
    return end;
  }

  // With host_cores: the earliest time at or after `earliest` at which one of
  // the node's host cores is free for `duration` (first fit among the work
  // already booked on them), booked. Without: `earliest`.
  double take_core(std::size_t node, double earliest, double duration) {
    std::size_t const cores = workload_.host_cores;
    if (cores == 0 || duration <= 0) return earliest;
    auto& busy = core_busy_by_node_[node];
    std::erase_if(busy, [&](std::pair<double, double> const& booked) { return booked.second <= now_; });
    // At most `cores` bookings may overlap any instant of [at, at + duration).
    // Overlap counts only rise at booking starts, so checking `at` and every
    // start inside the window suffices; a start that fails moves `at` to the
    // earliest end among the bookings overlapping there.
    auto overlapping = [&](double instant) {
      std::size_t n = 0;
      double earliest_end = std::numeric_limits<double>::infinity();
      for (auto const& [start, end] : busy)
        if (start <= instant && instant < end) {
          ++n;
          earliest_end = std::min(earliest_end, end);
        }
      return std::pair{n, earliest_end};
    };
    double at = earliest;
    for (;;) {
      double blocked_until = -1;
      auto const [here, free_at] = overlapping(at);
      if (here >= cores) blocked_until = free_at;
      for (auto const& [start, end] : busy) {
        if (blocked_until >= 0) break;
        if (start <= at || start >= at + duration) continue;
        auto const [there, there_free_at] = overlapping(start);
        if (there >= cores) blocked_until = there_free_at;
      }
      if (blocked_until < 0) break;
      at = blocked_until;
    }
    busy.emplace_back(at, at + duration);
    return at;
  }

  // The node's shared host link: the earliest gap of `duration` at or after
  // `earliest` among the copies already booked on it (first fit), booked.
  double reserve_shared_link(std::size_t node, double earliest, double duration) {
    auto& booked = shared_busy_by_node_[node];
    while (!booked.empty() && booked.begin()->second <= now_) booked.erase(booked.begin());
    double at = earliest;
    auto next = booked.upper_bound(at);
    if (next != booked.begin()) at = std::max(at, std::prev(next)->second);
    for (; next != booked.end() && next->first < at + duration; ++next) at = std::max(at, next->second);
    if (duration > 0) booked.emplace(at, at + duration);
    return at;
  }

  // Memory given back in stream order: no longer used, usable by a later
  // allocation only once its stream reaches `at`.
  static void free_later(device_state& device, double at, std::uint64_t bytes) {
    device.used -= bytes;
    device.pending.push_back({at, bytes});
    device.pending_bytes += bytes;
  }

  void evict(std::size_t d, std::uint32_t id) {
    auto& device = devices_[d];
    auto& shard = shards_[id];
    // As the spill engine does it: the free is queued on the spill stream,
    // behind everything already there and the extent's last compute use and
    // fetch; a fetch that reuses the memory waits for it. A dirty shard
    // (options::write_back_on_eviction) goes home first, on the same stream,
    // unless its model was stopped (its state is given up).
    double at = std::max({device.d2h_free, shard.last_use_end, shard.ready_at});
    device.d2h_free = at;
    if (shard.dirty && !driver_.core().model_stopped(shard.model)) at = write_back(device, shard, at);
    shard.dirty = false;
    free_later(device, at, shard.spec->state_bytes);
    device.resident.erase(std::find(device.resident.begin(), device.resident.end(), id));
    shard.device = no_device;
    shard.state_on_device = false;
    ++evictions_;
  }

  // A shard's state home from `device` on its spill stream, from `earliest`
  // on; returns when it has landed.
  double write_back(device_state& device, shard_state& shard, double earliest) {
    shard_spec const& spec = *shard.spec;
    shard.home_ready_at =
        copy(device, false, earliest, std::max(spec.backward_fetch_bytes(), spec.forward_fetch_bytes()));
    shard.dirty = false;
    ++write_backs_;
    return shard.home_ready_at;
  }

  // Makes room for `bytes` on d; returns when the memory is usable (a pending
  // free it relies on has reached the spill stream), or nothing when only pinned
  // shards could give it.
  // Kept activations of other models make room only for a task's own memory
  // (`may_drop_kept`), not to keep another activation; kept forward
  // activations cheaper to recompute than their bytes of shard state are to
  // fetch again go first, as the engine gives up those kept before_shards.
  std::optional<double> make_room(std::size_t d, std::uint64_t bytes, bool may_drop_kept = true) {
    auto& device = devices_[d];
    std::uint64_t const capacity = device.spec->budget_bytes;
    while (capacity - device.used < bytes) {
      if (auto const cheap = may_drop_kept ? furthest_forward(d, /*before_shards_only=*/true) : std::nullopt) {
        give_up_forward(d, cheap->first, cheap->second);
        ++forward_activations_given_up_first_;
        continue;
      }
      auto const victim = furthest_next_use(
          device.resident, [&](std::uint32_t id) { return !pinned(d, id); },
          [&](std::uint32_t id) { return driver_.next_use(shards_[id].model, shards_[id].index); });
      // Kept forward activations compete with the shards: whichever is read
      // furthest ahead goes (on a tie, the shard).
      auto const forward = may_drop_kept && victim ? furthest_forward(d) : std::nullopt;
      if (forward && driver_.next_use(forward->first, forward->second) >
                         driver_.next_use(shards_[*victim].model, shards_[*victim].index)) {
        give_up_forward(d, forward->first, forward->second);
      } else if (victim) {
        evict(d, *victim);
      } else if (!may_drop_kept || !drop_kept(d)) {
        return std::nullopt;
      }
    }
    // Free now (counting pending frees as free) is enough; which pending frees
    // must land first? Those beyond what was free before them, oldest first.
    double usable_at = 0;
    std::uint64_t settled_free = capacity - device.used - device.pending_bytes;
    while (settled_free < bytes && !device.pending.empty()) {
      auto const soonest = std::min_element(device.pending.begin(), device.pending.end(),
                                            [](pending_free const& a, pending_free const& b) { return a.at < b.at; });
      usable_at = std::max(usable_at, soonest->at);
      settled_free += soonest->bytes;
      device.pending_bytes -= soonest->bytes;
      device.pending.erase(soonest);
    }
    device.used += bytes;
    return usable_at;
  }

  // With activations kept: when task t's inputs are on device d (in its
  // scratch: a kept object is copied in, within the device, and may be freed
  // from then on). Shard 0's forward brings the minibatch from home; any other
  // forward takes the model's last output; a backward reads its checkpoint (it
  // recomputes from it) and takes the gradient from the shard after it. With
  // keep_checkpoints, a training forward's input stays on d as the checkpoint
  // (where room is found as for an output), and a backward on d reads it there.
  // A backward that starts from its forward's kept activations (ready in its
  // scratch at `activations_ready`) reads no checkpoint, and one kept beside
  // them (keep_checkpoints too: the fallback had they been given up) is dropped.
  template <class ToDevice>
  double kept_inputs(task const& t, std::size_t d, double scratch_room, ToDevice& h2d,
                     std::optional<double> activations_ready) {
    auto& model = models_[t.model];
    auto const& model_spec = workload_.models[t.model];
    double const earliest = std::max(scratch_room, model.checkpoint_home_at);
    std::size_t const s = t.shard;
    std::uint64_t const input = model_spec.shards[s].input_bytes;
    bool const checkpoint = options_.keep_checkpoints && t.purpose == task_purpose::train && input > 0;
    if (t.pass == direction::forward) {
      bool kept_here = false;
      double const ready = s == 0 ? h2d(earliest, input) : take_handoff(d, model, earliest, h2d, checkpoint, kept_here);
      if (!checkpoint) return ready;
      std::optional<double> const room =
          kept_here ? std::optional<double>(ready) : make_room(d, input, /*may_drop_kept=*/false);
      if (room) {
        model.checkpoint_on[s] = static_cast<std::uint32_t>(d);
        model.checkpoint_written[s] = std::max(ready, *room);
      }
      return ready;
    }
    double ready = earliest;
    std::uint32_t const holder = model.checkpoint_on.empty() ? no_device : model.checkpoint_on[s];
    if (activations_ready) {
      ready = std::max(earliest, *activations_ready);
      if (holder != no_device) drop_checkpoint(model, holder, s, input); // not needed after all
    } else if (holder == d) {
      ++checkpoints_read_on_device_;
      ready = std::max(earliest, model.checkpoint_written[s]);
      free_later(devices_[d], ready, input);
    } else if (holder != no_device && options_.copy_activations_between_devices) {
      ready = copy_from(devices_[holder], std::max(earliest, model.checkpoint_written[s]), input, h2d);
    } else {
      ready = h2d(std::max(earliest, model.checkpoint_home[s]), input);
      if (holder != no_device) drop_checkpoint(model, holder, s, input);
    }
    if (!model.checkpoint_on.empty()) model.checkpoint_on[s] = no_device;
    bool unused = false;
    return s + 1 < model_spec.shards.size() ? std::max(ready, take_handoff(d, model, ready, h2d, false, unused))
                                            : ready;
  }

  // The model's last output, on device d: in place where it stayed there
  // (and, with `keep_as_checkpoint`, left there as the reader's checkpoint:
  // `kept_here`), from home where it went or was sent there, else copied
  // from the device that holds it (options::copy_activations_between_devices)
  // or sent home now from there (on that device's link) and brought in.
  template <class ToDevice>
  double take_handoff(std::size_t d, model_state& model, double earliest, ToDevice& h2d, bool keep_as_checkpoint,
                      bool& kept_here) {
    std::uint32_t const holder_id = model.handoff_device;
    model.handoff_device = no_device;
    if (holder_id == no_device) return h2d(earliest, model.handoff_bytes); // it went home when produced
    auto& holder = devices_[holder_id];
    std::uint64_t const bytes = model.handoff_bytes;
    if (holder_id == d) {
      ++activations_read_on_device_;
      double const ready = std::max(earliest, model.handoff_ready);
      kept_here = keep_as_checkpoint;
      if (!keep_as_checkpoint) free_later(holder, std::max(ready, model.handoff_home.value_or(ready)), bytes);
      return ready;
    }
    if (options_.copy_activations_between_devices)
      return copy_from(holder, std::max(earliest, model.handoff_ready), bytes, h2d);
    double const home = send_handoff_home(holder, model);
    free_later(holder, home, bytes);
    return h2d(std::max(earliest, home), bytes);
  }

  // A block kept on `holder` copied into the launching device from `ready`
  // on (options::copy_activations_between_devices), and freed on the holder
  // once read; returns when it has landed.
  template <class ToDevice>
  double copy_from(device_state& holder, double ready, std::uint64_t bytes, ToDevice& h2d) {
    ++activations_copied_between_devices_;
    double const copied = h2d(ready, bytes, /*from_another_device=*/true);
    free_later(holder, copied, bytes);
    return copied;
  }

  // When the model's kept output is in host memory: sent there now, on its
  // holder's link, unless it went already.
  double send_handoff_home(device_state& holder, model_state& model) {
    if (!model.handoff_home)
      model.handoff_home = copy(holder, false, std::max(now_, model.handoff_ready), model.handoff_bytes);
    return *model.handoff_home;
  }

  // A kept checkpoint of shard s on device d is given up: freed once it was
  // written and its copy home has read it (it is home: nothing moves).
  void drop_checkpoint(model_state& model, std::size_t d, std::size_t s, std::uint64_t bytes) {
    free_later(devices_[d], std::max({now_, model.checkpoint_written[s], model.checkpoint_home[s]}), bytes);
    model.checkpoint_on[s] = no_device;
  }

  // Under memory pressure, once no shard can go: a checkpoint kept on d is
  // dropped (it is home already), the one read furthest ahead first; then a
  // model's output kept on d goes home (on d's link, unless it is there
  // already) and is freed there; its next task brings it in. The launching
  // model's own last.
  bool drop_kept(std::size_t d) {
    std::optional<std::pair<std::size_t, std::size_t>> furthest; // (model, shard)
    std::size_t furthest_use = 0;
    for (std::size_t m = 0; m < models_.size(); ++m)
      for (std::size_t s = 0; s < models_[m].checkpoint_on.size(); ++s)
        if (models_[m].checkpoint_on[s] == d) {
          std::size_t const use = driver_.next_use(m, s);
          if (!furthest || use > furthest_use) {
            furthest = {m, s};
            furthest_use = use;
          }
        }
    if (furthest) {
      auto const [m, s] = *furthest;
      drop_checkpoint(models_[m], d, s, workload_.models[m].shards[s].input_bytes);
      return true;
    }
    if (auto const forward = furthest_forward(d)) { // a recomputation costs more than a checkpoint's copy
      give_up_forward(d, forward->first, forward->second);
      return true;
    }
    std::size_t chosen = models_.size();
    for (std::size_t m = 0; m < models_.size(); ++m)
      if (models_[m].handoff_device == d && (chosen == models_.size() || launching_model_ == chosen)) chosen = m;
    if (chosen == models_.size()) {
      // Last of all, the forward activations of the shards being launched or
      // queued here (their backwards would need the room again): the lowest
      // model's first, the launching model's last, as the spill engine drops them.
      auto const& forwards = devices_[d].forwards;
      if (forwards.empty()) return false;
      auto const [m, s] = std::ranges::min(
          forwards, {}, [this](auto const& f) { return std::tuple(f.first == launching_model_, f.first, f.second); });
      give_up_forward(d, m, s);
      return true;
    }
    auto& model = models_[chosen];
    double const home = send_handoff_home(devices_[d], model);
    free_later(devices_[d], home, model.handoff_bytes);
    model.handoff_device = no_device;
    model.checkpoint_home_at = std::max(model.checkpoint_home_at, home);
    return true;
  }

  // Of the forward activations kept on d whose shard is not pinned there,
  // the one its backward reads furthest ahead (ties: the lowest model's,
  // its first shard's); `before_shards_only`: of those before_shards says go first.
  [[nodiscard]] std::optional<std::pair<std::size_t, std::size_t>>
  furthest_forward(std::size_t d, bool before_shards_only = false) const {
    std::optional<std::pair<std::size_t, std::size_t>> furthest;
    std::size_t furthest_use = 0;
    for (auto const& [m, s] : devices_[d].forwards) {
      if (pinned(d, static_cast<std::uint32_t>(bases_[m] + s))) continue;
      if (before_shards_only && !before_shards(d, m, s)) continue;
      std::size_t const use = driver_.next_use(m, s);
      if (!furthest || use > furthest_use || (use == furthest_use && std::pair(m, s) < *furthest)) {
        furthest = {m, s};
        furthest_use = use;
      }
    }
    return furthest;
  }

  // Whether shard s of model m spills its kept forward activations from
  // device d rather than dropping them (options::evicted_forward_activations).
  [[nodiscard]] bool spills_forward(std::size_t d, std::size_t m, std::size_t s) const {
    switch (options_.evicted_forward_activations) {
    case evicted_activations::recompute:
      return false;
    case evicted_activations::spill:
      return true;
    case evicted_activations::by_cost:
      break;
    }
    auto const& spec = workload_.models[m].shards[s];
    auto const& device = *devices_[d].spec;
    auto const rate = [](double r) { return r > 0 ? r : std::numeric_limits<double>::infinity(); }; // free link
    return spill_beats_recompute(spec.scratch_bytes, spec.forward_seconds / device.speed,
                                 rate(device.d2h_bytes_per_second), rate(device.h2d_bytes_per_second));
  }

  // Whether shard s of model m's forward activations kept on device d go
  // before any shard under pressure: not spilled (a spill costs more than a
  // fetch), and cheaper to recompute than their bytes are to fetch again
  // (recompute_beats_refetch), as the trainer decides it. A free link (rate
  // 0) fetches for nothing: they compete with the shards.
  [[nodiscard]] bool before_shards(std::size_t d, std::size_t m, std::size_t s) const {
    if (spills_forward(d, m, s)) return false;
    auto const& spec = workload_.models[m].shards[s];
    auto const& device = *devices_[d].spec;
    return recompute_beats_refetch(spec.scratch_bytes, spec.forward_seconds / device.speed,
                                   device.h2d_bytes_per_second);
  }

  // Shard s's forward activations leave device d: spilled home on d's link
  // (freed behind that copy) or dropped (freed once the forward is done with them).
  void give_up_forward(std::size_t d, std::size_t m, std::size_t s) {
    auto& model = models_[m];
    auto& device = devices_[d];
    std::uint64_t const bytes = workload_.models[m].shards[s].scratch_bytes;
    double const written = std::max(now_, model.forward_written[s]);
    if (spills_forward(d, m, s)) {
      double const home = copy(device, false, written, bytes);
      free_later(device, home, bytes);
      model.forward_home[s] = home;
      ++forward_activations_spilled_;
    } else {
      free_later(device, written, bytes);
    }
    model.forward_on[s] = no_device;
    std::erase(device.forwards, std::pair(m, s));
  }

  void settle_frees(device_state& device) {
    std::erase_if(device.pending, [&](pending_free const& p) {
      if (p.at > now_) return false;
      device.pending_bytes -= p.bytes;
      return true;
    });
  }

  launch_outcome launch(task const& t, std::size_t d) {
    if (!options_.replay.empty()) {
      driver_event const& recorded = replay_.next("a launch of " + describe(t) + " on device " + std::to_string(d));
      using kind = driver_event::kind;
      if ((recorded.what != kind::launched && recorded.what != kind::no_room && recorded.what != kind::stopped) ||
          recorded.task != t || recorded.device != d)
        throw replay_.diverged("here a launch of " + describe(t) + " on device " + std::to_string(d) + ", recorded " +
                               replay_cursor::describe_event(recorded));
      if (recorded.what == kind::no_room) return launch_outcome::no_room;
      if (recorded.what == kind::stopped) return launch_outcome::stopped;
    }
    auto& device = devices_[d];
    settle_frees(device);
    auto const& model_spec = workload_.models[t.model];
    std::size_t const shards = model_spec.shards.size();
    auto const id = static_cast<std::uint32_t>(bases_[t.model] + t.shard);
    auto& shard = shards_[id];
    shard_spec const& spec = *shard.spec;
    bool const forward = t.pass == direction::forward;

    if (shard.device != no_device && shard.device != d) { // one device holds a shard at a time
      evict(shard.device, id);
      ++cross_device_moves_;
    }
    launching_ = id;
    launching_on_ = d;
    launching_model_ = t.model;
    auto unpin = [&] { launching_ = no_shard; };
    // The runtime's thread launches one task at a time: this one's work is
    // enqueued once the launches before it and its own have been made.
    std::size_t const node = device.spec->node;
    double const issued =
        take_core(node, std::max(now_, host_free_[node]), workload_.launch_seconds) + workload_.launch_seconds;
    host_free_[node] = issued; // a launch that finds no room has spent its time too

    // Prefetch stream: extent, state, scratch, inputs.
    double fetch_start = std::numeric_limits<double>::infinity(), fetch_end = issued;
    auto h2d = [&](double earliest, std::uint64_t bytes, bool from_another_device = false) {
      if (bytes == 0) return std::max(earliest, issued);
      fetch_start = std::min(fetch_start, std::max({earliest, issued, device.h2d_free}));
      fetch_end = copy(device, true, std::max(earliest, issued), bytes, from_another_device);
      return fetch_end;
    };
    std::uint64_t const parameters = spec.forward_fetch_bytes();
    std::uint64_t const home = std::max(spec.backward_fetch_bytes(), parameters);
    double state_ready = shard.ready_at;
    if (shard.device != d) {
      auto const usable = make_room(d, spec.state_bytes);
      if (!usable) {
        unpin();
        return no_room(t, d, spec.state_bytes);
      }
      shard.device = static_cast<std::uint32_t>(d);
      shard.state_on_device = false;
      device.resident.push_back(id);
      std::uint64_t const bytes = forward ? parameters : home;
      state_ready = h2d(std::max(*usable, shard.home_ready_at), bytes);
      shard.state_on_device = !forward;
      ++fetches_;
    } else if (!forward && !shard.state_on_device) {
      state_ready = h2d(shard.home_ready_at, home - parameters);
      shard.state_on_device = true;
      ++fetches_;
    } else if (!forward) {
      // Resident with its state: the update must not overtake the last write-back.
      state_ready = std::max(state_ready, shard.home_ready_at);
    }
    shard.ready_at = std::max(shard.ready_at, state_ready);

    auto& model = models_[t.model];
    std::size_t const s = t.shard;
    // With forward activations kept, a training backward on the device that
    // kept its forward's takes them as its scratch (usable once the forward
    // is done with them).
    bool const reads_forward = !forward && options_.keep_forward_activations && t.purpose == task_purpose::train;
    bool const here = reads_forward && model.forward_on[s] == d;
    auto const scratch_room = here ? std::optional<double>(model.forward_written[s]) : make_room(d, spec.scratch_bytes);
    if (!scratch_room) {
      // The shard stays resident (it is cache); the task goes back to the ready set.
      unpin();
      return no_room(t, d, spec.scratch_bytes);
    }
    // Elsewhere they are spilled home (and copied in below) or dropped.
    std::optional<double> from_home;
    if (here) {
      model.forward_on[s] = no_device;
      std::erase(device.forwards, std::pair(t.model, s));
    } else if (reads_forward) {
      if (model.forward_on[s] != no_device) give_up_forward(model.forward_on[s], t.model, s);
      from_home = std::exchange(model.forward_home[s], std::nullopt);
    }
    bool const recomputes = !here && !from_home;
    if (reads_forward && !recomputes) ++recomputations_avoided_;
    // Where the activations a backward starts from are ready in its scratch, if it recomputes nothing.
    std::optional<double> const activations_ready =
        here        ? scratch_room
        : from_home ? std::optional<double>(h2d(std::max(*scratch_room, *from_home), spec.scratch_bytes))
                    : std::nullopt;
    bool const keep = options_.activations != activation_handoff::through_host;
    std::uint64_t const output = forward ? (t.shard + 1 < shards ? model_spec.shards[t.shard + 1].input_bytes : 0)
                                         : (t.shard > 0 ? spec.input_bytes : 0);
    // Kept on the device: the output's block, found now as scratch is (or the
    // output goes through host memory as the runtime sends it).
    std::optional<double> const output_room =
        keep && output > 0 ? make_room(d, output, /*may_drop_kept=*/false) : std::nullopt;
    double inputs_ready = 0;
    if (!keep) {
      inputs_ready = activations_ready ? *activations_ready
                                       : h2d(std::max(*scratch_room, model.checkpoint_home_at), spec.input_bytes);
      if (!forward && t.shard + 1 < shards)
        inputs_ready =
            std::max(inputs_ready, h2d(model.checkpoint_home_at, model_spec.shards[t.shard + 1].input_bytes));
    } else {
      inputs_ready = kept_inputs(t, d, *scratch_room, h2d, activations_ready);
    }

    unpin();
    staged_task staged{t, sequence_++, issued, inputs_ready, output, output_room, fetch_start, fetch_end};
    staged.recomputes = recomputes;
    // Take-back (options::take_back): a task queued behind another one has its
    // compute booked only once the device's compute reaches it; until then it
    // may be withdrawn.
    if (options_.take_back != take_back_rule::none && !driver_.queued(d).empty()) {
      // The launching thread's work on it follows its launch, whether or
      // not its compute is ever booked.
      take_core(node, issued, workload_.task_host_seconds);
      staged.host_work_booked = true;
      if (device.staged.empty()) start_at(d, std::max(device.compute_free, now_));
      device.staged.push_back(staged);
      return launch_outcome::launched;
    }
    start_compute(d, staged, 0);
    return launch_outcome::launched;
  }

  // Books task `staged`'s compute on device d, at `not_before` or later, and
  // what follows it: the output's copy, the write-back, the completion.
  void start_compute(std::size_t d, staged_task const& staged, double not_before) {
    auto& device = devices_[d];
    task const& t = staged.what;
    auto const& model_spec = workload_.models[t.model];
    auto const id = static_cast<std::uint32_t>(bases_[t.model] + t.shard);
    auto& shard = shards_[id];
    shard_spec const& spec = *shard.spec;
    bool const forward = t.pass == direction::forward;
    std::size_t const node = device.spec->node;
    double const issued = staged.issued;
    std::uint64_t const output = staged.output;
    bool const output_stays = staged.output_room.has_value();
    bool const keep = options_.activations != activation_handoff::through_host;
    auto& model = models_[t.model];

    // Compute stream.
    double const work = forward             ? spec.forward_seconds
                        : staged.recomputes ? spec.backward_seconds
                                            : std::max(0.0, spec.backward_seconds - spec.forward_seconds);
    double const seconds = work / device.spec->speed;
    double const earliest = std::max({device.compute_free, issued, not_before});
    double const start = take_core(node, std::max({earliest, shard.ready_at, staged.inputs_ready}), seconds);
    copy_wait_ += start - earliest;
    double const end = start + seconds;
    device.compute_free = end;
    device.busy += seconds;
    shard.last_use_end = end;

    // Spill stream: write-back, output copy, scratch free, completion.
    double spill_start = std::max(device.d2h_free, end);
    device.d2h_free = spill_start;
    double done = 0; // the model's next task may start: it needs nothing more from here
    if (output_stays) {
      // A forward's output goes home too, as the checkpoint its backward
      // reads, off the chain; a backward's gradient only if it must move.
      bool const checkpoint = forward && t.purpose == task_purpose::train;
      model.handoff_home.reset();
      if (checkpoint || options_.activations == activation_handoff::kept_and_sent_home)
        model.handoff_home = copy(device, false, end, output);
      if (checkpoint) model.checkpoint_home[t.shard + 1] = *model.handoff_home;
      model.handoff_device = static_cast<std::uint32_t>(d);
      model.handoff_ready = std::max(end, *staged.output_room);
      model.checkpoint_home_at = end;
      done = end;
    } else {
      double const output_home = copy(device, false, end, output);
      model.checkpoint_home_at = std::max(output_home, end);
      if (keep && forward && output > 0) model.checkpoint_home[t.shard + 1] = output_home;
      done = device.d2h_free;
    }
    model.handoff_bytes = output;
    // Scratch: freed behind its compute, or behind the output's copy home
    // where that reads it; or, a training forward's with forward activations
    // kept, left here for the shard's backward.
    double const scratch_done = keep && (output_stays || output == 0) ? end : done;
    if (options_.keep_forward_activations && forward && t.purpose == task_purpose::train) {
      model.forward_on[t.shard] = static_cast<std::uint32_t>(d);
      model.forward_written[t.shard] = scratch_done;
      device.forwards.emplace_back(t.model, t.shard);
      ++forward_activations_kept_;
    } else if (spec.scratch_bytes > 0) {
      free_later(device, scratch_done, spec.scratch_bytes);
    }
    // The update goes home behind the completion, off the model's chain
    // (with write_back_on_eviction, when the shard leaves the device).
    if (!forward) {
      if (options_.write_back_on_eviction)
        shard.dirty = true;
      else
        write_back(device, shard, end);
    }
    if (!staged.host_work_booked) take_core(node, issued, workload_.task_host_seconds);
    completions_.push_back({done + workload_.handoff_seconds, staged.sequence, d, t});
    std::push_heap(completions_.begin(), completions_.end());
    ++tasks_;

    if (options_.record_trace) {
      std::string const& name = model_spec.name;
      auto ns = [](double seconds_) { return std::chrono::nanoseconds(std::llround(seconds_ * 1e9)); };
      if (std::isfinite(staged.fetch_start))
        trace_.push_back({t, name, d, stream_role::prefetch, ns(staged.fetch_start), ns(staged.fetch_end)});
      trace_.push_back({t, name, d, stream_role::compute, ns(start), ns(end)});
      if (done > spill_start) trace_.push_back({t, name, d, stream_role::spill, ns(spill_start), ns(done)});
    }
  }

  // Device d's compute reaches its first staged task at `at` (options::take_back).
  void start_at(std::size_t d, double at) {
    starts_.push_back({at, sequence_++, d, task{}});
    std::push_heap(starts_.begin(), starts_.end());
  }

  // Books the staged tasks whose device's compute reached them before the
  // next completion (ties: the start first, as the runtime would enqueue the
  // compute when the stream frees, before it hears of the completion).
  void start_staged() {
    while (!starts_.empty() && (completions_.empty() || starts_.front().time <= completions_.front().time)) {
      std::pop_heap(starts_.begin(), starts_.end());
      completion const due = starts_.back();
      starts_.pop_back();
      auto& device = devices_[due.device];
      if (device.staged.empty()) continue; // withdrawn since
      now_ = std::max(now_, due.time);
      if (driver_.take_back(options_.take_back, due.device, device.staged.front().what,
                            [this](task const& t, std::size_t d) { return withdraw(t, d); }) ||
          device.staged.empty())
        continue;
      staged_task const next = device.staged.front();
      device.staged.erase(device.staged.begin());
      start_compute(due.device, next, due.time);
      if (!device.staged.empty()) start_at(due.device, device.compute_free);
    }
  }

  // Take-back's undo: task t, staged on device d and not started, is
  // withdrawn. Its scratch is free again once the input copies into it have
  // landed; its shard state stays fetched, as cache (its inputs are fetched
  // again where it next runs).
  bool withdraw(task const& t, std::size_t d) {
    auto& device = devices_[d];
    auto const at =
        std::find_if(device.staged.begin(), device.staged.end(), [&](staged_task const& s) { return s.what == t; });
    if (at == device.staged.end()) return false;
    bool const first = at == device.staged.begin();
    free_later(device, std::max({now_, at->inputs_ready, at->fetch_end}),
               workload_.models[t.model].shards[t.shard].scratch_bytes);
    device.staged.erase(at);
    // The start booked for the first staged task now belongs to the next (it
    // is found by device, not by task).
    if (first && device.staged.empty()) {
      std::erase_if(starts_, [&](completion const& c) { return c.device == d; });
      std::make_heap(starts_.begin(), starts_.end());
    }
    return true;
  }

  // A launch finds no room on device d. When replaying, the recorded run did
  // launch it there: the cost model's memory has drifted from the run's, and
  // the replay stops here rather than at a later, misleading event.
  launch_outcome no_room(task const& t, std::size_t d, std::uint64_t bytes) const {
    if (!options_.replay.empty())
      throw replay_.diverged("the recorded run launched " + describe(t) + " on device " + std::to_string(d) +
                             ", where the simulated device (budget " + format_bytes(devices_[d].spec->budget_bytes) +
                             ") has no room for its " + format_bytes(bytes));
    return launch_outcome::no_room;
  }

  // Whether `id` must stay on device d: a shard of a task queued there, or of the one being launched.
  [[nodiscard]] bool pinned(std::size_t d, std::uint32_t id) const {
    if (id == launching_ && d == launching_on_) return true;
    for (task const& t : driver_.queued(d))
      if (bases_[t.model] + t.shard == id) return true;
    return false;
  }

  // The next completion: the earliest (ties: the earliest launched), or, when
  // replaying, the recorded one, followed by the cost updates recorded after it.
  void complete_next() {
    if (options_.replay.empty()) {
      start_staged();
      std::pop_heap(completions_.begin(), completions_.end());
      completion const done = completions_.back();
      completions_.pop_back();
      now_ = done.time;
      driver_.complete(done.what, done.device);
      if (options_.write_back_on_eviction) write_back_finished(done.what.model);
      if (options_.move_models && capacities_.size() > 1) move_models();
      return;
    }
    replay_.apply_updates(driver_); // what was planned after a launch that stopped its model
    driver_event const& recorded = replay_.next("a completion");
    using kind = driver_event::kind;
    auto const at = std::find_if(completions_.begin(), completions_.end(), [&](completion const& c) {
      return c.device == recorded.device && c.what == recorded.task;
    });
    if ((recorded.what != kind::completed && recorded.what != kind::failed) || at == completions_.end())
      throw replay_.diverged("recorded " + replay_cursor::describe_event(recorded) + ", which is not in flight here");
    completion const done = *at;
    completions_.erase(at);
    std::make_heap(completions_.begin(), completions_.end());
    now_ = std::max(now_, done.time);
    if (recorded.what == kind::failed)
      driver_.fail(done.what, done.device);
    else
      driver_.complete(done.what, done.device);
    // Before the controller's extensions recorded after it, as the runtime
    // writes a model home at the end of its planned work.
    if (options_.write_back_on_eviction) write_back_finished(done.what.model);
    replay_.apply_updates(driver_);
  }

  // options::write_back_on_eviction: a model whose planned work has ended
  // has its updated shards written home from their devices (they stay there
  // as clean copies until evicted). A stopped model's are not: as in the
  // runtime, its state is given up.
  void write_back_finished(std::size_t m) {
    if (!driver_.core().model_done(m)) return;
    for (std::size_t s = 0; s < workload_.models[m].shards.size(); ++s) {
      auto& shard = shards_[bases_[m] + s];
      if (!shard.dirty) continue;
      write_back(devices_[shard.device], shard, std::max(now_, shard.last_use_end));
    }
  }

  report make_report() {
    if (options_.write_back_on_eviction)
      for (auto const& shard : shards_)
        hydra::detail::expects(!shard.dirty || driver_.core().model_stopped(shard.model),
                               "simulator: a shard of model " + std::to_string(shard.model) +
                                   " ended the run with an update not written home");
    report out;
    out.policy = policy_.name();
    double makespan = 0;
    for (auto const& device : devices_)
      makespan = std::max({makespan, device.compute_free, device.h2d_free, device.d2h_free});
    out.makespan_seconds = makespan;
    out.bound =
        lower_bound(workload_, options_.activations, options_.keep_checkpoints && !options_.keep_forward_activations,
                    options_.keep_forward_activations, !options_.write_back_on_eviction);
    for (auto const& device : devices_) out.device_busy_fraction.push_back(makespan > 0 ? device.busy / makespan : 0);
    out.tasks = tasks_;
    out.bytes_to_device = bytes_to_device_;
    out.bytes_to_host = bytes_to_host_;
    out.write_backs = write_backs_;
    out.activations_copied_between_devices = activations_copied_between_devices_;
    out.bytes_between_devices = bytes_between_devices_;
    out.fetches = fetches_;
    out.evictions = evictions_;
    out.cross_device_moves = cross_device_moves_;
    out.released = driver_.released();
    out.taken_back = driver_.taken_back();
    out.copy_wait_seconds = copy_wait_;
    out.forward_activations_kept = forward_activations_kept_;
    out.recomputations_avoided = recomputations_avoided_;
    out.forward_activations_spilled = forward_activations_spilled_;
    out.forward_activations_given_up_first = forward_activations_given_up_first_;
    out.activations_read_on_device = activations_read_on_device_;
    out.checkpoints_read_on_device = checkpoints_read_on_device_;
    out.decisions = driver_.core().decisions();
    out.trace = std::move(trace_);
    out.starting_node = starting_node_.empty() ? node_of_ : starting_node_;
    out.moves = std::move(moves_);
    out.bytes_between_nodes = bytes_between_nodes_;
    return out;
  }

  workload const& workload_;
  Policy& policy_;
  options const& options_; // simulate() keeps it alive for the whole run
  sweep_driver driver_;
  std::vector<std::size_t> bases_;
  std::vector<shard_state> shards_;
  std::vector<model_state> models_;
  std::vector<device_state> devices_;
  std::vector<completion> completions_; // a heap: the earliest on top
  std::vector<completion> starts_;      // options::take_back: when a device's compute reaches its staged tasks (a heap)
  std::vector<trace_slice> trace_;
  double now_ = 0;
  // Per node: when its launching thread has made every launch so far, the
  // work booked on its host's cores (host_cores > 0), the copies booked on
  // its shared host link (start -> end), when its link to the others is free
  // to send and to receive.
  std::vector<double> host_free_;
  std::vector<std::vector<std::pair<double, double>>> core_busy_by_node_;
  std::vector<std::map<double, double>> shared_busy_by_node_;
  std::vector<double> send_free_, receive_free_;
  std::vector<std::vector<bool>> placements_; // per model: placement_of
  std::vector<node_capacity> capacities_;     // per node, where there are several
  std::vector<std::size_t> node_of_, starting_node_;
  std::vector<std::uint64_t> move_bytes_; // per model, where there are several nodes
  std::vector<double> move_seconds_;
  std::vector<timed_move> moves_;
  std::uint64_t bytes_between_nodes_ = 0;
  std::uint64_t sequence_ = 0, tasks_ = 0, bytes_to_device_ = 0, bytes_to_host_ = 0, fetches_ = 0, evictions_ = 0,
                cross_device_moves_ = 0;
  std::uint32_t launching_ = no_shard; // the shard of the task being launched
  std::size_t launching_on_ = 0;
  std::size_t launching_model_ = 0;
  replay_cursor replay_;
  double copy_wait_ = 0;
  std::uint64_t forward_activations_kept_ = 0, recomputations_avoided_ = 0, forward_activations_spilled_ = 0,
                forward_activations_given_up_first_ = 0;
  std::uint64_t activations_read_on_device_ = 0;
  std::uint64_t checkpoints_read_on_device_ = 0;
  std::uint64_t activations_copied_between_devices_ = 0, bytes_between_devices_ = 0;
  std::uint64_t write_backs_ = 0;
};

} // namespace detail

} // namespace hydra::sim
