// hydra: shard-parallel training of many large models on a few devices.
// This umbrella header brings in every host-only part; it never includes a CUDA
// header, so a plain g++ build works. The CUDA backend is in hydra/cuda.hpp.
#pragma once

#include "hydra/version.hpp"

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/status_check.hpp"
#include "hydra/core/stream_role.hpp"

#include "hydra/backend/backend.hpp"
#include "hydra/backend/host/host_backend.hpp"
#include "hydra/backend/host/host_execution_context.hpp"
#include "hydra/backend/memory_reservation.hpp"

#include "hydra/graph/any_layer.hpp"
#include "hydra/graph/layer.hpp"
#include "hydra/graph/sequential_model.hpp"
#include "hydra/graph/shard_chain.hpp"

#include "hydra/layers/cnn.hpp"
#include "hydra/layers/conv2d.hpp"
#include "hydra/layers/dense.hpp"
#include "hydra/layers/max_pool2d.hpp"
#include "hydra/layers/mlp.hpp"
#include "hydra/layers/relu.hpp"
#include "hydra/layers/softmax_cross_entropy.hpp"

#include "hydra/memory/device_pool.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/memory_resource.hpp"
#include "hydra/memory/pool_statistics.hpp"
#include "hydra/memory/residency_table.hpp"
#include "hydra/memory/spill_engine.hpp"
#include "hydra/memory/stream_ordered_pool.hpp"

#include "hydra/sched/any_policy.hpp"
#include "hydra/sched/eviction.hpp"
#include "hydra/sched/node_balancer.hpp"
#include "hydra/sched/policies.hpp"
#include "hydra/sched/policy.hpp"
#include "hydra/sched/scheduler_core.hpp"
#include "hydra/sched/sweep_driver.hpp"
#include "hydra/sched/task.hpp"
#include "hydra/sched/working_set.hpp"

#include "hydra/select/any_controller.hpp"
#include "hydra/select/asha.hpp"
#include "hydra/select/controller_history.hpp"
#include "hydra/select/evaluation.hpp"
#include "hydra/select/full_grid.hpp"
#include "hydra/select/successive_halving.hpp"
#include "hydra/select/sweep_controller.hpp"

#include "hydra/sim/baselines.hpp"
#include "hydra/sim/median_workload.hpp"
#include "hydra/sim/presets.hpp"
#include "hydra/sim/simulator.hpp"
#include "hydra/sim/workload.hpp"

#include "hydra/trace/trace_recorder.hpp"
#include "hydra/trace/trace_summary.hpp"

#include "hydra/train/checkpoint_directory.hpp"
#include "hydra/train/learning_rate_schedule.hpp"
#include "hydra/train/minibatch.hpp"
#include "hydra/train/multi_model_trainer.hpp"
#include "hydra/train/optimizer.hpp"
#include "hydra/train/single_model_trainer.hpp"
#include "hydra/train/sweep_checkpoint.hpp"
#include "hydra/train/synthetic_data.hpp"

namespace hydra {
static_assert(stream_ordered_resource<device_pool<host_backend>>);
static_assert(stream_ordered_resource<host_pool<host_backend>>);
} // namespace hydra
