// The main job (examples/model_selection) end to end on a small subset, its
// refusal of bad data files before anything trains, and its checkpoint/resume.
#include <doctest/doctest.h>

#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "examples/report_check.hpp"
#include "hydra/json/chrome_trace.hpp"
#include "hydra/json/document.hpp"
#include "output_file.hpp"
#include "support/scratch.hpp"
#include "sweep.hpp"

namespace fs = std::filesystem;

namespace {

model_selection::options small_run() {
  model_selection::options o;
  o.grid = "tiny";
  o.train_subset = 384;
  o.test_subset = 500;
  o.epochs = 2;
  o.batch = 32;
  o.devices = 2;
  o.budget_bytes = 800 * 1024;
  o.image_side = 14; // the tiny models' first layers then fit this budget's shards
  o.search = "grid";
  return o;
}

// small_run() holds out a sixth of its 384 images for validation: 64, two
// minibatches; 320 train, 10 minibatches per epoch.
constexpr std::size_t steps_per_epoch = 320 / 32;

fs::path scratch(std::string const& name) {
  return hydra::testing::scratch_directory("model_selection_" + name);
}

// ---- synthetic IDX files for the bad-data table -----------------------------------

std::vector<std::uint8_t> idx(std::uint32_t magic, std::vector<std::uint32_t> const& dims, std::size_t data_bytes) {
  std::vector<std::uint8_t> out;
  auto be = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  be(magic);
  for (auto d : dims) be(d);
  for (std::size_t k = 0; k < data_bytes; ++k) out.push_back(static_cast<std::uint8_t>(k % 10));
  return out;
}

void write_gz(fs::path const& path, std::vector<std::uint8_t> const& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// A well-formed split of `n` images in `dir`.
void write_split(fs::path const& dir, std::string const& name, std::uint32_t n) {
  write_gz(dir / (name + "-images-idx3-ubyte.gz"), idx(0x803, {n, 28, 28}, std::size_t{n} * 28 * 28));
  write_gz(dir / (name + "-labels-idx1-ubyte.gz"), idx(0x801, {n}, n));
}

} // namespace

TEST_CASE("end to end on a small subset: finishes, beats chance, writes a trace that parses") {
  auto const dir = scratch("e2e");
  auto o = small_run();
  o.trace_path = (dir / "trace.json").string();
  std::ostringstream log;
  auto const result = model_selection::run(o, log);
  REQUIRE(result.models.size() == 3);
  CHECK(result.validation_images == 64);
  CHECK(result.test_images == 480); // whole minibatches of the 500
  for (auto const& m : result.models) {
    INFO(m.config.name());
    CHECK_FALSE(m.failure.has_value());
    CHECK_FALSE(m.stopped_early.has_value());
    CHECK(m.steps == 2 * steps_per_epoch);
    REQUIRE(m.validations.size() == 2); // one per epoch
    CHECK(m.validations[0].minibatches == steps_per_epoch);
    CHECK(m.validations[1].minibatches == 2 * steps_per_epoch);
    CHECK(m.validation->samples == 64);
    CHECK(m.tested);
    CHECK(m.test_accuracy > 0.2); // chance is 0.1
  }
  // Chosen by validation accuracy alone.
  REQUIRE(result.chosen);
  for (auto const& m : result.models)
    CHECK_FALSE(hydra::better_than(*m.validation, *result.models[*result.chosen].validation));
  CHECK(result.minibatches_trained == 3 * 2 * steps_per_epoch);
  CHECK(result.minibatches_evaluated == 3 * 2 * 2);
  CHECK(result.makespan_seconds > 0);
  CHECK(result.bytes_to_device > 0);
  CHECK(log.str().find("models finished 3, stopped 0 of 3") != std::string::npos);

  std::ofstream(*o.trace_path) << [&] {
    std::ostringstream t;
    hydra::write_chrome_trace(t, result.trace);
    return t.str();
  }();
  std::ifstream in(*o.trace_path);
  std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto const root = hydra::detail::parse_json(text, *o.trace_path);
  REQUIRE(root.contains("traceEvents"));
  std::size_t compute = 0;
  for (auto const& e : root["traceEvents"])
    if (e["ph"] == "X" && e["tid"] == 0) ++compute;
  CHECK(compute >= 3 * 2 * steps_per_epoch * 2); // at least one shard per model: a forward and a backward per step
  fs::remove_all(dir);
}

TEST_CASE("bad data files stop the run before training, naming the file and the package") {
  struct bad_case {
    std::string what;
    std::function<void(fs::path const&)> spoil;
    std::string message;
  };
  std::vector<bad_case> const cases = {
      {"missing file", [](fs::path const& d) { fs::remove(d / "train-labels-idx1-ubyte.gz"); },
       "train-labels-idx1-ubyte.gz: missing"},
      {"wrong magic",
       [](fs::path const& d) {
         write_gz(d / "train-images-idx3-ubyte.gz", idx(0x801, {64, 28, 28}, 64 * 784));
       },
       "wrong IDX magic number 2049, expected 2051"},
      {"truncated image file",
       [](fs::path const& d) {
         write_gz(d / "train-images-idx3-ubyte.gz", idx(0x803, {64, 28, 28}, 64 * 784 - 100));
       },
       "holds 50076 data bytes, its header says 50176"},
      {"count mismatch", [](fs::path const& d) { write_gz(d / "train-labels-idx1-ubyte.gz", idx(0x801, {63}, 63)); },
       "holds 63 labels for 64 images"},
      {"corrupt gzip",
       [](fs::path const& d) {
         auto const path = d / "t10k-images-idx3-ubyte.gz";
         std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(40);
         char const garbage[16] = {'\x55', '\x55', '\x55', '\x55', '\x55', '\x55', '\x55', '\x55',
                                   '\x55', '\x55', '\x55', '\x55', '\x55', '\x55', '\x55', '\x55'};
         f.write(garbage, sizeof garbage);
       },
       "t10k-images-idx3-ubyte.gz: "},
      {"truncated gzip",
       [](fs::path const& d) {
         auto const path = d / "t10k-labels-idx1-ubyte.gz";
         fs::resize_file(path, fs::file_size(path) - 6);
       },
       "t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip stream"},
      {"not gzip", [](fs::path const& d) { std::ofstream(d / "train-labels-idx1-ubyte.gz") << "plain text"; },
       "not a gzip stream"},
  };
  for (auto const& c : cases) {
    INFO(c.what);
    auto const dir = scratch("bad");
    write_split(dir, "train", 64);
    write_split(dir, "t10k", 64);
    c.spoil(dir);
    auto o = small_run();
    o.data_directory = dir.string();
    o.trace_path = (dir / "trace.json").string();
    o.checkpoint_directory = (dir / "checkpoints").string();
    std::ostringstream log;
    CHECK_THROWS_WITH_AS(model_selection::run(o, log), doctest::Contains(c.message.c_str()), fashion_mnist::data_error);
    CHECK_THROWS_WITH_AS(model_selection::run(o, log), doctest::Contains("Debian package dataset-fashion-mnist"),
                         fashion_mnist::data_error);
    CHECK(log.str().find("training footprints") == std::string::npos); // nothing trained
    CHECK_FALSE(fs::exists(dir / "checkpoints"));
    fs::remove_all(dir);
  }
}

TEST_CASE("a run stopped after a checkpoint (a simulated crash) and resumed ends with the uninterrupted weights") {
  auto const dir = scratch("resume");
  auto o = small_run();
  std::ostringstream log;
  auto const uninterrupted = model_selection::run(o, log);

  o.checkpoint_directory = (dir / "checkpoints").string();
  o.checkpoint_every = 3; // 9 in all: a file at each model's first checkpoint (epoch 1: 10, 20, 30 in all)
  o.stop_after_steps = 30;
  auto const crashed = model_selection::run(o, log);
  CHECK(crashed.stopped_early);
  CHECK(fs::exists(model_selection::checkpoint_path(*o.checkpoint_directory)));
  for (auto const& entry : fs::directory_iterator(*o.checkpoint_directory)) // no temporary left behind
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  {
    // A second run on the same directory while one holds it is refused, naming the holder.
    hydra::checkpoint_directory const held(*o.checkpoint_directory);
    auto second = o;
    second.resume = true;
    std::string const message = "is in use by another run (process " + std::to_string(::getpid());
    CHECK_THROWS_WITH_AS(model_selection::run(second, log), doctest::Contains(message.c_str()),
                         hydra::invalid_argument);
  }
  CHECK(log.str().find("checkpoint after 30 minibatches in all") != std::string::npos);
  {
    // Each model's state is the one at its latest checkpoint in the saved
    // history (which models got how far depends on the schedule).
    auto const saved = hydra::checkpoint_directory(*o.checkpoint_directory).load().checkpoint;
    CHECK(model_selection::trained_in_all(saved.history, saved.models.size()) == 30);
    std::vector<std::size_t> latest(saved.models.size(), 0);
    for (auto const& e : saved.history) latest.at(e.reached.model) = e.reached.minibatches;
    for (std::size_t m = 0; m < saved.models.size(); ++m)
      CHECK((saved.models[m].state ? saved.models[m].state->minibatches_done : 0) == latest[m]);
  }

  // The latest file damaged (a bit flipped): the run resumes from the one before it.
  {
    auto const latest = model_selection::checkpoint_path(*o.checkpoint_directory);
    std::fstream f(latest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(latest) / 2));
    char const byte = static_cast<char>(f.get() ^ 0x04);
    f.seekp(static_cast<std::streamoff>(fs::file_size(latest) / 2));
    f.put(byte);
  }
  o.stop_after_steps.reset();
  o.resume = true;
  std::ostringstream resumed_log;
  auto const resumed = model_selection::run(o, resumed_log);
  CHECK(resumed_log.str().find("passed over " + model_selection::checkpoint_path(*o.checkpoint_directory) +
                               ": corrupt (CRC-32") != std::string::npos);
  CHECK(resumed_log.str().find("resuming from " + model_selection::checkpoint_path(*o.checkpoint_directory) +
                               ".1 after 20 minibatches in all") != std::string::npos);
  CHECK_FALSE(resumed.stopped_early);
  REQUIRE(resumed.models.size() == uninterrupted.models.size());
  for (std::size_t m = 0; m < resumed.models.size(); ++m) {
    INFO(resumed.models[m].config.name());
    CHECK(resumed.models[m].steps == uninterrupted.models[m].steps);
    CHECK(resumed.models[m].parameters == uninterrupted.models[m].parameters); // bitwise
    CHECK(resumed.models[m].test_accuracy == uninterrupted.models[m].test_accuracy);
    // The validation curve before the crash came back from the checkpoint.
    REQUIRE(resumed.models[m].validations.size() == uninterrupted.models[m].validations.size());
    for (std::size_t k = 0; k < resumed.models[m].validations.size(); ++k) {
      CHECK(resumed.models[m].validations[k].minibatches == uninterrupted.models[m].validations[k].minibatches);
      CHECK(resumed.models[m].validations[k].metrics.loss == uninterrupted.models[m].validations[k].metrics.loss);
    }
  }
  CHECK(resumed.minibatches_trained == uninterrupted.minibatches_trained);
  CHECK(resumed.minibatches_evaluated == uninterrupted.minibatches_evaluated);

  // A checkpoint of another sweep is refused.
  o.epochs = 3;
  CHECK_THROWS_WITH_AS(model_selection::run(o, log), doctest::Contains("is of another sweep"), hydra::invalid_argument);
  // ... and so is a fresh run that would replace it, unless asked to.
  o.resume = false;
  auto const bytes_before = fs::file_size(model_selection::checkpoint_path(*o.checkpoint_directory));
  CHECK_THROWS_WITH_AS(model_selection::run(o, log),
                       doctest::Contains("exists; continue it with --resume, or replace it with --overwrite"),
                       hydra::invalid_argument);
  CHECK(fs::file_size(model_selection::checkpoint_path(*o.checkpoint_directory)) == bytes_before); // untouched
  o.overwrite = true;
  o.stop_after_steps = 9;
  CHECK(model_selection::run(o, log).stopped_early); // a new sweep's first checkpoint replaced it
  o.overwrite = false;
  o.resume = true;
  o.epochs = 2;
  CHECK_THROWS_WITH_AS(model_selection::run(o, log), doctest::Contains("is of another sweep"), hydra::invalid_argument);
  fs::remove_all(dir);
}

TEST_CASE("a halving search stopped after a checkpoint and resumed keeps its rungs and ends as it would have") {
  for (std::string const search : {"sha", "asha"}) {
    CAPTURE(search);
    auto const dir = scratch("resume_" + search);
    auto o = small_run();
    // 3 models: a rung at 6 minibatches, then all 20 for the best. ASHA's
    // decisions depend on timing in general, but not here: all 3 start at
    // once, and its one promotion waits for the third result.
    o.search = search;
    std::ostringstream log;
    auto const uninterrupted = model_selection::run(o, log);

    o.checkpoint_directory = (dir / "checkpoints").string();
    o.checkpoint_every = 2; // 6 in all: a file at each checkpoint of the first rung (6, 12, 18 in all)
    o.stop_after_steps = 10;
    auto const crashed = model_selection::run(o, log);
    CHECK(crashed.stopped_early);
    CHECK(log.str().find("checkpoint after 12 minibatches in all") != std::string::npos);
    auto const saved = hydra::checkpoint_directory(*o.checkpoint_directory).load().checkpoint;
    CHECK(saved.history.size() == 2);
    std::size_t with_state = 0;
    for (auto const& s : saved.models) with_state += s.state ? 1 : 0;
    CHECK(with_state == 2); // the third was between its start and its rung

    o.stop_after_steps.reset();
    o.resume = true;
    std::ostringstream resumed_log;
    auto const resumed = model_selection::run(o, resumed_log);
    CHECK(resumed_log.str().find("resuming from") != std::string::npos);
    CHECK_FALSE(resumed.stopped_early);
    REQUIRE(resumed.chosen);
    CHECK(resumed.chosen == uninterrupted.chosen);
    for (std::size_t m = 0; m < resumed.models.size(); ++m) {
      INFO(resumed.models[m].config.name());
      CHECK(resumed.models[m].steps == uninterrupted.models[m].steps);
      CHECK(resumed.models[m].stopped_early.has_value() == uninterrupted.models[m].stopped_early.has_value());
      CHECK(resumed.models[m].parameters == uninterrupted.models[m].parameters); // bitwise
      CHECK(resumed.models[m].validations.size() == uninterrupted.models[m].validations.size());
      CHECK(resumed.models[m].test_accuracy == uninterrupted.models[m].test_accuracy);
    }
    CHECK(resumed.minibatches_trained == uninterrupted.minibatches_trained);
    // Another eta makes other rungs: its checkpoint is of another search.
    o.eta = 2;
    CHECK_THROWS_WITH_AS(model_selection::run(o, log), doctest::Contains("is of another sweep"),
                         hydra::invalid_argument);
    fs::remove_all(dir);
  }
}

TEST_CASE("successive halving on a small subset: one survivor trains to the end and is the one chosen") {
  auto o = small_run();
  o.search = "sha"; // 3 models, eta 3: rungs at 20 / 3 = 6 minibatches and at all 20
  std::ostringstream log;
  auto const result = model_selection::run(o, log);
  REQUIRE(result.chosen);
  std::size_t survivors = 0;
  for (std::size_t m = 0; m < result.models.size(); ++m) {
    auto const& r = result.models[m];
    INFO(r.config.name());
    CHECK_FALSE(r.failure);
    if (r.steps == 2 * steps_per_epoch) {
      ++survivors;
      CHECK(*result.chosen == m);
      CHECK(r.tested);
      CHECK(r.validations.size() == 2);
    } else {
      CHECK(r.steps == 6);
      REQUIRE(r.stopped_early);
      CHECK(r.stopped_early->find("successive_halving: rung 0") != std::string::npos);
      CHECK_FALSE(r.tested); // its weights were released when it stopped
      REQUIRE(r.validations.size() == 1);
      // It ranked below the survivor at the rung.
      CHECK(hydra::better_than(result.models[*result.chosen].validations[0].metrics, r.validations[0].metrics));
    }
  }
  CHECK(survivors == 1);
  CHECK(result.minibatches_trained == 6 * 3 + (20 - 6));
}

TEST_CASE("the HTML report is well-formed and shows every model's curve and row, and each device's utilisation") {
  auto o = small_run();
  o.search = "sha"; // two models stop at the rung of 6 minibatches, one trains all 20
  auto const report = report_check::make(o);
  auto const& html = report.html;
  CHECK(report_check::structure_error(html) == "");
  // ... a check that does find what it looks for:
  CHECK(report_check::structure_error("<!DOCTYPE html>\n<p><b>x</p></b>") == "</p> at 23 closes <b>");
  CHECK(report_check::structure_error("<!DOCTYPE html>\n<p>fish & chips</p>") == "a bare & at 24");
  CHECK(report_check::structure_error("<!DOCTYPE html>\n<p class=x>y</p>").find("unquoted") != std::string::npos);
  CHECK(report_check::structure_error("<!DOCTYPE html>\n<p>") == "<p> is never closed");
  // Self-contained: nothing to fetch, nothing to run.
  for (char const* fetch : {"src=", "href=", "url(", "<script", "<link", "@import"}) {
    CAPTURE(fetch);
    CHECK(html.find(fetch) == std::string::npos);
  }
  auto const& models = report.result.models;
  REQUIRE(report.result.chosen);
  std::size_t stopped = 0;
  for (std::size_t m = 0; m < models.size(); ++m) {
    std::string const name = models[m].config.name();
    INFO(name);
    CHECK(report_check::count(html, "<g class=\"model\" data-model=\"" + name + "\">") == 1); // its curve
    CHECK(report_check::count(html, "<td class=\"name\">" + name + "</td>") == 1);            // its row
    stopped += models[m].stopped_early ? 1 : 0;
  }
  CHECK(stopped == 2);
  // Curves span 20 minibatches over 760 pixels from x = 60: the stopped ones
  // end with a cross at 6 minibatches (x = 288), the survivor with a circle at 20.
  CHECK(report_check::count(html, "<path d=\"M284.0,") == 2);
  CHECK(report_check::count(html, "<circle cx=\"820.0\"") == 1);
  CHECK(report_check::count(html, "<tr class=\"chosen\">") == 1);
  CHECK(html.find("<tr class=\"chosen\"><td>1</td><td class=\"name\">" + models[*report.result.chosen].config.name()) !=
        std::string::npos);
  CHECK(report_check::count(html, "<tr><td>") + 1 == models.size());
  // Each device's row: the share its compute stream was held, from the
  // recorded slices, and the share computing, the trainer's own count, which
  // cannot be larger (a slice includes the task's waits on that stream).
  for (std::size_t d = 0; d < report.devices; ++d) {
    INFO("device " << d);
    std::string const group = "<g class=\"device\" data-device=\"" + std::to_string(d) + "\">";
    auto const at = html.find(group);
    REQUIRE(at != std::string::npos);
    auto number_after = [&](std::string const& label) {
      auto const from = html.find(label, at);
      REQUIRE(from != std::string::npos);
      return std::stod(html.substr(from + label.size()));
    };
    double const held = number_after(">held "), computing = number_after(">computing ");
    CHECK(computing == doctest::Approx(100 * report.result.device_busy_fraction[d]).epsilon(0.01).scale(100));
    CHECK(held >= computing - 1); // both rounded to a percent
    CHECK(held <= 100);
    CHECK(held > 0);
  }
}

namespace {
model_selection::command_line parse(std::vector<std::string> words) {
  words.insert(words.begin(), "model_selection");
  std::vector<char const*> argv;
  for (auto const& w : words) argv.push_back(w.c_str());
  return model_selection::parse_command_line(static_cast<int>(argv.size()), argv.data());
}
} // namespace

TEST_CASE("the command line takes every flag with its type and range, and refuses the rest naming the flag") {
  auto const defaults = parse({}).chosen;
  CHECK(defaults.search == "sha");
  CHECK(defaults.epochs == 8);
  CHECK(defaults.budget_bytes == 16 * 1024 * 1024);
  auto const given = parse({"--search",
                            "asha",
                            "--eta",
                            "4",
                            "--budget",
                            "1.5MiB",
                            "--epochs",
                            "3",
                            "--image-side",
                            "14",
                            "--devices",
                            "3",
                            "--policy",
                            "fifo",
                            "--lr-schedule",
                            "constant",
                            "--resume",
                            "--checkpoint-dir",
                            "d",
                            "--stop-after",
                            "7",
                            "--report",
                            "r.html",
                            "--keep-forward-activations",
                            "--evicted-forward-activations",
                            "spill"})
                         .chosen;
  CHECK(given.search == "asha");
  CHECK(given.eta == 4);
  CHECK(given.budget_bytes == 1536 * 1024);
  CHECK(given.epochs == 3);
  CHECK(given.image_side == 14);
  CHECK(given.devices == 3);
  CHECK(given.policy == "fifo");
  CHECK(given.schedule == "constant");
  CHECK(given.resume);
  CHECK(given.checkpoint_directory == "d");
  CHECK(given.stop_after_steps == 7);
  CHECK(given.report_path == "r.html");
  CHECK(given.keep_forward_activations);
  CHECK_FALSE(defaults.keep_forward_activations);
  CHECK(given.evicted_forward_activations == "spill");
  CHECK(defaults.evicted_forward_activations == "by-cost");
  auto const help = parse({"--help"});
  REQUIRE(help.help);
  for (char const* flag : {"--search", "--eta", "--lr-schedule", "--budget", "--report", "--checkpoint-dir"})
    CHECK(help.help->find(flag) != std::string::npos);

  struct bad {
    std::vector<std::string> words;
    std::string message; // a fragment of the error
  };
  std::vector<bad> const table{
      {{"--epochs", "-1"}, "--epochs"},
      {{"--epochs", "1024819115206086201"}, "--epochs"},
      {{"--epochs", "0"}, "--epochs"},
      {{"--epochs", "2.5"}, "--epochs"},
      {{"--epochs"}, "--epochs"},
      {{"--devices", "-1"}, "--devices"},
      {{"--devices", "0"}, "--devices"},
      {{"--budget", "1000GiB"}, "--budget: 2 host devices of 1073741824000 bytes (1000.00 GiB) need more than"},
      {{"--budget", "2000GiB"}, "--budget: 2000GiB is outside 1KiB to 1024GiB"},
      {{"--budget", "1000"}, "--budget: 1000 is outside"},
      {{"--budget", "inf"}, "--budget: expected a size such as 16MiB or 1.5GiB, got 'inf'"},
      {{"--budget", "nan"}, "--budget: expected a size"},
      {{"--budget", "-4MiB"}, "--budget: expected a size"},
      {{"--budget", "12XB"}, "--budget: expected a size"},
      {{"--budget", "lots"}, "--budget: expected a size"},
      {{"--search", "random"}, "--search"},
      {{"--eta", "1"}, "--eta"},
      {{"--image-side", "20"}, "--image-side"},
      {{"--batch", "0"}, "--batch"},
      {{"--policy", "fastest"}, "--policy"},
      {{"--grid", "huge"}, "--grid"},
      {{"--lr-schedule", "linear"}, "--lr-schedule"},
      {{"--backend", "tpu"}, "--backend"},
      {{"--keep-forward-activations", "--evicted-forward-activations", "sometimes"}, "--evicted-forward-activations"},
      {{"--evicted-forward-activations", "spill"}, "--keep-forward-activations"},
      {{"--checkpoint-every", "0"}, "--checkpoint-every"},
      {{"--keep-checkpoints", "0"}, "--keep-checkpoints"},
      {{"--train-subset", "70000"}, "--train-subset"},
      {{"--test-subset", "-5"}, "--test-subset"},
      {{"--bogus"}, "--bogus"},
      {{"stray"}, "stray"},
  };
  for (auto const& row : table) {
    std::string joined;
    for (auto const& w : row.words) joined += w + " ";
    CAPTURE(joined);
    CHECK_THROWS_WITH_AS(parse(row.words), doctest::Contains(row.message.c_str()), hydra::invalid_argument);
  }
}

TEST_CASE("bad options are refused before any data is read") {
  struct bad_option {
    std::function<void(model_selection::options&)> set;
    char const* message;
  };
  std::vector<bad_option> const cases = {
      {[](auto& o) { o.backend = "cuda"; }, "--backend cuda: this build has no CUDA parts"},
      {[](auto& o) { o.backend = "tpu"; }, "unknown backend 'tpu'"},
      {[](auto& o) { o.devices = 0; }, "device count is 0"},
      {[](auto& o) { o.epochs = 0; }, "--epochs: 0"},
      {[](auto& o) { o.resume = true; }, "--resume needs --checkpoint-dir"},
      {[](auto& o) { o.stop_after_steps = 5; }, "--stop-after needs --checkpoint-dir"},
      {[](auto& o) { o.resume = true, o.checkpoint_directory = "/nonexistent/run"; },
       "--resume: /nonexistent/run does not exist; there is nothing to resume"},
      {[](auto& o) { o.resume = true, o.checkpoint_directory = "/tmp"; }, "--resume: no checkpoint in /tmp"},
      {[](auto& o) { o.grid = "huge"; }, "unknown grid 'huge'"},
      {[](auto& o) { o.policy = "fastest"; }, "unknown policy 'fastest'"},
      {[](auto& o) { o.search = "hyperband"; }, "unknown search 'hyperband'"},
      {[](auto& o) { o.search = "sha", o.eta = 1; }, "--eta: 1"},
      {[](auto& o) { o.image_side = 7; }, "--image-side: 7"},
      {[](auto& o) { o.checkpoint_directory = "/dev/null/checkpoints"; }, "/dev/null is not a folder"},
  };
  for (auto const& c : cases) {
    INFO(c.message);
    auto o = small_run();
    o.data_directory = "/nonexistent"; // reading it would fail differently
    c.set(o);
    std::ostringstream log;
    CHECK_THROWS_WITH_AS(model_selection::run(o, log), doctest::Contains(c.message), hydra::invalid_argument);
  }
}

TEST_CASE("--trace and --report: checked at the start, and an earlier file kept until the new one is complete") {
  auto const dir = scratch("output_file");
  auto const path = (dir / "trace.json").string();
  auto const contents = [](std::string const& file) {
    std::ifstream in(file);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  auto const files_in = [&] {
    std::size_t n = 0;
    for ([[maybe_unused]] auto const& entry : fs::directory_iterator(dir)) ++n;
    return n;
  };
  std::ofstream(path) << "earlier";
  {
    model_selection::output_file trace(path, "--trace"); // a run that fails after the check
    trace.stream() << "half";
  }
  CHECK(contents(path) == "earlier");
  CHECK(files_in() == 1); // no temporary left behind
  {
    model_selection::output_file trace(path, "--trace");
    trace.stream() << "complete";
    trace.commit();
  }
  CHECK(contents(path) == "complete");
  CHECK(files_in() == 1);
  {
    model_selection::output_file to_device("/dev/null", "--report"); // not a file: written in place
    to_device.stream() << "x";
    to_device.commit();
  }
  // A symbolic link is written through, and stays a link.
  std::ofstream(dir / "real.json") << "earlier";
  fs::create_symlink(dir / "real.json", dir / "link.json");
  {
    model_selection::output_file through((dir / "link.json").string(), "--trace");
    through.stream() << "through the link";
    through.commit();
  }
  CHECK(fs::is_symlink(dir / "link.json"));
  CHECK(contents((dir / "real.json").string()) == "through the link");
  model_selection::output_file const none(std::nullopt, "--trace");
  CHECK_FALSE(none.wanted());
  std::string const is_a_directory = "--trace: " + dir.string() + " is a directory";
  CHECK_THROWS_WITH_AS(model_selection::output_file(dir.string(), "--trace"), doctest::Contains(is_a_directory.c_str()),
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(model_selection::output_file("/nonexistent/r.html", "--report"),
                       doctest::Contains("--report: cannot write /nonexistent/r.html: No such file or directory"),
                       hydra::invalid_argument);
  fs::remove_all(dir);
}
