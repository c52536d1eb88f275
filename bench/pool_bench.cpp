// Pool allocate+free against std::pmr::unsynchronized_pool_resource and against
// malloc/free, 256 B to 64 MiB; plus a mixed workload of up to 64 live blocks of
// random sizes. The claim: hydra's pool within 1.5x of the pmr pool's time.
// Note the handicap: hydra's pool is thread-safe and stream-ordered (a lock and an
// event record per free); the pmr pool is neither.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory_resource>
#include <random>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "ratio_reporter.hpp"

using namespace hydra::literals;

namespace {

constexpr std::size_t pool_capacity = 256_MiB;

struct hydra_pool_fixture {
  hydra::host_backend backend{{.device_budgets = {pool_capacity}}};
  hydra::device_pool<hydra::host_backend> pool{backend, 0};
  hydra::host_stream stream = backend.create_stream(0);
};

void alloc_free_hydra(benchmark::State& state, std::size_t bytes) {
  hydra_pool_fixture f;
  for (auto _ : state) {
    void* block = f.pool.allocate(f.stream, bytes);
    benchmark::DoNotOptimize(block);
    f.pool.deallocate(f.stream, block);
  }
}

void alloc_free_pmr(benchmark::State& state, std::size_t bytes) {
  std::pmr::unsynchronized_pool_resource pool;
  for (auto _ : state) {
    void* block = pool.allocate(bytes, hydra::allocation_alignment);
    benchmark::DoNotOptimize(block);
    pool.deallocate(block, bytes, hydra::allocation_alignment);
  }
}

void alloc_free_malloc(benchmark::State& state, std::size_t bytes) {
  for (auto _ : state) {
    void* block = std::malloc(bytes);
    benchmark::DoNotOptimize(block);
    std::free(block);
  }
}

// Up to 64 live blocks of 256 B..1 MiB, freed in random order: the pool's bins
// and coalescing work here, not just one cached block.
template <class Allocate, class Free>
void mixed_walk(benchmark::State& state, Allocate allocate, Free release) {
  std::mt19937_64 random(42);
  std::vector<std::pair<void*, std::size_t>> live;
  live.reserve(64);
  for (auto _ : state) {
    if (live.size() < 64 && (live.empty() || random() % 2 == 0)) {
      std::size_t const bytes = 256 + random() % 1_MiB;
      live.emplace_back(allocate(bytes), bytes);
    } else {
      std::size_t const victim = random() % live.size();
      release(live[victim].first, live[victim].second);
      live[victim] = live.back();
      live.pop_back();
    }
  }
  for (auto const& [block, bytes] : live) release(block, bytes);
}

void mixed_hydra(benchmark::State& state) {
  hydra_pool_fixture f;
  mixed_walk(
      state, [&](std::size_t bytes) { return f.pool.allocate(f.stream, bytes); },
      [&](void* block, std::size_t) { f.pool.deallocate(f.stream, block); });
}

void mixed_pmr(benchmark::State& state) {
  std::pmr::unsynchronized_pool_resource pool;
  mixed_walk(
      state, [&](std::size_t bytes) { return pool.allocate(bytes, hydra::allocation_alignment); },
      [&](void* block, std::size_t bytes) { pool.deallocate(block, bytes, hydra::allocation_alignment); });
}

void mixed_malloc(benchmark::State& state) {
  mixed_walk(
      state, [](std::size_t bytes) { return std::malloc(bytes); }, [](void* block, std::size_t) { std::free(block); });
}

void register_all() {
  for (std::int64_t bytes : {256L, 4096L, 65536L, 1L << 20, 16L << 20, 64L << 20}) {
    std::string const argument = std::to_string(bytes);
    auto const size = static_cast<std::size_t>(bytes);
    benchmark::RegisterBenchmark(hydra::bench::name("alloc_free/hydra", argument).c_str(), alloc_free_hydra, size);
    benchmark::RegisterBenchmark(hydra::bench::name("alloc_free/pmr", argument).c_str(), alloc_free_pmr, size);
    benchmark::RegisterBenchmark(hydra::bench::name("alloc_free/malloc", argument).c_str(), alloc_free_malloc, size);
  }
  benchmark::RegisterBenchmark("mixed/hydra/64_live_256B_to_1MiB", mixed_hydra);
  benchmark::RegisterBenchmark("mixed/pmr/64_live_256B_to_1MiB", mixed_pmr);
  benchmark::RegisterBenchmark("mixed/malloc/64_live_256B_to_1MiB", mixed_malloc);
}

} // namespace

int main(int argc, char** argv) {
  register_all();
  return hydra::bench::run_with_ratios(
      argc, argv,
      {{"alloc_free", "hydra", "pmr", 1.5, false, "time of hydra's pool / time of the pmr pool (lower is better)"},
       {"alloc_free", "hydra", "malloc", 0, false, "time of hydra's pool / time of malloc+free (for reference)"},
       {"mixed", "hydra", "pmr", 1.5, false, "time of hydra's pool / time of the pmr pool (lower is better)"},
       {"mixed", "hydra", "malloc", 0, false, "time of hydra's pool / time of malloc+free (for reference)"}});
}
