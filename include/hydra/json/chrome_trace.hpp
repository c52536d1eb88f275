// Writes a recorded schedule as Chrome trace JSON (opens in ui.perfetto.dev and
// chrome://tracing): one process per device, one thread per stream (compute,
// prefetch, spill), one complete ("X") event per slice, named by model, shard,
// minibatch and direction. Times are microseconds since the recorder started.
// One event per line, written as it is made, so a long run's trace never has
// to be held as one document:
//
// {"displayTimeUnit":"ms","traceEvents":[
// {"ph":"M","name":"process_name","pid":0,"args":{"name":"device 0"}},
// ...
// {"ph":"X","name":"mlp shard 1 minibatch 0 forward","cat":"compute","pid":0,"tid":0,"ts":1520.25,"dur":88.5,
//  "args":{"model":0,"shard":1,"minibatch":0,"direction":"forward"}}
// ]}
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hydra/trace/trace_recorder.hpp"

namespace hydra {

inline void write_chrome_trace(std::ostream& out, std::vector<trace_slice> const& slices) {
  using json = nlohmann::ordered_json;
  bool first = true;
  auto const event = [&](json const& e) {
    out << (first ? "\n" : ",\n") << e.dump(-1, ' ', false, json::error_handler_t::replace);
    first = false;
  };
  out << R"({"displayTimeUnit":"ms","traceEvents":[)";
  std::set<std::size_t> devices;
  for (auto const& s : slices) devices.insert(s.device);
  for (auto const device : devices) {
    event({{"ph", "M"},
           {"name", "process_name"},
           {"pid", device},
           {"args", {{"name", "device " + std::to_string(device)}}}});
    for (auto const role : {stream_role::compute, stream_role::prefetch, stream_role::spill})
      event({{"ph", "M"},
             {"name", "thread_name"},
             {"pid", device},
             {"tid", static_cast<int>(role)},
             {"args", {{"name", to_string(role)}}}});
  }
  for (auto const& s : slices) {
    auto const micros = [](std::chrono::nanoseconds t) { return static_cast<double>(t.count()) / 1e3; };
    std::string name = s.model_name;
    name.append(" shard ").append(std::to_string(s.task.shard));
    name.append(" minibatch ").append(std::to_string(s.task.minibatch));
    name.append(" ").append(to_string(s.task.pass));
    event({{"ph", "X"},
           {"name", std::move(name)},
           {"cat", to_string(s.stream)},
           {"pid", s.device},
           {"tid", static_cast<int>(s.stream)},
           {"ts", micros(s.start)},
           {"dur", micros(std::max(s.end - s.start, std::chrono::nanoseconds(0)))},
           {"args",
            {{"model", s.task.model},
             {"shard", s.task.shard},
             {"minibatch", s.task.minibatch},
             {"direction", to_string(s.task.pass)}}}});
  }
  out << "\n]}\n";
}

} // namespace hydra
