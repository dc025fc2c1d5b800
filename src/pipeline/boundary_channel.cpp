#include "boundary_channel.hpp"

#include <chrono>
#include <thread>

#include "splitpipe/control_plane.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Measuring the codec error costs a decode; one message in kErrorSampleEvery is enough.
constexpr int64_t kErrorSampleEvery = 8;

std::string direction(const ChannelEnds& ends) { return ends.gradient ? "gradient" : "activation"; }

}  // namespace

// The polling backs off like the transports' own waits: a short spin, then yields, then short
// sleeps, so a long wait (a slow server, a message held back by an emulated link, which the
// link's own wait would sleep through) does not take the core the other ranks need.
void wait_patiently(Transport& transport, Transport::Ticket ticket, double patience, int peer) {
  if (patience > 0) {
    const auto start = Clock::now();
    for (long polls = 0; !transport.test(ticket) && seconds_since(start) < patience; ++polls) {
      if (polls > 64) std::this_thread::yield();
      if (polls > 4096) std::this_thread::sleep_for(std::chrono::microseconds(100));
      if ((polls & 1023) == 0) check_failure_notices([peer] { return "a message from rank " + std::to_string(peer); });
    }
  }
  transport.wait(ticket);
}

OutboundChannel::OutboundChannel(Transport& transport, const ChannelEnds& ends, const std::string& codec_spec)
    : transport_(transport),
      ends_(ends),
      encoder_(make_codec(codec_spec)),
      checker_(make_codec(codec_spec)),
      buffers_(kMaxMicrobatches) {}

void OutboundChannel::send(int microbatch, const at::Tensor& x, RankCounters& counters) {
  const auto start = Clock::now();
  const at::Tensor host = x.device().is_cpu() ? x : x.to(at::kCPU);
  auto& buffer = buffers_.at(microbatch);
  const size_t bytes = encoder_->encode(host, buffer, microbatch);
  const double encode_seconds = seconds_since(start);
  const int g = ends_.gradient ? 1 : 0;
  counters.encode_seconds += encode_seconds;
  counters.encode_seconds_at.at(ends_.slot)[g] += encode_seconds;
  counters.bytes_sent.at(ends_.slot)[g] += static_cast<double>(bytes);
  counters.raw_bytes_sent.at(ends_.slot)[g] += static_cast<double>(host.numel() * host.element_size());
  counters.messages_sent.at(ends_.slot)[g] += 1;
  counters.peer_sent_bytes.at(ends_.peer) += static_cast<double>(bytes);
  if (encoder_->id() != CodecId::None && sent_ % kErrorSampleEvery == 0) {
    checker_->decode_into(buffer.data(), bytes, checked_);
    const double norm = host.norm().item<double>();
    if (norm > 0) {
      counters.error_sum.at(ends_.slot)[g] += (host - checked_).norm().item<double>() / norm;
      counters.error_samples.at(ends_.slot)[g] += 1;
    }
  }
  ++sent_;
  pending_.push_back(transport_.post_send(ends_.peer, buffer.data(), bytes));
}

void OutboundChannel::complete(RankCounters& counters) {
  const auto start = Clock::now();
  try {
    for (auto ticket : pending_) wait_patiently(transport_, ticket, ends_.patience_seconds, ends_.peer);
  } catch (const Error& e) {
    pending_.clear();
    throw Error("sending the " + direction(ends_) + "s of boundary " + std::to_string(ends_.boundary) + ": " + e.what());
  }
  pending_.clear();
  counters.wait_seconds += seconds_since(start);
}

InboundChannel::InboundChannel(Transport& transport, const ChannelEnds& ends, const std::string& codec_spec,
                               std::vector<int64_t> sample_shape)
    : transport_(transport),
      ends_(ends),
      decoder_(make_codec(codec_spec)),
      buffers_(kMaxMicrobatches),
      decoded_(kMaxMicrobatches),
      bytes_(kMaxMicrobatches, 0),
      tickets_(kMaxMicrobatches, -1) {
  shape_.push_back(0);
  shape_.insert(shape_.end(), sample_shape.begin(), sample_shape.end());
}

void InboundChannel::post(int microbatch, int64_t rows) {
  shape_[0] = rows;
  const size_t bytes = decoder_->encoded_bytes(shape_);
  auto& buffer = buffers_.at(microbatch);
  if (buffer.size() < bytes) buffer.resize(bytes);  // grows once; reused every step after
  bytes_[microbatch] = bytes;
  tickets_[microbatch] = transport_.post_recv(ends_.peer, buffer.data(), bytes);
}

at::Tensor InboundChannel::receive(int microbatch, RankCounters& counters) {
  if (tickets_.at(microbatch) < 0)
    throw std::logic_error("receive of micro-batch " + std::to_string(microbatch) + " was never posted");
  auto start = Clock::now();
  try {
    wait_patiently(transport_, tickets_[microbatch], ends_.patience_seconds, ends_.peer);
  } catch (const Error& e) {
    tickets_[microbatch] = -1;
    throw Error("waiting for the " + direction(ends_) + " of boundary " + std::to_string(ends_.boundary) +
                ", micro-batch " + std::to_string(microbatch) + ": " + e.what());
  }
  tickets_[microbatch] = -1;
  const size_t bytes = bytes_[microbatch];
  const int g = ends_.gradient ? 1 : 0;
  const double link_wait = transport_.last_wait_link_seconds();
  counters.wait_seconds += seconds_since(start);
  counters.link_wait_seconds_at.at(ends_.slot)[g] += link_wait;
  counters.peer_link_wait_seconds.at(ends_.peer) += link_wait;
  counters.bytes_received.at(ends_.slot)[g] += static_cast<double>(bytes);
  counters.peer_received_bytes.at(ends_.peer) += static_cast<double>(bytes);
  start = Clock::now();
  try {
    decoder_->decode_into(buffers_[microbatch].data(), bytes, decoded_[microbatch]);
  } catch (const Error& e) {
    throw Error("boundary " + std::to_string(ends_.boundary) + " " + direction(ends_) + " from rank " +
                std::to_string(ends_.peer) + ", micro-batch " + std::to_string(microbatch) + ": " + e.what());
  }
  const double decode_seconds = seconds_since(start);
  counters.decode_seconds += decode_seconds;
  counters.decode_seconds_at.at(ends_.slot)[g] += decode_seconds;
  // A handle of its own for the caller (who may make it require grad); the channel's handle
  // keeps the storage for the next message once the caller and autograd have let go of it.
  return decoded_[microbatch].detach();
}

}  // namespace splitpipe
