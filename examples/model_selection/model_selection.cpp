// The main job: a model-selection sweep of MLPs and CNNs on Fashion-MNIST, every model
// larger than its virtual device, trained at once with shard parallelism and
// spilling. `model_selection --help` lists the flags.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "hydra/json/chrome_trace.hpp"
#include "hydra/json/profile_json.hpp"

#include "command_line.hpp"
#include "output_file.hpp"
#include "report.hpp"
#include "sweep.hpp"

int main(int argc, char** argv) {
  try {
    auto const command = model_selection::parse_command_line(argc, argv);
    if (command.help) {
      std::fputs(command.help->c_str(), stdout);
      return 0;
    }
    auto o = command.chosen;
    o.progress_is_terminal = ::isatty(STDOUT_FILENO) != 0;
    auto const grid = model_selection::make_grid(o.grid);
    std::size_t const cnns =
        static_cast<std::size_t>(std::count_if(grid.begin(), grid.end(), [](auto const& g) { return g.is_cnn(); }));
    std::printf("model selection: %zu models (%zu MLPs, %zu CNNs) on Fashion-MNIST (%s), search %s, %zu %s devices of "
                "%s each, policy %s\n",
                grid.size(), grid.size() - cnns, cnns, o.data_directory.c_str(), o.search.c_str(), o.devices,
                o.backend.c_str(), hydra::format_bytes(o.budget_bytes).c_str(), o.policy.c_str());
    std::fflush(stdout);
    if (o.report_path && o.report_path == o.trace_path)
      throw hydra::invalid_argument("--report and --trace name the same file, " + *o.trace_path);
    if (o.profile_path && (o.profile_path == o.trace_path || o.profile_path == o.report_path))
      throw hydra::invalid_argument("--profile names the same file as " +
                                    std::string(o.profile_path == o.trace_path ? "--trace" : "--report") + ", " +
                                    *o.profile_path);
    model_selection::output_file report(o.report_path, "--report"), trace(o.trace_path, "--trace"),
        profile(o.profile_path, "--profile");
    auto const wall = std::chrono::steady_clock::now();
    auto const result = model_selection::run(o, std::cout);
    double const wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();
    if (result.stopped_early) {
      std::printf("stopped after a checkpoint, as asked (--stop-after); continue with --resume\n");
      return 0;
    }
    auto const order = model_selection::ranked(result.models);
    int width = 5;
    for (auto const& m : result.models) width = std::max(width, static_cast<int>(m.config.name().size()));
    std::printf("\n%-4s %-*s %8s %8s %10s %9s  %s\n", "rank", width, "model", "val acc", "val loss", "minibatch",
                "test acc*", "how far it got");
    std::size_t rank = 0;
    for (std::size_t k : order) {
      auto const& m = result.models[k];
      std::string how = m.failure ? "failed: " + *m.failure : m.stopped_early ? *m.stopped_early : "trained to the end";
      if (result.chosen == k) how = "CHOSEN; " + how;
      char test[16] = "-";
      if (m.tested) std::snprintf(test, sizeof test, "%.2f%%", 100 * m.test_accuracy);
      if (m.validation)
        std::printf("%-4zu %-*s %7.2f%% %8.4f %10zu %9s  %s\n", ++rank, width, m.config.name().c_str(),
                    100 * m.validation->accuracy, m.validation->loss, m.steps, test, how.c_str());
      else
        std::printf("%-4zu %-*s %8s %8s %10zu %9s  %s\n", ++rank, width, m.config.name().c_str(), "-", "-", m.steps,
                    test, how.c_str());
    }
    std::printf("* test accuracy: only the chosen model's is its result; the others' are shown for reference and "
                "were never used to choose\n");
    if (result.chosen) {
      auto const& c = result.models[*result.chosen];
      std::printf("\nchosen: %s, validation accuracy %.2f%% on %zu held-out images; ", c.config.name().c_str(),
                  100 * c.validation->accuracy, result.validation_images);
      if (c.tested)
        std::printf("test accuracy %.2f%% on %zu test images\n", 100 * c.test_accuracy, result.test_images);
      else // a resume of a run that had already ended: nothing trained or tested in this process
        std::printf("not tested in this run (the checkpoint's run had ended)\n");
    }
    std::printf("compute: %zu minibatches trained and %zu validated, by all models together\n",
                result.minibatches_trained, result.minibatches_evaluated);
    std::printf("\nmakespan %.1f s (this process: %.1f s wall); device busy", result.makespan_seconds, wall_seconds);
    for (double b : result.device_busy_fraction) std::printf(" %.0f%%", 100 * b);
    std::printf("; moved %s to the devices and %s back\n", hydra::format_bytes(result.bytes_to_device).c_str(),
                hydra::format_bytes(result.bytes_to_host).c_str());
    if (report.wanted()) {
      model_selection::write_html_report(report.stream(), result,
                                         {.title = std::to_string(grid.size()) + " configurations, search " + o.search +
                                                   ", " + std::to_string(o.devices) + " " + o.backend + " devices of " +
                                                   hydra::format_bytes(o.budget_bytes) + ", policy " + o.policy,
                                          .devices = o.devices,
                                          .total_steps = result.total_steps,
                                          .order = order});
      report.commit();
      std::printf("report: %s\n", report.path().c_str());
    }
    if (trace.wanted()) {
      hydra::write_chrome_trace(trace.stream(), result.trace);
      trace.commit();
      std::printf("trace: %s (open it in ui.perfetto.dev)\n", trace.path().c_str());
    }
    if (profile.wanted()) {
      hydra::write_profile_json(profile.stream(), result.profile);
      profile.commit();
      std::printf("profile: %s (simulate it: hydra-sim --workload %s --minibatches N)\n", profile.path().c_str(),
                  profile.path().c_str());
    }
    return 0;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "model_selection: %s\n", e.what());
    return 1;
  }
}
