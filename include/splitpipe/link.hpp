// The emulated edge link (--link): its parsed spec and the arithmetic of one direction of a
// link. Pure arithmetic, no MPI: the transport decorator (emulated_link.hpp) applies it.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace splitpipe {

struct LinkSpec {
  double bits_per_second = 0;  // > 0; payload bits (protocol headers are not modelled)
  double latency_seconds = 0;  // one-way propagation delay, >= 0
  bool shape_up = true;        // edge client -> server ranks
  bool shape_down = true;      // server ranks -> edge client

  // "10 Mbit/s, latency 5 ms, both directions": for the setup line and error messages.
  std::string describe() const;
};

// Parses "bandwidth=B[,latency=T][,direction=both|up|down]".
//   B: a number with a unit of bits per second, decimal: bit, kbit, Mbit, Gbit (the prefix
//      letter in either case), optionally written "Mbit/s" or "Mbps". "bps" means BITS per
//      second here, as in networking usage (tc would read it as bytes); byte units (MB, MBps,
//      MB/s) are refused as ambiguous.
//   T: a number with us, ms or s (a bare 0 is accepted); default 0.
//   direction: both (default), up = edge -> server only, down = server -> edge only.
// Throws UsageError("--link: ...") naming the bad part.
LinkSpec parse_link_spec(const std::string& text);

// --link for E edge clients: one spec for every client's link, or E specs separated by ';'
// (client 0's first), e.g. "bandwidth=10Mbit;bandwidth=100Mbit;bandwidth=1Gbit". Returns E links.
std::vector<LinkSpec> parse_link_list(const std::string& text, int clients);

// One direction of a link as a FIFO, like a NIC's transmit queue: a message starts to
// serialise when it is handed over or when the previous message has left, whichever is later,
// takes bytes * 8 / bandwidth to leave, and arrives one latency after its last bit left.
// Latency does not occupy the link (bits in flight are pipelined).
class LinkQueue {
 public:
  LinkQueue(double bits_per_second, double latency_seconds)
      : seconds_per_byte_(8.0 / bits_per_second), latency_seconds_(latency_seconds) {}

  // Enqueues a message of `bytes` handed over at `now` (seconds on any one clock); returns
  // the time it arrives on the same clock.
  double send(double now, size_t bytes) {
    const double start = std::max(now, free_at_);
    free_at_ = start + static_cast<double>(bytes) * seconds_per_byte_;
    return free_at_ + latency_seconds_;
  }
  // When the last message queued so far has left (the link is idle from then on).
  double free_at() const { return free_at_; }

 private:
  double seconds_per_byte_, latency_seconds_;
  double free_at_ = 0;
};

}  // namespace splitpipe
