// How the edge clients share the servers: which client pipelines run in each optimizer step
// of an epoch, on which batch, and how the stage states are kept in sync. Pure data and
// arithmetic, no MPI: the trainer asks it what to do and does it.
//
//   single      one edge (rank 0); step b is batch b of the whole training set.
//   sequential  clients 0..E-1 take turns in every epoch; a turn is one pass over the
//               client's own shard (each in its own seeded order). At the end of its turn a
//               client hands its edge state (weights, buffers, momentum, RNG) to the next one;
//               the last hands back to client 0. The servers' state simply continues. So the
//               model sees the shards one after the other, exactly as one process training on
//               the shards concatenated in client order.
//   parallel    (SplitFed) every step is a round in which all clients train at once on one full
//               batch each (as many rounds as the smallest shard has full batches). The servers
//               accumulate the E clients' gradients and divide them by E (the gradient of the
//               union batch); every --sync-every rounds and at the end of the epoch the clients
//               replace their edge state by the mean over the clients. With --sync-every 1 a
//               round equals one SGD step of one process on the union of the clients' batches.
//
// In every mode all ranks go through every step together (an idle client's program is empty),
// so the per-step agreement (interrupts, non-finite values), fault injection, checkpoints and
// resume work the same everywhere, and no rank waits longer than one step for another.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace splitpipe {

// The gradient-sync policy.
struct SyncPolicy {
  enum class EdgeSync { None, HandOff, Average };
  // Servers divide their accumulated gradients by the number of client pipelines in the step.
  bool server_gradient_mean = false;
  EdgeSync edge = EdgeSync::None;
  int every = 1;  // Average: rounds between averages (and always after the epoch's last step)
};

// One optimizer step of an epoch.
struct StepSpec {
  int client = 0;       // whose pipeline runs; -1: every client's (a parallel round)
  int64_t batch = 0;    // batch index in that client's own order
  int64_t rows = 0;     // samples in the batch (of each client, in a round)
  bool edge_sync_after = false;  // hand-off (to the next client) or average after this step
};

class ClientStrategy {
 public:
  // `mode`: single | sequential | parallel; `shard_sizes`: training samples of each client.
  ClientStrategy(const std::string& mode, const std::vector<int64_t>& shard_sizes, int64_t batch_size,
                 int sync_every);

  const std::string& mode() const { return mode_; }
  int clients() const { return static_cast<int>(shard_sizes_.size()); }
  const SyncPolicy& sync() const { return sync_; }
  int64_t steps_per_epoch() const { return steps_; }
  StepSpec step(int64_t index) const;

 private:
  std::string mode_;
  std::vector<int64_t> shard_sizes_;
  int64_t batch_size_;
  SyncPolicy sync_;
  int64_t steps_ = 0;
  std::vector<int64_t> first_step_;  // sequential: the first step of each client's turn
};

// Sizes of the `parts` micro-batches a batch of `rows` samples is cut into (at::tensor_split:
// the first rows % parts get one more).
std::vector<int64_t> microbatch_rows(int64_t rows, int parts);

}  // namespace splitpipe
