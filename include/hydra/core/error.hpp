// The hydra::error family. Every message names the thing, the quantity, its value
// and the limit it broke ("device 1 pool: requested 2097152 bytes (2.00 MiB) but
// ... capacity ..."), so that an error read in a log is actionable on its own.
// Callers can also catch the precise type and read the numbers as fields.
#pragma once

#include <cstddef>
#include <source_location>
#include <stdexcept>
#include <string>
#include <utility>

#include "hydra/core/bytes.hpp"

namespace hydra {

// Base of everything hydra throws.
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A caller broke a documented precondition (zero devices, an unknown pointer, a
// capacity too small to hold one aligned block, ...).
class invalid_argument : public error {
public:
  using error::error;
};

// A memory resource could not satisfy a request within its hard capacity.
// The resource is left exactly as it was before the request.
class out_of_memory : public error {
public:
  out_of_memory(std::string const& resource, std::size_t requested, std::size_t in_use, std::size_t capacity,
                std::size_t largest_free_block)
      : error(resource + ": cannot allocate " + format_bytes(requested) + "; in use " + format_bytes(in_use) +
              " of capacity " + format_bytes(capacity) + ", largest free block " + format_bytes(largest_free_block)),
        requested_(requested), in_use_(in_use), capacity_(capacity), largest_free_block_(largest_free_block) {}

  [[nodiscard]] std::size_t requested() const noexcept { return requested_; }
  [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t largest_free_block() const noexcept { return largest_free_block_; }

private:
  std::size_t requested_;
  std::size_t in_use_;
  std::size_t capacity_;
  std::size_t largest_free_block_;
};

// A call into a backend library (CUDA runtime, cuBLAS, cuDNN) returned failure.
// Carries the library, the status name and the call site, e.g.
// "CUDA error cudaErrorInvalidValue (invalid argument) in cudaMemcpyAsync(...) at pool.hpp:120".
class backend_error : public error {
public:
  backend_error(std::string library, std::string status_name, std::string const& description,
                std::string const& expression, std::source_location where)
      : error(library + " error " + status_name + " (" + description + ") in " + expression + " at " +
              where.file_name() + ":" + std::to_string(where.line())),
        library_(std::move(library)), status_name_(std::move(status_name)), file_(where.file_name()),
        line_(where.line()) {}

  [[nodiscard]] std::string const& library() const noexcept { return library_; }
  [[nodiscard]] std::string const& status_name() const noexcept { return status_name_; }
  [[nodiscard]] std::string const& file() const noexcept { return file_; }
  [[nodiscard]] unsigned line() const noexcept { return line_; }

private:
  std::string library_;
  std::string status_name_;
  std::string file_;
  unsigned line_;
};

// Work enqueued on a stream threw; reported when the host synchronises with it,
// the way a CUDA stream reports an asynchronous error at the next sync.
class stream_error : public error {
public:
  using error::error;
};

// A task's shard and scratch do not fit beside the work already placed on a
// device right now; the scheduler may place the task later or elsewhere.
class does_not_fit : public error {
public:
  using error::error;
};

// A model was stopped: one of its layers threw, or its loss stopped being finite.
class model_failed : public error {
public:
  using error::error;
};

// Enqueueing one task's work failed part-way: a layer or the optimizer refused
// it, or a copy could not be issued (on the CUDA backend: a cuBLAS, cuDNN or
// CUDA error on the enqueueing thread). What was enqueued was made safe, and the
// task's scratch given back; its model cannot go on, the others can.
class task_failed : public error {
public:
  using error::error;
};

namespace detail {
// Throws invalid_argument unless `condition` holds; `what` is the whole message.
// The literal overload keeps hot-path checks free of string construction.
inline void expects(bool condition, char const* what) {
  if (!condition) [[unlikely]]
    throw invalid_argument(what);
}
inline void expects(bool condition, std::string const& what) {
  if (!condition) [[unlikely]]
    throw invalid_argument(what);
}
} // namespace detail

} // namespace hydra
