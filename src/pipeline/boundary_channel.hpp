// One direction of one pipeline boundary, as seen from one rank: the codec, the buffers that
// are reused every step (one per micro-batch), and the pending transfers.
// `boundary` (between stages b and b+1 of the schedule) makes the tags unique; `slot` is the
// row of the RankCounters tables it adds to: the boundary within its pipeline, so with several
// edge clients a server sums the clients' traffic per boundary of the model.
#pragma once
#include <memory>
#include <vector>

#include "splitpipe/codec.hpp"
#include "splitpipe/pipeline.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

// A unique MPI tag per (boundary, direction, micro-batch): messages never match the wrong receive.
int message_tag(int boundary, bool gradient, int microbatch);
constexpr int kMaxMicrobatches = 256;

class OutboundChannel {
 public:
  OutboundChannel(Transport& transport, int peer, int boundary, int slot, bool gradient, const std::string& codec_spec);
  // Encodes x into this micro-batch's buffer and posts the send.
  void send(int microbatch, const at::Tensor& x, RankCounters& counters);
  // Waits until every posted send has completed, so the buffers may be reused.
  void complete(RankCounters& counters);

 private:
  Transport& transport_;
  int peer_, boundary_, slot_;
  bool gradient_;
  std::unique_ptr<Codec> encoder_, checker_;  // checker_ decodes sampled messages to measure the error
  std::vector<std::vector<uint8_t>> buffers_;
  std::vector<Transport::Ticket> pending_;
  int64_t sent_ = 0;
};

class InboundChannel {
 public:
  InboundChannel(Transport& transport, int peer, int boundary, int slot, bool gradient, const std::string& codec_spec,
                 size_t capacity);
  // Posts the receive for this micro-batch ahead of time.
  void post(int microbatch);
  // Waits for the micro-batch's message and decodes it.
  at::Tensor receive(int microbatch, RankCounters& counters);

 private:
  Transport& transport_;
  int peer_, boundary_, slot_;
  bool gradient_;
  std::unique_ptr<Codec> decoder_;
  size_t capacity_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::vector<Transport::Ticket> tickets_;
};

}  // namespace splitpipe
