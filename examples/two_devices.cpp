// hydra's first example: two virtual devices, each with a hard memory budget and
// a stream-ordered pool; a buffer is filled on device 0, copied to device 1 on
// device 1's prefetch stream behind an event, then checked there.
//
//   device 0 compute:  fill(src) --record--> ready
//   device 1 prefetch:           wait(ready) --> copy(src -> dst) --record--> copied
//   device 1 compute:                                       wait(copied) --> check(dst)
//
// (The model-selection job replaces this example once the trainer exists.)
#include <hydra/hydra.hpp>

#include <cstdint>
#include <cstdio>
#include <numeric>
#include <span>

int main() {
  using namespace hydra::literals;
  hydra::host_backend backend({.device_budgets = {64_MiB, 32_MiB}});
  hydra::device_pool pool0(backend, 0);
  hydra::device_pool pool1(backend, 1);
  auto compute0 = backend.create_stream(0, "device 0 compute");
  auto prefetch1 = backend.create_stream(1, "device 1 prefetch");
  auto compute1 = backend.create_stream(1, "device 1 compute");

  constexpr std::size_t count = 4_MiB / sizeof(std::uint32_t);
  auto* source = static_cast<std::uint32_t*>(pool0.allocate(compute0, count * sizeof(std::uint32_t)));
  auto* destination = static_cast<std::uint32_t*>(pool1.allocate(prefetch1, count * sizeof(std::uint32_t)));

  backend.enqueue(compute0, [=] { std::iota(source, source + count, 0U); });
  backend.wait_event(prefetch1, backend.record_event(compute0));
  backend.copy_async(prefetch1, destination, source, count * sizeof(std::uint32_t));
  backend.wait_event(compute1, backend.record_event(prefetch1));
  std::size_t mismatches = 0;
  backend.enqueue(compute1, [&mismatches, destination] {
    for (std::uint32_t i = 0; i < count; ++i) mismatches += destination[i] != i ? 1 : 0;
  });

  // The source's last reader is the copy on device 1's prefetch stream: free it
  // there, so the pool orders any reuse after the copy without a host wait.
  pool0.deallocate(prefetch1, source);
  pool1.deallocate(compute1, destination);
  backend.synchronize(compute1);

  for (auto const* pool : {&pool0, &pool1}) {
    auto const counters = pool->statistics();
    std::printf("%s: capacity %s, peak in use %s, in use now %s\n", pool->name().c_str(),
                hydra::format_bytes(counters.capacity).c_str(), hydra::format_bytes(counters.peak_in_use).c_str(),
                hydra::format_bytes(counters.in_use).c_str());
  }
  try {
    static_cast<void>(pool1.allocate(compute1, 48_MiB));
  } catch (hydra::out_of_memory const& expected) {
    std::printf("as expected, past the budget: %s\n", expected.what());
  }
  std::printf("copied %s from device 0 to device 1: %s\n", hydra::format_bytes(count * sizeof(std::uint32_t)).c_str(),
              mismatches == 0 ? "all values match" : "MISMATCH");
  return mismatches == 0 ? 0 : 1;
}
