// A slow edge link emulated on top of a fast transport (--link). Only messages between the
// edge (rank 0) and a server rank, in the shaped direction(s), are delayed; server <-> server
// traffic passes through untouched.
//
// Where the delay is applied: the SENDER owns the queue of its outgoing link (it alone knows
// when it handed each message over and what is still queued before it), so at post_send it
// computes the arrival time with a LinkQueue and sends it in-band as a second 8-byte message on
// the same (peer, tag), which the receiver matches in order (MPI's non-overtaking rule). The
// RECEIVER's wait() then sleeps until that arrival. So the sender never blocks its compute (a
// NIC transmits asynchronously), its wait() on a send completes when the inner transport says
// so (buffer reuse), and no payload is copied.
//
// Clocks: arrival times are on the edge's steady clock. The constructor measures each server's
// offset to it (ping-pong, the round trip with the smallest delay wins), so the emulation also
// holds across nodes whose clocks differ; its error is half that round trip (microseconds).
//
// Model limits: payload bytes only (no per-packet header overhead, no loss, no TCP slow start).
// The uplink is exact (the edge is its only sender); on the downlink each server rank queues
// its own messages, so two server ranks sending to the edge at overlapping times do not wait
// for each other (with one server rank, or with GPipe where the last server sends activations
// in the forward phase and the first server gradients in the backward phase, this rarely matters).
#pragma once
#include <deque>
#include <vector>

#include "splitpipe/link.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

class EmulatedLinkTransport final : public Transport {
 public:
  // Collective over `inner` (every rank constructs it at the same point): synchronises clocks.
  // `inner` must outlive this object and match messages of one (peer, tag) in posting order.
  EmulatedLinkTransport(Transport& inner, const LinkSpec& spec);

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  Ticket post_send(int peer, int tag, const uint8_t* data, size_t bytes) override;
  Ticket post_recv(int peer, int tag, uint8_t* data, size_t capacity) override;
  size_t wait(Ticket ticket) override;
  double last_wait_link_seconds() const override { return last_wait_link_seconds_; }

  bool shaped(int from, int to) const;
  // The edge's clock minus this rank's (0 on the edge).
  double clock_offset_seconds() const { return clock_offset_seconds_; }

 private:
  struct Transfer {
    Ticket data = -1;
    Ticket stamp = -1;  // the in-band arrival time; -1 when the message is not shaped
    bool is_recv = false;
    double arrival = 0;  // edge clock; the stamp's send/receive buffer, so it must not move
  };
  void synchronise_clocks();
  Ticket take_transfer();

  Transport& inner_;
  LinkSpec spec_;
  LinkQueue outgoing_;  // this rank's shaped outgoing direction: the edge's uplink or a server's downlink
  std::deque<Transfer> transfers_;  // a deque: growing it keeps the posted stamps in place
  std::vector<Ticket> free_;
  double clock_offset_seconds_ = 0;
  double last_wait_link_seconds_ = 0;
};

}  // namespace splitpipe
