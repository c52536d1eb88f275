// The sweep checkpoint format and its directory: a round trip keeps every
// field; damage anywhere (bit flips, truncation, trailing bytes, a crafted
// count behind a valid checksum) is refused naming the file; a checkpoint of
// another sweep is refused by name; a damaged latest file falls back to the
// one before; a directory serves one run at a time.
#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "hydra/train/checkpoint_directory.hpp"
#include "hydra/train/sweep_checkpoint.hpp"
#include "support/scratch.hpp"

namespace fs = std::filesystem;

namespace {

hydra::sweep_checkpoint sample() {
  hydra::sweep_checkpoint c;
  c.fingerprint = "batch 64 epochs 8 | w512 d2 | cnn";
  c.elapsed_seconds = 123.25;
  c.models.push_back(
      {"w512 d2", hydra::model_snapshot{{1.5F, -2.0F, 3.25F}, {0.5F, 0.25F, 0.0F}, 40}, {2.3F, 1.9F}, ""});
  c.models.push_back({"cnn", std::nullopt, {2.4F}, ""});
  c.models.push_back({"broken", std::nullopt, {}, "the loss became nan at minibatch 3"});
  hydra::evaluation v{.loss = 0.75, .accuracy = 0.875, .samples = 64}; // metric: NaN (none)
  c.history.push_back({{0, 20, v}, std::nullopt});
  c.history.push_back({{1, 20, v}, std::nullopt});
  c.history.push_back({{2, 3, std::nullopt}, std::string("the loss became nan at minibatch 3")});
  c.history.push_back({{0, 40, std::nullopt}, std::nullopt});
  return c;
}

std::vector<std::byte> read_file(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

void write_file(fs::path const& path, std::vector<std::byte> const& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<char const*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The header: magic (8), version (4), body length (8).
constexpr std::size_t header = 20;

// Re-seals a body edited in place with its own CRC-32, as a forger would.
void reseal(std::vector<std::byte>& bytes) {
  std::uint64_t body = 0;
  std::memcpy(&body, bytes.data() + 12, sizeof body);
  std::uint32_t const crc = hydra::detail::crc32_of({bytes.data() + header, body});
  std::memcpy(bytes.data() + header + body, &crc, sizeof crc);
}

} // namespace

TEST_CASE("a sweep checkpoint reads back field for field") {
  auto const c = sample();
  auto const back = hydra::decode(hydra::encode(c), "here");
  CHECK(back.fingerprint == c.fingerprint);
  CHECK(back.elapsed_seconds == c.elapsed_seconds);
  REQUIRE(back.models.size() == c.models.size());
  for (std::size_t m = 0; m < c.models.size(); ++m) {
    CAPTURE(m);
    CHECK(back.models[m].name == c.models[m].name);
    CHECK(back.models[m].failure == c.models[m].failure);
    CHECK(back.models[m].losses == c.models[m].losses);
    REQUIRE(back.models[m].state.has_value() == c.models[m].state.has_value());
    if (!c.models[m].state) continue;
    CHECK(back.models[m].state->parameters == c.models[m].state->parameters);
    CHECK(back.models[m].state->optimizer_state == c.models[m].state->optimizer_state);
    CHECK(back.models[m].state->minibatches_done == c.models[m].state->minibatches_done);
  }
  REQUIRE(back.history.size() == c.history.size());
  for (std::size_t k = 0; k < c.history.size(); ++k) {
    CAPTURE(k);
    auto const &a = back.history[k], &b = c.history[k];
    CHECK(a.reached.model == b.reached.model);
    CHECK(a.reached.minibatches == b.reached.minibatches);
    CHECK(a.failure == b.failure);
    REQUIRE(a.reached.validation.has_value() == b.reached.validation.has_value());
    if (!b.reached.validation) continue;
    CHECK(a.reached.validation->loss == b.reached.validation->loss);
    CHECK(a.reached.validation->accuracy == b.reached.validation->accuracy);
    CHECK(std::isnan(a.reached.validation->metric));
    CHECK(a.reached.validation->samples == b.reached.validation->samples);
  }
}

TEST_CASE("a damaged checkpoint is refused, naming the file and the damage") {
  auto const good = hydra::encode(sample());
  auto const refused = [](std::vector<std::byte> const& bytes, char const* what) {
    CAPTURE(what);
    std::string expected = "dir/sweep.checkpoint: ";
    expected.append(what);
    CHECK_THROWS_WITH_AS((void)hydra::decode(bytes, "dir/sweep.checkpoint"), doctest::Contains(expected.c_str()),
                         hydra::error);
  };
  // A bit flipped at each of several places: the magic, the version, the
  // length, the first body byte, the middle of the parameters, the last
  // event, the checksum itself.
  struct flip {
    std::size_t at;
    char const* what;
  };
  for (auto const& [at, what] : std::vector<flip>{{0, "not a hydra sweep checkpoint"},
                                                  {8, "format version 17; this build reads version 1"},
                                                  {16, "truncated"},
                                                  {header, "corrupt (CRC-32"},
                                                  {good.size() / 2, "corrupt (CRC-32"},
                                                  {good.size() - 5, "corrupt (CRC-32"},
                                                  {good.size() - 1, "corrupt (CRC-32"}}) {
    CAPTURE(at);
    auto bytes = good;
    bytes[at] ^= std::byte{0x10};
    refused(bytes, what);
  }
  for (std::size_t keep : {0UL, 4UL, 19UL, 30UL, good.size() - 1}) {
    CAPTURE(keep);
    refused({good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep)}, keep < 8 ? "truncated (" : "truncated");
  }
  // A length one more, or one less, than the body's.
  for (int delta : {1, -1}) {
    auto bytes = good;
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data() + 12, sizeof length);
    length += static_cast<std::uint64_t>(static_cast<std::int64_t>(delta));
    std::memcpy(bytes.data() + 12, &length, sizeof length);
    refused(bytes, delta > 0 ? "truncated" : "1 trailing bytes after the checkpoint");
  }
  auto longer = good;
  longer.push_back(std::byte{0});
  refused(longer, "1 trailing bytes after the checkpoint");

  // Damage behind a valid checksum (a forged file): every count is bounded
  // by what is left, so nothing is allocated or read past the end.
  std::size_t const fingerprint = 8 + sample().fingerprint.size();
  auto forged = good;
  std::uint64_t const huge = std::numeric_limits<std::uint64_t>::max() / 2;
  std::memcpy(forged.data() + header + fingerprint + 8, &huge, sizeof huge); // the model count
  reseal(forged);
  refused(forged, "corrupt (model count: ");
  forged = good;
  std::memcpy(forged.data() + header, &huge, sizeof huge); // the fingerprint's length
  reseal(forged);
  refused(forged, "corrupt (fingerprint: past the end)");
}

TEST_CASE("a checkpoint of another sweep, or one that trained past the sweep's end, is refused by name") {
  auto const c = sample();
  std::vector<std::string> const names{"w512 d2", "cnn", "broken"};
  CHECK_NOTHROW(hydra::check_against(c, names, 40, "f"));
  CHECK_THROWS_WITH_AS(hydra::check_against(c, {"w512 d2", "cnn"}, 40, "f"),
                       doctest::Contains("f: 3 models, but the sweep has 2"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::check_against(c, {"w512 d2", "cnn2", "broken"}, 40, "f"),
                       doctest::Contains("f: model 1 is 'cnn', but the sweep's is 'cnn2'"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::check_against(c, names, 39, "f"),
                       doctest::Contains("model 0 (w512 d2) has trained 40 minibatches, more than the 39 it may"),
                       hydra::invalid_argument);
  auto late = c;
  late.models[0].state->minibatches_done = 10;
  late.history.push_back({{1, 50, std::nullopt}, std::nullopt});
  CHECK_THROWS_WITH_AS(hydra::check_against(late, names, 40, "f"),
                       doctest::Contains("a checkpoint of model 1 at minibatch 50, past the 40"),
                       hydra::invalid_argument);
}

TEST_CASE("a checkpoint directory keeps the last two, falls back past a damaged one, and serves one run at a time") {
  auto const dir = hydra::testing::scratch_directory("checkpoint_directory") / "run";
  CHECK_FALSE(hydra::checkpoint_directory::holds_checkpoint(dir.string()));
  auto first = sample(), second = sample();
  second.elapsed_seconds = 200;
  {
    hydra::checkpoint_directory store(dir.string());
    CHECK_THROWS_WITH_AS(store.load(), doctest::Contains("sweep.checkpoint: missing"), hydra::error);
    store.save(first);
    CHECK(hydra::checkpoint_directory::holds_checkpoint(dir.string()));
    CHECK_FALSE(fs::exists(store.path(1)));
    store.save(second);
    CHECK(fs::exists(store.path(1)));
    CHECK(store.load().checkpoint.elapsed_seconds == 200);
    for (auto const& entry : fs::directory_iterator(dir)) // no temporary left behind
      CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);

    // A second run on the directory is refused, naming this process.
    std::string const holder = "in use by another run (process " + std::to_string(::getpid());
    CHECK_THROWS_WITH_AS(hydra::checkpoint_directory(dir.string()), doctest::Contains(holder.c_str()),
                         hydra::invalid_argument);

    // The latest damaged: the one before it, and why the latest was passed over.
    auto damaged = read_file(store.path());
    damaged[damaged.size() / 2] ^= std::byte{1};
    write_file(store.path(), damaged);
    auto const loaded = store.load();
    CHECK(loaded.path == store.path(1));
    CHECK(loaded.checkpoint.elapsed_seconds == first.elapsed_seconds);
    REQUIRE(loaded.skipped.size() == 1);
    CHECK(loaded.skipped[0].find(store.path() + ": corrupt (CRC-32") == 0);
    // The next save drops the damaged file instead of keeping it over the good one.
    auto third = sample();
    third.elapsed_seconds = 300;
    store.save(third);
    CHECK(store.load().checkpoint.elapsed_seconds == 300);
    CHECK(hydra::decode(read_file(store.path(1)), "older").elapsed_seconds == first.elapsed_seconds);

    // Both damaged: nothing to resume from, and every file's reason.
    write_file(store.path(), damaged);
    write_file(store.path(1), {damaged.begin(), damaged.begin() + 30});
    CHECK_THROWS_WITH_AS(store.load(), doctest::Contains((store.path(1) + ": truncated").c_str()), hydra::error);
  }
  // Released with its holder: the next run takes it, and removes what a
  // crash left of a write.
  write_file(dir / "sweep.checkpoint.tmp-99999", {std::byte{1}});
  {
    hydra::checkpoint_directory next(dir.string());
    REQUIRE(next.removed().size() == 1);
    CHECK(next.removed()[0] == (dir / "sweep.checkpoint.tmp-99999").string());
    CHECK_FALSE(fs::exists(dir / "sweep.checkpoint.tmp-99999"));
    CHECK(fs::exists(next.path(1))); // nothing else touched
  }
  {
    hydra::checkpoint_directory just_one(dir.string() + "1", 1);
    just_one.save(first);
    just_one.save(second);
    CHECK_FALSE(fs::exists(just_one.path(1)));
  }
  CHECK_THROWS_AS(hydra::checkpoint_directory(dir.string() + "0", 0), hydra::error);
  CHECK_THROWS_WITH_AS(hydra::checkpoint_directory::probe("/dev/null/checkpoints"),
                       doctest::Contains("/dev/null is not a folder"), hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::checkpoint_directory::probe(""), doctest::Contains("the path is empty"),
                       hydra::invalid_argument);
  CHECK_THROWS_WITH_AS(hydra::checkpoint_directory(""), doctest::Contains("the path is empty"),
                       hydra::invalid_argument);
  // Only trying tells that a folder cannot be made (/proc takes no new
  // folders, whoever asks); a probe leaves nothing behind either way.
  if (fs::is_directory("/proc/self")) {
    CHECK_THROWS_WITH_AS(hydra::checkpoint_directory::probe("/proc/hydra-probe/run"),
                         doctest::Contains("cannot make /proc/hydra-probe: "), hydra::invalid_argument);
    CHECK_THROWS_WITH_AS(hydra::checkpoint_directory("/proc/hydra-probe/run"),
                         doctest::Contains("checkpoint directory: cannot make /proc/hydra-probe/run: "), hydra::error);
  }
  hydra::checkpoint_directory::probe((dir.parent_path() / "a" / "b" / "c").string());
  CHECK_FALSE(fs::exists(dir.parent_path() / "a"));
  hydra::checkpoint_directory::probe((dir.parent_path() / "a" / "." / "b" / "").string()); // "a/./b/" is "a/b"
  CHECK_FALSE(fs::exists(dir.parent_path() / "a"));
  CHECK(hydra::checkpoint_directory::existing_checkpoint(dir.string()) == dir.string() + "/sweep.checkpoint");
  fs::remove(dir / "sweep.checkpoint");
  CHECK(hydra::checkpoint_directory::existing_checkpoint(dir.string()) == dir.string() + "/sweep.checkpoint.1");
  fs::remove_all(dir.parent_path());
}
