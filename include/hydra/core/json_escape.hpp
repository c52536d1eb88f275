// A string as the inside of a JSON string literal: quotes and backslashes
// escaped, control characters as \u00XX. Shared by every JSON writer in hydra
// (Chrome traces, runtime profiles, simulator workloads).
#pragma once

#include <cstdio>
#include <string>

namespace hydra::detail {

inline std::string json_escape(std::string const& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char code[8];
      std::snprintf(code, sizeof code, "\\u%04x", c);
      out += code;
      continue;
    }
    out += c;
  }
  return out;
}

} // namespace hydra::detail
