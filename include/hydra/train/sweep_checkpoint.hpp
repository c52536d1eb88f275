// A sweep's state on disk: every model's snapshot, losses and failure, and
// its controller's history (which rebuilds a halving search's rungs), in one
// self-checking binary format. A sweep runs for hours; its checkpoint is what
// survives a crash, so a damaged or foreign file must be refused, never half
// believed: the format carries a magic number, a version, its length and a
// CRC-32 of everything, and every field is bounded while it is read.
//
// Layout (little-endian, as written by this machine):
//   "HYDRASWP" | u32 version | u64 body bytes | body | u32 CRC-32 of the body
// The body: the sweep's fingerprint, the elapsed seconds, the models (name,
// failure, losses, state if any) and the history, each length-prefixed.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/select/controller_history.hpp"
#include "hydra/train/model_snapshot.hpp"

namespace hydra {

static_assert(std::endian::native == std::endian::little, "the checkpoint format is written little-endian");

struct sweep_checkpoint {
  // What sweep it belongs to, in the user's words (the options that shape the
  // search); a resume compares it with its own.
  std::string fingerprint;
  double elapsed_seconds = 0;
  struct model {
    std::string name;
    std::optional<model_snapshot> state; // at its latest checkpoint; nullopt: not started, stopped or failed
    std::vector<float> losses;           // mean loss of each minibatch up to that checkpoint
    std::string failure;                 // why it failed; empty if it did not
  };
  std::vector<model> models;
  controller_history history; // every checkpoint its controller was shown, in order
};

namespace detail {

inline constexpr char checkpoint_magic[8] = {'H', 'Y', 'D', 'R', 'A', 'S', 'W', 'P'};
inline constexpr std::uint32_t checkpoint_version = 1;

inline std::uint32_t crc32_of(std::span<std::byte const> bytes) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  std::size_t done = 0;
  while (done < bytes.size()) { // zlib takes at most a uInt at a time
    auto const n = static_cast<uInt>(std::min<std::size_t>(bytes.size() - done, std::numeric_limits<uInt>::max()));
    crc = ::crc32(crc, reinterpret_cast<Bytef const*>(bytes.data() + done), n);
    done += n;
  }
  return static_cast<std::uint32_t>(crc);
}

class checkpoint_writer {
public:
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void value(T v) {
    auto const* p = reinterpret_cast<std::byte const*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof v);
  }
  void text(std::string const& s) {
    value<std::uint64_t>(s.size());
    auto const* p = reinterpret_cast<std::byte const*>(s.data());
    bytes_.insert(bytes_.end(), p, p + s.size());
  }
  void floats(std::vector<float> const& v) {
    value<std::uint64_t>(v.size());
    auto const* p = reinterpret_cast<std::byte const*>(v.data());
    bytes_.insert(bytes_.end(), p, p + v.size() * sizeof(float));
  }
  [[nodiscard]] std::vector<std::byte>& bytes() noexcept { return bytes_; }

private:
  std::vector<std::byte> bytes_;
};

// Reads the body, every length checked against what is left: a damaged count
// is refused by name rather than allocated or read past.
class checkpoint_reader {
public:
  checkpoint_reader(std::span<std::byte const> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}

  template <class T>
  requires std::is_trivially_copyable_v<T> T value(char const* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string text(char const* what) {
    std::uint64_t const n = value<std::uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<char const*>(bytes_.data() + at_), n);
    at_ += n;
    return s;
  }
  std::vector<float> floats(char const* what) {
    std::uint64_t const n = value<std::uint64_t>(what);
    if (n > (bytes_.size() - at_) / sizeof(float)) fail(what, std::to_string(n) + " values, past the end");
    std::vector<float> v(n);
    if (n > 0) std::memcpy(v.data(), bytes_.data() + at_, n * sizeof(float));
    at_ += n * sizeof(float);
    return v;
  }
  // A count of items of at least `least_bytes` each: at most what is left could hold.
  std::uint64_t count(char const* what, std::size_t least_bytes) {
    std::uint64_t const n = value<std::uint64_t>(what);
    if (n > (bytes_.size() - at_) / least_bytes) fail(what, std::to_string(n) + ", more than the file could hold");
    return n;
  }
  [[noreturn]] void fail(char const* what, std::string const& why) const {
    throw error(where_ + ": corrupt (" + what + ": " + why + ")");
  }
  [[nodiscard]] std::size_t left() const noexcept { return bytes_.size() - at_; }

private:
  void need(std::uint64_t n, char const* what) const {
    if (n > bytes_.size() - at_) fail(what, "past the end");
  }
  std::span<std::byte const> bytes_;
  std::string where_;
  std::size_t at_ = 0;
};

} // namespace detail

// The checkpoint as bytes (what checkpoint_directory writes).
[[nodiscard]] inline std::vector<std::byte> encode(sweep_checkpoint const& c) {
  detail::checkpoint_writer body;
  body.text(c.fingerprint);
  body.value<double>(c.elapsed_seconds);
  body.value<std::uint64_t>(c.models.size());
  for (auto const& m : c.models) {
    body.text(m.name);
    body.text(m.failure);
    body.floats(m.losses);
    body.value<std::uint8_t>(m.state ? 1 : 0);
    if (!m.state) continue;
    body.value<std::uint64_t>(m.state->minibatches_done);
    body.floats(m.state->parameters);
    body.floats(m.state->optimizer_state);
  }
  body.value<std::uint64_t>(c.history.size());
  for (auto const& e : c.history) {
    body.value<std::uint64_t>(e.reached.model);
    body.value<std::uint64_t>(e.reached.minibatches);
    std::uint8_t const kind = e.failure ? 2 : e.reached.validation ? 1 : 0;
    body.value<std::uint8_t>(kind);
    if (kind == 2) body.text(*e.failure);
    if (kind != 1) continue;
    body.value<double>(e.reached.validation->loss);
    body.value<double>(e.reached.validation->accuracy);
    body.value<double>(e.reached.validation->metric);
    body.value<std::uint64_t>(e.reached.validation->samples);
  }
  detail::checkpoint_writer out;
  for (char const ch : detail::checkpoint_magic) out.value<char>(ch);
  out.value<std::uint32_t>(detail::checkpoint_version);
  out.value<std::uint64_t>(body.bytes().size());
  auto& bytes = out.bytes();
  bytes.insert(bytes.end(), body.bytes().begin(), body.bytes().end());
  out.value<std::uint32_t>(detail::crc32_of(body.bytes()));
  return std::move(bytes);
}

// The checkpoint in `bytes`; `where` (the file) names it in every error. The
// magic, version, length and checksum are checked before any field is read,
// and every field is bounded while it is.
[[nodiscard]] inline sweep_checkpoint decode(std::span<std::byte const> bytes, std::string const& where) {
  constexpr std::size_t header = sizeof detail::checkpoint_magic + sizeof(std::uint32_t) + sizeof(std::uint64_t);
  if (bytes.size() < sizeof detail::checkpoint_magic)
    throw error(where + ": truncated (" + std::to_string(bytes.size()) + " bytes) or not a hydra sweep checkpoint");
  if (std::memcmp(bytes.data(), detail::checkpoint_magic, sizeof detail::checkpoint_magic) != 0)
    throw error(where + ": not a hydra sweep checkpoint");
  if (bytes.size() < header) throw error(where + ": truncated (" + std::to_string(bytes.size()) + " bytes)");
  detail::checkpoint_reader head(bytes.subspan(0, header), where);
  (void)head.value<std::uint64_t>("magic");
  auto const version = head.value<std::uint32_t>("version");
  if (version != detail::checkpoint_version)
    throw error(where + ": format version " + std::to_string(version) + "; this build reads version " +
                std::to_string(detail::checkpoint_version));
  auto const body_bytes = head.value<std::uint64_t>("length");
  std::size_t const available = bytes.size() - header;
  if (body_bytes > available || body_bytes + sizeof(std::uint32_t) > available)
    throw error(where + ": truncated (" + std::to_string(bytes.size()) + " bytes; its header promises a body of " +
                std::to_string(body_bytes) + " and a checksum)");
  if (body_bytes + sizeof(std::uint32_t) < available)
    throw error(where + ": " + std::to_string(available - body_bytes - sizeof(std::uint32_t)) +
                " trailing bytes after the checkpoint");
  auto const body = bytes.subspan(header, body_bytes);
  std::uint32_t stored = 0;
  std::memcpy(&stored, bytes.data() + header + body_bytes, sizeof stored);
  if (std::uint32_t const computed = detail::crc32_of(body); computed != stored)
    throw error(where + ": corrupt (CRC-32 " + std::to_string(computed) + " over its contents, " +
                std::to_string(stored) + " stored)");

  detail::checkpoint_reader r(body, where);
  sweep_checkpoint c;
  c.fingerprint = r.text("fingerprint");
  c.elapsed_seconds = r.value<double>("elapsed seconds");
  std::uint64_t const models = r.count("model count", 3 * sizeof(std::uint64_t) + 1);
  for (std::uint64_t m = 0; m < models; ++m) {
    sweep_checkpoint::model out;
    out.name = r.text("a model's name");
    out.failure = r.text("a model's failure");
    out.losses = r.floats("a model's losses");
    auto const has_state = r.value<std::uint8_t>("a model's state flag");
    if (has_state > 1) r.fail("a model's state flag", std::to_string(has_state));
    if (has_state == 1) {
      model_snapshot s;
      s.minibatches_done = r.value<std::uint64_t>("a model's minibatches");
      s.parameters = r.floats("a model's parameters");
      s.optimizer_state = r.floats("a model's optimizer state");
      out.state = std::move(s);
    }
    c.models.push_back(std::move(out));
  }
  std::uint64_t const events = r.count("history length", 2 * sizeof(std::uint64_t) + 1);
  for (std::uint64_t k = 0; k < events; ++k) {
    controller_event e;
    e.reached.model = r.value<std::uint64_t>("an event's model");
    if (e.reached.model >= models)
      r.fail("an event's model", std::to_string(e.reached.model) + " of " + std::to_string(models));
    e.reached.minibatches = r.value<std::uint64_t>("an event's minibatches");
    auto const kind = r.value<std::uint8_t>("an event's kind");
    if (kind > 2) r.fail("an event's kind", std::to_string(kind));
    if (kind == 2) e.failure = r.text("an event's failure");
    if (kind == 1) {
      evaluation v;
      v.loss = r.value<double>("an event's loss");
      v.accuracy = r.value<double>("an event's accuracy");
      v.metric = r.value<double>("an event's metric");
      v.samples = r.value<std::uint64_t>("an event's samples");
      e.reached.validation = v;
    }
    c.history.push_back(std::move(e));
  }
  if (r.left() != 0) r.fail("its end", std::to_string(r.left()) + " bytes left over inside the checksummed body");
  return c;
}

// Checks a decoded checkpoint against the sweep resuming from it: the same
// models, in order, by name, and nothing trained past `max_minibatches`
// (each model's most). What a snapshot must hold for its model (parameter and
// optimizer-state counts) the trainer checks when it is given one.
inline void check_against(sweep_checkpoint const& c, std::vector<std::string> const& names, std::size_t max_minibatches,
                          std::string const& where) {
  if (c.models.size() != names.size())
    throw invalid_argument(where + ": " + std::to_string(c.models.size()) + " models, but the sweep has " +
                           std::to_string(names.size()));
  for (std::size_t m = 0; m < names.size(); ++m) {
    auto const& saved = c.models[m];
    if (saved.name != names[m])
      throw invalid_argument(where + ": model " + std::to_string(m) + " is '" + saved.name + "', but the sweep's is '" +
                             names[m] + "'");
    if (saved.state && saved.state->minibatches_done > max_minibatches)
      throw invalid_argument(where + ": model " + std::to_string(m) + " (" + names[m] + ") has trained " +
                             std::to_string(saved.state->minibatches_done) + " minibatches, more than the " +
                             std::to_string(max_minibatches) + " it may");
  }
  for (auto const& e : c.history)
    if (e.reached.minibatches > max_minibatches)
      throw invalid_argument(where + ": a checkpoint of model " + std::to_string(e.reached.model) + " at minibatch " +
                             std::to_string(e.reached.minibatches) + ", past the " + std::to_string(max_minibatches) +
                             " it may train");
}

} // namespace hydra
