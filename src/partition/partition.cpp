// Partition planning: the edge's share is fixed by K and M; the middle is cut into contiguous
// ranges that minimise the largest server load (by count, parameters, or measured time).
#include <chrono>
#include <iomanip>
#include <limits>
#include <numeric>

#include "splitpipe/config.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/linear_partition.hpp"
#include "splitpipe/partition.hpp"

namespace splitpipe {

PartitionPlan replicate_for_clients(const PartitionPlan& single, int clients) {
  if (single.stages_per_pipeline > 0) throw std::logic_error("replicate_for_clients: the plan is already replicated");
  PartitionPlan plan = single;
  plan.stages.clear();
  plan.stages_per_pipeline = static_cast<int>(single.stages.size());
  for (int c = 0; c < clients; ++c)
    for (StagePlan stage : single.stages) {
      stage.stage += c * plan.stages_per_pipeline;
      stage.rank = stage.rank == 0 ? c : stage.rank + clients - 1;
      plan.stages.push_back(stage);
    }
  return plan;
}

std::vector<int> PartitionPlan::stage_rank() const {
  std::vector<int> ranks;
  for (const auto& s : stages) ranks.push_back(s.rank);
  return ranks;
}

std::vector<int> PartitionPlan::stages_of_rank(int rank) const {
  std::vector<int> result;
  for (const auto& s : stages)
    if (s.rank == rank) result.push_back(s.stage);
  return result;
}

int PartitionPlan::num_ranks() const {
  int ranks = 0;
  for (const auto& s : stages) ranks = std::max(ranks, s.rank + 1);
  return ranks;
}

std::string PartitionPlan::format(const std::vector<Block>& blocks) const {
  std::ostringstream out;
  out << "partition (" << split << "):\n"
      << "  stage  rank  role        blocks                              parameters  est. fwd+bwd\n";
  for (const auto& s : stages) {
    std::string names = std::to_string(s.first_block) + "-" + std::to_string(s.end_block - 1) + " (" +
                        blocks[s.first_block].name + (s.end_block - s.first_block > 1 ? ".." + blocks[s.end_block - 1].name : "") + ")";
    out << "  " << std::setw(5) << s.stage << "  " << std::setw(4) << s.rank << "  " << std::left << std::setw(10)
        << s.role << "  " << std::setw(34) << names << std::right << "  " << std::setw(10) << s.parameters << "  ";
    if (s.estimated_seconds > 0)
      out << std::fixed << std::setprecision(2) << s.estimated_seconds * 1e3 << " ms" << std::defaultfloat;
    else
      out << "-";
    out << "\n";
  }
  const int L = pipeline_length();
  if (!stages.empty() && stages[0].rank != stages[L - 1].rank)
    out << "  loss on rank " << stages[L - 1].rank << " (--edge-last 0): the edge sends it the labels of every "
        << "micro-batch and gets the loss and predictions back\n";
  return out.str();
}

PartitionPlan make_partition(const std::vector<Block>& blocks, int world_size, int edge_first, int edge_last,
                             const std::string& server_split, const std::vector<double>& block_seconds) {
  const int n = static_cast<int>(blocks.size());
  PartitionPlan plan;
  auto add_stage = [&](int rank, const std::string& role, int first, int end) {
    StagePlan s{static_cast<int>(plan.stages.size()), rank, role, first, end, 0, 0};
    for (int b = first; b < end; ++b) {
      s.parameters += blocks[b].parameters;
      if (!block_seconds.empty()) s.estimated_seconds += block_seconds[b];
    }
    plan.stages.push_back(s);
  };
  // Checked for a single process too: the same config must not be valid alone and refused
  // under mpirun.
  const std::string shape = "the model has " + std::to_string(n) + " blocks (see --dry-run)";
  if (edge_first + edge_last >= n)
    throw UsageError("--edge-first " + std::to_string(edge_first) + " + --edge-last " + std::to_string(edge_last) +
                     " leave no block for the server: " + shape);
  if (world_size == 1) {
    plan.split = "single process";
    add_stage(0, "single", 0, n);
    return plan;
  }
  const int servers = world_size - 1;
  const int middle_first = edge_first, middle_end = n - edge_last, middle = middle_end - middle_first;
  if (servers > middle)
    throw UsageError(std::to_string(servers) + " server ranks (world size " + std::to_string(world_size) +
                     ") but only " + std::to_string(middle) + " middle blocks: use at most " +
                     std::to_string(middle + 1) + " ranks or smaller --edge-first/--edge-last");

  std::vector<int> starts;  // global start block of each server stage
  if (server_split == "even" || server_split == "params" || server_split == "time") {
    std::vector<double> costs;
    for (int b = middle_first; b < middle_end; ++b) {
      if (server_split == "even") costs.push_back(1.0);
      else if (server_split == "params") costs.push_back(static_cast<double>(blocks[b].parameters));
      else {
        if (block_seconds.size() != blocks.size())
          throw std::logic_error("make_partition: split 'time' needs one measured time per block");
        costs.push_back(block_seconds[b]);
      }
    }
    for (int offset : balanced_cuts(costs, servers)) starts.push_back(middle_first + offset);
    plan.split = server_split;
  } else {
    const auto cuts = parse_int_list(server_split, "server-split");
    if (static_cast<int>(cuts.size()) != servers - 1)
      throw UsageError("--server-split " + server_split + ": " + std::to_string(servers) + " server ranks need " +
                       std::to_string(servers - 1) + " cut point(s) between blocks " + std::to_string(middle_first + 1) +
                       " and " + std::to_string(middle_end - 1));
    starts.push_back(middle_first);
    for (int64_t c : cuts) {
      if (c <= starts.back() || c >= middle_end)
        throw UsageError("--server-split " + server_split + ": cut points must increase strictly and lie in (" +
                         std::to_string(middle_first) + ", " + std::to_string(middle_end) + ")");
      starts.push_back(static_cast<int>(c));
    }
    plan.split = "cut points " + server_split;
  }
  add_stage(0, "edge-first", 0, edge_first);
  for (int i = 0; i < servers; ++i)
    add_stage(i + 1, "server", starts[i], i + 1 < servers ? starts[i + 1] : middle_end);
  // --edge-last 0: the last server stage holds the head and the loss (labels travel to it).
  if (edge_last > 0) add_stage(0, "edge-last", middle_end, n);
  return plan;
}

std::vector<double> profile_blocks(const std::vector<Block>& blocks, const std::vector<int64_t>& input_shape,
                                   int64_t batch_size, int repeats) {
  std::vector<int64_t> shape{batch_size};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  // Profiling must not disturb the training RNG stream.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12345);
  torch::Tensor x = at::randn(shape, gen);
  std::vector<double> seconds(blocks.size(), 0.0);
  for (size_t b = 0; b < blocks.size(); ++b) {
    // Eval mode: BatchNorm running statistics and dropout RNG stay untouched, so a profiled
    // run trains exactly like an unprofiled one. The cost is the same to within noise.
    torch::nn::Sequential module = blocks[b].module;
    const bool was_training = module->is_training();
    module->eval();
    auto input = x.detach().requires_grad_(b > 0);
    torch::Tensor out;
    for (int r = 0; r <= repeats; ++r) {  // r == 0 is the warm-up
      const auto start = std::chrono::steady_clock::now();
      out = module->forward(input);
      out.backward(torch::ones_like(out));
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r > 0) seconds[b] += dt / repeats;
    }
    module->zero_grad();
    module->train(was_training);
    x = out.detach();
  }
  return seconds;
}

}  // namespace splitpipe
