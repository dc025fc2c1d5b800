// A pipeline schedule is data: for every rank, the ordered list of actions it performs for
// one mini-batch. It can be printed, checked for matching sends/receives and deadlock, and
// simulated without MPI; the executor (src/train) then runs it with one small loop.
//
// Stages are numbered along the data path: stage 0 is the edge's first blocks, stages
// 1..S-2 the servers, stage S-1 the edge's last blocks (with the loss). The edge rank owns
// two stages, so its actions interleave.
//
// Several edge clients (--client-mode parallel) make one schedule of several independent
// pipelines of S stages each: stage c*S + s is stage s of client c's pipeline, data flows only
// between consecutive stages of one pipeline, and a server rank owns stage s of every pipeline
// (the same weights), so its program interleaves the clients' micro-batches.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "splitpipe/error.hpp"

namespace splitpipe {

class ScheduleError : public Error {
 public:
  explicit ScheduleError(const std::string& message) : Error("invalid schedule: " + message) {}
};

enum class ActionType {
  Forward,
  Backward,
  RecvActivation,  // input of `stage` from stage-1 (on peer)
  SendActivation,  // output of `stage` to stage+1 (on peer)
  RecvGradient,    // gradient of `stage`'s output from stage+1 (on peer)
  SendGradient,    // gradient of `stage`'s input to stage-1 (on peer)
};

struct Action {
  ActionType type;
  int stage;
  int microbatch;
  int peer = -1;  // rank at the other end of a send/receive

  bool operator==(const Action& other) const {
    return type == other.type && stage == other.stage && microbatch == other.microbatch && peer == other.peer;
  }
};

struct Schedule {
  std::string kind;  // gpipe | 1f1b | forward (evaluation)
  int num_microbatches = 0;
  bool forward_only = false;
  std::vector<int> stage_rank;                // stage -> owning rank
  std::vector<std::vector<Action>> programs;  // rank -> actions in order
  int stages_per_pipeline = 0;                // 0: one pipeline of all stages

  int num_stages() const { return static_cast<int>(stage_rank.size()); }
  int num_ranks() const { return static_cast<int>(programs.size()); }
  int pipeline_length() const { return stages_per_pipeline > 0 ? stages_per_pipeline : num_stages(); }
  int num_pipelines() const { return num_stages() / pipeline_length(); }
  // Whether data flows into stage s from s-1 / out of stage s to s+1 (same pipeline).
  bool has_previous(int s) const { return s % pipeline_length() != 0; }
  bool has_next(int s) const { return (s + 1) % pipeline_length() != 0 && s + 1 < num_stages(); }
};

// Compute order of each stage on its own (the classic GPipe / 1F1B orders).
struct StageOrder {
  int stage;
  std::vector<Action> computes;  // Forward/Backward only
};
using StageOrderFn = std::vector<StageOrder> (*)(int num_stages, int microbatches, bool forward_only);

std::vector<StageOrder> gpipe_order(int num_stages, int microbatches, bool forward_only);
std::vector<StageOrder> one_f_one_b_order(int num_stages, int microbatches, bool forward_only);

// Names of registered schedules (gpipe, 1f1b) and a lookup; unknown names throw UsageError.
std::vector<std::string> schedule_names();
StageOrderFn stage_order_for(const std::string& kind);

// Builds the per-rank programs: stages sharing a rank are interleaved in the order a
// list-scheduling simulation runs them (forward cost 1, backward 2), then sends and receives
// are inserted where data crosses ranks. The result is checked before it is returned.
// stages_per_pipeline > 0 splits stage_rank into independent pipelines of that length.
Schedule build_schedule(const std::string& kind, const std::vector<int>& stage_rank, int microbatches,
                        bool forward_only, int stages_per_pipeline = 0);

// The schedule of pipeline `pipeline` alone of a multi-pipeline stage layout (one client's turn
// in --client-mode sequential, or evaluation by client 0): stage numbers stay those of the
// full layout, and every rank of the layout has a program (empty when it takes no part).
Schedule build_pipeline_schedule(const std::string& kind, const std::vector<int>& stage_rank, int stages_per_pipeline,
                                 int pipeline, int microbatches, bool forward_only);

// Throws ScheduleError (a splitpipe::Error) describing the first problem: a compute missing
// or repeated, a dependency out of order, a send without its receive, or a deadlock (which
// rank waits for what).
void check_schedule(const Schedule& schedule);

struct SimulationResult {
  double makespan = 0;                // time units for one mini-batch
  std::vector<double> busy;           // per rank
  double bubble_fraction = 0;         // 1 - sum(busy) / (ranks * makespan)
  double analytic_gpipe_bubble = 0;   // (p-1)/(m+p-1), p = stages of one pipeline
};
// Runs the schedule in simulated time (sends are asynchronous, receives block), with the given
// costs of one micro-batch's forward/backward per stage. Throws ScheduleError on deadlock.
SimulationResult simulate(const Schedule& schedule, double forward_cost = 1.0, double backward_cost = 2.0);

// Measured costs of one micro-batch's actions, for predictions (the planner): compute per
// stage, and per boundary b (between stages b and b+1) and direction d (0: activations, 1:
// gradients) the sender's encode, the message's time on the wire and the receiver's decode.
// The messages of one boundary and direction cross its link one after another. Missing
// boundary entries cost nothing.
struct ActionCosts {
  std::vector<double> forward, backward;                    // per stage
  std::vector<std::array<double, 2>> encode, wire, decode;  // per boundary
};
// The same simulation with these costs; encode and decode keep their rank busy, the wire does
// not. busy[r] counts compute, encode and decode.
SimulationResult simulate(const Schedule& schedule, const ActionCosts& costs);

std::string to_string(const Action& action);
// One line per rank: its actions in order, e.g. "rank 0: F0.0 S0.0>1 ...".
std::string format_schedule(const Schedule& schedule);

}  // namespace splitpipe
