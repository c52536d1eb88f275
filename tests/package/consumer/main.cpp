// Uses the host backend and a device pool through the installed/added headers.
#include <hydra/hydra.hpp>

#include <cstdio>

int main() {
  using namespace hydra::literals;
  hydra::host_backend backend({.device_budgets = {1_MiB}});
  hydra::device_pool pool(backend, 0);
  auto stream = backend.create_stream(0);
  void* block = pool.allocate(stream, 4_KiB);
  pool.deallocate(stream, block);
  backend.synchronize(stream);
  std::printf("consumer: hydra %d.%d.%d, pool capacity %zu\n", hydra::version_major, hydra::version_minor,
              hydra::version_patch, pool.capacity());
  return block != nullptr && pool.statistics().in_use == 0 ? 0 : 1;
}
