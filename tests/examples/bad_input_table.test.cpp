// The two programs a user runs, model_selection (the main job) and hydra-sim
// (the scheduler simulator), each given bad input as its own process: flags
// out of range, damaged data files, damaged or foreign checkpoints, malformed
// workloads, unusable output paths. Every row is refused with its exit status
// and a message that names the cause, within a time limit (a hang is a
// failure), and leaves its scratch directory exactly as it was: a refused run
// must not have written, truncated, moved or removed anything.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hydra/train/checkpoint_directory.hpp"
#include "hydra/train/sweep_checkpoint.hpp"
#include "support/child_process.hpp"
#include "support/scratch.hpp"

#ifndef HYDRA_FASHION_MNIST_DIR
#define HYDRA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif

namespace fs = std::filesystem;

namespace {

// Far more than any row needs, also under the sanitizers: a row that reaches
// it is hanging.
constexpr std::chrono::seconds time_limit{60};

// ---- running a program --------------------------------------------------------------

struct ended {
  int status = 0;         // the exit status; 128 + the signal if a signal ended it
  bool timed_out = false; // killed at the time limit
  std::string output;     // stdout and stderr together
};

std::string read_text(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `binary` with `arguments` in `directory` (its working directory, so
// that a file written by mistake to a relative path lands where the snapshot
// sees it), its output to `log`, which lies elsewhere.
ended run_program(char const* binary, std::vector<std::string> const& arguments, fs::path const& directory,
                  fs::path const& log) {
  auto const end =
      hydra::testing::run_child(binary, arguments, {.log = log, .directory = directory, .deadline = time_limit});
  return {.status = end.status, .timed_out = end.killed_at_deadline, .output = read_text(log)};
}

// ---- what is on disk ------------------------------------------------------------------

struct file_state {
  char kind = '?'; // f: file, d: directory, l: symbolic link, o: other
  std::uintmax_t size = 0;
  std::uint64_t hash = 0; // FNV-1a of the content (of the target's name for a link)
  bool operator==(file_state const&) const = default;
};

std::uint64_t fnv1a(std::uint64_t h, char const* data, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) {
    h ^= static_cast<unsigned char>(data[k]);
    h *= 1099511628211ULL;
  }
  return h;
}

// Every path under `root` with its kind, size and content hash. The lock file
// of a checkpoint directory is the one exception, compared by its presence
// alone: a run that takes the directory writes its process id there, and that
// is the lock's purpose, not data.
std::map<std::string, file_state> snapshot(fs::path const& root) {
  std::map<std::string, file_state> out;
  for (auto const& entry : fs::recursive_directory_iterator(root)) {
    file_state s;
    auto const status = entry.symlink_status();
    if (fs::is_symlink(status)) {
      s.kind = 'l';
      auto const target = fs::read_symlink(entry.path()).string();
      s.hash = fnv1a(14695981039346656037ULL, target.data(), target.size());
    } else if (fs::is_directory(status)) {
      s.kind = 'd';
    } else if (fs::is_regular_file(status)) {
      s.kind = 'f';
      if (entry.path().filename() != "sweep.lock") {
        s.size = entry.file_size();
        std::ifstream in(entry.path(), std::ios::binary);
        std::uint64_t h = 14695981039346656037ULL;
        char chunk[1 << 16];
        while (in.read(chunk, sizeof chunk) || in.gcount() > 0)
          h = fnv1a(h, chunk, static_cast<std::size_t>(in.gcount()));
        s.hash = h;
      }
    } else {
      s.kind = 'o';
    }
    out[fs::relative(entry.path(), root).string()] = s;
  }
  return out;
}

// What differs between two snapshots, one path a line; empty when nothing does.
std::string differences(std::map<std::string, file_state> const& before,
                        std::map<std::string, file_state> const& after) {
  std::string out;
  for (auto const& [path, state] : before) {
    auto const found = after.find(path);
    if (found == after.end()) {
      out += "removed: ";
      out += path;
      out += "\n";
    } else if (!(found->second == state)) {
      out += "changed: ";
      out += path;
      out += " (size ";
      out += std::to_string(state.size);
      out += " -> ";
      out += std::to_string(found->second.size);
      out += ")\n";
    }
  }
  for (auto const& [path, state] : after)
    if (!before.contains(path)) {
      out += "added: ";
      out += path;
      out += "\n";
    }
  return out;
}

// ---- the table ------------------------------------------------------------------------

enum class program { model_selection, hydra_sim };

// Made in the row's directory before the run; what it returns is held until
// the run has ended (a lock another run holds, for one).
using setup_fn = std::function<std::shared_ptr<void>(fs::path const&)>;

struct row {
  std::string what;
  program binary;
  std::vector<std::string> arguments; // "{data}": the Fashion-MNIST directory
  int status;
  std::string message; // a fragment of the output; "{pid}": this test's process id
  setup_fn setup = {};
};

std::string substituted(std::string text) {
  auto const replace = [&](std::string const& key, std::string const& value) {
    for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  };
  replace("{data}", HYDRA_FASHION_MNIST_DIR);
  replace("{pid}", std::to_string(::getpid()));
  return text;
}

// Runs each row in a directory of its own under `scratch`, then removes it.
void run_table(std::vector<row> const& rows, fs::path const& scratch) {
  std::size_t index = 0;
  for (auto const& r : rows) {
    ++index;
    fs::path const directory = scratch / ("row-" + std::to_string(index));
    fs::path const log = scratch / ("row-" + std::to_string(index) + ".log");
    fs::create_directories(directory);
    std::shared_ptr<void> held;
    if (r.setup) held = r.setup(directory);
    std::vector<std::string> arguments;
    std::string command = r.binary == program::model_selection ? "model_selection" : "hydra-sim";
    for (auto const& a : r.arguments) {
      arguments.push_back(substituted(a));
      command += " ";
      command += arguments.back();
    }
    std::string const message = substituted(r.message);
    auto const before = snapshot(directory);
    auto const result =
        run_program(r.binary == program::model_selection ? HYDRA_MODEL_SELECTION_BINARY : HYDRA_SIM_BINARY, arguments,
                    directory, log);
    auto const after = snapshot(directory);
    held.reset();
    INFO("row " << index << ": " << r.what);
    INFO("command: " << command);
    INFO("output:\n" << result.output);
    CHECK_FALSE(result.timed_out);
    CHECK(result.status == r.status);
    CHECK_MESSAGE(result.output.find(message) != std::string::npos, "expected in the output: " << message);
    auto const changed = differences(before, after);
    CHECK_MESSAGE(changed.empty(), "the run changed its directory:\n" << changed);
    fs::remove_all(directory);
    fs::remove(log);
  }
  MESSAGE(rows.size() << " rows");
  fs::remove_all(scratch);
}

row model_selection_row(std::string what, std::vector<std::string> arguments, std::string message,
                        setup_fn setup = {}) {
  return {std::move(what), program::model_selection, std::move(arguments), 1, std::move(message), std::move(setup)};
}

row hydra_sim_row(std::string what, std::vector<std::string> arguments, std::string message, setup_fn setup = {}) {
  return {std::move(what), program::hydra_sim, std::move(arguments), 1, std::move(message), std::move(setup)};
}

// ---- files ------------------------------------------------------------------------------

std::vector<std::uint8_t> read_bytes(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(fs::path const& path, std::span<std::uint8_t const> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<char const*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_text(fs::path const& path, std::string const& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

// An IDX file (big-endian header: magic, dimensions) followed by `data`.
std::vector<std::uint8_t> idx(std::uint32_t magic, std::vector<std::uint32_t> const& dimensions,
                              std::vector<std::uint8_t> const& data) {
  std::vector<std::uint8_t> out;
  auto const big_endian = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  big_endian(magic);
  for (auto d : dimensions) big_endian(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// `n` bytes of 0..9: valid labels, and dim pixels.
std::vector<std::uint8_t> digits(std::size_t n) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<std::uint8_t>(k % 10);
  return out;
}

void write_gz(fs::path const& path, std::vector<std::uint8_t> const& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty())
    REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// Synthetic Fashion-MNIST files, small enough to write in a moment.
constexpr std::uint32_t synthetic_train = 384, synthetic_test = 100;

std::string images_file(std::string const& split) {
  std::string name = split;
  name += "-images-idx3-ubyte.gz";
  return name;
}

std::string labels_file(std::string const& split) {
  std::string name = split;
  name += "-labels-idx1-ubyte.gz";
  return name;
}

void write_split(fs::path const& directory, std::string const& split, std::uint32_t n) {
  write_gz(directory / images_file(split), idx(0x803, {n, 28, 28}, digits(std::size_t{n} * 28 * 28)));
  write_gz(directory / labels_file(split), idx(0x801, {n}, digits(n)));
}

// A whole synthetic data set in `directory`/data, then `spoil` applied to it.
setup_fn data_set(std::function<void(fs::path const&)> spoil = {}) {
  return [spoil](fs::path const& directory) -> std::shared_ptr<void> {
    fs::path const data = directory / "data";
    fs::create_directories(data);
    write_split(data, "train", synthetic_train);
    write_split(data, "t10k", synthetic_test);
    if (spoil) spoil(data);
    return nullptr;
  };
}

// The job on the synthetic data set, tiny enough to start in a moment; a
// checkpoint directory named, which a refused run must not make.
std::vector<std::string> on_synthetic_data(std::vector<std::string> extra = {}) {
  std::vector<std::string> arguments{"--data-dir", "data", "--grid",       "tiny", "--batch",          "32",
                                     "--epochs",   "1",    "--image-side", "14",   "--checkpoint-dir", "ck"};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return arguments;
}

// ---- checkpoints ------------------------------------------------------------------------

// The sweep whose checkpoint the checkpoint rows damage: the tiny grid on the
// data in `data`, stopped at its first checkpoint file.
std::vector<std::string> tiny_sweep(std::string const& data, std::vector<std::string> extra = {}) {
  std::vector<std::string> arguments{"--data-dir",       data,  "--grid",   "tiny",   "--train-subset", "1200",
                                     "--test-subset",    "500", "--epochs", "1",      "--image-side",   "14",
                                     "--batch",          "32",  "--budget", "800KiB", "--search",       "grid",
                                     "--checkpoint-dir", "ck"};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return arguments;
}

std::vector<std::string> resume(std::string const& data) {
  return tiny_sweep(data, {"--resume"});
}

// The resume with one of the sweep's flags given another value.
std::vector<std::string> resume_with(std::string const& data, std::string const& flag, std::string const& value) {
  auto arguments = resume(data);
  auto const at = std::find(arguments.begin(), arguments.end(), flag);
  REQUIRE(at != arguments.end());
  *std::next(at) = value;
  return arguments;
}

// The file layout (hydra/train/sweep_checkpoint.hpp):
//   "HYDRASWP" | u32 version | u64 body bytes | body | u32 CRC-32 of the body
constexpr std::size_t version_at = 8, length_at = 12, body_at = 20;

std::uint64_t u64_at(std::vector<std::uint8_t> const& bytes, std::size_t at) {
  std::uint64_t v = 0;
  std::memcpy(&v, bytes.data() + at, sizeof v);
  return v;
}

// The header's body length changed by `delta`.
void add_to_length(std::vector<std::uint8_t>& bytes, std::int64_t delta) {
  std::uint64_t const length = u64_at(bytes, length_at) + static_cast<std::uint64_t>(delta);
  std::memcpy(bytes.data() + length_at, &length, sizeof length);
}

// The stored CRC made right again after an edit of the body.
void recompute_crc(std::vector<std::uint8_t>& bytes) {
  std::uint64_t const body = u64_at(bytes, length_at);
  auto const crc =
      static_cast<std::uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), bytes.data() + body_at, static_cast<uInt>(body)));
  std::memcpy(bytes.data() + body_at + body, &crc, sizeof crc);
}

// The base checkpoint directory copied into the row's directory as "ck", its
// latest file then passed to `damage`.
setup_fn checkpoint(fs::path const& base, std::function<void(fs::path const&)> damage = {}) {
  return [base, damage](fs::path const& directory) -> std::shared_ptr<void> {
    fs::copy(base, directory / "ck", fs::copy_options::recursive);
    if (damage) damage(directory / "ck");
    return nullptr;
  };
}

// Edits the bytes of `ck`/sweep.checkpoint.
std::function<void(fs::path const&)> edit_bytes(std::function<void(std::vector<std::uint8_t>&)> edit) {
  return [edit](fs::path const& ck) {
    auto bytes = read_bytes(ck / "sweep.checkpoint");
    REQUIRE(bytes.size() > body_at + 64);
    edit(bytes);
    write_bytes(ck / "sweep.checkpoint", bytes);
  };
}

std::function<void(fs::path const&)> flip(std::size_t at, std::uint8_t mask) {
  return edit_bytes([at, mask](std::vector<std::uint8_t>& b) { b.at(at) ^= mask; });
}

// Decoded, edited as a checkpoint and written back whole, CRC and all.
std::function<void(fs::path const&)> edit_checkpoint(std::function<void(hydra::sweep_checkpoint&)> edit) {
  return [edit](fs::path const& ck) {
    auto const bytes = read_bytes(ck / "sweep.checkpoint");
    auto c = hydra::decode(std::as_bytes(std::span(bytes)), "base");
    edit(c);
    auto const encoded = hydra::encode(c);
    std::vector<std::uint8_t> out(encoded.size());
    std::memcpy(out.data(), encoded.data(), encoded.size());
    write_bytes(ck / "sweep.checkpoint", out);
  };
}

} // namespace

// ---- the rows -------------------------------------------------------------------------------

TEST_CASE("model_selection refuses bad flags, naming the flag, before it reads or writes anything") {
  auto const r = [](std::vector<std::string> flags, std::string message) {
    std::string what = "flags:";
    for (auto const& f : flags) {
      what += " ";
      what += f;
    }
    flags.insert(flags.begin(), {"--data-dir", "{data}"});
    return model_selection_row(std::move(what), std::move(flags), std::move(message));
  };
  std::vector<row> const rows = {
      r({"--epochs", "-1"}, "--epochs: Value -1 not in range 1 to 1000"),
      r({"--epochs", "1024819115206086201"}, "--epochs: Value 1024819115206086201 not in range 1 to 1000"),
      r({"--epochs", "nan"}, "--epochs: Value nan not in range 1 to 1000"),
      r({"--epochs", "0"}, "--epochs: Value 0 not in range 1 to 1000"),
      r({"--epochs"}, "--epochs: 1 required"),
      r({"--devices", "-1"}, "--devices: Value -1 not in range 1 to 1024"),
      r({"--devices", "1025"}, "--devices: Value 1025 not in range 1 to 1024"),
      r({"--budget", "1000GiB"}, "--budget: 2 host devices of 1073741824000 bytes (1000.00 GiB) need more than"),
      r({"--budget", "2000GiB"}, "--budget: 2000GiB is outside 1KiB to 1024GiB"),
      r({"--budget", "inf"}, "--budget: expected a size such as 16MiB or 1.5GiB, got 'inf'"),
      r({"--budget", "nan"}, "--budget: expected a size such as 16MiB or 1.5GiB, got 'nan'"),
      r({"--budget", "-16MiB"}, "--budget: expected a size such as 16MiB or 1.5GiB, got '-16MiB'"),
      r({"--budget", "1B"}, "--budget: 1B is outside 1KiB to 1024GiB"),
      r({"--budget", "16XB"}, "--budget: expected a size such as 16MiB or 1.5GiB, got '16XB'"),
      r({"--batch", "0"}, "--batch: Value 0 not in range 1 to 10000"),
      r({"--eta", "1"}, "--eta: Value 1 not in range 2 to 64"),
      r({"--train-subset", "60001"}, "--train-subset: Value 60001 not in range 0 to 60000"),
      r({"--test-subset", "-1"}, "--test-subset: Value -1 not in range 0 to 10000"),
      r({"--validation", "60001"}, "--validation: Value 60001 not in range 0 to 60000"),
      r({"--image-side", "20"}, "--image-side: 20 not in {28,14}"),
      r({"--grid", "huge"}, "--grid: huge not in {default,full,mlp,tiny}"),
      r({"--search", "bogus"}, "--search: bogus not in {sha,asha,grid}"),
      r({"--keep-checkpoints", "0"}, "--keep-checkpoints: Value 0 not in range 1 to 100"),
      r({"--keep-activation-checkpoints"}, "--keep-activation-checkpoints requires --keep-activations"),
      r({"--copy-activations-between-devices"}, "--copy-activations-between-devices requires --keep-activations"),
      r({"--checkpoint-every", "0"}, "--checkpoint-every: Value 0 not in range 1 to 1000000"),
      r({"--stop-after", "0"}, "--stop-after: Value 0 not in range 1 to 1000000000"),
      r({"--bogus"}, "The following argument was not expected: --bogus"),
      r({"stray"}, "The following argument was not expected: stray"),
      r({"--resume"}, "--resume needs --checkpoint-dir"),
      r({"--stop-after", "5"}, "--stop-after needs --checkpoint-dir"),
      r({"--resume", "--checkpoint-dir", "missing"}, "--resume: missing does not exist; there is nothing to resume"),
      r({"--resume", "--checkpoint-dir", "."}, "--resume: no checkpoint in ."),
      r({"--checkpoint-dir", "/proc/hydra-checkpoints"}, "checkpoint directory: cannot make /proc/hydra-checkpoints"),
      r({"--checkpoint-dir", ""}, "--checkpoint-dir: checkpoint directory: the path is empty"),
  };
  run_table(rows, hydra::testing::scratch_directory("bad_input_model_selection_flags"));
}

TEST_CASE("hydra-sim refuses bad flags, naming the flag") {
  auto const r = [](std::vector<std::string> flags, std::string message) {
    std::string what = "flags:";
    for (auto const& f : flags) {
      what += " ";
      what += f;
    }
    return hydra_sim_row(std::move(what), std::move(flags), std::move(message));
  };
  std::vector<row> const rows = {
      r({"--sweep", "0"}, "--sweep: Value 0 not in range 1 to 100000"),
      r({"--sweep", "-1"}, "--sweep: Value -1 not in range 1 to 100000"),
      r({"--prefetch-depth", "1e9"}, "--prefetch-depth: Value 1e9 not in range 0 to 64"),
      r({"--prefetch-depth", "-1"}, "--prefetch-depth: Value -1 not in range 0 to 64"),
      r({"--host-cores", "5000"}, "--host-cores: Value 5000 not in range 0 to 4096"),
      r({"--devices", "-1"}, "--devices: Value -1 not in range 1 to 4096"),
      r({"--devices", "99999999999999999999"}, "--devices: Value 99999999999999999999 not in range 1 to 4096"),
      r({"--link", "inf"}, "--link: expected a finite number, not inf"),
      r({"--link", "0"}, "--link: Value 0 not in range"),
      r({"--shared-host-link", "inf"}, "--shared-host-link: expected a finite number, not inf"),
      r({"--device-memory", "3XB"}, "--device-memory: expected a size from 1B to 1PB"),
      r({"--device-memory", "inf"}, "--device-memory: expected a size from 1B to 1PB"),
      r({"--device-memory", "-1GB"}, "--device-memory: expected a size from 1B to 1PB"),
      r({"--device-memory", "2PB"}, "--device-memory: expected a size from 1B to 1PB"),
      r({"--minibatches", "1e12"}, "--minibatches: Value 1e12 not in range 1 to 1000000"),
      r({"--micro-batches", "0"}, "--micro-batches: Value 0 not in range 1 to 100000"),
      r({"--random", "1.5"}, "--random: expected a whole number from 0 to 18446744073709551615, not 1.5"),
      r({"--random", "-1"}, "--random: expected a whole number from 0 to 18446744073709551615, not -1"),
      r({"--random", "99999999999999999999999"}, "--random: expected a whole number from 0 to 18446744073709551615"),
      r({"--link", "nan"}, "--link: expected a finite number, not nan"),
      r({"--link", "-nan"}, "--link: expected a finite number, not -nan"),
      r({"--random", "1", "--shared-host-link", "nan"}, "--shared-host-link: expected a finite number, not nan"),
      r({"--preset", "nope"}, "--preset: nope not in {paper,paper-sweep,mixed,mixed-large}"),
      r({"--preset", "mixed", "--devices", "4"}, "--devices: the mixed presets have their own 8 devices of two kinds"),
      r({"--preset", "mixed-large", "--devices", "2"}, "--devices: the mixed presets have their own 8 devices"),
      r({"--random", "3", "--workload", "x.json"}, "--random excludes --workload"),
      r({"--bogus"}, "The following argument was not expected: --bogus"),
      r({"--nodes", "0"}, "--nodes: Value 0 not in range 1 to 512"),
      r({"--nodes", "-2"}, "--nodes: Value -2 not in range 1 to 512"),
      r({"--node-link", "nan"}, "--node-link: expected a finite number, not nan"),
      r({"--node-link", "0"}, "--node-link: Value 0 not in range"),
      r({"--scale-out", "0"}, "--scale-out: Value 0 not in range 1 to 512"),
      r({"--scale-out", "2", "--nodes", "2"}, "--nodes excludes --scale-out"),
      r({"--random", "9", "--devices", "9", "--scale-out", "1", "600"}, "--scale-out: Value 600 not in range 1 to 512"),
      r({"--random", "9", "--devices", "9", "--scale-out", "1", "500"},
        "--scale-out 500 nodes of 9 devices: above the limit of 4096 devices"),
      r({"--take-back", "all"}, "--take-back: all not in {none,longest,any}"),
      r({"--take-back", "any", "--prefetch-depth", "0"}, "--take-back: hands back a task queued ahead"),
      r({"--take-back", "any", "--activations", "kept"}, "--take-back: a what-if through host memory only"),
      r({"--take-back", "longest", "--nodes", "2"}, "--take-back: a what-if on one node"),
      r({"--take-back", "any", "--keep-forward-activations"},
        "--take-back: a what-if that does not combine with --keep-forward-activations"),
      r({"--evicted-forward-activations", "spill"},
        "--evicted-forward-activations requires --keep-forward-activations"),
      r({"--keep-forward-activations", "--evicted-forward-activations", "sometimes"},
        "--evicted-forward-activations: sometimes not in {by-cost,spill,recompute}"),
      r({"--copy-activations-between-devices"},
        "--copy-activations-between-devices: copies the activations kept on a device: give --activations"),
      r({"--device-link", "100"}, "--device-link requires --copy-activations-between-devices"),
      r({"--activations", "kept", "--copy-activations-between-devices", "--device-link", "-1"},
        "--device-link: Value -1 not in range"),
      r({"--activations", "kept", "--copy-activations-between-devices", "--device-link", "nan"},
        "--device-link: expected a finite number, not nan"),
      r({"--scale-out", "2", "--write-back-on-eviction"}, "--write-back-on-eviction excludes --scale-out"),
  };
  run_table(rows, hydra::testing::scratch_directory("bad_input_hydra_sim_flags"));
}

TEST_CASE("model_selection refuses missing, damaged and too small data files before it trains") {
  auto const gz = [](std::string const& name, std::vector<std::uint8_t> bytes) {
    return [name, bytes](fs::path const& data) { write_gz(data / name, bytes); };
  };
  auto const r = [](std::string what, std::function<void(fs::path const&)> spoil, std::string message,
                    std::vector<std::string> extra = {}) {
    return model_selection_row(std::move(what), on_synthetic_data(std::move(extra)), std::move(message),
                               data_set(std::move(spoil)));
  };
  std::uint32_t const n = synthetic_train;
  std::vector<row> const rows = {
      model_selection_row("no data directory", {"--data-dir", "nowhere", "--grid", "tiny"},
                          "nowhere/train-images-idx3-ubyte.gz: missing"),
      model_selection_row("an empty data directory", {"--data-dir", "empty", "--grid", "tiny"},
                          "empty/train-images-idx3-ubyte.gz: missing",
                          [](fs::path const& d) -> std::shared_ptr<void> {
                            fs::create_directories(d / "empty");
                            return nullptr;
                          }),
      r(
          "a missing file", [](fs::path const& data) { fs::remove(data / labels_file("t10k")); },
          "t10k-labels-idx1-ubyte.gz: missing"),
      r(
          "an empty .gz file", [](fs::path const& data) { write_text(data / images_file("train"), ""); },
          "train-images-idx3-ubyte.gz: too short for an IDX header (0 bytes)"),
      r("a gzip stream of nothing", gz(labels_file("train"), {}),
        "train-labels-idx1-ubyte.gz: too short for an IDX header (0 bytes)"),
      r(
          "garbage, not gzip", [](fs::path const& data) { write_text(data / labels_file("train"), "plain text\n"); },
          "train-labels-idx1-ubyte.gz: not a gzip stream"),
      r(
          "a truncated gzip stream",
          [](fs::path const& data) {
            auto const path = data / images_file("t10k");
            fs::resize_file(path, fs::file_size(path) / 2);
          },
          "t10k-images-idx3-ubyte.gz: truncated or corrupt gzip stream"),
      r(
          "a gzip stream without its trailer",
          [](fs::path const& data) {
            auto const path = data / labels_file("t10k");
            fs::resize_file(path, fs::file_size(path) - 6);
          },
          "t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip stream"),
      r(
          "garbage inside a gzip stream",
          [](fs::path const& data) {
            auto const path = data / images_file("train");
            auto bytes = read_bytes(path);
            for (std::size_t k = 40; k < 56; ++k) bytes.at(k) = 0x55;
            write_bytes(path, bytes);
          },
          "train-images-idx3-ubyte.gz: "),
      r("a labels file as the images", gz(images_file("train"), idx(0x801, {n}, digits(n))),
        "train-images-idx3-ubyte.gz: wrong IDX magic number 2049, expected 2051"),
      r("a truncated IDX file", gz(images_file("train"), idx(0x803, {n, 28, 28}, digits(n * 784 - 100))),
        "holds 300956 data bytes, its header says 301056"),
      r("an IDX header claiming 4294967295 images",
        gz(images_file("t10k"), idx(0x803, {0xFFFFFFFFU, 28, 28}, digits(784))),
        "t10k-images-idx3-ubyte.gz: holds 784 data bytes, its header says 3367254359280"),
      r("fewer labels than images", gz(labels_file("train"), idx(0x801, {n - 1}, digits(n - 1))),
        "train-labels-idx1-ubyte.gz: holds 383 labels for 384 images"),
      r(
          "a label out of 0..9",
          [](fs::path const& data) {
            auto labels = digits(synthetic_test);
            labels[7] = 10;
            write_gz(data / labels_file("t10k"), idx(0x801, {synthetic_test}, labels));
          },
          "t10k-labels-idx1-ubyte.gz: label 10 of item 7 is outside 0..9"),
      r("27x27 images", gz(images_file("train"), idx(0x803, {n, 27, 27}, digits(n * 27 * 27))),
        "images are 27x27, expected 28x28"),
      r(
          "an empty test split", [](fs::path const& data) { write_split(data, "t10k", 0); },
          "--test-subset: 0 test images, fewer than a batch of 32"),
      r("a test subset smaller than a batch", {}, "--test-subset: 10 test images, fewer than a batch of 32",
        {"--test-subset", "10"}),
      r("a validation set that leaves nothing to train on", {}, "--validation: 380 of 384 training images held out",
        {"--validation", "380"}),
      r("a validation set smaller than a batch", {}, "--validation: 8 of 384 training images held out",
        {"--validation", "8"}),
      // The real data set: its test split is cut to fewer images than a batch,
      // its training split to fewer than a validation set and a batch need.
      model_selection_row("a real test subset smaller than a batch",
                          {"--data-dir", "{data}", "--grid", "tiny", "--test-subset", "10"},
                          "--test-subset: 10 test images, fewer than a batch of 64"),
      model_selection_row("a real training subset too small to hold out from",
                          {"--data-dir", "{data}", "--grid", "tiny", "--train-subset", "100"},
                          "--validation: 16 of 100 training images held out"),
  };
  run_table(rows, hydra::testing::scratch_directory("bad_input_data"));
}

TEST_CASE("model_selection refuses damaged, foreign and busy checkpoints, and changes nothing in them") {
  auto const scratch = hydra::testing::scratch_directory("bad_input_checkpoints");
  // Synthetic images, so that each of the rows, which all read the data before
  // they read the checkpoint, starts in a moment, under the sanitizers too.
  std::string const data = (scratch / "data").string();
  fs::create_directories(data);
  write_split(data, "train", 1200);
  write_split(data, "t10k", 500);
  // The one real training run: a checkpoint file written, then a simulated crash.
  fs::path const base_run = scratch / "base";
  fs::create_directories(base_run);
  {
    auto const arguments = tiny_sweep(data, {"--checkpoint-every", "1", "--stop-after", "1"});
    auto const made = run_program(HYDRA_MODEL_SELECTION_BINARY, arguments, base_run, scratch / "base.log");
    INFO(made.output);
    REQUIRE_FALSE(made.timed_out);
    REQUIRE(made.status == 0);
    REQUIRE(made.output.find("stopped after a checkpoint") != std::string::npos);
  }
  fs::path const base = base_run / "ck";
  REQUIRE(fs::is_regular_file(base / "sweep.checkpoint"));
  // Only the latest file: when it is damaged there is nothing older to fall
  // back on, so every damaged row is refused before anything is written.
  REQUIRE_FALSE(fs::exists(base / "sweep.checkpoint.1"));
  auto const size = static_cast<std::size_t>(fs::file_size(base / "sweep.checkpoint"));

  auto const damaged = [&](std::string what, std::function<void(fs::path const&)> damage, std::string message) {
    return model_selection_row(std::move(what), resume(data), std::move(message), checkpoint(base, std::move(damage)));
  };
  std::string const refused = "no checkpoint to resume from in ck (ck/sweep.checkpoint: ";
  std::vector<row> const rows = {
      damaged("a bit flipped in the magic", flip(0, 0x01), refused + "not a hydra sweep checkpoint"),
      damaged("a bit flipped in the version", flip(version_at, 0x10),
              refused + "format version 17; this build reads version 1"),
      // Set, not flipped: a flipped bit lengthens or shortens depending on the
      // length, which varies with the run.
      damaged("the length made larger", edit_bytes([](auto& b) { add_to_length(b, 16384); }),
              refused + "truncated (" + std::to_string(size) + " bytes; its header promises a body of"),
      damaged("the length made smaller", edit_bytes([](auto& b) { add_to_length(b, -1); }),
              refused + "1 trailing bytes after the checkpoint"),
      damaged("a bit flipped in the middle of the body", flip(size / 2, 0x20), refused + "corrupt (CRC-32 "),
      damaged("a bit flipped in the fingerprint", flip(body_at + 10, 0x02), refused + "corrupt (CRC-32 "),
      damaged("a bit flipped in the CRC", flip(size - 1, 0x80), refused + "corrupt (CRC-32 "),
      damaged("truncated by 100 bytes", edit_bytes([](auto& b) { b.erase(b.end() - 100, b.end()); }),
              refused + "truncated (" + std::to_string(size - 100) + " bytes; its header promises"),
      damaged("truncated inside the magic", edit_bytes([](auto& b) { b.resize(5); }),
              refused + "truncated (5 bytes) or not a hydra sweep checkpoint"),
      damaged("truncated inside the header", edit_bytes([](auto& b) { b.resize(15); }),
              refused + "truncated (15 bytes)"),
      damaged("emptied", edit_bytes([](auto& b) { b.clear(); }),
              refused + "truncated (0 bytes) or not a hydra sweep checkpoint"),
      damaged("3 bytes appended", edit_bytes([](auto& b) {
                b.insert(b.end(), {'x', 'y', 'z'});
              }),
              refused + "3 trailing bytes after the checkpoint"),
      damaged("the model count edited, the CRC recomputed", edit_bytes([](std::vector<std::uint8_t>& b) {
                // The body: fingerprint (u64 length, text), elapsed seconds (f64), model count (u64).
                std::size_t const count_at = body_at + 8 + u64_at(b, body_at) + 8;
                std::uint64_t const count = 1'000'000'000'000;
                std::memcpy(b.data() + count_at, &count, sizeof count);
                recompute_crc(b);
              }),
              refused + "corrupt (model count: 1000000000000, more than the file could hold)"),
      damaged("a model's minibatches edited, the CRC recomputed", edit_checkpoint([](hydra::sweep_checkpoint& c) {
                for (auto& m : c.models)
                  if (m.state) m.state->minibatches_done = 1'000'000'000;
              }),
              "has trained 1000000000 minibatches, more than the 31 it may"),
      damaged("a model renamed, the CRC recomputed",
              edit_checkpoint([](hydra::sweep_checkpoint& c) { c.models.at(0).name = "renamed"; }),
              "ck/sweep.checkpoint: model 0 is 'renamed', but the sweep's is"),
      damaged("a model left out, the CRC recomputed",
              edit_checkpoint([](hydra::sweep_checkpoint& c) { c.models.pop_back(); }),
              "ck/sweep.checkpoint: 2 models, but the sweep has 3"),
      damaged("the fingerprint edited, the CRC recomputed",
              edit_checkpoint([](hydra::sweep_checkpoint& c) { c.fingerprint += " edited"; }),
              "--resume: the checkpoint ck/sweep.checkpoint is of another sweep"),
      damaged(
          "both kept files damaged",
          [](fs::path const& ck) {
            fs::copy_file(ck / "sweep.checkpoint", ck / "sweep.checkpoint.1");
            flip(0, 0x01)(ck);
            auto bytes = read_bytes(ck / "sweep.checkpoint.1");
            bytes.back() ^= 0x80;
            write_bytes(ck / "sweep.checkpoint.1", bytes);
          },
          "ck/sweep.checkpoint: not a hydra sweep checkpoint; ck/sweep.checkpoint.1: corrupt (CRC-32 "),
      damaged(
          "the latest missing, the older one damaged",
          [](fs::path const& ck) {
            fs::rename(ck / "sweep.checkpoint", ck / "sweep.checkpoint.1");
            write_text(ck / "sweep.checkpoint.1", "HYDRASW");
          },
          "ck/sweep.checkpoint: missing; ck/sweep.checkpoint.1: truncated (7 bytes)"),
      damaged(
          "a directory in place of the checkpoint",
          [](fs::path const& ck) {
            fs::remove(ck / "sweep.checkpoint");
            fs::create_directory(ck / "sweep.checkpoint");
          },
          refused + "not a regular file"),
      model_selection_row("resumed with other epochs", resume_with(data, "--epochs", "2"),
                          "--resume: the checkpoint ck/sweep.checkpoint is of another sweep (batch 32 epochs 1",
                          checkpoint(base)),
      model_selection_row("resumed with another search", resume_with(data, "--search", "sha"),
                          "--resume: the checkpoint ck/sweep.checkpoint is of another sweep", checkpoint(base)),
      model_selection_row("resumed with another grid", resume_with(data, "--grid", "mlp"),
                          "--resume: the checkpoint ck/sweep.checkpoint is of another sweep", checkpoint(base)),
      model_selection_row("a new run on a directory holding a checkpoint", tiny_sweep(data),
                          "--checkpoint-dir: ck/sweep.checkpoint exists; continue it with --resume, or replace it "
                          "with --overwrite",
                          checkpoint(base)),
      model_selection_row(
          "a new run on a directory holding only an older checkpoint", tiny_sweep(data),
          "--checkpoint-dir: ck/sweep.checkpoint.1 exists",
          checkpoint(base, [](fs::path const& ck) { fs::rename(ck / "sweep.checkpoint", ck / "sweep.checkpoint.1"); })),
      model_selection_row("a resume while another run holds the directory", resume(data),
                          "checkpoint directory ck is in use by another run (process {pid}",
                          [base](fs::path const& directory) -> std::shared_ptr<void> {
                            checkpoint(base)(directory);
                            return std::make_shared<hydra::checkpoint_directory>((directory / "ck").string());
                          }),
      model_selection_row("a checkpoint directory that is a file", {"--data-dir", "{data}", "--checkpoint-dir", "file"},
                          "--checkpoint-dir: checkpoint directory: cannot make file: ",
                          [](fs::path const& directory) -> std::shared_ptr<void> {
                            write_text(directory / "file", "not a folder\n");
                            return nullptr;
                          }),
      model_selection_row("a checkpoint directory under a file",
                          {"--data-dir", "{data}", "--checkpoint-dir", "file/ck"}, "is not a folder",
                          [](fs::path const& directory) -> std::shared_ptr<void> {
                            write_text(directory / "file", "not a folder\n");
                            return nullptr;
                          }),
  };
  run_table(rows, scratch / "rows");
  fs::remove_all(scratch);
}

TEST_CASE("hydra-sim refuses malformed, mistyped and empty workloads, naming the file and the place") {
  auto const workload = [](std::string text) {
    return [text](fs::path const& directory) -> std::shared_ptr<void> {
      write_text(directory / "w.json", text);
      return nullptr;
    };
  };
  auto const r = [&](std::string what, std::string text, std::string message) {
    return hydra_sim_row(std::move(what), {"--workload", "w.json"}, std::move(message), workload(std::move(text)));
  };
  std::string const devices = R"("devices": {"count": 2, "budget_bytes": 1e9})";
  auto const one_model = [&](std::string const& model) {
    std::string text = "{";
    text += devices;
    text += R"(, "models": [)";
    text += model;
    text += "]}";
    return text;
  };
  std::string const shard = R"({"forward_seconds": 1, "backward_seconds": 2})";
  std::string deep(300, '[');
  std::vector<row> const rows = {
      hydra_sim_row("a missing file", {"--workload", "missing.json"}, "workload file missing.json: cannot be opened"),
      hydra_sim_row("a device, not a file", {"--workload", "/dev/null"}, "/dev/null: not a regular file"),
      r("an empty file", "", "w.json:1:1: syntax error while parsing value - unexpected end of input"),
      r("binary garbage", std::string("\x89PNG\r\n\x1a\n\0\0", 10),
        "w.json:1:1: syntax error while parsing value - invalid literal"),
      r("a bracket left open", R"({"models": [})", "w.json:1:13: syntax error while parsing value - unexpected '}'"),
      r("an unterminated string", R"({"a": "unterminated})",
        "w.json:1:21: syntax error while parsing value - invalid string: missing closing quote"),
      r("text after the document", "{} extra",
        "w.json:1:4: syntax error while parsing value - invalid literal; last read: '{} e'; expected end of input"),
      r("nested 300 deep", deep, "nested deeper than 256 levels"),
      r("an array, not an object", "[1, 2]", "w.json: the document must be an object, not an array"),
      r("NaN", one_model(R"({"name": "m", "minibatches": 2, "shards": [{"forward_seconds": NaN}]})"),
        "w.json:1:122: syntax error while parsing value - invalid literal"),
      r("a number out of range", R"({"devices": {"count": 2, "budget_bytes": 1e400}, "models": []})",
        "w.json: number overflow parsing '1e400'"),
      r("an unpaired surrogate", R"({"description": "\ud800"})",
        "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"),
      r("a member named twice", R"({"devices": {"count": 2, "budget_bytes": 1e9, "count": 3}, "models": []})",
        "w.json: an object names \"count\" twice"),
      r("a newer format version", R"({"version": 7, "devices": {"count": 2, "budget_bytes": 1e9}, "models": []})",
        "w.json: version 7 was written by a newer hydra; this one reads up to version 6"),
      r("a device of speed 0", R"({"devices": {"count": 2, "budget_bytes": 1e9, "speed": 0}, "models": []})",
        "w.json: devices.speed is 0; a speed is > 0 and at most 1e6"),
      r("a negative hand-off", R"({"devices": {"count": 2, "budget_bytes": 1e9}, "handoff_seconds": -1, "models": []})",
        "w.json: handoff_seconds must be a finite number >= 0"),
      r("a negative link between devices",
        R"({"devices": {"count": 2, "budget_bytes": 1e9}, "between_devices": {"bytes_per_second": -1}, "models": []})",
        "w.json: between_devices.bytes_per_second must be a finite number >= 0"),
      r("host cores beyond the limit",
        R"({"devices": {"count": 2, "budget_bytes": 1e9}, "host_cores": 1e5, "models": []})",
        "w.json: host_cores is 100000, above the limit of 4096"),
      r("a home larger than its shard",
        R"({"devices": {"count": 2, "budget_bytes": 1e9}, "models": [{"minibatches": 1, "shards": [{"forward_seconds": 1, "backward_seconds": 1, "state_bytes": 8, "home_bytes": 9}]}]})",
        "w.json: models[0].shards[0]: home_bytes is above state_bytes"),
      r("an unknown member", R"({"devices": {"count": 2, "budget_bytes": 1e9}, "models": [], "modles": 1})",
        "w.json: the document has an unknown member \"modles\""),
      r("a device count as a string", R"({"devices": {"count": "two", "budget_bytes": 1e9}, "models": []})",
        "w.json: devices.count must be a number, not a string"),
      r("a device count of 1.5", R"({"devices": {"count": 1.5, "budget_bytes": 5}, "models": []})",
        "w.json: devices.count must be a whole number"),
      r("a device count of -1", R"({"devices": {"count": -1, "budget_bytes": 1e9}, "models": []})",
        "w.json: devices.count must be a finite number >= 0"),
      r("a negative budget", R"({"devices": {"count": 1, "budget_bytes": -5}, "models": []})",
        "devices.budget_bytes must be a finite"),
      r("models as an object", "{" + devices + R"(, "models": {"a": 1}})",
        "w.json: \"models\" must be an array, not an object"),
      r("a model name as a number", one_model(R"({"name": 5, "minibatches": 2, "shards": [)" + shard + "]}"),
        "w.json: models[0].name must be a string, not a number"),
      r("minibatches as a string", one_model(R"({"name": "m", "minibatches": "many", "shards": [)" + shard + "]}"),
        "w.json: models[0].minibatches must be a number, not a string"),
      r("negative minibatches", one_model(R"({"name": "m", "minibatches": -3, "shards": [)" + shard + "]}"),
        "w.json: models[0].minibatches must be a finite number >= 0"),
      r("negative seconds",
        one_model(R"({"name": "m", "minibatches": 2, "shards": [{"forward_seconds": -1, "backward_seconds": 2}]})"),
        "w.json: models[0].shards[0].forward_seconds must be a finite number >= 0"),
      r("a shard without its backward time",
        one_model(R"({"name": "m", "minibatches": 2, "shards": [{"forward_seconds": 1}]})"),
        "models[0].shards[0] needs \"forward_seconds\" and \"backward_seconds\""),
      r("a model of no shards", one_model(R"({"name": "m", "minibatches": 2, "shards": []})"),
        "workload: model 0 (m) has no shards"),
      r("a shard larger than every device",
        one_model(R"({"name": "m", "minibatches": 2, "shards": [{"forward_seconds": 1, "backward_seconds": 2, )"
                  R"("state_bytes": 1e12}]})"),
        "workload: model 0 (m) shard 0 needs 1000000000000 bytes"),
      r("no models member", "{" + devices + "}", "w.json: no \"models\""),
      r("no models", "{" + devices + R"(, "models": []})", "workload: no models"),
      r("an empty device list",
        R"({"devices": [], "models": [{"name": "m", "minibatches": 2, "shards": [)" + shard + "]}]}",
        "w.json: it lists no devices"),
      r("no devices",
        R"({"devices": {"count": 0, "budget_bytes": 1e9}, "models": [{"name": "m", "minibatches": 2, )"
        R"("shards": [)" +
            shard + "]}]}",
        "w.json: it lists no devices"),
      // What would run for days, exhaust memory or print NaNs.
      r("a trillion minibatches", one_model(R"({"name": "m", "minibatches": 1e12, "shards": [)" + shard + "]}"),
        "w.json: models[0].minibatches is 1000000000000, above the limit of 1000000"),
      r("no minibatches", one_model(R"({"name": "m", "minibatches": 0, "shards": [)" + shard + "]}"),
        "w.json: models[0].minibatches is 0; at least 1"),
      r("a trillion devices", R"({"devices": {"count": 1e12, "budget_bytes": 1e9}, "models": []})",
        "w.json: devices.count is 1000000000000, above the limit of 4096"),
      r("1e308 seconds",
        one_model(R"({"name": "m", "minibatches": 2, "shards": [{"forward_seconds": 1e308, "backward_seconds": 1}]})"),
        "w.json: models[0].shards[0].forward_seconds is 1e+308 s, above the limit of 1000000000 s"),
      r("no work at all",
        one_model(R"({"name": "m", "minibatches": 2, "shards": [{"forward_seconds": 0, "backward_seconds": 0}]})"),
        "w.json: no work to simulate"),
      r("a device of no memory", R"({"devices": {"count": 2, "budget_bytes": 0}, "models": []})",
        "w.json: devices.budget_bytes is 0; a device needs memory"),
      r(
          "more tasks than a run can simulate",
          [&] {
            std::string shards;
            for (int s = 0; s < 60; ++s) shards += (s == 0 ? "" : ", ") + shard;
            return one_model(R"({"name": "m", "minibatches": 1e6, "shards": [)" + shards + "]}");
          }(),
          "w.json: 120000000 tasks (2 x shards x minibatches, over all models), above hydra-sim's limit of 100000000"),
      hydra_sim_row("a folder, not a file", {"--workload", "."}, "workload file .: not a regular file"),
  };
  run_table(rows, hydra::testing::scratch_directory("bad_input_workloads"));
}

TEST_CASE("both programs refuse output paths they cannot write, and make no file") {
  auto const with_file = [](fs::path const& directory) -> std::shared_ptr<void> {
    write_text(directory / "file", "a file, not a folder\n");
    return nullptr;
  };
  std::vector<row> const rows = {
      model_selection_row("a trace in a missing folder", {"--data-dir", "{data}", "--trace", "missing/t.json"},
                          "--trace: cannot write missing/t.json: No such file or directory"),
      model_selection_row("a report in a missing folder", {"--data-dir", "{data}", "--report", "missing/r.html"},
                          "--report: cannot write missing/r.html: No such file or directory"),
      model_selection_row("a report under a file", {"--data-dir", "{data}", "--report", "file/r.html"},
                          "--report: cannot write file/r.html: Not a directory", with_file),
      model_selection_row("a trace that is a folder", {"--data-dir", "{data}", "--trace", "."},
                          "--trace: . is a directory"),
      model_selection_row("a trace and a report in one file",
                          {"--data-dir", "{data}", "--trace", "out.html", "--report", "out.html"},
                          "--report and --trace name the same file, out.html"),
      model_selection_row("a profile and a trace in one file",
                          {"--data-dir", "{data}", "--trace", "out.json", "--profile", "out.json"},
                          "--profile names the same file as --trace, out.json"),
      model_selection_row("a profile in a missing folder", {"--data-dir", "{data}", "--profile", "missing/p.json"},
                          "--profile: cannot write missing/p.json: No such file or directory"),
      // A run refused after its output paths were checked: neither file made.
      model_selection_row("a trace and a report of a run refused for its data",
                          {"--data-dir", "nowhere", "--trace", "t.json", "--report", "r.html"},
                          "nowhere/train-images-idx3-ubyte.gz: missing"),
      // An earlier trace and report outlive a run that fails after checking them.
      model_selection_row("an earlier trace and report, and a run refused for its data",
                          {"--data-dir", "nowhere", "--trace", "t.json", "--report", "r.html"},
                          "nowhere/train-images-idx3-ubyte.gz: missing",
                          [](fs::path const& directory) -> std::shared_ptr<void> {
                            write_text(directory / "t.json", "{\"an earlier\": \"trace\"}\n");
                            write_text(directory / "r.html", "<p>an earlier report</p>\n");
                            return nullptr;
                          }),
      model_selection_row("a data file that is a pipe", {"--data-dir", "pipes"},
                          "pipes/train-images-idx3-ubyte.gz: not a regular file (--data-dir must hold Fashion-MNIST's",
                          [](fs::path const& directory) -> std::shared_ptr<void> {
                            fs::create_directory(directory / "pipes");
                            REQUIRE(::mkfifo((directory / "pipes" / "train-images-idx3-ubyte.gz").c_str(), 0644) == 0);
                            return nullptr;
                          }),
      model_selection_row("a trace of a run refused for its checkpoint",
                          {"--data-dir", "{data}", "--checkpoint-dir", "file", "--trace", "t.json"}, "is not a folder",
                          with_file),
      hydra_sim_row("a trace in a missing folder", {"--random", "1", "--trace", "missing/t.json"},
                    "cannot write the trace to missing/t.json"),
      hydra_sim_row("a trace under a file", {"--random", "1", "--trace", "file/t.json"},
                    "cannot write the trace to file/t.json", with_file),
      hydra_sim_row("a trace that is a folder", {"--random", "1", "--trace", "."}, "cannot write the trace to ."),
      hydra_sim_row("a trace and a workload of a missing workload",
                    {"--workload", "missing.json", "--trace", "t.json", "--write-workload", "w.json"},
                    "workload file missing.json: cannot be opened"),
      hydra_sim_row("a trace and a workload of a malformed workload",
                    {"--workload", "bad.json", "--trace", "t.json", "--write-workload", "w.json"},
                    "bad.json:1:13: syntax error while parsing value - unexpected '}'",
                    [](fs::path const& directory) -> std::shared_ptr<void> {
                      write_text(directory / "bad.json", R"({"models": [})");
                      return nullptr;
                    }),
      hydra_sim_row("a workload written to a missing folder", {"--random", "1", "--write-workload", "missing/w.json"},
                    "cannot write the workload to missing/w.json"),
  };
  run_table(rows, hydra::testing::scratch_directory("bad_input_outputs"));
}
