// Workloads as JSON, so users describe their own, and so the profile the
// runtime writes (multi_model_trainer::write_profile) can be simulated:
//
// {
//   "description": "my sweep",                          (optional)
//   "devices": {"count": 8, "budget_bytes": 80e9,       (or a list of such objects
//               "h2d_bytes_per_second": 50e9,            without "count"; optional
//               "d2h_bytes_per_second": 50e9,            when the reader is given
//               "latency_seconds": 15e-6},               defaults, as for a profile)
//   "shared_host_bytes_per_second": 0,                   (optional; 0: unlimited)
//   "models": [
//     {"name": "a", "minibatches": 100,                  (minibatches optional with a default)
//      "shards": [{"forward_seconds": 0.09, "backward_seconds": 0.27,
//                  "state_bytes": 3.9e9, "parameter_bytes": 4.9e8,   (optional: = state)
//                  "scratch_bytes": 2.8e10, "input_bytes": 2.1e8}]}  (optional: 0)
//   ]
// }
//
// A profile's extra members ("source", "fetch_seconds") are accepted and
// ignored; any other unknown member is an error naming it, so a typo is not a
// silently missing figure.
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
#include <sstream>
#include <string>
#include <string_view>

#include "hydra/core/error.hpp"
#include "hydra/core/json_escape.hpp"
#include "hydra/sim/detail/json.hpp"
#include "hydra/sim/workload.hpp"

namespace hydra::sim {

// What a file may leave out (a runtime profile names neither devices nor
// minibatch counts).
struct json_defaults {
  std::optional<std::size_t> device_count{};
  device_spec device{};
  std::optional<std::size_t> minibatches{};
};

namespace detail {

class workload_reader {
public:
  workload_reader(std::string source, json_defaults const& defaults)
      : source_(std::move(source)), defaults_(defaults) {}

  workload read(json_value const& root) {
    require(root, json_value::kind::object, "the document");
    allowed(root, "the document", {"description", "devices", "shared_host_bytes_per_second", "models"});
    workload w;
    if (auto const* text = root.find("description")) w.description = as_string(*text, "description");
    if (auto const* shared = root.find("shared_host_bytes_per_second"))
      w.shared_host_bytes_per_second = as_number(*shared, "shared_host_bytes_per_second");
    if (auto const* devices = root.find("devices")) {
      read_devices(*devices, w);
    } else if (defaults_.device_count) {
      w.devices = identical_devices(*defaults_.device_count, defaults_.device);
    } else {
      fail("no \"devices\": give them in the file or as defaults (the command line's --devices and --device-memory)");
    }
    auto const* models = root.find("models");
    if (!models) fail("no \"models\"");
    require(*models, json_value::kind::array, "\"models\"");
    for (std::size_t m = 0; m < models->items.size(); ++m) w.models.push_back(read_model(models->items[m], m));
    return w;
  }

private:
  [[noreturn]] void fail(std::string const& what) const { throw invalid_argument(source_ + ": " + what); }

  void require(json_value const& v, json_value::kind k, std::string const& what) const {
    if (v.type != k) fail(what + " must be " + to_string(k) + ", not " + to_string(v.type));
  }

  void allowed(json_value const& object, std::string const& what, std::initializer_list<std::string_view> names) const {
    for (auto const& [name, unused] : object.members) {
      bool known = false;
      for (auto const& n : names) known = known || n == name;
      if (!known) fail(what + " has an unknown member \"" + name + "\"");
    }
  }

  double as_number(json_value const& v, std::string const& what) const {
    require(v, json_value::kind::number, what);
    if (!std::isfinite(v.number) || v.number < 0) fail(what + " must be a finite number >= 0");
    return v.number;
  }

  std::uint64_t as_bytes(json_value const& v, std::string const& what) const {
    double const n = as_number(v, what);
    if (n > 1.8e19) fail(what + " is above 2^64 bytes");
    return static_cast<std::uint64_t>(std::llround(n));
  }

  std::size_t as_count(json_value const& v, std::string const& what, std::size_t limit, std::size_t least = 0) const {
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
  double as_seconds(json_value const& v, std::string const& what) const {
    double const n = as_number(v, what);
    if (n > max_seconds)
      fail(what + " is " + number_text(n) + " s, above the limit of " + number_text(max_seconds) + " s");
    return n;
  }
  static constexpr double max_seconds = 1e9;

  std::string as_string(json_value const& v, std::string const& what) const {
    require(v, json_value::kind::string, what);
    return v.text;
  }

  device_spec read_device(json_value const& v, std::string const& what) const {
    require(v, json_value::kind::object, what);
    device_spec d = defaults_.device;
    // "memory_bytes" is the name files written before "budget_bytes" used.
    auto const* budget = v.find("budget_bytes");
    auto const* old = v.find("memory_bytes");
    if (budget && old) fail(what + " gives both \"budget_bytes\" and \"memory_bytes\" (its older name): keep one");
    if (budget) d.budget_bytes = as_bytes(*budget, what + ".budget_bytes");
    if (old) d.budget_bytes = as_bytes(*old, what + ".memory_bytes");
    if (auto const* x = v.find("h2d_bytes_per_second"))
      d.h2d_bytes_per_second = as_number(*x, what + ".h2d_bytes_per_second");
    if (auto const* x = v.find("d2h_bytes_per_second"))
      d.d2h_bytes_per_second = as_number(*x, what + ".d2h_bytes_per_second");
    if (auto const* x = v.find("latency_seconds")) d.latency_seconds = as_seconds(*x, what + ".latency_seconds");
    if (d.budget_bytes == 0)
      fail(what + (budget || old ? ".budget_bytes is 0; a device needs memory" : " needs \"budget_bytes\""));
    return d;
  }

  void read_devices(json_value const& v, workload& w) const {
    if (v.type == json_value::kind::array) {
      for (std::size_t d = 0; d < v.items.size(); ++d) {
        std::string const what = "devices[" + std::to_string(d) + "]";
        allowed(v.items[d], what,
                {"budget_bytes", "memory_bytes", "h2d_bytes_per_second", "d2h_bytes_per_second", "latency_seconds"});
        w.devices.push_back(read_device(v.items[d], what));
      }
      return;
    }
    require(v, json_value::kind::object, "\"devices\"");
    allowed(
        v, "devices",
        {"count", "budget_bytes", "memory_bytes", "h2d_bytes_per_second", "d2h_bytes_per_second", "latency_seconds"});
    auto const* count = v.find("count");
    if (!count) fail("\"devices\" needs \"count\" (or make it a list of devices)");
    w.devices = identical_devices(as_count(*count, "devices.count", max_devices), read_device(v, "devices"));
  }

  model_spec read_model(json_value const& v, std::size_t m) const {
    std::string const what = "models[" + std::to_string(m) + "]";
    require(v, json_value::kind::object, what);
    allowed(v, what, {"name", "minibatches", "shards", "source"});
    model_spec model;
    model.name = v.find("name") ? as_string(*v.find("name"), what + ".name") : "model " + std::to_string(m);
    if (auto const* x = v.find("minibatches"))
      model.minibatches = as_count(*x, what + ".minibatches", max_minibatches, 1);
    else if (defaults_.minibatches)
      model.minibatches = *defaults_.minibatches;
    else
      fail(what + " (" + model.name + ") has no \"minibatches\" and no default was given (--minibatches)");
    auto const* shards = v.find("shards");
    if (!shards) fail(what + " (" + model.name + ") has no \"shards\"");
    require(*shards, json_value::kind::array, what + ".shards");
    for (std::size_t s = 0; s < shards->items.size(); ++s) {
      std::string const at = what + ".shards[" + std::to_string(s) + "]";
      auto const& item = shards->items[s];
      require(item, json_value::kind::object, at);
      allowed(item, at,
              {"forward_seconds", "backward_seconds", "state_bytes", "parameter_bytes", "scratch_bytes", "input_bytes",
               "fetch_seconds"});
      shard_spec shard;
      auto const* forward = item.find("forward_seconds");
      auto const* backward = item.find("backward_seconds");
      if (!forward || !backward) fail(at + " needs \"forward_seconds\" and \"backward_seconds\"");
      shard.forward_seconds = as_seconds(*forward, at + ".forward_seconds");
      shard.backward_seconds = as_seconds(*backward, at + ".backward_seconds");
      if (auto const* x = item.find("state_bytes")) shard.state_bytes = as_bytes(*x, at + ".state_bytes");
      if (auto const* x = item.find("parameter_bytes")) shard.parameter_bytes = as_bytes(*x, at + ".parameter_bytes");
      if (auto const* x = item.find("scratch_bytes")) shard.scratch_bytes = as_bytes(*x, at + ".scratch_bytes");
      if (auto const* x = item.find("input_bytes")) shard.input_bytes = as_bytes(*x, at + ".input_bytes");
      if (shard.parameter_bytes > shard.state_bytes) fail(at + ": parameter_bytes is above state_bytes");
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
  return detail::workload_reader(source, defaults).read(detail::parse_json(text, source));
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

inline void write_workload_json(std::ostream& out, workload const& w) {
  char number[64];
  auto num = [&](double value) {
    std::snprintf(number, sizeof number, "%.17g", value);
    return std::string(number);
  };
  out << "{\n  \"description\": \"" << hydra::detail::json_escape(w.description) << "\",\n  \"devices\": [";
  for (std::size_t d = 0; d < w.devices.size(); ++d) {
    auto const& device = w.devices[d];
    out << (d ? ",\n    " : "\n    ") << "{\"budget_bytes\": " << device.budget_bytes
        << ", \"h2d_bytes_per_second\": " << num(device.h2d_bytes_per_second)
        << ", \"d2h_bytes_per_second\": " << num(device.d2h_bytes_per_second)
        << ", \"latency_seconds\": " << num(device.latency_seconds) << "}";
  }
  out << "\n  ],\n  \"shared_host_bytes_per_second\": " << num(w.shared_host_bytes_per_second) << ",\n  \"models\": [";
  for (std::size_t m = 0; m < w.models.size(); ++m) {
    auto const& model = w.models[m];
    out << (m ? ",\n    " : "\n    ") << "{\"name\": \"" << hydra::detail::json_escape(model.name)
        << "\", \"minibatches\": " << model.minibatches << ", \"shards\": [";
    for (std::size_t s = 0; s < model.shards.size(); ++s) {
      auto const& shard = model.shards[s];
      out << (s ? ",\n      " : "\n      ") << "{\"forward_seconds\": " << num(shard.forward_seconds)
          << ", \"backward_seconds\": " << num(shard.backward_seconds) << ", \"state_bytes\": " << shard.state_bytes
          << ", \"parameter_bytes\": " << shard.parameter_bytes << ", \"scratch_bytes\": " << shard.scratch_bytes
          << ", \"input_bytes\": " << shard.input_bytes << "}";
    }
    out << "]}";
  }
  out << "\n  ]\n}\n";
}

} // namespace hydra::sim
