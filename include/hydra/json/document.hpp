// Reading and writing one JSON document with nlohmann-json, and the two checks its parser
// leaves to the caller: a member named twice in one object (nlohmann keeps the
// last silently, so a pasted duplicate would hide the figure the user meant)
// and nesting deeper than any hydra file needs (nlohmann's parser does not
// recurse, but each level still costs memory). Syntax errors name the source
// and the line and column, as a compiler's do.
#pragma once

#include <algorithm>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "hydra/core/error.hpp"

namespace hydra::detail {

inline constexpr std::size_t max_json_depth = 256;

// "an object", "a number", ...: what a value is, for "X must be an object, not an array".
[[nodiscard]] inline char const* json_kind(nlohmann::json const& v) noexcept {
  switch (v.type()) {
  case nlohmann::json::value_t::object:
    return "an object";
  case nlohmann::json::value_t::array:
    return "an array";
  case nlohmann::json::value_t::string:
    return "a string";
  case nlohmann::json::value_t::boolean:
    return "a boolean";
  case nlohmann::json::value_t::number_integer:
  case nlohmann::json::value_t::number_unsigned:
  case nlohmann::json::value_t::number_float:
    return "a number";
  default:
    return "null";
  }
}

// Parses `text`; every error is an invalid_argument that starts with `source`.
[[nodiscard]] inline nlohmann::json parse_json(std::string_view text, std::string const& source) {
  // One entry per open object or array (arrays hold no names): the names seen so far.
  std::vector<std::unordered_set<std::string>> open;
  auto const check = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using event_t = nlohmann::json::parse_event_t;
    switch (event) {
    case event_t::object_start:
    case event_t::array_start:
      if (open.size() == max_json_depth)
        throw invalid_argument(source + ": nested deeper than " + std::to_string(max_json_depth) + " levels");
      open.emplace_back();
      break;
    case event_t::object_end:
    case event_t::array_end:
      open.pop_back();
      break;
    case event_t::key:
      if (!open.back().insert(parsed.get<std::string>()).second)
        throw invalid_argument(source + ": an object names \"" + parsed.get<std::string>() +
                               "\" twice; keep one (a duplicate would silently replace the first)");
      break;
    default:
      break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), check);
  } catch (nlohmann::json::parse_error const& e) {
    // e.byte counts from 1 and points at the character that was not expected.
    std::size_t const at = e.byte > 0 ? std::min<std::size_t>(e.byte - 1, text.size()) : 0;
    std::size_t line = 1, column = 1;
    for (std::size_t k = 0; k < at; ++k) {
      if (text[k] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    // nlohmann's message after its own "[json.exception...] parse error at line L, column C: ".
    std::string_view reason = e.what();
    if (auto const c = reason.find("column "); c != std::string_view::npos)
      if (auto const colon = reason.find(": ", c); colon != std::string_view::npos) reason.remove_prefix(colon + 2);
    std::string message = source;
    message.append(":").append(std::to_string(line)).append(":").append(std::to_string(column)).append(": ");
    message.append(reason);
    throw invalid_argument(message);
  } catch (nlohmann::json::exception const& e) {
    // A number too large for a double ("1e400"): nlohmann gives no position.
    std::string_view reason = e.what();
    if (auto const tag = reason.find("] "); tag != std::string_view::npos) reason.remove_prefix(tag + 2);
    throw invalid_argument(source + ": " + std::string(reason));
  }
}

// Names and model descriptions are the user's bytes: written as they are when
// they are UTF-8, with U+FFFD for bytes that are not (JSON text must be UTF-8).
inline void write_json_document(std::ostream& out, nlohmann::ordered_json const& document) {
  out << document.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

} // namespace hydra::detail
