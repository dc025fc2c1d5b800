// The data plane: point-to-point messages between two ranks, of a size both ends know.
//
// Contract (what lets MPI and NCCL implement it alike):
//   - Messages from one rank to another are matched in the order they are posted, on both
//     sides (FIFO per ordered pair). There are no tags and no probes: a receiver posts its
//     receives from a peer in the order that peer sends.
//   - A receive is posted with the exact byte count of the message (the pipeline computes it
//     from the micro-batch's shape and the codec); a mismatch is an error.
//   - Transfers are non-blocking: post, then wait (or test) on the ticket. Buffers stay alive
//     and unchanged until then. Tickets index a pool owned by the transport, so steady state
//     allocates nothing.
//   - wait() gives up after the transport's timeout with an Error naming the peer.
// Agreement, averaging and barriers belong to the control plane (control_plane.hpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace splitpipe {

class Transport {
 public:
  using Ticket = int;
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Buffers are host memory; a backend that also takes device memory says so (nccl).
  virtual Ticket post_send(int peer, const uint8_t* data, size_t bytes) = 0;
  virtual Ticket post_recv(int peer, uint8_t* data, size_t bytes) = 0;
  // Blocks until the transfer completes; the ticket is free again afterwards.
  virtual void wait(Ticket ticket) = 0;
  // Whether the transfer has completed (wait() then returns at once). Never blocks.
  virtual bool test(Ticket ticket) = 0;
  // Of the last wait(): the seconds it was held back by an emulated link after the transfer
  // itself had completed (0 for a real transport), so callers can log the link's share.
  virtual double last_wait_link_seconds() const { return 0; }
};

}  // namespace splitpipe
