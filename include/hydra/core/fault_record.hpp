// Why a model stopped: the first exception its work threw on a stream, or a
// non-finite loss. Written from stream threads, read by the trainer; the first
// reason wins. This is what lets one failing model stop without stopping others.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace hydra {

class fault_record {
public:
  void record(std::string reason) {
    std::lock_guard lock(mutex_);
    if (!reason_) reason_ = std::move(reason);
    failed_.store(true, std::memory_order_release);
  }

  void record(std::exception_ptr failure) {
    try {
      std::rethrow_exception(failure);
    } catch (std::exception const& cause) {
      record(std::string("a layer threw: ") + cause.what());
    } catch (...) {
      record(std::string("a layer threw an exception not derived from std::exception"));
    }
  }

  [[nodiscard]] std::optional<std::string> reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
  }

  // Whether a reason has been recorded (without taking the lock).
  [[nodiscard]] bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }

private:
  mutable std::mutex mutex_;
  std::optional<std::string> reason_;
  std::atomic<bool> failed_{false};
};

namespace detail {
// `work` as stream work that records an exception it throws in `faults`
// instead of letting it fail the stream (every execution context's enqueue:
// host work of layers, optimizers and guard mode; on CUDA, host functions
// only, not kernels). Once the model has failed, such work of it no longer
// runs: what it computes is discarded anyway, and its inputs may be what
// failed work left unwritten (a guarded layer given its canaries for labels,
// where the copy-in failed, would index memory with them).
template <class Work>
auto recording_faults(Work&& work, std::shared_ptr<fault_record> faults) {
  return [work = std::forward<Work>(work), faults = std::move(faults)]() mutable {
    if (faults->failed()) return;
    try {
      work();
    } catch (...) {
      faults->record(std::current_exception());
    }
  };
}
} // namespace detail

} // namespace hydra
