// Exactness of the pipeline: training a few steps split over the world (edge + servers) must
// give the weights of the single-process reference run with the same configuration, for every
// schedule and number of micro-batches.
//
// The reference is a Trainer over MPI_COMM_SELF, built on every rank from the same seed and the
// same seeded synthetic data, so each rank compares the parameters it owns with its own copy of
// the reference and no weights need to travel.
//
// Why the reference uses the same --chunks: without BatchNorm, cutting a mini-batch into
// micro-batches does not change the math (the loss of each micro-batch is scaled by 1/batch, so
// the accumulated gradient is the mini-batch gradient). With BatchNorm it does: in training mode
// BN normalises with the statistics of the micro-batch it sees, and its running statistics are
// updated once per micro-batch. The faithful reference is therefore the single-process run cut
// into the same micro-batches (tensor_split), and MicroBatching.* shows that this distinction
// is real: with BN the weights of 4 chunks and of 1 chunk differ by far more than the tolerance.
#include <ATen/ATen.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include <torch/cuda.h>

#include "mpi_test.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/trainer.hpp"

using namespace splitpipe;
using splitpipe::testing::MpiTest;
using splitpipe::testing::world_rank;

namespace {

constexpr int64_t kSteps = 3;           // optimizer steps trained before comparing
constexpr double kTolerance = 1e-5;     // on |pipeline - reference| / max(1, |reference|)
constexpr double kBatchNormGap = 1e-3;  // chunks 4 vs 1 with BN must differ by at least this

struct ModelCase {
  std::string model;
  std::string synthetic_shape;
  std::string classes;
  bool has_batch_norm;
};

void PrintTo(const ModelCase& model, std::ostream* out) { *out << model.model; }

const std::vector<ModelCase>& model_cases() {
  static const std::vector<ModelCase> cases{
      {"lenet5", "1x28x28", "10", false},
      {"mlp", "187", "5", false},
      {"mobilenetv2", "3x16x16", "10", true},
      // [batch, tokens, width] activations cross the cuts (synthetic values as token ids).
      {"transformer", "12", "4", false},
      {"vit", "1x14x14", "4", false},
  };
  return cases;
}

// Through the real parser, so the configuration is validated like a command line.
RunConfig make_config(const ModelCase& model, const std::string& schedule, int chunks, int edge_last = 1,
                      bool recompute = false) {
  std::vector<std::string> args{"test_mpi",
                                      "--edge-last", std::to_string(edge_last),
                                      "--model", model.model,
                                      "--mlp-hidden", "64,32,16",
                                      "--transformer-layers", "2",
                                      "--transformer-width", "16",
                                      "--transformer-heads", "2",
                                      "--vit-patch", "7",
                                      "--dataset", "synthetic",
                                      "--synthetic-shape", model.synthetic_shape,
                                      "--synthetic-classes", model.classes,
                                      "--synthetic-train", "32",
                                      "--synthetic-test", "8",
                                      "--batch-size", "8",
                                      "--lr", "0.02",
                                      "--schedule", schedule,
                                      "--chunks", std::to_string(chunks),
                                      "--seed", "7",
                                      "--threads", "1"};
  if (recompute) args.push_back("--recompute");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data()).config;
}

using NamedTensors = std::map<std::string, at::Tensor>;

struct Weights {
  NamedTensors parameters, buffers;
  PassStats stats;
};

// Host copies, wherever the stage ran, so pipelines on a GPU compare with the CPU reference.
NamedTensors copy_of(const std::vector<std::pair<std::string, at::Tensor>>& named) {
  NamedTensors copy;
  for (const auto& [name, tensor] : named) copy.emplace(name, tensor.detach().to(at::kCPU).clone());
  return copy;
}

// Trains kSteps steps of epoch 0 on `transport` (collective) and returns this rank's weights.
Weights train_steps(const RunConfig& config, MpiControlPlane& transport) {
  std::optional<DatasetSplits> data;
  if (transport.rank() == 0) data = load_dataset(config.data);
  Trainer trainer(config, transport, data ? &*data : nullptr);
  Weights weights;
  weights.stats = trainer.train(0, 0, kSteps);
  weights.parameters = copy_of(trainer.executor().named_parameters());
  weights.buffers = copy_of(trainer.executor().named_buffers());
  return weights;
}

// A rank that throws leaves its peers waiting for it (for messages of the step, or in the
// collectives of the comparison), and no later test could run on the world; so the job stops
// with the message. A hang (e.g. mismatched messages) becomes such an error after
// kWaitLimitSeconds instead of a ctest timeout.
constexpr double kWaitLimitSeconds = 120;

template <typename Run>
Weights train_or_abort(const std::string& what, Run run) {
  try {
    return run();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << " failed on rank " << world_rank() << ": " << e.what();
    MPI_Abort(MPI_COMM_WORLD, 1);
    throw;
  }
}

Weights train_pipeline(const RunConfig& config) {
  return train_or_abort("pipeline training", [&] {
    MpiControlPlane world(MPI_COMM_WORLD);
    world.set_timeout(kWaitLimitSeconds);
    return train_steps(config, world);
  });
}

// The single-process run of `config` on this rank alone, computed once per configuration.
const Weights& reference(const RunConfig& config) {
  static std::map<std::tuple<std::string, std::string, int>, Weights> cache;
  const auto key = std::make_tuple(config.model, config.schedule, config.chunks);
  auto it = cache.find(key);
  if (it == cache.end()) {
    Weights weights = train_or_abort("reference training", [&] {
      MpiControlPlane self(MPI_COMM_SELF);
      return train_steps(config, self);
    });
    it = cache.emplace(key, std::move(weights)).first;
  }
  return it->second;
}

struct Comparison {
  double max_relative = 0;  // largest |a - b| / max(1, |b|) over this rank's tensors
  std::string worst;        // the tensor where it occurred
  int64_t tensors = 0;
};

// Compares every tensor of `mine` (this rank's share) with the reference tensor of the same name.
Comparison compare(const NamedTensors& mine, const NamedTensors& ref) {
  Comparison result;
  for (const auto& [name, tensor] : mine) {
    const auto it = ref.find(name);
    EXPECT_NE(it, ref.end()) << name << " is not in the reference model";
    if (it == ref.end()) continue;
    EXPECT_EQ(tensor.sizes(), it->second.sizes()) << name;
    if (tensor.sizes() != it->second.sizes()) continue;
    const at::Tensor a = tensor.to(at::kDouble), b = it->second.to(at::kDouble);
    double relative = tensor.numel() == 0 ? 0.0 : ((a - b).abs() / b.abs().clamp_min(1.0)).max().item<double>();
    if (std::isnan(relative)) relative = std::numeric_limits<double>::infinity();
    if (result.worst.empty() || relative > result.max_relative) {
      result.max_relative = relative;
      result.worst = name;
    }
    ++result.tensors;
  }
  return result;
}

double max_over_world(double value) {
  double result = 0;
  MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return result;
}

int64_t sum_over_world(int64_t value) {
  int64_t result = 0;
  MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return result;
}

struct WorldComparison {
  Comparison parameters, buffers;  // this rank's
  double max_parameters = 0, max_buffers = 0;  // over all ranks
};

// Compares this rank's share of `pipeline` with `ref` and checks that the ranks together
// covered every tensor of the reference exactly once.
WorldComparison compare_on_world(const Weights& pipeline, const Weights& ref) {
  WorldComparison c;
  c.parameters = compare(pipeline.parameters, ref.parameters);
  c.buffers = compare(pipeline.buffers, ref.buffers);
  EXPECT_EQ(sum_over_world(c.parameters.tensors), static_cast<int64_t>(ref.parameters.size()))
      << "the ranks together must hold every parameter of the model once";
  EXPECT_EQ(sum_over_world(c.buffers.tensors), static_cast<int64_t>(ref.buffers.size()))
      << "the ranks together must hold every buffer of the model once";
  c.max_parameters = max_over_world(c.parameters.max_relative);
  c.max_buffers = max_over_world(c.buffers.max_relative);
  return c;
}

void report(const std::string& what, const WorldComparison& c) {
  if (world_rank() == 0)
    std::cout << "  " << what << ": max relative difference parameters " << c.max_parameters << ", buffers "
              << c.max_buffers << std::endl;
}

// BatchNorm's num_batches_tracked counts forward passes, so it differs trivially between chunk
// counts; the micro-batching comparison leaves it out and checks it on its own.
bool is_batch_counter(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Weights without_batch_counters(Weights weights) {
  for (auto it = weights.buffers.begin(); it != weights.buffers.end();)
    it = is_batch_counter(it->first) ? weights.buffers.erase(it) : std::next(it);
  return weights;
}

using ExactnessParam = std::tuple<ModelCase, std::string, int>;  // model, schedule, chunks

std::string exactness_name(const ::testing::TestParamInfo<ExactnessParam>& info) {
  return std::get<0>(info.param).model + "_" + (std::get<1>(info.param) == "1f1b" ? "OneFOneB" : "GPipe") +
         "_chunks" + std::to_string(std::get<2>(info.param));
}

// Every rank's weights and buffers equal the reference's; `what` names the case in the report.
void expect_same_weights(const Weights& pipeline, const Weights& ref, const std::string& what) {
  const WorldComparison c = compare_on_world(pipeline, ref);
  EXPECT_LE(c.parameters.max_relative, kTolerance) << "worst parameter: " << c.parameters.worst;
  EXPECT_LE(c.buffers.max_relative, kTolerance) << "worst buffer: " << c.buffers.worst;
  report(what, c);
}

class PipelineExactness : public MpiTest, public ::testing::WithParamInterface<ExactnessParam> {};

TEST_P(PipelineExactness, WeightsAndBuffersMatchSingleProcessRun) {
  const auto& [model, schedule, chunks] = GetParam();
  const RunConfig config = make_config(model, schedule, chunks);
  const Weights pipeline = train_pipeline(config);
  const Weights& ref = reference(config);

  if (world_rank() == 0) {  // the edge holds the loss: the steps really ran on all samples
    EXPECT_EQ(pipeline.stats.samples, kSteps * config.batch_size);
    EXPECT_TRUE(std::isfinite(pipeline.stats.loss));
    EXPECT_NEAR(pipeline.stats.loss, ref.stats.loss, kTolerance * std::max(1.0, std::abs(ref.stats.loss)));
  }
  EXPECT_FALSE(pipeline.parameters.empty()) << "every rank owns at least one stage with parameters";

  expect_same_weights(pipeline, ref, model.model + " " + schedule + " chunks " + std::to_string(chunks));
}

INSTANTIATE_TEST_SUITE_P(
    AllModelsSchedulesChunks, PipelineExactness,
    ::testing::Combine(::testing::ValuesIn(model_cases()), ::testing::Values("gpipe", "1f1b"),
                       ::testing::Values(1, 2, 4)),
    exactness_name);

// --edge-last 0 (the research's split without the U): the last server holds the head and the
// loss, the edge sends it the labels and gets the loss, correct count and predictions back.
// Training must be exactly the single-process run, and the edge must see its statistics.
class LossOnServer : public MpiTest, public ::testing::WithParamInterface<ExactnessParam> {};

TEST_P(LossOnServer, WeightsAndStatisticsMatchSingleProcessRun) {
  const auto& [model, schedule, chunks] = GetParam();
  const RunConfig config = make_config(model, schedule, chunks, 0);
  const Weights pipeline = train_pipeline(config);
  const Weights& ref = reference(config);

  if (world_rank() == 0) {  // the statistics came back from the server
    EXPECT_EQ(pipeline.stats.samples, kSteps * config.batch_size);
    EXPECT_NEAR(pipeline.stats.loss, ref.stats.loss, kTolerance * std::max(1.0, std::abs(ref.stats.loss)));
    EXPECT_EQ(pipeline.stats.correct, ref.stats.correct);
    ASSERT_TRUE(pipeline.stats.confusion.defined());
    EXPECT_TRUE(pipeline.stats.confusion.equal(ref.stats.confusion)) << "predictions returned in sample order";
  } else {
    EXPECT_EQ(pipeline.stats.samples, 0) << "a server keeps no statistics of its own";
  }
  expect_same_weights(pipeline, ref, model.model + " " + schedule + " chunks " + std::to_string(chunks) + " edge-last 0");
}

INSTANTIATE_TEST_SUITE_P(
    AllModelsSchedules, LossOnServer,
    ::testing::Combine(::testing::ValuesIn(model_cases()), ::testing::Values("gpipe", "1f1b"), ::testing::Values(1, 3)),
    exactness_name);

// --recompute: each stage keeps only its input and runs its forward again in backward; the
// weights (BatchNorm's running statistics too, which the second forward must not move again)
// equal the single-process run without recomputation.
class Recompute : public MpiTest, public ::testing::WithParamInterface<ExactnessParam> {};

TEST_P(Recompute, WeightsAndBuffersMatchTheRunWithoutRecomputation) {
  const auto& [model, schedule, chunks] = GetParam();
  const Weights pipeline = train_pipeline(make_config(model, schedule, chunks, 1, true));
  const Weights& ref = reference(make_config(model, schedule, chunks));
  if (world_rank() == 0) {
    EXPECT_EQ(pipeline.stats.samples, kSteps * 8);
    EXPECT_NEAR(pipeline.stats.loss, ref.stats.loss, kTolerance * std::max(1.0, std::abs(ref.stats.loss)));
  }
  expect_same_weights(pipeline, ref, model.model + " " + schedule + " chunks " + std::to_string(chunks) + " --recompute");
}

INSTANTIATE_TEST_SUITE_P(
    AllModelsSchedules, Recompute,
    ::testing::Combine(::testing::ValuesIn(model_cases()), ::testing::Values("gpipe", "1f1b"), ::testing::Values(1, 3)),
    exactness_name);

// The pipeline with 4 micro-batches against the reference without micro-batching: equal
// without BatchNorm, clearly different with it (so the exactness test above would catch a
// reference that ignored --chunks).
class MicroBatching : public MpiTest, public ::testing::WithParamInterface<ModelCase> {};

TEST_P(MicroBatching, FourChunksAgainstOneChunkReference) {
  const ModelCase& model = GetParam();
  const Weights pipeline = train_pipeline(make_config(model, "gpipe", 4));
  const Weights& whole_batch = reference(make_config(model, "gpipe", 1));

  const WorldComparison c = compare_on_world(without_batch_counters(pipeline), without_batch_counters(whole_batch));
  if (model.has_batch_norm) {
    EXPECT_GT(c.max_parameters, kBatchNormGap)
        << "BatchNorm normalises per micro-batch, so 4 chunks should not reproduce the 1-chunk weights";
    EXPECT_GT(c.max_buffers, kBatchNormGap) << "running statistics should depend on the micro-batches";
    for (const auto& [name, tensor] : pipeline.buffers) {
      if (is_batch_counter(name)) {
        EXPECT_EQ(tensor.item<int64_t>(), kSteps * 4) << name << ": BatchNorm counts every micro-batch";
      }
    }
  } else {
    EXPECT_LE(c.parameters.max_relative, kTolerance) << "worst parameter: " << c.parameters.worst;
    EXPECT_LE(c.buffers.max_relative, kTolerance) << "worst buffer: " << c.buffers.worst;
  }
  report(model.model + " chunks 4 vs reference chunks 1", c);
}

INSTANTIATE_TEST_SUITE_P(AllModels, MicroBatching, ::testing::ValuesIn(model_cases()),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.model; });

// Server stages on a GPU (--server-device cuda) against the CPU reference: activations and
// gradients cross between host and device memory around the transport, the servers' optimizer
// state lives on the GPU. Runs where every server rank sees a GPU; skipped (all ranks
// together) elsewhere.
constexpr double kCudaTolerance = 1e-4;  // GPU kernels round differently from the CPU ones

class CudaServerStage : public MpiTest, public ::testing::WithParamInterface<ModelCase> {};

// A run with stages on a GPU against the CPU reference, to the GPU kernels' tolerance.
void expect_close_to_cpu_reference(const Weights& pipeline, const Weights& ref, const std::string& label) {
  if (world_rank() == 0) {
    EXPECT_NEAR(pipeline.stats.loss, ref.stats.loss, kCudaTolerance * std::max(1.0, std::abs(ref.stats.loss)));
  }
  const WorldComparison c = compare_on_world(pipeline, ref);
  EXPECT_LE(c.parameters.max_relative, kCudaTolerance) << "worst parameter: " << c.parameters.worst;
  EXPECT_LE(c.buffers.max_relative, kCudaTolerance) << "worst buffer: " << c.buffers.worst;
  report(label, c);
}

TEST_P(CudaServerStage, WeightsMatchCpuReference) {
  const bool server = world_rank() > 0;
  int missing = server && torch::cuda::device_count() == 0 ? 1 : 0, any_missing = 0;
  MPI_Allreduce(&missing, &any_missing, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any_missing) GTEST_SKIP() << "a server rank sees no GPU";

  const ModelCase& model = GetParam();
  RunConfig config = make_config(model, "1f1b", 2);
  config.server_device = "cuda";
  const Weights pipeline = train_pipeline(config);
  config.server_device = "cpu";
  expect_close_to_cpu_reference(pipeline, reference(config), model.model + " 1f1b chunks 2, servers on cuda");
}

INSTANTIATE_TEST_SUITE_P(LeNetAndMobileNet, CudaServerStage,
                         ::testing::Values(model_cases()[0], model_cases()[2]),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.model; });

// The NCCL data plane (--transport nccl) against the CPU reference, every stage on a GPU: the
// boundary messages cross between GPUs through NCCL. Runs where every rank sees a GPU; skipped
// (all ranks together) elsewhere, where the refusal is tested end to end (tests/cli/bad_inputs.sh).
class NcclTransportPipeline : public MpiTest, public ::testing::WithParamInterface<ModelCase> {};

TEST_P(NcclTransportPipeline, WeightsMatchCpuReference) {
  int missing = torch::cuda::device_count() == 0 ? 1 : 0, any_missing = 0;
  MPI_Allreduce(&missing, &any_missing, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any_missing) GTEST_SKIP() << "a rank sees no GPU";

  const ModelCase& model = GetParam();
  RunConfig config = make_config(model, "1f1b", 2);
  config.transport = "nccl";
  config.edge_device = config.server_device = "cuda";
  const Weights pipeline = train_pipeline(config);
  config.transport = "mpi";
  config.edge_device = config.server_device = "cpu";
  expect_close_to_cpu_reference(pipeline, reference(config),
                                model.model + " 1f1b chunks 2, every stage on cuda, NCCL transport");
}

INSTANTIATE_TEST_SUITE_P(LeNetAndMobileNet, NcclTransportPipeline,
                         ::testing::Values(model_cases()[0], model_cases()[2]),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.model; });

}  // namespace
