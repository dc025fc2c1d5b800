#include "splitpipe/emulated_link.hpp"

#include <chrono>
#include <limits>
#include <stdexcept>
#include <thread>

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;

double now_seconds() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// Only used inside the constructor, before any pipeline message is posted; MPI guarantees tags
// up to 32767, and pipeline tags stay below it.
constexpr int kClockSyncTag = 32766;
constexpr int kClockSyncRounds = 16;

const uint8_t* bytes_of(const double& value) { return reinterpret_cast<const uint8_t*>(&value); }
uint8_t* bytes_of(double& value) { return reinterpret_cast<uint8_t*>(&value); }

}  // namespace

EmulatedLinkTransport::EmulatedLinkTransport(Transport& inner, const LinkSpec& spec)
    : inner_(inner), spec_(spec), outgoing_(spec.bits_per_second, spec.latency_seconds) {
  if (!(spec.bits_per_second > 0) || !(spec.latency_seconds >= 0))
    throw std::invalid_argument("EmulatedLinkTransport: bandwidth must be > 0 and latency >= 0");
  synchronise_clocks();
}

bool EmulatedLinkTransport::shaped(int from, int to) const {
  return (from == 0 && to != 0 && spec_.shape_up) || (from != 0 && to == 0 && spec_.shape_down);
}

// NTP-style: the edge pings each server, which answers with its clock; the offset estimate of
// the round trip with the least delay is the most accurate one and is sent to the server.
void EmulatedLinkTransport::synchronise_clocks() {
  if (rank() == 0) {
    for (int server = 1; server < size(); ++server) {
      double best_round_trip = std::numeric_limits<double>::infinity(), best_offset = 0;
      for (int round = 0; round < kClockSyncRounds; ++round) {
        double server_time = 0;
        const Ticket reply = inner_.post_recv(server, kClockSyncTag, bytes_of(server_time), sizeof server_time);
        const double sent = now_seconds();
        inner_.wait(inner_.post_send(server, kClockSyncTag, bytes_of(sent), sizeof sent));
        inner_.wait(reply);
        const double received = now_seconds();
        if (received - sent < best_round_trip) {
          best_round_trip = received - sent;
          best_offset = (sent + received) / 2 - server_time;
        }
      }
      inner_.wait(inner_.post_send(server, kClockSyncTag, bytes_of(best_offset), sizeof best_offset));
    }
  } else {
    for (int round = 0; round < kClockSyncRounds; ++round) {
      double ping = 0;
      inner_.wait(inner_.post_recv(0, kClockSyncTag, bytes_of(ping), sizeof ping));
      const double mine = now_seconds();
      inner_.wait(inner_.post_send(0, kClockSyncTag, bytes_of(mine), sizeof mine));
    }
    inner_.wait(inner_.post_recv(0, kClockSyncTag, bytes_of(clock_offset_seconds_), sizeof clock_offset_seconds_));
  }
}

Transport::Ticket EmulatedLinkTransport::take_transfer() {
  Ticket ticket;
  if (!free_.empty()) {
    ticket = free_.back();
    free_.pop_back();
  } else {
    ticket = static_cast<Ticket>(transfers_.size());
    transfers_.emplace_back();
  }
  transfers_[ticket] = Transfer{};
  return ticket;
}

Transport::Ticket EmulatedLinkTransport::post_send(int peer, int tag, const uint8_t* data, size_t bytes) {
  const double handed_over = now_seconds() + clock_offset_seconds_;
  const Ticket ticket = take_transfer();
  Transfer& transfer = transfers_[ticket];
  transfer.data = inner_.post_send(peer, tag, data, bytes);
  if (shaped(rank(), peer)) {
    transfer.arrival = outgoing_.send(handed_over, bytes);
    transfer.stamp = inner_.post_send(peer, tag, bytes_of(transfer.arrival), sizeof transfer.arrival);
  }
  return ticket;
}

Transport::Ticket EmulatedLinkTransport::post_recv(int peer, int tag, uint8_t* data, size_t capacity) {
  const Ticket ticket = take_transfer();
  Transfer& transfer = transfers_[ticket];
  transfer.is_recv = true;
  transfer.data = inner_.post_recv(peer, tag, data, capacity);
  if (shaped(peer, rank()))
    transfer.stamp = inner_.post_recv(peer, tag, bytes_of(transfer.arrival), sizeof transfer.arrival);
  return ticket;
}

size_t EmulatedLinkTransport::wait(Ticket ticket) {
  Transfer& transfer = transfers_.at(ticket);
  last_wait_link_seconds_ = 0;
  // On an exception the slot is not reused: its stamp may still be posted.
  const size_t bytes = inner_.wait(transfer.data);
  if (transfer.stamp >= 0) {
    inner_.wait(transfer.stamp);
    if (transfer.is_recv) {
      const double due = transfer.arrival - clock_offset_seconds_;  // on this rank's clock
      const double start = now_seconds();
      if (due > start) {
        // Sleep rather than spin: the rank's core is free for the others meanwhile.
        std::this_thread::sleep_until(
            Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(due))));
        last_wait_link_seconds_ = now_seconds() - start;
      }
    }
  }
  free_.push_back(ticket);
  return bytes;
}

}  // namespace splitpipe
