#include "loss_link.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <cstring>
#include <numeric>

#include "boundary_channel.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;

// The result message: loss_sum (the double's bits), correct, samples, then one prediction per sample.
constexpr size_t kResultHeader = 3;

}  // namespace

LossLink::LossLink(Transport& transport, int edge_rank, int loss_rank, double patience_seconds)
    : transport_(transport),
      edge_rank_(edge_rank),
      loss_rank_(loss_rank),
      patience_seconds_(patience_seconds),
      label_buffers_(kMaxMicrobatches),
      label_tickets_(kMaxMicrobatches, -1) {
  if (transport.rank() != edge_rank && transport.rank() != loss_rank)
    throw std::logic_error("LossLink: rank " + std::to_string(transport.rank()) + " is at neither end");
}

int LossLink::peer() const { return transport_.rank() == edge_rank_ ? loss_rank_ : edge_rank_; }

Transport::Ticket LossLink::post_send(std::vector<int64_t>& buffer, RankCounters& counters) {
  const size_t bytes = buffer.size() * sizeof(int64_t);
  counters.label_bytes_sent += static_cast<double>(bytes);
  counters.peer_sent_bytes.at(peer()) += static_cast<double>(bytes);
  return transport_.post_send(peer(), reinterpret_cast<const uint8_t*>(buffer.data()), bytes);
}

void LossLink::wait(Transport::Ticket ticket, const char* what, RankCounters& counters) {
  const auto start = Clock::now();
  try {
    wait_patiently(transport_, ticket, patience_seconds_, peer());
  } catch (const Error& e) {
    throw Error(std::string("waiting for the ") + what + " of the loss stage (rank " + std::to_string(loss_rank_) +
                ", --edge-last 0): " + e.what());
  }
  const double link_wait = transport_.last_wait_link_seconds();
  counters.wait_seconds += std::chrono::duration<double>(Clock::now() - start).count();
  counters.peer_link_wait_seconds.at(peer()) += link_wait;
}

void LossLink::send_labels(const std::vector<at::Tensor>& labels, RankCounters& counters) {
  if (labels.size() > label_buffers_.size()) throw Error("too many micro-batches");
  int64_t rows = 0;
  for (size_t mb = 0; mb < labels.size(); ++mb) {
    const at::Tensor l = labels[mb].to(at::kCPU, at::kLong).contiguous();
    label_buffers_[mb].assign(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
    rows += l.numel();
    pending_sends_.push_back(post_send(label_buffers_[mb], counters));
  }
  result_buffer_.assign(kResultHeader + static_cast<size_t>(rows), 0);
  result_ticket_ = transport_.post_recv(peer(), reinterpret_cast<uint8_t*>(result_buffer_.data()),
                                        result_buffer_.size() * sizeof(int64_t));
}

StepResult LossLink::receive_result(int64_t rows, RankCounters& counters) {
  if (result_ticket_ < 0) throw std::logic_error("LossLink: no result receive was posted");
  if (result_buffer_.size() != kResultHeader + static_cast<size_t>(rows))
    throw std::logic_error("LossLink: the result receive was posted for another batch size");
  const Transport::Ticket ticket = result_ticket_;
  result_ticket_ = -1;
  wait(ticket, "result", counters);
  const double bytes = static_cast<double>(result_buffer_.size() * sizeof(int64_t));
  counters.label_bytes_received += bytes;
  counters.peer_received_bytes.at(peer()) += bytes;
  StepResult result;
  std::memcpy(&result.loss_sum, &result_buffer_[0], sizeof(double));
  result.correct = result_buffer_[1];
  result.samples = result_buffer_[2];
  if (result.samples != rows)
    throw Error("the loss stage (rank " + std::to_string(loss_rank_) + ") reported " + std::to_string(result.samples) +
                " samples for a step of " + std::to_string(rows));
  result.predictions = at::tensor(std::vector<int64_t>(result_buffer_.begin() + kResultHeader, result_buffer_.end()),
                                  at::kLong);
  return result;
}

void LossLink::post_labels(const std::vector<int64_t>& microbatch_rows) {
  if (microbatch_rows.size() > label_buffers_.size()) throw Error("too many micro-batches");
  for (size_t mb = 0; mb < microbatch_rows.size(); ++mb) {
    label_buffers_[mb].resize(static_cast<size_t>(microbatch_rows[mb]));
    label_tickets_[mb] = transport_.post_recv(peer(), reinterpret_cast<uint8_t*>(label_buffers_[mb].data()),
                                              label_buffers_[mb].size() * sizeof(int64_t));
  }
}

at::Tensor LossLink::labels(int microbatch, RankCounters& counters) {
  const Transport::Ticket ticket = label_tickets_.at(microbatch);
  if (ticket < 0) throw std::logic_error("LossLink: labels of micro-batch " + std::to_string(microbatch) + " were never posted");
  label_tickets_[microbatch] = -1;
  wait(ticket, "labels", counters);
  auto& buffer = label_buffers_[microbatch];
  const double bytes = static_cast<double>(buffer.size() * sizeof(int64_t));
  counters.label_bytes_received += bytes;
  counters.peer_received_bytes.at(peer()) += bytes;
  return at::tensor(buffer, at::kLong);
}

void LossLink::send_result(const StepResult& result, RankCounters& counters) {
  const at::Tensor predictions =
      result.predictions.defined() ? result.predictions.to(at::kCPU, at::kLong).contiguous() : at::empty({0}, at::kLong);
  if (predictions.numel() != result.samples) throw std::logic_error("LossLink: one prediction per sample expected");
  result_buffer_.assign(kResultHeader, 0);
  std::memcpy(&result_buffer_[0], &result.loss_sum, sizeof(double));
  result_buffer_[1] = result.correct;
  result_buffer_[2] = result.samples;
  result_buffer_.insert(result_buffer_.end(), predictions.data_ptr<int64_t>(),
                        predictions.data_ptr<int64_t>() + predictions.numel());
  pending_sends_.push_back(post_send(result_buffer_, counters));
}

void LossLink::complete(RankCounters& counters) {
  const auto start = Clock::now();
  try {
    for (const auto ticket : pending_sends_) wait_patiently(transport_, ticket, patience_seconds_, peer());
  } catch (const Error& e) {
    pending_sends_.clear();
    throw Error("sending to the loss stage's rank pair (" + std::to_string(edge_rank_) + ", " +
                std::to_string(loss_rank_) + ", --edge-last 0): " + e.what());
  }
  pending_sends_.clear();
  counters.wait_seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace splitpipe
