// The MPI data plane: one tag on a private communicator, so messages of a pair match in order.
#include "backends.hpp"
#include "mpi_common.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/mpi_world.hpp"

namespace splitpipe {
namespace {
constexpr int kDataTag = 0;
}  // namespace

MpiTransport::MpiTransport(const MpiControlPlane& control)
    : timeout_seconds_(control.timeout()) {
  // A duplicate: pipeline messages can never match a control-plane receive, or the reverse.
  check_mpi(MPI_Comm_dup(control.comm(), &comm_), "MPI_Comm_dup for the data plane");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiTransport::~MpiTransport() {
  slots_.for_each([](Slot& slot, bool) {
    if (slot.request == MPI_REQUEST_NULL) return;
    if (slot.is_recv) MPI_Cancel(&slot.request);
    MPI_Request_free(&slot.request);
  });
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiTransport::describe(const Slot& slot) const {
  return std::string(slot.is_recv ? "receive from" : "send to") + " rank " + std::to_string(slot.peer) + " (" +
         std::to_string(slot.bytes) + " bytes)";
}

Transport::Ticket MpiTransport::take_slot(int peer, size_t bytes, bool is_recv) {
  if (peer < 0 || peer >= size_ || peer == rank_)
    throw std::logic_error("MpiTransport: no peer " + std::to_string(peer) + " for rank " + std::to_string(rank_));
  const Ticket ticket = slots_.take();
  slots_[ticket] = Slot{MPI_REQUEST_NULL, peer, bytes, is_recv, false};
  return ticket;
}

Transport::Ticket MpiTransport::post_send(int peer, const uint8_t* data, size_t bytes) {
  const Ticket t = take_slot(peer, bytes, false);
  const std::string what = "MPI_Isend to rank " + std::to_string(peer);
  check_mpi(MPI_Isend(data, mpi_count(bytes, what), MPI_BYTE, peer, kDataTag, comm_, &slots_[t].request), what);
  return t;
}

Transport::Ticket MpiTransport::post_recv(int peer, uint8_t* data, size_t bytes) {
  const Ticket t = take_slot(peer, bytes, true);
  const std::string what = "MPI_Irecv from rank " + std::to_string(peer);
  check_mpi(MPI_Irecv(data, mpi_count(bytes, what), MPI_BYTE, peer, kDataTag, comm_, &slots_[t].request), what);
  return t;
}

// The sizes are agreed by construction; a message of another size means the two ends disagree
// about the schedule or the codec, and nothing after it could be trusted.
void MpiTransport::check_received(const Slot& slot, const MPI_Status& status) const {
  if (!slot.is_recv) return;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  if (static_cast<size_t>(count) != slot.bytes)
    throw Error(describe(slot) + ": the message holds " + std::to_string(count) + " bytes; the two ranks disagree on "
                "the pipeline's message sizes");
}

void MpiTransport::release(Ticket ticket) {
  Slot& slot = slots_[ticket];
  if (slot.request != MPI_REQUEST_NULL) {
    if (slot.is_recv) MPI_Cancel(&slot.request);
    MPI_Request_free(&slot.request);
  }
  slots_.give_back(ticket);
}

bool MpiTransport::test(Ticket ticket) {
  Slot& slot = slots_[ticket];
  if (slot.done) return true;
  int done = 0;
  MPI_Status status;
  check_mpi(MPI_Test(&slot.request, &done, &status), describe(slot));
  if (done) {
    slot.done = true;
    check_received(slot, status);
  }
  return slot.done;
}

void MpiTransport::wait(Ticket ticket) {
  Slot& slot = slots_[ticket];
  try {
    if (!slot.done) {
      MPI_Status status;
      complete_request(slot.request, &status, timeout_seconds_, [&] { return describe(slot); });
      check_received(slot, status);
    }
  } catch (...) {
    release(ticket);
    throw;
  }
  slots_.give_back(ticket);
}

std::unique_ptr<Transport> make_mpi_transport(const ControlPlane& control, const TransportLinks& /*links*/) {
  const auto* mpi = dynamic_cast<const MpiControlPlane*>(&control);
  if (!mpi) throw std::logic_error("the mpi transport needs an MPI control plane");
  return std::make_unique<MpiTransport>(*mpi);
}

}  // namespace splitpipe
