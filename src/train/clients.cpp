// Several edge clients sharing the servers: the sequential and the parallel mode
// (see include/splitpipe/clients.hpp); the run driver is in run_clients.cpp.
#include "splitpipe/clients.hpp"

#include <torch/torch.h>

#include <chrono>
#include <optional>
#include <sstream>

#include "splitpipe/error.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/partition.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kHandoffTag = 7001;  // on the world transport; pipeline traffic runs on the client transports

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string serialize_state(const Trainer& trainer) {
  torch::serialize::OutputArchive archive;
  trainer.save_state(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load_serialized_state(Trainer& trainer, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size(), trainer.executor().device());
  trainer.load_state(archive);
}

void send_state(const MpiTransport& world, int peer, const std::string& bytes) {
  try {
    world.send_message(peer, kHandoffTag, bytes);
  } catch (const Error& e) {
    throw Error("hand-off of the edge state to client " + std::to_string(peer) + ": " + e.what());
  }
}

// A waiting client may wait a whole turn of another client. No timeout here: a failing rank
// aborts the whole job.
std::string receive_state(const MpiTransport& world, int peer) {
  try {
    return world.receive_message(peer, kHandoffTag);
  } catch (const Error& e) {
    throw Error("hand-off of the edge state from client " + std::to_string(peer) + ": " + e.what());
  }
}

Dataset subset(const Dataset& full, const at::Tensor& indices) {
  return Dataset{full.inputs.index_select(0, indices), full.labels.index_select(0, indices), full.num_classes,
                 full.class_names};
}

struct ClientShards {
  std::vector<at::Tensor> all;            // every client's training-set indices (on clients)
  std::optional<DatasetSplits> own;       // this client's shard and the full test set
};

// Every client computes every shard from the same seed; a too-small shard stops all ranks.
ClientShards make_client_shards(const RunConfig& config, const MpiTransport& world, const DatasetSplits* data) {
  const int E = config.edge_ranks;
  const int client = world.rank() < E ? world.rank() : -1;
  ClientShards shards;
  std::optional<std::string> error;
  if (client >= 0) {
    if (!data) throw std::logic_error("edge client " + std::to_string(client) + " has no data");
    try {
      shards.all = make_shards(data->train.labels, data->train.num_classes, E, parse_shard_spec(config.shard),
                               config.seed, config.batch_size);
      shards.own = DatasetSplits{subset(data->train, shards.all[client]), data->test,
                                 data->description + ", client " + std::to_string(client) + "'s shard"};
    } catch (const Error& e) {
      error = e.what();
    }
  }
  world.agree_on(error);
  return shards;
}

double wire_bytes(Trainer& trainer) {
  double total = 0;
  const RankCounters& c = trainer.executor().counters();
  for (const auto* table : {&c.bytes_sent, &c.bytes_received})
    for (const auto& directions : *table) total += directions[0] + directions[1];
  return total;
}

}  // namespace

void check_client_world(const RunConfig& config, int world_size) {
  const int E = config.edge_ranks;
  if (E < 1) throw UsageError("--edge-ranks: must be >= 1 (the number of edge clients), got " + std::to_string(E));
  if (E > 1 && world_size < E + 1)
    throw UsageError("--edge-ranks " + std::to_string(E) + " needs " + std::to_string(E) +
                     " edge client ranks and at least 1 server rank, but mpirun started " + std::to_string(world_size) +
                     " rank(s); use mpirun -np " + std::to_string(E + 1) + " or more");
}

struct SequentialClients::Impl {
  RunConfig config;
  MpiTransport& world;
  int E;
  int my_client;  // -1 on servers
  ClientShards shards;
  // Index c: the transport over {client c, servers} (client c is its rank 0) and the Trainer
  // over it; null where this rank is not a member. Destroyed in reverse order.
  std::vector<std::unique_ptr<MpiTransport>> transports;
  std::vector<std::unique_ptr<Trainer>> trainers;

  Impl(const RunConfig& c, MpiTransport& w, const DatasetSplits* data)
      : config(c), world(w), E(c.edge_ranks), my_client(w.rank() < c.edge_ranks ? w.rank() : -1) {
    check_client_world(config, world.size());
    shards = make_client_shards(config, world, data);
    check_partition(data);
    trainers.resize(E);
    for (int client = 0; client < E; ++client) {
      std::vector<int> members{client};
      for (int server = E; server < world.size(); ++server) members.push_back(server);
      transports.push_back(world.subgroup(members));  // collective: every rank, every client
    }
    for (int client = 0; client < E; ++client) {
      if (!transports[client]) continue;
      trainers[client] = std::make_unique<Trainer>(config, *transports[client],
                                                   client == my_client ? &*shards.own : nullptr);
    }
  }

  ~Impl() {
    trainers.clear();
    transports.clear();
  }

  bool is_server() const { return my_client < 0; }

  // The Trainers are built on the client communicators, where a refused plan would leave the
  // clients of later communicators waiting: every rank checks the plan first, over the world.
  void check_partition(const DatasetSplits* data) {
    const DatasetMeta meta = broadcast_meta(world, world.rank() == 0 ? data : nullptr);
    std::optional<std::string> error;
    try {
      torch::manual_seed(config.seed);
      const auto blocks = build_model({config.model, meta.sample_shape, meta.num_classes, config.mlp_hidden});
      make_partition(blocks, 1 + world.size() - E, config.edge_first, config.edge_last, config.server_split);
    } catch (const UsageError& e) {
      error = e.what();
    }
    world.agree_on(error, 2);
  }

  std::vector<ClientTurn> train_epoch(int epoch) {
    std::vector<ClientTurn> turns;
    for (int client = 0; client < E; ++client) {
      const int next = (client + 1) % E;
      if (client == my_client || is_server()) {
        ClientTurn turn;
        turn.client = client;
        const double bytes_before = wire_bytes(*trainers[client]);
        turn.train = trainers[client]->train(epoch);
        turn.wire_bytes = wire_bytes(*trainers[client]) - bytes_before;
        // Checkpoints are not supported here yet; the idle clients do not know of the signal,
        // so the job stops as a whole (a plain Error aborts every rank).
        if (turn.train.interrupted)
          throw Error("stopped by SIGUSR1/SIGTERM during client " + std::to_string(client) + "'s turn of epoch " +
                      std::to_string(epoch + 1) + "; several edge clients cannot checkpoint yet, nothing saved");
        if (is_server()) {
          // The servers' weights and momentum continue into the next client's Trainer.
          load_serialized_state(*trainers[next], serialize_state(*trainers[client]));
        } else {
          const auto start = Clock::now();
          const std::string state = serialize_state(*trainers[client]);
          send_state(world, next, state);
          turn.handoff_seconds = seconds_since(start);
          turn.handoff_bytes = static_cast<double>(state.size());
        }
        turns.push_back(std::move(turn));
      }
      if (next == my_client) load_serialized_state(*trainers[next], receive_state(world, client));
    }
    return turns;
  }
};

SequentialClients::SequentialClients(const RunConfig& config, MpiTransport& world, const DatasetSplits* data)
    : impl_(std::make_unique<Impl>(config, world, data)) {}
SequentialClients::~SequentialClients() = default;

int SequentialClients::client() const { return impl_->my_client; }
const std::vector<at::Tensor>& SequentialClients::shards() const { return impl_->shards.all; }
std::vector<ClientTurn> SequentialClients::train_epoch(int epoch) { return impl_->train_epoch(epoch); }
Trainer* SequentialClients::holder() { return impl_->trainers.at(0).get(); }
PassStats SequentialClients::evaluate() {
  Trainer* trainer = holder();
  return trainer ? trainer->evaluate() : PassStats{};
}

// ---------------------------------------------------------------------------------------------

struct ParallelClients::Impl {
  int my_client;
  ClientShards shards;
  std::unique_ptr<Trainer> trainer;  // over the world: the E client pipelines and the servers

  Impl(const RunConfig& config, MpiTransport& world, const DatasetSplits* data)
      : my_client(world.rank() < config.edge_ranks ? world.rank() : -1) {
    check_client_world(config, world.size());
    shards = make_client_shards(config, world, data);
    // Every rank builds the same plan, so an impossible partition throws the same error everywhere.
    trainer = std::make_unique<Trainer>(config, world, shards.own ? &*shards.own : nullptr);
  }

  std::vector<ClientTurn> train_epoch(int epoch) {
    ClientTurn turn;
    turn.client = my_client;
    const double bytes_before = wire_bytes(*trainer);
    const double sync_seconds = trainer->edge_sync_seconds(), sync_bytes = trainer->edge_sync_bytes();
    turn.train = trainer->train(epoch);
    if (turn.train.interrupted)
      throw Error("stopped by SIGUSR1/SIGTERM in epoch " + std::to_string(epoch + 1) +
                  "; several edge clients cannot checkpoint yet, nothing saved");
    if (my_client < 0) return {};
    turn.wire_bytes = wire_bytes(*trainer) - bytes_before;
    turn.handoff_seconds = trainer->edge_sync_seconds() - sync_seconds;
    turn.handoff_bytes = trainer->edge_sync_bytes() - sync_bytes;
    return {turn};
  }
};

ParallelClients::ParallelClients(const RunConfig& config, MpiTransport& world, const DatasetSplits* data)
    : impl_(std::make_unique<Impl>(config, world, data)) {}
ParallelClients::~ParallelClients() = default;

int ParallelClients::client() const { return impl_->my_client; }
const std::vector<at::Tensor>& ParallelClients::shards() const { return impl_->shards.all; }
std::vector<ClientTurn> ParallelClients::train_epoch(int epoch) { return impl_->train_epoch(epoch); }
PassStats ParallelClients::evaluate() { return impl_->trainer->evaluate(); }
Trainer* ParallelClients::holder() { return impl_->trainer.get(); }

std::unique_ptr<EdgeClients> make_edge_clients(const RunConfig& config, MpiTransport& world,
                                               const DatasetSplits* data) {
  if (config.client_mode == "parallel") return std::make_unique<ParallelClients>(config, world, data);
  return std::make_unique<SequentialClients>(config, world, data);
}

}  // namespace splitpipe
