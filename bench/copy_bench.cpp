// A host-backend async copy through a stream (enqueue + host wait on its event)
// against a raw memcpy of the same bytes, 1 MiB to 256 MiB. The claim: the
// stream copy reaches at least 0.9x memcpy's throughput. The buffers come from a
// host pool and a device pool, as the spill engine's will.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

#include "hydra/hydra.hpp"
#include "ratio_reporter.hpp"

using namespace hydra::literals;

namespace {

constexpr std::size_t largest = 256_MiB;

struct copy_fixture {
  hydra::host_backend backend{{.device_budgets = {largest}}};
  hydra::host_pool<hydra::host_backend> host{backend, largest};
  hydra::device_pool<hydra::host_backend> device{backend, 0};
  hydra::host_stream stream = backend.create_stream(0, "prefetch");
  void* source = host.allocate(stream, largest);
  void* destination = device.allocate(stream, largest);
  copy_fixture() {
    // Touch every page first so that no run pays for first-touch faults.
    std::memset(source, 1, largest);
    std::memset(destination, 2, largest);
  }
  ~copy_fixture() {
    host.deallocate(stream, source);
    device.deallocate(stream, destination);
  }
};

copy_fixture& fixture() {
  static copy_fixture instance;
  return instance;
}

void copy_memcpy(benchmark::State& state, std::size_t bytes) {
  auto& f = fixture();
  for (auto _ : state) {
    std::memcpy(f.destination, f.source, bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void copy_stream(benchmark::State& state, std::size_t bytes) {
  auto& f = fixture();
  for (auto _ : state) {
    f.backend.copy_async(f.stream, f.destination, f.source, bytes);
    f.backend.synchronize(f.backend.record_event(f.stream));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void register_all() {
  for (std::int64_t mib : {1L, 4L, 16L, 64L, 256L}) {
    std::string argument = std::to_string(mib);
    argument += "MiB";
    auto const bytes = static_cast<std::size_t>(mib) << 20U;
    benchmark::RegisterBenchmark(hydra::bench::name("copy/memcpy", argument).c_str(), copy_memcpy, bytes)
        ->UseRealTime();
    benchmark::RegisterBenchmark(hydra::bench::name("copy/stream", argument).c_str(), copy_stream, bytes)
        ->UseRealTime();
  }
}

} // namespace

int main(int argc, char** argv) {
  register_all();
  return hydra::bench::run_with_ratios(
      argc, argv,
      {{"copy", "stream", "memcpy", 0.9, true, "throughput of copy_async on a stream / throughput of memcpy"}});
}
