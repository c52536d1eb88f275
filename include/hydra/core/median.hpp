// The statistic hydra takes of repeated timings: the median, which one slow
// sample (a page fault, a descheduled thread, a slow phase of a shared
// machine) moves far less than the mean.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace hydra::detail {

// The median of `values` (the mean of the middle two for an even count; 0 for none).
[[nodiscard]] inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  auto const middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  if (values.size() % 2 == 1) return *middle;
  double const upper = *middle;
  double const lower = *std::max_element(values.begin(), middle);
  return (lower + upper) / 2;
}

} // namespace hydra::detail
