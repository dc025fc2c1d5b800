// The control plane: what the ranks of a run agree on, outside the pipeline's data path.
// Errors found on some ranks, setup broadcasts, metrics gathered to rank 0, the per-step
// flags every rank must share, the averaging of edge weights, and whole-state hand-offs.
// Every wait gives up after the timeout with an Error naming the peer or the collective, so no
// rank waits forever for one that died.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace splitpipe {

// Thrown out of a wait on the rank that watches for failure notices (rank 0, which owns the run
// file) when another rank announced a failure: "rank R: <its message>".
class PeerFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every wait loop calls this now and then, with what it waits for: on a rank that watches for
// failure notices it throws PeerFailure once another rank has announced one; and the first
// time it sees a SIGTERM it calls the hook given to on_sigterm_while_waiting.
void check_failure_notices(const std::function<std::string()>& waiting_for = {});

// mpirun ends every rank with SIGTERM, then SIGKILL a moment later, when one rank dies: rank 0
// records what it was waiting for (naming the rank) while it still can. A stop that completes
// (Slurm's SIGTERM before a time limit) records its own status over it.
void on_sigterm_while_waiting(std::function<void(const std::string& waiting_for)> hook);

class ControlPlane {
 public:
  virtual ~ControlPlane() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Every rank calls it; if any rank passes an error, every rank throws CollectiveError with
  // the message of the lowest failing rank (prefixed with its rank when it is not 0).
  virtual void agree_on(const std::optional<std::string>& local_error, int exit_code = 1) const = 0;
  virtual void broadcast(std::string& text, int root = 0) const = 0;
  virtual void broadcast(std::vector<int64_t>& values, int root = 0) const = 0;
  // Gathers `values` (same length on every rank) to root: result[rank][i] on root, empty elsewhere.
  virtual std::vector<std::vector<double>> gather(const std::vector<double>& values, int root = 0) const = 0;
  virtual std::vector<std::string> gather_strings(const std::string& text, int root = 0) const = 0;
  virtual void barrier() const = 0;
  // Element-wise maximum over ranks (flags every rank must agree on, once per step).
  virtual std::vector<int> max_over_ranks(const std::vector<int>& values) const = 0;
  // Element-wise sum over ranks, in place.
  virtual void sum_in_place(std::vector<float>& values) const = 0;

  // Collective: a control plane over `members` (ranks of this one; rank i of the new one is
  // members[i]) with this one's timeout, or null on a rank that is not a member.
  virtual std::unique_ptr<ControlPlane> subgroup(const std::vector<int>& members) const = 0;

  // A whole message of any size to `peer`, and its receipt, for state hand-offs and setup
  // (e.g. a NCCL bootstrap id). `what` names it in errors, with the peer.
  virtual void send_bytes(int peer, const std::string& bytes, const std::string& what) const = 0;
  virtual std::string receive_bytes(int peer, const std::string& what) const = 0;

  // For an error found on some ranks only: tells the others this rank is failing (and rank 0
  // why, so it can record it), and says whether it should report the error: not when another
  // rank announced a failure first (or, announcing at the same time, has the lower rank). So a
  // failure that several ranks notice (a hung peer they all wait for) ends the job with one
  // message.
  virtual bool announce_failure(const std::string& message) = 0;
  // Ends every rank of the job with `code`.
  [[noreturn]] virtual void abort(int code) const = 0;

  // Every wait gives up after this many seconds without completing (0: wait forever).
  virtual void set_timeout(double seconds) = 0;
  virtual double timeout() const = 0;
};

}  // namespace splitpipe
