// The planner: which cut, schedule, micro-batch count and codecs train fastest, predicted from
// measured costs before anything runs. Every candidate plan becomes a schedule
// (build_schedule) that the simulator runs with the plan's costs: each stage's forward and
// backward, and each boundary message's encode, time on the wire and decode as steps of their
// own (simulate with ActionCosts). Candidates that break a constraint (codec error, memory per
// rank) are dropped; the rest are ranked by predicted samples/s.
//
// The costs are a CostTable: measured on the machines (per block and per sample, on the edge's
// and on a server's hardware; per codec on the boundary's own activations; the link), or made
// up by hand, which is how the tests check the search against optima known in advance.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace splitpipe {

// Seconds of one micro-batch through one block.
struct ComputeSeconds {
  double forward = 0, backward = 0;
};

// One block. Compute per sample scales with a micro-batch's rows, unless the micro-batch size
// was measured itself (small micro-batches cost more per sample).
struct BlockCost {
  std::string name;
  double edge_forward_seconds = 0, edge_backward_seconds = 0;      // per sample, on the edge's hardware
  double server_forward_seconds = 0, server_backward_seconds = 0;  // per sample, on a server's
  double output_bytes = 0;  // float32 bytes of its output per sample: the boundary after it
  std::map<int64_t, ComputeSeconds> edge_at_rows, server_at_rows;  // measured, by micro-batch rows
};

// One codec as measured on the boundaries' activations and gradients.
struct CodecCost {
  std::string spec;
  double encode_seconds_per_byte = 0;  // per float32 byte in
  double decode_seconds_per_byte = 0;
  double wire_ratio = 1;  // wire bytes / float32 bytes
  // Relative error ||x - decoded|| / ||x|| at the boundary after block b ([b]); missing: 0.
  std::vector<double> activation_error, gradient_error;
};

struct LinkCost {
  double bytes_per_second = 0;  // 0: unlimited
  double latency_seconds = 0;   // per message
};

struct CostTable {
  std::vector<BlockCost> blocks;
  std::vector<CodecCost> codecs;  // the first is the reference (normally `none`)
  LinkCost link;                  // between the edge and a server (--link, else measured)
  LinkCost server_link;           // between servers (--link shapes edge links only)
  double edge_compute_scale = 1;  // the edge's compute, emulated slower (--edge-compute-scale)
  int64_t batch_size = 64;
  int servers = 1;  // server ranks; ranks = servers + 1
};

// What may vary; an empty list means every value the table allows (schedules: gpipe, 1f1b;
// chunks: 1, 2, 4, 8; codecs: every codec of the table).
struct PlanSpace {
  std::vector<int> edge_first, edge_last, chunks;
  std::vector<std::string> schedules, fwd_codecs, bwd_codecs;
};

struct PlanConstraints {
  double max_activation_error = 1;  // per boundary, of the forward codec
  double max_gradient_error = 1;    // of the backward codec
  double max_rank_bytes = 0;        // activations a rank holds at once; 0: no ceiling
};

struct Plan {
  int edge_first = 1, edge_last = 1;
  std::vector<int> server_cuts;  // first block of servers 2.. (empty with one server)
  std::string schedule = "gpipe";
  int chunks = 1;
  std::string fwd_codec = "none", bwd_codec = "none";
};

struct PlanPrediction {
  Plan plan;
  double step_seconds = 0;         // one mini-batch
  double samples_per_second = 0;   // batch_size / step_seconds
  double wire_bytes_per_sample = 0;  // both directions, every boundary
  double bubble_fraction = 0;
  std::vector<double> busy_seconds;  // per rank, per mini-batch
  std::vector<double> held_bytes;    // per rank: activations of the micro-batches in flight
};

// The candidates that meet the constraints, fastest first (ties: fewer wire bytes). Throws
// UsageError saying which constraint excluded every candidate when none is left.
std::vector<PlanPrediction> rank_plans(const CostTable& costs, const PlanSpace& space,
                                       const PlanConstraints& constraints);

// The prediction for one plan (no constraints applied). Throws UsageError for a plan the
// table cannot hold (a cut outside the model, an unknown codec).
PlanPrediction predict(const CostTable& costs, const Plan& plan);

// A table of the first `top` predictions: plan, samples/s, wire bytes per sample, bubble,
// busy seconds per rank.
std::string format_plans(const std::vector<PlanPrediction>& predictions, size_t top);

}  // namespace splitpipe
