// The one small loop that runs a schedule: each action is a forward, a backward, or a
// transfer through a boundary channel. The loss is whatever the run passed in.
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>
#include <thread>

#include "boundary_channel.hpp"
#include "loss_link.hpp"
#include "memory_format.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/pipeline.hpp"
#include "splitpipe/step_memory.hpp"
#include "splitpipe/trace.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
Clock::duration clock_duration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// A stage held by this rank and its per-step tensors (indexed by micro-batch).
struct LocalStage {
  StagePlan plan;
  bool first = false, last = false;
  std::vector<std::pair<int, torch::nn::Sequential>> blocks;  // (global index, block)
  at::Device device = at::kCPU;
  std::vector<at::Tensor> inputs, outputs, output_grads, losses;
  std::vector<at::Tensor> labels;  // --recompute: the loss is recomputed in backward
  // What the loss of a last stage saw in this step; predictions per micro-batch.
  StepResult seen;
  std::vector<at::Tensor> predictions;

  bool channels_last = false;  // --memory-format: images and conv weights stored NHWC
  at::Tensor forward(at::Tensor x) {
    for (auto& [index, block] : blocks) {
      if (channels_last) x = channels_last_boundary(x);
      x = block->forward(x);
    }
    return x;
  }
  void begin_step(int microbatches) {
    for (auto* v : {&inputs, &outputs, &output_grads, &losses, &labels, &predictions}) {
      v->assign(microbatches, at::Tensor());
    }
    seen = StepResult();
  }
};

using ChannelKey = std::pair<int, bool>;  // (boundary, gradient)

// "cuda" is the GPU of this rank's slot on its node, so ranks sharing a node do not share a
// GPU: node-local rank modulo the GPUs visible.
at::Device resolve_device(const std::string& name) {
  if (name != "cuda") return at::Device(name);
  const int gpus = static_cast<int>(torch::cuda::device_count());
  if (gpus == 0) throw UsageError("cuda device requested but no GPU is visible to this process");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(node_local_rank() % gpus));
}

}  // namespace

struct PipelineExecutor::Impl {
  Transport& transport;
  PartitionPlan plan;
  PipelineOptions options;
  RankCounters counters;
  std::vector<LocalStage> stages;
  std::map<int, size_t> local_index;  // global stage -> index in stages
  std::map<ChannelKey, std::unique_ptr<OutboundChannel>> outbound;
  std::map<ChannelKey, std::unique_ptr<InboundChannel>> inbound;
  // --edge-last 0: per pipeline whose first and last stages are on different ranks, this
  // rank's end of its label link (keyed by the pipeline's first stage).
  std::map<int, std::unique_ptr<LossLink>> loss_links;
  Tracer* tracer = nullptr;
  MemoryPeaks memory_peaks;
  bool training_step = false;  // this step trains (builds a graph, runs backward)
  bool recomputing = false;    // this step: --recompute while training

  Impl(Transport& t, const PartitionPlan& p, const std::vector<Block>& blocks, const PipelineOptions& o)
      : transport(t), plan(p), options(o) {
    step_memory::install();
    // With several edge clients the plan holds one pipeline of L stages per client; a server
    // holds stage s of every pipeline, built from the same blocks, so all clients train the
    // same server weights.
    const int L = plan.pipeline_length();
    const auto stage_rank = plan.stage_rank();
    counters.bytes_sent.assign(std::max(L - 1, 0), {0, 0});
    for (auto* table : {&counters.bytes_received, &counters.raw_bytes_sent, &counters.messages_sent,
                        &counters.error_sum, &counters.error_samples, &counters.encode_seconds_at,
                        &counters.decode_seconds_at, &counters.link_wait_seconds_at})
      *table = counters.bytes_sent;

    for (auto* peer_table : {&counters.peer_sent_bytes, &counters.peer_received_bytes, &counters.peer_link_wait_seconds})
      peer_table->assign(transport.size(), 0.0);
    bool edge_rank = false;
    for (const int s : plan.stages_of_rank(transport.rank())) edge_rank |= plan.stages[s].role != "server";
    const double patience = edge_rank ? options.edge_patience_seconds : 0.0;
    for (const int s : plan.stages_of_rank(transport.rank())) {
      const StagePlan& sp = plan.stages[s];
      LocalStage stage;
      stage.plan = sp;
      stage.first = s % L == 0;
      stage.last = s % L == L - 1;
      stage.device = resolve_device(sp.role == "server" ? options.server_device : options.edge_device);
      for (int b = sp.first_block; b < sp.end_block; ++b) {
        torch::nn::Sequential block = blocks[b].module;
        block->to(stage.device);
        stage.blocks.emplace_back(b, block);
      }
      std::vector<at::Tensor> parameters;
      for (auto& [index, block] : stage.blocks)
        for (const auto& p : block->parameters()) parameters.push_back(p);
      stage.channels_last = wants_channels_last(options.memory_format, stage.device.is_cpu(), parameters);
      if (stage.channels_last) store_channels_last(parameters);
      if (!stage.first) {
        if (stage_rank[s - 1] == sp.rank)
          throw std::logic_error("adjacent stages " + std::to_string(s - 1) + " and " + std::to_string(s) + " on one rank");
        const ChannelEnds from{stage_rank[s - 1], s - 1, (s - 1) % L, false, patience};
        inbound[{s - 1, false}] = std::make_unique<InboundChannel>(transport, from, options.fwd_codec,
                                                                   blocks.at(sp.first_block - 1).output_shape);
        outbound[{s - 1, true}] =
            std::make_unique<OutboundChannel>(transport, ChannelEnds{from.peer, s - 1, from.slot, true, patience},
                                              options.bwd_codec);
      }
      if (!stage.last) {
        const ChannelEnds to{stage_rank[s + 1], s, s % L, false, patience};
        outbound[{s, false}] = std::make_unique<OutboundChannel>(transport, to, options.fwd_codec);
        inbound[{s, true}] = std::make_unique<InboundChannel>(transport, ChannelEnds{to.peer, s, to.slot, true, patience},
                                                              options.bwd_codec, blocks.at(sp.end_block - 1).output_shape);
      }
      const int pipeline_first = s - s % L, pipeline_last = pipeline_first + L - 1;
      if ((stage.first || stage.last) && stage_rank[pipeline_first] != stage_rank[pipeline_last])
        loss_links[pipeline_first] =
            std::make_unique<LossLink>(transport, stage_rank[pipeline_first], stage_rank[pipeline_last], patience);
      local_index[s] = stages.size();
      stages.push_back(std::move(stage));
    }
  }

  // The receives of one step in the order to post them: for each peer, in the order that peer
  // sends (the data plane matches a pair's messages in order, without tags).
  const std::vector<Action>& receive_order(const Schedule& schedule) {
    auto it = receive_orders.find(&schedule);
    if (it != receive_orders.end()) return it->second;
    std::vector<Action> order;
    const int me = transport.rank();
    for (int peer = 0; peer < schedule.num_ranks(); ++peer)
      for (const Action& a : schedule.programs[peer]) {
        if (a.peer != me) continue;
        if (a.type == ActionType::SendActivation) order.push_back({ActionType::RecvActivation, a.stage + 1, a.microbatch, peer});
        if (a.type == ActionType::SendGradient) order.push_back({ActionType::RecvGradient, a.stage - 1, a.microbatch, peer});
      }
    return receive_orders.emplace(&schedule, std::move(order)).first->second;
  }

  LocalStage& stage(int s) { return stages.at(local_index.at(s)); }

  // The label link of the pipeline of `st`, or null when its loss is on its edge's rank.
  LossLink* loss_link_of(const LocalStage& st) const {
    const auto link = loss_links.find(st.plan.stage - st.plan.stage % plan.pipeline_length());
    return link == loss_links.end() ? nullptr : link->second.get();
  }

  // The label links of the pipelines that run in `schedule` (a sequential client's turn runs
  // one), with whether this rank is their loss end.
  std::vector<std::pair<LossLink*, bool>> active_loss_links(const Schedule& schedule) {
    std::vector<std::pair<LossLink*, bool>> active;
    const auto& program = schedule.programs.at(transport.rank());
    const int L = plan.pipeline_length();
    for (auto& [first, link] : loss_links) {
      const bool loss_end = local_index.count(first + L - 1) > 0;
      const int own_stage = loss_end ? first + L - 1 : first;
      const bool runs = std::any_of(program.begin(), program.end(), [&](const Action& a) {
        return a.type == ActionType::Forward && a.stage == own_stage;
      });
      if (runs) active.emplace_back(link.get(), loss_end);
    }
    return active;
  }

  static at::Tensor stage_input(LocalStage& st, int mb, const EdgeBatch* batch) {
    if (!st.first) return st.inputs[mb];
    if (!batch) throw std::logic_error("the first stage needs the edge's batch");
    return batch->inputs.at(mb).to(st.device);
  }

  void forward(LocalStage& st, int mb, const EdgeBatch* batch, int64_t batch_rows, StepResult& result) {
    const at::Tensor x = stage_input(st, mb, batch);
    const auto start = Clock::now();
    // --recompute: no graph now; backward runs the forward again from the stage's input.
    std::optional<torch::NoGradGuard> no_graph;
    if (recomputing) no_graph.emplace();
    const int64_t memory_before = step_memory::live_bytes();
    at::Tensor out = st.forward(x);
    if (training_step)
      memory_peaks.microbatch_activation_bytes =
          std::max(memory_peaks.microbatch_activation_bytes, step_memory::live_bytes() - memory_before);
    emulate_slower_edge(st, start);
    counters.forward_seconds += seconds_since(start);
    if (!st.last) {
      st.outputs[mb] = out;
      return;
    }
    // The labels may still be on their way (that is a wait, not compute).
    at::Tensor labels;
    if (LossLink* link = loss_link_of(st)) {
      labels = link->labels(mb, counters).to(st.device);
    } else {
      if (!batch) throw std::logic_error("the last stage needs the edge's labels");
      labels = batch->labels.at(mb).to(st.device);
    }
    const auto loss_start = Clock::now();
    const at::Tensor loss_sum = options.loss(out, labels);
    // Each micro-batch contributes its share of the mini-batch mean, so the accumulated
    // gradient equals the gradient of the whole mini-batch.
    if (recomputing) {
      st.labels[mb] = labels;
    } else {
      st.losses[mb] = loss_sum / static_cast<double>(batch_rows);
    }
    const at::Tensor predicted = out.argmax(1);
    const double loss_value = loss_sum.item<double>();
    check_finite(loss_value, st, mb, "loss", result);
    st.seen.loss_sum += loss_value;
    st.seen.correct += predicted.eq(labels).sum().item<int64_t>();
    st.seen.samples += labels.size(0);
    st.predictions[mb] = predicted.to(at::kCPU);
    counters.forward_seconds += seconds_since(loss_start);
  }

  // A NaN/Inf stops the run where it appears (naming stage and micro-batch; the trainer adds
  // the step) or, with --on-nonfinite skip-batch, marks the step so no rank applies it.
  void check_finite(double value, const LocalStage& st, int mb, const char* what, StepResult& result) {
    if (std::isfinite(value)) return;
    const std::string where = std::string("non-finite ") + what + " in stage " + std::to_string(st.plan.stage) + " (" +
                              st.plan.role + ", blocks " + std::to_string(st.plan.first_block) + "-" +
                              std::to_string(st.plan.end_block - 1) + "), micro-batch " + std::to_string(mb);
    if (options.stop_on_nonfinite) throw NonFiniteError(where);
    if (!result.nonfinite) result.nonfinite_where = where;
    result.nonfinite = true;
  }
  void check_finite(const at::Tensor& x, const LocalStage& st, int mb, const char* what, StepResult& result) {
    // One reduction: any NaN or Inf makes the sum non-finite.
    check_finite(x.sum().item<double>(), st, mb, what, result);
  }

  // In one process the next block's boundary hands this gradient back canonical channels-last.
  static at::Tensor received_gradient(const LocalStage& st, int mb) {
    return st.channels_last ? canonical_channels_last(st.output_grads[mb]) : st.output_grads[mb];
  }

  // --edge-compute-scale S: an edge stage's compute since `start` is made to take S times as
  // long by waiting out the difference (a sleep: the emulated device is busy, not this core).
  void emulate_slower_edge(const LocalStage& st, Clock::time_point start) {
    if (options.edge_compute_scale <= 1.0 || st.plan.role == "server") return;
    const auto compute = Clock::now() - start;
    const auto wait_start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration_cast<Clock::duration>(compute * (options.edge_compute_scale - 1.0)));
    counters.emulated_compute_seconds += seconds_since(wait_start);
  }

  void backward(LocalStage& st, int mb, const EdgeBatch* batch, int64_t batch_rows) {
    const auto start = Clock::now();
    if (recomputing) {
      recompute_backward(st, mb, batch, batch_rows);
    } else if (st.last) {
      st.losses[mb].backward();
      st.losses[mb] = at::Tensor();
    } else {
      st.outputs[mb].backward(received_gradient(st, mb));
      st.outputs[mb] = st.output_grads[mb] = at::Tensor();
    }
    emulate_slower_edge(st, start);
    counters.backward_seconds += seconds_since(start);
  }

  // The forward again, with a graph this time, then its backward. The first forward already
  // updated BatchNorm's running statistics: they are put back after the second (and its
  // backward), so a run with --recompute trains exactly like one without.
  void recompute_backward(LocalStage& st, int mb, const EdgeBatch* batch, int64_t batch_rows) {
    std::vector<std::pair<at::Tensor, at::Tensor>> buffers;  // (buffer, its value before)
    for (auto& [index, block] : st.blocks)
      for (auto& buffer : block->buffers()) buffers.emplace_back(buffer, buffer.clone());
    const at::Tensor out = st.forward(stage_input(st, mb, batch));
    if (st.last) {
      (options.loss(out, st.labels[mb]) / static_cast<double>(batch_rows)).backward();
      st.labels[mb] = at::Tensor();
    } else {
      out.backward(received_gradient(st, mb));
      st.output_grads[mb] = at::Tensor();
    }
    st.outputs[mb] = at::Tensor();
    // After the backward: its graph holds the statistics and checks they were not modified.
    torch::NoGradGuard no_grad;
    for (auto& [buffer, before] : buffers) buffer.copy_(before);
  }

  StepResult run(const Schedule& schedule, const std::vector<int64_t>& rows, const EdgeBatch* batch, bool train) {
    const auto step_start = Clock::now();
    training_step = train;
    recomputing = train && options.recompute;
    if (train == schedule.forward_only)
      throw std::logic_error("training needs a schedule with backward passes, evaluation a forward-only one");
    if (schedule.num_microbatches > kMaxMicrobatches) throw Error("too many micro-batches");
    if (static_cast<int>(rows.size()) != schedule.num_microbatches)
      throw std::logic_error("the step's micro-batch sizes do not match its schedule");
    const auto& program = schedule.programs.at(transport.rank());
    for (auto& st : stages) st.begin_step(schedule.num_microbatches);
    const int64_t memory_before = step_memory::live_bytes();
    step_memory::reset_peak();
    const int64_t batch_rows = std::accumulate(rows.begin(), rows.end(), int64_t{0});
    const auto links = active_loss_links(schedule);

    // Post every receive of the step up front, so a message never waits for its receiver. The
    // edge sends labels before anything else and results come last (see loss_link.hpp).
    for (const auto& [link, loss_end] : links)
      if (loss_end) link->post_labels(rows);
    for (const Action& a : receive_order(schedule)) {
      if (a.type == ActionType::RecvActivation) inbound.at({a.stage - 1, false})->post(a.microbatch, rows[a.microbatch]);
      if (a.type == ActionType::RecvGradient) inbound.at({a.stage, true})->post(a.microbatch, rows[a.microbatch]);
    }
    for (const auto& [link, loss_end] : links) {
      if (loss_end) continue;
      if (!batch) throw std::logic_error("the first stage needs the edge's batch");
      link->send_labels(batch->labels, counters);
    }
    std::optional<torch::NoGradGuard> no_grad;
    if (!train) no_grad.emplace();
    const bool tracing = tracer && tracer->recording();  // the counter marks cost a little per action

    StepResult result;
    for (const Action& a : program) {
      LocalStage& st = stage(a.stage);
      const int mb = a.microbatch;
      const TimeMarks before = tracing ? marks() : TimeMarks{};
      switch (a.type) {
        case ActionType::RecvActivation:
          st.inputs[mb] = at::Tensor();  // evaluation keeps the last step's: let the channel reuse it
          st.inputs[mb] = inbound.at({a.stage - 1, false})->receive(mb, counters).to(st.device).requires_grad_(train);
          break;
        case ActionType::Forward:
          forward(st, mb, batch, batch_rows, result);
          break;
        case ActionType::SendActivation:
          check_finite(st.outputs[mb], st, mb, "activation", result);
          outbound.at({a.stage, false})->send(mb, st.outputs[mb].detach(), counters);
          if (!train || recomputing) st.outputs[mb] = at::Tensor();  // backward does not need it
          break;
        case ActionType::RecvGradient:
          st.output_grads[mb] = inbound.at({a.stage, true})->receive(mb, counters).to(st.device);
          break;
        case ActionType::Backward:
          backward(st, mb, batch, batch_rows);
          break;
        case ActionType::SendGradient: {
          at::Tensor grad = st.inputs[mb].grad();
          if (!grad.defined()) grad = at::zeros_like(st.inputs[mb]);
          check_finite(grad, st, mb, "gradient", result);
          outbound.at({a.stage - 1, true})->send(mb, grad, counters);
          st.inputs[mb] = at::Tensor();
          break;
        }
      }
      if (tracing) trace_action(a, before);
    }
    const auto results_start = Clock::now();
    // What each loss saw goes to the step's result, or back to its pipeline's edge.
    std::vector<at::Tensor> predictions;
    for (auto& st : stages) {
      if (!st.last || st.seen.samples == 0) continue;
      std::vector<at::Tensor> in_order;  // by micro-batch
      for (const at::Tensor& p : st.predictions)
        if (p.defined()) in_order.push_back(p);
      st.seen.predictions = at::cat(in_order);
      if (LossLink* link = loss_link_of(st)) {
        link->send_result(st.seen, counters);
      } else {
        add(result, st.seen, predictions);
      }
    }
    for (const auto& [link, loss_end] : links)
      if (!loss_end) add(result, link->receive_result(batch_rows, counters), predictions);
    for (auto& [key, channel] : outbound) channel->complete(counters);
    for (const auto& [link, loss_end] : links) link->complete(counters);
    if (tracing) tracer->span(links.empty() ? "complete sends" : "results and sends", "wait", results_start, Clock::now());
    if (!predictions.empty()) result.predictions = at::cat(predictions);
    if (train) memory_peaks.step_bytes = std::max(memory_peaks.step_bytes, step_memory::peak_bytes() - memory_before);
    counters.step_seconds += seconds_since(step_start);
    return result;
  }

  // Where the counters stood before an action, so its trace spans can be cut out of them.
  struct TimeMarks {
    Clock::time_point time;
    double encode, decode, wait, link_wait;
  };
  TimeMarks marks() const {
    double link_wait = 0;
    for (const auto& cell : counters.link_wait_seconds_at) link_wait += cell[0] + cell[1];
    return {Clock::now(), counters.encode_seconds, counters.decode_seconds, counters.wait_seconds, link_wait};
  }

  // The action's span, and inside it the encode of a send, or the wait and decode of a receive.
  void trace_action(const Action& a, const TimeMarks& before) {
    const TimeMarks after = marks();
    const double encode = after.encode - before.encode, decode = after.decode - before.decode,
                 wait = after.wait - before.wait, link_wait = after.link_wait - before.link_wait;
    char args[96];
    std::snprintf(args, sizeof(args), "\"wait_us\":%.3f,\"link_wait_us\":%.3f", wait * 1e6, link_wait * 1e6);
    tracer->span(to_string(a), "action", before.time, after.time, a.stage, a.microbatch, args);
    if (encode > 0)
      tracer->span("encode", "codec", before.time, before.time + clock_duration(encode), a.stage, a.microbatch);
    const bool receive = a.type == ActionType::RecvActivation || a.type == ActionType::RecvGradient;
    if (receive && wait > 0)
      tracer->span("wait", "wait", before.time, before.time + clock_duration(wait), a.stage, a.microbatch, args);
    if (decode > 0)
      tracer->span("decode", "codec", after.time - clock_duration(decode), after.time, a.stage, a.microbatch);
  }

  static void add(StepResult& result, const StepResult& part, std::vector<at::Tensor>& predictions) {
    result.loss_sum += part.loss_sum;
    result.correct += part.correct;
    result.samples += part.samples;
    if (part.predictions.defined()) predictions.push_back(part.predictions);
  }
  std::map<const Schedule*, std::vector<Action>> receive_orders;  // schedules live as long as the run
};

LossFunction cross_entropy_sum() {
  return [](const at::Tensor& output, const at::Tensor& labels) {
    return torch::nn::functional::cross_entropy(
        output, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  };
}

PipelineExecutor::PipelineExecutor(Transport& transport, const PartitionPlan& plan, const std::vector<Block>& blocks,
                                   const PipelineOptions& options)
    : impl_(std::make_unique<Impl>(transport, plan, blocks, options)) {}

PipelineExecutor::~PipelineExecutor() = default;

StepResult PipelineExecutor::run(const Schedule& schedule, const std::vector<int64_t>& microbatch_rows,
                                 const EdgeBatch* batch, bool train) {
  return impl_->run(schedule, microbatch_rows, batch, train);
}

bool PipelineExecutor::takes_part(const Schedule& schedule) const {
  return !schedule.programs.at(impl_->transport.rank()).empty();
}

void PipelineExecutor::set_training(bool training) {
  for (auto& st : impl_->stages)
    for (auto& [index, block] : st.blocks) block->train(training);
}

// Each block once: a server holds the same blocks in the stages of several clients.
template <typename Visit>
void for_each_own_block(const std::vector<LocalStage>& stages, Visit visit) {
  std::set<int> seen;
  for (const auto& st : stages)
    for (const auto& [index, block] : st.blocks)
      if (seen.insert(index).second) visit(index, block);
}

std::vector<std::pair<std::string, at::Tensor>> PipelineExecutor::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for_each_own_block(impl_->stages, [&](int index, const torch::nn::Sequential& block) {
    for (const auto& item : block->named_parameters()) named.emplace_back(std::to_string(index) + "." + item.key(), item.value());
  });
  return named;
}

std::vector<at::Tensor> PipelineExecutor::parameters() const {
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : named_parameters()) params.push_back(p);
  return params;
}

std::vector<std::pair<std::string, at::Tensor>> PipelineExecutor::named_buffers() const {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for_each_own_block(impl_->stages, [&](int index, const torch::nn::Sequential& block) {
    for (const auto& item : block->named_buffers()) named.emplace_back(std::to_string(index) + "." + item.key(), item.value());
  });
  return named;
}

RankCounters& PipelineExecutor::counters() { return impl_->counters; }

void PipelineExecutor::set_tracer(Tracer* tracer) { impl_->tracer = tracer; }

const MemoryPeaks& PipelineExecutor::memory_peaks() const { return impl_->memory_peaks; }
void PipelineExecutor::reset_memory_peaks() { impl_->memory_peaks = MemoryPeaks{}; }

at::Device PipelineExecutor::device() const {
  return impl_->stages.empty() ? at::Device(at::kCPU) : impl_->stages.front().device;
}

}  // namespace splitpipe
