// Several edge clients sharing the servers (--edge-ranks E > 1): ranks 0..E-1 are edge
// clients, each with its own shard of the training set (--shard); ranks E..N-1 are the servers.
//
// Sequential mode (--client-mode sequential): in every epoch the clients take turns in the
// order 0, 1, ..., E-1. A turn is one ordinary pipeline epoch over the client's shard: the
// active client and the servers run it on their own communicator {client c, servers} (with
// the client as its rank 0), so the pipeline engine and its schedules are the same as with one
// edge. At the end of its turn a client sends its edge stages' parameters, buffers, SGD
// momentum and RNG state to the next client (point-to-point over MPI_COMM_WORLD); the last
// client hands back to client 0. The servers keep one Trainer per client and copy their
// server stages' state (and momentum) from the finished turn's Trainer into the next one's,
// in memory. So the model sees the shards one after the other, exactly as a single process
// training over the shards concatenated in client order (each shard in its own seeded order,
// with the learning-rate schedule stepping over the shard's batches).
// Waiting clients sleep-poll for their hand-off, so they neither burn a shared core nor time
// out; a failure on any rank aborts the whole job.
//
// Parallel mode (--client-mode parallel, SplitFed style): all clients train at once in rounds.
// In a round every client draws one full mini-batch of B samples from its shuffled shard
// (an epoch has as many rounds as the smallest shard has full batches; a larger shard's
// remaining samples wait for a later epoch, whose shuffle differs) and streams its
// micro-batches through the servers. One schedule holds the E client pipelines (schedule.hpp):
// a server runs its stage for every client's micro-batches, interleaved by the list-scheduling
// order, checked for deadlock like any schedule. Gradients:
//   - a client's loss is the mean over its own batch; its edge stages step on that gradient;
//   - a server accumulates the gradients of all E client batches and divides them by E before
//     its one optimizer step per round, i.e. it steps on the gradient of the union batch (E*B);
//   - every --sync-every rounds, and at the end of every epoch, the clients replace their
//     edge weights, SGD momentum and BatchNorm statistics by the mean over the clients.
// With --sync-every 1 a round therefore equals one SGD step of a single process on the union
// of the clients' batches (momentum and weight decay are linear, so averaging after the step
// equals stepping on the averaged gradient). With --sync-every k > 1 the edge copies drift
// apart for k rounds (local SGD / FedAvg on the edge) while the server keeps one copy.
//
// Evaluation (both modes): client 0 and the servers evaluate on the full test set after every
// epoch (in parallel mode after the end-of-epoch average, so client 0's copy is every client's).
#pragma once
#include <memory>
#include <vector>

#include "splitpipe/config.hpp"
#include "splitpipe/data.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/trainer.hpp"

namespace splitpipe {

// One client's turn of one epoch, as seen by the ranks that took part.
struct ClientTurn {
  int client = 0;
  PassStats train;               // loss/accuracy only on the client (it holds the last stage)
  // Sequential: serialising and sending the edge state to the next client, and its size.
  // Parallel: this epoch's averaging of the edge state, and the bytes this client contributed.
  double handoff_seconds = 0;
  double handoff_bytes = 0;
  double wire_bytes = 0;         // pipeline messages sent and received by the client in its turn
};

// Throws UsageError unless the world holds E edge clients and at least one server.
void check_client_world(const RunConfig& config, int world_size);

// The clients' side of a run, whatever the mode.
class EdgeClients {
 public:
  virtual ~EdgeClients() = default;
  virtual int client() const = 0;  // this rank's client index, -1 on servers
  // Training-set indices of every client (on edge clients; empty on servers).
  virtual const std::vector<at::Tensor>& shards() const = 0;
  // The turns this rank took part in during one epoch, in order: on a client its own; on a
  // server one per client in sequential mode, none in parallel mode.
  virtual std::vector<ClientTurn> train_epoch(int epoch) = 0;
  // Client 0 and the servers evaluate on the full test set; other clients return empty stats.
  virtual PassStats evaluate() = 0;
  // The Trainer that holds the weights between epochs (client 0's in sequential mode, on
  // servers the one that serves client 0; null on the other clients).
  virtual Trainer* holder() = 0;
};

class SequentialClients final : public EdgeClients {
 public:
  // Collective over `world`. `data` (the whole dataset) must be non-null on every edge client
  // (ranks < E) and is ignored on servers. Agrees on errors over the world (shards too small,
  // impossible partition), so every rank throws the same one.
  SequentialClients(const RunConfig& config, MpiTransport& world, const DatasetSplits* data);
  ~SequentialClients() override;

  int client() const override;
  const std::vector<at::Tensor>& shards() const override;
  std::vector<ClientTurn> train_epoch(int epoch) override;
  PassStats evaluate() override;
  Trainer* holder() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ParallelClients final : public EdgeClients {
 public:
  // Collective over `world`, with the same contract as SequentialClients.
  ParallelClients(const RunConfig& config, MpiTransport& world, const DatasetSplits* data);
  ~ParallelClients() override;

  int client() const override;
  const std::vector<at::Tensor>& shards() const override;
  std::vector<ClientTurn> train_epoch(int epoch) override;
  PassStats evaluate() override;
  Trainer* holder() override;  // the one Trainer over the world, on every rank

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::unique_ptr<EdgeClients> make_edge_clients(const RunConfig& config, MpiTransport& world,
                                               const DatasetSplits* data);

// The run driver for --edge-ranks > 1 (called by run()).
void run_clients(const RunConfig& config, MpiTransport& world);

}  // namespace splitpipe
