// Turns a library's return code into a hydra::backend_error carrying the library,
// the status name, the expression and the file and line of the call.
//
// This header knows no library: each one plugs in by specialising
// hydra::status_traits<Status>. The CUDA runtime, cuBLAS and cuDNN specialisations
// live in hydra/backend/cuda/status.hpp, so a host-only build never includes a
// CUDA header. Usage:
//
//     HYDRA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream));
#pragma once

#include <concepts>
#include <source_location>
#include <string>

#include "hydra/core/error.hpp"

namespace hydra {

// Specialise for a status type S with:
//   static constexpr char const* library;      // "CUDA", "cuBLAS", ...
//   static bool succeeded(S) noexcept;
//   static char const* name(S) noexcept;        // "cudaErrorInvalidValue"
//   static char const* description(S) noexcept; // "invalid argument"
//   static void on_failure(S) noexcept {}        // optional hook, e.g. clear a sticky error
template <class Status>
struct status_traits;

template <class Status>
concept checkable_status = requires(Status status) {
  { status_traits<Status>::library } -> std::convertible_to<char const*>;
  { status_traits<Status>::succeeded(status) } -> std::same_as<bool>;
  { status_traits<Status>::name(status) } -> std::convertible_to<char const*>;
  { status_traits<Status>::description(status) } -> std::convertible_to<char const*>;
};

// Throws backend_error when `status` reports failure.
template <checkable_status Status>
void check_status(Status status, char const* expression, std::source_location where = std::source_location::current()) {
  using traits = status_traits<Status>;
  if (traits::succeeded(status)) [[likely]]
    return;
  if constexpr (requires { traits::on_failure(status); }) traits::on_failure(status);
  throw backend_error(traits::library, traits::name(status), traits::description(status), expression, where);
}

} // namespace hydra

// The macro exists only to capture the expression's text; the location comes
// from std::source_location at the macro's expansion site.
#define HYDRA_CHECK(...) ::hydra::check_status((__VA_ARGS__), #__VA_ARGS__)
