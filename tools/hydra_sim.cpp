// hydra-sim: runs a workload under every built-in policy and baseline in the
// simulator and prints one table; or the ratio-to-lower-bound distribution over
// many random workloads. See --help.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "hydra/hydra.hpp"
#include "hydra/json.hpp"

namespace {

struct arguments {
  std::string preset = "paper";
  std::optional<std::uint64_t> random_seed;
  std::vector<std::string> workload_files; // several: profiles of one sweep, combined at their medians
  std::optional<std::size_t> devices;
  double device_memory_bytes = 80e9, link_gbps = 50;
  bool device_memory_given = false, link_given = false; // on the command line: they override the workload's
  std::size_t minibatches = 100;
  std::optional<double> shared_gbps;
  std::optional<std::size_t> host_cores;
  std::size_t prefetch_depth = 1;
  bool never_queue_longest = false;
  hydra::take_back_rule take_back = hydra::take_back_rule::none;
  std::string take_back_name; // as given
  std::optional<std::size_t> micro_batches;
  std::optional<std::string> trace, write_workload;
  std::optional<std::size_t> sweep;
  std::size_t nodes = 1;
  double node_link_gbps = 25;
  bool move_models = false, node_link_given = false;
  hydra::sim::activation_handoff activations = hydra::sim::activation_handoff::through_host;
  std::string activations_name; // as given
  bool keep_checkpoints = false;
  bool copy_between_devices = false;
  std::optional<double> device_link_gbps; // --device-link: overrides the workload's link between devices
  bool keep_forward_activations = false;
  bool write_back_on_eviction = false;
  hydra::evicted_activations evicted = hydra::evicted_activations::by_cost;
  std::string evicted_name;           // as given
  std::vector<std::size_t> scale_out; // --scale-out: these node counts
  std::optional<std::string> help;    // --help: print it and exit 0
};

// An option that takes one of a few names, each standing for a value of
// `Value`; the first is the default. Its errors list the names.
template <class Value>
CLI::Option* add_choice(CLI::App& app, std::string const& flag, std::string const& help, std::string& name,
                        Value& value, std::vector<std::pair<std::string, Value>> const& choices) {
  std::vector<std::string> names;
  for (auto const& choice : choices) names.push_back(choice.first);
  return app.add_option(flag, name, help)
      ->check(CLI::IsMember(names))
      ->each([&value, choices](std::string const& given) {
        for (auto const& [choice, meaning] : choices)
          if (choice == given) value = meaning;
      })
      ->default_str(choices.front().first);
}

// The command line, through CLI11 (Debian: libcli11-dev): typed options whose
// ranges keep every run finite (a sweep of at least one workload, a bounded
// queue depth, a bounded minibatch count), errors that name the flag.
// CLI11's own checks compare numbers: a NaN passes every range, and an
// unsigned option takes "-1" as 2^64 - 1. These look at the text first.
CLI::Validator const finite_number(
    [](std::string& text) -> std::string {
      char* end = nullptr;
      double const value = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || !std::isfinite(value)) return "expected a finite number, not " + text;
      return {};
    },
    "FINITE");
CLI::Validator const whole_number(
    [](std::string& text) -> std::string {
      std::uint64_t value = 0;
      auto const [end, failed] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (failed != std::errc{} || end != text.data() + text.size())
        return "expected a whole number from 0 to 18446744073709551615, not " + text;
      return {};
    },
    "UINT64");

arguments parse(int argc, char** argv) {
  arguments a;
  CLI::App app("Simulates a model-selection sweep under every built-in policy (sharp, fifo, round_robin,\n"
               "random_pick, model_parallel, task_parallel) and a GPipe-style pipeline, and prints makespan,\n"
               "ratio to the lower bound, mean device utilisation, bytes moved and speedup over model_parallel.\n"
               "The workload is the paper preset unless --random or --workload names another.",
               "hydra-sim");
  app.get_formatter()->column_width(36);
  app.add_option("--preset", a.preset,
                 "paper: 12 transformer models on 8 H100-class devices; paper-sweep: those 12 configurations from 8 "
                 "seeds each, 96 models on the same 8 devices; mixed: the 12 models on 4 of those devices and 4 "
                 "A100-40GB-class devices at half the speed, shards cut for 40 GB; mixed-large: the same, shards cut "
                 "for 80 GB (fewer, larger shards that only the 80 GB devices run)")
      ->check(CLI::IsMember({"paper", "paper-sweep", "mixed", "mixed-large"}))
      ->capture_default_str();
  auto* random =
      app.add_option("--random", a.random_seed, "a seeded random workload of mixed sizes")->check(whole_number);
  app.add_option("--workload", a.workload_files,
                 "a JSON workload, or a profile written by the runtime (hydra::write_profile_json); given more than "
                 "once (profiles of one sweep taken at different times), every time and rate is the median of the "
                 "files'")
      ->excludes(random);
  app.add_option("--devices", a.devices, "device count (overrides the workload's)")
      ->check(CLI::Range(std::size_t{1}, hydra::sim::max_devices));
  std::string device_memory = "80GB";
  app.add_option("--device-memory", device_memory,
                 "memory per device (overrides the workload's; the default is for a file that gives none): "
                 "a size (80GB, 1.5MiB); a bare number is in GB")
      ->capture_default_str();
  app.add_option("--link", a.link_gbps,
                 "host link per direction in GB/s (overrides the workload's; the default is for a file that gives "
                 "none, such as a runtime profile, which does not measure its links)")
      ->check(finite_number)
      ->check(CLI::Range(1e-6, 1e6))
      ->capture_default_str();
  app.add_option("--minibatches", a.minibatches, "minibatches per model, for a profile")
      ->check(CLI::Range(std::size_t{1}, hydra::sim::max_minibatches))
      ->capture_default_str();
  app.add_option("--shared-host-link", a.shared_gbps, "all copies share this aggregate host bandwidth, in GB/s")
      ->check(finite_number)
      ->check(CLI::Range(1e-6, 1e6));
  app.add_option("--host-cores", a.host_cores,
                 "devices share this many host cores (a host-backend profile's own count); 0: they do not (GPUs)")
      ->check(CLI::Range(std::size_t{0}, hydra::sim::max_devices));
  app.add_option("--prefetch-depth", a.prefetch_depth, "tasks queued per device behind the running one")
      ->check(CLI::Range(std::size_t{0}, std::size_t{64}))
      ->capture_default_str();
  app.add_flag("--never-queue-longest", a.never_queue_longest,
               "the ready task of the model with the most work left is never queued behind a busy device: it "
               "waits for the first idle one (driver_options::never_queue_longest, the runtime's option too)");
  add_choice(app, "--take-back",
             "a what-if the runtime does not do: a queued task's compute starts only when its device reaches it, and "
             "a device whose running model has more work left than the queued task's hands that task back and waits "
             "for the running model's next: none, longest (only when the running model is the longest) or any",
             a.take_back_name, a.take_back,
             {{"none", hydra::take_back_rule::none},
              {"longest", hydra::take_back_rule::longest},
              {"any", hydra::take_back_rule::any}});
  app.add_option("--micro-batches", a.micro_batches, "the pipeline's micro-batches (default: D and 4D)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));
  app.add_option("--trace", a.trace, "write the sharp run as a Chrome trace (ui.perfetto.dev)");
  app.add_option("--write-workload", a.write_workload, "write the workload as JSON (a starting point for your own)");
  app.add_option("--sweep", a.sweep,
                 "instead of one table: N random workloads (seeds 1..N), min/median/max of each policy's "
                 "makespan / lower bound")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));
  auto* nodes =
      app.add_option("--nodes", a.nodes,
                     "the workload's devices on each of this many machines, joined by --node-link; each model runs "
                     "within one node, placed longest-first")
          ->check(CLI::Range(std::size_t{1}, std::size_t{512}))
          ->capture_default_str();
  app.add_option("--node-link", a.node_link_gbps,
                 "the link between nodes per direction in GB/s (overrides the workload's)")
      ->check(finite_number)
      ->check(CLI::Range(1e-6, 1e6))
      ->capture_default_str();
  auto* move_models =
      app.add_flag("--move-models", a.move_models,
                   "across nodes: a node short of work takes a model waiting at a minibatch boundary on another");
  add_choice(app, "--activations",
             "how boundary activations reach a model's next task: through-host (the runtime's default), "
             "kept-and-sent-home (also kept on the producing device: the runtime's with "
             "multi_model_options::keep_activations), or kept (a what-if: kept, and a gradient goes home only when its "
             "reader runs elsewhere)",
             a.activations_name, a.activations,
             {{"through-host", hydra::sim::activation_handoff::through_host},
              {"kept", hydra::sim::activation_handoff::kept},
              {"kept-and-sent-home", hydra::sim::activation_handoff::kept_and_sent_home}});
  app.add_flag("--keep-checkpoints", a.keep_checkpoints,
               "with --activations kept or kept-and-sent-home: a forward's input also stays on its device as the "
               "checkpoint its backward reads (with kept-and-sent-home as the runtime does with "
               "multi_model_options::keep_activation_checkpoints; with kept, a what-if)");
  app.add_flag("--copy-activations-between-devices", a.copy_between_devices,
               "with --activations kept or kept-and-sent-home: an activation or checkpoint kept on one device whose "
               "reader runs on another is copied device to device over --device-link, instead of read from host "
               "memory (multi_model_options::copy_activations_between_devices)");
  app.add_option("--device-link", a.device_link_gbps,
                 "the link between two devices of a node per direction in GB/s, for "
                 "--copy-activations-between-devices (overrides the workload's rate, not its latency; the paper "
                 "presets' is NVLink, 450; 0: the host links' rate)")
      ->needs("--copy-activations-between-devices")
      ->check(finite_number)
      ->check(CLI::Range(0.0, 1e6));
  app.add_flag("--keep-forward-activations", a.keep_forward_activations,
               "each training forward's activations stay on its device for its backward, which then recomputes "
               "nothing if it runs there; under memory pressure those cheaper to recompute than to fetch again go "
               "before any shard (multi_model_options::keep_forward_activations)");
  add_choice(app, "--evicted-forward-activations",
             "with --keep-forward-activations: what becomes of kept forward activations that must leave their device: "
             "by-cost (spilled home where the copies out and back take less than the recomputation), spill or "
             "recompute",
             a.evicted_name, a.evicted,
             {{"by-cost", hydra::evicted_activations::by_cost},
              {"spill", hydra::evicted_activations::spill},
              {"recompute", hydra::evicted_activations::recompute}})
      ->needs("--keep-forward-activations");
  app.add_flag("--write-back-on-eviction", a.write_back_on_eviction,
               "a backward's update stays on its device and goes home only when the shard is evicted or its "
               "model's planned work has ended, instead of after every backward, as the runtime's "
               "write_back_on_eviction does (the bound counts one write-back per shard)")
      ->excludes(move_models);
  app.add_option("--scale-out", a.scale_out,
                 "instead of one table: sharp on 1, 2, 4 and 8 (or these) nodes of the workload's devices, "
                 "placed longest-first and with models moving, against one node")
      ->expected(0, 16)
      ->delimiter(',')
      ->default_str("1,2,4,8")
      ->check(CLI::Range(std::size_t{1}, std::size_t{512}))
      ->excludes(nodes)
      ->excludes(move_models)
      ->excludes("--activations")
      ->excludes("--keep-checkpoints")
      ->excludes("--copy-activations-between-devices")
      ->excludes("--keep-forward-activations")
      ->excludes("--write-back-on-eviction")
      ->excludes("--sweep")
      ->excludes("--trace")
      ->excludes("--micro-batches");
  try {
    app.parse(argc, argv);
  } catch (CLI::CallForHelp const&) {
    a.help = app.help();
    return a;
  } catch (CLI::ParseError const& refused) {
    throw hydra::invalid_argument(std::string(refused.what()) + " (see --help)");
  }
  if (a.keep_checkpoints && a.activations == hydra::sim::activation_handoff::through_host)
    throw hydra::invalid_argument("--keep-checkpoints: keeps the checkpoints of activations kept on the device: give "
                                  "--activations kept or kept-and-sent-home");
  if (a.copy_between_devices && a.activations == hydra::sim::activation_handoff::through_host)
    throw hydra::invalid_argument("--copy-activations-between-devices: copies the activations kept on a device: give "
                                  "--activations kept or kept-and-sent-home");
  if (a.take_back != hydra::take_back_rule::none) {
    if (a.prefetch_depth == 0)
      throw hydra::invalid_argument("--take-back: hands back a task queued ahead, which --prefetch-depth 0 does not "
                                    "have: give a depth of at least 1");
    if (a.activations != hydra::sim::activation_handoff::through_host)
      throw hydra::invalid_argument("--take-back: a what-if through host memory only: it does not combine with "
                                    "--activations kept or kept-and-sent-home");
    if (a.nodes > 1 || !a.scale_out.empty())
      throw hydra::invalid_argument("--take-back: a what-if on one node: it does not combine with --nodes or "
                                    "--scale-out");
    if (a.keep_forward_activations)
      throw hydra::invalid_argument("--take-back: a what-if that does not combine with --keep-forward-activations");
  }
  if (a.never_queue_longest && a.prefetch_depth == 0)
    throw hydra::invalid_argument("--never-queue-longest: keeps a task out of the queue ahead, which "
                                  "--prefetch-depth 0 does not have: give a depth of at least 1");
  // A bare number keeps its old meaning, gigabytes.
  auto bytes = hydra::parse_bytes(device_memory);
  if (bytes && device_memory.find_first_not_of("0123456789.") == std::string::npos) *bytes *= 1e9;
  if (!bytes || *bytes < 1.0 || *bytes > 1e15)
    throw hydra::invalid_argument("--device-memory: expected a size from 1B to 1PB such as 80GB or 1.5MiB, got '" +
                                  device_memory + "'");
  a.device_memory_bytes = *bytes;
  a.device_memory_given = app.count("--device-memory") > 0;
  a.link_given = app.count("--link") > 0;
  a.node_link_given = app.count("--node-link") > 0;
  return a;
}

// Whether --activations asks for something the runtime does not do (it keeps
// activations and sends them home, with or without their checkpoints kept).
bool activations_what_if(arguments const& a) {
  return a.activations == hydra::sim::activation_handoff::kept;
}

// The choice of --activations and --keep-checkpoints, in words.
std::string activations_text(arguments const& a) {
  bool const sent_home = a.activations == hydra::sim::activation_handoff::kept_and_sent_home;
  std::string text;
  if (a.keep_checkpoints)
    text = sent_home ? "activations and checkpoints kept on the device, activations sent home"
                     : "activations and checkpoints kept on the device";
  else
    text = sent_home ? "activations kept on the device and sent home" : "activations kept on the device";
  if (a.copy_between_devices) text += ", copied device to device to a reader elsewhere";
  return text;
}

std::uint64_t task_count(hydra::sim::workload const& w) {
  std::uint64_t tasks = 0;
  for (auto const& m : w.models) tasks += 2 * m.shards.size() * m.minibatches;
  return tasks;
}

std::string seconds_text(double s) {
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%.2f h", s / 3600);
  else if (s >= 60)
    std::snprintf(text, sizeof text, "%.1f min", s / 60);
  else if (s >= 1)
    std::snprintf(text, sizeof text, "%.2f s", s);
  else
    std::snprintf(text, sizeof text, "%.2f ms", s * 1e3);
  return text;
}

std::string bytes_text(double b) {
  char text[32];
  if (b >= 1e12)
    std::snprintf(text, sizeof text, "%.2f TB", b / 1e12);
  else if (b >= 1e9)
    std::snprintf(text, sizeof text, "%.1f GB", b / 1e9);
  else if (b >= 1e6)
    std::snprintf(text, sizeof text, "%.1f MB", b / 1e6);
  else if (b >= 1e3)
    std::snprintf(text, sizeof text, "%.1f kB", b / 1e3);
  else
    std::snprintf(text, sizeof text, "%.0f B", b);
  return text;
}

// What the workload came from, for messages: its file, its files, or nothing named.
std::string source(arguments const& a) {
  if (a.workload_files.empty()) return "the workload";
  std::string files;
  for (std::string const& file : a.workload_files) files.append(files.empty() ? "" : ", ").append(file);
  return a.workload_files.size() == 1 ? files : "the median of " + files;
}

hydra::sim::workload load(arguments const& a) {
  hydra::sim::workload w;
  if (!a.workload_files.empty()) {
    hydra::sim::json_defaults defaults;
    defaults.device_count = a.devices.value_or(8);
    defaults.device.budget_bytes = static_cast<std::uint64_t>(a.device_memory_bytes);
    defaults.device.h2d_bytes_per_second = defaults.device.d2h_bytes_per_second = a.link_gbps * 1e9;
    defaults.device.latency_seconds = 15e-6;
    defaults.minibatches = a.minibatches;
    std::vector<hydra::sim::workload> files;
    for (std::string const& file : a.workload_files) {
      files.push_back(hydra::sim::read_workload_json(file, defaults));
      if (files.back().devices.empty()) throw hydra::invalid_argument(file + ": it lists no devices");
    }
    w = hydra::sim::median_workload(files, a.workload_files); // refusals name the files
  } else if (a.random_seed) {
    w = hydra::sim::random_workload(*a.random_seed);
  } else if (a.preset == "paper-sweep") {
    w = hydra::sim::paper_sweep_preset(8, a.devices.value_or(8));
  } else if (a.preset == "mixed") {
    w = hydra::sim::mixed_preset();
  } else if (a.preset == "mixed-large") {
    w = hydra::sim::mixed_preset(4, 4, 80e9);
  } else {
    w = hydra::sim::paper_preset(a.devices.value_or(8));
  }
  // What-if questions: other device counts, memories and links than the workload's.
  // Copies of the first device: a mix of devices would be lost.
  if (a.devices && a.workload_files.empty() && !a.random_seed && a.preset.starts_with("mixed"))
    throw hydra::invalid_argument("--devices: the mixed presets have their own 8 devices of two kinds; write one with "
                                  "--write-workload and edit its device list instead");
  if (a.devices && w.devices.size() != *a.devices)
    w.devices = hydra::sim::identical_devices(*a.devices, w.devices.front());
  for (auto& device : w.devices) {
    if (a.device_memory_given) device.budget_bytes = static_cast<std::uint64_t>(a.device_memory_bytes);
    if (a.link_given) device.h2d_bytes_per_second = device.d2h_bytes_per_second = a.link_gbps * 1e9;
  }
  try {
    hydra::sim::validate(w);
  } catch (hydra::error const& refused) {
    // What the user must mend: the file, or the flags that changed its devices.
    std::string message = source(a);
    std::string flags;
    if (a.devices) flags.append(", --devices ").append(std::to_string(*a.devices));
    if (a.device_memory_given) flags.append(", --device-memory ").append(bytes_text(a.device_memory_bytes));
    if (a.link_given) flags.append(", --link ").append(std::to_string(a.link_gbps));
    if (!flags.empty()) message.append(" with").append(flags.substr(1));
    throw hydra::invalid_argument(message.append(": ").append(refused.what()));
  }
  if (a.shared_gbps) w.shared_host_bytes_per_second = *a.shared_gbps * 1e9;
  if (a.device_link_gbps) w.between_devices.bytes_per_second = *a.device_link_gbps * 1e9;
  if (a.host_cores) w.host_cores = *a.host_cores;
  // Scaling out copies one machine: a workload whose devices already name
  // several nodes is simulated as it is.
  std::size_t const given_nodes = hydra::sim::node_count(w);
  if (given_nodes > 1 && (a.nodes > 1 || !a.scale_out.empty()))
    throw hydra::invalid_argument(std::string(a.nodes > 1 ? "--nodes" : "--scale-out") + ": " + source(a) +
                                  " already has " + std::to_string(given_nodes) +
                                  " nodes; these flags copy one machine");
  if (a.nodes > 1) {
    if (a.nodes > hydra::sim::max_devices / w.devices.size())
      throw hydra::invalid_argument("--nodes " + std::to_string(a.nodes) + " of " + std::to_string(w.devices.size()) +
                                    " devices: above the limit of " + std::to_string(hydra::sim::max_devices) +
                                    " devices");
    w = hydra::sim::on_nodes(std::move(w), a.nodes, {.bytes_per_second = a.node_link_gbps * 1e9});
  } else if (a.node_link_given) {
    w.between_nodes.bytes_per_second = a.node_link_gbps * 1e9;
  }
  if (a.move_models && hydra::sim::node_count(w) == 1)
    throw hydra::invalid_argument("--move-models: the workload's devices are on one node (give --nodes N)");
  for (std::size_t const nodes : a.scale_out)
    if (nodes > hydra::sim::max_devices / w.devices.size())
      throw hydra::invalid_argument("--scale-out " + std::to_string(nodes) + " nodes of " +
                                    std::to_string(w.devices.size()) + " devices: above the limit of " +
                                    std::to_string(hydra::sim::max_devices) + " devices");
  // Each policy simulates every task: at a few million tasks a second, this
  // many keep a run within minutes.
  constexpr std::uint64_t max_tasks = 100'000'000;
  // Every ratio the table prints divides by the lower bound.
  if (!(hydra::sim::lower_bound(w).seconds() > 0)) {
    std::string message = source(a);
    throw hydra::invalid_argument(message.append(": no work to simulate: every shard's forward and backward take 0 s"));
  }
  if (std::uint64_t const tasks = task_count(w); tasks > max_tasks) {
    std::string message = source(a);
    message.append(": ").append(std::to_string(tasks)).append(" tasks (2 x shards x minibatches, over all models), ");
    message.append("above hydra-sim's limit of ").append(std::to_string(max_tasks));
    throw hydra::invalid_argument(message);
  }
  return w;
}

char const* const policies[] = {"sharp", "fifo", "round_robin", "random_pick", "model_parallel"};

char const* evicted_text(hydra::evicted_activations evicted) {
  return evicted == hydra::evicted_activations::spill       ? "spilled home"
         : evicted == hydra::evicted_activations::recompute ? "dropped"
                                                            : "spilled or dropped by cost";
}

// The bound for the activations the arguments keep.
hydra::sim::lower_bound_parts bound_for(hydra::sim::workload const& w, arguments const& a) {
  return hydra::sim::lower_bound(w, a.activations, a.keep_checkpoints && !a.keep_forward_activations,
                                 a.keep_forward_activations, !a.write_back_on_eviction);
}

void print_workload(hydra::sim::workload const& w, std::optional<hydra::sim::lower_bound_parts> given = std::nullopt) {
  auto const bound = given ? *given : hydra::sim::lower_bound(w);
  std::size_t shards = 0;
  for (auto const& m : w.models) shards += m.shards.size();
  std::uint64_t const tasks = task_count(w);
  auto const& first = w.devices.front();
  // Devices of one kind: what the summary lines print of them is the same.
  auto const same_kind = [](hydra::sim::device_spec const& a, hydra::sim::device_spec const& b) {
    return a.budget_bytes == b.budget_bytes && a.h2d_bytes_per_second == b.h2d_bytes_per_second &&
           a.d2h_bytes_per_second == b.d2h_bytes_per_second && a.speed == b.speed;
  };
  bool const alike = std::all_of(w.devices.begin(), w.devices.end(),
                                 [&](hydra::sim::device_spec const& d) { return same_kind(d, first); });
  std::printf("workload: %s\n  %zu models, %zu shards, %llu tasks, %zu devices", w.description.c_str(), w.models.size(),
              shards, static_cast<unsigned long long>(tasks), w.devices.size());
  if (alike)
    std::printf(" of %s, host links %s/s in, %s/s out", bytes_text(static_cast<double>(first.budget_bytes)).c_str(),
                bytes_text(first.h2d_bytes_per_second).c_str(), bytes_text(first.d2h_bytes_per_second).c_str());
  if (alike && first.speed != 1) std::printf(", speed %g", first.speed);
  if (w.shared_host_bytes_per_second > 0)
    std::printf(", shared host link %.0f GB/s", w.shared_host_bytes_per_second / 1e9);
  if (!alike) { // each run of alike devices: count x (memory, speed, links)
    std::printf(" (not alike):");
    for (std::size_t d = 0; d < w.devices.size();) {
      auto const& kind = w.devices[d];
      std::size_t end = d;
      while (end < w.devices.size() && same_kind(w.devices[end], kind)) ++end;
      std::printf("%s %zu x (%s, speed %g, %s/s in, %s/s out)", d == 0 ? "" : ",", end - d,
                  bytes_text(static_cast<double>(kind.budget_bytes)).c_str(), kind.speed,
                  bytes_text(kind.h2d_bytes_per_second).c_str(), bytes_text(kind.d2h_bytes_per_second).c_str());
      d = end;
    }
  }
  std::size_t const nodes = hydra::sim::node_count(w);
  if (nodes > 1) {
    std::vector<std::size_t> per_node(nodes, 0);
    for (auto const& device : w.devices) ++per_node[device.node];
    std::string counts = std::to_string(per_node[0]);
    if (std::any_of(per_node.begin(), per_node.end(), [&](std::size_t n) { return n != per_node[0]; })) {
      counts.clear();
      for (std::size_t const n : per_node) counts.append(counts.empty() ? "" : ", ").append(std::to_string(n));
    }
    std::printf("\n  on %zu nodes of %s devices, joined by %s/s links; each model runs within one node, and each "
                "node has its own host",
                nodes, counts.c_str(), bytes_text(w.between_nodes.bytes_per_second).c_str());
  }
  if (w.launch_seconds > 0)
    std::printf("\n  launches %s each, one at a time%s", seconds_text(w.launch_seconds).c_str(),
                nodes > 1 ? " per node" : "");
  if (w.host_cores > 0)
    std::printf("; %zu host cores%s shared by compute, copies, launches and %s of other host work per task",
                w.host_cores, nodes > 1 ? " per node" : "", seconds_text(w.task_host_seconds).c_str());
  if (w.handoff_seconds > 0)
    std::printf("\n  a completion reaches the launching thread %s after the task's last work",
                seconds_text(w.handoff_seconds).c_str());
  std::printf("\n  lower bound %s = max(classic bound %s, longest chain with its copies and launches %s: %s, "
              "unavoidable copies over the links %s)",
              seconds_text(bound.seconds()).c_str(), seconds_text(bound.classic_seconds()).c_str(),
              seconds_text(bound.chain_with_copies).c_str(), w.models[bound.chain_model].name.c_str(),
              seconds_text(bound.links).c_str());
  if (bound.placed_work > 0)
    std::printf("\n    and the work of shards that fit only some devices, over those devices' speed: %s",
                seconds_text(bound.placed_work).c_str());
  std::printf("\n  classic bound %s = max(work / devices %s, longest chain %s: %s",
              seconds_text(bound.classic_seconds()).c_str(), seconds_text(bound.work_per_device).c_str(),
              seconds_text(bound.longest_chain).c_str(), w.models[bound.longest_model].name.c_str());
  if (bound.host > 0) std::printf(", host %s", seconds_text(bound.host).c_str());
  std::printf(")\n\n");
}

int write_trace(arguments const& a, hydra::sim::report const& sharp) {
  if (!a.trace) return 0;
  std::ofstream out(*a.trace);
  hydra::write_chrome_trace(out, sharp.trace);
  if (!out) throw hydra::error("cannot write the trace to " + *a.trace);
  std::printf("trace of the sharp run: %s (open it in ui.perfetto.dev)\n", a.trace->c_str());
  return 0;
}

char const* take_back_text(hydra::take_back_rule rule) {
  return rule == hydra::take_back_rule::longest ? "for the longest model's next task"
                                                : "for a more urgent model's next task";
}

// What --never-queue-longest and --take-back change, under the workload's description.
void print_look_ahead(arguments const& a) {
  if (a.never_queue_longest)
    std::printf("  look-ahead: the longest model's ready task is never queued behind a busy device\n");
  if (a.take_back != hydra::take_back_rule::none)
    std::printf("  look-ahead (a what-if): a device hands back its queued task, not started yet, %s\n",
                take_back_text(a.take_back));
}

int table(arguments const& a, hydra::sim::workload const& w) {
  print_workload(w, bound_for(w, a));
  print_look_ahead(a);
  if (activations_what_if(a))
    std::printf("  %s: a what-if, the runtime does not do it (the bound counts only the copies this leaves)\n",
                activations_text(a).c_str());
  else if (a.activations != hydra::sim::activation_handoff::through_host)
    std::printf("  %s, as the runtime does with keep_activations%s (the bound counts only the copies this leaves)\n",
                activations_text(a).c_str(),
                a.keep_checkpoints && a.copy_between_devices ? ", keep_activation_checkpoints and "
                                                               "copy_activations_between_devices"
                : a.keep_checkpoints                         ? " and keep_activation_checkpoints"
                : a.copy_between_devices                     ? " and copy_activations_between_devices"
                                                             : "");
  if (a.keep_forward_activations)
    std::printf("  forward activations kept for their backwards, %s when they must leave their device, as the "
                "runtime does with keep_forward_activations (the bound counts each backward without its "
                "recomputation)\n",
                evicted_text(a.evicted));
  if (a.write_back_on_eviction)
    std::printf("  shard updates written home only when evicted or once their model has finished, as the runtime "
                "does with write_back_on_eviction (the bound counts one write-back per shard)\n");
  hydra::sim::options o;
  o.driver.queue_depth = a.prefetch_depth;
  o.driver.never_queue_longest = a.never_queue_longest;
  o.take_back = a.take_back;
  o.move_models = a.move_models;
  o.activations = a.activations;
  o.keep_checkpoints = a.keep_checkpoints;
  o.copy_activations_between_devices = a.copy_between_devices;
  o.keep_forward_activations = a.keep_forward_activations;
  o.write_back_on_eviction = a.write_back_on_eviction;
  o.evicted_forward_activations = a.evicted;
  bool const one_node = hydra::sim::node_count(w) == 1;
  std::vector<hydra::sim::report> reports;
  auto const started = std::chrono::steady_clock::now();
  std::uint64_t simulated = 0;
  // A policy that cannot run this workload gets a row saying why: task_parallel
  // when a model does not fit one device whole; model_parallel (shard s on
  // device s mod D) when shards fit only some devices.
  std::vector<std::pair<std::string, std::string>> gaps;
  std::optional<double> baseline; // model_parallel's makespan
  for (char const* name : policies) {
    hydra::sim::options with_trace = o;
    with_trace.record_trace = a.trace.has_value() && std::string(name) == "sharp";
    try {
      reports.push_back(hydra::sim::simulate(w, std::string(name), with_trace));
    } catch (hydra::error const& e) {
      // Only the baseline that fixes each shard's device may find none it can use.
      if (std::string(name) != "model_parallel") throw;
      gaps.emplace_back(name, one_node ? e.what()
                                       : "it fixes shard s to device s mod D, which may lie outside the node its "
                                         "model runs on");
      continue;
    }
    simulated += reports.back().tasks;
    if (std::string(name) == "model_parallel") baseline = reports.back().makespan_seconds;
  }
  try {
    reports.push_back(hydra::sim::simulate(hydra::sim::as_whole_models(w), std::string("task_parallel"), o));
    reports.back().bound = bound_for(w, a);
    simulated += reports.back().tasks;
  } catch (hydra::does_not_fit const& e) {
    gaps.emplace_back("task_parallel", e.what());
  } catch (hydra::error const& e) {
    // It fixes model m to device m mod D, which may lie outside the model's node.
    if (one_node) throw;
    gaps.emplace_back("task_parallel", "it fixes model m to device m mod D, which may lie outside the node the model "
                                       "runs on");
  }
  double const elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto const versus_baseline = [&](double makespan) {
    char text[32] = "n/a";
    if (baseline) std::snprintf(text, sizeof text, "%.2fx", *baseline / makespan);
    return std::string(text);
  };
  double const bound = bound_for(w, a).seconds();
  double const classic = bound_for(w, a).classic_seconds();

  std::printf("%-22s %12s %9s %9s %12s %12s %16s\n", "policy", "makespan", "/ bound", "/ classic", "utilisation",
              "moved", "vs model_par.");
  for (auto const& r : reports) {
    std::printf("%-22s %12s %8.3f  %8.3f  %11.1f%% %12s %16s\n", r.policy.c_str(),
                seconds_text(r.makespan_seconds).c_str(), r.makespan_seconds / bound, r.makespan_seconds / classic,
                100 * r.mean_utilisation(),
                bytes_text(static_cast<double>(r.bytes_to_device + r.bytes_to_host)).c_str(),
                versus_baseline(r.makespan_seconds).c_str());
  }
  for (auto const& [name, why] : gaps) std::printf("%-22s %12s   (%s)\n", name.c_str(), "n/a", why.c_str());
  if (a.keep_forward_activations)
    for (auto const& r : reports)
      std::printf("%-22s forward activations: %llu kept, %llu backwards recomputed nothing, %llu spilled home, "
                  "%llu given up before any shard\n",
                  r.policy.c_str(), static_cast<unsigned long long>(r.forward_activations_kept),
                  static_cast<unsigned long long>(r.recomputations_avoided),
                  static_cast<unsigned long long>(r.forward_activations_spilled),
                  static_cast<unsigned long long>(r.forward_activations_given_up_first));
  if (a.write_back_on_eviction)
    for (auto const& r : reports)
      std::printf("%-22s %llu shard states written home, %llu fetched\n", r.policy.c_str(),
                  static_cast<unsigned long long>(r.write_backs), static_cast<unsigned long long>(r.fetches));
  if (a.copy_between_devices)
    for (auto const& r : reports)
      std::printf("%-22s %llu activations and checkpoints copied between devices, %s (not in \"moved\")\n",
                  r.policy.c_str(), static_cast<unsigned long long>(r.activations_copied_between_devices),
                  bytes_text(static_cast<double>(r.bytes_between_devices)).c_str());
  for (auto const& r : reports)
    if (!r.moves.empty())
      std::printf("%-22s %zu model%s moved between nodes, %s\n", r.policy.c_str(), r.moves.size(),
                  r.moves.size() == 1 ? "" : "s", bytes_text(static_cast<double>(r.bytes_between_nodes)).c_str());
  if (!one_node) {
    // A pipeline across nodes would need the network between its stages, which it does not model.
    std::printf("pipeline baselines: n/a across nodes\nsimulated %llu tasks in %.3f s\n",
                static_cast<unsigned long long>(simulated), elapsed);
    return write_trace(a, reports[0]);
  }
  std::vector<std::size_t> micro;
  if (a.micro_batches)
    micro.push_back(*a.micro_batches);
  else
    micro = {w.devices.size(), 4 * w.devices.size()};
  // The pipeline baseline models no copies at all, so on a copy-bound workload
  // it can come out below the bound, which counts them: such rows are marked.
  bool below_bound = false;
  for (std::size_t m : micro) {
    auto const p = hydra::sim::pipeline_baseline(w, m);
    std::string const name = "pipeline (M=" + std::to_string(m) + ")";
    bool const below = p.makespan_seconds < bound;
    below_bound = below_bound || below;
    std::printf("%-22s %12s %8.3f%s %8.3f  %11.1f%% %12s %16s\n", name.c_str(),
                seconds_text(p.makespan_seconds).c_str(), p.makespan_seconds / bound, below ? "*" : " ",
                p.makespan_seconds / classic, 100 * (1 - p.bubble_fraction), "(no copies)",
                versus_baseline(p.makespan_seconds).c_str());
  }
  if (below_bound)
    std::printf("* below the lower bound: the pipeline baseline leaves out every copy, which the bound counts\n");
  double const pipeline = hydra::sim::pipeline_baseline(w, w.devices.size()).makespan_seconds;
  double const versus = reports[0].makespan_seconds / pipeline;
  std::printf("\nsharp takes %.2fx the time of the pipeline (M=D): %s%s; simulated %llu tasks in %.3f s (%.1f M "
              "tasks/s)\n",
              versus,
              versus < 1   ? "sharp is faster"
              : versus > 1 ? "sharp is slower"
                           : "the same",
              pipeline < bound ? ", though the pipeline's figure leaves out every copy" : "",
              static_cast<unsigned long long>(simulated), elapsed, static_cast<double>(simulated) / elapsed / 1e6);
  return write_trace(a, reports[0]);
}

// The sweep scaled out: sharp on each node count, models placed longest-first
// and kept there, and with models moving; against the same sweep on one node.
int scale_out(arguments const& a, hydra::sim::workload const& one) {
  print_workload(one);
  print_look_ahead(a);
  hydra::sim::options placed;
  placed.driver.queue_depth = a.prefetch_depth;
  placed.driver.never_queue_longest = a.never_queue_longest;
  hydra::sim::options moving = placed;
  moving.move_models = true;
  hydra::sim::node_link const link{.bytes_per_second = a.node_link_gbps * 1e9};
  double const single = hydra::sim::simulate(one, "sharp", placed).makespan_seconds;
  std::printf("sharp on N nodes of %zu devices, joined by %s/s links; speed-up against one node (%s)\n",
              one.devices.size(), bytes_text(link.bytes_per_second).c_str(), seconds_text(single).c_str());
  std::printf("%6s %8s %12s %12s %8s %12s %8s %9s %9s %7s %12s\n", "nodes", "devices", "bound", "placed", "/ bound",
              "moving", "/ bound", "speed-up", "mov/pl.", "moves", "between");
  for (std::size_t const nodes : a.scale_out) { // each count checked by load()
    auto const w = hydra::sim::on_nodes(one, nodes, link);
    auto const fixed = hydra::sim::simulate(w, "sharp", placed);
    auto const moved = hydra::sim::simulate(w, "sharp", moving);
    double const bound = fixed.bound.seconds();
    std::printf("%6zu %8zu %12s %12s %8.3f %12s %8.3f %8.2fx %9.3f %7zu %12s\n", nodes, w.devices.size(),
                seconds_text(bound).c_str(), seconds_text(fixed.makespan_seconds).c_str(),
                fixed.makespan_seconds / bound, seconds_text(moved.makespan_seconds).c_str(),
                moved.makespan_seconds / bound, single / moved.makespan_seconds,
                moved.makespan_seconds / fixed.makespan_seconds, moved.moves.size(),
                bytes_text(static_cast<double>(moved.bytes_between_nodes)).c_str());
  }
  std::printf("placed: each model on the node longest-first placement gave it; moving: a node short of work also "
              "takes\na model waiting at a minibatch boundary on another (its state crosses the link)\n");
  return 0;
}

int sweep(arguments const& a, std::size_t count) {
  std::vector<std::string> names(std::begin(policies), std::end(policies));
  // model_parallel fixes shard s to device s mod D, which may lie on another node than its model's.
  if (a.nodes > 1) std::erase(names, "model_parallel");
  if (a.move_models && a.nodes == 1)
    throw hydra::invalid_argument("--move-models: the workloads' devices are on one node (give --nodes N)");
  std::vector<std::vector<double>> ratios(names.size()), classic_ratios(names.size());
  hydra::sim::options o;
  o.driver.queue_depth = a.prefetch_depth;
  o.driver.never_queue_longest = a.never_queue_longest;
  o.take_back = a.take_back;
  o.move_models = a.move_models;
  o.activations = a.activations;
  o.keep_checkpoints = a.keep_checkpoints;
  o.copy_activations_between_devices = a.copy_between_devices;
  o.keep_forward_activations = a.keep_forward_activations;
  o.write_back_on_eviction = a.write_back_on_eviction;
  o.evicted_forward_activations = a.evicted;
  for (std::uint64_t seed = 1; seed <= count; ++seed) {
    auto w = hydra::sim::random_workload(seed);
    if (a.shared_gbps) w.shared_host_bytes_per_second = *a.shared_gbps * 1e9;
    if (a.device_link_gbps) w.between_devices.bytes_per_second = *a.device_link_gbps * 1e9;
    if (a.nodes > 1) w = hydra::sim::on_nodes(std::move(w), a.nodes, {.bytes_per_second = a.node_link_gbps * 1e9});
    auto const bound = bound_for(w, a);
    for (std::size_t p = 0; p < names.size(); ++p) {
      double const makespan = hydra::sim::simulate(w, names[p], o, seed).makespan_seconds;
      ratios[p].push_back(makespan / bound.seconds());
      classic_ratios[p].push_back(makespan / bound.classic_seconds());
    }
  }
  std::printf("makespan / lower bound over %zu random workloads (seeds 1..%zu, 1-16 models, 1-8 devices", count, count);
  if (a.activations != hydra::sim::activation_handoff::through_host)
    std::printf(", %s%s", activations_text(a).c_str(), activations_what_if(a) ? " (a what-if)" : "");
  if (a.never_queue_longest) std::printf(", the longest model's task never queued ahead");
  if (a.keep_forward_activations)
    std::printf(", forward activations kept, %s when they must leave (the bound without recomputation)",
                evicted_text(a.evicted));
  if (a.take_back != hydra::take_back_rule::none)
    std::printf(", queued tasks handed back %s (a what-if)", take_back_text(a.take_back));
  if (a.write_back_on_eviction) std::printf(", updates written home when evicted");
  if (a.nodes > 1)
    std::printf(" on each of %zu nodes%s; model_parallel n/a", a.nodes, a.move_models ? ", models moving" : "");
  std::printf(")\n");
  std::printf("%-18s %8s %8s %8s   %s\n", "policy", "min", "median", "max", "(/ classic bound: min median max)");
  for (std::size_t p = 0; p < names.size(); ++p) {
    auto& r = ratios[p];
    auto& c = classic_ratios[p];
    std::sort(r.begin(), r.end());
    std::sort(c.begin(), c.end());
    std::printf("%-18s %8.3f %8.3f %8.3f   (%.3f %.3f %.3f)\n", names[p].c_str(), r.front(), r[r.size() / 2], r.back(),
                c.front(), c[c.size() / 2], c.back());
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    arguments const a = parse(argc, argv);
    if (a.help) {
      std::fputs(a.help->c_str(), stdout);
      return 0;
    }
    if (a.sweep) return sweep(a, *a.sweep);
    auto const w = load(a);
    hydra::sim::validate(w);
    if (a.write_workload) {
      std::ofstream out(*a.write_workload);
      hydra::sim::write_workload_json(out, w);
      if (!out) throw hydra::error("cannot write the workload to " + *a.write_workload);
    }
    if (!a.scale_out.empty()) return scale_out(a, w);
    return table(a, w);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "hydra-sim: %s\n", e.what());
    return 1;
  }
}
