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
#include <utility>
#include <vector>

#include "hydra/json/chrome_trace.hpp"
#include "hydra/json/profile_json.hpp"

#include "command_line.hpp"
#include "output_file.hpp"
#include "report.hpp"
#include "sweep.hpp"
#if defined(MODEL_SELECTION_WITH_MPI)
#include "across_ranks.hpp"
#endif

#if !defined(MODEL_SELECTION_WITH_MPI)
namespace {

// Started by an MPI launcher with more than one process, in a build without
// hydra::mpi: each process would run the whole job on its own.
std::optional<std::string> launched_by_mpi_without_it() {
  for (char const* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (char const* ranks = std::getenv(name); ranks != nullptr && std::strcmp(ranks, "1") != 0) return ranks;
  return std::nullopt;
}

} // namespace
#endif

int main(int argc, char** argv) {
  int rank = 0, ranks = 1; // this process among the MPI ranks (0 of 1 without mpirun)
#if defined(MODEL_SELECTION_WITH_MPI)
  std::optional<hydra::mpi::environment> mpi;
  if (model_selection::launched_by_mpi()) {
    try {
      mpi.emplace(argc, argv);
      rank = hydra::mpi::rank(MPI_COMM_WORLD);
      ranks = hydra::mpi::size(MPI_COMM_WORLD);
    } catch (std::exception const& e) {
      std::fprintf(stderr, "model_selection: %s\n", e.what());
      return 1;
    }
  }
#endif
  // Only rank 0 speaks: the others' refusals are the same as its own (the
  // ranks agree on every step that can fail on one of them alone).
  bool const speaks = rank == 0;
  try {
#if !defined(MODEL_SELECTION_WITH_MPI)
    if (auto const count = launched_by_mpi_without_it())
      throw hydra::invalid_argument("started by an MPI launcher with " + *count +
                                    " processes, but this build has no MPI support (configure where CMake finds an "
                                    "MPI, such as Debian's libopenmpi-dev): each process would run the whole job");
#endif
    model_selection::command_line command;
    auto const parse = [&] {
      command = model_selection::parse_command_line(argc, argv);
      if (command.chosen.profile_path && ranks > 1)
        throw hydra::invalid_argument("--profile: a profile describes one machine's devices; across " +
                                      std::to_string(ranks) + " MPI ranks it is not available (profile one process)");
    };
#if defined(MODEL_SELECTION_WITH_MPI)
    // Parsing checks this machine's memory too: a rank that refuses alone
    // must not leave the others waiting.
    if (ranks > 1)
      model_selection::on_every_rank(MPI_COMM_WORLD, parse);
    else
      parse();
#else
    parse();
#endif
    if (command.help) {
      if (speaks) std::fputs(command.help->c_str(), stdout);
      return 0;
    }
    auto o = command.chosen;
    // Under mpirun a rank's output is a pipe or a pseudo-terminal of the
    // launcher's, whatever the launcher's own: plain lines.
    o.progress_is_terminal = ranks == 1 && ::isatty(STDOUT_FILENO) != 0;
    auto const grid = model_selection::make_grid(o.grid);
    std::size_t const cnns =
        static_cast<std::size_t>(std::count_if(grid.begin(), grid.end(), [](auto const& g) { return g.is_cnn(); }));
    if (speaks) {
      std::printf("model selection: %zu models (%zu MLPs, %zu CNNs) on Fashion-MNIST (%s), search %s, %zu %s devices "
                  "of %s each%s, policy %s\n",
                  grid.size(), grid.size() - cnns, cnns, o.data_directory.c_str(), o.search.c_str(), o.devices,
                  o.backend.c_str(), hydra::format_bytes(o.budget_bytes).c_str(),
                  ranks > 1 ? (" on each of " + std::to_string(ranks) + " MPI ranks").c_str() : "", o.policy.c_str());
      std::fflush(stdout);
    }
    if (o.report_path && o.report_path == o.trace_path)
      throw hydra::invalid_argument("--report and --trace name the same file, " + *o.trace_path);
    if (o.profile_path && (o.profile_path == o.trace_path || o.profile_path == o.report_path))
      throw hydra::invalid_argument("--profile names the same file as " +
                                    std::string(o.profile_path == o.trace_path ? "--trace" : "--report") + ", " +
                                    *o.profile_path);
    model_selection::output_file report(o.report_path, "--report"), trace(o.trace_path, "--trace"),
        profile(o.profile_path, "--profile");
    auto const wall = std::chrono::steady_clock::now();
    model_selection::outcome result;
#if defined(MODEL_SELECTION_WITH_MPI)
    model_selection::across_ranks_report across;
    if (ranks > 1) {
      auto ours = model_selection::run_on_ranks(o, std::cout, MPI_COMM_WORLD, across);
      if (!ours) return 0; // rank 0 reports
      result = std::move(*ours);
    } else {
      result = model_selection::run(o, std::cout);
    }
#else
    result = model_selection::run(o, std::cout);
#endif
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
    if (ranks == 1) {
      std::printf("\nmakespan %.1f s (this process: %.1f s wall); device busy", result.makespan_seconds, wall_seconds);
      for (double b : result.device_busy_fraction) std::printf(" %.0f%%", 100 * b);
      std::printf("; moved %s to the devices and %s back (%llu shard states written home%s)\n",
                  hydra::format_bytes(result.bytes_to_device).c_str(),
                  hydra::format_bytes(result.bytes_to_host).c_str(),
                  static_cast<unsigned long long>(result.write_backs),
                  o.write_back_on_eviction ? ", at evictions and models' ends" : "");
      std::printf("activations: %s in from host memory, %s sent home",
                  hydra::format_bytes(result.activation_bytes_to_device).c_str(),
                  hydra::format_bytes(result.activation_bytes_to_host).c_str());
      if (o.keep_activations)
        std::printf("; %llu (%s) read where they were kept instead",
                    static_cast<unsigned long long>(result.activations_read_on_device),
                    hydra::format_bytes(result.activation_bytes_read_on_device).c_str());
      if (o.keep_activation_checkpoints)
        std::printf("; %llu checkpoints (%s) read where they were kept",
                    static_cast<unsigned long long>(result.activation_checkpoints_read_on_device),
                    hydra::format_bytes(result.activation_checkpoint_bytes_read_on_device).c_str());
      if (o.copy_activations_between_devices)
        std::printf("; %llu (%s) copied from the device that kept them",
                    static_cast<unsigned long long>(result.activations_copied_between_devices),
                    hydra::format_bytes(result.activation_bytes_copied_between_devices).c_str());
      std::printf("\n");
      if (o.keep_forward_activations)
        std::printf("forward activations: %llu kept for their backward, %llu recomputations avoided; %s spilled to "
                    "host memory, %s read back; %llu given up before any shard (cheaper to recompute than to "
                    "fetch their bytes again)\n",
                    static_cast<unsigned long long>(result.forward_activations_kept),
                    static_cast<unsigned long long>(result.recomputations_avoided),
                    hydra::format_bytes(result.forward_activation_bytes_spilled).c_str(),
                    hydra::format_bytes(result.forward_activation_bytes_read_back).c_str(),
                    static_cast<unsigned long long>(result.forward_activations_given_up_first));
    }
#if defined(MODEL_SELECTION_WITH_MPI)
    if (ranks > 1) {
      std::uint64_t moved_bytes = 0;
      for (auto const& move : across.moves) moved_bytes += move.bytes;
      std::printf("\nsweep %.1f s on %zu ranks (this process: %.1f s wall), %zu rounds, %zu models moved between ranks "
                  "(%s); moved %s to the devices and %s back\n",
                  result.makespan_seconds, across.ranks, wall_seconds, across.rounds, across.moves.size(),
                  hydra::format_bytes(moved_bytes).c_str(), hydra::format_bytes(result.bytes_to_device).c_str(),
                  hydra::format_bytes(result.bytes_to_host).c_str());
      for (std::size_t r = 0; r < across.summaries.size(); ++r) {
        auto const& summary = across.summaries[r];
        std::size_t started_here = 0;
        for (std::size_t m = 0; m < across.rank_of.size(); ++m) started_here += across.starting_rank[m] == r ? 1 : 0;
        std::printf("  rank %zu on %s: %zu devices, trained %.1f s, %zu models placed, %zu at the end, %llu taken from "
                    "other ranks%s\n",
                    r, summary.host.c_str(), summary.devices, std::chrono::duration<double>(summary.busy).count(),
                    started_here, summary.models.size(), static_cast<unsigned long long>(summary.models_moved_in),
                    summary.error ? (", ended early: " + *summary.error).c_str() : "");
      }
    }
#endif
    if (report.wanted()) {
      std::size_t devices = o.devices;
      std::string where;
#if defined(MODEL_SELECTION_WITH_MPI)
      if (ranks > 1) {
        devices = across.devices;
        where = " on each of " + std::to_string(ranks) + " MPI ranks (devices numbered rank by rank)";
      }
#endif
      model_selection::write_html_report(report.stream(), result,
                                         {.title = std::to_string(grid.size()) + " configurations, search " + o.search +
                                                   ", " + std::to_string(o.devices) + " " + o.backend + " devices of " +
                                                   hydra::format_bytes(o.budget_bytes) + where + ", policy " + o.policy,
                                          .devices = devices,
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
    if (speaks) std::fprintf(stderr, "model_selection: %s\n", e.what());
    return 1;
  }
}
