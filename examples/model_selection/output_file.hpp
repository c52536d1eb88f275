// An output the job writes at its end (--trace, --report), checked at its
// start: an unusable path fails before the training, not after it. What the
// path holds is left alone until the output is complete: it is written under a
// temporary name beside it and renamed over it, so that a run that fails, or
// is killed, leaves an earlier file as it was. A path that names something
// other than a file (/dev/stdout, a pipe) or a symbolic link is written in
// place, at the end, through the path.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>

#include "hydra/core/error.hpp"

namespace model_selection {

class output_file {
public:
  output_file(std::optional<std::string> path, char const* flag) : path_(std::move(path)), flag_(flag) {
    if (!path_) return;
    if (path_->empty()) throw hydra::invalid_argument(flag_ + ": the path is empty");
    std::error_code failed;
    auto const status = std::filesystem::status(*path_, failed);
    if (std::filesystem::is_directory(status)) throw hydra::invalid_argument(flag_ + ": " + *path_ + " is a directory");
    bool const link = std::filesystem::is_symlink(std::filesystem::symlink_status(*path_, failed));
    in_place_ = link || (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status));
    if (in_place_) {
      // Only asked now: opening it would already empty it.
      if (::access(path_->c_str(), W_OK) != 0)
        throw hydra::invalid_argument(flag_ + ": cannot write " + *path_ + ": " + std::strerror(errno));
      return;
    }
    temporary_ = *path_ + ".tmp-" + std::to_string(::getpid());
    file_.open(temporary_, std::ios::binary | std::ios::trunc);
    if (!file_) {
      temporary_.clear();
      throw hydra::invalid_argument(flag_ + ": cannot write " + *path_ + ": " + std::strerror(errno));
    }
  }

  output_file(output_file const&) = delete;
  output_file& operator=(output_file const&) = delete;

  // A run that ended before commit() leaves no temporary behind.
  ~output_file() {
    if (temporary_.empty()) return;
    file_.close();
    std::error_code ignored;
    std::filesystem::remove(temporary_, ignored);
  }

  [[nodiscard]] bool wanted() const noexcept { return path_.has_value(); }
  [[nodiscard]] std::string const& path() const { return *path_; }

  // Where the output goes (call once, when writing it).
  std::ostream& stream() {
    if (in_place_ && !file_.is_open()) {
      file_.open(*path_, std::ios::binary);
      if (!file_) throw hydra::error(flag_ + ": cannot write " + *path_ + ": " + std::strerror(errno));
    }
    return file_;
  }

  // The output is complete: it takes the path's place.
  void commit() {
    file_.close();
    if (!file_) throw hydra::error(flag_ + ": writing " + *path_ + " failed: " + std::strerror(errno));
    if (in_place_) return;
    std::error_code failed;
    std::filesystem::rename(temporary_, *path_, failed);
    if (failed) throw hydra::error(flag_ + ": cannot put " + *path_ + " in place: " + failed.message());
    temporary_.clear();
  }

private:
  std::optional<std::string> path_;
  std::string flag_;
  std::ofstream file_;
  std::string temporary_; // while it is ours to remove
  bool in_place_ = false;
};

} // namespace model_selection
