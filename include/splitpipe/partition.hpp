// Which rank holds which blocks. With one rank everything is one stage (the reference run).
// With N ranks the edge (rank 0) holds the first K and the last M blocks with the loss; the
// middle blocks are split over the N-1 server ranks. With M = 0 the last server stage ends the
// pipeline and holds the loss (the edge sends it the labels).
#pragma once
#include <string>
#include <vector>

#include "splitpipe/model.hpp"

namespace splitpipe {

struct StagePlan {
  int stage = 0;
  int rank = 0;
  std::string role;  // single | edge-first | server | edge-last (the last stage holds the loss)
  int first_block = 0, end_block = 0;  // [first, end)
  int64_t parameters = 0;
  double estimated_seconds = 0;  // forward+backward of one mini-batch, when profiled
};

struct PartitionPlan {
  std::vector<StagePlan> stages;
  std::string split;  // how the middle was balanced
  // Several edge clients: stages form independent pipelines of this length (0: one pipeline).
  int stages_per_pipeline = 0;

  int pipeline_length() const { return stages_per_pipeline > 0 ? stages_per_pipeline : static_cast<int>(stages.size()); }

  std::vector<int> stage_rank() const;
  std::vector<int> stages_of_rank(int rank) const;
  int num_ranks() const;
  // Table: rank, role, blocks (names), parameters, estimated time.
  std::string format(const std::vector<Block>& blocks) const;
};

// Throws UsageError when the plan cannot fit: K+M must leave at least one middle block per
// server rank, cut points must be increasing and inside the middle, etc.
// block_seconds (per block, forward+backward) is needed only for split "time".
PartitionPlan make_partition(const std::vector<Block>& blocks, int world_size, int edge_first, int edge_last,
                             const std::string& server_split, const std::vector<double>& block_seconds = {});

// The plan of E edge clients sharing the servers of `single` (a plan for 1 edge + servers):
// client c (rank c) holds stages c*S and c*S+S-1 of its own pipeline; the server of stage s
// (rank r >= 1 in `single`) becomes rank E-1+r and holds stage s of every pipeline.
PartitionPlan replicate_for_clients(const PartitionPlan& single, int clients);

// Measures forward+backward seconds of each block on a random batch (after a warm-up pass).
std::vector<double> profile_blocks(const std::vector<Block>& blocks, const std::vector<int64_t>& input_shape,
                                   int64_t batch_size, int repeats = 3);

}  // namespace splitpipe
