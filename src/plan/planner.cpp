#include "splitpipe/planner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "splitpipe/error.hpp"
#include "splitpipe/linear_partition.hpp"
#include "splitpipe/schedule.hpp"

namespace splitpipe {
namespace {

const CodecCost& codec_named(const CostTable& costs, const std::string& spec) {
  for (const auto& codec : costs.codecs)
    if (codec.spec == spec) return codec;
  throw UsageError("planner: codec '" + spec + "' was not measured");
}

double error_at(const std::vector<double>& errors, int boundary) {
  return boundary >= 0 && boundary < static_cast<int>(errors.size()) ? errors[boundary] : 0.0;
}

// The stages of a plan as block ranges, in pipeline order, with the rank of each: the edge's
// first blocks (rank 0), each server's (ranks 1..), the edge's last blocks (rank 0) when
// edge_last > 0 (else the last server holds the head and the loss).
struct Layout {
  std::vector<std::pair<int, int>> blocks;  // [first, end) per stage
  std::vector<int> rank;
};

Layout layout_of(const CostTable& costs, const Plan& plan) {
  const int n = static_cast<int>(costs.blocks.size());
  const int middle_begin = plan.edge_first, middle_end = n - plan.edge_last;
  if (plan.edge_first < 1 || plan.edge_last < 0 || middle_end - middle_begin < costs.servers)
    throw UsageError("planner: edge-first " + std::to_string(plan.edge_first) + " and edge-last " +
                     std::to_string(plan.edge_last) + " leave " + std::to_string(middle_end - middle_begin) +
                     " block(s) of " + std::to_string(n) + " for " + std::to_string(costs.servers) + " server(s)");
  if (static_cast<int>(plan.server_cuts.size()) != costs.servers - 1)
    throw UsageError("planner: " + std::to_string(plan.server_cuts.size()) + " server cut(s) for " +
                     std::to_string(costs.servers) + " servers");
  Layout layout;
  layout.blocks.emplace_back(0, middle_begin);
  layout.rank.push_back(0);
  int begin = middle_begin;
  for (int s = 0; s < costs.servers; ++s) {
    const int end = s + 1 < costs.servers ? plan.server_cuts[s] : middle_end;
    if (end <= begin || end > middle_end) throw UsageError("planner: server cuts must rise inside the middle blocks");
    layout.blocks.emplace_back(begin, end);
    layout.rank.push_back(s + 1);
    begin = end;
  }
  if (plan.edge_last > 0) {
    layout.blocks.emplace_back(middle_end, n);
    layout.rank.push_back(0);
  }
  return layout;
}

// Server cuts that balance the servers' compute: the contiguous split of the middle blocks
// whose slowest server is fastest.
std::vector<int> balanced_server_cuts(const CostTable& costs, int middle_begin, int middle_end) {
  if (costs.servers == 1) return {};
  std::vector<double> seconds;
  for (int b = middle_begin; b < middle_end; ++b)
    seconds.push_back(costs.blocks[b].server_forward_seconds + costs.blocks[b].server_backward_seconds);
  std::vector<int> cuts;
  const std::vector<int> starts = balanced_cuts(seconds, costs.servers);
  for (size_t s = 1; s < starts.size(); ++s) cuts.push_back(middle_begin + starts[s]);
  return cuts;
}

// One micro-batch of `rows` samples through the block, on the edge's or a server's hardware:
// measured at that size when it was, else per sample x rows.
ComputeSeconds micro_batch_seconds(const BlockCost& block, bool edge, double rows) {
  const auto& measured = edge ? block.edge_at_rows : block.server_at_rows;
  const auto it = measured.find(static_cast<int64_t>(std::ceil(rows)));
  if (it != measured.end()) return it->second;
  return edge ? ComputeSeconds{block.edge_forward_seconds * rows, block.edge_backward_seconds * rows}
              : ComputeSeconds{block.server_forward_seconds * rows, block.server_backward_seconds * rows};
}

int in_flight(const std::string& schedule, int chunks, int stage, int stages) {
  return schedule == "1f1b" ? std::min(chunks, stages - stage) : chunks;
}

std::string describe(const Plan& plan) {
  std::string cuts;
  for (int cut : plan.server_cuts) cuts += (cuts.empty() ? "" : ",") + std::to_string(cut);
  return "edge " + std::to_string(plan.edge_first) + "+" + std::to_string(plan.edge_last) +
         (cuts.empty() ? "" : " servers@" + cuts) + " " + plan.schedule + " x" + std::to_string(plan.chunks) +
         " fwd " + plan.fwd_codec + " bwd " + plan.bwd_codec;
}

std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

template <typename T>
std::vector<T> or_default(const std::vector<T>& given, std::vector<T> fallback) {
  return given.empty() ? fallback : given;
}

}  // namespace

PlanPrediction predict(const CostTable& costs, const Plan& plan) {
  const Layout layout = layout_of(costs, plan);
  const CodecCost& fwd = codec_named(costs, plan.fwd_codec);
  const CodecCost& bwd = codec_named(costs, plan.bwd_codec);
  if (plan.chunks < 1) throw UsageError("planner: chunks must be >= 1");
  const int stages = static_cast<int>(layout.blocks.size());
  const double rows = static_cast<double>(costs.batch_size) / plan.chunks;

  ActionCosts action_costs;
  std::vector<double> activation_bytes(stages, 0.0);  // per sample, kept by each stage for backward
  for (int s = 0; s < stages; ++s) {
    const bool edge = layout.rank[s] == 0;
    const double scale = edge ? costs.edge_compute_scale : 1.0;
    double forward = 0, backward = 0;
    for (int b = layout.blocks[s].first; b < layout.blocks[s].second; ++b) {
      const ComputeSeconds seconds = micro_batch_seconds(costs.blocks[b], edge, rows);
      forward += seconds.forward;
      backward += seconds.backward;
      activation_bytes[s] += costs.blocks[b].output_bytes;
    }
    action_costs.forward.push_back(forward * scale);
    action_costs.backward.push_back(backward * scale);
  }
  double wire_bytes = 0;  // per mini-batch
  for (int s = 0; s + 1 < stages; ++s) {
    const double raw = costs.blocks[layout.blocks[s].second - 1].output_bytes * rows;
    std::array<double, 2> encode{raw * fwd.encode_seconds_per_byte, raw * bwd.encode_seconds_per_byte};
    std::array<double, 2> decode{raw * fwd.decode_seconds_per_byte, raw * bwd.decode_seconds_per_byte};
    std::array<double, 2> wire{};
    const LinkCost& link = layout.rank[s] == 0 || layout.rank[s + 1] == 0 ? costs.link : costs.server_link;
    for (int d = 0; d < 2; ++d) {
      const double bytes = raw * (d == 0 ? fwd.wire_ratio : bwd.wire_ratio);
      wire[d] = link.latency_seconds + (link.bytes_per_second > 0 ? bytes / link.bytes_per_second : 0.0);
      wire_bytes += bytes * plan.chunks;
    }
    action_costs.encode.push_back(encode);
    action_costs.decode.push_back(decode);
    action_costs.wire.push_back(wire);
  }
  const Schedule schedule = build_schedule(plan.schedule, layout.rank, plan.chunks, /*forward_only=*/false);
  const SimulationResult simulated = simulate(schedule, action_costs);

  PlanPrediction prediction;
  prediction.plan = plan;
  prediction.step_seconds = simulated.makespan;
  prediction.samples_per_second = simulated.makespan > 0 ? costs.batch_size / simulated.makespan : 0.0;
  prediction.wire_bytes_per_sample = wire_bytes / static_cast<double>(costs.batch_size);
  prediction.bubble_fraction = simulated.bubble_fraction;
  prediction.busy_seconds = simulated.busy;
  prediction.held_bytes.assign(costs.servers + 1, 0.0);
  for (int s = 0; s < stages; ++s)
    prediction.held_bytes[layout.rank[s]] += in_flight(plan.schedule, plan.chunks, s, stages) * rows * activation_bytes[s];
  return prediction;
}

std::vector<PlanPrediction> rank_plans(const CostTable& costs, const PlanSpace& space,
                                       const PlanConstraints& constraints) {
  const int n = static_cast<int>(costs.blocks.size());
  if (costs.codecs.empty()) throw UsageError("planner: no codec was measured");
  std::vector<int> all_first, all_last;
  for (int k = 1; k <= n; ++k) all_first.push_back(k);
  for (int m = 0; m < n; ++m) all_last.push_back(m);
  std::vector<std::string> all_codecs;
  for (const auto& codec : costs.codecs) all_codecs.push_back(codec.spec);
  const auto firsts = or_default(space.edge_first, all_first), lasts = or_default(space.edge_last, all_last);
  const auto chunk_counts = or_default(space.chunks, {1, 2, 4, 8});
  const auto schedules = or_default(space.schedules, {"gpipe", "1f1b"});
  const auto fwd_codecs = or_default(space.fwd_codecs, all_codecs), bwd_codecs = or_default(space.bwd_codecs, all_codecs);

  std::vector<PlanPrediction> kept;
  int64_t candidates = 0;
  std::map<std::string, int64_t> excluded;  // reason -> candidates
  for (int k : firsts)
    for (int m : lasts) {
      if (n - k - m < costs.servers) continue;  // no room for the servers
      Plan plan;
      plan.edge_first = k;
      plan.edge_last = m;
      plan.server_cuts = balanced_server_cuts(costs, k, n - m);
      const Layout layout = layout_of(costs, plan);
      for (const auto& fwd : fwd_codecs)
        for (const auto& bwd : bwd_codecs) {
          // A cut's codec error is a property of its boundaries, whatever schedule carries it.
          double worst_activation = 0, worst_gradient = 0;
          for (size_t s = 0; s + 1 < layout.blocks.size(); ++s) {
            const int boundary = layout.blocks[s].second - 1;
            worst_activation = std::max(worst_activation, error_at(codec_named(costs, fwd).activation_error, boundary));
            worst_gradient = std::max(worst_gradient, error_at(codec_named(costs, bwd).gradient_error, boundary));
          }
          for (const auto& schedule : schedules)
            for (int chunks : chunk_counts) {
              if (chunks > costs.batch_size) continue;
              ++candidates;
              plan.fwd_codec = fwd;
              plan.bwd_codec = bwd;
              plan.schedule = schedule;
              plan.chunks = chunks;
              if (worst_activation > constraints.max_activation_error) {
                ++excluded["activation error above " + number(constraints.max_activation_error)];
                continue;
              }
              if (worst_gradient > constraints.max_gradient_error) {
                ++excluded["gradient error above " + number(constraints.max_gradient_error)];
                continue;
              }
              PlanPrediction prediction = predict(costs, plan);
              if (constraints.max_rank_bytes > 0 &&
                  *std::max_element(prediction.held_bytes.begin(), prediction.held_bytes.end()) >
                      constraints.max_rank_bytes) {
                ++excluded["memory per rank above " + std::to_string(static_cast<int64_t>(constraints.max_rank_bytes)) +
                           " bytes"];
                continue;
              }
              kept.push_back(std::move(prediction));
            }
        }
    }
  if (kept.empty()) {
    std::string why;
    for (const auto& [reason, count] : excluded)
      why += (why.empty() ? "" : ", ") + std::to_string(count) + " for " + reason;
    throw UsageError("planner: none of " + std::to_string(candidates) + " candidate plans meets the constraints" +
                     (why.empty() ? std::string(" (no candidate fits the model)") : " (" + why + ")") +
                     "; allow more codecs or relax --max-rel-error / the memory ceiling");
  }
  std::stable_sort(kept.begin(), kept.end(), [](const PlanPrediction& a, const PlanPrediction& b) {
    if (a.step_seconds != b.step_seconds) return a.step_seconds < b.step_seconds;
    return a.wire_bytes_per_sample < b.wire_bytes_per_sample;
  });
  return kept;
}

std::string format_plans(const std::vector<PlanPrediction>& predictions, size_t top) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-4s %-60s %10s %12s %7s  %s\n", "#", "plan", "samples/s", "wire B/smp",
                "bubble", "busy s per rank");
  out << line;
  for (size_t i = 0; i < std::min(top, predictions.size()); ++i) {
    const PlanPrediction& p = predictions[i];
    std::string busy;
    for (double b : p.busy_seconds) {
      char cell[32];
      std::snprintf(cell, sizeof(cell), "%s%.4f", busy.empty() ? "" : " ", b);
      busy += cell;
    }
    std::snprintf(line, sizeof(line), "%-4zu %-60s %10.1f %12.0f %6.1f%%  %s\n", i + 1, describe(p.plan).c_str(),
                  p.samples_per_second, p.wire_bytes_per_sample, 100 * p.bubble_fraction, busy.c_str());
    out << line;
  }
  return out.str();
}

}  // namespace splitpipe
