// NVTX ranges in hydra's own domain, so that Nsight Systems shows the schedule:
// the trainers open one per shard task ("<model> shard 2 backward, minibatch 7")
// and the CUDA backend one per copy, on the thread that issues the work; Nsight
// ties each CUDA call inside a range to the GPU work it launched. NVTX 3 is
// header-only and costs a branch when no tool is attached.
#pragma once

#include <nvtx3/nvToolsExt.h>

#include <cstdint>
#include <string>

namespace hydra::cuda {

namespace detail {
inline nvtxDomainHandle_t hydra_domain() {
  static nvtxDomainHandle_t const domain = nvtxDomainCreateA("hydra");
  return domain;
}
} // namespace detail

// Open from construction to destruction, on the constructing thread.
class nvtx_range {
public:
  explicit nvtx_range(char const* message) { push(message, nullptr); }
  // With a number Nsight shows beside the name (a copy's bytes): the message
  // stays a constant, so the range costs no string building per call.
  nvtx_range(char const* message, std::uint64_t payload) { push(message, &payload); }
  explicit nvtx_range(std::string const& message) : nvtx_range(message.c_str()) {}
  nvtx_range(nvtx_range const&) = delete;
  nvtx_range& operator=(nvtx_range const&) = delete;
  ~nvtx_range() { nvtxDomainRangePop(detail::hydra_domain()); }

private:
  static void push(char const* message, std::uint64_t const* payload) {
    nvtxEventAttributes_t attributes{};
    attributes.version = NVTX_VERSION;
    attributes.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    attributes.messageType = NVTX_MESSAGE_TYPE_ASCII;
    attributes.message.ascii = message;
    if (payload) {
      attributes.payloadType = NVTX_PAYLOAD_TYPE_UNSIGNED_INT64;
      attributes.payload.ullValue = *payload;
    }
    nvtxDomainRangePushEx(detail::hydra_domain(), &attributes);
  }
};

} // namespace hydra::cuda
