// The step loop every rank runs, in every client mode (see client_strategy.hpp for the modes).
#include "splitpipe/trainer.hpp"

#include <torch/cuda.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <tuple>

#include "splitpipe/error.hpp"
#include "splitpipe/fault.hpp"
#include "splitpipe/interrupt.hpp"
#include "splitpipe/step_runner.hpp"
#include "splitpipe/trace.hpp"
#include "batch_prefetcher.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Runs `body` on every rank; an Error (a UsageError too) on any rank becomes the same
// CollectiveError, with its exit code, on every rank (so none waits for a peer that left).
template <typename Body>
void agreed(const ControlPlane& control, Body body) {
  std::optional<std::string> error;
  int exit_code = 1;
  try {
    body();
  } catch (const CollectiveError&) {
    throw;
  } catch (const Error& e) {
    error = e.what();
    exit_code = e.exit_code();
  }
  control.agree_on(error, exit_code);
}

// Each rank checks the device of the stages it will hold (an edge without a GPU may well
// serve a GPU server), and every rank learns of a refusal.
void check_devices(const RunConfig& config, const ControlPlane& control) {
  const bool single = control.size() == 1;
  const bool edge = control.rank() < config.edge_ranks;
  std::optional<std::string> error;
  for (const auto& [option, device, holds] : {std::tuple{"edge-device", config.edge_device, single || edge},
                                              std::tuple{"server-device", config.server_device, single || !edge}})
    if (holds && device == "cuda" && !error && torch::cuda::device_count() == 0)
      error = std::string("--") + option + " cuda: no GPU is visible to this process (" +
              (single ? "" : edge ? "an edge rank, " : "a server rank, ") + "CUDA_VISIBLE_DEVICES='" +
              (std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "") +
              "'); run it on a GPU node (e.g. sbatch --gpus-per-task=1) or use --" + option + " cpu";
  control.agree_on(error, 2);
}

Dataset subset(const Dataset& full, const at::Tensor& indices) {
  return Dataset{full.inputs.index_select(0, indices), full.labels.index_select(0, indices), full.num_classes,
                 full.class_names};
}

}  // namespace

// "auto" leaves a user's TorchScript module contiguous: its code may view() a conv output,
// which channels-last strides refuse.
std::string stage_memory_format(const RunConfig& config) {
  if (config.memory_format == "auto" && config.model.rfind("torchscript:", 0) == 0) return "contiguous";
  return config.memory_format;
}

struct Trainer::Impl {
  RunConfig config;
  ControlPlane& control;
  const int E;
  const int my_client;  // -1 on servers
  std::vector<at::Tensor> shards;
  std::optional<DatasetSplits> own;  // a client's shard of the training set and the full test set
  DatasetMeta meta;
  std::vector<int64_t> shard_sizes;
  std::vector<Block> blocks;
  PartitionPlan plan;
  std::unique_ptr<ClientStrategy> strategy;
  LrSchedule lr;
  std::unique_ptr<StepRunner> runner;
  std::unique_ptr<StageState> state;  // over the runner's executor's modules
  std::unique_ptr<ControlPlane> client_group;  // parallel clients: ranks 0..E-1 (null elsewhere)
  std::unique_ptr<BatchOrder> order;
  std::optional<FaultSpec> fault;
  EdgeSyncStats sync_stats;
  Tracer* tracer = nullptr;

  Impl(const RunConfig& c, ControlPlane& ctl, const DatasetSplits* data, const std::vector<double>& block_seconds)
      : config(c), control(ctl), E(c.edge_ranks), my_client(ctl.rank() < c.edge_ranks ? ctl.rank() : -1) {
    agreed(control, [&] {
      if (E > 1 && control.size() < E + 1)
        throw UsageError("--edge-ranks " + std::to_string(E) + " needs " + std::to_string(E) +
                         " edge client ranks and at least 1 server rank, but mpirun started " +
                         std::to_string(control.size()) + " rank(s); use mpirun -np " + std::to_string(E + 1) +
                         " or more");
      if (my_client >= 0 && !data) throw std::logic_error("edge client " + std::to_string(my_client) + " has no data");
    });
    check_devices(config, control);
    take_own_data(data);
    meta = broadcast_meta(data);
    agreed(control, [&] {
      // Every rank draws the whole model from the same seed and keeps its own blocks, so the
      // pipeline starts from exactly the weights of the single-process run.
      torch::manual_seed(config.seed);
      blocks = build_model(model_spec(config, meta.sample_shape, meta.num_classes));
      const PartitionPlan one = make_partition(blocks, control.size() - E + 1, config.edge_first, config.edge_last,
                                               config.server_split, block_seconds);
      plan = E > 1 ? replicate_for_clients(one, E) : one;
      strategy = std::make_unique<ClientStrategy>(E > 1 ? config.client_mode : "single", shard_sizes,
                                                  config.batch_size, config.sync_every);
    });
    lr = LrSchedule{config.lr_schedule, config.lr, config.epochs, config.warmup_epochs,
                    config.lr_step_epochs, config.lr_gamma, strategy->steps_per_epoch()};

    runner = std::make_unique<StepRunner>(
        config, control, plan, blocks,
        PipelineOptions{config.fwd_codec, config.bwd_codec, config.edge_device, config.server_device,
                        config.on_nonfinite == "stop", cross_entropy_sum(), edge_patience(), config.recompute,
                        stage_memory_format(config), config.edge_compute_scale});
    state = std::make_unique<StageState>(
        runner->executor(), OptimizerOptions{config.lr, config.momentum, config.weight_decay, config.nesterov});
    if (strategy->sync().edge == SyncPolicy::EdgeSync::Average) {
      std::vector<int> clients;
      for (int c = 0; c < E; ++c) clients.push_back(c);
      client_group = control.subgroup(clients);  // collective: every rank
    }
    if (!config.fault_inject.empty()) fault = parse_fault_spec(config.fault_inject);
    if (own) order = std::make_unique<BatchOrder>(own->train.size(), config.batch_size, true, config.seed);
  }

  // An edge waits for a server a quarter of the timeout (at least 2 s) longer than the servers
  // wait, so that the rank next to a failure reports it (less than the control plane's grace
  // for collectives).
  double edge_patience() const { return control.timeout() > 0 ? std::max(2.0, 0.25 * control.timeout()) : 0.0; }

  // One edge keeps the whole training set; several clients each compute every shard from the
  // same seed and keep their own. Too small a shard stops every rank.
  void take_own_data(const DatasetSplits* data) {
    agreed(control, [&] {
      if (my_client < 0) return;
      if (E == 1) {
        own = *data;
        return;
      }
      shards = make_shards(data->train.labels, data->train.num_classes, E, parse_shard_spec(config.shard), config.seed,
                           config.batch_size);
      own = DatasetSplits{subset(data->train, shards[my_client]), data->test,
                          data->description + ", client " + std::to_string(my_client) + "'s shard"};
    });
    shard_sizes.clear();
    if (control.rank() == 0) {
      if (E == 1) shard_sizes.push_back(own->train.size());
      for (const auto& shard : shards) shard_sizes.push_back(shard.size(0));
    }
    control.broadcast(shard_sizes);
  }

  DatasetMeta broadcast_meta(const DatasetSplits* data) const {
    std::vector<int64_t> packed;
    if (control.rank() == 0) {
      packed = {data->train.num_classes, data->train.size(), data->test.size()};
      for (int64_t d : data->train.sample_shape()) packed.push_back(d);
    }
    control.broadcast(packed);
    DatasetMeta m;
    m.num_classes = packed.at(0);
    m.train_size = packed.at(1);
    m.test_size = packed.at(2);
    m.sample_shape.assign(packed.begin() + 3, packed.end());
    return m;
  }

  // Cuts one mini-batch into micro-batches (sizes differ by at most one sample).
  static EdgeBatch cut(const at::Tensor& inputs, const at::Tensor& labels, int microbatches) {
    EdgeBatch batch;
    batch.inputs = inputs.tensor_split(microbatches);
    batch.labels = labels.tensor_split(microbatches);
    batch.batch_size = labels.size(0);
    return batch;
  }

  PassStats empty_stats() const {
    PassStats stats;
    if (my_client >= 0) stats.confusion = at::zeros({meta.num_classes, meta.num_classes}, at::kLong);
    return stats;
  }

  void accumulate(PassStats& stats, const StepResult& step, const EdgeBatch* batch) {
    stats.loss_sum += step.loss_sum;
    stats.correct += static_cast<double>(step.correct);
    stats.samples += step.samples;
    if (batch && step.predictions.defined()) {
      const auto labels = at::cat(batch->labels);
      stats.confusion.view(-1).index_add_(0, labels * meta.num_classes + step.predictions, at::ones_like(labels));
    }
  }
  // The means so far; `seconds` adds the wall time since `start` to what came before it.
  static PassStats finished(PassStats stats, Clock::time_point start) {
    if (stats.samples > 0) {
      stats.loss = stats.loss_sum / static_cast<double>(stats.samples);
      stats.accuracy = stats.correct / static_cast<double>(stats.samples);
    }
    stats.seconds += seconds_since(start);
    return stats;
  }

  // This rank's batch of training step b (an edge client in its turn), else nullopt. Depends only
  // on (seed, epoch, b): the prefetcher may make it on another thread.
  std::optional<EdgeBatch> make_batch(int epoch, int64_t b) const {
    const StepSpec spec = strategy->step(b);
    if (!own || !(spec.client < 0 || spec.client == my_client)) return std::nullopt;
    const at::Tensor index = order->batch_indices(spec.batch);
    at::Tensor inputs = own->train.inputs.index_select(0, index);
    if (config.augment)
      inputs = augment_crop_flip(inputs, config.seed * 1000003ULL + (epoch * strategy->steps_per_epoch() + b) * E +
                                             std::max(my_client, 0));
    return cut(inputs, own->train.labels.index_select(0, index), runner->microbatches(spec.rows));
  }

  // The edge-state synchronisation after a step, as the policy says.
  void sync_edges(const StepSpec& spec) {
    const auto start = Clock::now();
    if (strategy->sync().edge == SyncPolicy::EdgeSync::Average && client_group) {
      sync_stats.bytes += state->average(*client_group);
      sync_stats.seconds += seconds_since(start);
    } else if (strategy->sync().edge == SyncPolicy::EdgeSync::HandOff) {
      const int from = spec.client, to = (spec.client + 1) % E;
      if (my_client == from) {
        const std::string bytes = state->serialize();
        control.send_bytes(to, bytes, "hand-off of the edge state (client " + std::to_string(from) + " -> " +
                                          std::to_string(to) + ")");
        sync_stats.bytes += static_cast<double>(bytes.size());
        sync_stats.seconds += seconds_since(start);
      }
      if (my_client == to) {
        const std::string bytes = control.receive_bytes(
            from, "hand-off of the edge state (client " + std::to_string(from) + " -> " + std::to_string(to) + ")");
        try {
          state->deserialize(bytes);
        } catch (const c10::Error& e) {
          throw Error("hand-off of the edge state from client " + std::to_string(from) +
                      " does not load: " + e.what_without_backtrace());
        }
      }
    }
  }

  PassStats train(int epoch, int64_t first, int64_t count, const Progress& progress, const PassStats* before) {
    // Every rank starts the pass together (a client idle during evaluation would otherwise
    // count its wait for the servers as its first step's time).
    control.barrier();
    const auto start = Clock::now();
    const int64_t steps = strategy->steps_per_epoch();
    const int64_t end = count < 0 ? steps : std::min(steps, first + count);
    PassStats stats = empty_stats();
    if (before) {
      stats = *before;
      if (my_client >= 0 && !stats.confusion.defined()) stats.confusion = empty_stats().confusion;
    }
    runner->executor().set_training(true);
    if (order) order->start_epoch(epoch);
    std::optional<BatchPrefetcher> prefetcher;  // after start_epoch: it reads the epoch's order
    if (own && config.prefetch > 0)
      prefetcher.emplace([this, epoch](int64_t b) { return make_batch(epoch, b); }, first, end, config.prefetch);
    for (int64_t b = first; b < end; ++b) {
      if (tracer) tracer->begin_step(epoch, b);
      const auto step_start = Clock::now();
      const StepSpec spec = strategy->step(b);
      const std::optional<EdgeBatch> batch = prefetcher ? prefetcher->take(b) : make_batch(epoch, b);
      if (batch) {
        runner->executor().counters().data_seconds += seconds_since(step_start);
        if (tracer) tracer->span("data", "step", step_start, Clock::now());
      }
      state->set_lr(lr.at(epoch, b));
      state->zero_grad();
      const int64_t global_step = epoch * steps + b;
      if (fault) inject_fault_if_due(*fault, control.rank(), global_step);
      StepResult result;
      try {
        result = runner->run(spec.client, spec.rows, batch ? &*batch : nullptr, true);
      } catch (const NonFiniteError& e) {
        throw NonFiniteError(std::string(e.what()) + ", step " + std::to_string(b) + " of epoch " +
                             std::to_string(epoch + 1) + "; lower --lr or use --on-nonfinite skip-batch");
      }
      // Every rank must take the same decisions: skip this update, stop after it.
      std::vector<int> flags{result.nonfinite ? 1 : 0, interrupt_signal()};
      if (control.size() > 1) flags = control.max_over_ranks(flags);
      stats.next_step = b + 1;
      const bool takes_part = runner->takes_part(spec.client, spec.rows, true);
      if (flags[0]) {
        state->zero_grad();
        ++stats.skipped_steps;
        if (control.rank() == 0)
          std::cerr << "splitpipe: warning: skipped step " << b << " of epoch " << epoch + 1 << ": "
                    << (result.nonfinite ? result.nonfinite_where : std::string("non-finite values on another rank"))
                    << std::endl;
      } else if (takes_part) {
        // A server accumulated the gradient of every client's own batch mean: their mean is
        // the gradient of the union batch.
        const auto optimizer_start = Clock::now();
        if (strategy->sync().server_gradient_mean && my_client < 0 && spec.client < 0)
          state->divide_gradients(static_cast<double>(E));
        state->step();
        if (tracer) tracer->span("optimizer", "step", optimizer_start, Clock::now());
        accumulate(stats, result, batch ? &*batch : nullptr);
      }
      if (spec.edge_sync_after) {
        const auto sync_start = Clock::now();
        sync_edges(spec);
        if (tracer) tracer->span("edge sync", "step", sync_start, Clock::now());
      }
      if (takes_part) stats.active_seconds += seconds_since(step_start);
      if (tracer) {
        tracer->span("step " + std::to_string(b), "step", step_start, Clock::now());
        tracer->end_step();
      }
      if (progress) progress(b + 1, steps, finished(stats, start));
      if (flags[1]) {
        stats.interrupted = true;
        break;
      }
    }
    if (tracer) tracer->finish();
    return finished(stats, start);
  }

  PassStats evaluate() {
    const auto start = Clock::now();
    PassStats stats = empty_stats();
    if (my_client > 0) return finished(stats, start);  // client 0's pipeline only
    runner->executor().set_training(false);
    const int64_t steps = (meta.test_size + config.batch_size - 1) / config.batch_size;
    for (int64_t b = 0; b < steps; ++b) {
      const int64_t begin = b * config.batch_size;
      const int64_t length = std::min(config.batch_size, meta.test_size - begin);
      std::optional<EdgeBatch> batch;
      if (my_client == 0)
        batch = cut(own->test.inputs.narrow(0, begin, length), own->test.labels.narrow(0, begin, length),
                    runner->microbatches(length));
      accumulate(stats, runner->run(0, length, batch ? &*batch : nullptr, false), batch ? &*batch : nullptr);
    }
    runner->executor().set_training(true);
    return finished(stats, start);
  }
};

ModelSpec model_spec(const RunConfig& config, const std::vector<int64_t>& sample_shape, int64_t num_classes) {
  return {config.model, sample_shape, num_classes, config.mlp_hidden, config.transformer};
}

Trainer::Trainer(const RunConfig& config, ControlPlane& control, const DatasetSplits* data,
                 const std::vector<double>& block_seconds)
    : impl_(std::make_unique<Impl>(config, control, data, block_seconds)) {}
Trainer::~Trainer() = default;

const DatasetMeta& Trainer::meta() const { return impl_->meta; }
const std::vector<Block>& Trainer::blocks() const { return impl_->blocks; }
const PartitionPlan& Trainer::plan() const { return impl_->plan; }
const ClientStrategy& Trainer::strategy() const { return *impl_->strategy; }
const LrSchedule& Trainer::lr_schedule() const { return impl_->lr; }
int64_t Trainer::steps_per_epoch() const { return impl_->strategy->steps_per_epoch(); }
int Trainer::client() const { return impl_->my_client; }
const std::vector<at::Tensor>& Trainer::shards() const { return impl_->shards; }
const Schedule& Trainer::schedule(int client, int microbatches, bool forward_only) {
  return impl_->runner->schedule(client, microbatches, forward_only);
}
PassStats Trainer::train(int epoch, int64_t first, int64_t count, const Progress& progress, const PassStats* before) {
  return impl_->train(epoch, first, count, progress, before);
}
PassStats Trainer::evaluate() { return impl_->evaluate(); }
PipelineExecutor& Trainer::executor() { return impl_->runner->executor(); }
StageState& Trainer::state() { return *impl_->state; }
const StageState& Trainer::state() const { return *impl_->state; }
EdgeSyncStats& Trainer::edge_sync() { return impl_->sync_stats; }
void Trainer::set_tracer(Tracer* tracer) {
  impl_->tracer = tracer;
  impl_->runner->executor().set_tracer(tracer);
}

}  // namespace splitpipe
