// The stream-ordered pool of host DRAM that is the home of spilled shard state.
// Same contract and counters as device_pool: blocks are freed behind the event
// of the stream whose copy last read them, never behind a host synchronisation.
// On the host backend this is plain aligned memory; the CUDA backend reserves
// pinned memory, so that copies to and from it are truly asynchronous.
#pragma once

#include <cstddef>

#include "hydra/backend/backend.hpp"
#include "hydra/memory/stream_ordered_pool.hpp"

namespace hydra {

template <backend Backend>
class host_pool : public stream_ordered_pool<Backend> {
public:
  host_pool(Backend& backend, std::size_t capacity)
      : stream_ordered_pool<Backend>(backend, backend.reserve_host_memory(capacity), "host pool") {}
};

} // namespace hydra
