// The concept every hydra memory resource satisfies: stream-ordered allocate and
// deallocate, a hard capacity and exact counters. The contract behind the
// signatures is written once, in stream_ordered_pool.hpp.
#pragma once

#include <concepts>
#include <cstddef>

#include "hydra/memory/pool_statistics.hpp"

namespace hydra {

template <class Resource>
concept stream_ordered_resource = requires(Resource& resource, typename Resource::stream stream, std::size_t bytes,
                                           void* pointer) {
  { resource.allocate(stream, bytes) } -> std::same_as<void*>;
  resource.deallocate(stream, pointer);
  { resource.capacity() } -> std::convertible_to<std::size_t>;
  { resource.statistics() } -> std::same_as<pool_statistics>;
};

} // namespace hydra
