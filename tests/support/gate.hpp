// A gate for tests: work enqueued as gate.hold() blocks its stream until the test
// calls open(). It makes "B did not run before A" observable without sleeps.
#pragma once

#include <atomic>

namespace hydra::testing {

class gate {
public:
  // A host function for backend.enqueue(stream, ...).
  auto hold() {
    return [this] {
      while (!open_.load(std::memory_order_acquire)) open_.wait(false, std::memory_order_acquire);
    };
  }
  void open() {
    open_.store(true, std::memory_order_release);
    open_.notify_all();
  }

private:
  std::atomic<bool> open_{false};
};

} // namespace hydra::testing
