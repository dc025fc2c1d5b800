#include "splitpipe/step_runner.hpp"

#include <map>
#include <set>
#include <tuple>

#include "splitpipe/client_strategy.hpp"
#include "splitpipe/emulated_link.hpp"
#include "splitpipe/link.hpp"
#include "splitpipe/transports.hpp"

namespace splitpipe {
namespace {

// Every ordered pair of ranks that exchanges boundary (or label) messages.
TransportLinks links_of(const PartitionPlan& plan) {
  const auto stage_rank = plan.stage_rank();
  const int L = plan.pipeline_length();
  std::set<std::pair<int, int>> links;
  for (size_t s = 0; s + 1 < stage_rank.size(); ++s)
    if ((static_cast<int>(s) + 1) % L != 0 && stage_rank[s] != stage_rank[s + 1]) {
      links.emplace(stage_rank[s], stage_rank[s + 1]);
      links.emplace(stage_rank[s + 1], stage_rank[s]);
    }
  // --edge-last 0: labels go from each pipeline's first rank to its loss rank, results back.
  for (size_t first = 0; first + L <= stage_rank.size(); first += static_cast<size_t>(L))
    if (stage_rank[first] != stage_rank[first + L - 1]) {
      links.emplace(stage_rank[first], stage_rank[first + L - 1]);
      links.emplace(stage_rank[first + L - 1], stage_rank[first]);
    }
  return {links.begin(), links.end()};
}

}  // namespace

struct StepRunner::Impl {
  std::string kind;  // --schedule
  int chunks;
  int ranks;
  PartitionPlan plan;
  // Declaration order is destruction order in reverse: the executor goes before its transports.
  std::unique_ptr<Transport> transport;
  std::unique_ptr<EmulatedLinkTransport> link;
  std::unique_ptr<PipelineExecutor> executor;
  std::map<std::tuple<int, int, bool>, Schedule> schedules;

  Impl(const RunConfig& config, const ControlPlane& control, const PartitionPlan& p, const std::vector<Block>& blocks,
       const PipelineOptions& options)
      : kind(config.schedule), chunks(config.chunks), ranks(control.size()), plan(p) {
    transport = make_transport(config.transport, control, links_of(plan));
    if (!config.link.empty())
      link = std::make_unique<EmulatedLinkTransport>(*transport, control,
                                                     parse_link_list(config.link, config.edge_ranks));
    executor = std::make_unique<PipelineExecutor>(link ? static_cast<Transport&>(*link) : *transport, plan, blocks,
                                                  options);
  }

  const Schedule& schedule(int client, int microbatches, bool forward_only) {
    const auto key = std::make_tuple(client, microbatches, forward_only);
    auto it = schedules.find(key);
    if (it != schedules.end()) return it->second;
    const auto stage_rank = plan.stage_rank();
    const int L = plan.pipeline_length();
    Schedule built = client < 0 ? build_schedule(kind, stage_rank, microbatches, forward_only, L)
                                : build_pipeline_schedule(kind, stage_rank, L, client, microbatches, forward_only);
    built.programs.resize(static_cast<size_t>(ranks));
    return schedules.emplace(key, std::move(built)).first->second;
  }
};

StepRunner::StepRunner(const RunConfig& config, const ControlPlane& control, const PartitionPlan& plan,
                       const std::vector<Block>& blocks, const PipelineOptions& options)
    : impl_(std::make_unique<Impl>(config, control, plan, blocks, options)) {}
StepRunner::~StepRunner() = default;

int StepRunner::microbatches(int64_t rows) const {
  return static_cast<int>(std::min<int64_t>(impl_->chunks, std::max<int64_t>(rows, 1)));
}

const Schedule& StepRunner::schedule(int client, int microbatches, bool forward_only) {
  return impl_->schedule(client, microbatches, forward_only);
}

StepResult StepRunner::run(int client, int64_t rows, const EdgeBatch* batch, bool train) {
  const int m = microbatches(rows);
  return impl_->executor->run(schedule(client, m, !train), microbatch_rows(rows, m), batch, train);
}

bool StepRunner::takes_part(int client, int64_t rows, bool train) {
  return impl_->executor->takes_part(schedule(client, microbatches(rows), !train));
}

PipelineExecutor& StepRunner::executor() { return *impl_->executor; }

}  // namespace splitpipe
