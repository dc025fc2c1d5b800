// The tickets of a transport: indices into a pool of slots that wait() hands back, so the
// steady state allocates nothing. Shared by every backend and the link decorator.
#pragma once
#include <cstddef>
#include <vector>

#include "splitpipe/transport.hpp"

namespace splitpipe {

// `Slots` is the container of slots: a std::deque where a posted slot's address must stay put
// while the pool grows (a buffer MPI writes into), a std::vector otherwise.
template <typename Slot, typename Slots = std::vector<Slot>>
class TicketPool {
 public:
  using Ticket = Transport::Ticket;

  // A free slot: a reused one, left as it was, or a new default-constructed one (`fresh`).
  Ticket take(bool* fresh = nullptr) {
    if (fresh) *fresh = free_.empty();
    if (!free_.empty()) {
      const Ticket ticket = free_.back();
      free_.pop_back();
      return ticket;
    }
    slots_.emplace_back();
    return static_cast<Ticket>(slots_.size() - 1);
  }
  Slot& operator[](Ticket ticket) { return slots_.at(static_cast<size_t>(ticket)); }
  void give_back(Ticket ticket) { free_.push_back(ticket); }

  // Every slot, free or not, with whether it is in use (for teardown).
  template <typename Visit>
  void for_each(Visit visit) {
    std::vector<bool> in_use(slots_.size(), true);
    for (const Ticket ticket : free_) in_use[static_cast<size_t>(ticket)] = false;
    for (size_t t = 0; t < slots_.size(); ++t) visit(slots_[t], static_cast<bool>(in_use[t]));
  }

 private:
  Slots slots_;
  std::vector<Ticket> free_;
};

}  // namespace splitpipe
