// Several edge clients with np 3: clients 0 and 1, one server.
// Sequential mode: one epoch must give the weights of a single process that trains over
// client 0's shard and then client 1's shard, each in its own seeded batch order, with one
// optimizer whose momentum carries across: this is what the hand-off of the edge state promises.
// Parallel mode with --sync-every 1: every round must equal one SGD step of a single process on
// the union of the two clients' batches (client 0's, then client 1's samples).
//
// The reference is a plain loop over the model's blocks (no Trainer, no pipeline), computed on
// every rank from the same seed, so each rank compares the parameters it holds. The clients run
// through the same Trainer as one edge (client_strategy.hpp), so this is the whole mode.
#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "mpi_test.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/trainer.hpp"

using namespace splitpipe;
using splitpipe::testing::MpiTest;
using splitpipe::testing::world_rank;
using splitpipe::testing::world_size;

namespace {

constexpr double kTolerance = 1e-5;  // on |clients - reference| / max(1, |reference|)

RunConfig make_config(const std::string& shard, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"test_mpi", "--model", "lenet5", "--dataset", "synthetic",
                                "--synthetic-shape", "1x28x28", "--synthetic-classes", "10",
                                "--synthetic-test", "16", "--batch-size", "16",
                                "--seed", "5", "--threads", "1", "--edge-ranks", "2", "--shard", shard,
                                // The reference below steps at the constant --lr.
                                "--lr-schedule", "constant", "--warmup-epochs", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  if (std::find(extra.begin(), extra.end(), "--synthetic-train") == extra.end())
    args.insert(args.end(), {"--synthetic-train", "100"});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data()).config;
}

using NamedTensors = std::map<std::string, at::Tensor>;

// One process holding all blocks, with one SGD: the reference both modes must reproduce.
struct ReferenceRun {
  std::vector<Block> blocks;
  std::unique_ptr<torch::optim::SGD> sgd;
  const Dataset& train;

  ReferenceRun(const RunConfig& config, const Dataset& data) : train(data) {
    torch::manual_seed(config.seed);
    blocks = build_model(model_spec(config, train.sample_shape(), train.num_classes));
    std::vector<at::Tensor> params;
    for (auto& block : blocks)
      for (const auto& p : block.module->parameters()) params.push_back(p);
    sgd = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(config.lr)
                                                          .momentum(config.momentum)
                                                          .weight_decay(config.weight_decay)
                                                          .nesterov(config.nesterov));
  }

  // One SGD step on the mean loss over the samples at `index` (training-set positions).
  void step(const at::Tensor& index) {
    at::Tensor x = train.inputs.index_select(0, index);
    for (auto& block : blocks) x = block.module->forward(x);
    const at::Tensor labels = train.labels.index_select(0, index);
    const at::Tensor loss = torch::nn::functional::cross_entropy(
                                x, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                            static_cast<double>(labels.size(0));
    sgd->zero_grad();
    loss.backward();
    sgd->step();
  }

  NamedTensors parameters() const {
    NamedTensors named;
    for (size_t b = 0; b < blocks.size(); ++b)
      for (const auto& item : blocks[b].module->named_parameters())
        named[std::to_string(b) + "." + item.key()] = item.value().detach().clone();
    return named;
  }
};

// Sequential: over the shards in `client_order`, each in its own seeded order.
NamedTensors reference(const RunConfig& config, const Dataset& train, const std::vector<at::Tensor>& shards,
                       const std::vector<int>& client_order) {
  ReferenceRun run(config, train);
  for (int client : client_order) {
    const at::Tensor& shard = shards.at(client);
    BatchOrder order(shard.size(0), config.batch_size, true, config.seed);
    order.start_epoch(0);
    for (int64_t b = 0; b < order.num_batches(); ++b) run.step(shard.index_select(0, order.batch_indices(b)));
  }
  return run.parameters();
}

// Parallel: `rounds` steps, each on the union of batch b of every client in `clients`.
NamedTensors union_reference(const RunConfig& config, const Dataset& train, const std::vector<at::Tensor>& shards,
                             const std::vector<int>& clients, int64_t rounds) {
  ReferenceRun run(config, train);
  std::vector<BatchOrder> orders;
  for (const at::Tensor& shard : shards) {
    orders.emplace_back(shard.size(0), config.batch_size, true, config.seed);
    orders.back().start_epoch(0);
  }
  for (int64_t b = 0; b < rounds; ++b) {
    std::vector<at::Tensor> parts;
    for (int c : clients) parts.push_back(shards.at(c).index_select(0, orders.at(c).batch_indices(b)));
    run.step(at::cat(parts));
  }
  return run.parameters();
}

double max_relative_difference(const std::vector<std::pair<std::string, at::Tensor>>& mine, const NamedTensors& ref) {
  double worst = 0;
  for (const auto& [name, value] : mine) {
    const at::Tensor& r = ref.at(name);
    worst = std::max(worst, ((value - r).abs() / r.abs().clamp_min(1.0)).max().item<double>());
  }
  return worst;
}

// A shard spec, and where the loss is: on each client (the U-shape, --edge-last 1) or on the
// server (--edge-last 0: the clients send it their labels).
struct ClientCase {
  std::string shard;
  int edge_last;
  std::vector<std::string> with(std::vector<std::string> extra) const {
    extra.insert(extra.end(), {"--edge-last", std::to_string(edge_last)});
    return extra;
  }
};
const std::vector<ClientCase> kClientCases{{"iid", 1}, {"label-skew:alpha=0.5", 1}, {"label-skew:alpha=0.5", 0}};
std::string case_name(const ::testing::TestParamInfo<ClientCase>& info) {
  return std::string(info.param.shard == "iid" ? "iid" : "label_skew") + (info.param.edge_last == 0 ? "_loss_on_server" : "");
}

class SequentialClientsTest : public MpiTest, public ::testing::WithParamInterface<ClientCase> {};

TEST_P(SequentialClientsTest, OneEpochEqualsSingleProcessOverShardsInClientOrder) {
  if (world_size() != 3) GTEST_SKIP() << "needs 3 ranks: 2 edge clients and 1 server";
  const RunConfig config = make_config(GetParam().shard, GetParam().with({}));
  MpiControlPlane world;
  const DatasetSplits data = load_dataset(config.data);  // synthetic: the same on every rank
  const auto shards = make_shards(data.train.labels, data.train.num_classes, 2, parse_shard_spec(config.shard),
                                  config.seed, config.batch_size);
  Trainer trainer(config, world, world_rank() < 2 ? &data : nullptr);
  const PassStats train = trainer.train(0);

  const bool server = world_rank() == 2;
  EXPECT_EQ(trainer.client(), server ? -1 : world_rank());
  const int64_t turn0 = (shards[0].size(0) + 15) / 16, turn1 = (shards[1].size(0) + 15) / 16;
  EXPECT_EQ(trainer.steps_per_epoch(), turn0 + turn1) << "an epoch is client 0's turn, then client 1's";
  if (!server) {
    EXPECT_EQ(trainer.shards().size(), 2u);
    for (int c = 0; c < 2 && c < static_cast<int>(trainer.shards().size()); ++c)
      EXPECT_TRUE(trainer.shards()[c].equal(shards[c])) << "client " << c;
    EXPECT_EQ(train.samples, shards[world_rank()].size(0)) << "a client trains over its own shard";
    if (world_rank() == 0) {
      EXPECT_GT(trainer.edge_sync().bytes, 0) << "client 0 handed its state on";
    }
  }

  // After the epoch every rank holds the latest weights: the server continued through both
  // turns, client 1 finished the epoch and handed its edge state back to client 0.
  const auto mine = trainer.executor().named_parameters();
  EXPECT_FALSE(mine.empty());
  const double in_order = max_relative_difference(mine, reference(config, data.train, shards, {0, 1}));
  const double first_only = max_relative_difference(mine, reference(config, data.train, shards, {0}));
  const double reversed = max_relative_difference(mine, reference(config, data.train, shards, {1, 0}));
  EXPECT_LT(in_order, kTolerance) << "rank " << world_rank();
  // Non-trivial: client 1's turn changed the weights, and the order of the turns matters.
  EXPECT_GT(first_only, 1e-3) << "rank " << world_rank();
  EXPECT_GT(reversed, 1e-3) << "rank " << world_rank();
  const PassStats test = trainer.evaluate();
  if (world_rank() == 0) {
    EXPECT_EQ(test.samples, 16);
  }
  const auto digests = world.gather_strings(trainer.weights_digest());
  if (world_rank() == 0) {
    EXPECT_EQ(digests.at(0), digests.at(1)) << "client 0 holds client 1's final edge state";
  }
}

class ParallelClientsTest : public MpiTest, public ::testing::WithParamInterface<ClientCase> {};

TEST_P(ParallelClientsTest, SyncEveryRoundEqualsSingleProcessOnTheUnionBatch) {
  if (world_size() != 3) GTEST_SKIP() << "needs 3 ranks: 2 edge clients and 1 server";
  // Two micro-batches per client, so the server interleaves four micro-batches per round.
  const RunConfig config =
      make_config(GetParam().shard, GetParam().with({"--client-mode", "parallel", "--sync-every", "1", "--chunks", "2",
                                                     "--synthetic-train", "160", "--momentum", "0.9",
                                                     "--weight-decay", "0.001"}));
  MpiControlPlane world;
  const DatasetSplits data = load_dataset(config.data);
  const auto shards = make_shards(data.train.labels, data.train.num_classes, 2, parse_shard_spec(config.shard),
                                  config.seed, config.batch_size);
  const int64_t rounds = std::min(shards[0].size(0), shards[1].size(0)) / config.batch_size;
  Trainer trainer(config, world, world_rank() < 2 ? &data : nullptr);
  EXPECT_EQ(trainer.steps_per_epoch(), rounds);
  const PassStats train = trainer.train(0);

  if (world_rank() < 2) {
    EXPECT_EQ(train.samples, rounds * config.batch_size) << "one full batch per round";
    EXPECT_GT(trainer.edge_sync().bytes, 0) << "the edge state was averaged";
  }
  // Every rank holds weights: both clients the (averaged) edge stages, the server the middle.
  const auto mine = trainer.executor().named_parameters();
  EXPECT_FALSE(mine.empty());
  const double union_batch = max_relative_difference(mine, union_reference(config, data.train, shards, {0, 1}, rounds));
  const double own_only = max_relative_difference(mine, union_reference(config, data.train, shards, {0}, rounds));
  EXPECT_LT(union_batch, kTolerance) << "rank " << world_rank();
  EXPECT_GT(own_only, 1e-3) << "rank " << world_rank() << ": client 1's batches must matter";
  const PassStats test = trainer.evaluate();
  if (world_rank() == 0) {
    EXPECT_EQ(test.samples, 16);
  }
}

TEST_F(ParallelClientsTest, SyncEveryFewRoundsLeavesEqualEdgeCopiesAtTheEpochEnd) {
  if (world_size() != 3) GTEST_SKIP() << "needs 3 ranks: 2 edge clients and 1 server";
  const RunConfig config = make_config("iid", {"--client-mode", "parallel", "--sync-every", "4", "--chunks", "2",
                                               "--synthetic-train", "160", "--momentum", "0.9"});
  MpiControlPlane world;
  const DatasetSplits data = load_dataset(config.data);
  const auto shards = make_shards(data.train.labels, data.train.num_classes, 2, parse_shard_spec(config.shard),
                                  config.seed, config.batch_size);
  Trainer trainer(config, world, world_rank() < 2 ? &data : nullptr);
  trainer.train(0);
  const auto digests = world.gather_strings(trainer.weights_digest());
  if (world_rank() == 0) {
    EXPECT_EQ(digests.at(0), digests.at(1)) << "the epoch ends with an average";
  }
  // Local steps between averages are not the union-batch step: the weights differ from it.
  const int64_t rounds = trainer.steps_per_epoch();
  EXPECT_GE(rounds, 5);
  const double union_batch = max_relative_difference(trainer.executor().named_parameters(),
                                                     union_reference(config, data.train, shards, {0, 1}, rounds));
  if (world_rank() < 2) {
    EXPECT_GT(union_batch, 1e-5) << "rank " << world_rank();
  }
}

INSTANTIATE_TEST_SUITE_P(Shards, ParallelClientsTest, ::testing::ValuesIn(kClientCases), case_name);

INSTANTIATE_TEST_SUITE_P(Shards, SequentialClientsTest, ::testing::ValuesIn(kClientCases), case_name);

}  // namespace
