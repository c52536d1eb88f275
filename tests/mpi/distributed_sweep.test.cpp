#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "hydra/mpi.hpp"
#include "support/trained_alone.hpp"

using namespace hydra::literals;
using context = hydra::host_execution_context;
using hydra::testing::bitwise_equal;

namespace {

constexpr std::size_t features = 16, classes = 5, batch = 8;

hydra::model_config config(std::string name, std::size_t width, std::size_t depth, std::size_t steps,
                           std::uint64_t seed, bool adam) {
  hydra::model_config c{
      std::move(name),
      hydra::layers::make_mlp(features, width, depth, classes, batch),
      hydra::adam{.learning_rate = 0.01F},
      steps,
      hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = seed + 100},
      seed};
  if (!adam) c.optimizer = hydra::sgd_momentum{.learning_rate = 0.05F};
  return c;
}

// Seven models of different lengths: more than any rank count the tests run
// with, and uneven, so that longest-first placement has something to do.
std::vector<hydra::model_config> sweep() {
  std::vector<hydra::model_config> configs;
  configs.push_back(config("adam w32 d6", 32, 6, 4, 1, true));
  configs.push_back(config("sgd w24 d4", 24, 4, 3, 2, false));
  configs.push_back(config("adam w16 d3", 16, 3, 5, 3, true));
  configs.push_back(config("sgd w32 d8", 32, 8, 2, 4, false));
  configs.push_back(config("adam w24 d5", 24, 5, 3, 5, true));
  configs.push_back(config("sgd w16 d6", 16, 6, 4, 6, false));
  configs.push_back(config("adam w32 d4", 32, 4, 3, 7, true));
  return configs;
}

// One long model and six short ones of the same shape: longest-first puts the
// long one alone on rank 0 and the short ones on the others, so rank 0 has an
// idle device from the first round on and takes short models.
std::vector<hydra::model_config> uneven() {
  std::vector<hydra::model_config> configs;
  configs.push_back(config("long", 24, 4, 12, 1, true));
  for (std::uint64_t k = 0; k < 6; ++k)
    configs.push_back(config("short " + std::to_string(k), 24, 4, 2, 2 + k, k % 2 == 0));
  return configs;
}

// Each rank's machine: two host devices small enough that the models spill.
hydra::host_backend_options machine() {
  return {.device_budgets = {96_KiB, 96_KiB}};
}

hydra::any_policy sharp() {
  return hydra::sharp{};
}

// Each configuration trained alone, once asked and then kept: rank 0 asks
// after the collective calls, since one that threw before them would leave
// the other ranks waiting.
class trained_alone_once {
public:
  explicit trained_alone_once(std::vector<hydra::model_config> const& configs) : configs_(&configs) {}
  std::vector<hydra::testing::solo_result> const& get() {
    if (results_.empty())
      for (auto const& c : *configs_) results_.push_back(hydra::testing::train_alone(c));
    return results_;
  }

private:
  std::vector<hydra::model_config> const* configs_;
  std::vector<hydra::testing::solo_result> results_;
};

// A model's result over the ranks against the same model trained alone.
void check_as_alone(hydra::model_result const& result, hydra::model_config const& config,
                    hydra::testing::solo_result const& alone) {
  CHECK(result.name == config.name);
  CHECK_FALSE(result.failure.has_value());
  CHECK(result.steps == config.steps);
  CHECK(bitwise_equal(result.parameters, alone.parameters));
  CHECK(bitwise_equal(result.losses, alone.losses));
}

// `configs` with validation data: `minibatches` held-out minibatches each,
// seeded from `seed`.
std::vector<hydra::model_config> with_validation(std::vector<hydra::model_config> configs, std::uint64_t seed,
                                                 std::size_t minibatches) {
  for (std::size_t m = 0; m < configs.size(); ++m) {
    configs[m].validation =
        hydra::synthetic_classification{.features = features, .classes = classes, .batch = batch, .seed = seed + m};
    configs[m].validation_minibatches = minibatches;
  }
  return configs;
}

// Validation points over the ranks against one process's: the same places, the same losses.
void check_same_validations(std::vector<hydra::validation_point> const& got,
                            std::vector<hydra::validation_point> const& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t v = 0; v < want.size(); ++v) {
    CHECK(got[v].minibatches == want[v].minibatches);
    CHECK(got[v].metrics.loss == want[v].metrics.loss);
  }
}

// The same sweep in one process, under sharp: the reference of every
// controlled sweep over ranks.
std::vector<hydra::model_result> in_one_process(std::vector<hydra::model_config> configs,
                                                hydra::multi_model_options const& options) {
  hydra::host_backend backend(machine());
  hydra::multi_model_trainer trainer(backend, std::move(configs), hydra::sharp{}, options);
  trainer.run();
  return trainer.results();
}

int this_rank() {
  return hydra::mpi::rank(MPI_COMM_WORLD);
}
int rank_count() {
  return hydra::mpi::size(MPI_COMM_WORLD);
}

// The world's ranks but the last (the one rank when there is only one), to
// resume on; MPI_COMM_NULL on the rank left out. Collective.
MPI_Comm one_rank_fewer() {
  int const resuming = std::max(1, rank_count() - 1);
  MPI_Comm fewer = MPI_COMM_NULL;
  hydra::mpi::check(MPI_Comm_split(MPI_COMM_WORLD, this_rank() < resuming ? 0 : MPI_UNDEFINED, this_rank(), &fewer),
                    "MPI_Comm_split");
  return fewer;
}

} // namespace

TEST_CASE("models go to ranks longest first, each to the rank where it ends soonest") {
  auto const configs = sweep();
  std::vector<double> work;
  for (auto const& c : configs) work.push_back(hydra::mpi::estimated_seconds(c));
  CHECK(work[3] > work[2]); // deeper and wider, though shorter
  std::vector<std::size_t> const two_ranks{2, 2};
  auto const placed = hydra::mpi::place_on_ranks(configs, two_ranks);
  REQUIRE(placed.size() == configs.size());
  double on[2] = {0, 0};
  for (std::size_t m = 0; m < configs.size(); ++m) on[placed[m]] += work[m];
  // Longest first over two equal ranks ends within the longest model of even.
  double const longest = *std::max_element(work.begin(), work.end());
  CHECK(std::abs(on[0] - on[1]) <= longest);
  // A rank with more devices takes more of the work.
  std::vector<std::size_t> const uneven{1, 4};
  auto const skewed = hydra::mpi::place_on_ranks(configs, uneven);
  double weighted[2] = {0, 0};
  for (std::size_t m = 0; m < configs.size(); ++m) weighted[skewed[m]] += work[m];
  CHECK(weighted[1] > weighted[0]);
  // Bad launches.
  std::vector<std::size_t> const eight(8, 1);
  CHECK_THROWS_WITH_AS((void)hydra::mpi::place_on_ranks(configs, eight),
                       "mpi sweep: 8 ranks for 7 models; every rank needs a model to train (launch at most 7 ranks)",
                       hydra::invalid_argument);
  std::vector<std::size_t> const idle{2, 0};
  CHECK_THROWS_WITH_AS((void)hydra::mpi::place_on_ranks(configs, idle),
                       "mpi sweep: rank 1 has 0 devices; every rank needs at least 1", hydra::invalid_argument);
}

TEST_CASE("a sweep over the ranks ends with every model bitwise as in one process, under every policy") {
  auto const reference = sweep();
  trained_alone_once solo(reference);
  for (std::string const policy : {"sharp", "fifo", "round_robin", "random_pick"}) {
    CAPTURE(policy);
    hydra::host_backend backend(machine());
    auto const report =
        hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, sweep(), [&] { return hydra::make_policy(policy, 3); }, {});
    CHECK_FALSE(report.error.has_value());
    // No REQUIRE before the next round's collective calls: a rank that left
    // this case early would leave the others waiting.
    if (report.rank_of.size() != reference.size()) {
      FAIL_CHECK("rank_of has " << report.rank_of.size() << " entries");
      continue;
    }
    for (std::size_t r : report.rank_of) CHECK(r < static_cast<std::size_t>(rank_count()));
    if (this_rank() != 0) {
      CHECK(report.results.empty());
      continue;
    }
    auto const& alone = solo.get();
    if (report.ranks.size() != static_cast<std::size_t>(rank_count())) {
      FAIL_CHECK("rank 0 gathered " << report.ranks.size() << " ranks");
      continue;
    }
    std::vector<int> models_on(static_cast<std::size_t>(rank_count()), 0);
    for (std::size_t m = 0; m < reference.size(); ++m) {
      CAPTURE(m);
      auto const& result = report.results[m];
      check_as_alone(result, reference[m], alone[m]);
      ++models_on[report.rank_of[m]];
    }
    for (std::size_t r = 0; r < report.ranks.size(); ++r) {
      CAPTURE(r);
      CHECK(report.ranks[r].devices == 2);
      CHECK(report.ranks[r].models.size() == static_cast<std::size_t>(models_on[r]));
      CHECK(models_on[r] > 0); // seven models of these lengths leave no rank of up to 3 idle
      CHECK_FALSE(report.ranks[r].error.has_value());
      if (r > 0) CHECK(report.ranks[r].bytes_sent_to_rank_zero > 0);
    }
  }
}

TEST_CASE("a rank short of work takes a model between rounds; the moved model ends bitwise as if it had stayed") {
  auto const reference = uneven();
  trained_alone_once solo(reference);
  for (std::string const policy : {"sharp", "fifo"}) {
    CAPTURE(policy);
    hydra::host_backend backend(machine());
    hydra::multi_model_options traced;
    traced.record_trace = true;
    auto const report =
        hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, uneven(), [&] { return hydra::make_policy(policy, 5); }, traced,
                              {.round_minibatches = 1});
    CHECK_FALSE(report.error.has_value());
    CHECK(report.rounds >= 2);
    if (rank_count() > 1) {
      CHECK_FALSE(report.moves.empty());
      CHECK(report.starting_rank != report.rank_of);
    } else {
      CHECK(report.moves.empty());
    }
    for (auto const& move : report.moves) {
      CHECK(move.from != move.to);
      CHECK(move.to == 0); // the rank with the idle device
      CHECK(move.after_minibatches >= 1);
      CHECK((move.bytes > 0) == (move.to == static_cast<std::size_t>(this_rank())));
    }
    if (this_rank() != 0) continue;
    auto const& alone = solo.get();
    std::size_t moved_in = 0;
    std::uint64_t bytes_in = 0;
    for (auto const& summary : report.ranks) {
      moved_in += summary.models_moved_in;
      bytes_in += summary.bytes_moved_in;
    }
    MESSAGE(policy << " on " << rank_count() << " ranks: " << report.rounds << " rounds, " << report.moves.size()
                   << " models moved in " << bytes_in << " bytes");
    CHECK(moved_in == report.moves.size());
    // The gathered trace: each minibatch of each model once, on the compute
    // stream of a device of the rank that trained it then, in time order
    // along the model's chain, whichever rank it moved to.
    std::size_t const devices = machine().device_budgets.size();
    std::vector<std::vector<hydra::trace_slice>> first_shards(reference.size());
    for (auto const& slice : report.trace) {
      CHECK(slice.device < devices * static_cast<std::size_t>(rank_count()));
      CHECK(slice.start <= slice.end);
      if (slice.stream == hydra::stream_role::compute && slice.task.purpose == hydra::task_purpose::train &&
          slice.task.pass == hydra::direction::forward && slice.task.shard == 0)
        first_shards.at(slice.task.model).push_back(slice);
    }
    for (std::size_t m = 0; m < reference.size(); ++m) {
      CAPTURE(m);
      auto& slices = first_shards[m];
      std::sort(slices.begin(), slices.end(), [](auto const& a, auto const& b) { return a.start < b.start; });
      REQUIRE(slices.size() == reference[m].steps);
      for (std::size_t k = 0; k < slices.size(); ++k) {
        CHECK(slices[k].task.minibatch == k);
        CHECK(slices[k].model_name == reference[m].name);
      }
    }
    for (std::size_t m = 0; m < reference.size(); ++m) {
      CAPTURE(m);
      auto const& result = report.results[m];
      check_as_alone(result, reference[m], alone[m]);
      CHECK(std::find(report.ranks[report.rank_of[m]].models.begin(), report.ranks[report.rank_of[m]].models.end(),
                      m) != report.ranks[report.rank_of[m]].models.end());
    }
  }
}

TEST_CASE("a sweep checkpointed after a round resumes on fewer ranks to the weights of an uninterrupted run") {
  auto const reference = uneven();
  trained_alone_once solo(reference);
  // The whole run, keeping rank 0's checkpoint after round 3 (the long model
  // at 3 of 12 minibatches, the short ones done; some of them moved).
  std::optional<hydra::sweep_checkpoint> kept;
  std::size_t rounds_seen = 0;
  {
    hydra::host_backend backend(machine());
    hydra::mpi::distributed_options sharing{.round_minibatches = 1};
    sharing.on_round = [&](hydra::sweep_checkpoint const& c) {
      if (++rounds_seen == 3) kept = c;
    };
    (void)hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, uneven(), sharp, {}, sharing);
  }
  if (this_rank() == 0) {
    CHECK(rounds_seen == 12);
    bool const whole = kept && kept->models.size() == reference.size() && kept->models[0].state;
    CHECK(whole);
    if (whole) {
      CHECK(kept->models[0].state->minibatches_done == 3);
      CHECK(kept->models[0].losses.size() == 3);
    }
  } else {
    CHECK(rounds_seen == 0); // only rank 0's callback is called
  }
  hydra::mpi::broadcast(MPI_COMM_WORLD, kept); // throws on every rank if rank 0 kept none
  // Resumed on one rank fewer (the same one rank when there is only one).
  MPI_Comm fewer = one_rank_fewer();
  if (fewer == MPI_COMM_NULL) return;
  hydra::host_backend backend(machine());
  auto const report =
      hydra::mpi::run_sweep(fewer, backend, uneven(), sharp, {}, {.round_minibatches = 4, .resume_from = kept});
  MPI_Comm_free(&fewer);
  CHECK_FALSE(report.error.has_value());
  if (this_rank() != 0) return;
  auto const& alone = solo.get();
  for (std::size_t m = 0; m < reference.size(); ++m) {
    CAPTURE(m);
    auto const& result = report.results[m];
    CHECK_FALSE(result.failure.has_value());
    CHECK(result.steps == reference[m].steps);
    CHECK(bitwise_equal(result.parameters, alone[m].parameters));
    CHECK(bitwise_equal(result.losses, alone[m].losses));
  }
  // A checkpoint of another sweep is refused.
  auto other = *kept;
  other.models[2].name = "someone else";
  hydra::host_backend again(machine());
  CHECK_THROWS_WITH_AS((void)hydra::mpi::run_sweep(MPI_COMM_SELF, again, uneven(), sharp, {}, {.resume_from = other}),
                       "mpi sweep: the checkpoint's model 2 is someone else, not short 1", hydra::invalid_argument);
}

TEST_CASE("successive halving across ranks decides from every rank's metrics as it does in one process") {
  // Seven models with validation data, each up to 4 minibatches; halving by 2
  // from 1 minibatch: rungs at 1, 2 and 4. Rounds of 1 minibatch, so models
  // also move (with their validation points) between rungs.
  auto configs = [] {
    auto four = sweep();
    for (auto& c : four) c.steps = 4;
    return with_validation(std::move(four), 900, 2);
  };
  hydra::multi_model_options options;
  options.controller = hydra::successive_halving{{.eta = 2, .min_minibatches = 1}};
  hydra::host_backend backend(machine());
  // Rank 0 hears of every model's progress after each round.
  std::size_t progress_calls = 0;
  hydra::sweep_progress last;
  options.on_progress = [&](hydra::sweep_progress const& p) {
    ++progress_calls;
    last = p;
  };
  auto const report =
      hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, configs(), sharp, options, {.round_minibatches = 1});
  options.on_progress = nullptr;
  CHECK_FALSE(report.error.has_value());
  if (this_rank() != 0) {
    CHECK(progress_calls == 0);
    return;
  }
  CHECK(progress_calls == report.rounds);
  REQUIRE(last.steps_done.size() == report.results.size());
  std::size_t stopped = 0;
  for (std::size_t m = 0; m < report.results.size(); ++m) {
    CHECK(last.steps_done[m] == report.results[m].steps);
    CHECK(last.steps_total[m] == 4);
    stopped += report.results[m].parameters.empty() ? 1 : 0;
  }
  CHECK(last.models_stopped == stopped);
  CHECK(last.models_finished + last.models_stopped == report.results.size());
  auto const one_process = in_one_process(configs(), options); // after the collective calls
  CHECK(report.controller.has_value());
  CHECK_FALSE(report.history.empty());
  std::size_t survivors = 0;
  for (std::size_t m = 0; m < one_process.size() && m < report.results.size(); ++m) {
    CAPTURE(m);
    auto const &alone = one_process[m], &spread = report.results[m];
    CHECK_FALSE(spread.failure.has_value());
    CHECK(spread.steps == alone.steps);
    CHECK(spread.stopped_early.has_value() == alone.stopped_early.has_value());
    CHECK(bitwise_equal(spread.parameters, alone.parameters));
    CHECK(bitwise_equal(spread.losses, alone.losses));
    check_same_validations(spread.validations, alone.validations);
    for (std::size_t v = 0; v < alone.validations.size(); ++v)
      CHECK(spread.validations[v].metrics.accuracy == alone.validations[v].metrics.accuracy);
    survivors += spread.steps == 4 ? 1 : 0;
  }
  CHECK(report.results.size() == one_process.size());
  CHECK(survivors >= 1);
  CHECK(survivors < one_process.size()); // halving stopped some
  MESSAGE("successive halving on " << rank_count() << " ranks: " << survivors << " of " << one_process.size()
                                   << " models trained to the end, " << report.moves.size() << " moves");
}

TEST_CASE("a halving sweep checkpointed after a round resumes on fewer ranks to the uninterrupted run's "
          "decisions and weights") {
  // Seven models with validation data, up to 4 minibatches each, rounds of 1:
  // after round 3 halving's survivor is at 3 minibatches, between its rungs
  // (at 1, 2 and 4), and the resumed controller must plan from the history it
  // is shown.
  auto configs = [] {
    auto four = sweep();
    for (auto& c : four) c.steps = 4;
    return with_validation(std::move(four), 700, 2);
  };
  std::vector<hydra::any_controller> const controllers{
      hydra::successive_halving{{.eta = 2, .min_minibatches = 1}},
      // ASHA with a fixed number training at once: by default that is twice
      // the devices of all ranks, which the resumed run has fewer of.
      hydra::asha{{.eta = 2, .min_minibatches = 1, .max_running = 3}}};
  for (auto const& controller : controllers) {
    CAPTURE(controller.name());
    hydra::multi_model_options options;
    options.controller = controller;
    std::optional<hydra::sweep_checkpoint> kept;
    std::size_t rounds_seen = 0;
    hydra::mpi::distributed_report whole;
    {
      hydra::host_backend backend(machine());
      hydra::mpi::distributed_options sharing{.round_minibatches = 1, .fingerprint = "a halving test"};
      sharing.on_round = [&](hydra::sweep_checkpoint const& c) {
        if (++rounds_seen == 3) kept = c;
      };
      whole = hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, configs(), sharp, options, sharing);
    }
    if (this_rank() == 0 && kept) {
      CHECK(kept->fingerprint == "a halving test");
      // Some model's state lies past its latest checkpoint in the history.
      std::size_t between = 0;
      for (std::size_t m = 0; m < kept->models.size(); ++m) {
        std::size_t latest = 0;
        for (auto const& e : kept->history)
          if (e.reached.model == m) latest = std::max(latest, e.reached.minibatches);
        if (kept->models[m].state && kept->models[m].state->minibatches_done > latest) ++between;
      }
      if (controller.name() == "successive_halving") CHECK(between == 1);
      MESSAGE(controller.name() << ": " << between << " models between checkpoints after round 3");
    }
    hydra::mpi::broadcast(MPI_COMM_WORLD, kept);
    MPI_Comm fewer = one_rank_fewer();
    if (fewer == MPI_COMM_NULL) continue;
    hydra::host_backend backend(machine());
    auto const resumed =
        hydra::mpi::run_sweep(fewer, backend, configs(), sharp, options,
                              {.round_minibatches = 1, .resume_from = kept, .fingerprint = "a halving test"});
    MPI_Comm_free(&fewer);
    CHECK_FALSE(resumed.error.has_value());
    if (this_rank() != 0) continue;
    REQUIRE(resumed.results.size() == whole.results.size());
    std::size_t survivors = 0;
    for (std::size_t m = 0; m < whole.results.size(); ++m) {
      CAPTURE(m);
      auto const &want = whole.results[m], &got = resumed.results[m];
      CHECK_FALSE(got.failure.has_value());
      CHECK(got.steps == want.steps);
      CHECK(got.stopped_early.has_value() == want.stopped_early.has_value());
      CHECK(bitwise_equal(got.parameters, want.parameters));
      CHECK(bitwise_equal(got.losses, want.losses));
      check_same_validations(got.validations, want.validations);
      survivors += got.steps == 4 ? 1 : 0;
    }
    CHECK(survivors >= 1);
    CHECK(survivors < whole.results.size());
    // A checkpoint under another label is refused.
    hydra::host_backend again(machine());
    CHECK_THROWS_WITH_AS(
        (void)hydra::mpi::run_sweep(MPI_COMM_SELF, again, configs(), sharp, options, {.resume_from = kept}),
        doctest::Contains("the checkpoint to resume from is of another sweep (a halving test"),
        hydra::invalid_argument);
  }
}

namespace {

// A controller with a checkpoint after every minibatch: validation points
// pile up, and models move with theirs.
struct every_minibatch {
  void start(hydra::sweep_plan& plan) {
    for (std::size_t m = 0; m < plan.model_count(); ++m) plan.train(m, 1);
  }
  void on_checkpoint(hydra::sweep_plan& plan, hydra::checkpoint const& reached) {
    if (reached.minibatches < plan.max_minibatches(reached.model)) plan.train(reached.model, 1);
  }
  [[nodiscard]] std::string name() const { return "every_minibatch"; }
};

} // namespace

TEST_CASE("a model moves with its validation points, and they are those of one process") {
  auto configs = [] { return with_validation(uneven(), 700, 1); };
  hydra::multi_model_options options;
  options.controller = every_minibatch{};
  hydra::host_backend backend(machine());
  auto const report =
      hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, configs(), sharp, options, {.round_minibatches = 1});
  CHECK_FALSE(report.error.has_value());
  if (rank_count() > 1) CHECK_FALSE(report.moves.empty());
  if (this_rank() != 0) return;
  auto const one_process = in_one_process(configs(), options); // after the collective calls
  CHECK(report.results.size() == one_process.size());
  for (std::size_t m = 0; m < one_process.size() && m < report.results.size(); ++m) {
    CAPTURE(m);
    auto const &alone = one_process[m], &spread = report.results[m];
    CHECK_FALSE(spread.failure.has_value());
    CHECK(bitwise_equal(spread.parameters, alone.parameters));
    CHECK(alone.validations.size() == alone.steps);
    check_same_validations(spread.validations, alone.validations);
  }
}

TEST_CASE("a resumed sweep's controller is shown its history again; a model failed there stays failed") {
  // full_grid with a checkpoint every 2 minibatches: the resumed run must
  // evaluate at 4, 6, ... as the uninterrupted one does, not 2 after where it
  // resumed (round 3 ends at 3 minibatches of the long model).
  auto configs = [] { return with_validation(uneven(), 500, 1); };
  hydra::multi_model_options options;
  options.controller = hydra::full_grid{.evaluate_every = 2};
  std::optional<hydra::sweep_checkpoint> kept;
  std::size_t rounds_seen = 0;
  {
    hydra::host_backend backend(machine());
    hydra::mpi::distributed_options sharing{.round_minibatches = 1};
    sharing.on_round = [&](hydra::sweep_checkpoint const& c) {
      if (++rounds_seen == 3) kept = c;
    };
    (void)hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, configs(), sharp, options, sharing);
  }
  hydra::mpi::broadcast(MPI_COMM_WORLD, kept);
  // Model 2 failed before the checkpoint, as far as the resumed run knows.
  kept->models[2].failure = "it diverged";
  kept->models[2].state.reset();
  kept->history.push_back(
      {.reached = {.model = 2, .minibatches = 1, .validation = std::nullopt}, .failure = "it diverged"});
  hydra::host_backend backend(machine());
  auto const report = hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, configs(), sharp, options,
                                            {.round_minibatches = 1, .resume_from = kept});
  CHECK_FALSE(report.error.has_value());
  if (this_rank() != 0) return;
  auto const one_process = in_one_process(configs(), options); // after the collective calls
  CHECK(report.results.size() == one_process.size());
  for (std::size_t m = 0; m < one_process.size() && m < report.results.size(); ++m) {
    CAPTURE(m);
    auto const &alone = one_process[m], &resumed = report.results[m];
    if (m == 2) {
      CHECK(resumed.failure == std::optional<std::string>("it diverged"));
      continue;
    }
    CHECK_FALSE(resumed.failure.has_value());
    CHECK(resumed.steps == alone.steps);
    CHECK(bitwise_equal(resumed.parameters, alone.parameters));
    check_same_validations(resumed.validations, alone.validations);
  }
}

TEST_CASE("a rank whose sweep ends with an error fails only its models; the other ranks' finish unchanged") {
  if (rank_count() < 2) return; // needs a second rank to fail
  auto const reference = sweep();
  // Rank 1's devices are too small for any shard of these models: its trainer
  // refuses them as it is made.
  hydra::host_backend backend(this_rank() == 1 ? hydra::host_backend_options{.device_budgets = {4_KiB, 4_KiB}}
                                               : machine());
  std::optional<hydra::sweep_progress> last; // rank 0's, after the last round
  auto const report = hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, sweep(), sharp,
                                            {.on_progress = [&](hydra::sweep_progress const& p) { last = p; }});
  CHECK(report.error.has_value() == (this_rank() == 1));
  if (this_rank() != 0) return;
  REQUIRE(report.ranks.size() == static_cast<std::size_t>(rank_count()));
  REQUIRE(report.ranks[1].error.has_value());
  std::size_t failed = 0, finished = 0;
  for (std::size_t m = 0; m < reference.size(); ++m) {
    CAPTURE(m);
    auto const& result = report.results[m];
    CHECK(result.name == reference[m].name);
    if (report.rank_of[m] == 1) {
      REQUIRE(result.failure.has_value());
      CHECK(result.failure->find("rank 1 (on " + report.ranks[1].host + ") ended its sweep: ") == 0);
      CHECK(result.parameters.empty());
      ++failed;
    } else {
      CHECK_FALSE(result.failure.has_value());
      CHECK(bitwise_equal(result.parameters, hydra::testing::train_alone(reference[m]).parameters));
      ++finished;
    }
  }
  CHECK(failed > 0);
  CHECK(finished > 0);
  // The progress counts the failed models as stopped, as in one process, so
  // that its last report settles every model.
  REQUIRE(last.has_value());
  CHECK(last->models_stopped == failed);
  CHECK(last->models_finished == finished);
}

TEST_CASE("bad launches are refused on every rank alike, naming the limit") {
  hydra::host_backend backend(machine());
  auto configs = sweep();
  // More ranks than models.
  configs.erase(configs.begin() + (rank_count() - 1), configs.end());
  if (!configs.empty()) {
    CHECK_THROWS_WITH_AS((void)hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, configs, sharp),
                         doctest::Contains("models; every rank needs a model to train"), hydra::invalid_argument);
  }
  // Ranks that describe different sweeps.
  if (rank_count() > 1) {
    auto different = sweep();
    if (this_rank() == 1) different.pop_back();
    CHECK_THROWS_WITH_AS((void)hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, different, sharp),
                         doctest::Contains("the ranks describe different sweeps (model counts 6 to 7"),
                         hydra::invalid_argument);
  }
  // Options that differ between ranks.
  if (rank_count() > 1) {
    hydra::mpi::distributed_options mine{.round_minibatches = this_rank() == 1 ? 2U : 1U};
    CHECK_THROWS_WITH_AS((void)hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, sweep(), sharp, {}, mine),
                         doctest::Contains("the ranks were given different options"), hydra::invalid_argument);
  }
  // Per-model checkpoints of a rank's own trainer would carry its own model numbers.
  hydra::multi_model_options per_model;
  per_model.on_checkpoint = [](hydra::model_checkpoint const&) {};
  CHECK_THROWS_WITH_AS(
      (void)hydra::mpi::run_sweep(MPI_COMM_WORLD, backend, sweep(), sharp, per_model),
      doctest::Contains("options.on_checkpoint would see each rank's models under the rank's own numbers"),
      hydra::invalid_argument);
}
