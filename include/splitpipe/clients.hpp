// Several edge clients sharing the servers (--edge-ranks E > 1): ranks 0..E-1 are edge
// clients, each with its own shard of the training set; ranks E..N-1 are the servers.
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
// Evaluation: after the last hand-off, client 0 (which now holds the edge weights) evaluates
// on the full test set with the servers. Waiting clients sleep-poll for their hand-off, so they
// neither burn a shared core nor time out; a failure on any rank aborts the whole job.
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
  double handoff_seconds = 0;    // serialising and sending the state to the next client
  double handoff_bytes = 0;      // size of that state on the wire
};

// Throws UsageError unless the world holds E edge clients and at least one server.
void check_client_world(const RunConfig& config, int world_size);

class SequentialClients {
 public:
  // Collective over `world`. `data` (the whole dataset) must be non-null on every edge client
  // (ranks < E) and is ignored on servers. Agrees on errors over the world (shards too small,
  // impossible partition), so every rank throws the same one.
  SequentialClients(const RunConfig& config, MpiTransport& world, const DatasetSplits* data);
  ~SequentialClients();

  int client() const;  // this rank's client index, -1 on servers
  // Training-set indices of every client (on edge clients; empty on servers).
  const std::vector<at::Tensor>& shards() const;
  // The turns this rank took part in (one on a client, E on a server), in order.
  std::vector<ClientTurn> train_epoch(int epoch);
  // Client 0 and the servers evaluate on the full test set; other clients return empty stats.
  PassStats evaluate();
  // The Trainer that holds the weights between epochs: client 0's (on servers: the one that
  // serves client 0). Null on the other clients.
  Trainer* holder();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The run driver for --edge-ranks > 1 (called by run()).
void run_clients(const RunConfig& config, MpiTransport& world);

}  // namespace splitpipe
