// The client strategies as data: which client runs at each step, on which batch of how many
// rows, and when the edge state is synchronised (no MPI here; the modes' numerics are checked
// against single-process references in tests/mpi/test_clients.cpp).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "splitpipe/client_strategy.hpp"
#include "splitpipe/error.hpp"

using namespace splitpipe;

TEST(ClientStrategy, SingleEdgeWalksTheTrainingSetWithAPartialLastBatch) {
  const ClientStrategy single("single", {100}, 32, 1);
  EXPECT_EQ(single.steps_per_epoch(), 4);
  EXPECT_EQ(single.sync().edge, SyncPolicy::EdgeSync::None);
  EXPECT_FALSE(single.sync().server_gradient_mean);
  for (int64_t b = 0; b < 4; ++b) {
    const StepSpec step = single.step(b);
    EXPECT_EQ(step.client, 0);
    EXPECT_EQ(step.batch, b);
    EXPECT_EQ(step.rows, b < 3 ? 32 : 4);
    EXPECT_FALSE(step.edge_sync_after);
  }
}

TEST(ClientStrategy, SequentialTurnsFollowEachOtherAndHandOffAtTheirEnd) {
  const ClientStrategy sequential("sequential", {70, 40, 64}, 32, 1);
  EXPECT_EQ(sequential.steps_per_epoch(), 3 + 2 + 2);
  const std::vector<std::tuple<int, int64_t, int64_t, bool>> expected{
      {0, 0, 32, false}, {0, 1, 32, false}, {0, 2, 6, true},  // client 0: 70 samples
      {1, 0, 32, false}, {1, 1, 8, true},                      // client 1: 40
      {2, 0, 32, false}, {2, 1, 32, true}};                    // client 2: 64, hands back to 0
  for (int64_t i = 0; i < sequential.steps_per_epoch(); ++i) {
    const StepSpec step = sequential.step(i);
    const auto& [client, batch, rows, sync] = expected[i];
    EXPECT_EQ(step.client, client) << "step " << i;
    EXPECT_EQ(step.batch, batch) << "step " << i;
    EXPECT_EQ(step.rows, rows) << "step " << i;
    EXPECT_EQ(step.edge_sync_after, sync) << "step " << i;
  }
  EXPECT_EQ(sequential.sync().edge, SyncPolicy::EdgeSync::HandOff);
  EXPECT_FALSE(sequential.sync().server_gradient_mean);
}

TEST(ClientStrategy, ParallelRoundsUseFullBatchesOfTheSmallestShardAndAverageEveryK) {
  const ClientStrategy parallel("parallel", {100, 170}, 16, 4);
  EXPECT_EQ(parallel.steps_per_epoch(), 6) << "100 / 16 full batches";
  EXPECT_TRUE(parallel.sync().server_gradient_mean);
  EXPECT_EQ(parallel.sync().edge, SyncPolicy::EdgeSync::Average);
  for (int64_t b = 0; b < 6; ++b) {
    const StepSpec step = parallel.step(b);
    EXPECT_EQ(step.client, -1) << "every client in every round";
    EXPECT_EQ(step.rows, 16);
    EXPECT_EQ(step.edge_sync_after, b == 3 || b == 5) << "every 4 rounds and after the last";
  }
  EXPECT_THROW(ClientStrategy("parallel", {10, 100}, 16, 1), UsageError);
  EXPECT_THROW(parallel.step(6), std::logic_error);
}

TEST(ClientStrategy, MicrobatchRowsAreThoseOfTensorSplit) {
  for (int64_t rows : {1, 7, 32, 33, 100})
    for (int parts : {1, 2, 3, 4, 7}) {
      if (parts > rows) continue;
      const auto pieces = at::arange(rows).tensor_split(parts);
      const auto sizes = microbatch_rows(rows, parts);
      ASSERT_EQ(sizes.size(), pieces.size());
      for (size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(sizes[i], pieces[i].size(0)) << rows << "/" << parts;
    }
}
