// hydra-sim: runs a workload under every built-in policy and baseline in the
// simulator and prints one table; or the ratio-to-lower-bound distribution over
// many random workloads. See --help.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"

namespace {

constexpr char const* usage = R"(usage: hydra-sim [workload] [options]

Simulates a model-selection sweep under every built-in policy (sharp, fifo,
round_robin, random_pick, model_parallel, task_parallel) and a GPipe-style
pipeline, and prints makespan, ratio to the lower bound, mean device
utilisation, bytes moved and speedup over model_parallel.

workload (one of):
  --preset paper          12 transformer models on 8 H100-class devices (default)
  --random SEED           a seeded random workload of mixed sizes
  --workload FILE         a JSON workload, or a profile written by the runtime
                          (multi_model_trainer::write_profile)
options:
  --devices N             device count (overrides the workload's; a profile needs it)
  --device-memory GB      memory per device, for a profile (default 80)
  --link GBPS             host link per direction, for a profile (default 50)
  --minibatches N         minibatches per model, for a profile (default 100)
  --shared-host-link GBPS all copies share this aggregate host bandwidth
  --prefetch-depth K      tasks queued per device behind the running one (default 1)
  --micro-batches M       the pipeline's micro-batches (default: D and 4D)
  --trace FILE            write the sharp run as a Chrome trace (ui.perfetto.dev)
  --write-workload FILE   write the workload as JSON (a starting point for your own)
  --sweep N               instead of one table: N random workloads (seeds 1..N),
                          min/median/max of each policy's makespan / lower bound
  --help                  this text
)";

struct arguments {
  std::string preset = "paper";
  std::optional<std::uint64_t> random_seed;
  std::optional<std::string> workload_file;
  std::optional<std::size_t> devices;
  double device_memory_gb = 80, link_gbps = 50;
  std::size_t minibatches = 100;
  std::optional<double> shared_gbps;
  std::size_t prefetch_depth = 1;
  std::optional<std::size_t> micro_batches;
  std::optional<std::string> trace, write_workload;
  std::optional<std::size_t> sweep;
};

double parse_number(std::string const& flag, char const* text) {
  char* end = nullptr;
  double const value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= 0))
    throw hydra::invalid_argument(flag + ": expected a number >= 0, got '" + text + "'");
  return value;
}

arguments parse(int argc, char** argv) {
  arguments a;
  for (int k = 1; k < argc; ++k) {
    std::string const flag = argv[k];
    if (flag == "--help" || flag == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (k + 1 >= argc) throw hydra::invalid_argument(flag + ": unknown flag or missing value (see --help)");
    char const* value = argv[++k];
    auto count = [&] { return static_cast<std::size_t>(parse_number(flag, value)); };
    if (flag == "--preset") {
      a.preset = value;
      if (a.preset != "paper") throw hydra::invalid_argument("--preset: the only preset is 'paper'");
    } else if (flag == "--random") {
      a.random_seed = count();
    } else if (flag == "--workload") {
      a.workload_file = value;
    } else if (flag == "--devices") {
      a.devices = count();
      if (*a.devices == 0) throw hydra::invalid_argument("--devices: device count is 0; at least 1 is required");
    } else if (flag == "--device-memory") {
      a.device_memory_gb = parse_number(flag, value);
    } else if (flag == "--link") {
      a.link_gbps = parse_number(flag, value);
    } else if (flag == "--minibatches") {
      a.minibatches = count();
    } else if (flag == "--shared-host-link") {
      a.shared_gbps = parse_number(flag, value);
    } else if (flag == "--prefetch-depth") {
      a.prefetch_depth = count();
    } else if (flag == "--micro-batches") {
      a.micro_batches = count();
    } else if (flag == "--trace") {
      a.trace = value;
    } else if (flag == "--write-workload") {
      a.write_workload = value;
    } else if (flag == "--sweep") {
      a.sweep = count();
    } else {
      throw hydra::invalid_argument("unknown flag " + flag + " (see --help)");
    }
  }
  return a;
}

hydra::sim::workload load(arguments const& a) {
  hydra::sim::workload w;
  if (a.workload_file) {
    hydra::sim::json_defaults defaults;
    defaults.device_count = a.devices.value_or(8);
    defaults.device.budget_bytes = static_cast<std::uint64_t>(a.device_memory_gb * 1e9);
    defaults.device.h2d_bytes_per_second = defaults.device.d2h_bytes_per_second = a.link_gbps * 1e9;
    defaults.device.latency_seconds = 15e-6;
    defaults.minibatches = a.minibatches;
    w = hydra::sim::read_workload_json(*a.workload_file, defaults);
  } else if (a.random_seed) {
    w = hydra::sim::random_workload(*a.random_seed);
  } else {
    w = hydra::sim::paper_preset(a.devices.value_or(8));
  }
  if (a.devices && w.devices.size() != *a.devices)
    w.devices = hydra::sim::identical_devices(*a.devices, w.devices.front());
  if (a.shared_gbps) w.shared_host_bytes_per_second = *a.shared_gbps * 1e9;
  return w;
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
  else
    std::snprintf(text, sizeof text, "%.1f MB", b / 1e6);
  return text;
}

char const* const policies[] = {"sharp", "fifo", "round_robin", "random_pick", "model_parallel"};

void print_workload(hydra::sim::workload const& w) {
  auto const bound = hydra::sim::lower_bound(w);
  std::size_t shards = 0;
  std::uint64_t tasks = 0;
  for (auto const& m : w.models) {
    shards += m.shards.size();
    tasks += 2 * m.shards.size() * m.minibatches;
  }
  std::printf("workload: %s\n  %zu models, %zu shards, %llu tasks, %zu devices of %s", w.description.c_str(),
              w.models.size(), shards, static_cast<unsigned long long>(tasks), w.devices.size(),
              bytes_text(static_cast<double>(w.devices.front().budget_bytes)).c_str());
  if (w.shared_host_bytes_per_second > 0)
    std::printf(", shared host link %.0f GB/s", w.shared_host_bytes_per_second / 1e9);
  std::printf("\n  lower bound %s = max(work / devices %s, longest chain %s: %s)\n\n",
              seconds_text(bound.seconds()).c_str(), seconds_text(bound.work_per_device).c_str(),
              seconds_text(bound.longest_chain).c_str(), w.models[bound.longest_model].name.c_str());
}

int table(arguments const& a, hydra::sim::workload const& w) {
  print_workload(w);
  hydra::sim::options o;
  o.driver.queue_depth = a.prefetch_depth;
  std::vector<hydra::sim::report> reports;
  auto const started = std::chrono::steady_clock::now();
  std::uint64_t simulated = 0;
  for (char const* name : policies) {
    hydra::sim::options with_trace = o;
    with_trace.record_trace = a.trace.has_value() && std::string(name) == "sharp";
    reports.push_back(hydra::sim::simulate(w, std::string(name), with_trace));
    simulated += reports.back().tasks;
  }
  std::optional<std::string> task_parallel_gap;
  try {
    reports.push_back(hydra::sim::simulate(hydra::sim::as_whole_models(w), std::string("task_parallel"), o));
    reports.back().bound = hydra::sim::lower_bound(w);
    simulated += reports.back().tasks;
  } catch (hydra::does_not_fit const& e) {
    task_parallel_gap = e.what();
  }
  double const elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  double const baseline = reports[4].makespan_seconds; // model_parallel
  double const bound = hydra::sim::lower_bound(w).seconds();

  std::printf("%-22s %12s %9s %12s %12s %16s\n", "policy", "makespan", "/ bound", "utilisation", "moved",
              "vs model_par.");
  for (auto const& r : reports) {
    std::printf("%-22s %12s %9.3f %11.1f%% %12s %15.2fx\n", r.policy.c_str(), seconds_text(r.makespan_seconds).c_str(),
                r.makespan_seconds / bound, 100 * r.mean_utilisation(),
                bytes_text(static_cast<double>(r.bytes_to_device + r.bytes_to_host)).c_str(),
                baseline / r.makespan_seconds);
  }
  if (task_parallel_gap) std::printf("%-22s %12s   (%s)\n", "task_parallel", "n/a", task_parallel_gap->c_str());
  std::vector<std::size_t> micro;
  if (a.micro_batches)
    micro.push_back(*a.micro_batches);
  else
    micro = {w.devices.size(), 4 * w.devices.size()};
  for (std::size_t m : micro) {
    auto const p = hydra::sim::pipeline_baseline(w, m);
    std::string const name = "pipeline (M=" + std::to_string(m) + ")";
    std::printf("%-22s %12s %9.3f %11.1f%% %12s %15.2fx\n", name.c_str(), seconds_text(p.makespan_seconds).c_str(),
                p.makespan_seconds / bound, 100 * (1 - p.bubble_fraction), "(none)", baseline / p.makespan_seconds);
  }
  std::printf("\nsharp vs pipeline: %.2fx (M=D) faster; simulated %llu tasks in %.3f s (%.1f M tasks/s)\n",
              hydra::sim::pipeline_baseline(w, w.devices.size()).makespan_seconds / reports[0].makespan_seconds,
              static_cast<unsigned long long>(simulated), elapsed, static_cast<double>(simulated) / elapsed / 1e6);
  if (a.trace) {
    std::ofstream out(*a.trace);
    hydra::write_chrome_trace(out, reports[0].trace);
    if (!out) throw hydra::error("cannot write the trace to " + *a.trace);
    std::printf("trace of the sharp run: %s (open it in ui.perfetto.dev)\n", a.trace->c_str());
  }
  return 0;
}

int sweep(arguments const& a, std::size_t count) {
  std::vector<std::string> names(std::begin(policies), std::end(policies));
  std::vector<std::vector<double>> ratios(names.size());
  hydra::sim::options o;
  o.driver.queue_depth = a.prefetch_depth;
  for (std::uint64_t seed = 1; seed <= count; ++seed) {
    auto w = hydra::sim::random_workload(seed);
    if (a.shared_gbps) w.shared_host_bytes_per_second = *a.shared_gbps * 1e9;
    double const bound = hydra::sim::lower_bound(w).seconds();
    for (std::size_t p = 0; p < names.size(); ++p)
      ratios[p].push_back(hydra::sim::simulate(w, names[p], o, seed).makespan_seconds / bound);
  }
  std::printf("makespan / lower bound over %zu random workloads (seeds 1..%zu, 1-16 models, 1-8 devices)\n", count,
              count);
  std::printf("%-18s %8s %8s %8s\n", "policy", "min", "median", "max");
  for (std::size_t p = 0; p < names.size(); ++p) {
    auto& r = ratios[p];
    std::sort(r.begin(), r.end());
    std::printf("%-18s %8.3f %8.3f %8.3f\n", names[p].c_str(), r.front(), r[r.size() / 2], r.back());
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    arguments const a = parse(argc, argv);
    if (a.sweep) return sweep(a, *a.sweep);
    auto const w = load(a);
    hydra::sim::validate(w);
    if (a.write_workload) {
      std::ofstream out(*a.write_workload);
      hydra::sim::write_workload_json(out, w);
      if (!out) throw hydra::error("cannot write the workload to " + *a.write_workload);
    }
    return table(a, w);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "hydra-sim: %s\n", e.what());
    return 1;
  }
}
