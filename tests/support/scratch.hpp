// Scratch files for tests: under the system's temporary directory, named by the
// test and the process id so that parallel ctest runs never share one, and never
// in the working directory (where they would end up in commits).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace hydra::testing {

inline std::filesystem::path scratch_directory(std::string const& name) {
  namespace fs = std::filesystem;
  fs::path const dir = fs::temp_directory_path() / ("hydra_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

} // namespace hydra::testing
