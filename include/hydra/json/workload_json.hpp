// Workloads as JSON, so users describe their own, and so the profile the
// runtime writes (hydra::write_profile_json, json/profile_json.hpp) can be simulated:
//
// {
//   "format": "hydra workload", "version": 1,           (optional; a newer version is refused)
//   "description": "my sweep",                          (optional)
//   "devices": {"count": 8, "budget_bytes": 80e9,       (or a list of such objects
//               "h2d_bytes_per_second": 50e9,            without "count"; optional
//               "d2h_bytes_per_second": 50e9,            when the reader is given
//               "latency_seconds": 15e-6,                defaults, as for a profile)
//               "speed": 1},                             (optional, version 3: 1)
//   (in the list form each device may name its machine, "node": 0, version 4)
//   "between_nodes": {"bytes_per_second": 25e9,          (optional, version 4: these)
//                     "latency_seconds": 5e-6},
//   "between_devices": {"bytes_per_second": 450e9,       (optional, version 6: 0, 0:
//                       "latency_seconds": 5e-6},         the host links')
//   "shared_host_bytes_per_second": 0,                   (optional; 0: unlimited)
//   "launch_seconds": 2e-5,                              (optional, version 2: 0)
//   "host_cores": 0, "task_host_seconds": 0,             (optional, version 2: 0)
//   "handoff_seconds": 0,                                (optional, version 5: 0)
//   "models": [
//     {"name": "a", "minibatches": 100,                  (minibatches optional with a default)
//      "shards": [{"forward_seconds": 0.09, "backward_seconds": 0.27,
//                  "state_bytes": 3.9e9, "parameter_bytes": 4.9e8,   (optional: = state)
//                  "scratch_bytes": 2.8e10, "input_bytes": 2.1e8,   (optional: 0)
//                  "home_bytes": 2.9e9}]}                            (optional, version 2: = state)
//   ]
// }
//
// (See sim/workload.hpp for what each figure means.) A profile's extra
// members ("source", "measured_minibatches", "fetch_seconds") are accepted and
// ignored; any other unknown member, or one named twice, is an error naming
// it, so a typo is not a silently missing figure. Parsed by nlohmann-json, so
// this header belongs to the hydra::json target, not to hydra/hydra.hpp.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "hydra/core/error.hpp"
#include "hydra/json/document.hpp"
#include "hydra/sim/workload.hpp"

namespace hydra::sim {

// The version this hydra writes and the newest it reads. A file without
// "version" is read as version 1 (files written before the field existed).
// Version 2 added launch_seconds, host_cores, task_host_seconds and home_bytes;
// version 3 each device's "speed"; version 4 each device's "node" and the
// link "between_nodes"; version 5 "handoff_seconds"; version 6 the link
// "between_devices". (A file that declares an
// older version may still give the newer members: they read the same.)
inline constexpr int workload_json_version = 6;

// What a file may leave out (a runtime profile names neither devices nor
// minibatch counts).
struct json_defaults {
  std::optional<std::size_t> device_count{};
  device_spec device{};
  std::optional<std::size_t> minibatches{};
};

namespace detail {

using json = nlohmann::json;

class workload_reader {
public:
  workload_reader(std::string source, json_defaults const& defaults)
      : source_(std::move(source)), defaults_(defaults) {}

  workload read(json const& root) {
    require_object(root, "the document");
    allowed(root, "the document",
            {"format", "version", "description", "devices", "shared_host_bytes_per_second", "launch_seconds",
             "host_cores", "task_host_seconds", "handoff_seconds", "models", "between_nodes", "between_devices"});
    if (auto const* format = member(root, "format"); format && as_string(*format, "format") != "hydra workload")
      fail("\"format\" is \"" + format->get<std::string>() + "\", not \"hydra workload\"");
    if (auto const* version = member(root, "version")) {
      auto const v = as_count(*version, "version", 1'000'000, 1);
      if (v > static_cast<std::size_t>(workload_json_version))
        fail("version " + std::to_string(v) + " was written by a newer hydra; this one reads up to version " +
             std::to_string(workload_json_version));
    }
    workload w;
    if (auto const* text = member(root, "description")) w.description = as_string(*text, "description");
    if (auto const* shared = member(root, "shared_host_bytes_per_second"))
      w.shared_host_bytes_per_second = as_number(*shared, "shared_host_bytes_per_second");
    if (auto const* x = member(root, "launch_seconds")) w.launch_seconds = as_seconds(*x, "launch_seconds");
    if (auto const* x = member(root, "host_cores")) w.host_cores = as_count(*x, "host_cores", max_devices);
    if (auto const* x = member(root, "task_host_seconds")) w.task_host_seconds = as_seconds(*x, "task_host_seconds");
    if (auto const* x = member(root, "handoff_seconds")) w.handoff_seconds = as_seconds(*x, "handoff_seconds");
    if (auto const* link = member(root, "between_nodes")) {
      require_object(*link, "\"between_nodes\"");
      allowed(*link, "between_nodes", {"bytes_per_second", "latency_seconds"});
      if (auto const* x = member(*link, "bytes_per_second")) {
        w.between_nodes.bytes_per_second = as_number(*x, "between_nodes.bytes_per_second");
        if (!(w.between_nodes.bytes_per_second > 0)) fail("between_nodes.bytes_per_second is 0; a link needs a rate");
      }
      if (auto const* x = member(*link, "latency_seconds"))
        w.between_nodes.latency_seconds = as_seconds(*x, "between_nodes.latency_seconds");
    }
    if (auto const* link = member(root, "between_devices")) {
      require_object(*link, "\"between_devices\"");
      allowed(*link, "between_devices", {"bytes_per_second", "latency_seconds"});
      if (auto const* x = member(*link, "bytes_per_second"))
        w.between_devices.bytes_per_second = as_number(*x, "between_devices.bytes_per_second");
      if (auto const* x = member(*link, "latency_seconds"))
        w.between_devices.latency_seconds = as_seconds(*x, "between_devices.latency_seconds");
    }
    if (auto const* devices = member(root, "devices")) {
      read_devices(*devices, w);
    } else if (defaults_.device_count) {
      w.devices = identical_devices(*defaults_.device_count, defaults_.device);
    } else {
      fail("no \"devices\": give them in the file or as defaults (the command line's --devices and --device-memory)");
    }
    auto const* models = member(root, "models");
    if (!models) fail("no \"models\"");
    require_array(*models, "\"models\"");
    for (std::size_t m = 0; m < models->size(); ++m) w.models.push_back(read_model((*models)[m], m));
    return w;
  }

private:
  [[noreturn]] void fail(std::string const& what) const { throw invalid_argument(source_ + ": " + what); }

  static json const* member(json const& object, char const* name) {
    auto const it = object.find(name);
    return it == object.end() ? nullptr : &*it;
  }

  void require_object(json const& v, std::string const& what) const {
    if (!v.is_object()) fail(what + " must be an object, not " + hydra::detail::json_kind(v));
  }
  void require_array(json const& v, std::string const& what) const {
    if (!v.is_array()) fail(what + " must be an array, not " + hydra::detail::json_kind(v));
  }

  void allowed(json const& object, std::string const& what, std::initializer_list<std::string_view> names) const {
    for (auto const& [name, unused] : object.items()) {
      bool known = false;
      for (auto const& n : names) known = known || n == name;
      if (!known) fail(what + " has an unknown member \"" + name + "\"");
    }
  }

  double as_number(json const& v, std::string const& what) const {
    if (!v.is_number()) fail(what + " must be a number, not " + hydra::detail::json_kind(v));
    double const n = v.get<double>();
    if (!std::isfinite(n) || n < 0) fail(what + " must be a finite number >= 0");
    return n;
  }

  std::uint64_t as_bytes(json const& v, std::string const& what) const {
    // Whole numbers up to 2^64 - 1 are exact as JSON integers; others go through double.
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    double const n = as_number(v, what);
    if (n >= 18446744073709551616.0) fail(what + " is above 2^64 bytes");
    return static_cast<std::uint64_t>(std::round(n)); // llround would overflow long long above 2^63
  }

  std::size_t as_count(json const& v, std::string const& what, std::size_t limit, std::size_t least = 0) const {
    double const n = as_number(v, what);
    if (n != std::floor(n)) fail(what + " must be a whole number");
    if (n < static_cast<double>(least)) fail(what + " is " + number_text(n) + "; at least " + std::to_string(least));
    if (n > static_cast<double>(limit)) {
      std::string message = what;
      message.append(" is ").append(number_text(n)).append(", above the limit of ").append(std::to_string(limit));
      fail(message);
    }
    return static_cast<std::size_t>(n);
  }

  static std::string number_text(double n) {
    char text[32];
    std::snprintf(text, sizeof text, "%.15g", n);
    return text;
  }

  // A time: what a simulation adds up, so bounded (a year is 3.2e7 s).
  double as_seconds(json const& v, std::string const& what) const {
    double const n = as_number(v, what);
    if (n > max_seconds)
      fail(what + " is " + number_text(n) + " s, above the limit of " + number_text(max_seconds) + " s");
    return n;
  }
  static constexpr double max_seconds = 1e9;

  std::string as_string(json const& v, std::string const& what) const {
    if (!v.is_string()) fail(what + " must be a string, not " + hydra::detail::json_kind(v));
    return v.get<std::string>();
  }

  device_spec read_device(json const& v, std::string const& what) const {
    require_object(v, what);
    device_spec d = defaults_.device;
    // "memory_bytes" is the name files written before "budget_bytes" used.
    auto const* budget = member(v, "budget_bytes");
    auto const* old = member(v, "memory_bytes");
    if (budget && old) fail(what + " gives both \"budget_bytes\" and \"memory_bytes\" (its older name): keep one");
    if (budget) d.budget_bytes = as_bytes(*budget, what + ".budget_bytes");
    if (old) d.budget_bytes = as_bytes(*old, what + ".memory_bytes");
    if (auto const* x = member(v, "h2d_bytes_per_second"))
      d.h2d_bytes_per_second = as_number(*x, what + ".h2d_bytes_per_second");
    if (auto const* x = member(v, "d2h_bytes_per_second"))
      d.d2h_bytes_per_second = as_number(*x, what + ".d2h_bytes_per_second");
    if (auto const* x = member(v, "latency_seconds")) d.latency_seconds = as_seconds(*x, what + ".latency_seconds");
    if (auto const* x = member(v, "speed")) {
      d.speed = as_number(*x, what + ".speed");
      if (!valid_device_speed(d.speed))
        fail(what + ".speed is " + number_text(d.speed) + "; a speed is > 0 and at most 1e6");
    }
    if (d.budget_bytes == 0)
      fail(what + (budget || old ? ".budget_bytes is 0; a device needs memory" : " needs \"budget_bytes\""));
    return d;
  }

  void read_devices(json const& v, workload& w) const {
    if (v.is_array()) {
      for (std::size_t d = 0; d < v.size(); ++d) {
        std::string const what = "devices[" + std::to_string(d) + "]";
        require_object(v[d], what);
        allowed(v[d], what,
                {"budget_bytes", "memory_bytes", "h2d_bytes_per_second", "d2h_bytes_per_second", "latency_seconds",
                 "speed", "node"});
        w.devices.push_back(read_device(v[d], what));
        if (auto const* x = member(v[d], "node")) w.devices.back().node = as_count(*x, what + ".node", max_devices - 1);
      }
      return;
    }
    require_object(v, "\"devices\"");
    allowed(v, "devices",
            {"count", "budget_bytes", "memory_bytes", "h2d_bytes_per_second", "d2h_bytes_per_second", "latency_seconds",
             "speed"});
    auto const* count = member(v, "count");
    if (!count) fail("\"devices\" needs \"count\" (or make it a list of devices)");
    w.devices = identical_devices(as_count(*count, "devices.count", max_devices), read_device(v, "devices"));
  }

  model_spec read_model(json const& v, std::size_t m) const {
    std::string const what = "models[" + std::to_string(m) + "]";
    require_object(v, what);
    allowed(v, what, {"name", "minibatches", "shards", "source", "measured_minibatches"});
    model_spec model;
    auto const* name = member(v, "name");
    model.name = name ? as_string(*name, what + ".name") : "model " + std::to_string(m);
    if (auto const* x = member(v, "minibatches"))
      model.minibatches = as_count(*x, what + ".minibatches", max_minibatches, 1);
    else if (defaults_.minibatches)
      model.minibatches = *defaults_.minibatches;
    else
      fail(what + " (" + model.name + ") has no \"minibatches\" and no default was given (--minibatches)");
    auto const* shards = member(v, "shards");
    if (!shards) fail(what + " (" + model.name + ") has no \"shards\"");
    require_array(*shards, what + ".shards");
    for (std::size_t s = 0; s < shards->size(); ++s) {
      std::string const at = what + ".shards[" + std::to_string(s) + "]";
      auto const& item = (*shards)[s];
      require_object(item, at);
      allowed(item, at,
              {"forward_seconds", "backward_seconds", "state_bytes", "parameter_bytes", "scratch_bytes", "input_bytes",
               "home_bytes", "fetch_seconds"});
      shard_spec shard;
      auto const* forward = member(item, "forward_seconds");
      auto const* backward = member(item, "backward_seconds");
      if (!forward || !backward) fail(at + " needs \"forward_seconds\" and \"backward_seconds\"");
      shard.forward_seconds = as_seconds(*forward, at + ".forward_seconds");
      shard.backward_seconds = as_seconds(*backward, at + ".backward_seconds");
      if (auto const* x = member(item, "state_bytes")) shard.state_bytes = as_bytes(*x, at + ".state_bytes");
      if (auto const* x = member(item, "parameter_bytes"))
        shard.parameter_bytes = as_bytes(*x, at + ".parameter_bytes");
      if (auto const* x = member(item, "scratch_bytes")) shard.scratch_bytes = as_bytes(*x, at + ".scratch_bytes");
      if (auto const* x = member(item, "input_bytes")) shard.input_bytes = as_bytes(*x, at + ".input_bytes");
      if (auto const* x = member(item, "home_bytes")) shard.home_bytes = as_bytes(*x, at + ".home_bytes");
      if (shard.parameter_bytes > shard.state_bytes) fail(at + ": parameter_bytes is above state_bytes");
      if (shard.home_bytes > shard.state_bytes) fail(at + ": home_bytes is above state_bytes");
      model.shards.push_back(shard);
    }
    return model;
  }

  std::string source_;
  json_defaults defaults_;
};

} // namespace detail

// Parses a workload from JSON text; `source` names it in errors ("file:line:column: ...").
[[nodiscard]] inline workload parse_workload_json(std::string_view text, std::string const& source = "workload",
                                                  json_defaults const& defaults = {}) {
  return detail::workload_reader(source, defaults).read(hydra::detail::parse_json(text, source));
}

[[nodiscard]] inline workload read_workload_json(std::string const& path, json_defaults const& defaults = {}) {
  std::error_code failed;
  auto const status = std::filesystem::status(path, failed);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw invalid_argument("workload file " + path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw invalid_argument("workload file " + path + ": cannot be opened: " + std::strerror(errno));
  std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw invalid_argument("workload file " + path + ": reading failed: " + std::strerror(errno));
  return parse_workload_json(text, path, defaults);
}

// Writes every figure, defaults included, so the file reads back to an equal
// workload (nlohmann writes each double in the shortest form that round-trips).
inline void write_workload_json(std::ostream& out, workload const& w) {
  using ordered = nlohmann::ordered_json;
  ordered document = {{"format", "hydra workload"}, {"version", workload_json_version}, {"description", w.description}};
  ordered devices = ordered::array();
  for (auto const& device : w.devices)
    devices.push_back({{"budget_bytes", device.budget_bytes},
                       {"h2d_bytes_per_second", device.h2d_bytes_per_second},
                       {"d2h_bytes_per_second", device.d2h_bytes_per_second},
                       {"latency_seconds", device.latency_seconds},
                       {"speed", device.speed},
                       {"node", device.node}});
  document["devices"] = std::move(devices);
  document["between_nodes"] = {{"bytes_per_second", w.between_nodes.bytes_per_second},
                               {"latency_seconds", w.between_nodes.latency_seconds}};
  document["between_devices"] = {{"bytes_per_second", w.between_devices.bytes_per_second},
                                 {"latency_seconds", w.between_devices.latency_seconds}};
  document["shared_host_bytes_per_second"] = w.shared_host_bytes_per_second;
  document["launch_seconds"] = w.launch_seconds;
  document["host_cores"] = w.host_cores;
  document["task_host_seconds"] = w.task_host_seconds;
  document["handoff_seconds"] = w.handoff_seconds;
  ordered models = ordered::array();
  for (auto const& model : w.models) {
    ordered shards = ordered::array();
    for (auto const& shard : model.shards)
      shards.push_back({{"forward_seconds", shard.forward_seconds},
                        {"backward_seconds", shard.backward_seconds},
                        {"state_bytes", shard.state_bytes},
                        {"parameter_bytes", shard.parameter_bytes},
                        {"scratch_bytes", shard.scratch_bytes},
                        {"input_bytes", shard.input_bytes},
                        {"home_bytes", shard.home_bytes}});
    models.push_back({{"name", model.name}, {"minibatches", model.minibatches}, {"shards", std::move(shards)}});
  }
  document["models"] = std::move(models);
  hydra::detail::write_json_document(out, document);
}

} // namespace hydra::sim
