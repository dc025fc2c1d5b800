// Slow edge links emulated on top of a fast transport (--link). Edge clients are ranks
// 0..E-1, servers E..N-1; client c's link (its own LinkSpec) carries every message between
// client c and a server rank, in the shaped direction(s). Server <-> server and client <->
// client traffic passes through untouched.
//
// Where the delay is applied: the SENDER owns the queue of its outgoing link (it alone knows
// when it handed each message over and what is still queued before it), so at post_send it
// computes the arrival time with a LinkQueue and sends it in-band as a second 8-byte message
// right after the payload, which the receiver posts right after the payload's receive (the
// data plane is FIFO per pair). The RECEIVER's wait() then sleeps until that arrival. So the
// sender never blocks its compute (a NIC transmits asynchronously), its wait() on a send
// completes when the inner transport says so (buffer reuse), and no payload is copied.
//
// Clocks: arrival times are on rank 0's steady clock. The constructor measures every other
// rank's offset to it over the control plane (ping-pong; the round trip with the smallest
// delay wins), so the emulation also holds across nodes whose clocks differ; its error is half
// that round trip (microseconds).
//
// Model limits: payload bytes only (no per-packet header overhead, no loss, no TCP slow start).
// A client's uplink is exact (the client is its only sender); on a downlink each server rank
// queues its own messages, so two server ranks sending to one client at overlapping times do
// not wait for each other (with one server rank, or with GPipe where the last server sends
// activations in the forward phase and the first server gradients in the backward phase,
// this rarely matters).
#pragma once
#include <deque>
#include <vector>

#include "splitpipe/control_plane.hpp"
#include "splitpipe/link.hpp"
#include "splitpipe/ticket_pool.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

class EmulatedLinkTransport final : public Transport {
 public:
  // Collective over `control` (every rank constructs it at the same point): synchronises
  // clocks. `links[c]` is client c's link; `inner` must outlive this object.
  EmulatedLinkTransport(Transport& inner, const ControlPlane& control, const std::vector<LinkSpec>& links);

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  Ticket post_send(int peer, const uint8_t* data, size_t bytes) override;
  Ticket post_recv(int peer, uint8_t* data, size_t bytes) override;
  void wait(Ticket ticket) override;
  bool test(Ticket ticket) override;
  double last_wait_link_seconds() const override { return last_wait_link_seconds_; }

  // Whether messages from `from` to `to` cross an emulated link.
  bool shaped(int from, int to) const;
  // Rank 0's clock minus this rank's (0 on rank 0).
  double clock_offset_seconds() const { return clock_offset_seconds_; }

 private:
  struct Transfer {
    Ticket data = -1;
    Ticket stamp = -1;  // the in-band arrival time; -1 when the message is not shaped
    bool is_recv = false;
    double arrival = 0;  // rank 0's clock; the stamp's send/receive buffer, so it must not move
    double ready_at = -1;  // this rank's clock: when test() first saw the bytes and the stamp in
  };
  int clients() const { return static_cast<int>(links_.size()); }
  LinkQueue& outgoing(int peer);
  void synchronise_clocks(const ControlPlane& control);
  Ticket take_transfer();  // a fresh Transfer
  double due_in_seconds(const Transfer& transfer) const;  // <= 0: the message has arrived

  Transport& inner_;
  std::vector<LinkSpec> links_;
  // This rank's outgoing queues: on a client its uplink (one, shared by every server), on a
  // server one downlink queue per client.
  std::vector<LinkQueue> outgoing_;
  TicketPool<Transfer, std::deque<Transfer>> transfers_;  // a deque: growing it keeps posted stamps in place
  double clock_offset_seconds_ = 0;
  double last_wait_link_seconds_ = 0;
};

}  // namespace splitpipe
