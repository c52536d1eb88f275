// A model's training state, independent of how it is partitioned or where it
// ran: what checkpoints store and what a resumed run continues from.
#pragma once

#include <cstddef>
#include <vector>

namespace hydra {

// The parameters in layer order; then, for each of the optimizer's values per
// parameter (SGD's momentum; Adam's m, then v), one array in the same order;
// and how many minibatches produced them.
struct model_snapshot {
  std::vector<float> parameters;
  std::vector<float> optimizer_state;
  std::size_t minibatches_done = 0;
};

} // namespace hydra
