// The main job with --backend cuda (gpu_tests: skipped without a GPU): the
// example's own CUDA translation unit, on a small subset, against the same
// sweep on the host backend. cuBLAS rounds differently from the host kernels,
// so the two agree within a tolerance (final loss within 2%), not bitwise.
// The data: $HYDRA_FASHION_MNIST_DIR, else Debian's dataset-fashion-mnist. A
// GPU machine without either reports this test as skipped (doctest counts it).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

#include "cuda_sweep.cu" // registers model_selection::run_on_cuda

namespace {
std::string data_directory() {
  char const* given = std::getenv("HYDRA_FASHION_MNIST_DIR");
  return given ? given : fashion_mnist::default_directory;
}
bool data_present() {
  return std::filesystem::exists(data_directory() + "/train-images-idx3-ubyte.gz");
}
} // namespace

TEST_CASE("model_selection --backend cuda: finishes, beats chance, agrees with the host backend" *
          doctest::skip(!data_present())) {
  model_selection::options o;
  o.data_directory = data_directory();
  o.grid = "tiny";
  o.train_subset = 384;
  o.test_subset = 500;
  o.epochs = 2;
  o.batch = 32;
  o.devices = 1;
  o.budget_bytes = 800 * 1024;
  o.search = "grid"; // every model to the end on both backends, to compare them all
  o.image_side = 14;
  std::ostringstream log;
  o.backend = "cuda";
  auto const on_gpu = model_selection::run(o, log);
  o.backend = "host";
  auto const on_host = model_selection::run(o, log);
  REQUIRE(on_gpu.models.size() == 3);
  for (std::size_t m = 0; m < 3; ++m) {
    auto const& gpu = on_gpu.models[m];
    INFO(gpu.config.name());
    REQUIRE_FALSE(gpu.failure.has_value());
    CHECK(gpu.steps == 2 * (320 / 32)); // a sixth of the 384 images is held out for validation
    CHECK(gpu.tested);
    CHECK(gpu.test_accuracy > 0.2); // chance is 0.1
    MESSAGE(gpu.config.name() << ": loss " << gpu.final_loss << " (host " << on_host.models[m].final_loss
                              << "), accuracy " << gpu.test_accuracy << " (host " << on_host.models[m].test_accuracy
                              << ")");
    CHECK(std::fabs(gpu.final_loss - on_host.models[m].final_loss) <= 0.02 * on_host.models[m].final_loss);
  }
  CHECK(on_gpu.bytes_to_device > 0);
  CHECK(on_gpu.device_busy_fraction.at(0) > 0.0);
}
