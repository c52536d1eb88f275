// The model-selection job on the CUDA backend (--backend cuda): the same sweep
// with cuBLAS/cuDNN layers, the CUDA loss, and the optimizers on each GPU's
// compute stream. Devices are GPUs 0..N-1, each with --budget bytes of device
// memory and the models' homes in pinned host memory. Compiled by nvcc into
// model_selection when the CUDA parts are enabled; it registers itself as
// model_selection::run_on_cuda.
#include <memory>
#include <ostream>
#include <vector>

#include "hydra/cuda.cuh"
#include "sweep.hpp"
#if defined(MODEL_SELECTION_WITH_MPI)
#include "across_ranks.hpp"
#endif

namespace model_selection {
namespace {

struct cuda_training {
  using config = hydra::cuda::model_config;
  using trainer = hydra::cuda::multi_model_trainer;
  using backend = hydra::cuda::cuda_backend;
  static hydra::sequential_model<hydra::cuda::cuda_execution_context> model(std::size_t image_side, grid_entry const& g,
                                                                            std::size_t batch) {
    if (g.is_cnn()) return hydra::cuda::layers::make_cnn(g.cnn(image_side), batch);
    return hydra::cuda::layers::make_mlp(image_side * image_side, g.width, g.depth, 10, batch);
  }
  static std::unique_ptr<backend> make_backend(std::size_t devices, std::size_t budget) {
    return std::make_unique<backend>(hydra::cuda::cuda_backend_options{.device_budgets = std::vector(devices, budget)});
  }
};

outcome train_on_cuda(options const& o, std::ostream& log) {
  // Before the data is loaded: no GPU, or a GPU that CUDA cannot use, says so at once.
  auto const found = hydra::cuda::query_devices();
  if (found.presence == hydra::cuda::device_presence::absent)
    throw hydra::invalid_argument("--backend cuda: " + found.describe() + "; use --backend host");
  if (found.presence == hydra::cuda::device_presence::broken) throw hydra::error("--backend cuda: " + found.describe());
  return run_with<cuda_training>(o, log);
}

#if defined(MODEL_SELECTION_WITH_MPI)
// Across MPI ranks: each rank's GPUs are checked as its backend is made,
// where every rank hears of a rank that has none.
std::optional<outcome> train_on_cuda_across_ranks(options const& o, std::ostream& log, MPI_Comm comm,
                                                  across_ranks_report& report) {
  return run_across_ranks<cuda_training>(o, log, comm, report);
}
[[maybe_unused]] bool const registered_across_ranks = (run_on_cuda_across_ranks = &train_on_cuda_across_ranks, true);
#endif

std::size_t gpus() {
  return hydra::cuda::device_count();
}

[[maybe_unused]] bool const registered = (run_on_cuda = &train_on_cuda, cuda_device_count = &gpus, true);

} // namespace
} // namespace model_selection
