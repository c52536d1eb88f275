// The main job's command line, through CLI11 (Debian: libcli11-dev): typed
// options with their ranges, a generated --help, and errors that name the flag.
// Every number is checked here, before any data is read: a count that would
// wrap around, a negative one, or a size with no finite value never reaches
// the sweep.
#pragma once

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "sweep.hpp"

namespace model_selection {

// What the command line asked for: the options, or an exit with a text to
// print (--help: exit 0).
struct command_line {
  options chosen;
  std::optional<std::string> help; // set: print it and exit 0
};

namespace command_line_detail {

// A size with a unit (hydra::parse_bytes), at least 1 KiB and at most 1 TiB,
// so that nothing downstream multiplies past size_t.
inline std::size_t parse_budget(std::string const& flag, std::string const& text) {
  auto const bytes = hydra::parse_bytes(text);
  if (!bytes) throw hydra::invalid_argument(flag + ": expected a size such as 16MiB or 1.5GiB, got '" + text + "'");
  if (*bytes < 1024.0 || *bytes > 1024.0 * 1024 * 1024 * 1024)
    throw hydra::invalid_argument(flag + ": " + text + " is outside 1KiB to 1024GiB");
  return static_cast<std::size_t>(*bytes);
}

} // namespace command_line_detail

// Parses argv; throws hydra::invalid_argument naming the flag for anything it
// refuses.
inline command_line parse_command_line(int argc, char const* const* argv) {
  command_line out;
  options& o = out.chosen;
  CLI::App app("Searches MLPs (widths x depths x optimizers x learning rates) and small CNNs on Fashion-MNIST\n"
               "(Debian package dataset-fashion-mnist), all trained at once on virtual devices. Models are\n"
               "compared on validation images held out of the training set; the search stops poor ones early;\n"
               "the test set judges only the chosen model.",
               "model_selection");
  app.get_formatter()->column_width(34);
  // Whole numbers: CLI11 refuses a sign, a fraction or a value past the type;
  // the ranges keep every product (epochs x minibatches x models) in range.
  auto const count = [](std::size_t low, std::size_t high) { return CLI::Range(low, high); };

  app.add_option("--search", o.search,
                 "sha: successive halving; asha: its asynchronous form; grid: every model "
                 "trains to the end")
      ->check(CLI::IsMember({"sha", "asha", "grid"}))
      ->capture_default_str();
  app.add_option("--eta", o.eta, "sha, asha: the best 1/eta of each rung go on")
      ->check(count(2, 64))
      ->capture_default_str();
  app.add_option("--lr-schedule", o.schedule, "cosine: every learning rate decays to 0 over --epochs; constant")
      ->check(CLI::IsMember({"cosine", "constant"}))
      ->capture_default_str();
  app.add_option("--backend", o.backend,
                 "host: CPU threads as virtual devices; cuda: GPUs 0..N-1, each with "
                 "--budget of device memory")
      ->check(CLI::IsMember({"host", "cuda"}))
      ->capture_default_str();
  app.add_option("--policy", o.policy, "the scheduling policy")
      ->check(CLI::IsMember({"sharp", "fifo", "round_robin", "random_pick", "model_parallel", "task_parallel"}))
      ->capture_default_str();
  auto* devices = app.add_option("--devices", o.devices, "devices (with --backend cuda the default is every GPU)")
                      ->check(count(1, 1024))
                      ->capture_default_str();
  std::string budget = "16MiB";
  app.add_option("--budget", budget, "memory per device, e.g. 16MiB, 4MiB, 1.5GiB")->capture_default_str();
  app.add_option("--epochs", o.epochs, "passes over the training images for a model that trains to the end")
      ->check(count(1, 1000))
      ->capture_default_str();
  app.add_option("--image-side", o.image_side, "28: full images; 14: 2x2 averaged")
      ->check(CLI::IsMember({std::size_t{28}, std::size_t{14}}))
      ->capture_default_str();
  app.add_option("--train-subset", o.train_subset, "training images used, validation included; 0: all 60000")
      ->check(count(0, 60000))
      ->capture_default_str();
  app.add_option("--validation", o.validation_images,
                 "training images held out to choose with; 0: 5000, or a sixth of a smaller --train-subset")
      ->check(count(0, 60000))
      ->capture_default_str();
  app.add_option("--test-subset", o.test_subset, "test images used; 0: all 10000")
      ->check(count(0, 10000))
      ->capture_default_str();
  app.add_option("--batch", o.batch, "minibatch size")->check(count(1, 10000))->capture_default_str();
  app.add_option("--grid", o.grid,
                 "default: 8 MLPs and 4 CNNs; full: 27 MLPs and 6 CNNs; mlp: 12 MLPs; tiny: 3 small MLPs")
      ->check(CLI::IsMember({"default", "full", "mlp", "tiny"}))
      ->capture_default_str();
  app.add_option("--data-dir", o.data_directory, "where the Fashion-MNIST .gz files are")->capture_default_str();
  app.add_option("--report", o.report_path, "write an HTML report: validation curves, device utilisation, the table");
  app.add_option("--trace", o.trace_path, "write the schedule as a Chrome trace (open it in ui.perfetto.dev)");
  app.add_option("--profile", o.profile_path,
                 "write each model's measured costs and the devices as a workload: hydra-sim --workload FILE "
                 "then asks about other devices, budgets and policies");
  app.add_option("--checkpoint-dir", o.checkpoint_directory,
                 "write an atomic checkpoint of every model and of the search there, about four times per run");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "... or once N more minibatches per model were trained in all (at the models' checkpoints)")
      ->check(count(1, 1'000'000));
  app.add_option("--keep-checkpoints", o.keep_checkpoints,
                 "keep the latest K checkpoint files (a damaged latest falls back to the one before)")
      ->check(count(1, 100))
      ->capture_default_str();
  app.add_option("--round", o.round_minibatches,
                 "under mpirun: minibatches per model between the rounds at which a rank with idle devices takes "
                 "a model from another (0: no moves; default: an epoch)")
      ->check(count(0, 1'000'000));
  app.add_flag("--keep-activations", o.keep_activations,
               "keep each boundary activation on its device too, for the model's next task if it runs there");
  app.add_flag("--keep-activation-checkpoints", o.keep_activation_checkpoints,
               "with --keep-activations: keep each training forward's input on its device too, as the checkpoint "
               "its backward reads if it runs there")
      ->needs("--keep-activations");
  app.add_flag("--copy-activations-between-devices", o.copy_activations_between_devices,
               "with --keep-activations: a kept activation or checkpoint whose reader runs on another device is "
               "copied from the device that kept it, not read from host memory")
      ->needs("--keep-activations");
  app.add_flag("--keep-forward-activations", o.keep_forward_activations,
               "keep each training forward's activations on its device for its backward, which then recomputes "
               "nothing if it runs there (with --keep-activation-checkpoints, the checkpoint is kept beside them, "
               "for a backward that finds them given up)");
  app.add_flag("--write-back-on-eviction", o.write_back_on_eviction,
               "leave each backward's update on its device, written home only when the shard is evicted there or "
               "its model's planned work ends, instead of after every backward");
  app.add_option("--evicted-forward-activations", o.evicted_forward_activations,
                 "with --keep-forward-activations: what becomes of kept forward activations that must leave their "
                 "device: recompute (dropped), spill (copied to host memory and back), or by-cost (spilled where "
                 "the copies take less time than the recomputation, as measured)")
      ->check(CLI::IsMember({"recompute", "spill", "by-cost"}))
      ->needs("--keep-forward-activations")
      ->capture_default_str();
  app.add_flag("--resume", o.resume, "continue from the checkpoint in --checkpoint-dir");
  app.add_flag("--overwrite", o.overwrite, "replace a checkpoint already in --checkpoint-dir (without it, refused)");
  app.add_option("--stop-after", o.stop_after_steps,
                 "stop after the first checkpoint file at or past N minibatches in all (simulates a crash)")
      ->check(count(1, 1'000'000'000));

  try {
    app.parse(argc, argv);
  } catch (CLI::CallForHelp const&) {
    out.help = app.help();
    return out;
  } catch (CLI::ParseError const& refused) {
    throw hydra::invalid_argument(std::string(refused.what()) + " (see --help)");
  }
  o.budget_bytes = command_line_detail::parse_budget("--budget", budget);
  // Host devices take their budgets from this machine's memory, up front.
  if (o.backend == "host") {
    auto const pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    double const physical = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
    double const wanted = static_cast<double>(o.devices) * static_cast<double>(o.budget_bytes);
    if (physical > 0 && wanted > physical)
      throw hydra::invalid_argument("--budget: " + std::to_string(o.devices) + " host devices of " +
                                    hydra::format_bytes(o.budget_bytes) + " need more than this machine's " +
                                    hydra::format_bytes(static_cast<std::size_t>(physical)) + " of memory");
  }
  // On GPUs the natural default is every GPU (one when there are none: the
  // backend then names what is missing).
  if (o.backend == "cuda" && devices->count() == 0 && cuda_device_count != nullptr)
    o.devices = std::max<std::size_t>(1, cuda_device_count());
  return out;
}

} // namespace model_selection
