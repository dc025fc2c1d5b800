// What each rank measures in an epoch, and how rank 0 turns the gathered measurements into the
// rows of /ranks/rank<r>/counters, /boundaries/traffic and the traffic columns of /epochs. The
// column names and their order come from the run schema, so the file and its documentation
// cannot drift apart.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "splitpipe/pipeline.hpp"

namespace splitpipe {

// One rank's measurements of an epoch, flattened for a gather (every rank has the same keys).
struct RankEpoch {
  std::map<std::string, double> counters;                // /ranks/rank<r>/counters columns
  std::vector<std::map<std::string, double>> boundary;   // additive traffic sums per boundary

  // `train`: the counters after the training steps; `after_eval`: after the test pass too.
  static RankEpoch measure(const RankCounters& train, const RankCounters& after_eval, double epoch_seconds,
                           double eval_seconds, double peak_rss_bytes, const MemoryPeaks& memory);
  std::vector<double> flatten() const;
  // The inverse of flatten, with this rank's keys as the template.
  RankEpoch unflatten(const std::vector<double>& values) const;
};

// Rank 0's view of one epoch over every rank.
struct EpochTraffic {
  std::vector<std::vector<double>> rank_counters;  // per rank, in schema column order
  std::vector<double> boundary_traffic;            // [boundary, column], in schema column order
  double train_wire_bytes = 0, train_raw_bytes = 0, train_label_bytes = 0, eval_wire_bytes = 0;
  double act_compression = 0, grad_compression = 0;  // wire / raw; NaN without boundaries
  double bubble_fraction = 0;                        // 1 - sum busy / sum step, over the ranks

  static EpochTraffic combine(const std::vector<RankEpoch>& ranks);
};

std::vector<std::string> rank_counter_columns();
std::vector<std::string> boundary_traffic_columns();

}  // namespace splitpipe
