// The emulated edge link (--link) on real MPI ranks: a known byte count at a known bandwidth
// arrives after the expected time (within 10%), queued messages serialise in order (also when
// they go to different servers: the edge has one uplink), the sender is never held back,
// unshaped directions and server <-> server messages pass at full speed, and a pipeline trained
// through the link computes exactly what it computes without it while logging link waits at
// the right boundaries.
//
// Times are measured from the sender's hand-over (taken just before post_send, on the edge's
// clock, which the decorator synchronises) to the return of the receiver's wait(), so the skew
// of a barrier on oversubscribed cores does not enter the measurement.
#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "mpi_test.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/emulated_link.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/trainer.hpp"

using namespace splitpipe;
using splitpipe::testing::MpiTest;
using splitpipe::testing::world_rank;
using splitpipe::testing::world_size;

namespace {

constexpr double kTimeTolerance = 0.10;  // relative, on arrival times

// The control plane and the data plane over MPI_COMM_WORLD; the reference time travels on the
// control plane, outside the link.
struct World {
  MpiControlPlane control{MPI_COMM_WORLD};
  MpiTransport data{control};
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

LinkSpec link_spec(double bits_per_second, double latency_seconds, bool up = true, bool down = true) {
  LinkSpec spec;
  spec.bits_per_second = bits_per_second;
  spec.latency_seconds = latency_seconds;
  spec.shape_up = up;
  spec.shape_down = down;
  return spec;
}

struct Send {
  int to;
  size_t bytes;
};

// What one rank saw of a transfer() (only its own messages).
struct Trace {
  std::vector<double> arrival;    // receiver: seconds from the first hand-over to the return of each wait
  std::vector<double> link_wait;  // receiver: last_wait_link_seconds() of each wait
  double sender_seconds = -1;     // sender: posting every send and waiting for all of them
};

// Collective: `from` sends `sends` in order through `link`; each receiver waits for its
// messages in that order.
Trace transfer(World& world, EmulatedLinkTransport& link, int from, const std::vector<Send>& sends) {
  Trace trace;
  const int rank = world.control.rank();
  std::vector<std::vector<uint8_t>> buffers(sends.size());
  world.control.barrier();
  if (rank == from) {
    std::vector<Transport::Ticket> tickets;
    const double start = now_seconds();
    const double hand_over = start + link.clock_offset_seconds();  // on the edge's clock
    for (size_t i = 0; i < sends.size(); ++i) {
      buffers[i].assign(sends[i].bytes, static_cast<uint8_t>(i));
      tickets.push_back(link.post_send(sends[i].to, buffers[i].data(), sends[i].bytes));
    }
    for (auto ticket : tickets) link.wait(ticket);
    trace.sender_seconds = now_seconds() - start;
    std::set<int> receivers;
    for (const auto& s : sends) receivers.insert(s.to);
    for (int to : receivers)
      world.control.send_bytes(to, std::string(reinterpret_cast<const char*>(&hand_over), sizeof hand_over), "hand-over");
  } else {
    std::vector<std::pair<size_t, Transport::Ticket>> mine;
    for (size_t i = 0; i < sends.size(); ++i)
      if (sends[i].to == rank) {
        buffers[i].assign(sends[i].bytes, 0xff);
        mine.emplace_back(i, link.post_recv(from, buffers[i].data(), sends[i].bytes));
      }
    std::vector<double> done;
    for (const auto& [i, ticket] : mine) {
      link.wait(ticket);
      done.push_back(now_seconds() + link.clock_offset_seconds());
      trace.link_wait.push_back(link.last_wait_link_seconds());
      EXPECT_EQ(buffers[i].front(), static_cast<uint8_t>(i)) << "message " << i << " arrived intact";
      EXPECT_EQ(buffers[i].back(), static_cast<uint8_t>(i)) << "message " << i << " arrived intact";
    }
    if (!mine.empty()) {
      double hand_over = 0;
      const std::string bytes = world.control.receive_bytes(from, "hand-over");
      EXPECT_EQ(bytes.size(), sizeof hand_over);
      std::memcpy(&hand_over, bytes.data(), std::min(bytes.size(), sizeof hand_over));
      for (double t : done) trace.arrival.push_back(t - hand_over);
    }
  }
  world.control.barrier();
  return trace;
}

// This rank's expected arrival times, in the order transfer() reports them.
std::vector<double> expected_here(const std::vector<Send>& sends, const std::vector<double>& expected) {
  std::vector<double> mine;
  for (size_t i = 0; i < sends.size(); ++i)
    if (sends[i].to == world_rank()) mine.push_back(expected[i]);
  return mine;
}

bool on_time(const Trace& trace, const std::vector<double>& expected) {
  if (trace.arrival.size() != expected.size()) return false;
  for (size_t i = 0; i < expected.size(); ++i)
    if (std::abs(trace.arrival[i] - expected[i]) > kTimeTolerance * expected[i]) return false;
  return true;
}

// A busy machine can only make a receiver late (it never wakes before the arrival time), so
// a late measurement is repeated, up to kAttempts times in all; every rank takes part in every
// attempt. Returns the last attempt's trace.
constexpr int kAttempts = 3;
Trace transfer_on_time(World& world, EmulatedLinkTransport& link, int from, const std::vector<Send>& sends,
                       const std::vector<double>& expected) {
  Trace trace;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    trace = transfer(world, link, from, sends);
    int late = on_time(trace, expected_here(sends, expected)) ? 0 : 1, any_late = 0;
    MPI_Allreduce(&late, &any_late, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any_late) break;
  }
  return trace;
}

void expect_arrivals(const Trace& trace, const std::vector<double>& expected, const std::string& what) {
  EXPECT_EQ(trace.arrival.size(), expected.size()) << what;
  for (size_t i = 0; i < std::min(expected.size(), trace.arrival.size()); ++i) {
    const std::string message = what + " message " + std::to_string(i) + " on rank " + std::to_string(world_rank());
    EXPECT_NEAR(trace.arrival[i], expected[i], kTimeTolerance * expected[i]) << message;
    // Never early: the synchronised clocks are off by microseconds at most.
    EXPECT_GE(trace.arrival[i], expected[i] - 1e-3) << message;
  }
}

class EmulatedLink : public MpiTest {};

TEST_F(EmulatedLink, ClocksAgreeOnOneNode) {
  World world;
  EmulatedLinkTransport link(world.data, world.control, {link_spec(1e9, 0)});
  EXPECT_LT(std::abs(link.clock_offset_seconds()), 1e-3) << "all ranks of this test share one steady clock";
}

TEST_F(EmulatedLink, KnownBytesAtKnownBandwidthTakeTheExpectedTime) {
  // 2.5 MB at 20 Mbit/s: 1 s on the wire plus 20 ms of latency, in both directions (long
  // enough that scheduling delays of a loaded machine, tens of ms, stay inside the tolerance).
  World world;
  EmulatedLinkTransport link(world.data, world.control, {link_spec(20e6, 0.020)});
  const double expected = 2'500'000 * 8 / 20e6 + 0.020;
  for (const auto& [from, to] : {std::pair{0, 1}, std::pair{1, 0}}) {
    const std::vector<Send> sends{{to, 2'500'000}};
    const Trace trace = transfer_on_time(world, link, from, sends, {expected});
    const std::string what = "rank " + std::to_string(from) + " -> " + std::to_string(to);
    if (world_rank() == to) {
      expect_arrivals(trace, {expected}, what);
      if (trace.arrival.size() == 1) {
        // Over MPI the bytes are there almost at once: most of the time is link wait.
        EXPECT_LE(trace.link_wait[0], trace.arrival[0]) << what;
        EXPECT_GT(trace.link_wait[0], 0.5 * expected) << what;
      }
    }
    if (world_rank() == from) {
      EXPECT_LT(trace.sender_seconds, 0.25 * expected) << what << ": the sender must not wait for the link";
    }
  }
}

TEST_F(EmulatedLink, QueuedMessagesSerialiseInOrder) {
  // 10 Mbit/s: 500 kB take 0.4 s. Handed over together, the messages leave one after the other;
  // with 3+ ranks the middle one goes to another server over the same uplink.
  World world;
  EmulatedLinkTransport link(world.data, world.control, {link_spec(10e6, 0)});
  const int other = world_size() >= 3 ? 2 : 1;
  const std::vector<Send> sends{{1, 500'000}, {other, 1'000'000}, {1, 500'000}};
  const std::vector<double> expected{0.4, 1.2, 1.6};
  const Trace trace = transfer_on_time(world, link, 0, sends, expected);
  expect_arrivals(trace, expected_here(sends, expected), "queued");
  if (world_rank() == 0) {
    EXPECT_LT(trace.sender_seconds, 0.2) << "queueing happens on the link, not in the sender";
  }
}

TEST_F(EmulatedLink, UnshapedDirectionsAndServerTrafficPassAtFullSpeed) {
  // 1.25 MB at 10 Mbit/s would take 1 s: anything near that means the message was shaped.
  World world;
  EmulatedLinkTransport up_only(world.data, world.control, {link_spec(10e6, 0.05, true, false)});
  EXPECT_FALSE(up_only.shaped(1, 0));
  const Trace down = transfer(world, up_only, 1, {{0, 1'250'000}});
  if (world_rank() == 0 && down.arrival.size() == 1) {
    EXPECT_LT(down.arrival[0], 0.3) << "direction=up must not shape server -> edge";
    EXPECT_EQ(down.link_wait[0], 0);
  }
  if (world_size() >= 3) {
    EmulatedLinkTransport both(world.data, world.control, {link_spec(10e6, 0.05)});
    EXPECT_FALSE(both.shaped(1, 2));
    const Trace servers = transfer(world, both, 1, {{2, 1'250'000}});
    if (world_rank() == 2 && servers.arrival.size() == 1) {
      EXPECT_LT(servers.arrival[0], 0.3) << "server <-> server messages are not on the edge link";
      EXPECT_EQ(servers.link_wait[0], 0);
    }
  }
}

TEST_F(EmulatedLink, EachEdgeClientHasItsOwnLink) {
  // Two clients (ranks 0, 1) and a server (rank 2): 1.25 MB from the server reach client 0 over
  // 10 Mbit/s in 1 s and client 1 over 40 Mbit/s in 0.25 s; the server's downlinks to the two
  // clients are separate queues, so neither waits for the other.
  if (world_size() != 3) GTEST_SKIP() << "needs 3 ranks: 2 edge clients and 1 server";
  World world;
  EmulatedLinkTransport links(world.data, world.control, {link_spec(10e6, 0), link_spec(40e6, 0)});
  EXPECT_TRUE(links.shaped(2, 0));
  EXPECT_TRUE(links.shaped(1, 2));
  EXPECT_FALSE(links.shaped(0, 1)) << "client <-> client traffic is not on an edge link";
  const std::vector<Send> sends{{0, 1'250'000}, {1, 1'250'000}};
  const std::vector<double> expected{1.0, 0.25};
  const Trace trace = transfer_on_time(world, links, 2, sends, expected);
  expect_arrivals(trace, expected_here(sends, expected), "per-client downlinks");
}

// A short LeNet-5 job on synthetic data, like the pipeline exactness tests, with `link`.
RunConfig lenet_config(const std::string& link) {
  const std::vector<std::string> args{"test_mpi", "--model", "lenet5", "--dataset", "synthetic",
                                      "--synthetic-shape", "1x28x28", "--synthetic-train", "32",
                                      "--synthetic-test", "8", "--batch-size", "8", "--chunks", "2",
                                      "--seed", "7", "--threads", "1", "--link", link};
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  RunConfig config = parse_command_line(static_cast<int>(argv.size()), argv.data()).config;
  validate(config);
  return config;
}

struct LinkRun {
  std::map<std::string, at::Tensor> parameters;
  std::vector<std::array<double, 2>> link_wait;  // [boundary][act, grad] on this rank
};

LinkRun train_two_steps(const RunConfig& config) {
  MpiControlPlane world(MPI_COMM_WORLD);
  std::optional<DatasetSplits> data;
  if (world.rank() == 0) data = load_dataset(config.data);
  Trainer trainer(config, world, data ? &*data : nullptr);
  trainer.train(0, 0, 2);
  LinkRun run;
  for (const auto& [name, p] : trainer.executor().named_parameters()) run.parameters[name] = p.detach().clone();
  run.link_wait = trainer.executor().counters().link_wait_seconds_at;
  return run;
}

TEST_F(EmulatedLink, PipelineComputesTheSameAndLogsLinkWaitWhereShaped) {
  // direction=up: only what the edge sends is slowed down, and it is received by servers. The
  // 50 ms latency keeps every shaped message late even if a rank is descheduled for a while.
  const LinkRun plain = train_two_steps(lenet_config(""));
  const LinkRun linked = train_two_steps(lenet_config("bandwidth=5Mbit,latency=50ms,direction=up"));
  for (const auto& [name, p] : plain.parameters) {
    const auto it = linked.parameters.find(name);
    EXPECT_NE(it, linked.parameters.end()) << name;
    if (it != linked.parameters.end()) {
      EXPECT_TRUE(at::equal(p, it->second)) << name << " differs through the link";
    }
  }
  // Stages: edge (rank 0), servers 1..N-1, edge again; boundary b joins stage b and b+1.
  const int rank = world_rank(), boundaries = static_cast<int>(linked.link_wait.size());
  EXPECT_EQ(boundaries, world_size());
  for (int b = 0; b < boundaries; ++b) {
    const bool receives_activation_from_edge = b == 0 && rank == 1;
    const bool receives_gradient_from_edge = b == boundaries - 1 && rank == world_size() - 1;
    const std::string where = "rank " + std::to_string(rank) + " boundary " + std::to_string(b);
    if (receives_activation_from_edge) EXPECT_GT(linked.link_wait[b][0], 0) << where << " activations";
    else EXPECT_EQ(linked.link_wait[b][0], 0) << where << " activations";
    if (receives_gradient_from_edge) EXPECT_GT(linked.link_wait[b][1], 0) << where << " gradients";
    else EXPECT_EQ(linked.link_wait[b][1], 0) << where << " gradients";
  }
  for (const auto& row : plain.link_wait) EXPECT_EQ(row[0] + row[1], 0) << "no link, no link wait";
}

}  // namespace
