// hydra: shard-parallel training of many large models on a few devices.
// This umbrella header brings in every host-only part; it never includes a CUDA
// header, so a plain g++ build works. The CUDA backend is in hydra/cuda.hpp.
#pragma once

#include "hydra/version.hpp"

#include "hydra/core/bytes.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/status_check.hpp"

#include "hydra/backend/backend.hpp"
#include "hydra/backend/host/host_backend.hpp"

#include "hydra/memory/device_pool.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/memory_reservation.hpp"
#include "hydra/memory/memory_resource.hpp"
#include "hydra/memory/pool_statistics.hpp"
#include "hydra/memory/stream_ordered_pool.hpp"

namespace hydra {
static_assert(stream_ordered_resource<device_pool<host_backend>>);
static_assert(stream_ordered_resource<host_pool<host_backend>>);
} // namespace hydra
