// A Google Benchmark reporter that prints the usual table and then, from the same
// run, the ratios hydra's performance claims are stated in ("hydra over pmr",
// "copy_async over memcpy"). Benchmarks are named "<family>/<variant>/<argument>";
// each comparison names a family, a candidate variant and a baseline variant.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace hydra::bench {

// "<family>/<variant>" + "/" + argument, built by appending (g++ 12 -O3 warns
// falsely, -Wrestrict, on `char const* + std::string`).
inline std::string name(std::string family_and_variant, std::string const& argument) {
  family_and_variant += '/';
  family_and_variant += argument;
  return family_and_variant;
}

struct comparison {
  std::string family;
  std::string candidate;
  std::string baseline;
  double target;           // the ratio the claim needs; 0: no claim, printed for reference
  bool higher_is_better;   // true: candidate throughput / baseline; false: candidate time / baseline
  std::string description; // what the ratio means, for the printout
};

class ratio_reporter : public benchmark::ConsoleReporter {
public:
  explicit ratio_reporter(std::vector<comparison> comparisons) : comparisons_(std::move(comparisons)) {}

  void ReportRuns(std::vector<Run> const& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (Run const& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      if (!seconds_per_iteration_.contains(run.benchmark_name())) order_.push_back(run.benchmark_name());
      seconds_per_iteration_[run.benchmark_name()] = run.GetAdjustedRealTime() / unit_scale(run.time_unit);
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nRatios (measured in this run)\n");
    for (comparison const& wanted : comparisons_) {
      // A comparison whose benchmarks a filter left out gets no heading: an
      // empty one reads as a result that went missing.
      bool headed = false;
      std::string const candidate_prefix = wanted.family + "/" + wanted.candidate + "/";
      for (std::string const& name : order_) { // in the order the benchmarks ran
        if (name.rfind(candidate_prefix, 0) != 0) continue;
        double const candidate_seconds = seconds_per_iteration_.at(name);
        std::string const argument = name.substr(candidate_prefix.size());
        auto const baseline = seconds_per_iteration_.find(wanted.family + "/" + wanted.baseline + "/" + argument);
        if (baseline == seconds_per_iteration_.end()) continue;
        if (!std::exchange(headed, true)) std::printf("%s: %s\n", wanted.family.c_str(), wanted.description.c_str());
        double const ratio =
            wanted.higher_is_better ? baseline->second / candidate_seconds : candidate_seconds / baseline->second;
        std::printf("  %-22s %s/%s = %7.3f", argument.c_str(), wanted.candidate.c_str(), wanted.baseline.c_str(),
                    ratio);
        if (wanted.target > 0) {
          bool const met = wanted.higher_is_better ? ratio >= wanted.target : ratio <= wanted.target;
          std::printf("  (target %s %.2f: %s)", wanted.higher_is_better ? ">=" : "<=", wanted.target,
                      met ? "met" : "MISSED");
        }
        std::printf("\n");
      }
    }
  }

private:
  static double unit_scale(benchmark::TimeUnit unit) {
    switch (unit) {
    case benchmark::kNanosecond:
      return 1e9;
    case benchmark::kMicrosecond:
      return 1e6;
    case benchmark::kMillisecond:
      return 1e3;
    default:
      return 1.0;
    }
  }

  std::vector<comparison> comparisons_;
  std::map<std::string, double> seconds_per_iteration_;
  std::vector<std::string> order_;
};

// Runs every registered benchmark with the ratio reporter on the console.
inline int run_with_ratios(int argc, char** argv, std::vector<comparison> comparisons) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ratio_reporter reporter(std::move(comparisons));
  std::size_t const ran = benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return ran == 0 ? 1 : 0; // a filter that matches nothing is a failure, not a pass
}

} // namespace hydra::bench
