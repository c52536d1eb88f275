// A small JSON reader for workload files: the whole grammar (RFC 8259) into a
// tree, with errors that give the line and column. Not a general-purpose
// library; it exists so that reading a workload needs no dependency.
#pragma once

#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"

namespace hydra::sim::detail {

struct json_value {
  enum class kind : std::uint8_t { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<json_value> items;
  std::vector<std::pair<std::string, json_value>> members;

  [[nodiscard]] json_value const* find(std::string_view key) const {
    for (auto const& [name, value] : members)
      if (name == key) return &value;
    return nullptr;
  }
};

inline char const* to_string(json_value::kind k) noexcept {
  switch (k) {
  case json_value::kind::null:
    return "null";
  case json_value::kind::boolean:
    return "a boolean";
  case json_value::kind::number:
    return "a number";
  case json_value::kind::string:
    return "a string";
  case json_value::kind::array:
    return "an array";
  default:
    return "an object";
  }
}

class json_parser {
public:
  json_parser(std::string_view text, std::string source) : text_(text), source_(std::move(source)) {}

  json_value parse() {
    json_value root = value(0);
    skip_space();
    if (at_ != text_.size()) fail("unexpected text after the JSON value");
    return root;
  }

private:
  static constexpr std::size_t max_depth = 256;

  [[noreturn]] void fail(std::string const& what) const {
    std::size_t line = 1, column = 1;
    for (std::size_t k = 0; k < at_ && k < text_.size(); ++k) {
      if (text_[k] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw invalid_argument(source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
  }

  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }

  bool consume(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  json_value value(std::size_t depth) {
    if (depth > max_depth) fail("nested deeper than " + std::to_string(max_depth) + " levels");
    skip_space();
    if (at_ == text_.size()) fail("unexpected end of input");
    json_value out;
    char const c = text_[at_];
    if (c == '{') {
      ++at_;
      out.type = json_value::kind::object;
      if (consume('}')) return out;
      do {
        skip_space();
        if (at_ == text_.size() || text_[at_] != '"') fail("expected a member name in quotes");
        std::string name = string();
        expect(':');
        out.members.emplace_back(std::move(name), value(depth + 1));
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      ++at_;
      out.type = json_value::kind::array;
      if (consume(']')) return out;
      do out.items.push_back(value(depth + 1));
      while (consume(','));
      expect(']');
    } else if (c == '"') {
      out.type = json_value::kind::string;
      out.text = string();
    } else if (literal("true")) {
      out.type = json_value::kind::boolean;
      out.boolean = true;
    } else if (literal("false")) {
      out.type = json_value::kind::boolean;
    } else if (literal("null")) {
      out.type = json_value::kind::null;
    } else {
      out.type = json_value::kind::number;
      out.number = number();
    }
    return out;
  }

  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  double number() {
    std::size_t const start = at_;
    auto digits = [&] {
      std::size_t const first = at_;
      while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) ++at_;
      return at_ > first;
    };
    if (at_ < text_.size() && text_[at_] == '-') ++at_;
    if (!digits()) fail("expected a value");
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      if (!digits()) fail("expected digits after the decimal point");
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      if (!digits()) fail("expected digits in the exponent");
    }
    double result = 0;
    auto const [end, status] = std::from_chars(text_.data() + start, text_.data() + at_, result);
    if (status != std::errc{} || end != text_.data() + at_) fail("number out of range");
    return result;
  }

  std::string string() {
    ++at_; // the opening quote
    std::string out;
    while (true) {
      if (at_ >= text_.size()) fail("unterminated string");
      char const c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated escape");
      char const e = text_[at_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u':
        append_utf8(out, code_point());
        break;
      default:
        fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  std::uint32_t hex4() {
    if (at_ + 4 > text_.size()) fail("short \\u escape");
    std::uint32_t value = 0;
    for (int k = 0; k < 4; ++k) {
      char const h = text_[at_++];
      value <<= 4;
      if (h >= '0' && h <= '9')
        value |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        value |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        value |= static_cast<std::uint32_t>(h - 'A' + 10);
      else
        fail("bad hex digit in a \\u escape");
    }
    return value;
  }

  std::uint32_t code_point() {
    std::uint32_t const high = hex4();
    if (high < 0xD800 || high > 0xDBFF) return high;
    if (!literal("\\u")) fail("unpaired surrogate in a \\u escape");
    std::uint32_t const low = hex4();
    if (low < 0xDC00 || low > 0xDFFF) fail("unpaired surrogate in a \\u escape");
    return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
  }

  static void append_utf8(std::string& out, std::uint32_t c) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }

  std::string_view text_;
  std::string source_;
  std::size_t at_ = 0;
};

[[nodiscard]] inline json_value parse_json(std::string_view text, std::string source) {
  return json_parser(text, std::move(source)).parse();
}

} // namespace hydra::sim::detail
