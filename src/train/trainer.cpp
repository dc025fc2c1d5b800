#include <chrono>
#include <climits>
#include <iostream>
#include <optional>

#include "edge_averaging.hpp"
#include "splitpipe/interrupt.hpp"
#include "splitpipe/emulated_link.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/fault.hpp"
#include "splitpipe/trainer.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;

int64_t batch_length(int64_t samples, int64_t batch_size, int64_t batch) {
  return std::min(batch_size, samples - batch * batch_size);
}
int64_t num_batches(int64_t samples, int64_t batch_size) { return (samples + batch_size - 1) / batch_size; }

}  // namespace

DatasetMeta broadcast_meta(const MpiTransport& world, const DatasetSplits* data) {
  std::vector<int64_t> packed;
  if (world.rank() == 0) {
    if (!data) throw std::logic_error("broadcast_meta: the edge rank has no data");
    packed = {data->train.num_classes, data->train.size(), data->test.size()};
    for (int64_t d : data->train.sample_shape()) packed.push_back(d);
  }
  world.broadcast(packed);
  DatasetMeta meta;
  meta.num_classes = packed.at(0);
  meta.train_size = packed.at(1);
  meta.test_size = packed.at(2);
  meta.sample_shape.assign(packed.begin() + 3, packed.end());
  return meta;
}

struct Trainer::Impl {
  RunConfig config;
  MpiTransport& world;
  // Edge clients training at once (--client-mode parallel; see clients.hpp), ranks 0..clients-1.
  // 1: the single edge at rank 0 (also each turn of --client-mode sequential).
  int clients;
  const DatasetSplits* data;
  DatasetMeta meta;
  std::vector<Block> blocks;
  PartitionPlan plan;
  LrSchedule lr;
  std::unique_ptr<EmulatedLinkTransport> link;  // --link; declared before the executor, which uses it
  std::unique_ptr<PipelineExecutor> executor;
  std::unique_ptr<torch::optim::SGD> optimizer;
  std::unique_ptr<BatchOrder> order;
  std::map<std::pair<int, bool>, Schedule> schedules;
  std::optional<FaultSpec> fault;
  std::unique_ptr<EdgeAverager> averager;  // parallel clients only
  int64_t steps = 0;                       // per epoch

  Impl(const RunConfig& c, MpiTransport& w, const DatasetSplits* d, const std::vector<double>& block_seconds)
      : config(c),
        world(w),
        clients(c.client_mode == "parallel" ? c.edge_ranks : 1),
        data(w.rank() < clients ? d : nullptr) {
    meta = broadcast_meta(world, data);
    // Every rank draws the whole model from the same seed and keeps its own blocks, so the
    // pipeline starts from exactly the weights of the single-process run.
    torch::manual_seed(config.seed);
    blocks = build_model({config.model, meta.sample_shape, meta.num_classes, config.mlp_hidden});
    const PartitionPlan single = make_partition(blocks, world.size() - clients + 1, config.edge_first,
                                                config.edge_last, config.server_split, block_seconds);
    plan = clients > 1 ? replicate_for_clients(single, clients) : single;

    steps = clients > 1 ? parallel_rounds() : num_batches(meta.train_size, config.batch_size);
    lr = LrSchedule{config.lr_schedule, config.lr, config.epochs, config.warmup_epochs,
                    config.lr_step_epochs, config.lr_gamma, steps};
    PipelineOptions options{config.fwd_codec, config.bwd_codec,
                            (config.batch_size + config.chunks - 1) / config.chunks, config.edge_device,
                            config.server_device, config.on_nonfinite == "stop"};
    if (!config.link.empty()) link = std::make_unique<EmulatedLinkTransport>(world, parse_link_spec(config.link));
    executor = std::make_unique<PipelineExecutor>(link ? static_cast<Transport&>(*link) : world, plan, blocks, options);
    const auto params = executor->parameters();
    if (!params.empty())
      optimizer = std::make_unique<torch::optim::SGD>(
          params, torch::optim::SGDOptions(config.lr)
                      .momentum(config.momentum)
                      .weight_decay(config.weight_decay)
                      .nesterov(config.nesterov));
    if (!config.fault_inject.empty()) fault = parse_fault_spec(config.fault_inject);
    if (data) order = std::make_unique<BatchOrder>(data->train.size(), config.batch_size, true, config.seed);
    if (clients > 1) averager = std::make_unique<EdgeAverager>(world, clients, config.comm_timeout);
  }

  // Parallel clients train in rounds of one full mini-batch each: as many rounds as the
  // smallest shard has full batches (agreed over the world; servers have no data).
  int64_t parallel_rounds() const {
    const int64_t own = data ? data->train.size() / config.batch_size : INT_MAX;
    const int64_t rounds = -world.max_over_ranks({-static_cast<int>(std::min<int64_t>(own, INT_MAX))}).at(0);
    if (rounds < 1) throw UsageError("--batch-size " + std::to_string(config.batch_size) + ": a client's shard holds less than one batch");
    return rounds;
  }
  int64_t train_batch_length(int64_t b) const {
    return clients > 1 ? config.batch_size : batch_length(meta.train_size, config.batch_size, b);
  }

  const Schedule& schedule(int microbatches, bool forward_only) {
    const auto key = std::make_pair(microbatches, forward_only);
    auto it = schedules.find(key);
    if (it == schedules.end())
      it = schedules.emplace(key, make_schedule(microbatches, forward_only)).first;
    return it->second;
  }

  // Parallel clients train together; client 0 alone evaluates (the edge copies are equal after
  // the average at the end of every epoch), so evaluation runs only client 0's pipeline.
  Schedule make_schedule(int microbatches, bool forward_only) const {
    std::vector<int> stage_rank = plan.stage_rank();
    if (clients == 1) return build_schedule(config.schedule, stage_rank, microbatches, forward_only);
    if (forward_only) {
      stage_rank.resize(plan.pipeline_length());
      return build_schedule(config.schedule, stage_rank, microbatches, true);
    }
    return build_schedule(config.schedule, stage_rank, microbatches, false, plan.pipeline_length());
  }

  // Cuts one mini-batch into micro-batches (sizes differ by at most one sample).
  static EdgeBatch cut(const at::Tensor& inputs, const at::Tensor& labels, int microbatches) {
    EdgeBatch batch;
    batch.inputs = inputs.tensor_split(microbatches);
    batch.labels = labels.tensor_split(microbatches);
    batch.batch_size = labels.size(0);
    return batch;
  }

  void accumulate(PassStats& stats, const StepResult& step, const EdgeBatch* batch) {
    stats.loss += step.loss_sum;
    stats.accuracy += static_cast<double>(step.correct);
    stats.samples += step.samples;
    if (batch && step.predictions.defined()) {
      const auto labels = at::cat(batch->labels);
      stats.confusion.view(-1).index_add_(0, labels * meta.num_classes + step.predictions,
                                          at::ones_like(labels));
    }
  }
  PassStats finished(PassStats stats, Clock::time_point start) const {
    if (stats.samples > 0) {
      stats.loss /= static_cast<double>(stats.samples);
      stats.accuracy /= static_cast<double>(stats.samples);
    }
    stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return stats;
  }

  PassStats train(int epoch, int64_t first, int64_t count, const Progress& progress) {
    const auto start = Clock::now();
    const int64_t end = count < 0 ? steps : std::min(steps, first + count);
    PassStats stats;
    stats.confusion = at::zeros({meta.num_classes, meta.num_classes}, at::kLong);
    executor->set_training(true);
    if (order) order->start_epoch(epoch);
    for (int64_t b = first; b < end; ++b) {
      const int64_t length = train_batch_length(b);
      const int microbatches = static_cast<int>(std::min<int64_t>(config.chunks, length));
      std::optional<EdgeBatch> batch;
      if (data) {
        const at::Tensor index = order->batch_indices(b);
        at::Tensor inputs = data->train.inputs.index_select(0, index);
        if (config.augment) inputs = augment_crop_flip(inputs, config.seed * 1000003ULL + epoch * steps + b);
        batch = cut(inputs, data->train.labels.index_select(0, index), microbatches);
      }
      const double rate = lr.at(epoch, b);
      if (optimizer) {
        for (auto& group : optimizer->param_groups())
          static_cast<torch::optim::SGDOptions&>(group.options()).lr(rate);
        optimizer->zero_grad();
      }
      const int64_t global_step = epoch * steps + b;
      if (fault) inject_fault_if_due(*fault, world.rank(), global_step);
      StepResult result;
      try {
        result = executor->run(schedule(microbatches, false), batch ? &*batch : nullptr, true);
      } catch (const NonFiniteError& e) {
        throw NonFiniteError(std::string(e.what()) + ", step " + std::to_string(b) + " of epoch " +
                             std::to_string(epoch + 1) + "; lower --lr or use --on-nonfinite skip-batch");
      }
      // Every rank must take the same decisions: skip this update, stop after it.
      std::vector<int> flags{result.nonfinite ? 1 : 0, interrupt_signal()};
      if (world.size() > 1) flags = world.max_over_ranks(flags);
      stats.next_step = b + 1;
      if (flags[0]) {
        if (optimizer) optimizer->zero_grad();
        ++stats.skipped_steps;
        if (world.rank() == 0)
          std::cerr << "splitpipe: warning: skipped step " << b << " of epoch " << epoch + 1 << ": "
                    << (result.nonfinite ? result.nonfinite_where : std::string("non-finite values on another rank"))
                    << std::endl;
      } else {
        if (optimizer) {
          // A server accumulated every client's gradient of its own batch mean: their mean is
          // the gradient of the union batch.
          if (clients > 1 && world.rank() >= clients)
            for (const auto& p : executor->parameters())
              if (p.grad().defined()) p.mutable_grad().div_(static_cast<double>(clients));
          optimizer->step();
        }
        accumulate(stats, result, batch ? &*batch : nullptr);
      }
      if (averager && averager->is_member() && ((b + 1) % config.sync_every == 0 || b + 1 == steps))
        averager->average(*executor, optimizer.get());
      if (progress) progress(b + 1, steps, finished(stats, start));
      if (flags[1]) {
        stats.interrupted = true;
        break;
      }
    }
    return finished(stats, start);
  }

  PassStats evaluate() {
    const auto start = Clock::now();
    PassStats stats;
    stats.confusion = at::zeros({meta.num_classes, meta.num_classes}, at::kLong);
    executor->set_training(false);
    const int64_t steps = num_batches(meta.test_size, config.batch_size);
    for (int64_t b = 0; b < steps; ++b) {
      const int64_t length = batch_length(meta.test_size, config.batch_size, b);
      const int microbatches = static_cast<int>(std::min<int64_t>(config.chunks, length));
      std::optional<EdgeBatch> batch;
      if (data) {
        const int64_t begin = b * config.batch_size;
        batch = cut(data->test.inputs.narrow(0, begin, length), data->test.labels.narrow(0, begin, length),
                    microbatches);
      }
      accumulate(stats, executor->run(schedule(microbatches, true), batch ? &*batch : nullptr, false),
                 batch ? &*batch : nullptr);
    }
    executor->set_training(true);
    return finished(stats, start);
  }
};

Trainer::Trainer(const RunConfig& config, MpiTransport& world, const DatasetSplits* data,
                 const std::vector<double>& block_seconds)
    : impl_(std::make_unique<Impl>(config, world, data, block_seconds)) {}
Trainer::~Trainer() = default;

const DatasetMeta& Trainer::meta() const { return impl_->meta; }
const std::vector<Block>& Trainer::blocks() const { return impl_->blocks; }
const PartitionPlan& Trainer::plan() const { return impl_->plan; }
const LrSchedule& Trainer::lr_schedule() const { return impl_->lr; }
int64_t Trainer::steps_per_epoch() const { return impl_->steps; }
const Schedule& Trainer::schedule(int microbatches, bool forward_only) {
  return impl_->schedule(microbatches, forward_only);
}
PassStats Trainer::train(int epoch, int64_t first, int64_t count, const Progress& progress) {
  return impl_->train(epoch, first, count, progress);
}
PassStats Trainer::evaluate() { return impl_->evaluate(); }
PipelineExecutor& Trainer::executor() { return *impl_->executor; }
double Trainer::edge_sync_seconds() const { return impl_->averager ? impl_->averager->seconds() : 0.0; }
double Trainer::edge_sync_bytes() const { return impl_->averager ? impl_->averager->bytes() : 0.0; }

void Trainer::save_state(torch::serialize::OutputArchive& archive) const {
  for (const auto& [name, p] : impl_->executor->named_parameters()) archive.write("param/" + name, p, false);
  for (const auto& [name, b] : impl_->executor->named_buffers()) archive.write("buffer/" + name, b, true);
  if (impl_->optimizer) {
    torch::serialize::OutputArchive state;
    impl_->optimizer->save(state);
    archive.write("optimizer", state);
  }
  archive.write("rng", at::globalContext().defaultGenerator(at::kCPU).get_state(), true);
  const at::Device device = impl_->executor->device();
  if (device.is_cuda()) archive.write("rng_cuda", at::globalContext().defaultGenerator(device).get_state(), true);
}

void Trainer::load_state(torch::serialize::InputArchive& archive) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : impl_->executor->named_parameters()) {
    at::Tensor saved;
    archive.read("param/" + name, saved);
    p.copy_(saved);
  }
  for (const auto& [name, b] : impl_->executor->named_buffers()) {
    at::Tensor saved;
    archive.read("buffer/" + name, saved, true);
    b.copy_(saved);
  }
  if (impl_->optimizer) {
    torch::serialize::InputArchive state;
    archive.read("optimizer", state);
    impl_->optimizer->load(state);
  }
  // Generator states are byte tensors on the CPU, wherever the archive was mapped to.
  at::Tensor rng;
  archive.read("rng", rng, true);
  // (A Generator is a handle: the copy sets the global generator's state.)
  at::Generator cpu = at::globalContext().defaultGenerator(at::kCPU);
  cpu.set_state(rng.to(at::kCPU));
  const at::Device device = impl_->executor->device();
  if (device.is_cuda() && archive.try_read("rng_cuda", rng, true)) {
    at::Generator cuda = at::globalContext().defaultGenerator(device);
    cuda.set_state(rng.to(at::kCPU));
  }
}

std::string Trainer::weights_digest() const {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a 64
  auto add = [&hash](const at::Tensor& t) {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const auto* bytes = static_cast<const uint8_t*>(c.data_ptr());
    for (size_t i = 0; i < c.nbytes(); ++i) hash = (hash ^ bytes[i]) * 1099511628211ULL;
  };
  for (const auto& [name, p] : impl_->executor->named_parameters()) add(p);
  for (const auto& [name, b] : impl_->executor->named_buffers()) add(b);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

PassStats merge(const PassStats& first, const PassStats& second) {
  PassStats merged = second;
  merged.samples = first.samples + second.samples;
  if (merged.samples > 0) {
    merged.loss = (first.loss * first.samples + second.loss * second.samples) / merged.samples;
    merged.accuracy = (first.accuracy * first.samples + second.accuracy * second.samples) / merged.samples;
  }
  merged.seconds = first.seconds + second.seconds;
  merged.skipped_steps = first.skipped_steps + second.skipped_steps;
  if (first.confusion.defined() && second.confusion.defined()) merged.confusion = first.confusion + second.confusion;
  return merged;
}

}  // namespace splitpipe
