// Writes a recorded schedule as Chrome trace JSON (opens in ui.perfetto.dev and
// chrome://tracing): one process per device, one thread per stream (compute,
// prefetch, spill), one complete ("X") event per slice, named by model, shard,
// minibatch and direction. And a plain-text summary per device and stream.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/json_escape.hpp"
#include "hydra/trace/trace_recorder.hpp"

namespace hydra {

namespace detail {
inline std::string slice_name(trace_slice const& s) {
  return s.model_name + " shard " + std::to_string(s.task.shard) + " minibatch " + std::to_string(s.task.minibatch) +
         " " + to_string(s.task.pass);
}
} // namespace detail

inline void write_chrome_trace(std::ostream& out, std::vector<trace_slice> const& slices) {
  out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  bool first = true;
  auto separator = [&] {
    if (!first) out << ",";
    first = false;
  };
  std::map<std::size_t, bool> devices;
  for (auto const& s : slices) devices[s.device] = true;
  for (auto const& [device, unused] : devices) {
    separator();
    out << "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":" << device << ",\"args\":{\"name\":\"device " << device
        << "\"}}";
    for (int kind = 0; kind < 3; ++kind) {
      separator();
      out << "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":" << device << ",\"tid\":" << kind
          << ",\"args\":{\"name\":\"" << to_string(static_cast<stream_role>(kind)) << "\"}}";
    }
  }
  char number[64];
  for (auto const& s : slices) {
    separator();
    double const start_us = static_cast<double>(s.start.count()) / 1e3;
    double const duration_us =
        static_cast<double>(std::max(s.end - s.start, std::chrono::nanoseconds(0)).count()) / 1e3;
    out << "{\"ph\":\"X\",\"name\":\"" << detail::json_escape(detail::slice_name(s)) << "\",\"cat\":\""
        << to_string(s.stream) << "\",\"pid\":" << s.device << ",\"tid\":" << static_cast<int>(s.stream);
    std::snprintf(number, sizeof number, ",\"ts\":%.3f,\"dur\":%.3f", start_us, duration_us);
    out << number << ",\"args\":{\"model\":" << s.task.model << ",\"shard\":" << s.task.shard
        << ",\"minibatch\":" << s.task.minibatch << ",\"direction\":\"" << to_string(s.task.pass) << "\"}}";
  }
  out << "]}\n";
}

// "device 0  compute   42 tasks  busy 12.3 ms" ... one line per device and stream.
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
