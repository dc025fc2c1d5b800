// The MPI world of a run: initialisation (RAII), the transport over MPI_COMM_WORLD, and the
// few collectives the trainer needs. Every collective error check is "agree_on": all ranks
// learn whether any rank failed and with which message, so all exit with the same error.
#pragma once
#include <mpi.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "splitpipe/transport.hpp"

namespace splitpipe {

// This process's rank among the ranks the launcher started on its node (Open MPI's mpirun or
// Slurm's srun say it in the environment); 0 when started alone.
int node_local_rank();

// Throws Error("<what>: <MPI's error text>") unless code is MPI_SUCCESS.
void check_mpi(int code, const std::string& what);

// MPI_Init_thread in the constructor, MPI_Finalize in the destructor.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

class MpiTransport final : public Transport {
 public:
  // With owns_comm the transport frees `comm` when it is destroyed (sub-communicators).
  explicit MpiTransport(MPI_Comm comm = MPI_COMM_WORLD, bool owns_comm = false);
  ~MpiTransport() override;  // cancels whatever is still posted
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Ticket post_send(int peer, int tag, const uint8_t* data, size_t bytes) override;
  Ticket post_recv(int peer, int tag, uint8_t* data, size_t capacity) override;
  size_t wait(Ticket ticket) override;

  MPI_Comm comm() const { return comm_; }

  // --- collectives ---
  // Every rank calls it; if any rank passes an error, every rank throws Error with the message
  // of the lowest failing rank (prefixed with its rank when it is not 0).
  void agree_on(const std::optional<std::string>& local_error, int exit_code = 1) const;
  void broadcast(std::string& text, int root = 0) const;
  void broadcast(std::vector<int64_t>& values, int root = 0) const;
  // Gathers `values` (same length on every rank) to root: result[rank][i] on root, empty elsewhere.
  std::vector<std::vector<double>> gather(const std::vector<double>& values, int root = 0) const;
  std::vector<std::string> gather_strings(const std::string& text, int root = 0) const;
  void barrier() const;
  // Element-wise maximum over ranks (flags every rank must agree on, once per step).
  std::vector<int> max_over_ranks(const std::vector<int>& values) const;
  // Element-wise sum over ranks, in place.
  void sum_in_place(std::vector<float>& values) const;

  // Collective over this transport: a transport over `members` (ranks of this one; rank i of
  // the new one is members[i]) with its own communicator and this timeout, or null on a rank
  // that is not a member.
  std::unique_ptr<MpiTransport> subgroup(const std::vector<int>& members) const;

  // A whole message of any size to `peer` (blocking), and its receipt (polling with a short
  // sleep, since the wait may last a whole turn of another client and the core is shared).
  // For control messages outside the pipeline's posted buffers, e.g. a state hand-off.
  void send_message(int peer, int tag, const std::string& bytes) const;
  std::string receive_message(int peer, int tag) const;

  // Ends every rank of the job with `code` (MPI_Abort): for an error found on some ranks only.
  [[noreturn]] void abort(int code) const;

  // Every wait (point-to-point or collective) gives up after this many seconds without
  // completing, with an Error naming the peer (0: wait forever).
  void set_timeout(double seconds) { timeout_seconds_ = seconds; }

 private:
  struct Slot {
    MPI_Request request = MPI_REQUEST_NULL;
    int peer = -1, tag = -1;
    size_t capacity = 0;
    bool is_recv = false;
  };
  Ticket take_slot(int peer, int tag, size_t capacity, bool is_recv);
  void complete(MPI_Request& request, MPI_Status* status, const std::function<std::string()>& what) const;
  void finish_collective(MPI_Request& request, const char* name) const;

  MPI_Comm comm_;
  bool owns_comm_ = false;
  int rank_ = 0, size_ = 1;
  double timeout_seconds_ = 0;
  std::vector<Slot> slots_;
  std::vector<Ticket> free_;
};

}  // namespace splitpipe
