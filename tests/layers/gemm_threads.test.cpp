// One thread per device: the host GEMM runs on the calling stream's thread, so
// a sweep on D devices keeps at most D threads busy computing, however many
// cores the machine has and however many threads the BLAS could start.
#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/train/multi_model_trainer.hpp"
#include "support/run_layer.hpp"

namespace {

// CPU time (user + system, in clock ticks) of every thread of this process,
// from /proc/self/task/<tid>/stat (fields 14 and 15, counted after the name).
std::map<long, long> cpu_ticks_per_thread() {
  std::map<long, long> ticks;
  DIR* tasks = opendir("/proc/self/task");
  REQUIRE(tasks != nullptr);
  while (dirent const* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream file(std::string("/proc/self/task/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(file, line)) continue;                     // the thread ended meanwhile
    std::istringstream fields(line.substr(line.rfind(')') + 2)); // field 3 onwards
    std::vector<std::string> values{std::istream_iterator<std::string>(fields), {}};
    if (values.size() < 13) continue;
    ticks[std::stol(entry->d_name)] = std::stol(values[11]) + std::stol(values[12]);
  }
  closedir(tasks);
  return ticks;
}

// Threads that used at least a third of the busiest thread's CPU time while
// `work` ran: the compute threads. Copy and polling threads stay far below.
// `count_caller` false leaves out the calling thread (a sweep's driver).
template <class Work>
std::size_t busy_threads(Work&& work, long* busiest_ticks, bool count_caller) {
  auto const before = cpu_ticks_per_thread();
  work();
  auto const after = cpu_ticks_per_thread();
  long const caller = static_cast<long>(syscall(SYS_gettid));
  std::vector<long> spent;
  for (auto const& [thread, ticks] : after) {
    if (thread == caller && !count_caller) continue;
    auto const earlier = before.find(thread);
    spent.push_back(ticks - (earlier == before.end() ? 0 : earlier->second));
  }
  long const busiest = *std::max_element(spent.begin(), spent.end());
  *busiest_ticks = busiest;
  return static_cast<std::size_t>(std::count_if(spent.begin(), spent.end(), [&](long t) { return 3 * t >= busiest; }));
}

constexpr std::size_t features = 512, classes = 10, batch = 256;

// One prepared minibatch per model: the driver's thread stays light.
hydra::data_source sweep_data(std::uint64_t salt) {
  auto const data = hydra::synthetic_classification{.features = features,
                                                    .classes = classes,
                                                    .batch = batch,
                                                    .labels = hydra::synthetic_classification::label_rule::random,
                                                    .seed = salt}(0);
  return [data](std::size_t) { return data; };
}

} // namespace

TEST_CASE("a sweep on 2 devices keeps at most 2 threads busy computing, whatever the BLAS could start") {
  // GEMMs of 256 x 512 x 512: far above the size where a threaded BLAS splits a product.
  std::vector<hydra::model_config> configs;
  for (std::uint64_t m = 0; m < 4; ++m)
    configs.push_back({"model " + std::to_string(m), hydra::layers::make_mlp(features, 512, 3, classes, batch),
                       hydra::sgd_momentum{}, 12, sweep_data(m), m + 1});
  hydra::host_backend backend({.device_budgets = {64 << 20, 64 << 20}});
  hydra::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp", 1));
  long busiest = 0;
  std::size_t const busy = busy_threads([&] { trainer.run(); }, &busiest, /*count_caller=*/false);
  CAPTURE(busiest);
  REQUIRE(busiest >= 20); // 0.2 s or more of CPU time on the busiest thread: enough ticks to tell
  CHECK(busy >= 1);
  CHECK(busy <= 2);
  for (auto const& result : trainer.results()) CHECK_FALSE(result.failure.has_value());
}

#if defined(HYDRA_WITH_OPENBLAS)
TEST_CASE("the busy-thread count sees OpenBLAS's own threads when it is allowed more than one") {
  // The control for the test above: on a machine with 2 or more cores, a
  // product that OpenBLAS may split does show up as more than one busy thread.
  if (std::thread::hardware_concurrency() < 2 || openblas_get_num_threads() < 1) return;
  std::size_t const n = 768;
  auto const a = hydra::testing::random_floats(n * n, 1), b = hydra::testing::random_floats(n * n, 2);
  std::vector<float> c(n * n);
  long busiest = 0;
  std::size_t const busy = busy_threads(
      [&] {
        openblas_set_num_threads(2);
        auto const started = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(600))
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0F, a.data(), int(n),
                      b.data(), int(n), 0.0F, c.data(), int(n));
      },
      &busiest, /*count_caller=*/true);
  CAPTURE(busiest);
  CHECK(busy >= 2);
  // And hydra's GEMM puts the count back to one thread on its next call.
  REQUIRE(openblas_get_num_threads() == 2);
  hydra::layers::detail::gemm(hydra::layers::detail::transpose::no, hydra::layers::detail::transpose::no, 1, 1, 1,
                              a.data(), 1, b.data(), 1, false, c.data(), 1);
  CHECK(openblas_get_num_threads() == 1);
}
#endif
