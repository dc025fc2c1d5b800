#include "splitpipe/predict_configs.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "plan_costs.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/partition.hpp"
#include "splitpipe/planner.hpp"
#include "splitpipe/trainer.hpp"

namespace splitpipe {
namespace {

// Options that choose the plan, or that leave the cost of one training step as it is: files
// that differ in these alone are predicted from one measurement.
const std::set<std::string> kNotInCosts{"edge-first", "edge-last", "server-split", "schedule", "chunks", "fwd-codec",
                                        "bwd-codec",  "output",    "overwrite",    "epochs",   "trace",  "trace-steps",
                                        "progress-every", "plan-top", "plan-codecs", "max-rel-error", "plan-max-memory",
                                        "checkpoint-dir", "checkpoint-every", "keep-checkpoints", "comm-timeout"};

std::string cost_key(const RunConfig& config) {
  std::string key;
  for (const auto& option : config.resolved)
    if (!kNotInCosts.count(option.name)) key += option.name + "=" + option.value + "\n";
  return key;
}

std::string one_line_text(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// The file as `splitpipe --config FILE` would run it, or why it cannot be predicted.
std::optional<RunConfig> read_fixed_config(const std::string& file, int ranks, std::string& problem) {
  const std::vector<std::string> args{"splitpipe", "--config", file};
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  try {
    RunConfig config = parse_command_line(static_cast<int>(argv.size()), argv.data()).config;
    if (config.planned())
      problem = "it has auto options, which the planner fills when the run starts; predict fixed values (--plan "
                "lists the planner's choices)";
    else if (config.edge_ranks > 1)
      problem = "the planner predicts one edge client with its servers, not --edge-ranks " +
                std::to_string(config.edge_ranks);
    else if (config.expect_ranks > 0 && config.expect_ranks != ranks)
      problem = "it expects " + std::to_string(config.expect_ranks) + " ranks (--expect-ranks); the prediction runs on " +
                std::to_string(ranks);
    else
      return config;
  } catch (const std::exception& e) {
    problem = one_line_text(e.what());
  }
  return std::nullopt;
}

// The server cuts the run would use (first block of servers 2..), from its --server-split;
// `time` balances the servers' measured seconds, as the run's own profile would.
std::vector<int> server_cuts_of(const RunConfig& config, const CostTable& costs, const std::vector<Block>& blocks) {
  if (costs.servers == 1) return {};
  std::vector<double> seconds;
  for (const auto& block : costs.blocks) seconds.push_back(block.server_forward_seconds + block.server_backward_seconds);
  const PartitionPlan partition =
      make_partition(blocks, costs.servers + 1, config.edge_first, config.edge_last, config.server_split, seconds);
  std::vector<int> cuts;
  for (const auto& stage : partition.stages)
    if (stage.role == "server" && stage.first_block != config.edge_first) cuts.push_back(stage.first_block);
  return cuts;
}

std::string prediction_line(const PlanPrediction& p) {
  char text[96];
  std::snprintf(text, sizeof(text), "%.2f %.0f %.4f", p.samples_per_second, p.wire_bytes_per_sample, p.bubble_fraction);
  return text;
}

}  // namespace

int predict_configs(const std::vector<std::string>& files, const ControlPlane& world, std::ostream& out) {
  const bool root = world.rank() == 0;
  std::vector<std::optional<RunConfig>> configs;
  std::vector<std::string> lines(files.size());  // rank 0's answer per file
  std::string verdicts;
  for (size_t i = 0; i < files.size(); ++i) {
    std::string problem;
    configs.push_back(read_fixed_config(files[i], world.size(), problem));
    if (!configs.back()) lines[i] = "error " + files[i] + ": " + problem;
    verdicts += configs.back() ? "+" : "-";
  }
  // Every rank must walk the same measurements, or the collectives below would pair up wrongly.
  const auto all_verdicts = world.gather_strings(verdicts);
  std::optional<std::string> mismatch;
  if (root)
    for (size_t r = 1; r < all_verdicts.size() && !mismatch; ++r)
      if (all_verdicts[r] != verdicts)
        mismatch = "rank " + std::to_string(r) + " reads the config files differently from rank 0 (a file missing on "
                   "its node?); give every rank the same files";
  world.agree_on(mismatch, 2);

  std::vector<std::vector<size_t>> groups;  // file indices sharing one measurement, in first-seen order
  std::map<std::string, size_t> group_of;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!configs[i]) continue;
    const auto [it, added] = group_of.emplace(cost_key(*configs[i]), groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(i);
  }

  for (size_t g = 0; g < groups.size(); ++g) {
    const RunConfig& setup = *configs[groups[g].front()];
    at::set_num_threads(setup.threads);
    if (root)
      std::cerr << "predict: measuring setup " << g + 1 << "/" << groups.size() << " (" << setup.model << ", "
                << groups[g].size() << " file(s))" << std::endl;
    std::optional<DatasetSplits> data;
    std::string problem;
    if (root) {
      try {
        data = load_dataset(setup.data);
      } catch (const std::exception& e) {
        problem = one_line_text(e.what());
      }
    }
    world.broadcast(problem);
    if (!problem.empty()) {
      for (size_t i : groups[g]) lines[i] = "error " + files[i] + ": " + problem;
      continue;
    }
    std::set<int> chunk_set;
    std::vector<std::string> codecs;
    for (size_t i : groups[g]) {
      chunk_set.insert(static_cast<int>(std::min<int64_t>(configs[i]->chunks, setup.batch_size)));
      for (const auto& spec : {configs[i]->fwd_codec, configs[i]->bwd_codec})
        if (std::find(codecs.begin(), codecs.end(), spec) == codecs.end()) codecs.push_back(spec);
    }
    const CostTable costs =
        measure_costs(setup, world, data, std::vector<int>(chunk_set.begin(), chunk_set.end()), codecs);
    if (!root) continue;
    const auto blocks = build_model(model_spec(setup, data->train.sample_shape(), data->train.num_classes));
    for (size_t i : groups[g]) {
      const RunConfig& config = *configs[i];
      try {
        Plan plan;
        plan.edge_first = config.edge_first;
        plan.edge_last = config.edge_last;
        plan.server_cuts = server_cuts_of(config, costs, blocks);
        plan.schedule = config.schedule;
        plan.chunks = static_cast<int>(std::min<int64_t>(config.chunks, config.batch_size));
        plan.fwd_codec = config.fwd_codec;
        plan.bwd_codec = config.bwd_codec;
        lines[i] = "predicted " + files[i] + " " + prediction_line(predict(costs, plan));
      } catch (const std::exception& e) {
        lines[i] = "error " + files[i] + ": " + one_line_text(e.what());
      }
    }
  }
  if (!root) return 0;
  int failed = 0;
  for (const auto& line : lines) {
    out << line << "\n";
    failed += line.rfind("error ", 0) == 0;
  }
  out.flush();
  return failed;
}

}  // namespace splitpipe
