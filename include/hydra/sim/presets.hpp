// Ready-made workloads: one shaped like the Hydra paper's model-selection
// experiment, and seeded random ones of mixed sizes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "hydra/sched/working_set.hpp"
#include "hydra/sim/workload.hpp"

namespace hydra::sim {

// ---- the paper-shaped preset ------------------------------------------------------
//
// 12 transformer models of different hyperparameters on 8 H100-class devices;
// none fits one device. Every figure below is an input, written down here:
//
// Device (H100 SXM, PCIe Gen5 host link):
//   memory 80 GB; achieved bf16 rate F = 400 TFLOP/s (about 40% of the 989
//   dense peak); host link 50 GB/s per direction (measured pinned copies reach
//   50-55 GB/s on Gen5), 15 us per copy; the devices of a node reach one
//   another over NVLink 4 at 450 GB/s per direction (18 links of 25 GB/s),
//   also 15 us per copy (workload::between_devices).
// A transformer block of width d, sequence length s, on T tokens per minibatch
// (Korthikanti et al. 2022 for the activation count):
//   parameters          P = 12 d^2
//   state bytes         16 P  (bf16 parameters and gradients, fp32 master copy
//                             and two Adam moments: mixed-precision Adam)
//   parameter bytes     2 P   (what a forward needs)
//   forward FLOPs       24 T d^2 + 4 T s d   (the matmuls, attention scores and context)
//   backward FLOPs      3x forward  (2x for the gradients, 1x to recompute the
//                                    forward from the shard's input checkpoint)
//   scratch bytes       34 T d per block (activations kept for the backward,
//                                  flash attention: no s^2 term)
//   boundary bytes      2 T d (one bf16 activation at a shard boundary)
// Shards: whole blocks, as few shards as the runtime's half-budget rule allows
// (a shard's state plus scratch <= memory / 2, so the running task and the one
// ahead fit together), blocks spread evenly over them. Embeddings and heads
// are left out (under 5% of the FLOPs at these sizes).
// The 12 models, a grid over batch size and learning rate (the learning rate
// changes the result, not the cost; it is in the names to say what the grid is):
//   6 GPT-2-XL-shaped (d = 1600, 48 blocks, s = 1024), batch 64 or 128
//     sequences (T = 65,536 or 131,072), one pass over 2^24 tokens;
//   6 BERT-Large-shaped (d = 1024, 24 blocks, s = 512), batch 256 or 512
//     sequences (T = 131,072 or 262,144), one pass over 2^26 tokens.
// Each needs 2-3x one device's memory as a whole (checked by the tests). With
// T >= 65,536 a shard's forward compute is at least its parameter fetch and
// its backward compute at least its state fetch and write-back, so spilling can
// hide behind compute: a state of m bytes per parameter moves in less time than
// the 6 FLOPs per parameter and token take when T >= (m / 6) (F / B), with F the
// device's FLOP rate and B its link's bytes per second.
struct transformer_shape {
  std::string family;
  std::size_t width = 0, blocks = 0, sequence = 0;
};

struct paper_device {
  double memory_bytes = 80e9;
  double flops_per_second = 400e12;
  double link_bytes_per_second = 50e9;
  double latency_seconds = 15e-6;
  double between_devices_bytes_per_second = 450e9;
};

// One model of the preset: `sequences` per minibatch, `tokens` to train on.
[[nodiscard]] inline model_spec transformer_model(std::string name, transformer_shape const& shape,
                                                  std::size_t sequences, double tokens,
                                                  paper_device const& device = {}) {
  double const d = static_cast<double>(shape.width), s = static_cast<double>(shape.sequence);
  double const T = static_cast<double>(sequences) * s;
  double const params = 12 * d * d;
  double const forward_flops = 24 * T * d * d + 4 * T * s * d;
  double const block_state = 16 * params, block_scratch = 34 * T * d;
  auto const per_shard_limit = static_cast<std::size_t>(
      std::floor(static_cast<double>(working_set_limit(static_cast<std::size_t>(device.memory_bytes))) /
                 (block_state + block_scratch)));
  if (per_shard_limit == 0)
    throw does_not_fit("preset: one " + shape.family + " block at batch " + std::to_string(sequences) +
                       " does not fit half a device");
  std::size_t const shard_count = (shape.blocks + per_shard_limit - 1) / per_shard_limit;
  model_spec model;
  model.name = std::move(name);
  model.minibatches = static_cast<std::size_t>(std::llround(tokens / T));
  for (std::size_t k = 0; k < shard_count; ++k) {
    std::size_t const blocks = shape.blocks / shard_count + (k < shape.blocks % shard_count ? 1 : 0);
    double const b = static_cast<double>(blocks);
    shard_spec shard;
    shard.forward_seconds = b * forward_flops / device.flops_per_second;
    shard.backward_seconds = 3 * shard.forward_seconds;
    shard.state_bytes = static_cast<std::uint64_t>(b * block_state);
    shard.parameter_bytes = static_cast<std::uint64_t>(b * 2 * params);
    shard.scratch_bytes = static_cast<std::uint64_t>(b * block_scratch);
    shard.input_bytes = static_cast<std::uint64_t>(2 * T * d);
    model.shards.push_back(shard);
  }
  return model;
}

[[nodiscard]] inline workload paper_preset(std::size_t device_count = 8, paper_device const& device = {}) {
  workload w;
  w.description = "12 transformer models (6 GPT-2-XL-shaped, 6 BERT-Large-shaped) on " + std::to_string(device_count) +
                  " H100-class devices";
  device_spec spec;
  spec.budget_bytes = static_cast<std::uint64_t>(device.memory_bytes);
  spec.h2d_bytes_per_second = spec.d2h_bytes_per_second = device.link_bytes_per_second;
  spec.latency_seconds = device.latency_seconds;
  w.devices = identical_devices(device_count, spec);
  w.between_devices = {.bytes_per_second = device.between_devices_bytes_per_second,
                       .latency_seconds = device.latency_seconds};
  transformer_shape const gpt{"gpt2-xl", 1600, 48, 1024}, bert{"bert-large", 1024, 24, 512};
  char const* rates[] = {"1e-4", "3e-4", "6e-4"};
  for (std::size_t batch : {64, 128})
    for (char const* lr : rates)
      w.models.push_back(
          transformer_model("gpt2-xl b" + std::to_string(batch) + " lr" + lr, gpt, batch, std::ldexp(1.0, 24), device));
  for (std::size_t batch : {256, 512})
    for (char const* lr : rates)
      w.models.push_back(transformer_model("bert-large b" + std::to_string(batch) + " lr" + lr, bert, batch,
                                           std::ldexp(1.0, 26), device));
  return w;
}

// The paper preset's 12 configurations, each trained from `seeds` seeds (96
// models at the default 8), on `device_count` devices of one node: the sweep
// that outgrows one server, for on_nodes to scale out.
[[nodiscard]] inline workload paper_sweep_preset(std::size_t seeds = 8, std::size_t device_count = 8) {
  if (seeds == 0) throw invalid_argument("paper_sweep_preset: seed count is 0; at least 1 is required");
  workload const one = paper_preset(device_count);
  workload w = one;
  w.models.clear();
  for (std::size_t seed = 0; seed < seeds; ++seed)
    for (model_spec model : one.models) {
      model.name += " seed " + std::to_string(seed);
      w.models.push_back(std::move(model));
    }
  w.description = std::to_string(w.models.size()) + " transformer models (the paper preset's 12 configurations, " +
                  std::to_string(seeds) + " seeds each) on " + std::to_string(device_count) + " H100-class devices";
  return w;
}

// ---- the mixed preset: devices that differ ---------------------------------------
//
// The paper-shaped preset's 12 models on a mixed cluster: `fast` H100-class
// devices as above (80 GB, 400 TFLOP/s achieved, 50 GB/s links) and `slow`
// A100-40GB-class ones (40 GB; half the achieved rate, 200 TFLOP/s, i.e. speed
// 0.5; PCIe Gen4 links, 25 GB/s per direction), with no NVLink modelled: a
// copy between any two devices runs at the host links' rate (the reading
// device's, through PCIe). Compute seconds are the fast
// device's. Shards are cut to fit half of `cut_for_memory_bytes`: 40 GB (the
// default) lets any device run any shard; 80 GB gives fewer, larger shards,
// and a shard then runs only on the devices whose half-budget holds it
// (placement_of), here the fast ones.
[[nodiscard]] inline workload mixed_preset(std::size_t fast = 4, std::size_t slow = 4,
                                           double cut_for_memory_bytes = 40e9) {
  if (!(cut_for_memory_bytes >= 40e9 && cut_for_memory_bytes <= 80e9)) {
    char given[32];
    std::snprintf(given, sizeof given, "%g", cut_for_memory_bytes / 1e9);
    std::string message = "mixed_preset: shards are cut for 40 to 80 GB of device memory, not ";
    throw invalid_argument(message.append(given).append(" GB"));
  }
  paper_device const reference{.memory_bytes = cut_for_memory_bytes};
  workload w = paper_preset(fast + slow, reference);
  w.description = "12 transformer models (6 GPT-2-XL-shaped, 6 BERT-Large-shaped) on " + std::to_string(fast) +
                  " H100-class devices (80 GB) and " + std::to_string(slow) +
                  " A100-40GB-class devices at half the speed, shards cut for " +
                  std::to_string(static_cast<int>(std::lround(cut_for_memory_bytes / 1e9))) + " GB";
  w.between_devices = {};
  for (std::size_t d = 0; d < w.devices.size(); ++d) {
    auto& device = w.devices[d];
    if (d < fast) {
      device.budget_bytes = 80'000'000'000;
    } else {
      device.budget_bytes = 40'000'000'000;
      device.speed = 0.5;
      device.h2d_bytes_per_second = device.d2h_bytes_per_second = 25e9;
    }
  }
  return w;
}

// ---- random workloads -----------------------------------------------------------

struct random_options {
  std::size_t min_models = 1, max_models = 16;
  std::size_t min_devices = 1, max_devices = 8;
  std::size_t max_shards = 8;
  std::size_t max_minibatches = 12;
};

// Mixed sizes: per shard 2.5-100 ms forward, 2-3x that backward, 0.025-2 GB of
// state, up to 4x that in scratch; links 10-60 GB/s; device memory 1-4x the
// largest task; sometimes a shared host link. Same seed, same workload.
[[nodiscard]] inline workload random_workload(std::uint64_t seed, random_options const& o = {}) {
  std::mt19937_64 random(seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(random); };
  auto integer = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(random);
  };
  workload w;
  w.description = "random workload, seed " + std::to_string(seed);
  std::size_t const models = integer(o.min_models, o.max_models);
  std::size_t const devices = integer(o.min_devices, o.max_devices);
  std::uint64_t largest_task = 0;
  for (std::size_t m = 0; m < models; ++m) {
    model_spec model;
    model.name = "model " + std::to_string(m);
    model.minibatches = integer(1, o.max_minibatches);
    std::size_t const shards = integer(1, o.max_shards);
    double const scale = uniform(0.5, 2.0); // models differ in size, shards less so
    for (std::size_t s = 0; s < shards; ++s) {
      shard_spec shard;
      shard.forward_seconds = scale * uniform(5e-3, 50e-3);
      shard.backward_seconds = shard.forward_seconds * uniform(2.0, 3.0);
      shard.state_bytes = static_cast<std::uint64_t>(scale * uniform(0.05e9, 1e9));
      shard.parameter_bytes = shard.state_bytes / 8;
      shard.scratch_bytes = static_cast<std::uint64_t>(static_cast<double>(shard.state_bytes) * uniform(0.0, 4.0));
      shard.input_bytes = static_cast<std::uint64_t>(uniform(0.0, 64e6));
      largest_task = std::max(largest_task, shard.task_bytes());
      model.shards.push_back(shard);
    }
    w.models.push_back(std::move(model));
  }
  device_spec device;
  device.budget_bytes = static_cast<std::uint64_t>(static_cast<double>(largest_task) * uniform(1.0, 4.0));
  device.h2d_bytes_per_second = uniform(10e9, 60e9);
  device.d2h_bytes_per_second = uniform(10e9, 60e9);
  device.latency_seconds = 10e-6;
  w.devices = identical_devices(devices, device);
  if (integer(0, 3) == 0) w.shared_host_bytes_per_second = uniform(20e9, 100e9);
  return w;
}

} // namespace hydra::sim
