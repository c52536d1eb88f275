// Main of the GPU test programs: runs the test cases where a CUDA device is
// present, exits 77 (ctest: skipped) where there is none, and fails where
// CUDA is broken (device_gate.hpp). Listing the test cases needs no device:
// the build lists them to register each as its own ctest test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "gpu/device_gate.hpp"

namespace {
bool only_lists(int argc, char** argv) {
  for (int k = 1; k < argc; ++k) {
    std::string_view const argument(argv[k]);
    if (argument.starts_with("--list-") || argument.starts_with("-ltc") || argument.starts_with("-lts") ||
        argument.starts_with("-lr") || argument == "--help" || argument == "-h")
      return true;
  }
  return false;
}
} // namespace

int main(int argc, char** argv) {
  if (!only_lists(argc, argv)) {
    std::string const program = std::filesystem::path(argv[0]).filename().string();
    if (auto const exit_code = gpu_testing::pass_gate(program.c_str())) return *exit_code;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
