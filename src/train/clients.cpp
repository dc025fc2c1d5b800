// Several edge clients sharing the servers, sequential mode (see include/splitpipe/clients.hpp).
#include "splitpipe/clients.hpp"

#include <torch/torch.h>

#include <chrono>
#include <climits>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "splitpipe/error.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/partition.hpp"
#include "splitpipe/run_file.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kHandoffTag = 7001;  // on MPI_COMM_WORLD; pipeline traffic runs on the client communicators

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void check_mpi(int code, const std::string& what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(what + ": " + std::string(text, length));
}

std::string serialize_state(const Trainer& trainer) {
  torch::serialize::OutputArchive archive;
  trainer.save_state(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load_serialized_state(Trainer& trainer, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size());
  trainer.load_state(archive);
}

void send_state(const MpiTransport& world, int peer, const std::string& bytes) {
  const std::string what = "hand-off of the edge state to client " + std::to_string(peer);
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw Error(what + ": " + std::to_string(bytes.size()) + " bytes exceed MPI's int count");
  check_mpi(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, peer, kHandoffTag, world.comm()), what);
}

// A waiting client sleeps between probes: it may wait a whole turn of another client, on a
// core that the active ranks need. No timeout here: a failing rank aborts the whole job.
std::string receive_state(const MpiTransport& world, int peer) {
  const std::string what = "hand-off of the edge state from client " + std::to_string(peer);
  MPI_Status status;
  for (int arrived = 0;;) {
    check_mpi(MPI_Iprobe(peer, kHandoffTag, world.comm(), &arrived, &status), what);
    if (arrived) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  std::string bytes(static_cast<size_t>(count), '\0');
  check_mpi(MPI_Recv(bytes.data(), count, MPI_BYTE, peer, kHandoffTag, world.comm(), MPI_STATUS_IGNORE), what);
  return bytes;
}

Dataset subset(const Dataset& full, const at::Tensor& indices) {
  return Dataset{full.inputs.index_select(0, indices), full.labels.index_select(0, indices), full.num_classes,
                 full.class_names};
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
  std::vector<at::Tensor> shards;
  std::optional<DatasetSplits> own_data;  // this client's shard and the full test set
  // Index c: the communicator {client c, servers} (client c is its rank 0), its transport and
  // the Trainer over it; null where this rank is not a member. Destroyed in reverse order.
  std::vector<MPI_Comm> comms;
  std::vector<std::unique_ptr<MpiTransport>> transports;
  std::vector<std::unique_ptr<Trainer>> trainers;

  Impl(const RunConfig& c, MpiTransport& w, const DatasetSplits* data)
      : config(c), world(w), E(c.edge_ranks), my_client(w.rank() < c.edge_ranks ? w.rank() : -1) {
    check_client_world(config, world.size());
    make_own_shard(data);
    check_partition(data);
    create_communicators();
    for (int client = 0; client < E; ++client) {
      if (comms[client] == MPI_COMM_NULL) continue;
      transports[client] = std::make_unique<MpiTransport>(comms[client]);
      transports[client]->set_timeout(config.comm_timeout);
      trainers[client] = std::make_unique<Trainer>(config, *transports[client],
                                                   client == my_client ? &*own_data : nullptr);
    }
  }

  ~Impl() {
    trainers.clear();
    transports.clear();
    for (MPI_Comm& comm : comms)
      if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  }

  bool is_server() const { return my_client < 0; }

  // Every client computes every shard from the same seed; a too-small shard stops all ranks.
  void make_own_shard(const DatasetSplits* data) {
    std::optional<std::string> error;
    if (!is_server()) {
      if (!data) throw std::logic_error("SequentialClients: edge client " + std::to_string(my_client) + " has no data");
      try {
        shards = make_shards(data->train.labels, data->train.num_classes, E, parse_shard_spec(config.shard),
                             config.seed, config.batch_size);
        own_data = DatasetSplits{subset(data->train, shards[my_client]), data->test,
                                 data->description + ", client " + std::to_string(my_client) + "'s shard"};
      } catch (const Error& e) {
        error = e.what();
      }
    }
    world.agree_on(error);
  }

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

  void create_communicators() {
    MPI_Group world_group;
    check_mpi(MPI_Comm_group(world.comm(), &world_group), "MPI_Comm_group");
    comms.assign(E, MPI_COMM_NULL);
    transports.resize(E);
    trainers.resize(E);
    for (int client = 0; client < E; ++client) {
      std::vector<int> members{client};
      for (int server = E; server < world.size(); ++server) members.push_back(server);
      MPI_Group group;
      check_mpi(MPI_Group_incl(world_group, static_cast<int>(members.size()), members.data(), &group), "MPI_Group_incl");
      const int code = MPI_Comm_create(world.comm(), group, &comms[client]);
      MPI_Group_free(&group);
      check_mpi(code, "MPI_Comm_create for client " + std::to_string(client));
      if (comms[client] != MPI_COMM_NULL) MPI_Comm_set_errhandler(comms[client], MPI_ERRORS_RETURN);
    }
    MPI_Group_free(&world_group);
  }

  std::vector<ClientTurn> train_epoch(int epoch) {
    std::vector<ClientTurn> turns;
    for (int client = 0; client < E; ++client) {
      const int next = (client + 1) % E;
      if (client == my_client || is_server()) {
        ClientTurn turn;
        turn.client = client;
        turn.train = trainers[client]->train(epoch);
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
const std::vector<at::Tensor>& SequentialClients::shards() const { return impl_->shards; }
std::vector<ClientTurn> SequentialClients::train_epoch(int epoch) { return impl_->train_epoch(epoch); }
Trainer* SequentialClients::holder() { return impl_->trainers.at(0).get(); }
PassStats SequentialClients::evaluate() {
  Trainer* trainer = holder();
  return trainer ? trainer->evaluate() : PassStats{};
}

// ---------------------------------------------------------------------------------------------

namespace {

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

// Per-client numbers of one epoch, in this order, gathered from every rank to rank 0.
const std::vector<std::string> kClientColumns{"samples", "loss_sum", "correct", "seconds", "handoff_seconds",
                                              "handoff_bytes"};

std::vector<double> client_values(const std::vector<ClientTurn>& turns, int my_client, int clients) {
  std::vector<double> values(kClientColumns.size() * clients, 0.0);
  for (const auto& turn : turns) {
    if (turn.client != my_client) continue;  // the servers see no loss: the client holds the last stage
    double* v = &values[kClientColumns.size() * turn.client];
    v[0] = static_cast<double>(turn.train.samples);
    v[1] = turn.train.loss * turn.train.samples;
    v[2] = turn.train.accuracy * turn.train.samples;
    v[3] = turn.train.seconds;
    v[4] = turn.handoff_seconds;
    v[5] = turn.handoff_bytes;
  }
  return values;
}

std::optional<RunFile> open_clients_run_file(const RunConfig& config, const MpiTransport& world, std::string& path) {
  std::optional<RunFile> file;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
    path = config.output.empty() ? "results/" + config.model + "-" + config.data.dataset + "-clients" +
                                       std::to_string(config.edge_ranks) + "-" + stamp + ".h5"
                                 : config.output;
    try {
      file = RunFile::create(path, config.overwrite);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  world.agree_on(error);
  return file;
}

}  // namespace

void run_clients(const RunConfig& config, MpiTransport& world) {
  check_client_world(config, world.size());
  const int E = config.edge_ranks;
  const bool root = world.rank() == 0;
  const bool is_client = world.rank() < E;

  // Every edge client reads the dataset itself, as a real client holds its own data.
  std::optional<DatasetSplits> data;
  std::optional<std::string> error;
  if (is_client) {
    try {
      data = load_dataset(config.data);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  world.agree_on(error);
  if (root) std::cout << "data: " << data->description << "\n";

  SequentialClients clients(config, world, data ? &*data : nullptr);
  if (root) {
    std::cout << E << " edge clients (ranks 0-" << E - 1 << "), " << world.size() - E << " server(s) (ranks " << E
              << "-" << world.size() - 1 << "), client mode " << config.client_mode << ", shard " << config.shard
              << "; shard sizes:";
    for (const auto& shard : clients.shards()) std::cout << " " << shard.size(0);
    std::cout << "\nplan of each client's turn (rank 0 = the active client, rank r >= 1 = world rank "
              << E - 1 << "+r):\n"
              << clients.holder()->plan().format(clients.holder()->blocks());
  }
  if (config.dry_run || config.print_schedule) {
    if (root && config.dry_run) std::cout << "resolved configuration:\n" << config.to_ini();
    if (root && config.print_schedule) {
      const int m = static_cast<int>(std::min<int64_t>(config.chunks, config.batch_size));
      std::cout << format_schedule(clients.holder()->schedule(m, false))
                << format_schedule(clients.holder()->schedule(m, true));
    }
    return;
  }

  std::string path;
  auto file = open_clients_run_file(config, world, path);
  try {
    if (root) {
      file->set_attribute("splitpipe_version", splitpipe_version());
      file->set_attribute("world_size", static_cast<int64_t>(world.size()));
      file->set_attribute("resolved_config", config.to_ini());
      file->set_attribute("config", config.config_file);
      for (const auto& option : config.resolved) file->set_attribute(option.name, option.value);
      std::cout << "writing " << path << std::endl;
    }
    for (int epoch = 0; epoch < config.epochs; ++epoch) {
      const auto epoch_start = Clock::now();
      const auto turns = clients.train_epoch(epoch);
      const PassStats test = clients.evaluate();
      const double epoch_seconds = seconds_since(epoch_start);
      const auto gathered = world.gather(client_values(turns, clients.client(), E));
      if (!root) continue;
      std::vector<double> per_client(kClientColumns.size() * E, 0.0);
      for (const auto& rank_values : gathered)
        for (size_t i = 0; i < per_client.size(); ++i) per_client[i] += rank_values[i];
      double samples = 0, loss_sum = 0, correct = 0, train_seconds = 0, handoff_seconds = 0, handoff_bytes = 0;
      for (int c = 0; c < E; ++c) {
        const double* v = &per_client[kClientColumns.size() * c];
        file->append_row("clients/" + std::to_string(c),
                         {{"epoch", epoch + 1.0},
                          {"samples", v[0]},
                          {"loss", v[0] > 0 ? v[1] / v[0] : 0},
                          {"accuracy", v[0] > 0 ? v[2] / v[0] : 0},
                          {"seconds", v[3]},
                          {"handoff_seconds", v[4]},
                          {"handoff_bytes", v[5]}});
        samples += v[0];
        loss_sum += v[1];
        correct += v[2];
        train_seconds += v[3];
        handoff_seconds += v[4];
        handoff_bytes += v[5];
      }
      const double train_loss = samples > 0 ? loss_sum / samples : 0, train_acc = samples > 0 ? correct / samples : 0;
      file->append_row("epochs", {{"epoch", epoch + 1.0},
                                  {"train_loss", train_loss},
                                  {"train_acc", train_acc},
                                  {"test_loss", test.loss},
                                  {"test_acc", test.accuracy},
                                  {"epoch_seconds", epoch_seconds},
                                  {"samples_per_second", train_seconds > 0 ? samples / train_seconds : 0},
                                  {"handoff_seconds", handoff_seconds},
                                  {"handoff_bytes", handoff_bytes}});
      file->append_matrix("confusion", test.confusion);
      std::cout << "epoch " << epoch + 1 << "/" << config.epochs << "  train loss " << fixed(train_loss, 4) << " acc "
                << fixed(100 * train_acc, 2) << "%  test loss " << fixed(test.loss, 4) << " acc "
                << fixed(100 * test.accuracy, 2) << "%  " << fixed(epoch_seconds, 1) << " s  hand-offs "
                << fixed(handoff_bytes / 1e6, 2) << " MB in " << fixed(handoff_seconds, 3) << " s" << std::endl;
    }
    // The weights live on client 0 and the servers; the other clients hold a stale copy.
    Trainer* holder = clients.holder();
    const auto digests = world.gather_strings(holder ? holder->weights_digest() : std::string());
    if (root) {
      std::string digest_list;
      for (size_t r = 0; r < digests.size(); ++r) digest_list += (r ? "," : "") + digests[r];
      file->set_attribute("weights_digest", digest_list);
      file->finish("complete");
      std::cout << "wrote " << path << std::endl;
    }
  } catch (const std::exception& e) {
    if (file) file->finish(std::string("failed: ") + e.what());
    throw;
  }
}

}  // namespace splitpipe
