// Runs a program as its own process, as a user runs it, with a deadline: the
// tests of the example programs (bad input, kill and resume) start them so.
// And runs a piece of a test in a forked child, for what ends a process (a
// sanitizer's report of a deliberate error).
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hydra::testing {

struct child_options {
  std::filesystem::path log;                           // stdout and stderr, together
  bool append_to_log = false;                          // else the log starts empty
  std::optional<std::filesystem::path> directory = {}; // its working directory; else this process's
  std::chrono::milliseconds deadline{60'000};          // killed (SIGKILL) if it runs longer
};

struct child_end {
  int status = 0;                  // the exit status; 128 + the signal if a signal ended it
  bool killed_at_deadline = false; // it may have ended on its own just before the signal: see status
  [[nodiscard]] bool killed() const noexcept { return killed_at_deadline && status == 128 + SIGKILL; }
};

inline child_end run_child(char const* binary, std::vector<std::string> const& arguments,
                           child_options const& options) {
  // Made before the fork: the child of a threaded process may not allocate.
  std::vector<char*> argv{const_cast<char*>(binary)};
  for (auto const& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t const child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (options.directory && ::chdir(options.directory->c_str()) != 0) std::_Exit(125);
    // One open file for both, so that neither writes over the other.
    int const out =
        ::open(options.log.c_str(), O_WRONLY | O_CREAT | (options.append_to_log ? O_APPEND : O_TRUNC), 0644);
    if (out < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(out, STDERR_FILENO) < 0) std::_Exit(126);
    ::close(out);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  auto const deadline = std::chrono::steady_clock::now() + options.deadline;
  child_end end;
  int status = 0;
  while (true) {
    pid_t const done = ::waitpid(child, &status, WNOHANG);
    if (done < 0) FAIL("waitpid: " << std::strerror(errno));
    if (done == child) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(child, SIGKILL);
      REQUIRE(::waitpid(child, &status, 0) == child);
      end.killed_at_deadline = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  end.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return end;
}

struct forked_end {
  bool exited_cleanly = false; // exit status 0
  std::string error_output;    // what it wrote to stderr
};

// Runs `work` in a forked child, its stderr to `log`, its stdout nowhere (the
// child's copy of doctest would report the abort there too); a child that
// hangs ends by SIGALRM after 60 s.
template <class Work>
forked_end run_forked(Work&& work, std::filesystem::path const& log) {
  pid_t const child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (std::freopen(log.c_str(), "w", stderr) == nullptr || std::freopen("/dev/null", "w", stdout) == nullptr)
      std::_Exit(126);
    ::alarm(60);
    work();
    std::_Exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  std::ifstream in(log);
  return {.exited_cleanly = WIFEXITED(status) && WEXITSTATUS(status) == 0,
          .error_output = {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()}};
}

} // namespace hydra::testing
