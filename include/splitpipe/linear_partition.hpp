// Contiguous splits of a row of costs, shared by the partition (--server-split) and the planner.
#pragma once
#include <vector>

namespace splitpipe {

// Cuts costs[0..n) into `parts` contiguous non-empty ranges minimising the largest sum (the
// classic linear-partition dynamic programme; n is at most a few dozen blocks). Returns the
// start offset of each part (the first is 0). Needs 1 <= parts <= n.
std::vector<int> balanced_cuts(const std::vector<double>& costs, int parts);

}  // namespace splitpipe
