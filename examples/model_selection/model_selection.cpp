// The main job: a model-selection sweep of MLPs on Fashion-MNIST, every model
// larger than its virtual device, trained at once with shard parallelism and
// spilling. `model_selection --help` lists the flags.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>

#include "report.hpp"
#include "sweep.hpp"

namespace {

constexpr char const* usage = R"(usage: model_selection [options]
Searches MLPs (widths x depths x optimizers x learning rates) and small CNNs on Fashion-MNIST
(Debian package dataset-fashion-mnist), all trained at once on virtual devices.
Models are compared on validation images held out of the training set; the
search stops poor ones early; the test set judges only the chosen model.

  --search sha|asha|grid   sha: successive halving (default); asha: its asynchronous
                           form; grid: every model trains to the end
  --eta N                  sha, asha: the best 1/N of each rung go on (default 3)
  --lr-schedule NAME       cosine: the learning rate decays to 0 over --epochs (default);
                           constant
  --backend host|cuda      where to train (default host: CPU threads as virtual devices;
                           cuda: GPUs 0..N-1, each with --budget of device memory)
  --policy NAME            sharp (default), fifo, round_robin, random_pick, model_parallel
  --devices N              devices (default 2; with --backend cuda, every GPU)
  --budget BYTES           memory per device, e.g. 16MiB, 4MiB (default 16MiB)
  --epochs N               passes over the training images for a model that trains to the end (default 8)
  --image-side 28|14       full images, or 2x2 averaged to 14x14 (default 28)
  --train-subset N         training images used, validation included; 0 for all 60000 (default 0)
  --validation N           training images held out to choose with (default 5000, or a
                           sixth of a smaller --train-subset)
  --test-subset N          test images used, 0 for all 10000 (default 0)
  --batch N                minibatch size (default 64)
  --grid default|full|tiny 8 MLPs and 4 CNNs, 27 MLPs and 6 CNNs, or 3 small MLPs
                           (default: default)
  --data-dir DIR           where the .gz files are (default /usr/share/datasets/fashion-mnist)
  --report FILE            write an HTML report there: validation curves, device utilisation, the table
  --trace FILE             write the schedule as a Chrome trace (open in ui.perfetto.dev)
  --checkpoint-dir DIR     (--search grid) write an atomic checkpoint of every model there, four times per run
  --checkpoint-every N     ... or every N minibatches per model
  --resume                 continue from the checkpoint in --checkpoint-dir
  --stop-after N           stop after the first checkpoint at or past minibatch N (simulates a crash)
  --help                   this text
)";

std::size_t parse_count(std::string const& flag, std::string const& text) {
  char* end = nullptr;
  unsigned long long const value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0')
    throw hydra::invalid_argument(flag + ": expected a whole number, got '" + text + "'");
  return static_cast<std::size_t>(value);
}

std::size_t parse_bytes(std::string const& flag, std::string const& text) {
  char* end = nullptr;
  double const value = std::strtod(text.c_str(), &end);
  std::string const unit = end ? end : "";
  double scale = 1;
  if (unit == "KiB")
    scale = 1024;
  else if (unit == "MiB")
    scale = 1024 * 1024;
  else if (unit == "GiB")
    scale = 1024.0 * 1024 * 1024;
  else if (!unit.empty() && unit != "B")
    throw hydra::invalid_argument(flag + ": unknown unit '" + unit + "' (B, KiB, MiB, GiB)");
  if (end == text.c_str() || !(value > 0))
    throw hydra::invalid_argument(flag + ": expected a size, got '" + text + "'");
  return static_cast<std::size_t>(value * scale);
}

model_selection::options parse(int argc, char** argv) {
  model_selection::options o;
  bool devices_given = false;
  for (int k = 1; k < argc; ++k) {
    std::string const flag = argv[k];
    if (flag == "--help" || flag == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (flag == "--resume") {
      o.resume = true;
      continue;
    }
    if (k + 1 >= argc) throw hydra::invalid_argument(flag + ": unknown flag or missing value (see --help)");
    std::string const value = argv[++k];
    if (flag == "--backend")
      o.backend = value;
    else if (flag == "--policy")
      o.policy = value;
    else if (flag == "--devices")
      o.devices = parse_count(flag, value), devices_given = true;
    else if (flag == "--budget")
      o.budget_bytes = parse_bytes(flag, value);
    else if (flag == "--epochs")
      o.epochs = parse_count(flag, value);
    else if (flag == "--train-subset")
      o.train_subset = parse_count(flag, value);
    else if (flag == "--test-subset")
      o.test_subset = parse_count(flag, value);
    else if (flag == "--batch")
      o.batch = parse_count(flag, value);
    else if (flag == "--grid")
      o.grid = value;
    else if (flag == "--search")
      o.search = value;
    else if (flag == "--lr-schedule")
      o.schedule = value;
    else if (flag == "--eta")
      o.eta = parse_count(flag, value);
    else if (flag == "--image-side")
      o.image_side = parse_count(flag, value);
    else if (flag == "--validation")
      o.validation_images = parse_count(flag, value);
    else if (flag == "--data-dir")
      o.data_directory = value;
    else if (flag == "--report")
      o.report_path = value;
    else if (flag == "--trace")
      o.trace_path = value;
    else if (flag == "--checkpoint-dir")
      o.checkpoint_directory = value;
    else if (flag == "--checkpoint-every")
      o.checkpoint_every = parse_count(flag, value);
    else if (flag == "--stop-after")
      o.stop_after_steps = parse_count(flag, value);
    else
      throw hydra::invalid_argument("unknown flag " + flag + " (see --help)");
  }
  // On GPUs the natural default is every GPU (one when there are none: the
  // backend then names what is missing).
  if (o.backend == "cuda" && !devices_given && model_selection::cuda_device_count != nullptr)
    o.devices = std::max<std::size_t>(1, model_selection::cuda_device_count());
  return o;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto o = parse(argc, argv);
    o.progress_is_terminal = ::isatty(STDOUT_FILENO) != 0;
    auto const grid = model_selection::make_grid(o.grid);
    std::size_t const cnns =
        static_cast<std::size_t>(std::count_if(grid.begin(), grid.end(), [](auto const& g) { return g.is_cnn(); }));
    std::printf("model selection: %zu models (%zu MLPs, %zu CNNs) on Fashion-MNIST (%s), search %s, %zu %s devices of "
                "%s each, policy %s\n",
                grid.size(), grid.size() - cnns, cnns, o.data_directory.c_str(), o.search.c_str(), o.devices,
                o.backend.c_str(), hydra::format_bytes(o.budget_bytes).c_str(), o.policy.c_str());
    std::fflush(stdout);
    // Opened (and emptied) now: an unusable path fails before the training, not after it.
    std::ofstream report;
    if (o.report_path) {
      report.open(*o.report_path);
      if (!report) throw hydra::error("--report: cannot write " + *o.report_path + ": " + std::strerror(errno));
    }
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
    if (o.report_path) {
      model_selection::write_html_report(report, result,
                                         {.title = std::to_string(grid.size()) + " configurations, search " + o.search +
                                                   ", " + std::to_string(o.devices) + " " + o.backend + " devices of " +
                                                   hydra::format_bytes(o.budget_bytes) + ", policy " + o.policy,
                                          .devices = o.devices,
                                          .total_steps = result.total_steps,
                                          .order = order});
      report.close();
      if (!report) throw hydra::error("--report: writing " + *o.report_path + " failed: " + std::strerror(errno));
      std::printf("report: %s\n", o.report_path->c_str());
    }
    if (o.trace_path) {
      std::ofstream out(*o.trace_path);
      hydra::write_chrome_trace(out, result.trace);
      if (!out) throw hydra::error("cannot write the trace to " + *o.trace_path);
      std::printf("trace: %s (open it in ui.perfetto.dev)\n", o.trace_path->c_str());
    }
    return 0;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "model_selection: %s\n", e.what());
    return 1;
  }
}
