#include "plan_costs.hpp"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "splitpipe/codec.hpp"
#include "splitpipe/link.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/trainer.hpp"
#include "../pipeline/memory_format.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRepeats = 3;
constexpr int kMaxRepeats = 200;
constexpr double kMinTimedSeconds = 0.05;

double median(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

// The median of kRepeats timed runs of `work`, after one untimed warm-up.
template <typename Work>
double median_seconds(Work&& work) {
  work();
  std::vector<double> seconds;
  for (int r = 0; r < kRepeats; ++r) {
    const auto start = Clock::now();
    work();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return median(seconds);
}

// Rank 0's first training batch on every rank: shape, then the float32 bytes.
at::Tensor shared_batch(const ControlPlane& world, const std::optional<DatasetSplits>& data, int64_t batch_size) {
  std::vector<int64_t> shape;
  std::string bytes;
  if (world.rank() == 0) {
    const at::Tensor batch = data->train.inputs.narrow(0, 0, std::min<int64_t>(batch_size, data->train.inputs.size(0)))
                                 .to(at::kFloat)
                                 .contiguous();
    shape = batch.sizes().vec();
    bytes.assign(static_cast<const char*>(batch.data_ptr()), batch.nbytes());
  }
  world.broadcast(shape);
  world.broadcast(bytes);
  at::Tensor batch = at::empty(shape, at::kFloat);
  std::memcpy(batch.data_ptr(), bytes.data(), bytes.size());
  return batch;
}

// Forward and backward seconds of each block on `rows` samples: [2 b] forward, [2 b + 1]
// backward. As the run trains them: whole passes, all forwards then all backwards, so each
// block finds the caches as the other blocks left them (a block timed alone, over and over on
// the same input, runs hot: LeNet-5's blocks a third faster than in training); in training
// mode (BatchNorm's batch statistics; the blocks are the planner's own copies) and in the
// stage's memory format (channels-last convolutions run at another speed).
std::vector<double> time_blocks(std::vector<Block>& blocks, const at::Tensor& batch, int64_t rows,
                                const std::string& memory_format) {
  const size_t n = blocks.size();
  std::vector<bool> channels_last(n);
  for (size_t b = 0; b < n; ++b) {
    blocks[b].module->train();
    const std::vector<at::Tensor> parameters = blocks[b].module->parameters();
    channels_last[b] = wants_channels_last(memory_format, /*on_cpu=*/true, parameters);
    if (channels_last[b]) store_channels_last(parameters);
  }
  std::vector<std::vector<double>> forward(n), backward(n);
  // Pass 0 warms up. Models of a millisecond or less are noisy: repeat the passes until they
  // have run kMinTimedSeconds, so the median of a small model is as steady as a large one's.
  double timed = 0;
  for (int r = 0; r <= kRepeats || (timed < kMinTimedSeconds && r <= kMaxRepeats); ++r) {
    std::vector<at::Tensor> inputs(n), outputs(n);
    at::Tensor x = batch.narrow(0, 0, rows);
    for (size_t b = 0; b < n; ++b) {
      inputs[b] = x.detach().requires_grad_(b > 0);
      const auto start = Clock::now();
      outputs[b] = blocks[b].module->forward(channels_last[b] ? channels_last_boundary(inputs[b]) : inputs[b]);
      if (r > 0) forward[b].push_back(std::chrono::duration<double>(Clock::now() - start).count());
      x = outputs[b];
    }
    at::Tensor gradient = at::ones_like(outputs[n - 1]);
    for (size_t b = n; b-- > 0;) {
      const auto start = Clock::now();
      outputs[b].backward(gradient);
      if (r > 0) backward[b].push_back(std::chrono::duration<double>(Clock::now() - start).count());
      if (b > 0) gradient = inputs[b].grad();
    }
    for (size_t b = 0; b < n && r > 0; ++b) timed += forward[b].back() + backward[b].back();
    for (auto& block : blocks) block.module->zero_grad();
  }
  std::vector<double> seconds;
  for (size_t b = 0; b < n; ++b) {
    seconds.push_back(median(forward[b]));
    seconds.push_back(median(backward[b]));
  }
  return seconds;
}

// Activations after each block and the gradients of the loss with respect to them, on the
// whole batch with its real labels (rank 0).
std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> boundary_tensors(std::vector<Block>& blocks,
                                                                             const at::Tensor& batch,
                                                                             const at::Tensor& labels) {
  std::vector<at::Tensor> activations, gradients;
  at::Tensor x = batch;
  for (auto& block : blocks) {
    block.module->eval();
    x = block.module->forward(x);
    x.retain_grad();
    activations.push_back(x);
  }
  torch::nn::functional::cross_entropy(x, labels).backward();
  for (auto& a : activations) gradients.push_back(a.grad().defined() ? a.grad().detach() : at::zeros_like(a));
  for (auto& a : activations) a = a.detach();
  for (auto& block : blocks) {
    block.module->zero_grad();
    block.module->train();
  }
  return {activations, gradients};
}

CodecCost measure_codec(const std::string& spec, const std::vector<at::Tensor>& activations,
                        const std::vector<at::Tensor>& gradients) {
  CodecCost cost;
  cost.spec = spec;
  double raw = 0, wire = 0, encode_seconds = 0, decode_seconds = 0;
  for (size_t b = 0; b + 1 < activations.size(); ++b) {
    for (int gradient = 0; gradient < 2; ++gradient) {
      const at::Tensor& x = gradient ? gradients[b] : activations[b];
      auto codec = make_codec(spec);
      std::vector<uint8_t> message;
      size_t bytes = 0;
      at::Tensor decoded;
      encode_seconds += median_seconds([&] { bytes = codec->encode(x, message, 0); });
      decode_seconds += median_seconds([&] { codec->decode_into(message.data(), bytes, decoded); });
      const double norm = x.norm().item<double>();
      const double error = norm > 0 ? (x - decoded.view(x.sizes())).norm().item<double>() / norm : 0.0;
      (gradient ? cost.gradient_error : cost.activation_error).push_back(error);
      raw += static_cast<double>(x.numel() * sizeof(float));
      wire += static_cast<double>(bytes);
    }
  }
  if (raw > 0) {
    cost.encode_seconds_per_byte = encode_seconds / raw;
    cost.decode_seconds_per_byte = decode_seconds / raw;
    cost.wire_ratio = wire / raw;
  }
  return cost;
}

// Bytes per second and latency between ranks 0 and 1 through the control plane (MPI), from a
// small and a large ping-pong; unlimited in one process.
LinkCost measure_link(const ControlPlane& world) {
  if (world.size() < 2) return {};
  const auto round_trip = [&](size_t size) {
    const std::string payload(size, 'x');
    return median_seconds([&] {
      if (world.rank() == 0) {
        world.send_bytes(1, payload, "link ping");
        world.receive_bytes(1, "link pong");
      } else if (world.rank() == 1) {
        world.send_bytes(0, world.receive_bytes(0, "link ping"), "link pong");
      }
    });
  };
  const double small = round_trip(8) / 2, large = round_trip(size_t{4} << 20) / 2;
  LinkCost link;
  link.latency_seconds = small;
  link.bytes_per_second = large > small ? static_cast<double>(size_t{4} << 20) / (large - small) : 0.0;
  return link;
}

}  // namespace

CostTable measure_costs(const RunConfig& config, const ControlPlane& world, const std::optional<DatasetSplits>& data,
                        const std::vector<int>& chunk_counts, const std::vector<std::string>& codec_specs) {
  std::vector<int64_t> sample_shape, classes{0};
  if (world.rank() == 0) {
    sample_shape = data->train.sample_shape();
    classes[0] = data->train.num_classes;
  }
  world.broadcast(sample_shape);
  world.broadcast(classes);
  torch::manual_seed(config.seed);
  std::vector<Block> blocks = build_model(model_spec(config, sample_shape, classes[0]));
  const at::Tensor batch = shared_batch(world, data, config.batch_size);
  const int64_t batch_rows = batch.size(0);

  CostTable costs;
  costs.batch_size = batch_rows;
  costs.servers = std::max(1, world.size() - 1);
  costs.edge_compute_scale = config.edge_compute_scale;
  for (const auto& block : blocks) {
    BlockCost cost;
    cost.name = block.name;
    int64_t per_sample = 1;
    for (int64_t d : block.output_shape) per_sample *= d;
    cost.output_bytes = static_cast<double>(per_sample * sizeof(float));
    costs.blocks.push_back(cost);
  }
  for (int chunks : chunk_counts) {
    const int64_t rows = (batch_rows + chunks - 1) / chunks;
    const std::vector<double> mine = time_blocks(blocks, batch, rows, stage_memory_format(config));
    const auto all = world.gather(mine);  // rank 0: every rank's; the edge is rank 0, a server rank 1
    const std::vector<double>& server = all.size() > 1 ? all[1] : mine;
    for (size_t b = 0; b < blocks.size(); ++b) {
      costs.blocks[b].edge_at_rows[rows] = {mine[2 * b], mine[2 * b + 1]};
      costs.blocks[b].server_at_rows[rows] = {server[2 * b], server[2 * b + 1]};
    }
  }
  if (world.rank() == 0) {
    const at::Tensor labels = data->train.labels.narrow(0, 0, batch_rows);
    const auto [activations, gradients] = boundary_tensors(blocks, batch, labels);
    for (const auto& spec : codec_specs) costs.codecs.push_back(measure_codec(spec, activations, gradients));
  }
  costs.server_link = measure_link(world);
  costs.link = costs.server_link;
  if (!config.link.empty()) {
    const LinkSpec link = parse_link_list(config.link, config.edge_ranks).front();
    costs.link = LinkCost{link.bits_per_second / 8, link.latency_seconds};
  }
  return costs;
}

}  // namespace splitpipe
