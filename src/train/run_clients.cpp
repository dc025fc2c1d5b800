// The run driver for several edge clients (--edge-ranks > 1): data on every client, the
// clients of either mode (clients.cpp), one line per epoch and the run file with /clients/<i>.
#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "splitpipe/clients.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/run_file.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

// Per-client numbers of one epoch, in this order, gathered from every rank to rank 0.
const std::vector<std::string> kClientColumns{"samples", "loss_sum", "correct", "seconds", "handoff_seconds",
                                              "handoff_bytes", "wire_bytes"};

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
    v[6] = turn.wire_bytes;
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

  const bool parallel = config.client_mode == "parallel";
  const std::unique_ptr<EdgeClients> edge_clients = make_edge_clients(config, world, data ? &*data : nullptr);
  EdgeClients& clients = *edge_clients;
  if (root) {
    std::cout << E << " edge clients (ranks 0-" << E - 1 << "), " << world.size() - E << " server(s) (ranks " << E
              << "-" << world.size() - 1 << "), client mode " << config.client_mode << ", shard " << config.shard
              << "; shard sizes:";
    for (const auto& shard : clients.shards()) std::cout << " " << shard.size(0);
    if (parallel)
      std::cout << "\nplan (stage c*S+s = client c's stage s):\n";
    else
      std::cout << "\nplan of each client's turn (rank 0 = the active client, rank r >= 1 = world rank " << E - 1
                << "+r):\n";
    std::cout << clients.holder()->plan().format(clients.holder()->blocks());
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
      file->set_attribute("libtorch_version", libtorch_version());
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
      double samples = 0, loss_sum = 0, correct = 0, train_seconds = 0, handoff_seconds = 0, handoff_bytes = 0,
             wire = 0;
      for (int c = 0; c < E; ++c) {
        const double* v = &per_client[kClientColumns.size() * c];
        file->append_row("clients/" + std::to_string(c),
                         {{"epoch", epoch + 1.0},
                          {"samples", v[0]},
                          {"loss", v[0] > 0 ? v[1] / v[0] : 0},
                          {"accuracy", v[0] > 0 ? v[2] / v[0] : 0},
                          {"seconds", v[3]},
                          {"handoff_seconds", v[4]},
                          {"handoff_bytes", v[5]},
                          {"wire_bytes", v[6]}});
        samples += v[0];
        loss_sum += v[1];
        correct += v[2];
        // Sequential turns follow each other; parallel clients train at the same time.
        train_seconds = parallel ? std::max(train_seconds, v[3]) : train_seconds + v[3];
        handoff_seconds += v[4];
        handoff_bytes += v[5];
        wire += v[6];
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
                                  {"handoff_bytes", handoff_bytes},
                                  {"wire_bytes", wire}});
      file->append_matrix("confusion", test.confusion);
      std::cout << "epoch " << epoch + 1 << "/" << config.epochs << "  train loss " << fixed(train_loss, 4) << " acc "
                << fixed(100 * train_acc, 2) << "%  test loss " << fixed(test.loss, 4) << " acc "
                << fixed(100 * test.accuracy, 2) << "%  " << fixed(epoch_seconds, 1) << " s  "
                << (parallel ? "edge averaging " : "hand-offs ")
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
