// Measures each model's profiling minibatches (unless the user gave
// estimates): per shard, the compute time of its forward and backward and the
// prefetch stream's time for its fetches, timed on the streams by marks around
// the task's work. Compute is timed from the moment the compute stream has
// its inputs (the wait for them is not compute) to the end of its last work;
// on the host backend in the stream thread's CPU time (see now()).
//
// Each device's compute speed is measured from the same figures: the median,
// over the tasks that ran on it, of the task's shard figure over the task's
// own time (1: as fast as the figures say; 0.5: twice as long), counting only
// warm tasks (not the first after a move) of passes that ran on more than one
// device. A device no such task ran on keeps speed 1: where the policy keeps
// each shard on one device the speeds cannot be told apart.
//
// Minibatches 0 .. `minibatches` of each model are timed. The first is the
// odd one out (first fetches, cold caches, first-touch page faults), so a
// model's figures are the per-shard medians of minibatches 1 .. `minibatches`
// once one of them has finished, and minibatch 0's only until then. After
// each timed minibatch the figures so far are handed to `adopt` (the trainer
// gives them to the scheduler, so the policies steer by them) and become the
// model's profile.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "hydra/backend/backend.hpp"
#include "hydra/core/cpu_time.hpp"
#include "hydra/core/median.hpp"
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
  // source is "flops" are measured, over `minibatches` minibatches after their first.
  profile_observer(Backend& backend, std::vector<model_profile> profiles, std::size_t minibatches, adopt_function adopt)
      : backend_(&backend), profiles_(std::move(profiles)), minibatches_(minibatches), adopt_(std::move(adopt)),
        origin_(std::chrono::steady_clock::now()) {
    for (auto const& profile : profiles_)
      measuring_.push_back(profile.source == "flops" ? std::make_shared<measurement>(profile.forward_seconds.size())
                                                     : nullptr);
  }

  void on_launch(task const& t, std::size_t /*device*/, device_streams const& streams) override {
    marks_ = {};
    if (!measuring(t)) return;
    marks_.fetch_start = mark_on(streams[static_cast<std::size_t>(stream_role::prefetch)]);
  }

  void on_compute_begins(task const& t, std::size_t device, device_streams const& streams) override {
    if (!marks_.fetch_start) return;
    record(t, device, streams[static_cast<std::size_t>(stream_role::prefetch)], marks_.fetch_start, kind::fetch);
    marks_.compute_start = mark_on(streams[static_cast<std::size_t>(stream_role::compute)]);
  }

  void on_compute_ends(task const& t, std::size_t device, device_streams const& streams) override {
    if (!marks_.compute_start) return;
    record(t, device, streams[static_cast<std::size_t>(stream_role::compute)], marks_.compute_start,
           t.pass == direction::forward ? kind::forward : kind::backward);
  }

  void on_enqueued(task const& t, std::size_t /*device*/, device_streams const& streams) override {
    if (!marks_.compute_start) return;
    auto const& into = measuring_[t.model];
    auto const compute_marked = backend_->record_event(streams[static_cast<std::size_t>(stream_role::compute)]);
    auto const prefetch_marked = backend_->record_event(streams[static_cast<std::size_t>(stream_role::prefetch)]);
    std::lock_guard lock(into->mutex); // not held across backend calls
    into->marks.push_back(compute_marked);
    into->marks.push_back(prefetch_marked);
  }

  void on_complete(task const& t, std::size_t /*device*/) override {
    bool const minibatch_done = t.purpose == task_purpose::train && t.pass == direction::backward && t.shard == 0;
    if (minibatch_done && measuring(t)) adopt(t.model, t.minibatch);
  }

  [[nodiscard]] std::vector<model_profile> const& profiles() const noexcept { return profiles_; }

  // Each of `devices` devices' measured compute speed against the profiles'
  // figures (see the header comment); 1 for a device no timed task ran on.
  [[nodiscard]] std::vector<double> device_speeds(std::size_t devices) const {
    std::vector<std::vector<double>> ratios(devices);
    for (auto const& model : speed_samples_)
      for (auto const& [device, ratio] : model)
        if (device < devices) ratios[device].push_back(ratio);
    std::vector<double> out(devices, 1.0);
    for (std::size_t d = 0; d < devices; ++d)
      if (!ratios[d].empty()) out[d] = detail::median(std::move(ratios[d]));
    return out;
  }

private:
  enum class kind : std::size_t { forward, backward, fetch };

  // Per-shard times of one model's timed minibatches, written by stream threads.
  struct measurement {
    explicit measurement(std::size_t shard_count) : shards(shard_count) {}
    // The figure of kind k, minibatch b, shard s (grown as minibatches are timed).
    double& at(kind k, std::size_t b, std::size_t s) {
      auto& by_minibatch = seconds[static_cast<std::size_t>(k)];
      if (by_minibatch.size() <= b) {
        by_minibatch.resize(b + 1, std::vector<double>(shards, 0.0));
        devices[static_cast<std::size_t>(k)].resize(b + 1, std::vector<std::size_t>(shards, 0));
      }
      return by_minibatch[b][s];
    }
    // The device that task ran on (after at() for the same figure).
    std::size_t& device_of(kind k, std::size_t b, std::size_t s) { return devices[static_cast<std::size_t>(k)][b][s]; }
    std::size_t shards;
    std::mutex mutex;
    std::array<std::vector<std::vector<double>>, 3> seconds;      // [kind][minibatch][shard]
    std::array<std::vector<std::vector<std::size_t>>, 3> devices; // the same shape: where it ran
    std::vector<typename Backend::event> marks;                   // after every end mark: what adopt waits for
  };

  // The start marks of the task being launched (run()'s thread only).
  struct launch_marks {
    std::shared_ptr<std::chrono::nanoseconds> fetch_start, compute_start;
  };

  [[nodiscard]] bool measuring(task const& t) const noexcept {
    return t.purpose == task_purpose::train && t.minibatch <= minibatches_ && measuring_[t.model] != nullptr;
  }

  // A mark's reading. Both marks of an interval run on the same stream, so on
  // a backend whose streams are host threads the interval can be that
  // thread's CPU time: the work's own cost, without the time the thread
  // waited for a core (the simulator shares the cores out itself).
  [[nodiscard]] std::chrono::nanoseconds now() const {
    if constexpr (shares_host_cores<Backend>)
      return detail::thread_cpu_time();
    else
      return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - origin_);
  }

  std::shared_ptr<std::chrono::nanoseconds> mark_on(typename Backend::stream stream) {
    auto mark = std::make_shared<std::chrono::nanoseconds>(0);
    backend_->enqueue(stream, [mark, this] { *mark = now(); });
    return mark;
  }

  // The time from `start` to this point of `stream`, as task t's figure of kind `k`.
  void record(task const& t, std::size_t device, typename Backend::stream stream,
              std::shared_ptr<std::chrono::nanoseconds> start, kind k) {
    backend_->enqueue(stream, [into = measuring_[t.model], start = std::move(start), t, k, device, this] {
      double const seconds = static_cast<double>((now() - *start).count()) * 1e-9;
      std::lock_guard lock(into->mutex);
      into->at(k, t.minibatch, t.shard) += seconds; // fetch: both passes
      into->device_of(k, t.minibatch, t.shard) = device;
    });
  }

  // Model m's minibatch `done` has finished: its figures so far become its
  // profile and go to the policies.
  void adopt(std::size_t m, std::size_t done) {
    auto const into = measuring_[m];
    if (done >= minibatches_) measuring_[m] = nullptr; // the last timed minibatch
    std::vector<typename Backend::event> marks;
    {
      std::lock_guard lock(into->mutex);
      marks = std::move(into->marks);
      into->marks.clear();
    }
    for (auto const& mark : marks) backend_->synchronize(mark); // end marks may trail the completions
    std::lock_guard lock(into->mutex);
    // Minibatches 1 .. done when there are any; minibatch 0 alone until then.
    std::size_t const first = done == 0 ? 0 : 1;
    auto& profile = profiles_[m];
    auto medians = [&](kind k) {
      std::vector<double> out(profile.forward_seconds.size());
      for (std::size_t s = 0; s < out.size(); ++s) {
        std::vector<double> samples;
        for (std::size_t b = first; b <= done; ++b) samples.push_back(into->at(k, b, s));
        out[s] = detail::median(std::move(samples));
      }
      return out;
    };
    profile.source = "measured";
    profile.measured_minibatches = done + 1 - first;
    profile.forward_seconds = medians(kind::forward);
    profile.backward_seconds = medians(kind::backward);
    profile.fetch_seconds = medians(kind::fetch);
    // Each timed task against its shard's figure, for the device speeds. Only
    // warm tasks count (the pass ran on the same device the minibatch before:
    // the first run after a move touches memory and caches cold), and only of
    // passes whose warm tasks ran on more than one device (a figure made on
    // one device alone says nothing of that device against the others).
    auto& samples = speed_samples_[m];
    samples.clear();
    for (kind const k : {kind::forward, kind::backward}) {
      auto const& figures = k == kind::forward ? profile.forward_seconds : profile.backward_seconds;
      for (std::size_t s = 0; s < figures.size(); ++s) {
        std::size_t const before = samples.size();
        bool moved = false;
        for (std::size_t b = std::max<std::size_t>(first, 1); b <= done; ++b) {
          std::size_t const device = into->device_of(k, b, s);
          double const took = into->at(k, b, s);
          if (device != into->device_of(k, b - 1, s) || took <= 0 || figures[s] <= 0) continue;
          moved = moved || (samples.size() > before && samples[before].first != device);
          samples.emplace_back(device, figures[s] / took);
        }
        if (!moved) samples.resize(before);
      }
    }
    adopt_(m, model_costs{profile.forward_seconds, profile.backward_seconds, 0});
  }

  Backend* backend_;
  std::vector<model_profile> profiles_;
  std::size_t minibatches_;
  adopt_function adopt_;
  std::chrono::steady_clock::time_point origin_;
  std::vector<std::shared_ptr<measurement>> measuring_; // null once measured, or when not measured at all
  // Per model, (device, figure / time) of each timed task (run()'s thread only).
  std::vector<std::vector<std::pair<std::size_t, double>>> speed_samples_ =
      std::vector<std::vector<std::pair<std::size_t, double>>>(profiles_.size());
  launch_marks marks_;
};

} // namespace hydra
