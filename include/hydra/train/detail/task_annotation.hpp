// Names a task for a profiler while it is being enqueued.
#pragma once

#include <string>

#include "hydra/backend/backend.hpp"
#include "hydra/sched/task.hpp"

namespace hydra::detail {

// A profiler range around the enqueueing of one task, on backends that offer
// them (the CUDA backend: NVTX); nothing elsewhere.
template <class Backend>
auto annotate_task(Backend& backend, std::string const& model, task const& t) {
  if constexpr (annotates<Backend>) {
    return backend.annotate(model + " shard " + std::to_string(t.shard) +
                            (t.pass == direction::forward ? " forward" : " backward") + ", minibatch " +
                            std::to_string(t.minibatch));
  } else {
    return 0;
  }
}

} // namespace hydra::detail
