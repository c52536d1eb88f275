// The model-selection job behind examples/model_selection: a grid of MLPs on
// Fashion-MNIST, trained together by hydra's multi-model trainer on virtual
// devices smaller than every model, with progress, periodic atomic checkpoints
// and resume. Kept in a header so that the tests drive the same code.
#pragma once

#include <unistd.h>

#include <algorithm>
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

struct grid_entry {
  std::size_t width = 0, depth = 0;
  std::string optimizer; // "sgd" or "adam"
  float learning_rate = 0;
  [[nodiscard]] std::string name() const {
    std::ostringstream out;
    out << "w" << width << " d" << depth << " " << optimizer << " lr " << learning_rate;
    return out.str();
  }
};

// widths x depths x optimizers x learning rates. "default": 8 models; "full":
// 16 (two learning rates per optimizer); "tiny": 3 small models (tests).
inline std::vector<grid_entry> make_grid(std::string const& which) {
  std::vector<grid_entry> grid;
  if (which == "tiny") {
    grid.push_back({64, 2, "sgd", 0.05F});
    grid.push_back({64, 3, "adam", 0.002F});
    grid.push_back({96, 2, "adam", 0.001F});
    return grid;
  }
  if (which != "default" && which != "full")
    throw hydra::invalid_argument("--grid: unknown grid '" + which + "'; the grids are default, full and tiny");
  bool const full = which == "full";
  for (std::size_t width : {192, 256})
    for (std::size_t depth : {6, 8}) {
      for (float lr : full ? std::vector<float>{0.02F, 0.05F} : std::vector<float>{0.05F})
        grid.push_back({width, depth, "sgd", lr});
      for (float lr : full ? std::vector<float>{0.0005F, 0.001F} : std::vector<float>{0.001F})
        grid.push_back({width, depth, "adam", lr});
    }
  return grid;
}

struct options {
  std::string data_directory = fashion_mnist::default_directory;
  std::string backend = "host";
  std::string policy = "sharp";
  std::string grid = "default";
  std::size_t devices = 2;
  std::size_t budget_bytes = 2'600 * 1024; // below every default model's footprint
  std::size_t epochs = 2;
  std::size_t train_subset = 0; // 0: all 60,000
  std::size_t test_subset = 0;  // 0: all 10,000
  std::size_t batch = 64;
  std::uint64_t seed = 1;
  std::optional<std::string> trace_path;
  std::optional<std::string> checkpoint_directory;
  bool resume = false;
  std::size_t checkpoint_every = 0;            // minibatches per model between checkpoints; 0: four per run
  std::optional<std::size_t> stop_after_steps; // simulate a crash after the checkpoint at this step
  bool progress_is_terminal = false;
};

struct model_outcome {
  grid_entry config;
  std::size_t steps = 0;
  double test_accuracy = 0;
  double final_loss = 0; // mean of the last 10 minibatch losses
  double finished_seconds = 0;
  std::optional<std::string> failure;
  std::vector<float> parameters;
};

struct outcome {
  std::vector<model_outcome> models;
  double makespan_seconds = 0;
  std::vector<double> device_busy_fraction;
  std::uint64_t bytes_to_device = 0, bytes_to_host = 0;
  std::size_t segments = 0;
  bool stopped_early = false; // stop_after_steps: a simulated crash
  std::vector<hydra::trace_slice> trace;
};

// ---- evaluation: a plain forward pass over the test set ------------------------------

inline double accuracy(std::vector<float> const& parameters, grid_entry const& g, fashion_mnist::split const& test) {
  std::size_t const classes = 10;
  std::size_t correct = 0;
  std::vector<float> a, b;
  for (std::size_t n = 0; n < test.count; ++n) {
    a.assign(test.images.begin() + static_cast<std::ptrdiff_t>(n * test.features),
             test.images.begin() + static_cast<std::ptrdiff_t>((n + 1) * test.features));
    std::size_t in = test.features, offset = 0;
    for (std::size_t layer = 0; layer <= g.depth; ++layer) {
      std::size_t const out = layer == g.depth ? classes : g.width;
      hydra::forward_arguments args;
      args.batch = 1;
      args.input = a.data();
      b.assign(out, 0.0F);
      args.output = b.data();
      args.parameters = parameters.data() + offset;
      hydra::layers::dense::forward_kernel(args, in, out);
      offset += in * out + out;
      if (layer < g.depth)
        for (float& x : b) x = std::max(x, 0.0F);
      std::swap(a, b);
      in = out;
    }
    auto const best = std::max_element(a.begin(), a.end()) - a.begin();
    correct += static_cast<std::size_t>(best) == static_cast<std::size_t>(test.labels[n]);
  }
  return test.count ? static_cast<double>(correct) / static_cast<double>(test.count) : 0.0;
}

// ---- checkpoints ----------------------------------------------------------------

struct checkpoint {
  std::string fingerprint;                                  // what sweep it belongs to
  std::vector<std::optional<hydra::model_snapshot>> models; // nullopt: stopped
  std::vector<std::string> failures;
  std::vector<std::vector<float>> losses;
  double elapsed_seconds = 0;
};

namespace detail {
inline void put(std::ostream& out, std::uint64_t v) {
  out.write(reinterpret_cast<char const*>(&v), sizeof v);
}
inline void put(std::ostream& out, std::string const& s) {
  put(out, s.size());
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}
inline void put(std::ostream& out, std::vector<float> const& v) {
  put(out, v.size());
  out.write(reinterpret_cast<char const*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
}
struct reader {
  std::istream& in;
  std::string path;
  std::uint64_t u64() {
    std::uint64_t v = 0;
    in.read(reinterpret_cast<char*>(&v), sizeof v);
    if (!in) throw hydra::error("checkpoint " + path + ": truncated");
    return v;
  }
  std::string text() {
    std::uint64_t const n = u64();
    if (n > (1U << 20))
      throw hydra::error("checkpoint " + path + ": corrupt (a string of " + std::to_string(n) + " bytes)");
    std::string s(n, '\0');
    in.read(s.data(), static_cast<std::streamsize>(n));
    if (!in) throw hydra::error("checkpoint " + path + ": truncated");
    return s;
  }
  std::vector<float> floats() {
    std::uint64_t const n = u64();
    if (n > (1ULL << 32)) throw hydra::error("checkpoint " + path + ": corrupt (" + std::to_string(n) + " values)");
    std::vector<float> v(n);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
    if (!in) throw hydra::error("checkpoint " + path + ": truncated");
    return v;
  }
};
inline constexpr char const* magic = "hydra sweep checkpoint 1";
} // namespace detail

inline std::string checkpoint_path(std::string const& directory) {
  return directory + "/sweep.checkpoint";
}

// Written to a temporary file, flushed to disk, then renamed over the previous
// one: a crash leaves either the old checkpoint or the new one, never half of one.
inline void write_checkpoint(std::string const& directory, checkpoint const& c) {
  std::filesystem::create_directories(directory);
  std::string const path = checkpoint_path(directory), temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    detail::put(out, std::string(detail::magic));
    detail::put(out, c.fingerprint);
    std::uint64_t elapsed_bits = 0;
    static_assert(sizeof(double) == sizeof(std::uint64_t));
    std::memcpy(&elapsed_bits, &c.elapsed_seconds, sizeof elapsed_bits);
    detail::put(out, elapsed_bits);
    detail::put(out, c.models.size());
    for (std::size_t m = 0; m < c.models.size(); ++m) {
      detail::put(out, c.models[m] ? 1 : 0);
      detail::put(out, c.failures[m]);
      detail::put(out, c.losses[m]);
      if (!c.models[m]) continue;
      detail::put(out, c.models[m]->minibatches_done);
      detail::put(out, c.models[m]->parameters);
      detail::put(out, c.models[m]->optimizer_state);
    }
    out.flush();
    if (!out) throw hydra::error("checkpoint " + temporary + ": write failed");
  }
  if (FILE* f = std::fopen(temporary.c_str(), "rb")) { // flush to the device before the rename
    ::fsync(fileno(f));
    std::fclose(f);
  }
  std::filesystem::rename(temporary, path);
}

inline checkpoint read_checkpoint(std::string const& directory) {
  std::string const path = checkpoint_path(directory);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw hydra::error("--resume: no checkpoint at " + path);
  detail::reader r{in, path};
  if (r.text() != detail::magic) throw hydra::error("checkpoint " + path + ": not a hydra sweep checkpoint");
  checkpoint c;
  c.fingerprint = r.text();
  std::uint64_t const elapsed_bits = r.u64();
  std::memcpy(&c.elapsed_seconds, &elapsed_bits, sizeof elapsed_bits);
  std::uint64_t const count = r.u64();
  if (count > 100'000) throw hydra::error("checkpoint " + path + ": corrupt (" + std::to_string(count) + " models)");
  for (std::uint64_t m = 0; m < count; ++m) {
    bool const alive = r.u64() != 0;
    c.failures.push_back(r.text());
    c.losses.push_back(r.floats());
    if (!alive) {
      c.models.emplace_back();
      continue;
    }
    hydra::model_snapshot s;
    s.minibatches_done = r.u64();
    s.parameters = r.floats();
    s.optimizer_state = r.floats();
    c.models.emplace_back(std::move(s));
  }
  return c;
}

// ---- the sweep ------------------------------------------------------------------

inline std::string fingerprint(options const& o, std::vector<grid_entry> const& grid, std::size_t train_count) {
  std::ostringstream out;
  out << "batch " << o.batch << " epochs " << o.epochs << " train " << train_count << " seed " << o.seed;
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

// What differs between backends: the layers, the backend and the trainer.
// host_training is here; cuda_training is in cuda_sweep.cu (compiled by nvcc
// when the CUDA parts are enabled), which registers run_on_cuda.
struct host_training {
  using config = hydra::model_config;
  using trainer = hydra::multi_model_trainer;
  using backend = hydra::host_backend;
  static hydra::sequential_model<hydra::host_execution_context> mlp(std::size_t features, grid_entry const& g,
                                                                    std::size_t batch) {
    return hydra::layers::make_mlp(features, g.width, g.depth, 10, batch);
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

template <class Training>
outcome run_with(options const& o, std::ostream& log) {
  if (o.devices == 0) throw hydra::invalid_argument("--devices: device count is 0; at least 1 is required");
  if (o.epochs == 0) throw hydra::invalid_argument("--epochs: 0; at least 1 is required");
  if (o.batch == 0) throw hydra::invalid_argument("--batch: 0; at least 1 is required");
  if (o.resume && !o.checkpoint_directory) throw hydra::invalid_argument("--resume needs --checkpoint-dir");
  auto const grid = make_grid(o.grid);
  (void)hydra::make_policy(o.policy); // an unknown name fails here, before any loading

  // Data first: a bad file stops the run before anything trains.
  auto const train =
      std::make_shared<fashion_mnist::split const>(fashion_mnist::load(o.data_directory, "train", o.train_subset));
  auto const test = fashion_mnist::load(o.data_directory, "t10k", o.test_subset);
  if (train->count < o.batch)
    throw hydra::invalid_argument("--train-subset: " + std::to_string(train->count) +
                                  " images, fewer than a batch of " + std::to_string(o.batch));
  std::size_t const total_steps = o.epochs * (train->count / o.batch);
  std::size_t smallest = std::numeric_limits<std::size_t>::max(), largest = 0;
  for (auto const& g : grid) {
    // The single-model trainer's count: all state and all activations, unsharded.
    auto const model = hydra::layers::make_mlp(train->features, g.width, g.depth, 10, o.batch);
    std::size_t const bytes = g.optimizer == "adam"
                                  ? hydra::single_model_trainer<hydra::adam>::footprint(model)
                                  : hydra::single_model_trainer<hydra::sgd_momentum>::footprint(model);
    smallest = std::min(smallest, bytes);
    largest = std::max(largest, bytes);
  }
  log << "training footprints " << hydra::format_bytes(smallest) << " to " << hydra::format_bytes(largest)
      << " per model; "
      << (smallest > o.budget_bytes ? "every model is larger than a device, so each is cut into shards and spilled"
                                    : "some models fit a device whole (a larger --budget than the default)")
      << "\n";
  log << train->count << " training images (" << total_steps << " minibatches of " << o.batch << " per model), "
      << test.count << " test images\n";
  std::string const print = fingerprint(o, grid, train->count);

  std::vector<std::optional<hydra::model_snapshot>> state(grid.size());
  std::vector<std::string> failures(grid.size());
  std::vector<std::vector<float>> losses(grid.size());
  std::vector<double> finished(grid.size(), 0.0);
  double elapsed_before = 0;
  if (o.resume) {
    checkpoint c = read_checkpoint(*o.checkpoint_directory);
    if (c.fingerprint != print)
      throw hydra::invalid_argument("--resume: the checkpoint in " + *o.checkpoint_directory +
                                    " is of another sweep (" + c.fingerprint + "), not this one (" + print + ")");
    state = std::move(c.models);
    failures = std::move(c.failures);
    losses = std::move(c.losses);
    elapsed_before = c.elapsed_seconds;
    std::size_t done = 0;
    for (auto const& s : state) done = s ? std::max(done, s->minibatches_done) : done;
    log << "resuming from " << checkpoint_path(*o.checkpoint_directory) << " at minibatch " << done << " of "
        << total_steps << "\n";
  }
  std::size_t const segment =
      o.checkpoint_directory
          ? (o.checkpoint_every ? o.checkpoint_every : std::max<std::size_t>(1, (total_steps + 3) / 4))
          : total_steps;

  outcome result;
  std::vector<double> busy_seconds(o.devices, 0.0);
  double makespan = 0;
  auto done_of = [&](std::size_t m) { return state[m] ? state[m]->minibatches_done : 0; };
  auto alive = [&](std::size_t m) { return failures[m].empty(); };
  auto const started = std::chrono::steady_clock::now();

  while (true) {
    std::vector<std::size_t> members;
    std::vector<typename Training::config> configs;
    for (std::size_t m = 0; m < grid.size(); ++m) {
      if (!alive(m) || done_of(m) >= total_steps) continue;
      auto const& g = grid[m];
      typename Training::config c{g.name(),
                                  Training::mlp(train->features, g, o.batch),
                                  hydra::sgd_momentum{.learning_rate = g.learning_rate},
                                  std::min(segment, total_steps - done_of(m)),
                                  training_data(train, o.batch, o.seed),
                                  o.seed + m};
      if (g.optimizer == "adam") c.optimizer = hydra::adam{.learning_rate = g.learning_rate};
      c.resume = state[m];
      configs.push_back(std::move(c));
      members.push_back(m);
    }
    if (members.empty()) break;

    auto const backend = Training::make_backend(o.devices, o.budget_bytes);
    hydra::multi_model_options mo;
    mo.record_trace = o.trace_path.has_value();
    mo.progress_interval = std::chrono::milliseconds(o.progress_is_terminal ? 250 : 5000);
    double const segment_start = makespan;
    mo.on_progress = [&](hydra::sweep_progress const& p) {
      std::size_t done_steps = 0, all_steps = grid.size() * total_steps, finished_models = 0;
      for (std::size_t m = 0; m < grid.size(); ++m) {
        auto const at = std::find(members.begin(), members.end(), m);
        std::size_t const steps =
            done_of(m) + (at == members.end() ? 0 : p.steps_done[static_cast<std::size_t>(at - members.begin())]);
        done_steps += alive(m) ? steps : total_steps;
        finished_models += steps >= total_steps || !alive(m);
      }
      double const seconds =
          elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      double const eta =
          done_steps ? seconds * static_cast<double>(all_steps - done_steps) / static_cast<double>(done_steps) : 0;
      std::ostringstream line;
      line << std::fixed << std::setprecision(0) << "models " << finished_models << "/" << grid.size() << "  steps "
           << done_steps << "/" << all_steps << "  " << seconds << " s elapsed, ETA " << eta << " s  busy";
      line << std::setprecision(0);
      for (double b : p.device_busy_fraction) line << " " << 100 * b << "%";
      if (o.progress_is_terminal)
        log << "\r\033[K" << line.str() << std::flush;
      else
        log << line.str() << std::endl; // a log file sees each line as it happens
    };
    typename Training::trainer trainer(*backend, std::move(configs), hydra::make_policy(o.policy), mo);
    trainer.run();
    if (o.progress_is_terminal) log << "\n";
    auto const report = trainer.report();
    double const seconds = std::chrono::duration<double>(report.makespan).count();
    for (std::size_t d = 0; d < o.devices; ++d) busy_seconds[d] += report.device_busy_fraction[d] * seconds;
    result.bytes_to_device += report.bytes_to_device;
    result.bytes_to_host += report.bytes_to_host;
    for (std::size_t k = 0; k < members.size(); ++k) {
      std::size_t const m = members[k];
      auto const& r = trainer.results()[k];
      losses[m].insert(losses[m].end(), r.losses.begin(), r.losses.end());
      if (r.failure) {
        failures[m] = *r.failure;
        state[m].reset();
        continue;
      }
      state[m] = trainer.snapshot(k);
      if (state[m]->minibatches_done >= total_steps)
        finished[m] = segment_start + std::chrono::duration<double>(r.finished).count();
    }
    if (mo.record_trace)
      for (auto slice : trainer.trace()) {
        auto const shift = std::chrono::nanoseconds(static_cast<std::int64_t>(segment_start * 1e9));
        slice.start += shift;
        slice.end += shift;
        result.trace.push_back(std::move(slice));
      }
    makespan += seconds;
    ++result.segments;
    if (o.checkpoint_directory) {
      checkpoint c{print, state, failures, losses,
                   elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()};
      write_checkpoint(*o.checkpoint_directory, c);
      std::size_t done = 0;
      for (std::size_t m = 0; m < grid.size(); ++m) done = std::max(done, done_of(m));
      log << "checkpoint at minibatch " << done << " of " << total_steps << ": "
          << checkpoint_path(*o.checkpoint_directory) << "\n";
      if (o.stop_after_steps && done >= *o.stop_after_steps && done < total_steps) {
        result.stopped_early = true;
        break;
      }
    }
  }

  result.makespan_seconds = makespan;
  for (double b : busy_seconds) result.device_busy_fraction.push_back(makespan > 0 ? b / makespan : 0.0);
  for (std::size_t m = 0; m < grid.size(); ++m) {
    model_outcome out;
    out.config = grid[m];
    out.steps = done_of(m);
    if (!failures[m].empty()) out.failure = failures[m];
    if (state[m]) out.parameters = state[m]->parameters;
    std::size_t const tail = std::min<std::size_t>(10, losses[m].size());
    if (tail)
      out.final_loss = std::accumulate(losses[m].end() - static_cast<std::ptrdiff_t>(tail), losses[m].end(), 0.0) /
                       static_cast<double>(tail);
    out.finished_seconds = finished[m];
    if (!result.stopped_early && !out.failure) out.test_accuracy = accuracy(out.parameters, grid[m], test);
    result.models.push_back(std::move(out));
  }
  return result;
}

} // namespace model_selection
