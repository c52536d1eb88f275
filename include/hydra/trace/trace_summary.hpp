// A recorded schedule summed up as plain text: tasks and busy time per device
// and stream. (hydra/json/chrome_trace.hpp writes the whole schedule as a
// Chrome trace for a timeline viewer.)
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "hydra/trace/trace_recorder.hpp"

namespace hydra {

// One line per device and stream, such as
// "device 0  compute       42 slices      12.300 ms".
inline std::string trace_summary(std::vector<trace_slice> const& slices) {
  std::map<std::pair<std::size_t, int>, std::pair<std::size_t, std::chrono::nanoseconds>> totals;
  for (auto const& s : slices) {
    auto& entry = totals[{s.device, static_cast<int>(s.stream)}];
    ++entry.first;
    entry.second += s.end - s.start;
  }
  std::ostringstream out;
  char line[128];
  for (auto const& [key, value] : totals) {
    std::snprintf(line, sizeof line, "device %zu  %-8s  %6zu slices  %10.3f ms\n", key.first,
                  to_string(static_cast<stream_role>(key.second)), value.first,
                  static_cast<double>(value.second.count()) / 1e6);
    out << line;
  }
  return out.str();
}

} // namespace hydra
