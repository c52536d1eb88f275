// The host layers at BLAS speed. Every figure is a ratio of two benchmarks of
// this run, one thread per device (OpenBLAS kept to one thread):
//  - mlp: one training step of hydra's host MLP (Adam, and SGD with momentum),
//    resident on one device (one shard, no recompute), against the same GEMMs
//    called directly through cblas_sgemm (the limit: everything else in the
//    step is overhead). Target 0.85x. The same GEMMs: like hydra (and every
//    framework), no input gradient for the first layer. Adam streams 28 bytes
//    per parameter per step (read p, m, v, g; write p, m, v), SGD 20: at the
//    small batch that memory traffic alone is a sizeable share of the GEMMs'
//    time.
//  All models train with Adam unless named otherwise.
//  - spill: the same models spilled at the tightest budget the partitioner
//    accepts (for the shard count it needs there, cut alike in both runs),
//    against the same shards all resident (target 0.9x: what spilling costs);
//    and the same shards resident against one resident shard: what
//    recomputing each shard's forward in its backward costs. With forward
//    activations kept (single_model_options::keep_forward_activations), at
//    the tightest budget and at that budget plus room for every shard's
//    scratch: spilled with kept activations against one resident shard,
//    target 0.9x where memory allows keeping them. And at the tightest
//    budget with those that must leave the device spilled to host memory
//    and copied back rather than recomputed (evicted_activations::spill).
//  - cnn: one step of a small CNN (two conv+pool blocks, a dense head, batch
//    64) against its GEMMs alone.
//  - optimizer: one Adam step over the parameters of 784-256x4, hydra's host
//    loops against Thrust's one-element-at-a-time transform.
// Each benchmark builds its trainer once and times whole steps; any iteration
// count works (the data cycles through a few prepared minibatches).
#include <benchmark/benchmark.h>

#include <cblas.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <thrust/execution_policy.h>

#include "hydra/hydra.hpp"
#include "ratio_reporter.hpp"

using context = hydra::host_execution_context;

namespace {

// ---- models -----------------------------------------------------------------

struct mlp_spec {
  std::size_t inputs, width, depth, classes, batch;
  [[nodiscard]] std::string label() const {
    return std::to_string(inputs) + "-" + std::to_string(width) + "x" + std::to_string(depth) + "_b" +
           std::to_string(batch);
  }
  [[nodiscard]] hydra::sequential_model<context> model() const {
    return hydra::layers::make_mlp(inputs, width, depth, classes, batch);
  }
};

std::vector<mlp_spec> const mlps{{784, 256, 4, 10, 64}, {784, 1024, 4, 10, 256}};

// Fashion-MNIST-shaped: 1x28x28 images, 10 classes.
hydra::layers::cnn_shape const cnn{.input = {1, 28, 28}, .block_channels = {16, 32}, .hidden = 128, .classes = 10};
constexpr std::size_t cnn_batch = 64;

// A few prepared minibatches, handed out in turn: no data generation in the timing.
hydra::data_source cycling_data(std::size_t features, std::size_t classes, std::size_t batch) {
  hydra::synthetic_classification const task{.features = features,
                                             .classes = classes,
                                             .batch = batch,
                                             .labels = hydra::synthetic_classification::label_rule::random,
                                             .seed = 7};
  std::vector<hydra::minibatch> const prepared{task(0), task(1), task(2), task(3)};
  return [prepared](std::size_t step) { return prepared[step % prepared.size()]; };
}

using trainer_type = hydra::single_model_trainer<hydra::adam>;

// Where each shard ends, for `model` on one device of `budget` bytes in
// `shard_count` shards (0: greedy); empty when the partitioner refuses.
std::vector<std::size_t> cuts_at(hydra::sequential_model<context> const& model, std::size_t budget,
                                 std::size_t shard_count) {
  try {
    hydra::host_backend backend({.device_budgets = {budget}});
    trainer_type trainer(backend, model, hydra::adam{}, {.shard_count = shard_count});
    std::vector<std::size_t> cuts;
    for (auto const& s : trainer.shards().shards()) cuts.push_back(s.end_layer);
    return cuts;
  } catch (hydra::error const&) {
    return {};
  }
}

// The scratch bytes of all the shards of `model` on a device of `budget`
// bytes cut into `shard_count` shards.
std::size_t scratch_bytes(hydra::sequential_model<context> const& model, std::size_t budget, std::size_t shard_count) {
  hydra::host_backend backend({.device_budgets = {budget}});
  trainer_type trainer(backend, model, hydra::adam{}, {.shard_count = shard_count});
  std::size_t bytes = 0;
  for (auto const& s : trainer.shards().shards()) bytes += s.scratch.bytes;
  return bytes;
}

// The smallest budget (to 4 KiB) for which `accepted(budget)` holds, given
// that it holds for every larger budget.
template <class Accepted>
std::size_t tightest_budget(hydra::sequential_model<context> const& model, Accepted&& accepted) {
  std::size_t low = 4096, high = 8 * hydra::align_up(trainer_type::footprint(model), 4096);
  while (high - low > 4096) {
    std::size_t const middle = hydra::align_down((low + high) / 2, 4096);
    (accepted(middle) ? high : low) = middle;
  }
  return high;
}

// ---- hydra's steps -------------------------------------------------------------

constexpr std::size_t steps_per_iteration = 2;

// `steps_per_iteration` training steps per iteration of one model on one device
// of `budget` bytes, partitioned into `shard_count` shards (0: greedy).
template <class Optimizer = hydra::adam>
void train_steps(benchmark::State& state, hydra::sequential_model<context> const& model, std::size_t budget,
                 std::size_t shard_count, std::vector<std::size_t> const* expected_cuts,
                 bool keep_forward_activations = false,
                 hydra::evicted_activations evicted = hydra::evicted_activations::recompute) {
  hydra::host_backend backend({.device_budgets = {budget}});
  hydra::single_model_trainer<Optimizer> trainer(backend, model, Optimizer{},
                                                 {.shard_count = shard_count,
                                                  .keep_forward_activations = keep_forward_activations,
                                                  .evicted_forward_activations = evicted});
  if (expected_cuts != nullptr) { // the comparison needs the very same shards
    std::vector<std::size_t> cuts;
    for (auto const& s : trainer.shards().shards()) cuts.push_back(s.end_layer);
    if (cuts != *expected_cuts) {
      state.SkipWithError("the partitions differ: the comparison would not be of the same shards");
      return;
    }
  }
  auto const data =
      cycling_data(model.input_features(), model.footprint(model.size() - 1).input_features, model.batch());
  trainer.train(1, data); // warm: pools carved, pages touched
  for (auto _ : state) trainer.train(steps_per_iteration, data);
  auto const report = trainer.report();
  state.counters["shards"] = static_cast<double>(trainer.shards().size());
  state.counters["budget_MiB"] = static_cast<double>(budget) / (1 << 20);
  state.counters["compute_busy"] = static_cast<double>(report.compute_busy.count()) /
                                   static_cast<double>(std::max<std::int64_t>(1, report.wall.count()));
  state.counters["exposed_wait"] = report.exposed_wait_fraction();
  // The share of backwards that recomputed their shard's forward (the last
  // shard's never does: one shard, nothing recomputed).
  std::size_t const could_recompute = report.steps * (trainer.shards().size() - 1);
  state.counters["recomputed"] = could_recompute == 0 ? 0.0
                                                      : 1.0 - static_cast<double>(report.spill.recomputations_avoided) /
                                                                  static_cast<double>(could_recompute);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * steps_per_iteration));
}

// ---- the same GEMMs, straight to OpenBLAS --------------------------------------

struct gemm_call {
  CBLAS_TRANSPOSE a, b;
  int m, n, k;
  std::vector<float> left, right, result;
};

// The GEMM shapes of one dense layer's step, as the host dense layer issues them
// (row-major): forward y = x W, backward dW = x^T dy and dx = dy W^T.
void add_dense(std::vector<gemm_call>& calls, std::size_t in, std::size_t out, std::size_t batch, bool with_dx) {
  int const i = static_cast<int>(in), o = static_cast<int>(out), b = static_cast<int>(batch);
  auto buffer = [](std::size_t n) { return std::vector<float>(n, 0.01F); };
  calls.push_back({CblasNoTrans, CblasNoTrans, b, o, i, buffer(batch * in), buffer(in * out), buffer(batch * out)});
  calls.push_back({CblasTrans, CblasNoTrans, i, o, b, buffer(batch * in), buffer(batch * out), buffer(in * out)});
  if (with_dx)
    calls.push_back({CblasNoTrans, CblasTrans, b, i, o, buffer(batch * out), buffer(in * out), buffer(batch * in)});
}

// One sample's GEMMs of the host convolution, repeated per sample:
// y = W cols, dW += dy cols^T, dcols = W^T dy (not for a model's first layer).
void add_conv(std::vector<gemm_call>& calls, hydra::layers::conv2d const& conv, std::size_t batch, bool with_dx) {
  auto const in = conv.input_shape(), out = conv.output_shape();
  auto const kernel = conv.options().kernel;
  int const K = static_cast<int>(out.channels), PQ = static_cast<int>(out.height * out.width),
            CRS = static_cast<int>(in.channels * kernel * kernel);
  auto buffer = [](int n) { return std::vector<float>(static_cast<std::size_t>(n), 0.01F); };
  for (std::size_t n = 0; n < batch; ++n) {
    calls.push_back({CblasNoTrans, CblasNoTrans, K, PQ, CRS, buffer(K * CRS), buffer(CRS * PQ), buffer(K * PQ)});
    calls.push_back({CblasNoTrans, CblasTrans, K, CRS, PQ, buffer(K * PQ), buffer(CRS * PQ), buffer(K * CRS)});
    if (with_dx)
      calls.push_back({CblasTrans, CblasNoTrans, CRS, PQ, K, buffer(K * CRS), buffer(K * PQ), buffer(CRS * PQ)});
  }
}

std::vector<gemm_call> mlp_gemms(mlp_spec const& spec) {
  std::vector<gemm_call> calls;
  std::size_t features = spec.inputs;
  for (std::size_t k = 0; k < spec.depth; ++k) {
    add_dense(calls, features, spec.width, spec.batch, /*with_dx=*/k > 0);
    features = spec.width;
  }
  add_dense(calls, features, spec.classes, spec.batch, true);
  return calls;
}

std::vector<gemm_call> cnn_gemms() {
  std::vector<gemm_call> calls;
  std::size_t channels = cnn.input.channels, height = cnn.input.height, width = cnn.input.width;
  for (std::size_t filters : cnn.block_channels) {
    hydra::layers::conv2d const conv({channels, height, width}, filters);
    add_conv(calls, conv, cnn_batch, /*with_dx=*/!calls.empty());
    hydra::layers::max_pool2d const pool(conv.output_shape());
    channels = pool.output_shape().channels;
    height = pool.output_shape().height;
    width = pool.output_shape().width;
  }
  add_dense(calls, channels * height * width, cnn.hidden, cnn_batch, true);
  add_dense(calls, cnn.hidden, cnn.classes, cnn_batch, true);
  return calls;
}

// The same calls as beta = 1 products where the layers accumulate would cost the same.
void run_gemms(benchmark::State& state, std::vector<gemm_call> calls) {
  openblas_set_num_threads(1);
  auto run = [&calls] {
    for (auto& c : calls) {
      int const lda = c.a == CblasNoTrans ? c.k : c.m, ldb = c.b == CblasNoTrans ? c.n : c.k;
      cblas_sgemm(CblasRowMajor, c.a, c.b, c.m, c.n, c.k, 1.0F, c.left.data(), lda, c.right.data(), ldb, 0.0F,
                  c.result.data(), c.n);
      benchmark::DoNotOptimize(c.result.data());
    }
  };
  run(); // warm
  for (auto _ : state)
    for (std::size_t step = 0; step < steps_per_iteration; ++step) run();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * steps_per_iteration));
}

// ---- the optimizer's step alone -------------------------------------------------

// One optimizer step over `n` parameters on this thread: thrust::host (hydra's
// SSE loops) or thrust::seq (Thrust's transform, one element at a time).
template <class Optimizer, class Policy>
void optimizer_step(benchmark::State& state, Policy policy, std::size_t n) {
  std::vector<float> parameters(n, 0.5F), gradients(n, 0.01F), optimizer_state(n * Optimizer::state_per_parameter);
  Optimizer const optimizer{};
  std::uint64_t step = 0;
  for (auto _ : state) {
    optimizer.step(policy, parameters.data(), gradients.data(), optimizer_state.data(), n, ++step);
    benchmark::DoNotOptimize(parameters.data());
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * n * sizeof(float) * (3 + 2 * Optimizer::state_per_parameter)));
}

// ---- registration ----------------------------------------------------------------

void add(std::string const& family, std::string const& variant, std::string const& argument, auto&& function) {
  benchmark::RegisterBenchmark(hydra::bench::name(family + "/" + variant, argument).c_str(),
                               std::forward<decltype(function)>(function))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

void register_mlp(mlp_spec const& spec) {
  std::string const label = spec.label();
  auto const model = spec.model();
  std::size_t const roomy = 2 * trainer_type::footprint(model);
  add("mlp", "hydra_adam", label, [model, roomy](benchmark::State& s) { train_steps(s, model, roomy, 0, nullptr); });
  add("mlp", "hydra_sgd", label,
      [model, roomy](benchmark::State& s) { train_steps<hydra::sgd_momentum>(s, model, roomy, 0, nullptr); });
  add("mlp", "cblas", label, [spec](benchmark::State& s) { run_gemms(s, mlp_gemms(spec)); });

  // The shards: as many as the partitioner needs at the tightest budget it
  // accepts, cut where the balanced partition cuts them with room for all
  // (fewest FLOPs in the largest). Spilled: the tightest budget that still
  // gives those very shards; resident: room for all of them.
  std::size_t const shards =
      cuts_at(model, tightest_budget(model, [&](std::size_t b) { return !cuts_at(model, b, 0).empty(); }), 0).size();
  auto const cuts = cuts_at(model, roomy, shards);
  std::size_t const tight = tightest_budget(model, [&](std::size_t b) { return cuts_at(model, b, shards) == cuts; });
  add("spill", "spilled", label,
      [model, tight, shards, cuts](benchmark::State& s) { train_steps(s, model, tight, shards, &cuts); });
  add("spill", "resident", label,
      [model, roomy, shards, cuts](benchmark::State& s) { train_steps(s, model, roomy, shards, &cuts); });
  add("spill", "spilled_kept", label, [model, tight, shards, cuts](benchmark::State& s) {
    train_steps(s, model, tight, shards, &cuts, /*keep_forward_activations=*/true);
  });
  add("spill", "spilled_kept_spill", label, [model, tight, shards, cuts](benchmark::State& s) {
    train_steps(s, model, tight, shards, &cuts, /*keep_forward_activations=*/true, hydra::evicted_activations::spill);
  });
  // Room beside the tightest budget for every shard's forward activations at once.
  std::size_t const with_room = hydra::align_up(tight + scratch_bytes(model, tight, shards), 4096);
  add("spill", "spilled_kept_room", label, [model, with_room, shards, cuts](benchmark::State& s) {
    train_steps(s, model, with_room, shards, &cuts, /*keep_forward_activations=*/true);
  });
  add("spill", "unsharded", label, [model, roomy](benchmark::State& s) { train_steps(s, model, roomy, 1, nullptr); });
}

void register_cnn() {
  auto const model = hydra::layers::make_cnn(cnn, cnn_batch);
  std::size_t const roomy = 2 * trainer_type::footprint(model);
  std::string const label = "b" + std::to_string(cnn_batch);
  add("cnn", "hydra", label, [model, roomy](benchmark::State& s) { train_steps(s, model, roomy, 0, nullptr); });
  add("cnn", "cblas", label, [](benchmark::State& s) { run_gemms(s, cnn_gemms()); });
}

} // namespace

int main(int argc, char** argv) {
  for (auto const& spec : mlps) register_mlp(spec);
  register_cnn();
  std::size_t const parameters = mlps[0].model().parameter_count(); // 784-256x4
  std::string const count = std::to_string(parameters);
  add("optimizer", "host", "adam_" + count,
      [parameters](benchmark::State& s) { optimizer_step<hydra::adam>(s, thrust::host, parameters); });
  add("optimizer", "thrust_seq", "adam_" + count,
      [parameters](benchmark::State& s) { optimizer_step<hydra::adam>(s, thrust::seq, parameters); });
  return hydra::bench::run_with_ratios(
      argc, argv,
      {{"mlp", "hydra_adam", "cblas", 0.85, true,
        "steps/s of hydra's resident MLP with Adam / the same GEMMs through cblas_sgemm"},
       {"mlp", "hydra_sgd", "cblas", 0.85, true,
        "steps/s of hydra's resident MLP with SGD (momentum) / the same GEMMs through cblas_sgemm"},
       {"spill", "spilled", "resident", 0.9, true,
        "steps/s spilled at the tightest budget / the same shards all resident"},
       {"spill", "resident", "unsharded", 0, true,
        "steps/s of the shards resident / one resident shard (the cost of recomputing each shard's forward)"},
       {"spill", "spilled_kept", "spilled", 0, true,
        "steps/s spilled at the tightest budget, forward activations kept where room allows / without"},
       {"spill", "spilled_kept_spill", "spilled_kept", 0, true,
        "steps/s at the tightest budget, kept forward activations spilled home when they must go / dropped"},
       {"spill", "spilled_kept_spill", "unsharded", 0, true,
        "steps/s at the tightest budget, kept forward activations spilled home when they must go / one resident "
        "shard"},
       {"spill", "spilled_kept_room", "unsharded", 0.9, true,
        "steps/s spilled with room to keep every forward's activations, kept / one resident shard"},
       {"cnn", "hydra", "cblas", 0, true, "steps/s of hydra's resident CNN / its GEMMs alone"},
       {"optimizer", "host", "thrust_seq", 0, true,
        "one optimizer step: hydra's host loops / Thrust's transform (thrust::seq), same bits"}});
}
