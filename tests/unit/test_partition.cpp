// Partition plans: which rank holds which blocks, for every split strategy, the refusals of
// plans that cannot work, and the replication for several edge clients. Blocks here are
// described by their parameter counts only (the planner looks at nothing else), so the
// expected cuts can be worked out by hand.
#include <gtest/gtest.h>

#include "splitpipe/error.hpp"
#include "splitpipe/partition.hpp"

using namespace splitpipe;

namespace {

std::vector<Block> blocks_with_parameters(const std::vector<int64_t>& parameters) {
  std::vector<Block> blocks;
  for (size_t i = 0; i < parameters.size(); ++i) {
    Block b;
    b.name = "b" + std::to_string(i);
    b.parameters = parameters[i];
    blocks.push_back(b);
  }
  return blocks;
}

struct Range {
  int rank, first, end;
  std::string role;
  bool operator==(const Range& o) const { return rank == o.rank && first == o.first && end == o.end && role == o.role; }
};
std::ostream& operator<<(std::ostream& out, const Range& r) {
  return out << "{rank " << r.rank << " " << r.role << " [" << r.first << "," << r.end << ")}";
}

std::vector<Range> ranges(const PartitionPlan& plan) {
  std::vector<Range> out;
  for (const auto& s : plan.stages) out.push_back({s.rank, s.first_block, s.end_block, s.role});
  return out;
}

// Every block in exactly one stage, stages in block order, stage numbers 0..S-1.
void expect_covers_every_block_once(const PartitionPlan& plan, int blocks) {
  int next = 0;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    EXPECT_EQ(plan.stages[i].stage, static_cast<int>(i));
    EXPECT_EQ(plan.stages[i].first_block, next) << "stage " << i;
    EXPECT_GE(plan.stages[i].end_block, plan.stages[i].first_block) << "stage " << i;
    next = plan.stages[i].end_block;
  }
  EXPECT_EQ(next, blocks);
}

TEST(Partition, SingleProcessHoldsEverythingInOneStage) {
  const auto blocks = blocks_with_parameters({10, 20, 30, 40, 50});
  const PartitionPlan plan = make_partition(blocks, 1, 1, 1, "even");
  EXPECT_EQ(ranges(plan), (std::vector<Range>{{0, 0, 5, "single"}}));
  EXPECT_EQ(plan.stages[0].parameters, 150);
  EXPECT_EQ(plan.num_ranks(), 1);
}

TEST(Partition, EdgeHoldsFirstKAndLastMServersTheMiddleEvenly) {
  const auto blocks = blocks_with_parameters({1, 1, 1, 1, 1, 1, 1, 1});
  // 8 blocks, K=2, M=1: middle [2,7) = 5 blocks over 2 servers -> loads 3 and 2 (or 2 and 3).
  const PartitionPlan plan = make_partition(blocks, 3, 2, 1, "even");
  expect_covers_every_block_once(plan, 8);
  ASSERT_EQ(plan.stages.size(), 4u);
  EXPECT_EQ(ranges(plan).front(), (Range{0, 0, 2, "edge-first"}));
  EXPECT_EQ(ranges(plan).back(), (Range{0, 7, 8, "edge-last"}));
  const int first_server = plan.stages[1].end_block - plan.stages[1].first_block;
  const int second_server = plan.stages[2].end_block - plan.stages[2].first_block;
  EXPECT_EQ(first_server + second_server, 5);
  EXPECT_LE(std::max(first_server, second_server), 3) << "the largest server load is minimal";
  EXPECT_EQ(plan.stage_rank(), (std::vector<int>{0, 1, 2, 0}));
  EXPECT_EQ(plan.stages_of_rank(0), (std::vector<int>{0, 3}));
  EXPECT_EQ(plan.stages_of_rank(2), (std::vector<int>{2}));
  EXPECT_EQ(plan.num_ranks(), 3);
}

TEST(Partition, ParamsSplitBalancesParameterCounts) {
  // Middle [1,5) = parameters 100, 1, 1, 100 over 2 servers: cutting at 2, 3 or 4 gives
  // 100 | 102, 101 | 101 and 102 | 100, so the balanced plan cuts at 3.
  const auto blocks = blocks_with_parameters({5, 100, 1, 1, 100, 5});
  const PartitionPlan plan = make_partition(blocks, 3, 1, 1, "params");
  EXPECT_EQ(ranges(plan), (std::vector<Range>{{0, 0, 1, "edge-first"}, {1, 1, 3, "server"}, {2, 3, 5, "server"},
                                              {0, 5, 6, "edge-last"}}));
  EXPECT_EQ(plan.stages[1].parameters, 101);
  EXPECT_EQ(plan.stages[2].parameters, 101);
  EXPECT_EQ(plan.split, "params");
}

TEST(Partition, TimeSplitBalancesMeasuredSeconds) {
  // Equal parameters but one slow block: time puts it alone on a server.
  const auto blocks = blocks_with_parameters({1, 1, 1, 1, 1, 1});
  const std::vector<double> seconds{0.1, 0.1, 0.1, 0.1, 3.0, 0.1};
  const PartitionPlan plan = make_partition(blocks, 3, 1, 1, "time", seconds);
  EXPECT_EQ(ranges(plan), (std::vector<Range>{{0, 0, 1, "edge-first"}, {1, 1, 4, "server"}, {2, 4, 5, "server"},
                                              {0, 5, 6, "edge-last"}}));
  EXPECT_DOUBLE_EQ(plan.stages[2].estimated_seconds, 3.0);
  EXPECT_NEAR(plan.stages[1].estimated_seconds, 0.3, 1e-12);
  EXPECT_THROW(make_partition(blocks, 3, 1, 1, "time"), std::logic_error) << "time needs the measured seconds";
}

TEST(Partition, CutPointsPlaceServerBoundariesExactly) {
  const auto blocks = blocks_with_parameters({1, 1, 1, 1, 1, 1, 1});
  const PartitionPlan plan = make_partition(blocks, 4, 1, 1, "2,4");
  EXPECT_EQ(ranges(plan), (std::vector<Range>{{0, 0, 1, "edge-first"}, {1, 1, 2, "server"}, {2, 2, 4, "server"},
                                              {3, 4, 6, "server"}, {0, 6, 7, "edge-last"}}));
}

// A refusal is a UsageError whose message names what to change.
void expect_refused(const std::vector<Block>& blocks, int world, int k, int m, const std::string& split,
                    const std::string& expected) {
  try {
    make_partition(blocks, world, k, m, split);
    ADD_FAILURE() << "world " << world << " K " << k << " M " << m << " split " << split << " was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(Partition, EdgeLastZeroEndsThePipelineOnTheLastServer) {
  // The research's split: the edge holds the first K blocks only; the head and the loss sit on
  // the last server stage, so the edge owns one stage and the pipeline is one stage shorter.
  const auto blocks = blocks_with_parameters({1, 1, 1, 1, 1, 1});
  const PartitionPlan plan = make_partition(blocks, 3, 2, 0, "even");
  expect_covers_every_block_once(plan, 6);
  EXPECT_EQ(ranges(plan), (std::vector<Range>{{0, 0, 2, "edge-first"}, {1, 2, 4, "server"}, {2, 4, 6, "server"}}));
  EXPECT_EQ(plan.stages_of_rank(0), (std::vector<int>{0}));
  EXPECT_EQ(plan.pipeline_length(), 3);
  // Several clients: each pipeline ends on the same last server.
  const PartitionPlan clients = replicate_for_clients(make_partition(blocks, 2, 2, 0, "even"), 2);
  EXPECT_EQ(clients.stage_rank(), (std::vector<int>{0, 2, 1, 2}));
  // K alone must still leave the servers a block each.
  expect_refused(blocks, 3, 5, 0, "even", "1 middle blocks");
  expect_refused(blocks, 2, 6, 0, "even", "leave no block for the server");
}

TEST(Partition, ImpossiblePlansAreRefusedWithAReason) {
  const auto blocks = blocks_with_parameters({1, 1, 1, 1, 1});
  expect_refused(blocks, 2, 3, 2, "even", "leave no block for the server");
  expect_refused(blocks, 1, 4, 1, "even", "leave no block for the server");  // alone too
  expect_refused(blocks, 5, 1, 1, "even", "only 3 middle blocks");
  expect_refused(blocks, 3, 1, 1, "2,3", "need 1 cut point");
  expect_refused(blocks, 3, 1, 1, "1", "cut points must increase strictly");  // on the edge's boundary
  expect_refused(blocks, 3, 1, 1, "4", "cut points must increase strictly");  // past the middle
  expect_refused(blocks, 4, 1, 1, "3,2", "cut points must increase strictly");
  expect_refused(blocks, 3, 1, 1, "2,x", "server-split");
}

TEST(Partition, ClientsShareTheServersOfOnePlan) {
  const auto blocks = blocks_with_parameters({1, 1, 1, 1, 1});
  const PartitionPlan single = make_partition(blocks, 3, 1, 1, "even");  // edge, 2 servers: 4 stages
  const PartitionPlan plan = replicate_for_clients(single, 2);
  EXPECT_EQ(plan.pipeline_length(), 4);
  ASSERT_EQ(plan.stages.size(), 8u);
  // Client c is rank c; server r of the single plan becomes rank r + clients - 1.
  EXPECT_EQ(plan.stage_rank(), (std::vector<int>{0, 2, 3, 0, 1, 2, 3, 1}));
  EXPECT_EQ(plan.stages_of_rank(1), (std::vector<int>{4, 7}));
  EXPECT_EQ(plan.stages_of_rank(2), (std::vector<int>{1, 5}));
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(plan.stages[s].first_block, plan.stages[s + 4].first_block);
    EXPECT_EQ(plan.stages[s].end_block, plan.stages[s + 4].end_block);
  }
  EXPECT_EQ(plan.num_ranks(), 4);
  EXPECT_THROW(replicate_for_clients(plan, 2), std::logic_error) << "a replicated plan is not replicated again";
}

}  // namespace
