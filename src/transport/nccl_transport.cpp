// The NCCL data plane (--transport nccl): the messages of transport.hpp between GPUs, one GPU
// per rank (the one PipelineExecutor computes on: node_local_rank() % visible GPUs).
//
// One communicator per ordered pair (from, to) of the links, carrying from->to traffic only,
// with a stream of its own. A NCCL send or receive holds its stream until the peer's half
// arrives, and NCCL matches a communicator's operations in launch order: with one shared
// communicator per peer, a receive posted before a send would hold that send back while the
// peer, doing the same, waits for it. One communicator per direction makes NCCL's order the
// FIFO order of the contract, and lets the two directions progress independently. They are
// created over the control plane (the sender makes the NCCL id and sends it to the receiver),
// pair by pair in the one order every rank shares: the lowest pair not yet created always has
// both its ranks ready, so no rank waits in ncclCommInitRank for a peer that waits elsewhere.
//
// Device memory goes to NCCL as is. Host memory (what the pipeline sends today) goes through a
// device staging buffer per ticket, grown when too small and otherwise reused: copied in before
// the send, copied out once the receive is seen complete. Those copies run on a stream of their
// own: a copy to or from pageable memory may block the host until its stream is idle, and on a
// pair's stream that could mean waiting for a later message the peer has not sent yet.
//
// Compiled and link-checked where no GPU is present, and there only the refusal runs; the rest
// is yet to run on GPUs.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "backends.hpp"
#include "mpi_common.hpp"  // format_seconds
#include "splitpipe/error.hpp"
#include "splitpipe/mpi_world.hpp"  // node_local_rank()
#include "splitpipe/ticket_pool.hpp"

namespace splitpipe {
namespace {

std::string nccl_text(ncclResult_t code) {
  const char* detail = ncclGetLastError(nullptr);  // which peer, socket or device, when NCCL knows
  return std::string(ncclGetErrorString(code)) + (detail && *detail ? std::string(" (") + detail + ")" : "");
}

void check_cuda(cudaError_t code, const std::string& what) {
  if (code != cudaSuccess) throw Error(what + ": " + cudaGetErrorString(code));
}

void check_nccl(ncclResult_t code, const std::string& what) {
  if (code != ncclSuccess) throw Error(what + ": " + nccl_text(code));
}

struct StreamDestroy {
  void operator()(cudaStream_t stream) const { cudaStreamDestroy(stream); }
};
struct EventDestroy {
  void operator()(cudaEvent_t event) const { cudaEventDestroy(event); }
};
// ncclCommDestroy first waits for the communicator's pending work, which after an error may
// never finish; ncclCommAbort stops it. So a communicator is aborted unless the transport ends
// cleanly.
struct CommClose {
  bool destroy = false;
  void operator()(ncclComm_t comm) const { destroy ? ncclCommDestroy(comm) : ncclCommAbort(comm); }
};
// Stream-ordered, on the copy stream: a plain cudaFree waits for the whole device, including
// receives that wait for a peer.
struct DeviceFree {
  cudaStream_t stream = nullptr;
  void operator()(uint8_t* data) const { cudaFreeAsync(data, stream); }
};
using Stream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDestroy>;
using Event = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDestroy>;
using Comm = std::unique_ptr<std::remove_pointer_t<ncclComm_t>, CommClose>;
using DeviceBuffer = std::unique_ptr<uint8_t, DeviceFree>;

Stream make_stream() {
  cudaStream_t stream = nullptr;
  // Non-blocking: the legacy default stream, where LibTorch computes, must not wait for a
  // receive, nor a receive for LibTorch.
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  return Stream(stream);
}

// One direction of one pair: rank 0 of its communicator sends, rank 1 receives.
struct Link {
  int peer = -1;
  bool receives = false;
  bool failed = false;  // aborted: nothing more goes through it
  Stream stream;
  Comm comm;
  std::string describe() const {
    return std::string(receives ? "NCCL receive from" : "NCCL send to") + " rank " + std::to_string(peer);
  }
};

// The steady state builds no strings: the link describes itself only on failure.
void check_cuda(cudaError_t code, const Link& link, const char* call) {
  if (code != cudaSuccess) check_cuda(code, link.describe() + ": " + call);
}
void check_nccl(ncclResult_t code, const Link& link, const char* call) {
  if (code != ncclSuccess) check_nccl(code, link.describe() + ": " + call);
}

struct Slot {
  Link* link = nullptr;
  uint8_t* host_out = nullptr;  // a staged receive: copied here once complete
  size_t bytes = 0;
  bool complete = false;
  Event event;  // created with the slot, recorded after each operation
  DeviceBuffer staging;
  size_t staging_capacity = 0;
};

class NcclTransport final : public Transport {
 public:
  NcclTransport(const ControlPlane& control, const TransportLinks& links, int device);
  ~NcclTransport() override;
  NcclTransport(const NcclTransport&) = delete;
  NcclTransport& operator=(const NcclTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Ticket post_send(int peer, const uint8_t* data, size_t bytes) override;
  Ticket post_recv(int peer, uint8_t* data, size_t bytes) override;
  void wait(Ticket ticket) override;
  bool test(Ticket ticket) override;

 private:
  Link& link(const std::vector<Link*>& by_peer, int from, int to) const;
  Ticket post(Link& link, uint8_t* data, size_t bytes);
  bool on_device(const void* data) const;
  void reserve_staging(Slot& slot, size_t bytes);
  [[noreturn]] void give_up(Link& link, const std::string& message);

  int rank_, size_, device_;
  double timeout_;
  int uncaught_at_start_ = std::uncaught_exceptions();
  Stream copy_stream_;
  TicketPool<Slot> slots_;
  std::vector<Link> links_;
  std::vector<Link*> send_links_, recv_links_;  // by peer
};

NcclTransport::NcclTransport(const ControlPlane& control, const TransportLinks& links, int device)
    : rank_(control.rank()), size_(control.size()), device_(device), timeout_(control.timeout()),
      send_links_(size_, nullptr), recv_links_(size_, nullptr) {
  check_cuda(cudaSetDevice(device_), "cudaSetDevice(" + std::to_string(device_) + ")");
  copy_stream_ = make_stream();
  links_.reserve(links.size());
  std::set<std::pair<int, int>> seen;
  for (const auto& [from, to] : links) {
    if (from < 0 || to < 0 || from >= size_ || to >= size_ || from == to)
      throw std::logic_error("NCCL transport: no link " + std::to_string(from) + " -> " + std::to_string(to) +
                             " among " + std::to_string(size_) + " ranks");
    if (!seen.insert({from, to}).second || (rank_ != from && rank_ != to)) continue;
    const bool sender = rank_ == from;
    const std::string what = "the link rank " + std::to_string(from) + " -> rank " + std::to_string(to);
    ncclUniqueId id{};
    if (sender) {
      const ncclResult_t made = ncclGetUniqueId(&id);
      // An empty message tells the receiver, which would otherwise wait for an id that never comes.
      control.send_bytes(to, made == ncclSuccess ? std::string(id.internal, sizeof id.internal) : std::string(),
                         "NCCL id of " + what);
      check_nccl(made, "ncclGetUniqueId for " + what);
    } else {
      const std::string bytes = control.receive_bytes(from, "NCCL id of " + what);
      if (bytes.size() != sizeof id.internal)
        throw Error("NCCL id of " + what + ": rank " + std::to_string(from) + " could not make it (see its error)");
      std::memcpy(id.internal, bytes.data(), bytes.size());
    }
    Link& link = links_.emplace_back();
    link.peer = sender ? to : from;
    link.receives = !sender;
    link.stream = make_stream();
    ncclComm_t comm = nullptr;
    check_nccl(ncclCommInitRank(&comm, 2, id, sender ? 0 : 1), "ncclCommInitRank for " + what);
    link.comm.reset(comm);
  }
  for (Link& link : links_) (link.receives ? recv_links_ : send_links_)[link.peer] = &link;
}

NcclTransport::~NcclTransport() {
  cudaSetDevice(device_);
  const bool unwinding = std::uncaught_exceptions() > uncaught_at_start_;
  for (Link& link : links_) link.comm.get_deleter().destroy = !unwinding && !link.failed;
  slots_.for_each([](Slot& slot, bool in_use) {
    if (in_use && !slot.complete) slot.link->comm.get_deleter().destroy = false;
  });
  // Communicators first, so that nothing of theirs still runs when the staging buffers go.
  for (Link& link : links_) link.comm.reset();
}

Link& NcclTransport::link(const std::vector<Link*>& by_peer, int from, int to) const {
  const int peer = from == rank_ ? to : from;
  if (peer < 0 || peer >= size_ || !by_peer[peer])
    throw std::logic_error("NCCL transport: rank " + std::to_string(from) + " -> rank " + std::to_string(to) +
                           " is not among the links it was made with");
  return *by_peer[peer];
}

Transport::Ticket NcclTransport::post_send(int peer, const uint8_t* data, size_t bytes) {
  // The cast is never written through: sends and receives share the staging code.
  return post(link(send_links_, rank_, peer), const_cast<uint8_t*>(data), bytes);
}

Transport::Ticket NcclTransport::post_recv(int peer, uint8_t* data, size_t bytes) {
  return post(link(recv_links_, peer, rank_), data, bytes);
}

Transport::Ticket NcclTransport::post(Link& link, uint8_t* data, size_t bytes) {
  if (link.failed) throw Error(link.describe() + ": the link was aborted after an earlier error");
  check_cuda(cudaSetDevice(device_), link, "cudaSetDevice");  // the caller's thread may have another
  const bool direct = on_device(data);
  bool fresh = false;
  const Ticket ticket = slots_.take(&fresh);
  if (fresh) {  // a new slot gets its event (on failure the slot stays out of the pool)
    cudaEvent_t event = nullptr;
    check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), link, "cudaEventCreateWithFlags");
    slots_[ticket].event.reset(event);
  }
  // From here a failure leaves the ticket out of the pool for good: NCCL may still hold its buffer.
  Slot& slot = slots_[ticket];
  slot.link = &link;
  slot.bytes = bytes;
  slot.host_out = nullptr;
  // Both ends know the size: an empty message needs no NCCL operation on either side.
  slot.complete = bytes == 0;
  if (slot.complete) return ticket;
  cudaStream_t stream = link.stream.get();
  void* device_data = data;
  if (direct) {
    // LibTorch fills (or still reads) device buffers on the legacy default stream, which a
    // non-blocking stream does not wait for by itself.
    check_cuda(cudaEventRecord(slot.event.get(), cudaStreamLegacy), link, "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream, slot.event.get(), 0), link, "cudaStreamWaitEvent");
  } else {
    reserve_staging(slot, bytes);
    device_data = slot.staging.get();
    if (link.receives) {
      slot.host_out = data;
    } else {
      check_cuda(cudaMemcpyAsync(device_data, data, bytes, cudaMemcpyDefault, copy_stream_.get()), link,
                 "staging copy to the GPU");
      check_cuda(cudaStreamSynchronize(copy_stream_.get()), link, "staging copy to the GPU");
    }
  }
  check_nccl(ncclGroupStart(), link, "ncclGroupStart");
  const ncclResult_t launched = link.receives ? ncclRecv(device_data, bytes, ncclUint8, 0, link.comm.get(), stream)
                                              : ncclSend(device_data, bytes, ncclUint8, 1, link.comm.get(), stream);
  const ncclResult_t ended = ncclGroupEnd();  // also after a failed launch: the group must close
  check_nccl(launched, link, link.receives ? "ncclRecv" : "ncclSend");
  check_nccl(ended, link, "ncclGroupEnd");
  check_cuda(cudaEventRecord(slot.event.get(), stream), link, "cudaEventRecord");
  return ticket;
}

// Memory of this rank's GPU goes to NCCL as is; anything else (pageable or pinned host memory,
// managed memory) is staged.
bool NcclTransport::on_device(const void* data) const {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, data) != cudaSuccess) {
    cudaGetLastError();  // not sticky: only says the runtime never saw this pointer
    return false;
  }
  if (attributes.type != cudaMemoryTypeDevice) return false;
  if (attributes.device != device_)
    throw Error("NCCL transport: a buffer on GPU " + std::to_string(attributes.device) +
                ", but this rank's links are on GPU " + std::to_string(device_));
  return true;
}

void NcclTransport::reserve_staging(Slot& slot, size_t bytes) {
  if (bytes <= slot.staging_capacity) return;
  slot.staging.reset();  // its last operation is complete: the ticket was free
  slot.staging_capacity = 0;
  void* data = nullptr;
  const std::string what = "cudaMallocAsync of a " + std::to_string(bytes) + "-byte staging buffer";
  check_cuda(cudaMallocAsync(&data, bytes, copy_stream_.get()), what);
  slot.staging = DeviceBuffer(static_cast<uint8_t*>(data), DeviceFree{copy_stream_.get()});
  slot.staging_capacity = bytes;
  // Allocated in the copy stream's order, but used on a link's stream too.
  check_cuda(cudaStreamSynchronize(copy_stream_.get()), what);
}

bool NcclTransport::test(Ticket ticket) {
  Slot& slot = slots_[ticket];
  if (slot.complete) return true;
  const Link& link = *slot.link;
  if (link.failed) throw Error(link.describe() + ": the link was aborted after an earlier error");
  const cudaError_t state = cudaEventQuery(slot.event.get());
  if (state == cudaErrorNotReady) return false;
  check_cuda(state, link, "cudaEventQuery");
  if (slot.host_out) {
    check_cuda(cudaMemcpyAsync(slot.host_out, slot.staging.get(), slot.bytes, cudaMemcpyDefault, copy_stream_.get()),
               link, "staging copy from the GPU");
    check_cuda(cudaStreamSynchronize(copy_stream_.get()), link, "staging copy from the GPU");
  }
  slot.complete = true;
  return true;
}

// Polls instead of cudaEventSynchronize so that a peer that died or hangs becomes an error
// naming it, and so that NCCL's asynchronous errors (a broken connection) are seen at all.
void NcclTransport::wait(Ticket ticket) {
  Link& link = *slots_[ticket].link;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (long polls = 0; !test(ticket); ++polls) {
    // Yield after a short spin: with more ranks than cores the peer we wait for needs the CPU.
    if (polls > 64) std::this_thread::yield();
    if ((polls & 1023) != 0) continue;
    check_failure_notices([&] { return link.describe(); });
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(link.comm.get(), &async), link, "ncclCommGetAsyncError");
    if (async != ncclSuccess && async != ncclInProgress) give_up(link, link.describe() + ": " + nccl_text(async));
    if (timeout_ > 0 && std::chrono::duration<double>(Clock::now() - start).count() > timeout_)
      give_up(link, "no progress for " + format_seconds(timeout_) + " (--comm-timeout) in " +
                        link.describe() + "; that rank has probably died or hung");
  }
  slots_.give_back(ticket);
}

// Aborts the link's communicator at once: its kernel would otherwise keep waiting on the GPU,
// and the link's later messages could never arrive in order.
void NcclTransport::give_up(Link& link, const std::string& message) {
  link.failed = true;
  link.comm.reset();  // CommClose aborts unless told to destroy
  throw Error(message);
}

}  // namespace

std::unique_ptr<Transport> make_nccl_transport(const ControlPlane& control, const TransportLinks& links) {
  int devices = 0;
  std::optional<std::string> error;
  const cudaError_t counted = cudaGetDeviceCount(&devices);
  if (counted != cudaSuccess || devices <= 0) {
    cudaGetLastError();
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    std::string why = "CUDA_VISIBLE_DEVICES=";
    why += visible ? std::string("'") + visible + "'" : std::string("unset");
    if (counted != cudaSuccess) why += std::string("; CUDA says: ") + cudaGetErrorString(counted);
    error = "--transport nccl: no GPU is visible to this process (" + why +
            "); run on GPU nodes (e.g. sbatch --gpus-per-task=1) or use --transport mpi";
  }
  // Every rank refuses together: a rank alone in ncclCommInitRank would wait for its peer forever.
  control.agree_on(error, 2);
  return std::make_unique<NcclTransport>(control, links, node_local_rank() % devices);
}

}  // namespace splitpipe
