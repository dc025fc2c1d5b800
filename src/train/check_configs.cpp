#include "splitpipe/check_configs.hpp"

#include <map>
#include <memory>

#include "splitpipe/client_strategy.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/fault.hpp"
#include "splitpipe/link.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/partition.hpp"
#include "splitpipe/schedule.hpp"
#include "splitpipe/trainer.hpp"

namespace splitpipe {
namespace {

// The resolved [data] options: points that share them share one loaded dataset.
std::string data_key(const RunConfig& config) {
  std::string key;
  for (const auto& option : config.resolved)
    if (option.section == "data") key += option.name + "=" + option.value + "\n";
  return key;
}

void check_one(const std::string& file, int ranks, std::map<std::string, std::shared_ptr<DatasetSplits>>& loaded) {
  const std::vector<std::string> args{"splitpipe", "--config", file};
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  const RunConfig config = parse_command_line(static_cast<int>(argv.size()), argv.data()).config;
  const int E = config.edge_ranks;
  if (config.expect_ranks > 0 && config.expect_ranks != ranks)
    throw UsageError("this point expects " + std::to_string(config.expect_ranks) + " ranks (--expect-ranks) but the "
                     "sweep starts " + std::to_string(ranks));
  if (E > 1 && ranks < E + 1)
    throw UsageError("--edge-ranks " + std::to_string(E) + " needs at least " + std::to_string(E + 1) +
                     " ranks, the sweep starts " + std::to_string(ranks));
  if (!config.fault_inject.empty() && parse_fault_spec(config.fault_inject).rank >= ranks)
    throw UsageError("--fault-inject: rank " + std::to_string(parse_fault_spec(config.fault_inject).rank) +
                     " does not exist in a run of " + std::to_string(ranks) + " rank(s)");
  if (!config.link.empty()) parse_link_list(config.link, E);

  auto& data = loaded[data_key(config)];
  if (!data) data = std::make_shared<DatasetSplits>(load_dataset(config.data));
  const Dataset& train = data->train;

  std::vector<int64_t> shard_sizes{train.size()};
  if (E > 1) {
    shard_sizes.clear();
    for (const auto& shard : make_shards(train.labels, train.num_classes, E, parse_shard_spec(config.shard),
                                         config.seed, config.batch_size))
      shard_sizes.push_back(shard.size(0));
  }
  ClientStrategy(E > 1 ? config.client_mode : "single", shard_sizes, config.batch_size, config.sync_every);

  const auto blocks = build_model(model_spec(config, train.sample_shape(), train.num_classes));
  // --server-split time balances measured seconds; equal ones check the same structure.
  const std::vector<double> seconds(blocks.size(), 1.0);
  const PartitionPlan one =
      make_partition(blocks, ranks - E + 1, config.edge_first, config.edge_last, config.server_split, seconds);
  const PartitionPlan plan = E > 1 ? replicate_for_clients(one, E) : one;
  const int microbatches = static_cast<int>(std::min<int64_t>(config.chunks, config.batch_size));
  const auto stage_rank = plan.stage_rank();
  const int L = plan.pipeline_length();
  // The builders check what they build (every compute once, dependencies in order, no deadlock).
  // --schedule auto: whichever the planner picks.
  const std::vector<std::string> schedules =
      config.schedule == "auto" ? schedule_names() : std::vector<std::string>{config.schedule};
  for (const auto& schedule : schedules)
    for (const bool forward_only : {false, true}) {
      if (E > 1 && config.client_mode == "parallel")
        build_schedule(schedule, stage_rank, microbatches, forward_only, L);
      else
        build_pipeline_schedule(schedule, stage_rank, L, 0, microbatches, forward_only);
    }
}

}  // namespace

int check_configs(const std::vector<std::string>& files, int ranks, std::ostream& out) {
  std::map<std::string, std::shared_ptr<DatasetSplits>> loaded;
  int failed = 0;
  for (const auto& file : files) {
    try {
      check_one(file, ranks, loaded);
      out << "ok " << file << "\n";
    } catch (const std::exception& e) {
      ++failed;
      std::string message = e.what();
      for (char& c : message)
        if (c == '\n') c = ' ';
      out << "error " << file << ": " << message << "\n";
    }
    out.flush();
  }
  return failed;
}

}  // namespace splitpipe
