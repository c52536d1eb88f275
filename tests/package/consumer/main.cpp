// Uses the host backend and a device pool through the installed/added headers
// and, where the consumer asked for hydra::json, writes a workload file and
// reads it back.
#include <hydra/hydra.hpp>

#include <cstdio>
#include <sstream>

#if HYDRA_CONSUMER_JSON
#include <hydra/json.hpp>
#endif

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
  bool ok = block != nullptr && pool.statistics().in_use == 0;
#if HYDRA_CONSUMER_JSON
  std::ostringstream file;
  hydra::sim::write_workload_json(file, hydra::sim::paper_preset());
  auto const back = hydra::sim::parse_workload_json(file.str(), "preset.json");
  std::printf("consumer: hydra::json wrote and read %zu models\n", back.models.size());
  ok = ok && back.models.size() == hydra::sim::paper_preset().models.size();
#endif
  return ok ? 0 : 1;
}
