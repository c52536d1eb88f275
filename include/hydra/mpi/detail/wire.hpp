// The bytes ranks send each other: plain values, strings and float vectors,
// little-endian as the machines are (hydra's ranks run one build on one kind of
// machine), read back with every length checked against what arrived.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/select/sweep_controller.hpp"
#include "hydra/trace/trace_recorder.hpp"
#include "hydra/train/model_snapshot.hpp"
#include "hydra/train/sweep_checkpoint.hpp"
#include "hydra/train/sweep_types.hpp"

namespace hydra::mpi::detail {

class wire_writer {
public:
  template <class T>
  requires std::is_arithmetic_v<T>
  void put(T value) {
    auto const at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
  }
  void put(std::string const& text) {
    put<std::uint64_t>(text.size());
    bytes_.insert(bytes_.end(), text.begin(), text.end());
  }
  void put(std::optional<std::string> const& text) {
    put<std::uint8_t>(text.has_value() ? 1 : 0);
    if (text) put(*text);
  }
  void put(std::vector<float> const& values) {
    put<std::uint64_t>(values.size());
    auto const at = bytes_.size();
    bytes_.resize(at + values.size() * sizeof(float));
    if (!values.empty()) std::memcpy(bytes_.data() + at, values.data(), values.size() * sizeof(float));
  }
  [[nodiscard]] std::vector<char>& bytes() noexcept { return bytes_; }

private:
  std::vector<char> bytes_;
};

class wire_reader {
public:
  wire_reader(std::vector<char> const& bytes, std::string from) : bytes_(&bytes), from_(std::move(from)) {}

  template <class T>
  requires std::is_arithmetic_v<T> T get() {
    T value{};
    std::memcpy(&value, take(sizeof(T)), sizeof(T));
    return value;
  }
  std::string text() {
    auto const length = count(1);
    char const* at = take(length);
    return {at, length};
  }
  std::optional<std::string> maybe_text() {
    if (get<std::uint8_t>() == 0) return std::nullopt;
    return text();
  }
  std::vector<float> floats() {
    auto const length = count(sizeof(float));
    std::vector<float> values(length);
    if (length > 0) std::memcpy(values.data(), take(length * sizeof(float)), length * sizeof(float));
    return values;
  }
  [[nodiscard]] bool done() const noexcept { return at_ == bytes_->size(); }

private:
  // A length that the rest of the message can hold, elements of `each` bytes.
  std::size_t count(std::size_t each) {
    auto const length = get<std::uint64_t>();
    if (length > (bytes_->size() - at_) / each) malformed();
    return static_cast<std::size_t>(length);
  }
  char const* take(std::size_t n) {
    if (n > bytes_->size() - at_) malformed();
    char const* at = bytes_->data() + at_;
    at_ += n;
    return at;
  }
  [[noreturn]] void malformed() const {
    throw error("mpi sweep: the message from " + from_ + " ends early or is malformed");
  }
  std::vector<char> const* bytes_;
  std::string from_;
  std::size_t at_ = 0;
};

inline void put(wire_writer& out, evaluation const& e) {
  out.put(e.loss);
  out.put(e.accuracy);
  out.put(e.metric);
  out.put<std::uint64_t>(e.samples);
}

inline evaluation get_evaluation(wire_reader& in) {
  evaluation e;
  e.loss = in.get<double>();
  e.accuracy = in.get<double>();
  e.metric = in.get<double>();
  e.samples = in.get<std::uint64_t>();
  return e;
}

// A model's result, rank to rank 0 at the end.
inline void put(wire_writer& out, model_result const& r) {
  out.put(r.name);
  out.put(r.losses);
  out.put<std::uint64_t>(r.steps);
  out.put(r.failure);
  out.put(r.stopped_early);
  out.put<std::uint64_t>(r.validations.size());
  for (auto const& point : r.validations) {
    out.put<std::uint64_t>(point.minibatches);
    put(out, point.metrics);
  }
  out.put<std::int64_t>(r.finished.count());
  out.put(r.parameters);
}

inline model_result get_result(wire_reader& in) {
  model_result r;
  r.name = in.text();
  r.losses = in.floats();
  r.steps = in.get<std::uint64_t>();
  r.failure = in.maybe_text();
  r.stopped_early = in.maybe_text();
  auto const points = in.get<std::uint64_t>();
  for (std::uint64_t p = 0; p < points; ++p) {
    validation_point point;
    point.minibatches = in.get<std::uint64_t>();
    point.metrics = get_evaluation(in);
    r.validations.push_back(point);
  }
  r.finished = std::chrono::nanoseconds(in.get<std::int64_t>());
  r.parameters = in.floats();
  return r;
}

// A slice of a rank's trace, rank to rank 0 at the end.
inline void put(wire_writer& out, trace_slice const& slice) {
  out.put<std::uint64_t>(slice.task.model);
  out.put<std::uint64_t>(slice.task.minibatch);
  out.put<std::uint64_t>(slice.task.shard);
  out.put<std::uint8_t>(static_cast<std::uint8_t>(slice.task.pass));
  out.put<std::uint64_t>(slice.task.position);
  out.put<std::uint8_t>(static_cast<std::uint8_t>(slice.task.purpose));
  out.put<std::uint64_t>(slice.task.segment);
  out.put(slice.model_name);
  out.put<std::uint64_t>(slice.device);
  out.put<std::uint8_t>(static_cast<std::uint8_t>(slice.stream));
  out.put<std::int64_t>(slice.start.count());
  out.put<std::int64_t>(slice.end.count());
}

inline trace_slice get_trace_slice(wire_reader& in) {
  trace_slice slice;
  slice.task.model = in.get<std::uint64_t>();
  slice.task.minibatch = in.get<std::uint64_t>();
  slice.task.shard = in.get<std::uint64_t>();
  slice.task.pass = static_cast<direction>(in.get<std::uint8_t>());
  slice.task.position = in.get<std::uint64_t>();
  slice.task.purpose = static_cast<task_purpose>(in.get<std::uint8_t>());
  slice.task.segment = in.get<std::uint64_t>();
  slice.model_name = in.text();
  slice.device = in.get<std::uint64_t>();
  slice.stream = static_cast<stream_role>(in.get<std::uint8_t>());
  slice.start = std::chrono::nanoseconds(in.get<std::int64_t>());
  slice.end = std::chrono::nanoseconds(in.get<std::int64_t>());
  return slice;
}

// A model's entry of a round's checkpoint, rank to rank 0.
inline void put_saved(wire_writer& out, std::optional<model_snapshot> const& state, model_result const& r) {
  out.put(r.name);
  out.put(r.failure);
  out.put(r.losses);
  out.put<std::uint8_t>(state ? 1 : 0);
  if (!state) return;
  out.put(state->parameters);
  out.put(state->optimizer_state);
  out.put<std::uint64_t>(state->minibatches_done);
}

inline sweep_checkpoint::model get_saved(wire_reader& in) {
  sweep_checkpoint::model saved;
  saved.name = in.text();
  saved.failure = in.maybe_text().value_or("");
  saved.losses = in.floats();
  if (in.get<std::uint8_t>() == 0) return saved;
  model_snapshot state;
  state.parameters = in.floats();
  state.optimizer_state = in.floats();
  state.minibatches_done = in.get<std::uint64_t>();
  saved.state = std::move(state);
  return saved;
}

// What a model's round ended in, rank to rank 0 (for the controller): a
// checkpoint reached, with its validation metrics if it has validation data,
// or a failure.
struct round_event {
  std::size_t model = 0;
  std::optional<std::string> failure; // why it failed; none: a checkpoint
  std::size_t minibatches = 0;
  std::optional<evaluation> validation;
};

inline void put(wire_writer& out, round_event const& e) {
  out.put<std::uint64_t>(e.model);
  out.put(e.failure);
  out.put<std::uint64_t>(e.minibatches);
  out.put<std::uint8_t>(e.validation ? 1 : 0);
  if (e.validation) put(out, *e.validation);
}

inline round_event get_round_event(wire_reader& in) {
  round_event e;
  e.model = in.get<std::uint64_t>();
  e.failure = in.maybe_text();
  e.minibatches = in.get<std::uint64_t>();
  if (in.get<std::uint8_t>() != 0) e.validation = get_evaluation(in);
  return e;
}

} // namespace hydra::mpi::detail
