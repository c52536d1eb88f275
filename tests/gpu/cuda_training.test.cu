// Training on the CUDA backend (gpu_tests: skipped without a GPU).
//  - The CUDA loss and the optimizers' Thrust transforms on a stream against
//    the host implementations.
//  - Spilled training (budget = footprint / 4) against fully resident training,
//    both on the GPU, and against the host backend's in-memory training of the
//    same model from the same initial parameters (the independent reference).
//  - A sweep of models sharing one GPU under sharp against each model alone,
//    whose profiled first tasks carry no library start-up.
//  - A short spilled run, sized for compute-sanitizer.
// Tolerances: cuBLAS sums in its own order and nvcc contracts a*b+c into FMA
// (the host build does not), so GPU results are compared within a relative
// 1e-4 per element for one kernel, and 2e-3 after several training steps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gpu/device_buffers.hpp"
#include "hydra/cuda.cuh"

using namespace hydra::literals;
using gpu_testing::device_buffers;
using gpu_testing::max_relative_error;
using gpu_testing::random_values;
using hydra::cuda::cuda_backend;
using hydra::cuda::cuda_execution_context;

namespace {

constexpr std::size_t features = 24, classes = 10, batch = 16;

hydra::data_source data_for(std::uint64_t salt) {
  return hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = salt};
}

} // namespace

TEST_CASE("the CUDA softmax cross-entropy matches the host layer, for 10 and 1000 classes") {
  for (std::size_t const classes_here : {std::size_t{10}, std::size_t{1000}}) {
    CAPTURE(classes_here);
    std::size_t const rows = 37;
    auto const logits = random_values(rows * classes_here, 5);
    std::vector<std::int32_t> labels;
    for (std::size_t b = 0; b < rows; ++b) labels.push_back(static_cast<std::int32_t>((b * 7) % classes_here));

    // Host reference.
    hydra::host_backend host({.device_budgets = {1_MiB}});
    hydra::host_execution_context host_context(host, host.create_stream(0));
    std::vector<float> host_loss(rows), host_gradient(rows * classes_here);
    hydra::layers::softmax_cross_entropy const host_layer(classes_here);
    host_layer.forward(host_context, {.batch = rows,
                                      .input = logits.data(),
                                      .output = host_loss.data(),
                                      .parameters = nullptr,
                                      .workspace = nullptr,
                                      .labels = labels.data()});
    host_layer.backward(host_context, {.batch = rows,
                                       .input = logits.data(),
                                       .output = host_loss.data(),
                                       .output_gradient = nullptr,
                                       .input_gradient = host_gradient.data(),
                                       .parameters = nullptr,
                                       .parameter_gradients = nullptr,
                                       .workspace = nullptr,
                                       .labels = labels.data()});
    host.synchronize(host_context.stream());

    cuda_backend backend({.device_budgets = {64_MiB}});
    auto const stream = backend.create_stream(0, "compute", hydra::stream_role::compute);
    device_buffers memory;
    float const* z = memory.upload(logits);
    std::int32_t const* y = memory.upload(labels);
    float* loss = memory.upload(std::vector<float>(rows));
    float* gradient = memory.upload(std::vector<float>(rows * classes_here));
    hydra::cuda::layers::softmax_cross_entropy const layer(classes_here);
    {
      cuda_execution_context context(backend, stream);
      layer.forward(context, {.batch = rows, .input = z, .output = loss, .labels = y});
      layer.backward(context, {.batch = rows, .input = z, .output = loss, .input_gradient = gradient, .labels = y});
    }
    backend.synchronize(stream);
    CHECK(max_relative_error(device_buffers::download(loss, rows), host_loss) < 1e-5);
    CHECK(max_relative_error(device_buffers::download(gradient, rows * classes_here), host_gradient) < 1e-6);
  }
}

TEST_CASE("the optimizers' Thrust transforms on a CUDA stream match thrust::host") {
  std::size_t const n = 100003;
  auto const parameters = random_values(n, 1), gradients = random_values(n, 2);
  cuda_backend backend({.device_budgets = {64_MiB}});
  auto const stream = backend.create_stream(0, "compute", hydra::stream_role::compute);
  auto check = [&](auto optimizer, std::size_t steps) {
    using optimizer_type = decltype(optimizer);
    std::vector<float> host_p = parameters, host_s(n * optimizer_type::state_per_parameter, 0.0F);
    device_buffers memory;
    float* p = memory.upload(parameters);
    float const* g = memory.upload(gradients);
    float* s = memory.upload(host_s);
    for (std::uint64_t step = 1; step <= steps; ++step) {
      optimizer.step(thrust::host, host_p.data(), gradients.data(), host_s.data(), n, step);
      cuda_execution_context context(backend, stream);
      context.run_thrust([=](auto const& policy) { optimizer.step(policy, p, g, s, n, step); });
    }
    backend.synchronize(stream);
    CHECK(max_relative_error(device_buffers::download(p, n), host_p) < 1e-5);
    CHECK(max_relative_error(device_buffers::download(s, host_s.size()), host_s) < 1e-5);
  };
  check(hydra::sgd_momentum{.learning_rate = 0.05F}, 5);
  check(hydra::adam{.learning_rate = 0.01F}, 5);
}

namespace {

// The smallest budget, in steps of 1/16 of the footprint, under which the
// model's largest layer still fits a shard of its own: the most spilling the
// partitioner allows.
template <class Optimizer, class MakeModel>
std::size_t tight_budget(MakeModel const& make_model) {
  std::size_t const whole = hydra::cuda::single_model_trainer<Optimizer>::footprint(make_model());
  for (std::size_t budget = whole / 16;; budget += whole / 16) {
    try {
      cuda_backend probe({.device_budgets = {budget}});
      hydra::cuda::single_model_trainer<Optimizer> fits(probe, make_model(), Optimizer{}, {.budget = budget});
      return budget;
    } catch (hydra::layer_too_large const&) {
    }
  }
}

template <class Optimizer>
std::vector<float> train_on_cuda(Optimizer optimizer, std::size_t budget, std::size_t steps, std::size_t width,
                                 std::size_t depth, std::size_t* shards = nullptr) {
  cuda_backend backend({.device_budgets = {256_MiB}});
  hydra::cuda::single_model_trainer<Optimizer> trainer(
      backend, hydra::cuda::layers::make_mlp(features, width, depth, classes, batch), optimizer,
      {.budget = budget, .seed = 3});
  trainer.train(steps, data_for(9));
  if (shards) *shards = trainer.shards().size();
  for (float const loss : trainer.losses()) REQUIRE(std::isfinite(loss));
  return trainer.parameters();
}

template <class Optimizer>
std::vector<float> train_on_host(Optimizer optimizer, std::size_t steps, std::size_t width, std::size_t depth) {
  hydra::host_backend backend({.device_budgets = {256_MiB}});
  hydra::single_model_trainer<Optimizer> trainer(
      backend, hydra::layers::make_mlp(features, width, depth, classes, batch), optimizer, {.seed = 3});
  trainer.train(steps, data_for(9));
  return trainer.parameters();
}

} // namespace

TEST_CASE("a short spilled run: two minibatches of a small MLP at three quarters of its footprint, finite losses") {
  // Short enough for compute-sanitizer (scripts/dev.sh gpu sanitize): every
  // path of spilled training (fetch, compute, write back, evict, the optimizer
  // step) runs, 4 shards (checked with the host partitioner).
  auto const model = [] { return hydra::cuda::layers::make_mlp(features, 64, 4, classes, batch); };
  std::size_t const footprint = hydra::cuda::single_model_trainer<hydra::sgd_momentum>::footprint(model());
  std::size_t const budget = hydra::align_down(footprint * 3 / 4, 256);
  cuda_backend backend({.device_budgets = {budget}});
  hydra::cuda::single_model_trainer<hydra::sgd_momentum> trainer(backend, model(), hydra::sgd_momentum{},
                                                                 {.budget = budget});
  trainer.train(2, data_for(5));
  CHECK(trainer.shards().size() >= 2);
  REQUIRE(trainer.losses().size() == 2);
  for (float const loss : trainer.losses()) CHECK(std::isfinite(loss));
  CHECK(trainer.engine().statistics().bytes_to_device > 0);
}

TEST_CASE("spilled training on the GPU (budget = footprint / 4) equals resident training, and the host's") {
  // Depth 16: at a quarter of the footprint a shard may use an eighth of it
  // (half the budget), which must hold at least one 256x256 layer.
  std::size_t const width = 256, depth = 16, steps = 6;
  auto const model = [&] { return hydra::cuda::layers::make_mlp(features, width, depth, classes, batch); };

  // Against the host: SGD, whose update is proportional to the gradient, so
  // rounding differences stay rounding-sized. (Adam's first steps move every
  // parameter by about the learning rate times the sign of its gradient: a
  // near-zero gradient that rounds to the other sign on the GPU moves the
  // parameter the other way, a difference no tolerance on rounding covers.)
  hydra::sgd_momentum const sgd{.learning_rate = 0.05F};
  auto const footprint = hydra::cuda::single_model_trainer<hydra::sgd_momentum>::footprint(model());
  std::size_t spilled_shards = 0, resident_shards = 0;
  auto const spilled = train_on_cuda(sgd, footprint / 4, steps, width, depth, &spilled_shards);
  auto const resident = train_on_cuda(sgd, 2 * footprint + 1_MiB, steps, width, depth, &resident_shards);
  auto const host = train_on_host(sgd, steps, width, depth);
  CHECK(spilled_shards >= 4);
  CHECK(resident_shards == 1);
  double const spilled_vs_resident = max_relative_error(spilled, resident);
  double const gpu_vs_host = max_relative_error(resident, host);
  MESSAGE("SGD, max relative difference: spilled vs resident " << spilled_vs_resident << ", GPU vs host "
                                                               << gpu_vs_host);
  CHECK(spilled_vs_resident < 1e-4);
  CHECK(gpu_vs_host < 1e-3);
  // Training moved the parameters (the comparison above is not of initial values).
  auto const untrained = train_on_host(sgd, 0, width, depth);
  CHECK(max_relative_error(host, untrained) > 1e-3);

  // Adam on the GPU alone: the same cuBLAS calls on the same shapes, spilled or not.
  hydra::adam const adam{.learning_rate = 0.003F};
  auto const adam_footprint = hydra::cuda::single_model_trainer<hydra::adam>::footprint(model());
  auto const adam_spilled = train_on_cuda(adam, adam_footprint / 4, steps, width, depth);
  auto const adam_resident = train_on_cuda(adam, 2 * adam_footprint + 1_MiB, steps, width, depth);
  double const adam_difference = max_relative_error(adam_spilled, adam_resident);
  MESSAGE("Adam, max relative difference spilled vs resident: " << adam_difference);
  CHECK(adam_difference < 1e-4);
}

TEST_CASE("a sweep sharing one GPU under sharp: every model as trained alone, utilisation measured") {
  std::size_t const budget = 6_MiB; // each model 2-3 shards (a 384x384 Adam layer needs 2.35 MiB, under half)
  std::vector<hydra::cuda::model_config> configs;
  configs.push_back({"sgd w256 d6", hydra::cuda::layers::make_mlp(features, 256, 6, classes, batch),
                     hydra::sgd_momentum{.learning_rate = 0.05F}, 4, data_for(1), 11});
  configs.push_back({"adam w384 d4", hydra::cuda::layers::make_mlp(features, 384, 4, classes, batch),
                     hydra::adam{.learning_rate = 0.003F}, 3, data_for(2), 12});
  configs.push_back({"adam w192 d8", hydra::cuda::layers::make_mlp(features, 192, 8, classes, batch),
                     hydra::adam{.learning_rate = 0.01F}, 5, data_for(3), 13});
  auto alone = configs;

  cuda_backend backend({.device_budgets = {budget}});
  hydra::cuda::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"), {.record_trace = true});
  trainer.run();
  auto const report = trainer.report();
  REQUIRE(report.device_busy_fraction.size() == 1);
  MESSAGE("makespan " << report.makespan.count() * 1e-6 << " ms, device busy " << report.device_busy_fraction[0]);
  CHECK(report.device_busy_fraction[0] > 0.0);
  CHECK(report.device_busy_fraction[0] <= 1.0);
  CHECK(report.bytes_to_device > 0);
  CHECK(std::isnan(report.hidden_transfer_fraction));
  CHECK(trainer.trace().size() == 3 * report.decisions.size());
  // The profiling minibatch of the first model to run carries no library
  // start-up: handles are made and warmed with the compute stream, before any
  // task (creating them costs tens to hundreds of milliseconds; a shard of
  // these models computes in well under a millisecond).
  for (auto const& profile : trainer.profiles()) {
    CAPTURE(profile.name);
    REQUIRE(profile.source == "measured");
    std::string seconds;
    for (double const s : profile.forward_seconds) {
      seconds += ' '; // appended apart: g++ 12 warns falsely (-Wrestrict) on " " + std::string
      seconds += std::to_string(s);
    }
    MESSAGE(profile.name << ": profiled forward seconds per shard:" << seconds);
    for (double const s : profile.forward_seconds) CHECK(s < 0.05);
  }

  for (std::size_t m = 0; m < configs.size(); ++m) {
    CAPTURE(m);
    auto const& result = trainer.results()[m];
    REQUIRE_FALSE(result.failure);
    CHECK(result.steps == configs[m].steps);
    CHECK(trainer.shards_of(m).size() > 1); // each model is larger than the budget
    cuda_backend own({.device_budgets = {budget}});
    hydra::cuda::multi_model_trainer single(own, {alone[m]}, hydra::make_policy("sharp"));
    single.run();
    double const difference = max_relative_error(result.parameters, single.results()[0].parameters);
    MESSAGE("model " << m << ": max relative difference to training alone " << difference);
    CHECK(difference < 2e-3);
  }
}

TEST_CASE("a model whose loss diverges on the GPU is stopped, the others train on") {
  cuda_backend backend({.device_budgets = {4_MiB}}); // 2 and 3 shards
  std::vector<hydra::cuda::model_config> configs;
  configs.push_back({"diverging", hydra::cuda::layers::make_mlp(features, 256, 4, classes, batch),
                     hydra::sgd_momentum{.learning_rate = 1e30F}, 6, data_for(1), 11});
  configs.push_back({"healthy", hydra::cuda::layers::make_mlp(features, 256, 4, classes, batch),
                     hydra::adam{.learning_rate = 0.003F}, 6, data_for(2), 12});
  hydra::cuda::multi_model_trainer trainer(backend, configs, hydra::make_policy("sharp"));
  trainer.run();
  REQUIRE(trainer.results()[0].failure);
  CHECK(trainer.results()[0].failure->find("loss became") != std::string::npos);
  CHECK_FALSE(trainer.results()[1].failure);
  CHECK(trainer.results()[1].steps == 6);
}

TEST_CASE("a small CNN (cuDNN conv, pooling) trains spilled as it trains resident") {
  using namespace hydra::cuda::layers;
  // 24 features per sample seen as a 1x4x6 image.
  auto cnn = [] {
    std::vector<hydra::any_layer<cuda_execution_context>> stack;
    cudnn_conv2d const first({1, 4, 6}, 16);
    stack.emplace_back(first);
    stack.emplace_back(cudnn_relu(first.output_shape().features()));
    cudnn_max_pool2d const pool(first.output_shape());
    stack.emplace_back(pool);
    cudnn_conv2d const second(pool.output_shape(), 32);
    stack.emplace_back(second);
    stack.emplace_back(cudnn_relu(second.output_shape().features()));
    stack.emplace_back(cublas_dense(second.output_shape().features(), 64));
    stack.emplace_back(cudnn_relu(64));
    stack.emplace_back(cublas_dense(64, classes));
    stack.emplace_back(softmax_cross_entropy(classes));
    return hydra::sequential_model<cuda_execution_context>(std::move(stack), batch);
  };
  auto const footprint = hydra::cuda::single_model_trainer<hydra::sgd_momentum>::footprint(cnn());
  auto train = [&](std::size_t budget, std::size_t* shards) {
    cuda_backend backend({.device_budgets = {256_MiB}});
    // SGD: cuDNN's convolution backward sums with atomics, in a different order
    // from run to run (see the Adam note above).
    hydra::cuda::single_model_trainer<hydra::sgd_momentum> trainer(
        backend, cnn(), hydra::sgd_momentum{.learning_rate = 0.05F}, {.budget = budget, .seed = 5});
    trainer.train(8, data_for(4));
    *shards = trainer.shards().size();
    auto const& losses = trainer.losses();
    REQUIRE(losses.size() == 8);
    CHECK(losses.back() < losses.front()); // it learns
    return trainer.parameters();
  };
  std::size_t spilled_shards = 0, resident_shards = 0;
  auto const spilled = train(tight_budget<hydra::sgd_momentum>(cnn), &spilled_shards);
  auto const resident = train(2 * footprint + 1_MiB, &resident_shards);
  CHECK(spilled_shards >= 2);
  CHECK(resident_shards == 1);
  double const difference = max_relative_error(spilled, resident);
  MESSAGE("CNN: max relative difference spilled vs resident " << difference);
  CHECK(difference < 2e-3);
}

TEST_CASE("cublas_dense_bf16 matches the fp32 host dense layer within bf16 rounding, and an MLP of it learns") {
  std::size_t const rows = 9, in = 70, out = 33;
  hydra::cuda::layers::cublas_dense_bf16 const layer(in, out);
  auto const footprint = layer.footprint(rows);
  CHECK(footprint.workspace_bytes >= 2 * (in * out + rows * (in + out)));
  std::vector<float> parameters(footprint.parameter_count);
  layer.initialize(parameters.data(), 4);
  for (std::size_t o = 0; o < out; ++o) parameters[in * out + o] = 0.05F * static_cast<float>(o);
  auto const x = random_values(rows * in, 6), dy = random_values(rows * out, 7);
  std::vector<float> y(rows * out), dx(rows * in), dp(parameters.size());
  hydra::forward_arguments hf{rows, x.data(), y.data(), parameters.data(), nullptr, nullptr};
  hydra::layers::dense::forward_kernel(hf, in, out);
  hydra::backward_arguments hb{rows,      x.data(), y.data(), dy.data(), dx.data(), parameters.data(),
                               dp.data(), nullptr,  nullptr};
  hydra::layers::dense::backward_kernel(hb, in, out);

  cuda_backend backend({.device_budgets = {64_MiB}});
  auto const stream = backend.create_stream(0, "compute", hydra::stream_role::compute);
  device_buffers memory;
  float const* x_d = memory.upload(x);
  float const* dy_d = memory.upload(dy);
  float const* p_d = memory.upload(parameters);
  float* y_d = memory.upload(std::vector<float>(y.size()));
  float* dx_d = memory.upload(std::vector<float>(dx.size()));
  float* dp_d = memory.upload(std::vector<float>(dp.size()));
  void* workspace = memory.upload(std::vector<std::byte>(footprint.workspace_bytes));
  {
    cuda_execution_context context(backend, stream);
    layer.forward(context, {rows, x_d, y_d, p_d, workspace, nullptr});
    layer.backward(context, {rows, x_d, y_d, dy_d, dx_d, p_d, dp_d, workspace, nullptr});
  }
  backend.synchronize(stream);
  double const forward = max_relative_error(device_buffers::download(y_d, y.size()), y);
  double const input = max_relative_error(device_buffers::download(dx_d, dx.size()), dx);
  double const weights = max_relative_error(device_buffers::download(dp_d, dp.size()), dp);
  MESSAGE("bf16 vs fp32, max relative error: y " << forward << ", dx " << input << ", dparameters " << weights);
  CHECK(forward < 3e-2);
  CHECK(input < 3e-2);
  CHECK(weights < 3e-2);
  CHECK(forward > 0.0); // it did round: a bitwise match would mean fp32 ran

  // An MLP of bf16 dense layers learns the task, spilled.
  std::vector<hydra::any_layer<cuda_execution_context>> stack;
  stack.emplace_back(hydra::cuda::layers::cublas_dense_bf16(features, 256));
  stack.emplace_back(hydra::cuda::layers::cudnn_relu(256));
  stack.emplace_back(hydra::cuda::layers::cublas_dense_bf16(256, 256));
  stack.emplace_back(hydra::cuda::layers::cudnn_relu(256));
  stack.emplace_back(hydra::cuda::layers::cublas_dense_bf16(256, classes));
  stack.emplace_back(hydra::cuda::layers::softmax_cross_entropy(classes));
  auto const make_model = [&] { return hydra::sequential_model<cuda_execution_context>(stack, batch); };
  cuda_backend trainer_backend({.device_budgets = {64_MiB}});
  hydra::cuda::single_model_trainer<hydra::adam> trainer(trainer_backend, make_model(),
                                                         hydra::adam{.learning_rate = 0.003F},
                                                         {.budget = tight_budget<hydra::adam>(make_model)});
  trainer.train(30, data_for(8));
  CHECK(trainer.shards().size() >= 2);
  auto const& losses = trainer.losses();
  double const first = (losses[0] + losses[1] + losses[2]) / 3.0, last = (losses[27] + losses[28] + losses[29]) / 3.0;
  MESSAGE("bf16 MLP: mean loss of the first 3 minibatches " << first << ", of the last 3 " << last);
  CHECK(last < 0.8 * first);
}
