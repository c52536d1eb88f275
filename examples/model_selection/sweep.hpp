// The model-selection job behind examples/model_selection: a search over MLPs
// on Fashion-MNIST, trained together by hydra's multi-model trainer on virtual
// devices, the way model selection should be done: models are compared on a
// seeded held-out validation split of the training images (evaluation tasks,
// scheduled like training), poor ones are stopped early (successive halving or
// ASHA) so that their devices go to the survivors, and the test set, read once
// at the end, gives the chosen model's result (the others' test figures are
// reported apart, for reference, and never used to choose). With progress,
// periodic atomic checkpoints and resume.
// Kept in a header so that the tests drive the same code.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fashion_mnist.hpp"
#include "hydra/hydra.hpp"

namespace model_selection {

// One configuration: an MLP (width x depth), or, with block_channels, a CNN
// (hydra::layers::cnn_shape: 3x3 convolution, ReLU and 2x2 pooling blocks of
// these channels, then a dense head of `width` units), and its optimizer.
struct grid_entry {
  std::size_t width = 0, depth = 0;
  std::string optimizer; // "sgd" or "adam"
  float learning_rate = 0;
  std::vector<std::size_t> block_channels{}; // empty: an MLP

  [[nodiscard]] bool is_cnn() const { return !block_channels.empty(); }
  [[nodiscard]] std::string name() const {
    std::ostringstream out;
    if (is_cnn()) {
      out << "cnn";
      for (std::size_t k = 0; k < block_channels.size(); ++k) out << (k ? "-" : " c") << block_channels[k];
      out << " h" << width;
    } else {
      out << "w" << width << " d" << depth;
    }
    out << " " << optimizer << " lr " << learning_rate;
    return out.str();
  }
  [[nodiscard]] hydra::layers::cnn_shape cnn(std::size_t image_side) const {
    return {.input = {1, image_side, image_side}, .block_channels = block_channels, .hidden = width, .classes = 10};
  }
};

// widths x depths x optimizers x learning rates, and small CNNs. "default":
// 8 MLPs and 4 CNNs; "full": 27 MLPs and 6 CNNs; "mlp": 12 MLPs, the earlier
// default (widths 256 and 512, depths 2 and 3, Adam 1e-3 and 3e-4, SGD 0.05);
// "tiny": 3 small MLPs (tests).
inline std::vector<grid_entry> make_grid(std::string const& which) {
  std::vector<grid_entry> grid;
  if (which == "tiny") {
    grid.push_back({64, 2, "sgd", 0.05F});
    grid.push_back({64, 3, "adam", 0.002F});
    grid.push_back({96, 2, "adam", 0.001F});
    return grid;
  }
  if (which == "mlp") {
    for (std::size_t width : {256, 512})
      for (std::size_t depth : {2, 3}) {
        grid.push_back({width, depth, "adam", 0.001F});
        grid.push_back({width, depth, "adam", 0.0003F});
        grid.push_back({width, depth, "sgd", 0.05F});
      }
    return grid;
  }
  if (which != "default" && which != "full")
    throw hydra::invalid_argument("--grid: unknown grid '" + which + "'; the grids are default, full, mlp and tiny");
  bool const full = which == "full";
  for (std::size_t width : full ? std::vector<std::size_t>{128, 256, 512} : std::vector<std::size_t>{256, 512})
    for (std::size_t depth : full ? std::vector<std::size_t>{2, 3, 4} : std::vector<std::size_t>{2, 3}) {
      grid.push_back({width, depth, "adam", 0.001F});
      grid.push_back({width, depth, "adam", 0.0003F});
      if (full) grid.push_back({width, depth, "sgd", 0.05F}); // last at the first rung in every default run tried
    }
  // Two blocks (conv 3x3, ReLU, 2x2 pooling) and a dense head of 128 units.
  // At batch 64 and 28x28 a first convolution of 8 channels needs 4.7 MiB as a
  // shard of its own, 16 channels 9.4 MiB: above half the default budget.
  for (auto const& channels :
       full ? std::vector<std::vector<std::size_t>>{{4, 8}, {8, 16}} : std::vector<std::vector<std::size_t>>{{8, 16}}) {
    grid.push_back({128, 0, "adam", 0.001F, channels});
    grid.push_back({128, 0, "adam", 0.0003F, channels});
    grid.push_back({128, 0, "sgd", 0.05F, channels});
  }
  if (!full) grid.push_back({128, 0, "sgd", 0.02F, {8, 16}});
  return grid;
}

struct options {
  std::string data_directory = fashion_mnist::default_directory;
  std::string backend = "host";
  std::string policy = "sharp";
  std::string grid = "default";
  std::string search = "sha";      // grid (every model to the end), sha (successive halving) or asha
  std::size_t eta = 3;             // sha and asha: the best 1/eta of a rung go on
  std::string schedule = "cosine"; // learning rate: cosine (decays to 0 over --epochs) or constant
  std::size_t devices = 2;
  std::size_t budget_bytes = 16 * 1024 * 1024; // twice the largest layer's working set (784 x 512 with Adam)
  std::size_t epochs = 8;
  std::size_t image_side = 28;       // 28: full images; 14: 2x2 averaged
  std::size_t train_subset = 0;      // 0: all 60,000 (validation included)
  std::size_t validation_images = 0; // held out of the training images; 0: 5,000, or a sixth of a smaller subset
  std::size_t test_subset = 0;       // 0: all 10,000
  std::size_t batch = 64;
  std::uint64_t seed = 1;
  std::optional<std::string> trace_path;
  std::optional<std::string> profile_path; // the models' measured costs, as a workload hydra-sim reads
  std::optional<std::string> report_path;  // an HTML report (report.hpp); needs the schedule recorded, as a trace does
  std::optional<std::string> checkpoint_directory;
  bool resume = false;
  bool overwrite = false;           // replace a checkpoint already in checkpoint_directory instead of refusing to start
  std::size_t keep_checkpoints = 2; // the latest and older ones: a damaged latest falls back to the one before
  std::size_t checkpoint_every =
      0; // minibatches per model, trained in all, between checkpoint files; 0: about four per run
  std::optional<std::size_t> stop_after_steps; // simulate a crash after the first file at or past this many in all
  // Across MPI ranks: minibatches per model per round, between which a rank
  // with idle devices takes a model from the rank expected to finish last;
  // 0: rounds end at the models' checkpoints, and no model moves; nullopt: an epoch.
  std::optional<std::size_t> round_minibatches;
  bool keep_activations = false; // multi_model_options::keep_activations
  bool keep_activation_checkpoints = false; // multi_model_options::keep_activation_checkpoints
  bool copy_activations_between_devices = false; // multi_model_options::copy_activations_between_devices
  bool keep_forward_activations = false;    // multi_model_options::keep_forward_activations
  bool write_back_on_eviction = false;      // multi_model_options::write_back_on_eviction
  std::string evicted_forward_activations = "by-cost"; // multi_model_options::evicted_forward_activations
  bool progress_is_terminal = false;
};

struct model_outcome {
  grid_entry config;
  std::size_t steps = 0;
  std::optional<hydra::evaluation> validation;      // at its last checkpoint: what it was ranked by
  std::vector<hydra::validation_point> validations; // every checkpoint's (minibatches counted over the run)
  double test_accuracy = 0;                         // for reference only: never used to choose
  bool tested = false;
  double final_loss = 0; // mean of the last 10 minibatch losses
  std::optional<std::string> failure;
  std::optional<std::string> stopped_early; // why the search stopped it before its last minibatch
  std::vector<float> parameters;
};

struct outcome {
  std::vector<model_outcome> models;
  std::optional<std::size_t> chosen; // by validation accuracy, among the models that trained furthest
  std::size_t validation_images = 0, test_images = 0;
  std::size_t total_steps = 0;           // a model's minibatches if it trains to the end
  std::size_t minibatches_trained = 0;   // by every model together
  std::size_t minibatches_evaluated = 0; // validation passes, every model together
  double makespan_seconds = 0;
  std::vector<double> device_busy_fraction;
  std::uint64_t bytes_to_device = 0, bytes_to_host = 0;
  std::uint64_t write_backs = 0; // shard states written home (sweep_report::write_backs)
  // One rank's run only: boundary activations copied in from host memory and
  // sent home, and (keep_activations, keep_activation_checkpoints) those read on the device instead.
  std::uint64_t activation_bytes_to_device = 0, activation_bytes_to_host = 0;
  std::uint64_t activations_read_on_device = 0, activation_bytes_read_on_device = 0;
  std::uint64_t activation_checkpoints_read_on_device = 0, activation_checkpoint_bytes_read_on_device = 0;
  std::uint64_t activations_copied_between_devices = 0, activation_bytes_copied_between_devices = 0;
  std::uint64_t forward_activations_kept = 0, recomputations_avoided = 0; // keep_forward_activations
  std::uint64_t forward_activation_bytes_spilled = 0, forward_activation_bytes_read_back = 0;
  std::uint64_t forward_activations_given_up_first = 0;
  bool stopped_early = false; // stop_after_steps: a simulated crash
  std::vector<hydra::trace_slice> trace;
  hydra::sweep_profile profile; // what the run measured of its models and devices
};

// --evicted-forward-activations' names (the command line checked them).
inline hydra::evicted_activations evicted_activations_named(std::string const& name) {
  if (name == "spill") return hydra::evicted_activations::spill;
  if (name == "recompute") return hydra::evicted_activations::recompute;
  return hydra::evicted_activations::by_cost;
}

// The models in rank order, as they were chosen: by how far they trained, then
// by validation; failed models last.
inline std::vector<std::size_t> ranked(std::vector<model_outcome> const& models) {
  std::vector<std::size_t> order(models.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    auto const &x = models[a], &y = models[b];
    if (x.failure || y.failure) return !x.failure && y.failure;
    if (x.steps != y.steps) return x.steps > y.steps;
    if (!x.validation || !y.validation) return x.validation.has_value() && !y.validation.has_value();
    return hydra::better_than(*x.validation, *y.validation);
  });
  return order;
}

// The model chosen from `models`: among those that trained the most
// minibatches (the top rung), the best by validation (ties: the lower index),
// which is the first in rank order that has not failed and was validated.
inline std::optional<std::size_t> choose(std::vector<model_outcome> const& models) {
  for (std::size_t m : ranked(models))
    if (!models[m].failure && models[m].validation) return m;
  return std::nullopt;
}

// ---- checkpoints ----------------------------------------------------------------

// The latest checkpoint in `directory` (hydra::checkpoint_directory's layout).
inline std::string checkpoint_path(std::string const& directory) {
  return directory + "/sweep.checkpoint";
}

// Before any work, and without leaving a trace: the directory can be made or
// written, and it holds no checkpoint that this run would silently replace.
inline void probe_checkpoint_directory(std::string const& directory, bool resume, bool overwrite, std::size_t keep) {
  auto const existing = hydra::checkpoint_directory::existing_checkpoint(directory, keep);
  if (!resume && !overwrite && existing)
    throw hydra::invalid_argument("--checkpoint-dir: " + *existing +
                                  " exists; continue it with --resume, or replace it with --overwrite");
  if (resume && !existing) {
    std::error_code failed;
    throw hydra::invalid_argument("--resume: " +
                                  (std::filesystem::is_directory(directory, failed) ? "no checkpoint in " + directory
                                                                                    : directory + " does not exist") +
                                  "; there is nothing to resume (start the run without --resume)");
  }
  try {
    hydra::checkpoint_directory::probe(directory);
  } catch (hydra::invalid_argument const& refused) {
    throw hydra::invalid_argument(std::string("--checkpoint-dir: ") + refused.what());
  }
}

// ---- the sweep ------------------------------------------------------------------

// Each model's minibatches at its latest checkpoint in `history` (0: none).
inline std::vector<std::size_t> latest_checkpoints(hydra::controller_history const& history, std::size_t models) {
  std::vector<std::size_t> latest(models, 0);
  for (auto const& e : history)
    if (e.reached.model < models) latest[e.reached.model] = std::max(latest[e.reached.model], e.reached.minibatches);
  return latest;
}

// Minibatches trained in all as far as `history`'s checkpoints tell.
inline std::size_t trained_in_all(hydra::controller_history const& history, std::size_t models) {
  auto const latest = latest_checkpoints(history, models);
  return std::accumulate(latest.begin(), latest.end(), std::size_t{0});
}

// --stop-after in a halving search: thrown out of the trainer's run after the
// checkpoint is written, as a crash would end it.
struct simulated_crash {};

inline std::string fingerprint(options const& o, std::vector<grid_entry> const& grid, std::size_t train_count) {
  std::ostringstream out;
  out << "batch " << o.batch << " epochs " << o.epochs << " train " << train_count << " seed " << o.seed << " side "
      << o.image_side << " search " << o.search << " validation " << o.validation_images << " schedule " << o.schedule;
  // A halving search's rungs depend on eta, and ASHA's decisions on how many
  // models train at once (twice the devices): its history replays only there.
  if (o.search != "grid") out << " eta " << o.eta;
  if (o.search == "asha") out << " devices " << o.devices;
  for (auto const& g : grid) out << " | " << g.name();
  return out.str();
}

inline hydra::data_source training_data(std::shared_ptr<fashion_mnist::split const> train, std::size_t batch,
                                        std::uint64_t seed) {
  // Minibatch k: the k-th batch of a per-epoch shuffle; the same for every model,
  // and a function of k alone (a resumed run asks for k onwards).
  std::size_t const per_epoch = train->count / batch;
  struct epoch_order {
    std::size_t epoch = static_cast<std::size_t>(-1);
    std::vector<std::size_t> order;
  };
  auto cache = std::make_shared<epoch_order>(); // the trainer asks from one thread (its run loop)
  return [train, batch, seed, per_epoch, cache](std::size_t k) {
    std::size_t const epoch = k / per_epoch, within = k % per_epoch;
    if (cache->epoch != epoch) {
      cache->order.resize(train->count);
      std::iota(cache->order.begin(), cache->order.end(), std::size_t{0});
      std::shuffle(cache->order.begin(), cache->order.end(), std::mt19937_64(seed * 1'000'003 + epoch));
      cache->epoch = epoch;
    }
    auto const& order = cache->order;
    hydra::minibatch m;
    m.inputs.reserve(batch * train->features);
    for (std::size_t b = 0; b < batch; ++b) {
      std::size_t const n = order[within * batch + b];
      m.inputs.insert(m.inputs.end(), train->images.begin() + static_cast<std::ptrdiff_t>(n * train->features),
                      train->images.begin() + static_cast<std::ptrdiff_t>((n + 1) * train->features));
      m.labels.push_back(train->labels[n]);
    }
    return m;
  };
}

// Minibatch k of `images` in order (validation and test passes): images
// k * batch .. (k + 1) * batch - 1.
inline hydra::data_source in_order(std::shared_ptr<fashion_mnist::split const> images, std::size_t batch) {
  return [images, batch](std::size_t k) {
    hydra::minibatch m;
    auto const first = images->images.begin() + static_cast<std::ptrdiff_t>(k * batch * images->features);
    m.inputs.assign(first, first + static_cast<std::ptrdiff_t>(batch * images->features));
    auto const labels = images->labels.begin() + static_cast<std::ptrdiff_t>(k * batch);
    m.labels.assign(labels, labels + static_cast<std::ptrdiff_t>(batch));
    return m;
  };
}

// How far models train: every one to the end (validated each epoch), or as
// successive halving or ASHA decide, with rungs that end at the full run.
inline hydra::any_controller make_controller(options const& o, std::size_t models, std::size_t total_steps,
                                             std::size_t per_epoch) {
  if (o.search == "grid") return hydra::full_grid{.evaluate_every = per_epoch};
  if (o.search != "sha" && o.search != "asha")
    throw hydra::invalid_argument("--search: unknown search '" + o.search + "'; grid, sha or asha");
  if (o.eta < 2) throw hydra::invalid_argument("--eta: " + std::to_string(o.eta) + "; at least 2");
  // As many halvings as it takes to leave one model: the first rung is the
  // full run / eta^halvings.
  std::size_t divisor = 1;
  for (std::size_t left = models; left > 1; left /= o.eta) divisor *= o.eta;
  std::size_t const first_rung = std::max<std::size_t>(1, total_steps / divisor);
  if (o.search == "sha") return hydra::successive_halving({.eta = o.eta, .min_minibatches = first_rung});
  return hydra::asha({.eta = o.eta, .min_minibatches = first_rung});
}

// What differs between backends: the layers, the backend and the trainer.
// host_training is here; cuda_training is in cuda_sweep.cu (compiled by nvcc
// when the CUDA parts are enabled), which registers run_on_cuda.
struct host_training {
  using config = hydra::model_config;
  using trainer = hydra::multi_model_trainer;
  using backend = hydra::host_backend;
  static hydra::sequential_model<hydra::host_execution_context> model(std::size_t image_side, grid_entry const& g,
                                                                      std::size_t batch) {
    if (g.is_cnn()) return hydra::layers::make_cnn(g.cnn(image_side), batch);
    return hydra::layers::make_mlp(image_side * image_side, g.width, g.depth, 10, batch);
  }
  static std::unique_ptr<backend> make_backend(std::size_t devices, std::size_t budget) {
    return std::make_unique<backend>(hydra::host_backend_options{.device_budgets = std::vector(devices, budget)});
  }
};

// Set by cuda_sweep.cu's static initialiser in a build with the CUDA parts.
inline outcome (*run_on_cuda)(options const&, std::ostream&) = nullptr;
inline std::size_t (*cuda_device_count)() = nullptr; // GPUs present (0 without a driver)

template <class Training>
outcome run_with(options const& o, std::ostream& log);

// Runs the sweep; `log` gets the progress display.
inline outcome run(options const& o, std::ostream& log) {
  if (o.backend == "cuda") {
    if (run_on_cuda == nullptr)
      throw hydra::invalid_argument("--backend cuda: this build has no CUDA parts (configure with the CUDA "
                                    "toolkit and HYDRA_ENABLE_CUDA=AUTO or ON); use --backend host");
    return run_on_cuda(o, log);
  }
  if (o.backend != "host")
    throw hydra::invalid_argument("--backend: unknown backend '" + o.backend + "' (host or cuda)");
  return run_with<host_training>(o, log);
}

// The checks every run makes before any data is read (the checkpoint
// directory's are the caller's: across MPI ranks only rank 0 writes there).
inline void check_options(options const& o) {
  if (o.devices == 0) throw hydra::invalid_argument("--devices: device count is 0; at least 1 is required");
  if (o.epochs == 0) throw hydra::invalid_argument("--epochs: 0; at least 1 is required");
  if (o.batch == 0) throw hydra::invalid_argument("--batch: 0; at least 1 is required");
  if (o.schedule != "cosine" && o.schedule != "constant")
    throw hydra::invalid_argument("--lr-schedule: unknown schedule '" + o.schedule + "'; cosine or constant");
  if (o.resume && !o.checkpoint_directory) throw hydra::invalid_argument("--resume needs --checkpoint-dir");
  if (o.stop_after_steps && !o.checkpoint_directory)
    throw hydra::invalid_argument(
        "--stop-after needs --checkpoint-dir: it stops the run after a checkpoint is written");
  auto const grid = make_grid(o.grid);
  (void)hydra::make_policy(o.policy); // an unknown name fails here, before any loading
  (void)make_controller(o, grid.size(), 1, 1);
}

// What a run is made of once its options are checked: the grid, the data
// split three ways, and the sizes that follow from them.
struct prepared_sweep {
  std::vector<grid_entry> grid;
  std::vector<std::string> names;
  std::shared_ptr<fashion_mnist::split const> train, validation, test;
  std::size_t per_epoch = 0, total_steps = 0, validation_minibatches = 0, test_minibatches = 0;
  std::string fingerprint; // what the checkpoints carry: a resume of another sweep is refused
};

// Loads the data (a bad file stops the run before anything trains) and logs
// what the sweep is. `devices_in_all`: the devices of every process (ASHA's
// decisions depend on them, so its checkpoints name them).
inline prepared_sweep prepare(options const& o, std::size_t devices_in_all, std::ostream& log) {
  prepared_sweep p;
  p.grid = make_grid(o.grid);
  auto const& grid = p.grid;
  auto const all_train = fashion_mnist::load(o.data_directory, "train", o.train_subset, o.image_side);
  auto const test = std::make_shared<fashion_mnist::split const>(
      fashion_mnist::load(o.data_directory, "t10k", o.test_subset, o.image_side));
  std::size_t const held_out =
      o.validation_images > 0 ? o.validation_images : std::min<std::size_t>(5'000, all_train.count / 6);
  if (held_out < o.batch || held_out + o.batch > all_train.count)
    throw hydra::invalid_argument("--validation: " + std::to_string(held_out) + " of " +
                                  std::to_string(all_train.count) +
                                  " training images held out; it takes at least a batch (" + std::to_string(o.batch) +
                                  ") and must leave at least a batch to train on");
  auto [train_split, validation_split] = fashion_mnist::hold_out(all_train, held_out, o.seed);
  auto const train = std::make_shared<fashion_mnist::split const>(std::move(train_split));
  auto const validation = std::make_shared<fashion_mnist::split const>(std::move(validation_split));
  if (test->count < o.batch)
    throw hydra::invalid_argument("--test-subset: " + std::to_string(test->count) +
                                  " test images, fewer than a batch of " + std::to_string(o.batch));
  p.train = train;
  p.validation = validation;
  p.test = test;
  p.per_epoch = train->count / o.batch;
  p.total_steps = o.epochs * p.per_epoch;
  p.validation_minibatches = validation->count / o.batch;
  p.test_minibatches = test->count / o.batch;
  std::size_t smallest = std::numeric_limits<std::size_t>::max(), largest = 0;
  for (auto const& g : grid) {
    // The single-model trainer's count: all state and all activations, unsharded.
    auto const model = host_training::model(o.image_side, g, o.batch);
    std::size_t const bytes = g.optimizer == "adam"
                                  ? hydra::single_model_trainer<hydra::adam>::footprint(model)
                                  : hydra::single_model_trainer<hydra::sgd_momentum>::footprint(model);
    smallest = std::min(smallest, bytes);
    largest = std::max(largest, bytes);
  }
  log << "training footprints " << hydra::format_bytes(smallest) << " to " << hydra::format_bytes(largest)
      << " per model; "
      << (smallest > o.budget_bytes ? "every model is larger than a device, so each is cut into shards and spilled"
                                    : "the larger ones are cut into shards; all spill between devices and host memory")
      << "\n";
  log << train->count << " training images (" << p.total_steps << " minibatches of " << o.batch
      << " per model at most), " << p.validation_minibatches * o.batch
      << " held out for validation (chooses the model), " << p.test_minibatches * o.batch
      << " test images (judge the chosen model)\n";
  options counted = o;
  counted.devices = devices_in_all;
  p.fingerprint = fingerprint(counted, grid, all_train.count);
  for (auto const& g : grid) p.names.push_back(g.name());
  return p;
}

// Every model of the grid as the trainer takes it; `state`: where each
// resumes from (nullopt: from its first minibatch).
template <class Training>
std::vector<typename Training::config> make_configs(options const& o, prepared_sweep const& p,
                                                    std::vector<std::optional<hydra::model_snapshot>> const& state) {
  // Sized for a model that trains to the end, also under a halving search: a
  // configuration is judged at a rung as it would be on its way to the end.
  hydra::learning_rate_schedule const schedule{.decay_steps = o.schedule == "cosine" ? p.total_steps : 0};
  std::vector<typename Training::config> configs;
  for (std::size_t m = 0; m < p.grid.size(); ++m) {
    auto const& g = p.grid[m];
    std::size_t const done = state[m] ? state[m]->minibatches_done : 0;
    typename Training::config c{g.name(),
                                Training::model(o.image_side, g, o.batch),
                                hydra::sgd_momentum{.learning_rate = g.learning_rate, .schedule = schedule},
                                p.total_steps - std::min(p.total_steps, done),
                                training_data(p.train, o.batch, o.seed),
                                o.seed + m};
    if (g.optimizer == "adam") c.optimizer = hydra::adam{.learning_rate = g.learning_rate, .schedule = schedule};
    c.resume = state[m];
    c.validation = in_order(p.validation, o.batch);
    c.validation_minibatches = p.validation_minibatches;
    configs.push_back(std::move(c));
  }
  return configs;
}

// One progress line: where the sweep stands, with minibatches counted over
// the whole run (`before`: each model's before this process's run).
inline void log_progress(options const& o, std::size_t models, std::size_t total_steps,
                         std::vector<std::size_t> const& before, hydra::sweep_progress const& p, double elapsed,
                         std::ostream& log) {
  std::size_t done_steps = 0;
  for (std::size_t m = 0; m < models; ++m) done_steps += before[m] + p.steps_done[m];
  std::ostringstream line;
  line << std::fixed << std::setprecision(0) << "models finished " << p.models_finished << ", stopped "
       << p.models_stopped << " of " << models << "  minibatches " << done_steps
       << " (a full grid: " << models * total_steps << ")  " << elapsed << " s";
  if (!p.device_busy_fraction.empty()) line << "  busy";
  for (double b : p.device_busy_fraction) line << " " << 100 * b << "%";
  if (o.progress_is_terminal)
    log << "\r\033[K" << line.str() << std::flush;
  else
    log << line.str() << std::endl; // a log file sees each line as it happens
}

// The test set's figures for `tested` (the evaluations of `models`, in order;
// nullopt: failed as it was evaluated).
inline void record_test(outcome& result, std::vector<std::size_t> const& models,
                        std::vector<std::optional<hydra::evaluation>> const& tested) {
  for (std::size_t j = 0; j < models.size() && j < tested.size(); ++j) {
    if (!tested[j]) continue;
    auto& out = result.models[models[j]];
    out.test_accuracy = tested[j]->accuracy;
    out.tested = true;
  }
}

// The outcome's per-model rows, its compute and its choice, from how far each
// model got (`steps`), its failure, final weights and losses, and every
// checkpoint of the search (those before a resume included).
inline void summarize(outcome& result, prepared_sweep const& p, hydra::controller_history const& history,
                      std::vector<std::size_t> const& steps, std::vector<std::string> const& failures,
                      std::vector<std::vector<float>> parameters, std::vector<std::vector<float>> const& losses) {
  for (auto const& e : history) {
    if (!e.reached.validation) continue;
    auto& out = result.models[e.reached.model];
    out.validations.push_back({e.reached.minibatches, *e.reached.validation});
    out.validation = *e.reached.validation;
    result.minibatches_evaluated += p.validation_minibatches;
  }
  for (std::size_t m = 0; m < p.grid.size(); ++m) {
    auto& out = result.models[m];
    out.config = p.grid[m];
    out.steps = steps[m];
    result.minibatches_trained += out.steps;
    if (!failures[m].empty()) out.failure = failures[m];
    out.parameters = std::move(parameters[m]);
    std::size_t const tail = std::min<std::size_t>(10, losses[m].size());
    if (tail)
      out.final_loss = std::accumulate(losses[m].end() - static_cast<std::ptrdiff_t>(tail), losses[m].end(), 0.0) /
                       static_cast<double>(tail);
  }
  if (!result.stopped_early) result.chosen = choose(result.models);
}

template <class Training>
outcome run_with(options const& o, std::ostream& log) {
  check_options(o);
  if (o.checkpoint_directory)
    probe_checkpoint_directory(*o.checkpoint_directory, o.resume, o.overwrite, o.keep_checkpoints);
  auto const p = prepare(o, o.devices, log);
  auto const& grid = p.grid;
  auto const& names = p.names;
  auto const& print = p.fingerprint;
  std::size_t const total_steps = p.total_steps, per_epoch = p.per_epoch;

  std::vector<std::optional<hydra::model_snapshot>> state(grid.size());
  std::vector<std::string> failures(grid.size());
  std::vector<std::vector<float>> losses(grid.size());
  hydra::controller_history history; // every checkpoint so far (model indices into the grid)
  double elapsed_before = 0;
  // Held until the run ends: a second run on the same directory is refused.
  std::optional<hydra::checkpoint_directory> store;
  if (o.checkpoint_directory) {
    store.emplace(*o.checkpoint_directory, o.keep_checkpoints);
    for (auto const& left : store->removed()) log << "removed " << left << ", a write interrupted by a crash\n";
  }
  if (o.resume) {
    auto loaded = store->load();
    for (auto const& passed : loaded.skipped) log << "passed over " << passed << "\n";
    auto& c = loaded.checkpoint;
    if (c.fingerprint != print)
      throw hydra::invalid_argument("--resume: the checkpoint " + loaded.path + " is of another sweep (" +
                                    c.fingerprint + "), not this one (" + print + ")");
    hydra::check_against(c, names, total_steps, loaded.path);
    for (std::size_t m = 0; m < grid.size(); ++m) {
      state[m] = std::move(c.models[m].state);
      failures[m] = std::move(c.models[m].failure);
      losses[m] = std::move(c.models[m].losses);
    }
    elapsed_before = c.elapsed_seconds;
    history = std::move(c.history);
    log << "resuming from " << loaded.path << " after " << trained_in_all(history, grid.size())
        << " minibatches in all (a model trains " << total_steps << " at most)\n";
  }
  auto const save = [&](std::vector<std::optional<hydra::model_snapshot>> const& states,
                        std::vector<std::vector<float>> const& curves, hydra::controller_history const& events,
                        double seconds) {
    hydra::sweep_checkpoint c{print, seconds, {}, events};
    for (std::size_t m = 0; m < grid.size(); ++m) c.models.push_back({names[m], states[m], curves[m], failures[m]});
    for (auto const& e : events) // a model that failed during the run: no state to resume from
      if (e.failure) {
        c.models[e.reached.model].failure = *e.failure;
        c.models[e.reached.model].state.reset();
      }
    store->save(c);
  };
  // The checkpoint file is written at the models' checkpoints (each epoch's
  // end in a grid, each rung's in a halving search) once `every` more
  // minibatches per model have been trained in all since the last one: about
  // four files in a grid, fewer in a halving search, which trains less.
  std::size_t const every =
      (o.checkpoint_every ? o.checkpoint_every : std::max<std::size_t>(1, (total_steps + 3) / 4)) * grid.size();

  outcome result;
  result.total_steps = total_steps;
  result.validation_images = p.validation_minibatches * o.batch;
  result.test_images = p.test_minibatches * o.batch;
  result.models.resize(grid.size());
  auto done_of = [&](std::size_t m) { return state[m] ? state[m]->minibatches_done : 0; };
  auto const started = std::chrono::steady_clock::now();
  auto const elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };

  // Every model of the grid is in the trainer, those finished, stopped or
  // failed before a resume too: the controller's history counts on the grid's
  // indices, and replaying it leaves them out again.
  auto configs = make_configs<Training>(o, p, state);

  auto const backend = Training::make_backend(o.devices, o.budget_bytes);
  hydra::multi_model_options mo;
  mo.record_trace = o.trace_path.has_value() || o.report_path.has_value();
  mo.keep_activations = o.keep_activations;
  mo.keep_activation_checkpoints = o.keep_activation_checkpoints;
  mo.copy_activations_between_devices = o.copy_activations_between_devices;
  mo.keep_forward_activations = o.keep_forward_activations;
  mo.write_back_on_eviction = o.write_back_on_eviction;
  mo.evicted_forward_activations = evicted_activations_named(o.evicted_forward_activations);
  mo.progress_interval = std::chrono::milliseconds(o.progress_is_terminal ? 250 : 5000);
  mo.controller = make_controller(o, grid.size(), total_steps, per_epoch);
  mo.resume_history = history;
  std::vector<std::size_t> before(grid.size());
  for (std::size_t m = 0; m < grid.size(); ++m) before[m] = done_of(m);
  mo.on_progress = [&](hydra::sweep_progress const& progress) {
    log_progress(o, grid.size(), total_steps, before, progress, elapsed(), log);
  };
  // What the next checkpoint file holds: each model's state at its latest checkpoint.
  auto saved_state = state;
  auto saved_losses = losses;
  std::size_t written_at = trained_in_all(history, grid.size());
  if (o.checkpoint_directory) {
    mo.on_checkpoint = [&](hydra::model_checkpoint const& c) {
      std::size_t const m = c.reached.model;
      saved_state[m] = c.state;
      saved_losses[m] = losses[m];
      saved_losses[m].insert(saved_losses[m].end(), c.losses.begin(), c.losses.end());
      for (std::size_t stopped : c.stopped) saved_state[stopped].reset();
      std::size_t const in_all = trained_in_all(*c.history, grid.size());
      if (in_all < written_at + every) return;
      written_at = in_all;
      save(saved_state, saved_losses, *c.history, elapsed());
      if (o.progress_is_terminal) log << "\n";
      log << "checkpoint after " << in_all << " minibatches in all: " << checkpoint_path(*o.checkpoint_directory)
          << "\n";
      if (o.stop_after_steps && in_all >= *o.stop_after_steps) throw simulated_crash{};
    };
  }
  typename Training::trainer trainer(*backend, std::move(configs), hydra::make_policy(o.policy), mo);
  try {
    trainer.run();
  } catch (simulated_crash const&) {
    result.stopped_early = true;
    return result;
  }
  if (o.progress_is_terminal) log << "\n";
  history = trainer.history(); // (it starts with the one it resumed)
  auto const report = trainer.report();
  double const makespan = std::chrono::duration<double>(report.makespan).count();
  result.makespan_seconds = makespan;
  result.device_busy_fraction = report.device_busy_fraction;
  result.bytes_to_device = report.bytes_to_device;
  result.bytes_to_host = report.bytes_to_host;
  result.write_backs = report.write_backs;
  result.activation_bytes_to_device = report.activation_bytes_to_device;
  result.activation_bytes_to_host = report.activation_bytes_to_host;
  result.activations_read_on_device = report.activations_read_on_device;
  result.activation_bytes_read_on_device = report.activation_bytes_read_on_device;
  result.activation_checkpoints_read_on_device = report.activation_checkpoints_read_on_device;
  result.activation_checkpoint_bytes_read_on_device = report.activation_checkpoint_bytes_read_on_device;
  result.activations_copied_between_devices = report.activations_copied_between_devices;
  result.activation_bytes_copied_between_devices = report.activation_bytes_copied_between_devices;
  result.forward_activations_kept = report.forward_activations_kept;
  result.recomputations_avoided = report.recomputations_avoided;
  result.forward_activation_bytes_spilled = report.forward_activation_bytes_spilled;
  result.forward_activation_bytes_read_back = report.forward_activation_bytes_read_back;
  result.forward_activations_given_up_first = report.forward_activations_given_up_first;
  std::vector<std::size_t> to_test; // the models with weights after the search
  for (std::size_t m = 0; m < grid.size(); ++m) {
    auto const& r = trainer.results()[m];
    auto& out = result.models[m];
    losses[m].insert(losses[m].end(), r.losses.begin(), r.losses.end());
    if (r.failure) {
      failures[m] = *r.failure;
      state[m].reset();
      continue;
    }
    if (r.stopped_early && r.parameters.empty()) { // stopped by the search: its state is gone
      out.stopped_early = *r.stopped_early;
      state[m].reset();
      continue;
    }
    state[m] = trainer.snapshot(m);
    if (r.stopped_early) out.stopped_early = *r.stopped_early; // paused below its rung's promotion
    to_test.push_back(m);
  }
  if (!to_test.empty()) {
    // The test set, through the same devices and shards: only the chosen
    // model's figure counts; the others are printed for reference.
    record_test(result, to_test, trainer.evaluate(to_test, in_order(p.test, o.batch), p.test_minibatches));
  }
  if (mo.record_trace) result.trace = trainer.trace();
  result.profile = trainer.profile();
  if (o.checkpoint_directory) {
    save(state, losses, history, elapsed());
    log << "checkpoint at the end: " << checkpoint_path(*o.checkpoint_directory) << "\n";
  }

  // The validation curves and the compute, from every checkpoint of the
  // search (those before a resume included).
  auto const reached = latest_checkpoints(history, grid.size());
  std::vector<std::size_t> steps(grid.size());
  std::vector<std::vector<float>> parameters(grid.size());
  for (std::size_t m = 0; m < grid.size(); ++m) {
    steps[m] = state[m] ? done_of(m) : reached[m];
    if (state[m]) parameters[m] = state[m]->parameters;
  }
  summarize(result, p, history, steps, failures, std::move(parameters), losses);
  return result;
}

} // namespace model_selection
