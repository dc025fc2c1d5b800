// Proves a schedule is executable: every compute exactly once, dependencies in order on each
// rank, every send matched by one receive, and no deadlock when receives block.
#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>

#include "splitpipe/schedule.hpp"

namespace splitpipe {
namespace {

using Key = std::tuple<ActionType, int, int>;  // type, stage, micro-batch

// The message a send or receive refers to: (is_gradient, sending stage, micro-batch).
std::tuple<bool, int, int> message_of(const Action& a) {
  switch (a.type) {
    case ActionType::SendActivation: return {false, a.stage, a.microbatch};
    case ActionType::RecvActivation: return {false, a.stage - 1, a.microbatch};
    case ActionType::SendGradient: return {true, a.stage, a.microbatch};
    case ActionType::RecvGradient: return {true, a.stage + 1, a.microbatch};
    default: throw std::logic_error("message_of: not a communication action");
  }
}

bool is_send(ActionType t) { return t == ActionType::SendActivation || t == ActionType::SendGradient; }
bool is_recv(ActionType t) { return t == ActionType::RecvActivation || t == ActionType::RecvGradient; }

void check_structure(const Schedule& sc) {
  const int S = sc.num_stages(), M = sc.num_microbatches;
  for (int s = 0; s < S; ++s)
    if (sc.stage_rank[s] < 0 || sc.stage_rank[s] >= sc.num_ranks())
      throw ScheduleError("stage " + std::to_string(s) + " is mapped to rank " + std::to_string(sc.stage_rank[s]) +
                          " which has no program");
  if (S % sc.pipeline_length() != 0)
    throw ScheduleError(std::to_string(S) + " stages do not form pipelines of " + std::to_string(sc.pipeline_length()));
  // Data flows only between neighbouring stages of one pipeline.
  auto linked = [&](int s, int other) {
    return other == s - 1 ? sc.has_previous(s) : other == s + 1 && sc.has_next(s);
  };
  auto remote = [&](int s, int other) { return linked(s, other) && sc.stage_rank[other] != sc.stage_rank[s]; };
  for (int r = 0; r < sc.num_ranks(); ++r) {
    std::set<Key> seen;
    const std::string where = "rank " + std::to_string(r) + ": ";
    for (const Action& a : sc.programs[r]) {
      const std::string what = where + to_string(a);
      if (a.stage < 0 || a.stage >= S || a.microbatch < 0 || a.microbatch >= M)
        throw ScheduleError(what + " names a stage or micro-batch that does not exist");
      if (sc.stage_rank[a.stage] != r) throw ScheduleError(what + " belongs to rank " + std::to_string(sc.stage_rank[a.stage]));
      if (!seen.insert({a.type, a.stage, a.microbatch}).second) throw ScheduleError(what + " appears twice");
      auto before = [&](ActionType t, int stage) { return seen.count({t, stage, a.microbatch}) > 0; };
      const int s = a.stage;
      switch (a.type) {
        case ActionType::Forward:
          if (sc.has_previous(s) && !before(remote(s, s - 1) ? ActionType::RecvActivation : ActionType::Forward,
                               remote(s, s - 1) ? s : s - 1))
            throw ScheduleError(what + " runs before its input is available");
          break;
        case ActionType::Backward:
          if (sc.forward_only) throw ScheduleError(what + " in a forward-only schedule");
          if (!before(ActionType::Forward, s)) throw ScheduleError(what + " runs before its forward");
          if (sc.has_next(s) && !before(remote(s, s + 1) ? ActionType::RecvGradient : ActionType::Backward,
                                   remote(s, s + 1) ? s : s + 1))
            throw ScheduleError(what + " runs before its output gradient is available");
          break;
        case ActionType::SendActivation:
        case ActionType::RecvActivation:
        case ActionType::SendGradient:
        case ActionType::RecvGradient: {
          const bool gradient = a.type == ActionType::SendGradient || a.type == ActionType::RecvGradient;
          const int other = s + ((a.type == ActionType::SendActivation || a.type == ActionType::RecvGradient) ? 1 : -1);
          if (!remote(s, other) || a.peer != sc.stage_rank[other])
            throw ScheduleError(what + " does not cross to the rank of stage " + std::to_string(other));
          if (gradient && sc.forward_only) throw ScheduleError(what + " in a forward-only schedule");
          if (a.type == ActionType::SendActivation && !before(ActionType::Forward, s))
            throw ScheduleError(what + " sends before the forward that produces it");
          if (a.type == ActionType::SendGradient && !before(ActionType::Backward, s))
            throw ScheduleError(what + " sends before the backward that produces it");
          break;
        }
      }
    }
    (void)where;
  }
  // Every compute exactly once; every crossing message sent once and received once.
  std::set<std::tuple<bool, int, int>> sent, received;
  std::set<Key> computed;
  for (const auto& program : sc.programs)
    for (const Action& a : program) {
      if (is_send(a.type)) sent.insert(message_of(a));
      else if (is_recv(a.type)) received.insert(message_of(a));
      else computed.insert({a.type, a.stage, a.microbatch});
    }
  for (int s = 0; s < S; ++s)
    for (int mb = 0; mb < M; ++mb) {
      for (ActionType t : {ActionType::Forward, ActionType::Backward}) {
        if (t == ActionType::Backward && sc.forward_only) continue;
        if (!computed.count({t, s, mb}))
          throw ScheduleError("rank " + std::to_string(sc.stage_rank[s]) + " never runs " +
                              to_string(Action{t, s, mb}));
      }
      const std::tuple<bool, int, int> fwd{false, s, mb}, bwd{true, s, mb};
      if (remote(s, s + 1) && (!sent.count(fwd) || !received.count(fwd)))
        throw ScheduleError("activation of stage " + std::to_string(s) + " micro-batch " + std::to_string(mb) +
                            (sent.count(fwd) ? " is sent but never received" : " is never sent"));
      if (!sc.forward_only && remote(s, s - 1) && (!sent.count(bwd) || !received.count(bwd)))
        throw ScheduleError("gradient of stage " + std::to_string(s) + " micro-batch " + std::to_string(mb) +
                            (sent.count(bwd) ? " is sent but never received" : " is never sent"));
    }
}

}  // namespace

void check_schedule(const Schedule& schedule) {
  check_structure(schedule);
  simulate(schedule, 0.0, 0.0);  // throws on deadlock
}

SimulationResult simulate(const Schedule& sc, double forward_cost, double backward_cost) {
  ActionCosts costs;
  costs.forward.assign(sc.num_stages(), forward_cost);
  costs.backward.assign(sc.num_stages(), backward_cost);
  return simulate(sc, costs);
}

SimulationResult simulate(const Schedule& sc, const ActionCosts& costs) {
  const int R = sc.num_ranks();
  if (static_cast<int>(costs.forward.size()) < sc.num_stages() || static_cast<int>(costs.backward.size()) < sc.num_stages())
    throw std::invalid_argument("simulate: compute costs for " + std::to_string(costs.forward.size()) + " stages, the schedule has " +
                                std::to_string(sc.num_stages()));
  const auto cost_at = [](const std::vector<std::array<double, 2>>& table, int boundary, bool gradient) {
    return boundary >= 0 && boundary < static_cast<int>(table.size()) ? table[boundary][gradient ? 1 : 0] : 0.0;
  };
  std::vector<size_t> pc(R, 0);
  std::vector<double> clock(R, 0.0);
  SimulationResult result;
  result.busy.assign(R, 0.0);
  std::map<std::tuple<bool, int, int>, double> arrives_at;
  // One queue per sending and receiving rank, as on a real (or --link emulated) network: a
  // rank's outgoing messages to one peer share its link, whichever boundary they cross (the
  // edge's activations at the first cut and its gradients at the last go up the same uplink).
  std::map<std::pair<int, int>, double> link_free_at;  // (sender rank, receiver rank)
  bool progress = true;
  while (progress) {
    progress = false;
    for (int r = 0; r < R; ++r) {
      const auto& program = sc.programs[r];
      while (pc[r] < program.size()) {
        const Action& a = program[pc[r]];
        double work = 0;
        if (is_recv(a.type) || is_send(a.type)) {
          const auto message = message_of(a);
          const bool gradient = std::get<0>(message);
          const int boundary = gradient ? std::get<1>(message) - 1 : std::get<1>(message);
          if (is_recv(a.type)) {
            const auto it = arrives_at.find(message);
            if (it == arrives_at.end()) break;  // blocked until the peer sends
            clock[r] = std::max(clock[r], it->second);
            work = cost_at(costs.decode, boundary, gradient);
          } else {
            work = cost_at(costs.encode, boundary, gradient);
            const int stage = std::get<1>(message);
            const int receiver = sc.stage_rank.at(gradient ? stage - 1 : stage + 1);
            double& link_free = link_free_at[{r, receiver}];
            link_free = std::max(clock[r] + work, link_free) + cost_at(costs.wire, boundary, gradient);
            arrives_at[message] = link_free;
          }
        } else {
          work = (a.type == ActionType::Forward ? costs.forward : costs.backward).at(a.stage);
        }
        clock[r] += work;
        result.busy[r] += work;
        ++pc[r];
        progress = true;
      }
    }
  }
  std::string blocked;
  for (int r = 0; r < R; ++r)
    if (pc[r] < sc.programs[r].size())
      blocked += (blocked.empty() ? "" : "; ") + ("rank " + std::to_string(r) + " waits at " + to_string(sc.programs[r][pc[r]]));
  if (!blocked.empty()) throw ScheduleError("deadlock: " + blocked);

  result.makespan = *std::max_element(clock.begin(), clock.end());
  double busy = 0;
  for (double b : result.busy) busy += b;
  result.bubble_fraction = result.makespan > 0 ? 1.0 - busy / (R * result.makespan) : 0.0;
  const double p = sc.pipeline_length(), m = sc.num_microbatches;
  result.analytic_gpipe_bubble = (p - 1) / (m + p - 1);
  return result;
}

}  // namespace splitpipe
