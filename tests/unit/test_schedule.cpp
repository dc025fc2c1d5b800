#include <gtest/gtest.h>

#include <set>

#include "splitpipe/schedule.hpp"

using namespace splitpipe;

namespace {

// The split-learning layout: rank 0 owns the first and the last stage, ranks 1..P the middle.
std::vector<int> edge_layout(int servers) {
  std::vector<int> stage_rank{0};
  for (int r = 1; r <= servers; ++r) stage_rank.push_back(r);
  stage_rank.push_back(0);
  return stage_rank;
}

std::vector<int> linear_layout(int ranks) {
  std::vector<int> stage_rank;
  for (int r = 0; r < ranks; ++r) stage_rank.push_back(r);
  return stage_rank;
}

// E edge clients (ranks 0..E-1) sharing P servers (ranks E..E+P-1): client c's pipeline is
// stages c*(P+2) .. c*(P+2)+P+1 = [c, E, ..., E+P-1, c].
std::vector<int> clients_layout(int clients, int servers) {
  std::vector<int> stage_rank;
  for (int c = 0; c < clients; ++c) {
    stage_rank.push_back(c);
    for (int r = 0; r < servers; ++r) stage_rank.push_back(clients + r);
    stage_rank.push_back(c);
  }
  return stage_rank;
}

size_t count(const Schedule& s, ActionType t) {
  size_t n = 0;
  for (const auto& p : s.programs)
    for (const auto& a : p) n += a.type == t;
  return n;
}

}  // namespace

TEST(Schedule, EveryCombinationUpTo4RanksAnd8MicrobatchesIsValid) {
  for (const std::string kind : {"gpipe", "1f1b"})
    for (bool forward_only : {false, true})
      for (int ranks = 1; ranks <= 4; ++ranks)
        for (int m = 1; m <= 8; ++m)
          for (const auto& layout : {linear_layout(ranks), edge_layout(ranks - 1)}) {
            if (layout.size() < 2 && ranks > 1) continue;
            SCOPED_TRACE(kind + " ranks=" + std::to_string(ranks) + " m=" + std::to_string(m) +
                         " stages=" + std::to_string(layout.size()) + (forward_only ? " fwd" : ""));
            const Schedule s = build_schedule(kind, layout, m, forward_only);
            EXPECT_NO_THROW(check_schedule(s));
            const size_t stages = layout.size();
            EXPECT_EQ(count(s, ActionType::Forward), stages * m);
            EXPECT_EQ(count(s, ActionType::Backward), forward_only ? 0 : stages * m);
            EXPECT_EQ(count(s, ActionType::SendActivation), count(s, ActionType::RecvActivation));
            EXPECT_EQ(count(s, ActionType::SendGradient), count(s, ActionType::RecvGradient));
            const auto sim = simulate(s);
            EXPECT_GT(sim.makespan, 0);
            EXPECT_GE(sim.bubble_fraction, 0.0);
            EXPECT_LT(sim.bubble_fraction, 1.0);
          }
}

TEST(Schedule, EveryMultiClientCombinationIsValidAndInterleavesTheServer) {
  for (const std::string kind : {"gpipe", "1f1b"})
    for (bool forward_only : {false, true})
      for (int clients = 1; clients <= 4; ++clients)
        for (int servers = 1; servers <= 2; ++servers)
          for (int m = 1; m <= 8; ++m) {
            SCOPED_TRACE(kind + " clients=" + std::to_string(clients) + " servers=" + std::to_string(servers) +
                         " m=" + std::to_string(m) + (forward_only ? " fwd" : ""));
            const int length = servers + 2;
            const Schedule s = build_schedule(kind, clients_layout(clients, servers), m, forward_only, length);
            EXPECT_NO_THROW(check_schedule(s));
            EXPECT_EQ(s.num_pipelines(), clients);
            EXPECT_EQ(count(s, ActionType::Forward), static_cast<size_t>(clients * length * m));
            // A client talks only to the first and the last server, and only about its own pipeline.
            for (int c = 0; c < clients; ++c)
              for (const Action& a : s.programs[c]) {
                EXPECT_EQ(a.stage / length, c) << to_string(a);
                if (a.peer >= 0) {
                  EXPECT_TRUE(a.peer == clients || a.peer == clients + servers - 1) << to_string(a);
                }
              }
            // Each server runs its stage for every client.
            for (int r = clients; r < clients + servers; ++r) {
              std::set<int> pipelines;
              for (const Action& a : s.programs[r]) pipelines.insert(a.stage / length);
              EXPECT_EQ(static_cast<int>(pipelines.size()), clients);
            }
            // Clients work at the same time: serving E clients costs less than E single-client steps.
            const double one = simulate(build_schedule(kind, clients_layout(1, servers), m, forward_only, length)).makespan;
            const double all = simulate(s).makespan;
            if (clients > 1) {
              EXPECT_LT(all, clients * one);
            }
            EXPECT_GE(all, one);
          }
}

TEST(Schedule, MultiClientDataNeverCrossesPipelines) {
  // Client 1's first stage (stage 4 with 2 servers) receiving client 0's last activation would
  // join the pipelines: the checker refuses it.
  Schedule s = build_schedule("gpipe", clients_layout(2, 2), 2, false, 4);
  s.programs[1].insert(s.programs[1].begin(), Action{ActionType::RecvActivation, 4, 0, 0});
  EXPECT_THROW(check_schedule(s), ScheduleError);
  // A layout that does not divide into pipelines is refused.
  EXPECT_THROW(build_schedule("gpipe", clients_layout(2, 1), 2, false, 4), ScheduleError);
}

TEST(Schedule, GPipeOnLinearPipelineMatchesAnalyticBubble) {
  // Equal forward and backward costs on p ranks: the fill-drain bubble is exactly (p-1)/(m+p-1).
  for (int p = 2; p <= 4; ++p)
    for (int m = 1; m <= 8; ++m) {
      const auto sim = simulate(build_schedule("gpipe", linear_layout(p), m, false), 1.0, 1.0);
      EXPECT_NEAR(sim.bubble_fraction, double(p - 1) / (m + p - 1), 1e-9) << "p=" << p << " m=" << m;
    }
}

TEST(Schedule, MeasuredCostsTimeMessagesAsStepsOfTheirOwn) {
  // Two ranks, one micro-batch: every action waits for the previous one, so the step is the sum
  // of forward 0, the activation's encode + wire + decode, forward and backward 1, the gradient's
  // encode + wire + decode, backward 0. Encode and decode keep their rank busy, the wire does not.
  const Schedule one = build_schedule("gpipe", linear_layout(2), 1, false);
  ActionCosts costs;
  costs.forward = {1.0, 10.0};
  costs.backward = {2.0, 20.0};
  costs.encode = {{0.1, 0.2}};
  costs.wire = {{3.0, 4.0}};
  costs.decode = {{0.3, 0.4}};
  const auto sim = simulate(one, costs);
  EXPECT_DOUBLE_EQ(sim.makespan, 1.0 + 0.1 + 3.0 + 0.3 + 10.0 + 20.0 + 0.2 + 4.0 + 0.4 + 2.0);
  EXPECT_DOUBLE_EQ(sim.busy[0], 1.0 + 0.1 + 0.4 + 2.0);
  EXPECT_DOUBLE_EQ(sim.busy[1], 0.3 + 10.0 + 20.0 + 0.2);
  // Four micro-batches share the link: the fourth activation leaves rank 0 at 4 x 1.1 but
  // reaches rank 1 only after the three before it crossed (4 x 3.0 of wire from 1.1).
  const Schedule four = build_schedule("gpipe", linear_layout(2), 4, false);
  costs.backward = {0.0, 0.0};
  costs.forward = {1.0, 0.0};
  costs.encode = {{0.1, 0.0}};
  costs.decode = {{0.0, 0.0}};
  costs.wire = {{3.0, 0.0}};
  EXPECT_DOUBLE_EQ(simulate(four, costs).makespan, 1.1 + 4 * 3.0);
  // Without message costs it is the uniform simulation.
  EXPECT_DOUBLE_EQ(simulate(four, ActionCosts{{1, 1}, {2, 2}, {}, {}, {}}).makespan, simulate(four, 1.0, 2.0).makespan);
}

TEST(Schedule, OneRankPairSharesOneLinkWhateverBoundaryItsMessagesCross) {
  // U-shape on 2 ranks (stages on ranks 0, 1, 0), 4 micro-batches, free compute, 1 s on the
  // wire per message. The edge's uplink carries the 4 activations of the first cut and the 4
  // gradients of the last one: 8 s before the server can send its last gradient back (1 s
  // more). Queues per boundary would let the two kinds overlap and finish in less.
  for (const char* kind : {"gpipe", "1f1b"}) {
    const Schedule u = build_schedule(kind, {0, 1, 0}, 4, false);
    ActionCosts costs;
    costs.forward = costs.backward = {0.0, 0.0, 0.0};
    costs.encode = costs.decode = {{0.0, 0.0}, {0.0, 0.0}};
    costs.wire = {{1.0, 1.0}, {1.0, 1.0}};
    EXPECT_GE(simulate(u, costs).makespan, 9.0 - 1e-9) << kind;
  }
}

TEST(Schedule, OneFOneBKeepsFewerActivationsAlive) {
  // Peak number of micro-batches forwarded but not yet backwarded on stage 0.
  auto peak_in_flight = [](const Schedule& s) {
    int alive = 0, peak = 0;
    for (const auto& a : s.programs[0])
      if (a.stage == 0) {
        if (a.type == ActionType::Forward) peak = std::max(peak, ++alive);
        if (a.type == ActionType::Backward) --alive;
      }
    return peak;
  };
  const auto layout = linear_layout(3);
  EXPECT_EQ(peak_in_flight(build_schedule("gpipe", layout, 8, false)), 8);
  EXPECT_EQ(peak_in_flight(build_schedule("1f1b", layout, 8, false)), 3);
}

TEST(Schedule, EdgeRankInterleavesItsTwoStages) {
  const Schedule s = build_schedule("1f1b", edge_layout(1), 4, false);
  // The edge must start the last stage's work before it has finished all first-stage forwards
  // only when the data is there; in any case both stages appear on rank 0.
  bool first = false, last = false;
  for (const auto& a : s.programs[0]) {
    first |= a.stage == 0;
    last |= a.stage == 2;
  }
  EXPECT_TRUE(first && last);
  EXPECT_EQ(s.programs[0].front(), (Action{ActionType::Forward, 0, 0, -1}));
}

TEST(Schedule, BrokenSchedulesAreCaught) {
  const Schedule good = build_schedule("gpipe", edge_layout(1), 2, false);

  {  // Both ranks receive before they send: a deadlock.
    Schedule bad = good;
    auto& p1 = bad.programs[1];
    std::rotate(p1.begin(), p1.begin() + 1, p1.end());  // move the first receive to the end
    EXPECT_THROW(check_schedule(bad), ScheduleError);
  }
  {  // A send removed: its receive can never complete.
    Schedule bad = good;
    auto& p0 = bad.programs[0];
    p0.erase(std::find_if(p0.begin(), p0.end(), [](const Action& a) { return a.type == ActionType::SendActivation; }));
    try {
      check_schedule(bad);
      FAIL() << "missing send not detected";
    } catch (const ScheduleError& e) {
      EXPECT_NE(std::string(e.what()).find("never sent"), std::string::npos) << e.what();
    }
  }
  {  // A backward duplicated.
    Schedule bad = good;
    auto& p0 = bad.programs[0];
    p0.push_back(*std::find_if(p0.begin(), p0.end(), [](const Action& a) { return a.type == ActionType::Backward; }));
    EXPECT_THROW(check_schedule(bad), ScheduleError);
  }
  {  // Two ranks each waiting for the other: an explicit cyclic wait.
    Schedule bad{"handmade", 1, true, {0, 1}, {}};
    bad.programs = {{{ActionType::RecvActivation, 0, 0, 1}}, {{ActionType::RecvActivation, 1, 0, 0}}};
    EXPECT_THROW(check_schedule(bad), ScheduleError);
  }
  {  // Forward before its input arrived on the server.
    Schedule bad = good;
    auto& p1 = bad.programs[1];
    std::swap(p1[0], p1[1]);
    EXPECT_THROW(check_schedule(bad), ScheduleError);
  }
}

TEST(Schedule, DeadlockMessageNamesTheWaitingRanks) {
  Schedule bad{"handmade", 1, false, {0, 1}, {}};
  bad.programs = {{{ActionType::RecvGradient, 0, 0, 1}, {ActionType::Forward, 0, 0}},
                  {{ActionType::RecvActivation, 1, 0, 0}}};
  try {
    simulate(bad);
    FAIL();
  } catch (const ScheduleError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 0 waits at rg0.0<1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1 waits at ra1.0<0"), std::string::npos) << msg;
  }
}

TEST(Schedule, UnknownKindIsAUsageError) { EXPECT_THROW(build_schedule("zigzag", {0, 1}, 2, false), UsageError); }

TEST(Schedule, FormatShowsEveryRank) {
  const std::string text = format_schedule(build_schedule("1f1b", edge_layout(2), 2, false));
  EXPECT_NE(text.find("rank 0 (stages 0 3)"), std::string::npos) << text;
  EXPECT_NE(text.find("rank 2 (stages 2)"), std::string::npos) << text;
  EXPECT_NE(text.find("bubble"), std::string::npos);
}

namespace {

// Every valid schedule small enough to mutate exhaustively: both kinds, edge layouts with 1..3
// servers and linear layouts of 2..4 ranks, 1..4 micro-batches, training and forward-only.
std::vector<Schedule> small_valid_schedules() {
  std::vector<Schedule> schedules;
  for (const std::string kind : {"gpipe", "1f1b"})
    for (bool forward_only : {false, true})
      for (int ranks = 2; ranks <= 4; ++ranks)
        for (const auto& layout : {linear_layout(ranks), edge_layout(ranks - 1)})
          for (int m = 1; m <= 4; ++m) schedules.push_back(build_schedule(kind, layout, m, forward_only));
  for (const std::string kind : {"gpipe", "1f1b"})
    for (bool forward_only : {false, true})
      for (int clients = 2; clients <= 3; ++clients)
        for (int servers = 1; servers <= 2; ++servers)
          for (int m = 1; m <= 3; ++m)
            schedules.push_back(
                build_schedule(kind, clients_layout(clients, servers), m, forward_only, servers + 2));
  return schedules;
}

bool is_receive(const Action& a) { return a.type == ActionType::RecvActivation || a.type == ActionType::RecvGradient; }
bool is_send(const Action& a) { return a.type == ActionType::SendActivation || a.type == ActionType::SendGradient; }

// Applies `mutate` to each action of each program in turn (one mutation per copy) where
// `applies` holds, and expects check_schedule to reject every mutant. Returns how many it made.
template <typename Applies, typename Mutate>
int expect_every_mutant_rejected(Applies applies, Mutate mutate) {
  int mutants = 0;
  for (const Schedule& good : small_valid_schedules())
    for (size_t r = 0; r < good.programs.size(); ++r)
      for (size_t i = 0; i < good.programs[r].size(); ++i) {
        if (!applies(good, good.programs[r][i])) continue;
        Schedule bad = good;
        mutate(bad, bad.programs[r], i);
        ++mutants;
        EXPECT_THROW(check_schedule(bad), ScheduleError)
            << "mutated rank " << r << " action " << i << " (" << to_string(good.programs[r][i]) << ") of\n"
            << format_schedule(good);
      }
  return mutants;
}

}  // namespace

TEST(ScheduleMutants, DroppingAnyReceiveIsCaught) {
  const int mutants = expect_every_mutant_rejected(
      [](const Schedule&, const Action& a) { return is_receive(a); },
      [](Schedule&, std::vector<Action>& program, size_t i) { program.erase(program.begin() + i); });
  EXPECT_GT(mutants, 0);
}

TEST(ScheduleMutants, ReceivingTheWrongMicrobatchIsCaught) {
  const int mutants = expect_every_mutant_rejected(
      [](const Schedule& s, const Action& a) { return is_receive(a) && s.num_microbatches > 1; },
      [](Schedule& s, std::vector<Action>& program, size_t i) {
        program[i].microbatch = (program[i].microbatch + 1) % s.num_microbatches;
      });
  EXPECT_GT(mutants, 0);
}

TEST(ScheduleMutants, SendingToTheWrongRankIsCaught) {
  const int mutants = expect_every_mutant_rejected(
      [](const Schedule& s, const Action& a) { return is_send(a); },
      [](Schedule& s, std::vector<Action>& program, size_t i) {
        program[i].peer = (program[i].peer + 1) % s.num_ranks();
      });
  EXPECT_GT(mutants, 0);
}

TEST(ScheduleMutants, SendingAfterTheReceiveThatNeedsItDeadlocks) {
  // Sends never block, but a send moved behind a receive whose message depends on it (here the
  // edge's first activation send, moved to the end of its program) leaves both sides waiting.
  // Rank 0 of a forward-only linear pipeline receives nothing, so nothing there can deadlock.
  int mutants = 0;
  for (const Schedule& good : small_valid_schedules()) {
    Schedule bad = good;
    auto& edge = bad.programs[0];
    if (std::none_of(edge.begin(), edge.end(), is_receive)) continue;
    ++mutants;
    const auto first_send = std::find_if(edge.begin(), edge.end(), [](const Action& a) { return is_send(a); });
    ASSERT_NE(first_send, edge.end());
    std::rotate(first_send, first_send + 1, edge.end());
    try {
      check_schedule(bad);
      ADD_FAILURE() << "deadlock not detected in\n" << format_schedule(bad);
    } catch (const ScheduleError& e) {
      EXPECT_NE(std::string(e.what()).find("deadlock"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(mutants, 0);
}

TEST(Schedule, OneClientsPipelineKeepsItsStageNumbersAndIdlesTheOthers) {
  // 3 clients, 2 servers: client 1's turn (--client-mode sequential) is its pipeline alone.
  const std::vector<int> layout = clients_layout(3, 2);
  for (const std::string kind : {"gpipe", "1f1b"})
    for (int m : {1, 3}) {
      const Schedule turn = build_pipeline_schedule(kind, layout, 4, 1, m, false);
      const Schedule alone = build_schedule(kind, {1, 3, 4, 1}, m, false);
      EXPECT_EQ(turn.num_ranks(), 5) << "every rank of the layout has a program";
      EXPECT_TRUE(turn.programs[0].empty() && turn.programs[2].empty()) << "clients 0 and 2 idle";
      EXPECT_EQ(turn.stage_rank, layout);
      for (int r : {1, 3, 4}) {
        ASSERT_EQ(turn.programs[r].size(), alone.programs[r].size()) << kind << " rank " << r;
        for (size_t i = 0; i < alone.programs[r].size(); ++i) {
          Action shifted = alone.programs[r][i];
          shifted.stage += 4;  // client 1's stages are 4..7
          EXPECT_EQ(turn.programs[r][i], shifted) << kind << " rank " << r << " action " << i;
        }
      }
    }
  EXPECT_THROW(build_pipeline_schedule("gpipe", layout, 4, 3, 1, false), ScheduleError);
}
