#include <stdexcept>

#include "splitpipe/pipeline.hpp"

namespace splitpipe {
namespace {

// Visits every counter in one fixed order, so values() and add() agree on the layout.
template <typename Counters, typename Visit>
void each_counter(Counters& c, Visit&& visit) {
  for (auto* scalar : {&c.forward_seconds, &c.backward_seconds, &c.encode_seconds, &c.decode_seconds, &c.wait_seconds,
                       &c.step_seconds, &c.data_seconds, &c.label_bytes_sent, &c.label_bytes_received,
                       &c.emulated_compute_seconds})
    visit(*scalar);
  for (auto* table : {&c.bytes_sent, &c.bytes_received, &c.raw_bytes_sent, &c.messages_sent, &c.error_sum,
                      &c.error_samples, &c.encode_seconds_at, &c.decode_seconds_at, &c.link_wait_seconds_at})
    for (auto& cell : *table) {
      visit(cell[0]);
      visit(cell[1]);
    }
  for (auto* table : {&c.peer_sent_bytes, &c.peer_received_bytes, &c.peer_link_wait_seconds})
    for (auto& cell : *table) visit(cell);
}

}  // namespace

void RankCounters::reset() {
  each_counter(*this, [](double& value) { value = 0; });
}

std::vector<double> RankCounters::values() const {
  std::vector<double> out;
  each_counter(*this, [&](const double& value) { out.push_back(value); });
  return out;
}

void RankCounters::add(const std::vector<double>& values) {
  size_t i = 0;
  const size_t expected = this->values().size();
  if (values.size() != expected)
    throw std::invalid_argument("RankCounters::add: " + std::to_string(values.size()) + " values for " +
                                std::to_string(expected) + " counters");
  each_counter(*this, [&](double& value) { value += values[i++]; });
}

}  // namespace splitpipe
