// The MPI world of a run: initialisation (RAII), the control plane over a communicator and the
// MPI data-plane transport. The only place besides src/transport/*.cpp that names MPI.
#pragma once
#include <mpi.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "splitpipe/control_plane.hpp"
#include "splitpipe/ticket_pool.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

// This process's rank among the ranks the launcher started on its node (Open MPI's mpirun or
// Slurm's srun say it in the environment); 0 when started alone.
int node_local_rank();

// MPI_Init_thread in the constructor, MPI_Finalize in the destructor.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// Collectives are non-blocking calls polled to completion, so each one times out.
class MpiControlPlane final : public ControlPlane {
 public:
  // With owns_comm the control plane frees `comm` when it is destroyed (sub-communicators).
  explicit MpiControlPlane(MPI_Comm comm = MPI_COMM_WORLD, bool owns_comm = false);
  ~MpiControlPlane() override;
  MpiControlPlane(const MpiControlPlane&) = delete;
  MpiControlPlane& operator=(const MpiControlPlane&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void agree_on(const std::optional<std::string>& local_error, int exit_code = 1) const override;
  void broadcast(std::string& text, int root = 0) const override;
  void broadcast(std::vector<int64_t>& values, int root = 0) const override;
  std::vector<std::vector<double>> gather(const std::vector<double>& values, int root = 0) const override;
  std::vector<std::string> gather_strings(const std::string& text, int root = 0) const override;
  void barrier() const override;
  std::vector<int> max_over_ranks(const std::vector<int>& values) const override;
  void sum_in_place(std::vector<float>& values) const override;
  std::unique_ptr<ControlPlane> subgroup(const std::vector<int>& members) const override;
  void send_bytes(int peer, const std::string& bytes, const std::string& what) const override;
  std::string receive_bytes(int peer, const std::string& what) const override;
  bool announce_failure(const std::string& message) override;
  // From now on check_failure_notices() throws PeerFailure on this rank when another rank of
  // this communicator announces a failure (main() calls it on rank 0).
  void watch_failure_notices();
  [[noreturn]] void abort(int code) const override;
  void set_timeout(double seconds) override { timeout_seconds_ = seconds; }
  double timeout() const override { return timeout_seconds_; }

  MPI_Comm comm() const { return comm_; }

 private:
  void finish(MPI_Request& request, const std::function<std::string()>& what) const;
  bool notice_arrived();
  std::string notice_text();
  friend void check_failure_notices(const std::function<std::string()>& waiting_for);

  MPI_Comm comm_;
  bool owns_comm_ = false;
  int rank_ = 0, size_ = 1;
  double timeout_seconds_ = 0;
  // A failure notice from another rank, received at any time (posted at construction).
  MPI_Request notice_ = MPI_REQUEST_NULL;
  int notice_from_ = -1;
  bool noticed_ = false;  // a notice arrived (the request is not posted again)
  std::string announced_text_;          // the failure message being sent to rank 0
  std::vector<MPI_Request> announced_;  // this rank's notices (the job is ending when they exist)
};

// The data plane over MPI: its own duplicate of the control plane's communicator and one tag,
// so MPI's non-overtaking rule gives the FIFO order per pair the contract promises.
class MpiTransport final : public Transport {
 public:
  explicit MpiTransport(const MpiControlPlane& control);
  ~MpiTransport() override;  // cancels whatever is still posted
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Ticket post_send(int peer, const uint8_t* data, size_t bytes) override;
  Ticket post_recv(int peer, uint8_t* data, size_t bytes) override;
  void wait(Ticket ticket) override;
  bool test(Ticket ticket) override;

 private:
  struct Slot {
    MPI_Request request = MPI_REQUEST_NULL;
    int peer = -1;
    size_t bytes = 0;
    bool is_recv = false;
    bool done = false;  // completed by test()
  };
  Ticket take_slot(int peer, size_t bytes, bool is_recv);
  std::string describe(const Slot& slot) const;
  void check_received(const Slot& slot, const MPI_Status& status) const;
  void release(Ticket ticket);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  double timeout_seconds_ = 0;
  TicketPool<Slot> slots_;
};

}  // namespace splitpipe
