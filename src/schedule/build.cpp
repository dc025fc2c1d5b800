// Merges the per-stage orders into per-rank programs and inserts the communication.
#include <algorithm>
#include <limits>
#include <optional>
#include <tuple>

#include "splitpipe/schedule.hpp"

namespace splitpipe {
namespace {

constexpr double kForwardCost = 1.0;
constexpr double kBackwardCost = 2.0;
constexpr double kNotDone = -1.0;

// Finish times of every compute in the list-scheduling simulation.
struct FinishTimes {
  FinishTimes(int stages, int microbatches)
      : forward(stages, std::vector<double>(microbatches, kNotDone)),
        backward(stages, std::vector<double>(microbatches, kNotDone)) {}
  std::vector<std::vector<double>> forward, backward;

  // Earliest time `a` may start given its data dependencies, or nullopt if one is not scheduled yet.
  std::optional<double> ready_time(const Action& a, const Schedule& shape) const {
    double ready = 0;
    auto need = [&](double t) {
      if (t == kNotDone) return false;
      ready = std::max(ready, t);
      return true;
    };
    if (a.type == ActionType::Forward) {
      if (shape.has_previous(a.stage) && !need(forward[a.stage - 1][a.microbatch])) return std::nullopt;
    } else {
      if (!need(forward[a.stage][a.microbatch])) return std::nullopt;
      if (shape.has_next(a.stage) && !need(backward[a.stage + 1][a.microbatch])) return std::nullopt;
    }
    return ready;
  }
  void record(const Action& a, double t) {
    (a.type == ActionType::Forward ? forward : backward)[a.stage][a.microbatch] = t;
  }
};

// Orders the computes of each rank: repeatedly start, over all stages, the head action that
// can start earliest (ties: backward first, then the later stage, which drains the pipeline).
// `shape` holds the stage layout (stage_rank, pipelines) of the schedule being built.
std::vector<std::vector<Action>> interleave(const std::vector<StageOrder>& orders, const Schedule& shape,
                                            int num_ranks, int microbatches) {
  const std::vector<int>& stage_rank = shape.stage_rank;
  const int stages = shape.num_stages();
  FinishTimes done(stages, microbatches);
  std::vector<double> rank_free(num_ranks, 0.0);
  std::vector<size_t> head(stages, 0);
  std::vector<std::vector<Action>> programs(num_ranks);
  size_t remaining = 0;
  for (const auto& o : orders) remaining += o.computes.size();

  while (remaining > 0) {
    // Priority: earliest start, then backward before forward, then the later stage.
    int best = -1;
    std::tuple<double, int, int> best_key{std::numeric_limits<double>::infinity(), 0, 0};
    for (int s = 0; s < stages; ++s) {
      if (head[s] >= orders[s].computes.size()) continue;
      const Action& a = orders[s].computes[head[s]];
      const auto ready = done.ready_time(a, shape);
      if (!ready) continue;
      const std::tuple<double, int, int> key{std::max(*ready, rank_free[stage_rank[s]]),
                                             a.type == ActionType::Backward ? 0 : 1, -s};
      if (best < 0 || key < best_key) {
        best = s;
        best_key = key;
      }
    }
    const double best_start = std::get<0>(best_key);
    if (best < 0) throw ScheduleError("the per-stage orders depend on each other in a cycle");
    const Action a = orders[best].computes[head[best]++];
    const double finish = best_start + (a.type == ActionType::Forward ? kForwardCost : kBackwardCost);
    done.record(a, finish);
    rank_free[stage_rank[best]] = finish;
    programs[stage_rank[best]].push_back(a);
    --remaining;
  }
  return programs;
}

}  // namespace

Schedule build_schedule(const std::string& kind, const std::vector<int>& stage_rank, int microbatches,
                        bool forward_only, int stages_per_pipeline) {
  if (stage_rank.empty()) throw ScheduleError("no stages");
  if (microbatches < 1) throw ScheduleError("needs at least one micro-batch");
  const int num_ranks = *std::max_element(stage_rank.begin(), stage_rank.end()) + 1;
  const int stages = static_cast<int>(stage_rank.size());
  Schedule schedule{forward_only ? "forward" : kind, microbatches, forward_only, stage_rank, {}, stages_per_pipeline};
  const int length = schedule.pipeline_length();
  if (stages % length != 0)
    throw ScheduleError(std::to_string(stages) + " stages do not form pipelines of " + std::to_string(length));

  // Each pipeline gets the classic order of its own length; stage numbers are then shifted.
  std::vector<StageOrder> orders;
  for (int first = 0; first < stages; first += length)
    for (StageOrder order : stage_order_for(kind)(length, microbatches, forward_only)) {
      order.stage += first;
      for (Action& a : order.computes) a.stage += first;
      orders.push_back(std::move(order));
    }
  const auto computes = interleave(orders, schedule, num_ranks, microbatches);

  schedule.programs.resize(num_ranks);
  auto remote = [&](int stage, int other) {
    const bool linked = other == stage - 1 ? schedule.has_previous(stage) : schedule.has_next(stage);
    return linked && stage_rank[other] != stage_rank[stage];
  };
  for (int r = 0; r < num_ranks; ++r) {
    auto& program = schedule.programs[r];
    for (const Action& a : computes[r]) {
      const int s = a.stage, mb = a.microbatch;
      if (a.type == ActionType::Forward) {
        if (remote(s, s - 1)) program.push_back({ActionType::RecvActivation, s, mb, stage_rank[s - 1]});
        program.push_back(a);
        if (remote(s, s + 1)) program.push_back({ActionType::SendActivation, s, mb, stage_rank[s + 1]});
      } else {
        if (remote(s, s + 1)) program.push_back({ActionType::RecvGradient, s, mb, stage_rank[s + 1]});
        program.push_back(a);
        if (remote(s, s - 1)) program.push_back({ActionType::SendGradient, s, mb, stage_rank[s - 1]});
      }
    }
  }
  check_schedule(schedule);
  return schedule;
}

Schedule build_pipeline_schedule(const std::string& kind, const std::vector<int>& stage_rank, int stages_per_pipeline,
                                 int pipeline, int microbatches, bool forward_only) {
  const int length = stages_per_pipeline > 0 ? stages_per_pipeline : static_cast<int>(stage_rank.size());
  const int first = pipeline * length;
  if (pipeline < 0 || first + length > static_cast<int>(stage_rank.size()))
    throw ScheduleError("no pipeline " + std::to_string(pipeline) + " in " + std::to_string(stage_rank.size()) +
                        " stages of " + std::to_string(length));
  // Built (and checked) as a pipeline of its own, then renumbered into the full layout.
  const std::vector<int> own(stage_rank.begin() + first, stage_rank.begin() + first + length);
  Schedule schedule = build_schedule(kind, own, microbatches, forward_only);
  for (auto& program : schedule.programs)
    for (Action& a : program) a.stage += first;
  schedule.programs.resize(*std::max_element(stage_rank.begin(), stage_rank.end()) + 1);
  schedule.stage_rank = stage_rank;
  schedule.stages_per_pipeline = length;
  return schedule;
}

}  // namespace splitpipe
