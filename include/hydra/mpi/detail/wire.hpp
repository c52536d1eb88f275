// The bytes a rank sends rank 0: plain values, strings and float vectors,
// little-endian as the machines are (hydra's ranks run one build on one kind of
// machine), read back with every length checked against what arrived.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "hydra/core/error.hpp"

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

} // namespace hydra::mpi::detail
