#include "splitpipe/emulated_link.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;

double now_seconds() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

constexpr int kClockSyncRounds = 16;

uint8_t* bytes_of(double& value) { return reinterpret_cast<uint8_t*>(&value); }

std::string encode(double value) { return std::string(reinterpret_cast<const char*>(&value), sizeof value); }
double decode(const std::string& bytes) {
  double value = 0;
  if (bytes.size() != sizeof value) throw std::runtime_error("clock synchronisation: malformed time stamp");
  std::memcpy(&value, bytes.data(), sizeof value);
  return value;
}

}  // namespace

EmulatedLinkTransport::EmulatedLinkTransport(Transport& inner, const ControlPlane& control,
                                             const std::vector<LinkSpec>& links)
    : inner_(inner), links_(links) {
  if (links_.empty()) throw std::invalid_argument("EmulatedLinkTransport: no link");
  for (const auto& spec : links_)
    if (!(spec.bits_per_second > 0) || !(spec.latency_seconds >= 0))
      throw std::invalid_argument("EmulatedLinkTransport: bandwidth must be > 0 and latency >= 0");
  if (rank() < clients())
    outgoing_.emplace_back(links_[rank()].bits_per_second, links_[rank()].latency_seconds);
  else
    for (const auto& spec : links_) outgoing_.emplace_back(spec.bits_per_second, spec.latency_seconds);
  synchronise_clocks(control);
}

bool EmulatedLinkTransport::shaped(int from, int to) const {
  const bool from_client = from < clients(), to_client = to < clients();
  if (from_client == to_client) return false;
  const LinkSpec& spec = links_[from_client ? from : to];
  return from_client ? spec.shape_up : spec.shape_down;
}

LinkQueue& EmulatedLinkTransport::outgoing(int peer) {
  return rank() < clients() ? outgoing_.front() : outgoing_.at(peer);
}

// NTP-style: rank 0 pings every other rank, which answers with its clock; the offset estimate
// of the round trip with the least delay is the most accurate one and is sent to that rank.
void EmulatedLinkTransport::synchronise_clocks(const ControlPlane& control) {
  const std::string what = "clock synchronisation of the emulated link";
  if (rank() == 0) {
    for (int peer = 1; peer < size(); ++peer) {
      double best_round_trip = std::numeric_limits<double>::infinity(), best_offset = 0;
      for (int round = 0; round < kClockSyncRounds; ++round) {
        const double sent = now_seconds();
        control.send_bytes(peer, encode(sent), what);
        const double peer_time = decode(control.receive_bytes(peer, what));
        const double received = now_seconds();
        if (received - sent < best_round_trip) {
          best_round_trip = received - sent;
          best_offset = (sent + received) / 2 - peer_time;
        }
      }
      control.send_bytes(peer, encode(best_offset), what);
    }
  } else {
    for (int round = 0; round < kClockSyncRounds; ++round) {
      control.receive_bytes(0, what);
      control.send_bytes(0, encode(now_seconds()), what);
    }
    clock_offset_seconds_ = decode(control.receive_bytes(0, what));
  }
}

Transport::Ticket EmulatedLinkTransport::take_transfer() {
  const Ticket ticket = transfers_.take();
  transfers_[ticket] = Transfer{};
  return ticket;
}

Transport::Ticket EmulatedLinkTransport::post_send(int peer, const uint8_t* data, size_t bytes) {
  const double handed_over = now_seconds() + clock_offset_seconds_;
  const Ticket ticket = take_transfer();
  Transfer& transfer = transfers_[ticket];
  transfer.data = inner_.post_send(peer, data, bytes);
  if (shaped(rank(), peer)) {
    transfer.arrival = outgoing(peer).send(handed_over, bytes);
    transfer.stamp = inner_.post_send(peer, bytes_of(transfer.arrival), sizeof transfer.arrival);
  }
  return ticket;
}

Transport::Ticket EmulatedLinkTransport::post_recv(int peer, uint8_t* data, size_t bytes) {
  const Ticket ticket = take_transfer();
  Transfer& transfer = transfers_[ticket];
  transfer.is_recv = true;
  transfer.data = inner_.post_recv(peer, data, bytes);
  if (shaped(peer, rank())) transfer.stamp = inner_.post_recv(peer, bytes_of(transfer.arrival), sizeof transfer.arrival);
  return ticket;
}

double EmulatedLinkTransport::due_in_seconds(const Transfer& transfer) const {
  if (transfer.stamp < 0 || !transfer.is_recv) return 0;
  return transfer.arrival - clock_offset_seconds_ - now_seconds();
}

// How long the link's wait sleeps between two rounds of MPI progress.
constexpr double kProgressSliceSeconds = 1e-3;

bool EmulatedLinkTransport::test(Ticket ticket) {
  Transfer& transfer = transfers_[ticket];
  if (!inner_.test(transfer.data)) return false;
  if (transfer.stamp >= 0 && !inner_.test(transfer.stamp)) return false;
  if (transfer.ready_at < 0) transfer.ready_at = now_seconds();
  return due_in_seconds(transfer) <= 0;
}

void EmulatedLinkTransport::wait(Ticket ticket) {
  Transfer& transfer = transfers_[ticket];
  last_wait_link_seconds_ = 0;
  // On an exception the slot is not reused: its stamp may still be posted.
  inner_.wait(transfer.data);
  if (transfer.stamp >= 0) {
    inner_.wait(transfer.stamp);
    const double now = now_seconds();
    const double due = due_in_seconds(transfer);
    // Sleep rather than spin: the rank's core is free for the others meanwhile. But in slices
    // that let MPI progress this rank's other transfers: a large message's rendezvous needs its
    // receiver to answer, and a sender must not wait for the link of a message queued here.
    for (double left = due; left > 0; left = due_in_seconds(transfer)) {
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(left, kProgressSliceSeconds)));
      transfers_.for_each([&](Transfer& other, bool in_use) {
        if (in_use && &other != &transfer && other.data >= 0) inner_.test(other.data);
      });
    }
    // Held back from when the bytes were there (maybe seen earlier by test()) until due.
    if (transfer.is_recv) {
      const double ready = transfer.ready_at >= 0 ? transfer.ready_at : now;
      last_wait_link_seconds_ = std::max(0.0, now + due - ready);
    }
  }
  transfers_.give_back(ticket);
}

}  // namespace splitpipe
