#include <doctest/doctest.h>

#include <string>

#include "hydra/core/status_check.hpp"

// A stand-in library whose status codes plug into HYDRA_CHECK like cuBLAS's do.
namespace toy {
enum class status { ok, broken, also_broken };
inline int failures_seen = 0;
} // namespace toy

template <>
struct hydra::status_traits<toy::status> {
  static constexpr char const* library = "toy";
  static bool succeeded(toy::status s) noexcept { return s == toy::status::ok; }
  static char const* name(toy::status s) noexcept { return s == toy::status::broken ? "TOY_BROKEN" : "TOY_OTHER"; }
  static char const* description(toy::status) noexcept { return "the toy broke"; }
  static void on_failure(toy::status) noexcept { ++toy::failures_seen; }
};

namespace {
toy::status call_toy(toy::status result) {
  return result;
}
} // namespace

TEST_CASE("HYDRA_CHECK passes success through and throws backend_error with the call site on failure") {
  CHECK_NOTHROW(HYDRA_CHECK(call_toy(toy::status::ok)));
  toy::failures_seen = 0;
  int const line = __LINE__ + 2;
  try {
    HYDRA_CHECK(call_toy(toy::status::broken));
    FAIL("HYDRA_CHECK did not throw");
  } catch (hydra::backend_error const& failure) {
    std::string const text = failure.what();
    CHECK(failure.library() == "toy");
    CHECK(failure.status_name() == "TOY_BROKEN");
    CHECK(failure.line() == static_cast<unsigned>(line));
    CHECK(failure.file().find("status_check.test.cpp") != std::string::npos);
    CHECK(text.find("call_toy(toy::status::broken)") != std::string::npos);
    CHECK(text.find("the toy broke") != std::string::npos);
    CHECK(text.find("status_check.test.cpp:" + std::to_string(line)) != std::string::npos);
  }
  CHECK(toy::failures_seen == 1);
}

TEST_CASE("a type without status_traits is not checkable") {
  static_assert(hydra::checkable_status<toy::status>);
  static_assert(!hydra::checkable_status<int>);
}
