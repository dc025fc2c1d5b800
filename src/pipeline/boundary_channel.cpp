#include "boundary_channel.hpp"

#include <chrono>

#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Measuring the codec error costs a decode; one message in kErrorSampleEvery is enough.
constexpr int64_t kErrorSampleEvery = 8;

}  // namespace

int message_tag(int boundary, bool gradient, int microbatch) {
  return (boundary * 2 + (gradient ? 1 : 0)) * kMaxMicrobatches + microbatch;
}

OutboundChannel::OutboundChannel(Transport& transport, int peer, int boundary, int slot, bool gradient,
                                 const std::string& codec_spec)
    : transport_(transport),
      peer_(peer),
      boundary_(boundary),
      slot_(slot),
      gradient_(gradient),
      encoder_(make_codec(codec_spec)),
      checker_(make_codec(codec_spec)),
      buffers_(kMaxMicrobatches) {}

void OutboundChannel::send(int microbatch, const at::Tensor& x, RankCounters& counters) {
  const auto start = Clock::now();
  const at::Tensor host = x.device().is_cpu() ? x : x.to(at::kCPU);
  auto& buffer = buffers_.at(microbatch);
  const size_t bytes = encoder_->encode(host, buffer, microbatch);
  const double encode_seconds = seconds_since(start);
  counters.encode_seconds += encode_seconds;
  counters.encode_seconds_at.at(slot_)[gradient_] += encode_seconds;

  auto& slot = counters.bytes_sent.at(slot_)[gradient_];
  slot += static_cast<double>(bytes);
  counters.raw_bytes_sent.at(slot_)[gradient_] += static_cast<double>(host.numel() * host.element_size());
  counters.messages_sent.at(slot_)[gradient_] += 1;
  if (encoder_->id() != CodecId::None && sent_ % kErrorSampleEvery == 0) {
    const at::Tensor decoded = checker_->decode(buffer.data(), bytes);
    const double norm = host.norm().item<double>();
    if (norm > 0) {
      counters.error_sum.at(slot_)[gradient_] += (host - decoded).norm().item<double>() / norm;
      counters.error_samples.at(slot_)[gradient_] += 1;
    }
  }
  ++sent_;
  pending_.push_back(transport_.post_send(peer_, message_tag(boundary_, gradient_, microbatch), buffer.data(), bytes));
}

void OutboundChannel::complete(RankCounters& counters) {
  const auto start = Clock::now();
  for (auto ticket : pending_) transport_.wait(ticket);
  pending_.clear();
  counters.wait_seconds += seconds_since(start);
}

InboundChannel::InboundChannel(Transport& transport, int peer, int boundary, int slot, bool gradient,
                               const std::string& codec_spec, size_t capacity)
    : transport_(transport),
      peer_(peer),
      boundary_(boundary),
      slot_(slot),
      gradient_(gradient),
      decoder_(make_codec(codec_spec)),
      capacity_(capacity),
      buffers_(kMaxMicrobatches),
      tickets_(kMaxMicrobatches, -1) {}

void InboundChannel::post(int microbatch) {
  auto& buffer = buffers_.at(microbatch);
  if (buffer.size() < capacity_) buffer.resize(capacity_);  // once; reused every step after
  tickets_[microbatch] =
      transport_.post_recv(peer_, message_tag(boundary_, gradient_, microbatch), buffer.data(), capacity_);
}

at::Tensor InboundChannel::receive(int microbatch, RankCounters& counters) {
  if (tickets_.at(microbatch) < 0)
    throw std::logic_error("receive of micro-batch " + std::to_string(microbatch) + " was never posted");
  auto start = Clock::now();
  size_t bytes = 0;
  try {
    bytes = transport_.wait(tickets_[microbatch]);
  } catch (const Error& e) {
    throw Error(std::string("waiting for the ") + (gradient_ ? "gradient" : "activation") + " of boundary " +
                std::to_string(boundary_) + ", micro-batch " + std::to_string(microbatch) + ": " + e.what());
  }
  tickets_[microbatch] = -1;
  counters.wait_seconds += seconds_since(start);
  counters.link_wait_seconds_at.at(slot_)[gradient_] += transport_.last_wait_link_seconds();
  counters.bytes_received.at(slot_)[gradient_] += static_cast<double>(bytes);
  start = Clock::now();
  at::Tensor x;
  try {
    x = decoder_->decode(buffers_[microbatch].data(), bytes);
  } catch (const Error& e) {
    throw Error(std::string("boundary ") + std::to_string(boundary_) + (gradient_ ? " gradient" : " activation") +
                " from rank " + std::to_string(peer_) + ", micro-batch " + std::to_string(microbatch) + ": " + e.what());
  }
  const double decode_seconds = seconds_since(start);
  counters.decode_seconds += decode_seconds;
  counters.decode_seconds_at.at(slot_)[gradient_] += decode_seconds;
  return x;
}

}  // namespace splitpipe
