#include "splitpipe/pipeline.hpp"

namespace splitpipe {

void RankCounters::reset() {
  forward_seconds = backward_seconds = encode_seconds = decode_seconds = wait_seconds = step_seconds = 0;
  for (auto* table : {&bytes_sent, &bytes_received, &raw_bytes_sent, &messages_sent, &error_sum, &error_samples,
                      &encode_seconds_at, &decode_seconds_at, &link_wait_seconds_at})
    for (auto& cell : *table) cell = {0.0, 0.0};
  for (auto* table : {&peer_sent_bytes, &peer_received_bytes, &peer_link_wait_seconds})
    for (auto& cell : *table) cell = 0.0;
}

std::vector<std::pair<std::string, double>> RankCounters::row() const {
  std::vector<std::pair<std::string, double>> row{{"forward_seconds", forward_seconds},
                                                  {"backward_seconds", backward_seconds},
                                                  {"encode_seconds", encode_seconds},
                                                  {"decode_seconds", decode_seconds},
                                                  {"comm_wait_seconds", wait_seconds},
                                                  {"step_seconds", step_seconds}};
  for (size_t b = 0; b < bytes_sent.size(); ++b)
    for (int g = 0; g < 2; ++g) {
      const std::string prefix = "boundary" + std::to_string(b) + (g ? "_grad_" : "_act_");
      row.emplace_back(prefix + "sent_bytes", bytes_sent[b][g]);
      row.emplace_back(prefix + "received_bytes", bytes_received[b][g]);
      row.emplace_back(prefix + "raw_bytes", raw_bytes_sent[b][g]);
      row.emplace_back(prefix + "messages", messages_sent[b][g]);
      row.emplace_back(prefix + "encode_seconds", encode_seconds_at[b][g]);
      row.emplace_back(prefix + "decode_seconds", decode_seconds_at[b][g]);
      row.emplace_back(prefix + "link_wait_seconds", link_wait_seconds_at[b][g]);
      row.emplace_back(prefix + "rel_error", error_samples[b][g] > 0 ? error_sum[b][g] / error_samples[b][g] : 0.0);
    }
  return row;
}

}  // namespace splitpipe
