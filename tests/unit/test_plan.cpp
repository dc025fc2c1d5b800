// The planner's search on cost tables made up by hand, whose best plan is known in advance.
#include <gtest/gtest.h>

#include <string>

#include "splitpipe/error.hpp"
#include "splitpipe/planner.hpp"

namespace splitpipe {
namespace {

// n blocks costing (forward, 2 x forward) per sample on each side, with `bytes` per sample at
// every boundary, one codec `none`, batch 64, one server, a free link.
CostTable uniform_table(int n, double edge, double server, double bytes = 0) {
  CostTable t;
  for (int b = 0; b < n; ++b)
    t.blocks.push_back({"b" + std::to_string(b), edge, 2 * edge, server, 2 * server, bytes});
  t.codecs.push_back({"none", 0, 0, 1, {}, {}});
  return t;
}

PlanSpace one_schedule(int chunks = 1) {
  PlanSpace space;
  space.schedules = {"gpipe"};
  space.chunks = {chunks};
  return space;
}

TEST(Planner, AFastServerLeavesTheEdgeOneBlockAndTheLoss) {
  const CostTable t = uniform_table(6, 1.0, 0.0);
  const auto plans = rank_plans(t, one_schedule(), PlanConstraints{});
  const Plan& best = plans.front().plan;
  EXPECT_EQ(best.edge_first, 1);
  EXPECT_EQ(best.edge_last, 0) << "the server may hold the head and the loss";
  // Only block 0 runs on the edge: 64 samples x (1 + 2) seconds, one micro-batch.
  EXPECT_DOUBLE_EQ(plans.front().step_seconds, 192.0);
  EXPECT_DOUBLE_EQ(plans.front().samples_per_second, 64.0 / 192.0);
}

TEST(Planner, ASlowServerGetsTheSingleCheapestMiddleBlock) {
  CostTable t = uniform_table(6, 0.0, 5.0);
  t.blocks[2].server_forward_seconds = 1.0;
  t.blocks[2].server_backward_seconds = 2.0;
  const auto plans = rank_plans(t, one_schedule(), PlanConstraints{});
  EXPECT_EQ(plans.front().plan.edge_first, 2);
  EXPECT_EQ(plans.front().plan.edge_last, 3);
  EXPECT_DOUBLE_EQ(plans.front().step_seconds, 192.0);
}

TEST(Planner, ASlowerEdgeMovesTheCutTowardTheServer) {
  // Equal hardware: 2 blocks on the edge balance 2 on the server (4 blocks, 4 chunks); with the
  // edge emulated 3x slower the edge keeps only 1 (and the loss goes to the server).
  CostTable t = uniform_table(4, 1.0, 1.0);
  PlanSpace space = one_schedule(4);
  space.edge_last = {0};
  EXPECT_EQ(rank_plans(t, space, PlanConstraints{}).front().plan.edge_first, 2);
  t.edge_compute_scale = 3;
  EXPECT_EQ(rank_plans(t, space, PlanConstraints{}).front().plan.edge_first, 1);
}

CostTable slow_link_table() {
  CostTable t = uniform_table(4, 0.0, 0.0, 1000.0);
  t.link.bytes_per_second = 1e6;
  t.codecs.push_back({"quant:bits=8", 1e-9, 1e-9, 0.25, {0.005, 0.005, 0.005, 0.005}, {0.005, 0.005, 0.005, 0.005}});
  t.codecs.push_back({"quant:bits=4", 1e-9, 1e-9, 0.125, {0.1, 0.1, 0.1, 0.1}, {0.1, 0.1, 0.1, 0.1}});
  return t;
}

PlanSpace fixed_cut() {
  PlanSpace space = one_schedule();
  space.edge_first = {1};
  space.edge_last = {1};
  return space;
}

TEST(Planner, OnASlowLinkTheCodecWithTheFewestBytesWins) {
  const auto plans = rank_plans(slow_link_table(), fixed_cut(), PlanConstraints{});
  EXPECT_EQ(plans.front().plan.fwd_codec, "quant:bits=4");
  EXPECT_EQ(plans.front().plan.bwd_codec, "quant:bits=4");
  // Four messages one after another (one micro-batch): 64 x 1000 B at 1/8 over 1 MB/s, plus the
  // encode and decode of 64000 B at 1 ns/B each.
  EXPECT_NEAR(plans.front().step_seconds, 4 * (8000 / 1e6 + 2 * 64000 * 1e-9), 1e-12);
  EXPECT_DOUBLE_EQ(plans.front().wire_bytes_per_sample, 4 * 1000 * 0.125);
}

TEST(Planner, AnErrorCeilingExcludesTheCoarseCodec) {
  PlanConstraints constraints;
  constraints.max_activation_error = constraints.max_gradient_error = 0.01;
  const auto plans = rank_plans(slow_link_table(), fixed_cut(), constraints);
  for (const auto& p : plans) {
    EXPECT_NE(p.plan.fwd_codec, "quant:bits=4");
    EXPECT_NE(p.plan.bwd_codec, "quant:bits=4");
  }
  EXPECT_EQ(plans.front().plan.fwd_codec, "quant:bits=8");
  EXPECT_EQ(plans.size(), 4u) << "none and quant:bits=8 in both directions";
}

TEST(Planner, RefusesWhenNoPlanMeetsTheConstraintsAndSaysWhy) {
  PlanSpace space = fixed_cut();
  space.fwd_codecs = space.bwd_codecs = {"quant:bits=4"};
  PlanConstraints constraints;
  constraints.max_activation_error = 0.01;
  try {
    rank_plans(slow_link_table(), space, constraints);
    FAIL() << "expected a refusal";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("none of 1 candidate plans"), std::string::npos) << message;
    EXPECT_NE(message.find("activation error above"), std::string::npos) << message;
  }
  space.fwd_codecs = {"zstd"};
  EXPECT_THROW(rank_plans(slow_link_table(), space, PlanConstraints{}), UsageError) << "an unmeasured codec";
}

TEST(Planner, AMemoryCeilingKeepsOneFOneBWhereGPipeHoldsTooMuch) {
  // 4 blocks of 100 B per sample; edge 1 + 1; 8 micro-batches of 8 rows. GPipe keeps all 8 on
  // every stage: edge 8 x 8 x (100 + 100), server 8 x 8 x 200 = 12800 B each. 1F1B keeps
  // min(8, 3 - s): edge 3 x 800 + 1 x 800, server 2 x 1600 = 3200 B each.
  CostTable t = uniform_table(4, 1.0, 1.0, 100.0);
  PlanSpace space = fixed_cut();
  space.schedules = {"gpipe", "1f1b"};
  space.chunks = {8};
  EXPECT_EQ(rank_plans(t, space, PlanConstraints{}).size(), 2u);
  PlanConstraints constraints;
  constraints.max_rank_bytes = 5000;
  const auto plans = rank_plans(t, space, constraints);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans.front().plan.schedule, "1f1b");
  EXPECT_DOUBLE_EQ(plans.front().held_bytes[0], 3200);
  EXPECT_DOUBLE_EQ(plans.front().held_bytes[1], 3200);
}

TEST(Planner, MicroBatchesOverlapTheStagesUntilLatencyDominates) {
  CostTable t = uniform_table(4, 1e-3, 1e-3, 100.0);
  Plan plan;
  plan.edge_first = 2;
  plan.edge_last = 0;
  const double one = predict(t, plan).step_seconds;
  plan.chunks = 4;
  const double four = predict(t, plan).step_seconds;
  EXPECT_LT(four, 0.7 * one) << "two equal stages overlap";
  // With little compute to overlap, a 10 ms latency per message (messages of one link queue
  // behind each other) makes every extra micro-batch cost more than it overlaps.
  t = uniform_table(4, 1e-6, 1e-6, 100.0);
  t.link.latency_seconds = 0.01;
  plan.chunks = 1;
  const double one_slow = predict(t, plan).step_seconds;
  plan.chunks = 8;
  EXPECT_GT(predict(t, plan).step_seconds, one_slow);
}

TEST(Planner, AMeasuredMicroBatchSizeOverridesThePerSampleCost) {
  // Per sample the edge block costs 1 + 2 s; measured at 8 rows it costs 100 + 200 s (small
  // micro-batches can be slower per sample). The server is free: the edge's 8 micro-batches of
  // 8 rows run back to back.
  CostTable t = uniform_table(3, 1.0, 0.0);
  Plan plan;
  plan.edge_first = 1;
  plan.edge_last = 0;
  plan.chunks = 8;
  EXPECT_DOUBLE_EQ(predict(t, plan).step_seconds, 8 * 8 * 3.0);
  t.blocks[0].edge_at_rows[8] = ComputeSeconds{100.0, 200.0};
  EXPECT_DOUBLE_EQ(predict(t, plan).step_seconds, 8 * 300.0);
  plan.chunks = 4;  // 16 rows were not measured: per sample again
  EXPECT_DOUBLE_EQ(predict(t, plan).step_seconds, 4 * 16 * 3.0);
}

TEST(Planner, SeveralServersSplitTheMiddleToBalanceTheSlowest) {
  CostTable t = uniform_table(6, 1.0, 1.0);
  t.servers = 2;
  t.blocks[4].server_forward_seconds = 3.0;  // middle blocks 1..4 cost 1, 1, 1, 3 (x3 with backward)
  t.blocks[4].server_backward_seconds = 6.0;
  Plan plan;
  PlanSpace space = one_schedule();
  space.edge_first = {1};
  space.edge_last = {1};
  const auto plans = rank_plans(t, space, PlanConstraints{});
  ASSERT_EQ(plans.front().plan.server_cuts, std::vector<int>{4}) << "blocks 1-3 on server 1, block 4 on server 2";
  EXPECT_EQ(plans.front().busy_seconds.size(), 3u);
}

}  // namespace
}  // namespace splitpipe
