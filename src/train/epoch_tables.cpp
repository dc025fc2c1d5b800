#include "epoch_tables.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "splitpipe/run_schema.hpp"

namespace splitpipe {
namespace {

constexpr const char* kDirections[2] = {"act", "grad"};

double sum(const std::vector<std::array<double, 2>>& table, int direction) {
  double total = 0;
  for (const auto& cell : table) total += cell[direction];
  return total;
}

std::vector<double> in_order(const std::map<std::string, double>& values, const std::vector<std::string>& columns) {
  std::vector<double> row;
  for (const auto& column : columns) {
    const auto it = values.find(column);
    if (it == values.end()) throw std::logic_error("run schema column '" + column + "' is not measured");
    row.push_back(it->second);
  }
  return row;
}

double ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

std::vector<std::string> rank_counter_columns() { return schema_columns("/ranks/rank<r>/counters"); }
std::vector<std::string> boundary_traffic_columns() { return schema_columns("/boundaries/traffic"); }

RankEpoch RankEpoch::measure(const RankCounters& train, const RankCounters& after_eval, double epoch_seconds,
                             double eval_seconds, double peak_rss_bytes, const MemoryPeaks& memory) {
  RankEpoch e;
  const double busy = train.forward_seconds + train.backward_seconds + train.encode_seconds + train.decode_seconds;
  double link_wait = 0;
  for (int d = 0; d < 2; ++d) link_wait += sum(train.link_wait_seconds_at, d);
  e.counters = {{"forward_seconds", train.forward_seconds},
                {"backward_seconds", train.backward_seconds},
                {"encode_seconds", train.encode_seconds},
                {"decode_seconds", train.decode_seconds},
                {"comm_wait_seconds", train.wait_seconds},
                {"link_wait_seconds", link_wait},
                {"step_seconds", train.step_seconds},
                {"data_seconds", train.data_seconds},
                {"emulated_compute_seconds", train.emulated_compute_seconds},
                {"eval_seconds", eval_seconds},
                {"idle_seconds",
                 std::max(0.0, epoch_seconds - busy - train.wait_seconds - train.data_seconds - eval_seconds)},
                {"wait_fraction", train.step_seconds > 0 ? train.wait_seconds / train.step_seconds : 0.0},
                {"busy_fraction", train.step_seconds > 0 ? busy / train.step_seconds : 0.0},
                {"epoch_seconds", epoch_seconds},
                {"peak_rss_bytes", peak_rss_bytes},
                {"peak_step_bytes", static_cast<double>(memory.step_bytes)},
                {"microbatch_activation_bytes", static_cast<double>(memory.microbatch_activation_bytes)},
                {"sent_bytes", sum(train.bytes_sent, 0) + sum(train.bytes_sent, 1) + train.label_bytes_sent},
                {"received_bytes",
                 sum(train.bytes_received, 0) + sum(train.bytes_received, 1) + train.label_bytes_received},
                {"label_bytes", train.label_bytes_sent},
                {"eval_label_bytes", after_eval.label_bytes_sent - train.label_bytes_sent}};
  for (size_t b = 0; b < train.bytes_sent.size(); ++b) {
    std::map<std::string, double> cell;
    for (int d = 0; d < 2; ++d) {
      const std::string dir = kDirections[d];
      cell["train_" + dir + "_wire_bytes"] = train.bytes_sent[b][d];
      cell["train_" + dir + "_raw_bytes"] = train.raw_bytes_sent[b][d];
      cell["train_" + dir + "_messages"] = train.messages_sent[b][d];
      cell[dir + "_encode_seconds"] = train.encode_seconds_at[b][d];
      cell[dir + "_decode_seconds"] = train.decode_seconds_at[b][d];
      cell[dir + "_link_wait_seconds"] = train.link_wait_seconds_at[b][d];
      cell[dir + "_error_sum"] = train.error_sum[b][d];
      cell[dir + "_error_samples"] = train.error_samples[b][d];
    }
    // The test pass sends activations only: what it added to the counters after training.
    cell["eval_act_wire_bytes"] = after_eval.bytes_sent[b][0] - train.bytes_sent[b][0];
    cell["eval_act_raw_bytes"] = after_eval.raw_bytes_sent[b][0] - train.raw_bytes_sent[b][0];
    cell["eval_act_messages"] = after_eval.messages_sent[b][0] - train.messages_sent[b][0];
    e.boundary.push_back(std::move(cell));
  }
  return e;
}

std::vector<double> RankEpoch::flatten() const {
  std::vector<double> values;
  for (const auto& [name, value] : counters) values.push_back(value);
  for (const auto& cell : boundary)
    for (const auto& [name, value] : cell) values.push_back(value);
  return values;
}

RankEpoch RankEpoch::unflatten(const std::vector<double>& values) const {
  RankEpoch e = *this;
  size_t i = 0;
  auto fill = [&](std::map<std::string, double>& map) {
    for (auto& [name, value] : map) value = values.at(i++);
  };
  fill(e.counters);
  for (auto& cell : e.boundary) fill(cell);
  if (i != values.size()) throw std::logic_error("a rank sent " + std::to_string(values.size()) + " epoch values, not " +
                                                 std::to_string(i));
  return e;
}

EpochTraffic EpochTraffic::combine(const std::vector<RankEpoch>& ranks) {
  EpochTraffic t;
  const auto counter_columns = rank_counter_columns();
  double busy = 0, step = 0, eval_label_bytes = 0;
  for (const auto& rank : ranks) {
    t.train_label_bytes += rank.counters.at("label_bytes");
    eval_label_bytes += rank.counters.at("eval_label_bytes");
    t.rank_counters.push_back(in_order(rank.counters, counter_columns));
    busy += rank.counters.at("busy_fraction") * rank.counters.at("step_seconds");
    step += rank.counters.at("step_seconds");
  }
  t.bubble_fraction = ranks.size() > 1 && step > 0 ? 1.0 - busy / step : 0.0;

  const size_t boundaries = ranks.empty() ? 0 : ranks[0].boundary.size();
  double act_wire = 0, act_raw = 0, grad_wire = 0, grad_raw = 0;
  for (size_t b = 0; b < boundaries; ++b) {
    std::map<std::string, double> cell;  // summed over the ranks: each counted its own side
    for (const auto& rank : ranks)
      for (const auto& [name, value] : rank.boundary.at(b)) cell[name] += value;
    for (const char* dir : kDirections) {
      const std::string d = dir;
      cell[d + "_rel_error"] = cell[d + "_error_samples"] > 0 ? cell[d + "_error_sum"] / cell[d + "_error_samples"] : 0;
    }
    act_wire += cell["train_act_wire_bytes"];
    act_raw += cell["train_act_raw_bytes"];
    grad_wire += cell["train_grad_wire_bytes"];
    grad_raw += cell["train_grad_raw_bytes"];
    t.eval_wire_bytes += cell["eval_act_wire_bytes"];
    for (double value : in_order(cell, boundary_traffic_columns())) t.boundary_traffic.push_back(value);
  }
  t.train_wire_bytes = act_wire + grad_wire + t.train_label_bytes;
  t.eval_wire_bytes += eval_label_bytes;
  t.train_raw_bytes = act_raw + grad_raw;
  t.act_compression = ratio(act_wire, act_raw);
  t.grad_compression = ratio(grad_wire, grad_raw);
  return t;
}

}  // namespace splitpipe
