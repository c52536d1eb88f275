// A model's shard homes: where each shard's parameters and optimizer state
// live in host memory between its tasks (the layout: shard_home_layout.hpp).
// The spill engines hold pointers to them, so they never move; they are made
// from initial parameters or a snapshot, read back as a snapshot once the
// streams have drained, and freed in stream order when the model stops.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/graph/shard_chain.hpp"
#include "hydra/memory/host_pool.hpp"
#include "hydra/memory/spill_engine.hpp"
#include "hydra/train/detail/shard_home_layout.hpp"
#include "hydra/train/model_snapshot.hpp"

namespace hydra::detail {

template <class Backend>
class shard_homes {
public:
  using engine_type = spill_engine<Backend>;
  using stream_type = typename Backend::stream;

  // Fresh homes: each shard's slice of `initial`, optimizer values at zero.
  shard_homes(Backend& backend, host_pool<Backend>& host, shard_chain const& graph, std::vector<float> const& initial,
              stream_type stream)
      : backend_(&backend), host_(&host) {
    for (shard const& s : graph.shards())
      homes_.push_back(engine_type::make_home(backend, host, stream, initial_home(s, initial)));
  }

  // Homes from a snapshot's parameters and optimizer state (n parameters,
  // k optimizer values per parameter), checked against the model's sizes.
  shard_homes(Backend& backend, host_pool<Backend>& host, shard_chain const& graph, std::size_t n, std::size_t k,
              std::vector<float> const& parameters, std::vector<float> const& optimizer_state, stream_type stream)
      : backend_(&backend), host_(&host) {
    expects(parameters.size() == n && optimizer_state.size() == n * k,
            "resume: the snapshot holds " + std::to_string(parameters.size()) + " parameters and " +
                std::to_string(optimizer_state.size()) + " optimizer values; the model needs " + std::to_string(n) +
                " and " + std::to_string(n * k));
    for (shard const& s : graph.shards())
      homes_.push_back(engine_type::make_home(backend, host, stream, home_from(s, parameters, optimizer_state)));
  }

  shard_homes(shard_homes const&) = delete;
  shard_homes& operator=(shard_homes const&) = delete;

  // Registers the shards with a device's engine; returns the id of shard 0
  // there (the others follow in order).
  std::size_t register_with(engine_type& engine, shard_chain const& graph) {
    std::size_t base = 0;
    for (std::size_t s = 0; s < graph.size(); ++s) {
      std::size_t const id = engine.add_shard(graph[s].extent_bytes(), graph[s].parameter_bytes(), &homes_[s]);
      if (s == 0) base = id;
    }
    return base;
  }

  // Parameters and optimizer state in layer order (n parameters, k values
  // each); call once the streams have drained.
  [[nodiscard]] model_snapshot state(shard_chain const& graph, std::size_t n, std::size_t k) const {
    model_snapshot out{std::vector<float>(n), std::vector<float>(n * k), 0};
    for (std::size_t s = 0; s < graph.size(); ++s)
      copy_home_into(graph[s], reinterpret_cast<float const*>(homes_[s].data), out);
    return out;
  }

  // Waits (on the host) until every write-back enqueued to the homes has landed.
  void wait_written() const {
    for (auto const& home : homes_)
      if (home.data != nullptr) backend_->synchronize(home.ready);
  }

  // Frees every home behind `stream`'s work; the homes are gone afterwards.
  void release(stream_type stream) {
    for (auto& home : homes_) {
      if (home.data == nullptr) continue;
      backend_->wait_event(stream, home.ready);
      host_->deallocate(stream, home.data);
      home.data = nullptr;
    }
  }

private:
  Backend* backend_;
  host_pool<Backend>* host_;
  std::deque<shard_home<typename Backend::event>> homes_; // stable addresses: the engines point at them
};

} // namespace hydra::detail
