#include "splitpipe/linear_partition.hpp"

#include <algorithm>
#include <limits>

namespace splitpipe {

std::vector<int> balanced_cuts(const std::vector<double>& costs, int parts) {
  const int n = static_cast<int>(costs.size());
  std::vector<double> prefix(n + 1, 0.0);
  for (int i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + costs[i];
  const double inf = std::numeric_limits<double>::infinity();
  // best[p][i]: minimal max-load splitting the first i costs into p parts; cut[p][i]: last cut.
  std::vector<std::vector<double>> best(parts + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<int>> cut(parts + 1, std::vector<int>(n + 1, 0));
  best[0][0] = 0;
  for (int p = 1; p <= parts; ++p)
    for (int i = p; i <= n; ++i)
      for (int j = p - 1; j < i; ++j) {
        const double load = std::max(best[p - 1][j], prefix[i] - prefix[j]);
        if (load < best[p][i]) {
          best[p][i] = load;
          cut[p][i] = j;
        }
      }
  std::vector<int> starts(parts);
  for (int p = parts, i = n; p >= 1; --p) {
    starts[p - 1] = cut[p][i];
    i = cut[p][i];
  }
  return starts;  // start offset of each part
}


}  // namespace splitpipe
