// One direction of one pipeline boundary, as seen from one rank: the codec, the buffers that
// are reused every step (one per micro-batch), and the pending transfers. Messages carry no
// tag: the executor posts receives in the order the peer sends (the data plane is FIFO per
// pair) and sizes each one exactly from the micro-batch's rows and the codec.
// `boundary` (between stages b and b+1 of the schedule) names the channel in errors; `slot` is
// the row of the RankCounters tables it adds to: the boundary within its pipeline, so with
// several edge clients a server sums the clients' traffic per boundary of the model.
#pragma once
#include <memory>
#include <vector>

#include "splitpipe/codec.hpp"
#include "splitpipe/pipeline.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

constexpr int kMaxMicrobatches = 256;

struct ChannelEnds {
  int peer = -1;      // rank at the other end
  int boundary = 0;   // global boundary index (stages boundary, boundary+1)
  int slot = 0;       // boundary within its pipeline: the counters' row
  bool gradient = false;
  // Seconds to wait before the transport's own timeout starts (see PipelineOptions).
  double patience_seconds = 0;
};

// Polls `ticket` (a message to or from `peer`) for `patience` seconds, then waits for it with
// the transport's timeout.
void wait_patiently(Transport& transport, Transport::Ticket ticket, double patience, int peer);

class OutboundChannel {
 public:
  OutboundChannel(Transport& transport, const ChannelEnds& ends, const std::string& codec_spec);
  // Encodes x into this micro-batch's buffer and posts the send.
  void send(int microbatch, const at::Tensor& x, RankCounters& counters);
  // Waits until every posted send has completed, so the buffers may be reused.
  void complete(RankCounters& counters);

 private:
  Transport& transport_;
  ChannelEnds ends_;
  std::unique_ptr<Codec> encoder_, checker_;  // checker_ decodes sampled messages to measure the error
  std::vector<std::vector<uint8_t>> buffers_;
  at::Tensor checked_;  // checker_'s output, reused
  std::vector<Transport::Ticket> pending_;
  int64_t sent_ = 0;
};

class InboundChannel {
 public:
  // `sample_shape`: one sample's tensor at this boundary (the sending block's output shape).
  InboundChannel(Transport& transport, const ChannelEnds& ends, const std::string& codec_spec,
                 std::vector<int64_t> sample_shape);
  // Posts the receive of this micro-batch (of `rows` samples) ahead of time.
  void post(int microbatch, int64_t rows);
  // Waits for the micro-batch's message and decodes it.
  at::Tensor receive(int microbatch, RankCounters& counters);

 private:
  Transport& transport_;
  ChannelEnds ends_;
  std::unique_ptr<Codec> decoder_;
  std::vector<int64_t> shape_;  // [rows, sample_shape...]; rows set per message
  std::vector<std::vector<uint8_t>> buffers_;
  // Decoded micro-batches: their storage is decoded into again once nothing else holds it
  // (Codec::decode_into), so a steady pipeline writes into warm pages.
  std::vector<at::Tensor> decoded_;
  std::vector<size_t> bytes_;
  std::vector<Transport::Ticket> tickets_;
};

}  // namespace splitpipe
