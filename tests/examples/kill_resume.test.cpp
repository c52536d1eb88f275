// The main job killed with SIGKILL at seeded random moments (a checkpoint is
// written at every model's checkpoint, so some kills land during a write),
// then resumed each time: the final weights and optimizer state of every model
// equal an uninterrupted run's, bitwise, as its last checkpoint file records
// them. The job runs as its own process, as a user runs it.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "hydra/train/checkpoint_directory.hpp"
#include "support/child_process.hpp"
#include "support/scratch.hpp"

namespace fs = std::filesystem;

namespace {

// Runs the job with `arguments` (output appended to `log`); kills it after
// `kill_after` if it is still running then. Returns its exit status, or -1 if
// it was killed.
int run_job(std::vector<std::string> const& arguments, fs::path const& log, std::chrono::milliseconds kill_after) {
  auto const end = hydra::testing::run_child(HYDRA_MODEL_SELECTION_BINARY, arguments,
                                             {.log = log, .append_to_log = true, .deadline = kill_after});
  return end.killed() ? -1 : end.status;
}

std::vector<std::string> job(fs::path const& directory) {
  return {"--grid",
          "tiny",
          "--train-subset",
          "2400",
          "--test-subset",
          "320",
          "--epochs",
          "3",
          "--batch",
          "32",
          "--image-side",
          "14",
          "--budget",
          "800KiB",
          "--search",
          "grid",
          "--checkpoint-dir",
          directory.string(),
          "--checkpoint-every",
          "1"};
}

} // namespace

TEST_CASE("the main job killed at random moments and resumed each time ends with the uninterrupted weights") {
  auto const scratch = hydra::testing::scratch_directory("kill_resume");
  auto const log = scratch / "log.txt";
  auto const whole_directory = scratch / "whole", killed_directory = scratch / "killed";
  constexpr std::chrono::hours never{1};
  auto const started = std::chrono::steady_clock::now();
  REQUIRE(run_job(job(whole_directory), log, never) == 0);
  auto whole_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  auto const whole = hydra::checkpoint_directory(whole_directory.string()).load().checkpoint;

  // Kill moments between a tenth and nine tenths of an uninterrupted run, on
  // any machine; seeded, so that a failure can be run again.
  std::mt19937 random(20261201);
  std::uniform_real_distribution<double> fraction(0.1, 0.9);
  auto const moment_ms = [&](std::mt19937& r) {
    return static_cast<std::chrono::milliseconds::rep>(fraction(r) * whole_ms) + 1;
  };
  // Until at least 3 kills, 2 of them of runs that had resumed from a
  // checkpoint: a run that ends before its kill moment (the machine got
  // faster: under ctest -j the first run may have shared the cores with
  // another test) starts the sequence again in an empty directory; a whole
  // run's time, measured again, is what later moments are drawn against (and
  // a kill before any checkpoint was written draws them later).
  int kills = 0, resumed_kills = 0, attempts = 0, restarts = 0;
  while ((kills < 3 || resumed_kills < 2) && attempts < 60) {
    ++attempts;
    auto arguments = job(killed_directory);
    bool const resuming = hydra::checkpoint_directory::holds_checkpoint(killed_directory.string());
    if (resuming) arguments.push_back("--resume");
    auto const run_started = std::chrono::steady_clock::now();
    // A resumed run has only the rest of the work left: drawn against the
    // whole run, its moment often came after it had finished (then the
    // sequence starts again, and 60 attempts could pass without two resumed
    // kills), so its moments are drawn against 0.6 of a whole run.
    auto const moment = moment_ms(random);
    int const ended = run_job(
        arguments, log, std::chrono::milliseconds(resuming ? std::max<decltype(moment)>(1, moment * 3 / 5) : moment));
    if (ended == -1) {
      ++kills;
      resumed_kills += resuming ? 1 : 0;
      // Killed before its first checkpoint: the runs may have become slower
      // than the one measured, so later moments are drawn a little later.
      if (!hydra::checkpoint_directory::holds_checkpoint(killed_directory.string())) whole_ms *= 1.5;
      continue;
    }
    INFO("the job's output: " << log.string());
    REQUIRE(ended == 0);
    if (!resuming)
      whole_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - run_started).count();
    fs::remove_all(killed_directory);
    kills = resumed_kills = 0;
    ++restarts;
  }
  REQUIRE(kills >= 3);
  REQUIRE(resumed_kills >= 2);
  // A temporary file left behind (removed, and said, by the next run): killed while writing.
  std::size_t interrupted_writes = 0;
  {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);)
      interrupted_writes += line.find("a write interrupted by a crash") != std::string::npos ? 1 : 0;
  }
  MESSAGE(kills << " kills (" << resumed_kills << " of resumed runs) in " << attempts << " runs, " << restarts
                << " sequences started again (an uninterrupted run: " << whole_ms << " ms); " << interrupted_writes
                << " temporary files of interrupted writes removed");
  auto arguments = job(killed_directory);
  arguments.push_back("--resume");
  REQUIRE(run_job(arguments, log, never) == 0);

  auto const resumed = hydra::checkpoint_directory(killed_directory.string()).load().checkpoint;
  REQUIRE(resumed.models.size() == whole.models.size());
  for (std::size_t m = 0; m < whole.models.size(); ++m) {
    CAPTURE(whole.models[m].name);
    REQUIRE(resumed.models[m].state.has_value() == whole.models[m].state.has_value());
    if (!whole.models[m].state) continue;
    CHECK(resumed.models[m].state->minibatches_done == whole.models[m].state->minibatches_done);
    CHECK(resumed.models[m].state->parameters == whole.models[m].state->parameters); // bitwise
    CHECK(resumed.models[m].state->optimizer_state == whole.models[m].state->optimizer_state);
    CHECK(resumed.models[m].losses == whole.models[m].losses);
  }
  fs::remove_all(scratch);
}
