// Carries out the driver's launches on a backend: one spill engine per device,
// one runner per model, and the queue through which completions come back.
// A task's completion is enqueued on its device's spill stream behind its
// outputs, so it is reported once the model's next task may start anywhere
// (an output also kept on the device included: it goes home all the same); a
// backward's write-back is queued behind the completion, off the model's chain.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/core/error.hpp"
#include "hydra/memory/device_pool.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/spill_engine.hpp"
#include "hydra/sched/sweep_driver.hpp"
#include "hydra/train/detail/device_busy.hpp"
#include "hydra/train/detail/model_runner.hpp"
#include "hydra/train/minibatch.hpp"
#include "hydra/train/sweep_observer.hpp"

namespace hydra::detail {

// Backends that can say whether a stream has failed for good (a CUDA device
// fault): its queued host functions, completions included, will never run.
template <class Backend>
concept checks_streams = requires(Backend& backend, typename Backend::stream stream) {
  backend.check(stream);
};

template <class Backend, class Context>
class sweep_executor {
public:
  using engine_type = spill_engine<Backend>;
  using runner_type = model_runner<Backend, Context>;
  using observer_type = sweep_observer<Backend>;
  using stream_type = typename Backend::stream;

  struct completion {
    task what;
    std::size_t device = 0;
    bool probe = false; // handoff_round_trip()'s, not a task's
  };

  // What the executor needs to know of one model.
  struct model_entry {
    std::string name;
    std::function<minibatch(task const&)> data; // the minibatch a task's chain segment reads
    std::unique_ptr<runner_type> runner;
  };

  // `host_bytes`: the host pool for every model's homes and boundary buffers.
  sweep_executor(Backend& backend, std::size_t host_bytes, std::optional<std::uint8_t> poison_freed_blocks)
      : backend_(&backend), busy_(backend, backend.device_count()) {
    for (std::size_t d = 0; d < backend.device_count(); ++d)
      device_pools_.push_back(std::make_unique<device_pool<Backend>>(backend, d));
    host_pool_ = std::make_unique<host_pool<Backend>>(backend, host_bytes);
    for (std::size_t d = 0; d < backend.device_count(); ++d)
      engines_.push_back(std::make_unique<engine_type>(backend, *device_pools_[d], *host_pool_, d));
    if (poison_freed_blocks) {
      for (auto& pool : device_pools_) pool->poison_freed_blocks(poison_freed_blocks);
      host_pool_->poison_freed_blocks(poison_freed_blocks);
    }
    // An update left on a device whose write-back fails at an eviction, made
    // for whichever task needed the room, fails the shard's own model: its
    // home is stale. That model is stopped at its next completion (the
    // trainer flushes a model whose planned work has ended, and asks fault()
    // then, so a model with no task left is stopped there).
    for (auto& engine : engines_) {
      engine->on_write_back_failure([this](std::size_t shard_id, std::string const& what) {
        models_[owners_[shard_id].first].runner->fault()->record(
            "writing a shard's update left on its device home failed " + what);
      });
    }
  }

  sweep_executor(sweep_executor const&) = delete;
  sweep_executor& operator=(sweep_executor const&) = delete;
  ~sweep_executor() { drain(); }

  // Leave each backward's update on its device until the shard is evicted
  // (multi_model_options::write_back_on_eviction); before add_model.
  void write_back_on_eviction(bool on) {
    detail::expects(models_.empty(), "sweep_executor: write_back_on_eviction is set before the models are added");
    write_back_on_eviction_ = on;
  }

  // Writes model m's updates still on a device home (its planned work has
  // ended: its state may be read from the homes, model_runner::settled_state).
  void flush(std::size_t m) {
    for (auto& engine : engines_)
      for (std::size_t s = 0; s < models_[m].runner->graph().size(); ++s) engine->flush(bases_[m] + s);
  }

  // Where runners fill their homes (any stream of the run).
  [[nodiscard]] stream_type setup_stream() const { return engines_.front()->spill_stream(); }
  [[nodiscard]] host_pool<Backend>& host_memory() const noexcept { return *host_pool_; }

  // Adds model `models().size()`, registering its shards with every device.
  void add_model(model_entry entry) {
    entry.runner->defer_write_backs(true);
    entry.runner->write_back_on_eviction(write_back_on_eviction_);
    std::size_t const m = models_.size();
    for (auto& engine : engines_) {
      std::size_t const base = entry.runner->register_with(*engine);
      if (engine == engines_.front()) {
        bases_.push_back(base);
        for (std::size_t s = 0; s < entry.runner->graph().size(); ++s) owners_.push_back({m, s});
      }
    }
    models_.push_back(std::move(entry));
  }

  // Enqueues `t` on device d. `driver` says what is queued there (those shards
  // stay resident) and how soon each shard is needed again.
  launch_outcome launch(task const& t, std::size_t d, sweep_driver const& driver,
                        std::vector<observer_type*> const& observers) {
    auto& engine = *engines_[d];
    auto& model = models_[t.model];
    std::size_t const id = bases_[t.model] + t.shard;
    for (std::size_t e = 0; e < engines_.size(); ++e) {
      if (e == d || !engines_[e]->table()[id].resident()) continue;
      engines_[e]->evict(id); // one device holds a shard's state at a time
      ++cross_device_moves_;
    }
    std::vector<std::size_t> pins{id};
    for (task const& queued : driver.queued(d)) pins.push_back(bases_[queued.model] + queued.shard);
    engine.pin(std::move(pins), t.model); // and its kept input dropped last (after every checkpoint)
    [[maybe_unused]] auto const range = annotate_task(*backend_, model.name, t);
    auto const streams = streams_of(engine);
    for (auto* observer : observers) observer->on_launch(t, d, streams);
    try {
      if (t.pass == direction::forward && t.shard == 0 && !model.runner->staged(t))
        model.runner->begin_minibatch(engine, t, model.data(t));
      model.runner->run(
          engine, bases_[t.model], t,
          [this, &driver](std::size_t shard_id) {
            auto const [m, s] = owners_[shard_id];
            return driver.next_use(m, s);
          },
          [&] {
            busy_.compute_starts(engine.compute_stream());
            for (auto* observer : observers) observer->on_compute_begins(t, d, streams);
          },
          [&](std::size_t) {
            busy_.compute_ends(d, engine.compute_stream(), t);
            for (auto* observer : observers) observer->on_compute_ends(t, d, streams);
          });
    } catch (does_not_fit const&) {
      // Only a task queued behind a running one can meet this (a task is
      // placed only on devices whose half-budget holds it): it is
      // retried later. Nothing of it was enqueued; shards it evicted or
      // fetched are just cache.
      return launch_outcome::no_room;
    } catch (invalid_argument const& bad_input) { // e.g. a malformed minibatch: this model only
      stop(t.model, d);
      stop_reason_ = bad_input.what();
      return launch_outcome::stopped;
    } catch (task_failed const& failure) {
      // A layer, the optimizer, a copy or an allocation refused the task while
      // it was being enqueued (on CUDA: a cuBLAS, cuDNN or CUDA error): this
      // model only, unless the device itself is lost: then check() throws
      // that, and the sweep ends with it. Anything else (the user's data
      // source throwing) is not the model's fault and ends the sweep.
      check_streams();
      stop(t.model, d);
      stop_reason_ = failure.what();
      return launch_outcome::stopped;
    }
    for (auto* observer : observers) observer->on_enqueued(t, d, streams);
    backend_->enqueue(engine.spill_stream(), [this, t, d] { report({t, d}); });
    model.runner->flush_write_back(engine); // behind the completion: off the model's chain
    return launch_outcome::launched;
  }

  // The median wall-clock round trip of a task's hand-offs with no work in
  // them (sweep_profile::handoff_seconds): work that does nothing on a
  // device's prefetch stream, then on its compute stream behind it, then a
  // completion on its spill stream behind that, taken by await() as a task's
  // is. `rounds` round trips over the devices in turn; nothing else may be in
  // flight (run() measures once its work is done).
  std::chrono::nanoseconds handoff_round_trip(std::size_t rounds, std::chrono::milliseconds check_interval) {
    std::vector<std::chrono::nanoseconds> trips;
    for (std::size_t r = 0; r < rounds; ++r) {
      std::size_t const d = r % engines_.size();
      auto& engine = *engines_[d];
      auto const started = std::chrono::steady_clock::now();
      backend_->enqueue(engine.prefetch_stream(), [] {});
      backend_->wait_event(engine.compute_stream(), backend_->record_event(engine.prefetch_stream()));
      backend_->enqueue(engine.compute_stream(), [] {});
      backend_->wait_event(engine.spill_stream(), backend_->record_event(engine.compute_stream()));
      backend_->enqueue(engine.spill_stream(), [this, d] { report({task{}, d, true}); });
      completion const back = await(check_interval);
      if (!back.probe) throw error("sweep_executor: a task completed while the hand-off was measured"); // a bug
      trips.push_back(std::chrono::steady_clock::now() - started);
    }
    if (trips.empty()) return std::chrono::nanoseconds{0};
    auto const middle = trips.begin() + static_cast<std::ptrdiff_t>(trips.size() / 2);
    std::nth_element(trips.begin(), middle, trips.end());
    return *middle;
  }

  // Why the last launch that returned `stopped` stopped its model.
  [[nodiscard]] std::string const& stop_reason() const noexcept { return stop_reason_; }

  // The next completion, in the order the devices reported them. Every
  // `check_interval` without one, the backend is asked whether a stream has
  // failed for good (then its error is thrown: no completion would ever come).
  completion await(std::chrono::milliseconds check_interval) {
    // On a busy sweep the next completion is usually microseconds away, and
    // waking a blocked thread costs tens of microseconds on a VM: look for it
    // briefly, giving the core away between looks, before blocking.
    auto const until = std::chrono::steady_clock::now() + completion_poll_budget;
    while (pending_completions_.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    std::unique_lock lock(completions_mutex_);
    while (completions_.empty()) {
      if (completions_ready_.wait_for(lock, check_interval) == std::cv_status::no_timeout) continue;
      lock.unlock();
      check_streams();
      lock.lock();
    }
    completion const next = completions_.front();
    completions_.pop_front();
    pending_completions_.fetch_sub(1, std::memory_order_relaxed);
    return next;
  }

  // The scores of model m's evaluation pass that just ended (model_runner::take_evaluation).
  [[nodiscard]] evaluation take_evaluation(std::size_t m) { return models_[m].runner->take_evaluation(); }

  // A completed task's compute interval has ended (device utilisation).
  void completed(completion const& done) { busy_.completed(done.what, done.device); }

  // Why model m failed, if its work on a stream did (a layer threw, or the loss
  // stopped being finite).
  [[nodiscard]] std::optional<std::string> fault(std::size_t m) const { return models_[m].runner->fault()->reason(); }

  // Gives back everything model m holds: its interrupted minibatch's buffers
  // (in stream order on device d), its shards on every device, and its homes.
  void stop(std::size_t m, std::size_t d) {
    auto& runner = *models_[m].runner;
    auto& engine = *engines_[d];
    // The frees below go on d's spill stream; a task that failed part-way may
    // have left copies and host work reading or writing those blocks on d's
    // other streams: the frees wait for all of it.
    backend_->wait_event(engine.spill_stream(), backend_->record_event(engine.prefetch_stream()));
    backend_->wait_event(engine.spill_stream(), backend_->record_event(engine.compute_stream()));
    runner.abandon(engine);
    // Nothing goes home: the homes go now (an update left on a device included).
    for (auto& engine : engines_)
      for (std::size_t s = 0; s < runner.graph().size(); ++s)
        if (engine->table()[bases_[m] + s].resident()) engine->discard(bases_[m] + s);
    runner.release_homes(engines_[d]->spill_stream());
  }

  // The sweep is over: gives the devices back their memory and waits for
  // every stream. A device lost after the last completion would have dropped
  // the last write-backs: that ends the sweep with its error, not stale
  // weights. (Nothing is dirty here: the trainer flushed each model at the
  // end of its planned work, and a refusal there failed the model.)
  void finish() {
    for (auto& engine : engines_)
      for (std::size_t id = 0; id < engine->table().size(); ++id)
        if (engine->table()[id].resident()) engine->evict(id);
    drain();
    check_streams();
  }

  // Throws the error of a device lost so far (checks_streams backends).
  void check_devices() { check_streams(); }

  // Waits for every stream (spill_engine::drain: never throws).
  void drain() noexcept {
    for (auto& engine : engines_) engine->drain();
  }

  [[nodiscard]] std::vector<model_entry> const& models() const noexcept { return models_; }
  [[nodiscard]] std::vector<std::unique_ptr<engine_type>> const& engines() const noexcept { return engines_; }
  [[nodiscard]] std::vector<std::unique_ptr<device_pool<Backend>>> const& device_pools() const noexcept {
    return device_pools_;
  }
  [[nodiscard]] std::uint64_t cross_device_moves() const noexcept { return cross_device_moves_; }
  [[nodiscard]] std::chrono::nanoseconds compute_busy(std::size_t d) const {
    return busy_.busy(d, engines_[d]->compute_stream());
  }

private:
  static typename observer_type::device_streams streams_of(engine_type const& engine) {
    return {engine.compute_stream(), engine.prefetch_stream(), engine.spill_stream()}; // in stream_role order
  }

  // On a spill stream: `done` is ready for await().
  void report(completion const& done) {
    {
      std::lock_guard lock(completions_mutex_);
      completions_.push_back(done);
      pending_completions_.fetch_add(1, std::memory_order_release);
    }
    completions_ready_.notify_one();
  }

  void check_streams() {
    if constexpr (checks_streams<Backend>) {
      for (auto& engine : engines_) {
        backend_->check(engine->compute_stream());
        backend_->check(engine->prefetch_stream());
        backend_->check(engine->spill_stream());
      }
    }
  }

  Backend* backend_;
  std::vector<std::unique_ptr<device_pool<Backend>>> device_pools_;
  std::unique_ptr<host_pool<Backend>> host_pool_;
  std::vector<std::unique_ptr<engine_type>> engines_;
  std::vector<model_entry> models_; // after the engines: destroyed first
  std::vector<std::size_t> bases_;  // engine shard id of each model's shard 0 (the same in every engine)
  std::vector<std::pair<std::size_t, std::size_t>> owners_; // engine shard id -> (model, shard)
  device_busy_clock<Backend> busy_;
  std::mutex completions_mutex_;
  std::condition_variable completions_ready_;
  std::deque<completion> completions_;
  std::atomic<std::size_t> pending_completions_{0}; // completions_.size(), readable without the lock
  static constexpr std::chrono::microseconds completion_poll_budget{100};
  std::uint64_t cross_device_moves_ = 0;
  std::string stop_reason_;
  bool write_back_on_eviction_ = false;
};

} // namespace hydra::detail
