// Point-to-point byte transport between ranks. Transfers are non-blocking: post, then wait on
// the ticket. Tickets index a pool owned by the transport, so steady state allocates nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace splitpipe {

class Transport {
 public:
  using Ticket = int;
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The buffer must stay alive and unchanged until wait() returns.
  virtual Ticket post_send(int peer, int tag, const uint8_t* data, size_t bytes) = 0;
  virtual Ticket post_recv(int peer, int tag, uint8_t* data, size_t capacity) = 0;
  // Blocks until the transfer completes; returns the bytes transferred. Throws Error on failure
  // (e.g. a message larger than the posted capacity), naming the peer and the tag.
  virtual size_t wait(Ticket ticket) = 0;
  // Of the last wait(): the seconds it was held back by an emulated link after the transfer
  // itself had completed (0 for a real transport), so callers can log the link's share.
  virtual double last_wait_link_seconds() const { return 0; }
};

}  // namespace splitpipe
