// Measures each model's profiling minibatch (its first, unless the user gave
// estimates): the compute and prefetch time of every shard's forward and
// backward, timed on the streams by marks around the task's work. When the
// minibatch's last task completes, the measured costs are handed to `adopt`
// (the trainer gives them to the scheduler, so the policies steer by them from
// then on) and become the model's profile.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "hydra/sched/scheduler_core.hpp"
#include "hydra/train/model_profile.hpp"
#include "hydra/train/sweep_observer.hpp"

namespace hydra {

template <class Backend>
class profile_observer final : public sweep_observer<Backend> {
public:
  using typename sweep_observer<Backend>::device_streams;
  using adopt_function = std::function<void(std::size_t model, model_costs const& measured)>;

  // `profiles`: what the policies start from, per model; the models whose
  // source is "flops" are measured.
  profile_observer(Backend& backend, std::vector<model_profile> profiles, adopt_function adopt)
      : backend_(&backend), profiles_(std::move(profiles)), adopt_(std::move(adopt)),
        origin_(std::chrono::steady_clock::now()) {
    for (auto const& profile : profiles_)
      measuring_.push_back(profile.source == "flops" ? std::make_shared<measurement>(profile.forward_seconds.size())
                                                     : nullptr);
  }

  void on_launch(task const& t, std::size_t /*device*/, device_streams const& streams) override {
    starts_ = {};
    if (!profiling(t) || !measuring_[t.model]) return;
    for (stream_role role : {stream_role::compute, stream_role::prefetch}) {
      auto& mark = starts_[static_cast<std::size_t>(role)];
      mark = std::make_shared<std::chrono::nanoseconds>(0);
      backend_->enqueue(streams[static_cast<std::size_t>(role)], [mark, this] { *mark = now(); });
    }
  }

  void on_enqueued(task const& t, std::size_t /*device*/, device_streams const& streams) override {
    auto const into = profiling(t) ? measuring_[t.model] : nullptr;
    if (!into || !starts_[0]) return;
    auto const compute = streams[static_cast<std::size_t>(stream_role::compute)];
    auto const prefetch = streams[static_cast<std::size_t>(stream_role::prefetch)];
    backend_->enqueue(prefetch, [into, start = starts_[1], t, this] {
      double const seconds = static_cast<double>((now() - *start).count()) * 1e-9;
      std::lock_guard lock(into->mutex);
      into->fetch[t.shard] += seconds;
    });
    backend_->enqueue(compute, [into, start = starts_[0], t, this] {
      double const seconds = static_cast<double>((now() - *start).count()) * 1e-9;
      std::lock_guard lock(into->mutex);
      (t.pass == direction::forward ? into->forward : into->backward)[t.shard] = seconds;
    });
    auto const compute_marked = backend_->record_event(compute);
    auto const prefetch_marked = backend_->record_event(prefetch);
    std::lock_guard lock(into->mutex); // not held across backend calls
    into->marks.push_back(compute_marked);
    into->marks.push_back(prefetch_marked);
  }

  void on_complete(task const& t, std::size_t /*device*/) override {
    bool const minibatch_done = profiling(t) && t.pass == direction::backward && t.shard == 0;
    if (minibatch_done && measuring_[t.model]) adopt(t.model);
  }

  [[nodiscard]] std::vector<model_profile> const& profiles() const noexcept { return profiles_; }

private:
  // A task of the profiling minibatch: the first training minibatch of this run.
  [[nodiscard]] static bool profiling(task const& t) noexcept {
    return t.minibatch == 0 && t.purpose == task_purpose::train;
  }

  // Per-shard times of one model's profiling minibatch, written by stream threads.
  struct measurement {
    explicit measurement(std::size_t shards) : forward(shards, 0.0), backward(shards, 0.0), fetch(shards, 0.0) {}
    std::mutex mutex;
    std::vector<double> forward, backward, fetch;
    std::vector<typename Backend::event> marks; // after every end mark: what adopt waits for
  };

  [[nodiscard]] std::chrono::nanoseconds now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - origin_);
  }

  void adopt(std::size_t m) {
    auto const into = std::move(measuring_[m]);
    std::vector<typename Backend::event> marks;
    {
      std::lock_guard lock(into->mutex);
      marks = into->marks;
    }
    for (auto const& mark : marks) backend_->synchronize(mark); // end marks may trail the completions
    std::lock_guard lock(into->mutex);
    auto& profile = profiles_[m];
    profile.source = "measured";
    profile.forward_seconds = into->forward;
    profile.backward_seconds = into->backward;
    profile.fetch_seconds = into->fetch;
    adopt_(m, model_costs{into->forward, into->backward, 0});
  }

  Backend* backend_;
  std::vector<model_profile> profiles_;
  adopt_function adopt_;
  std::chrono::steady_clock::time_point origin_;
  std::vector<std::shared_ptr<measurement>> measuring_; // null once measured, or when not measured at all
  // The launching task's start marks, by stream role (compute, prefetch).
  std::array<std::shared_ptr<std::chrono::nanoseconds>, 2> starts_{};
};

} // namespace hydra
