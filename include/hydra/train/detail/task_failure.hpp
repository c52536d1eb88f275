// What a runner does when enqueueing one of its tasks fails part-way (a layer
// refused its arguments, a library call or a copy failed): give the task's
// scratch back safely, and report the failure as task_failed, naming the task.
#pragma once

#include <cstddef>
#include <exception>

#include "hydra/core/error.hpp"
#include "hydra/sched/task.hpp"

namespace hydra::detail {

// Frees the scratch behind whatever of the task was enqueued: the free waits
// for compute, and compute first for the prefetch stream, which may still be
// copying into the scratch. It runs while the failure is on its way out, so it
// must not throw: after a lost device context the memory goes with the
// context anyway.
template <class Backend, class Engine>
void abandon_task(Backend& backend, Engine& engine, std::size_t shard_id, std::byte* scratch) noexcept {
  try {
    backend.wait_event(engine.compute_stream(), backend.record_event(engine.prefetch_stream()));
    auto const done = backend.record_event(engine.compute_stream());
    engine.used_by_compute(shard_id, done);
    engine.release_scratch(scratch, done);
  } catch (...) {
  }
}

// Rethrows the exception in flight as task_failed (nesting it), naming the
// task; does_not_fit passes unchanged, since the task may be retried.
[[noreturn]] inline void fail_task(task const& t) {
  try {
    throw;
  } catch (does_not_fit const&) {
    throw;
  } catch (std::exception const& failure) {
    std::throw_with_nested(task_failed("enqueueing " + describe(t) + " failed: " + failure.what()));
  } catch (...) {
    std::throw_with_nested(
        task_failed("enqueueing " + describe(t) + " failed: an exception not derived from std::exception"));
  }
}

} // namespace hydra::detail
