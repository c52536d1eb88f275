// Device faults on the CUDA backend (gpu_fault_tests: skipped without a GPU).
// Each test case runs in its own process: a kernel that writes through a null
// pointer poisons the process's CUDA context, after which every CUDA call
// fails. What must hold:
//  - the backend reports the fault without waiting (check(stream)), and a
//    backend, its pools and its streams are torn down without throwing;
//  - training ends with a clear error within seconds, never hangs: the host
//    functions that carry a task's completion never run after a device fault,
//    so a trainer that only waits for them would wait forever. A watchdog
//    turns such a hang into a failure that says so;
//  - a layer that throws on the enqueueing thread (a cuBLAS or cuDNN refusal)
//    stops only its model, as a failing layer does on the host backend.
// The multi-model trainer's cases need its completion wait to poll
// check(stream), and its task launch to stop only the failing model.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hydra/cuda.cuh"

using namespace hydra::literals;
using hydra::cuda::cuda_backend;
using hydra::cuda::cuda_execution_context;

namespace {

template <class T>
__global__ void write_through(T* nowhere) {
  *nowhere = T{1};
}

// Launches a kernel that stores to address 0 on `stream`: an illegal address.
void fault(cudaStream_t stream) {
  write_through<float><<<1, 1, 0, stream>>>(nullptr);
  HYDRA_CHECK(cudaGetLastError()); // the launch itself succeeds; the fault comes later
}

// Ends the process with a message when a test runs past its deadline, which
// here means a hang (ctest's timeout would kill it without a word).
class watchdog {
public:
  watchdog(std::chrono::seconds limit, std::string what) : what_(std::move(what)) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mutex_);
      if (!done_changed_.wait_for(lock, limit, [this] { return done_; })) {
        std::printf("FAILED: still running after %lld s: %s\n", static_cast<long long>(limit.count()), what_.c_str());
        std::fflush(stdout);
        std::_Exit(1);
      }
    });
  }
  watchdog(watchdog const&) = delete;
  watchdog& operator=(watchdog const&) = delete;
  ~watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_changed_.notify_one();
    thread_.join();
  }

private:
  std::string what_;
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread thread_;
};

// Copies its input through; on its `fault_at`-th forward call (recomputed
// forwards count; 0: never) it also launches a kernel that writes through nullptr.
struct faulting_layer {
  std::size_t features;
  std::size_t fault_at;
  std::shared_ptr<std::atomic<std::size_t>> calls = std::make_shared<std::atomic<std::size_t>>(0);

  [[nodiscard]] std::string name() const { return "faulting (writes through nullptr)"; }
  [[nodiscard]] hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = 0, .input_features = features, .output_features = features};
  }
  void initialize(float*, std::uint64_t) const {}
  void forward(cuda_execution_context& c, hydra::forward_arguments const& a) const {
    HYDRA_CHECK(cudaMemcpyAsync(a.output, a.input, a.batch * features * sizeof(float), cudaMemcpyDeviceToDevice,
                                c.stream_handle()));
    if (++*calls == fault_at) fault(c.stream_handle());
  }
  void backward(cuda_execution_context& c, hydra::backward_arguments const& a) const {
    HYDRA_CHECK(cudaMemcpyAsync(a.input_gradient, a.output_gradient, a.batch * features * sizeof(float),
                                cudaMemcpyDeviceToDevice, c.stream_handle()));
  }
};

// Copies its input through; its `throw_at`-th forward call (0: never) throws
// on the calling thread, as a cuBLAS or cuDNN refusal does (HYDRA_CHECK).
struct throwing_layer {
  std::size_t features;
  std::size_t throw_at;
  std::shared_ptr<std::atomic<std::size_t>> calls = std::make_shared<std::atomic<std::size_t>>(0);

  [[nodiscard]] std::string name() const { return "throwing"; }
  [[nodiscard]] hydra::layer_footprint footprint(std::size_t) const {
    return {.parameter_count = 0, .input_features = features, .output_features = features};
  }
  void initialize(float*, std::uint64_t) const {}
  void forward(cuda_execution_context& c, hydra::forward_arguments const& a) const {
    if (++*calls == throw_at)
      throw hydra::error("throwing layer: refused its forward call " + std::to_string(throw_at));
    HYDRA_CHECK(cudaMemcpyAsync(a.output, a.input, a.batch * features * sizeof(float), cudaMemcpyDeviceToDevice,
                                c.stream_handle()));
  }
  void backward(cuda_execution_context& c, hydra::backward_arguments const& a) const {
    HYDRA_CHECK(cudaMemcpyAsync(a.input_gradient, a.output_gradient, a.batch * features * sizeof(float),
                                cudaMemcpyDeviceToDevice, c.stream_handle()));
  }
};

static_assert(hydra::layer<faulting_layer, cuda_execution_context>);
static_assert(hydra::layer<throwing_layer, cuda_execution_context>);

constexpr std::size_t features = 24, width = 256, classes = 10, batch = 16;

// dense, the layer under test, relu, dense, relu, dense, loss.
template <class Middle>
hydra::sequential_model<cuda_execution_context> model_with(Middle middle) {
  using namespace hydra::cuda::layers;
  std::vector<hydra::any_layer<cuda_execution_context>> stack;
  stack.emplace_back(cublas_dense(features, width));
  stack.emplace_back(std::move(middle));
  stack.emplace_back(cudnn_relu(width));
  stack.emplace_back(cublas_dense(width, width));
  stack.emplace_back(cudnn_relu(width));
  stack.emplace_back(cublas_dense(width, classes));
  stack.emplace_back(softmax_cross_entropy(classes));
  return hydra::sequential_model<cuda_execution_context>(std::move(stack), batch);
}

hydra::data_source minibatches_from(std::uint64_t seed) {
  return hydra::synthetic_classification{.features = features,
                                         .classes = classes,
                                         .batch = batch,
                                         .labels = hydra::synthetic_classification::label_rule::random,
                                         .seed = seed};
}

// The smallest budget, in steps of 1/16 of the footprint, under which the
// model still partitions: several shards, so that tasks queue behind the
// faulting one.
template <class Middle>
std::size_t tight_budget(Middle const& middle) {
  using trainer = hydra::cuda::single_model_trainer<hydra::sgd_momentum>;
  std::size_t const whole = trainer::footprint(model_with(middle));
  for (std::size_t budget = whole / 16;; budget += whole / 16) {
    try {
      cuda_backend probe({.device_budgets = {budget}});
      trainer fits(probe, model_with(middle), hydra::sgd_momentum{}, {.budget = budget});
      return budget;
    } catch (hydra::layer_too_large const&) {
    }
  }
}

using clock_type = std::chrono::steady_clock;

} // namespace

TEST_CASE("after a kernel fault check() reports device_fault, work is refused, and teardown does not throw") {
  watchdog const guard(std::chrono::seconds(20), "a kernel fault behind a gated stream");
  cuda_backend backend({.device_budgets = {8_MiB}});
  hydra::device_pool<cuda_backend> pool(backend, 0);
  auto const s = backend.create_stream(0, "faulting");
  void* block = pool.allocate(s, 1_MiB);
  // The stream waits at a gate, so that everything below is queued before the
  // kernel faults: the host function behind it must never run.
  auto const open = std::make_shared<std::atomic<bool>>(false);
  // Load the faulting kernel now: under lazy module loading (CUDA's default)
  // its first launch loads it, which waits for the work already running on
  // the device, here the gate that only this thread opens, after the launch.
  cudaFuncAttributes attributes{};
  HYDRA_CHECK(cudaFuncGetAttributes(&attributes, write_through<float>));
  backend.enqueue(s, [open] {
    while (!*open) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  fault(s.handle());
  auto const ran = std::make_shared<std::atomic<bool>>(false);
  backend.enqueue(s, [ran] { *ran = true; });
  *open = true;
  auto const deadline = clock_type::now() + std::chrono::seconds(10);
  bool reported = false;
  while (!reported && clock_type::now() < deadline) {
    try {
      backend.check(s);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } catch (hydra::cuda::device_fault const& e) {
      reported = true;
      MESSAGE(std::string(e.what()));
      CHECK(std::string(e.what()).find("stream 'faulting' of CUDA device 0") != std::string::npos);
      CHECK(std::string(e.what()).find("context is lost") != std::string::npos);
    }
  }
  REQUIRE(reported);
  CHECK(hydra::cuda::context_lost());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(*ran); // the host function behind the fault did not run, and never will
  CHECK_THROWS_AS(backend.enqueue(s, [] {}), hydra::cuda::device_fault);
  CHECK_THROWS_AS(backend.synchronize(s), hydra::cuda::device_fault);
  // Calls that only order or wait do nothing now, so the pool can go.
  CHECK_NOTHROW(backend.synchronize(backend.record_event(s)));
  CHECK_NOTHROW(pool.deallocate(s, block));
}

TEST_CASE("a kernel fault ends single-model training with a CUDA error within seconds, and teardown does not throw") {
  std::size_t const budget = tight_budget(faulting_layer{width, 0});
  cuda_backend backend({.device_budgets = {budget}});
  auto const started = clock_type::now();
  {
    watchdog const guard(std::chrono::seconds(20), "single_model_trainer::train after a device fault");
    hydra::cuda::single_model_trainer<hydra::sgd_momentum> trainer(backend, model_with(faulting_layer{width, 3}),
                                                                   hydra::sgd_momentum{}, {.budget = budget});
    REQUIRE(trainer.shards().size() >= 2);
    try {
      trainer.train(20, minibatches_from(1));
      FAIL("training went on after a kernel wrote through nullptr");
    } catch (hydra::backend_error const& e) {
      MESSAGE(std::string(e.what())); // device_fault, or the cuBLAS/cuDNN status of a call the lost context refused
      CHECK_THROWS_AS(backend.check(trainer.engine().compute_stream()), hydra::cuda::device_fault);
    }
  } // the trainer's pools and spill engine go here
  CHECK(clock_type::now() - started < std::chrono::seconds(10));
}

TEST_CASE("a kernel fault in one model ends the sweep with device_fault within seconds, not a hang") {
  cuda_backend backend({.device_budgets = {tight_budget(faulting_layer{width, 0})}});
  std::vector<hydra::cuda::model_config> configs;
  configs.push_back(
      {"faulting", model_with(faulting_layer{width, 3}), hydra::sgd_momentum{}, 20, minibatches_from(1), 1});
  configs.push_back({"healthy", model_with(hydra::cuda::layers::cudnn_relu(width)), hydra::sgd_momentum{}, 20,
                     minibatches_from(2), 2});
  auto const started = clock_type::now();
  {
    watchdog const guard(std::chrono::seconds(20),
                         "the multi-model trainer waits for completions that a device fault cancelled (its wait "
                         "must time out and poll the backend's check(stream))");
    hydra::cuda::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"));
    REQUIRE(trainer.shards_of(0).size() >= 2);
    try {
      trainer.run();
      FAIL("the sweep finished although a kernel wrote through nullptr");
    } catch (hydra::cuda::device_fault const& e) {
      MESSAGE(std::string(e.what()));
    }
  }
  CHECK(clock_type::now() - started < std::chrono::seconds(10));
}

TEST_CASE("a CUDA layer that throws stops only its model, and the other models finish") {
  cuda_backend backend({.device_budgets = {tight_budget(throwing_layer{width, 0})}});
  std::vector<hydra::cuda::model_config> configs;
  configs.push_back(
      {"throwing", model_with(throwing_layer{width, 3}), hydra::sgd_momentum{}, 6, minibatches_from(1), 1});
  configs.push_back({"healthy", model_with(hydra::cuda::layers::cudnn_relu(width)), hydra::sgd_momentum{}, 6,
                     minibatches_from(2), 2});
  watchdog const guard(std::chrono::seconds(20), "a sweep with a throwing CUDA layer");
  hydra::cuda::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"));
  trainer.run();
  auto const& results = trainer.results();
  REQUIRE(results[0].failure);
  MESSAGE(*results[0].failure);
  CHECK(results[0].failure->find("throwing layer: refused its forward call 3") != std::string::npos);
  REQUIRE_FALSE(results[1].failure);
  CHECK(results[1].steps == 6);
  CHECK(trainer.shards_of(0).size() >= 2);
}
