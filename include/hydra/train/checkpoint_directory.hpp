// Where a sweep keeps its checkpoints: one directory, held by one run at a
// time, with the latest checkpoint and up to `keep - 1` older ones. A crash
// at any moment leaves a whole checkpoint behind (each is written to a file of
// its own, flushed, renamed into place and the directory flushed), and one
// damaged file does not lose the run: loading falls back to the next older
// one and says why it skipped the newer. POSIX (flock, fsync).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/train/sweep_checkpoint.hpp"

namespace hydra {

class checkpoint_directory {
public:
  // A checkpoint read back, and the newer files that were passed over (each
  // with why: a crash mid-rename, a damaged file).
  struct loaded {
    sweep_checkpoint checkpoint;
    std::string path;
    std::vector<std::string> skipped;
  };

  // Takes `directory` (made if missing) for this run: a second run on it is
  // refused, naming the process that holds it, until this object is gone.
  explicit checkpoint_directory(std::string directory, std::size_t keep = 2)
      : directory_(std::move(directory)), keep_(keep) {
    detail::expects(keep_ >= 1, "checkpoint_directory: keep must be at least 1 (the latest checkpoint)");
    detail::expects(!directory_.empty(), "checkpoint directory: the path is empty");
    std::error_code made;
    std::filesystem::create_directories(directory_, made);
    if (made) throw error("checkpoint directory: cannot make " + directory_ + ": " + made.message());
    std::string const lock = directory_ + "/sweep.lock";
    lock_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_ < 0) throw error("checkpoint directory: cannot open " + lock + ": " + std::strerror(errno));
    if (::flock(lock_, LOCK_EX | LOCK_NB) != 0) {
      char holder[32] = {};
      ssize_t const n = ::pread(lock_, holder, sizeof holder - 1, 0);
      ::close(lock_);
      throw invalid_argument("checkpoint directory " + directory_ + " is in use by another run (process " +
                             (n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string("?")) + ", " +
                             lock + ")");
    }
    std::string const pid = std::to_string(::getpid());
    if (::ftruncate(lock_, 0) != 0 || ::pwrite(lock_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // The lock holds without the PID; only a refused run's message loses it.
    }
    // Holding the lock, no other run is writing here: a temporary file is
    // what a crash left of a write, and only takes room.
    std::error_code failed;
    std::string const prefix = "sweep.checkpoint.tmp-";
    for (auto const& entry : std::filesystem::directory_iterator(directory_, failed))
      if (entry.path().filename().string().rfind(prefix, 0) == 0 && std::filesystem::remove(entry.path(), failed))
        removed_.push_back(entry.path().string());
  }
  checkpoint_directory(checkpoint_directory const&) = delete;
  checkpoint_directory& operator=(checkpoint_directory const&) = delete;
  ~checkpoint_directory() { ::close(lock_); } // closing releases the lock

  // The latest checkpoint's file; older ones are path(1) .. path(keep - 1).
  [[nodiscard]] std::string path(std::size_t age = 0) const { return file_in(directory_, age); }
  [[nodiscard]] std::string const& directory() const noexcept { return directory_; }
  // The temporary files of interrupted writes found and removed on taking the directory.
  [[nodiscard]] std::vector<std::string> const& removed() const noexcept { return removed_; }

  // Writes `c` as the latest checkpoint; the previous latest becomes path(1),
  // and so on, `keep` files in all. A file that load() passed over as
  // unreadable is removed rather than kept, so that it never takes the place
  // of the good one behind it. Any failure leaves the files as they were
  // (less the new one's temporary) and throws hydra::error.
  void save(sweep_checkpoint const& c) {
    namespace fs = std::filesystem;
    std::string const temporary = path() + ".tmp-" + std::to_string(::getpid());
    try {
      {
        auto const bytes = encode(c);
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<char const*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        out.flush();
        if (!out) throw error("checkpoint " + temporary + ": write failed: " + std::strerror(errno));
      }
      flush_to_disk(temporary, O_RDONLY); // the data before the renames
      for (std::string const& bad : unreadable_) fs::remove(bad);
      unreadable_.clear();
      std::size_t kept = 0; // how many files hold checkpoints now, newest first
      while (kept < keep_ && fs::exists(path(kept))) ++kept;
      for (std::size_t age = std::min(kept, keep_ - 1); age > 0; --age) fs::rename(path(age - 1), path(age));
      fs::rename(temporary, path());
      flush_to_disk(directory_, O_RDONLY | O_DIRECTORY); // the renames themselves
    } catch (fs::filesystem_error const& failed) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      throw error("checkpoint " + path() + ": " + failed.what());
    } catch (...) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      throw;
    }
  }

  // The newest checkpoint that reads back whole; an error naming every file
  // tried when none does.
  [[nodiscard]] loaded load() {
    loaded out;
    unreadable_.clear();
    for (std::size_t age = 0; age < keep_; ++age) {
      std::string const file = path(age);
      std::error_code failed;
      if (!std::filesystem::exists(file, failed)) {
        if (age == 0) out.skipped.push_back(file + ": missing");
        continue;
      }
      try {
        out.checkpoint = decode(read_all(file), file);
        out.path = file;
        return out;
      } catch (error const& damaged) {
        out.skipped.push_back(damaged.what());
        unreadable_.push_back(file);
      }
    }
    std::string why;
    for (auto const& s : out.skipped) why += (why.empty() ? "" : "; ") + s;
    throw error("no checkpoint to resume from in " + directory_ + " (" + why + ")");
  }

  // Whether `directory` holds a checkpoint (without taking it).
  [[nodiscard]] static bool holds_checkpoint(std::string const& directory, std::size_t keep = 2) {
    return existing_checkpoint(directory, keep).has_value();
  }

  // The newest checkpoint file in `directory` (of the `keep` it may hold), if any.
  [[nodiscard]] static std::optional<std::string> existing_checkpoint(std::string const& directory,
                                                                      std::size_t keep = 2) {
    std::error_code failed;
    for (std::size_t age = 0; age < keep; ++age)
      if (std::filesystem::exists(file_in(directory, age), failed)) return file_in(directory, age);
    return std::nullopt;
  }

  // Before any work, and without leaving a trace: `directory` exists and can
  // be written, or it can be made (the folders it takes are made, then
  // removed again: only trying tells, in /proc for one).
  static void probe(std::string const& directory) {
    namespace fs = std::filesystem;
    detail::expects(!directory.empty(), "checkpoint directory: the path is empty");
    std::error_code failed;
    fs::path existing = fs::absolute(directory, failed).lexically_normal(); // "a/./b/" is "a/b"
    if (!existing.has_filename()) existing = existing.parent_path();
    std::vector<fs::path> missing; // deepest first
    while (!fs::exists(existing, failed) && existing.has_parent_path() && existing != existing.parent_path()) {
      missing.push_back(existing);
      existing = existing.parent_path();
    }
    if (!fs::is_directory(existing, failed))
      throw invalid_argument("checkpoint directory: cannot make " + directory + ": " + existing.string() +
                             " is not a folder");
    if (::access(existing.c_str(), W_OK | X_OK) != 0)
      throw invalid_argument("checkpoint directory: cannot write in " + existing.string() + ": " +
                             std::strerror(errno));
    std::vector<fs::path> made;                      // by this probe, deepest last
    for (std::size_t k = missing.size(); k-- > 0;) { // shallowest first
      if (::mkdir(missing[k].c_str(), 0755) == 0) {
        made.push_back(missing[k]);
        continue;
      }
      if (errno == EEXIST) continue; // made meanwhile, by someone else: not ours to remove
      std::string const why = std::strerror(errno);
      for (auto undo = made.rbegin(); undo != made.rend(); ++undo) ::rmdir(undo->c_str());
      throw invalid_argument("checkpoint directory: cannot make " + missing[k].string() + ": " + why);
    }
    for (auto undo = made.rbegin(); undo != made.rend(); ++undo) ::rmdir(undo->c_str());
  }

private:
  static std::string file_in(std::string const& directory, std::size_t age) {
    std::string file = directory;
    file.append("/sweep.checkpoint");
    if (age > 0) file.append(".").append(std::to_string(age));
    return file;
  }

  static std::vector<std::byte> read_all(std::string const& file) {
    std::error_code failed;
    if (!std::filesystem::is_regular_file(file, failed)) throw error(file + ": not a regular file");
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) throw error(file + ": cannot open: " + std::strerror(errno));
    auto const size = static_cast<std::streamsize>(in.tellg());
    if (size < 0) throw error(file + ": cannot tell its size");
    std::vector<std::byte> bytes(static_cast<std::size_t>(size));
    in.seekg(0);
    if (!in.read(reinterpret_cast<char*>(bytes.data()), size))
      throw error(file + ": read failed: " + std::strerror(errno));
    return bytes;
  }

  static void flush_to_disk(std::string const& what, int flags) {
    int const fd = ::open(what.c_str(), flags);
    if (fd < 0 || ::fsync(fd) != 0) {
      int const cause = errno;
      if (fd >= 0) ::close(fd);
      throw error("checkpoint: cannot flush " + what + " to disk: " + std::strerror(cause));
    }
    ::close(fd);
  }

  std::string directory_;
  std::size_t keep_;
  int lock_ = -1;
  std::vector<std::string> unreadable_; // what the last load() passed over
  std::vector<std::string> removed_;
};

} // namespace hydra
