// MPI point-to-point transport and the collectives used for setup and metrics.
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "splitpipe/error.hpp"
#include "splitpipe/mpi_world.hpp"

namespace splitpipe {

void check_mpi(int code, const std::string& what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(what + ": " + std::string(text, length));
}

int node_local_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"})
    if (const char* value = std::getenv(variable)) return std::atoi(value);
  return 0;
}

namespace {

int checked_count(size_t bytes, const std::string& what) {
  if (bytes > static_cast<size_t>(INT_MAX))
    throw Error(what + ": message of " + std::to_string(bytes) + " bytes exceeds MPI's int count; use more --chunks");
  return static_cast<int>(bytes);
}

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  // Errors come back as codes and become exceptions with context instead of an abort banner.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

MpiTransport::MpiTransport(MPI_Comm comm, bool owns_comm) : comm_(comm), owns_comm_(owns_comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiTransport::~MpiTransport() {
  for (auto& slot : slots_)
    if (slot.request != MPI_REQUEST_NULL) {
      if (slot.is_recv) MPI_Cancel(&slot.request);
      MPI_Request_free(&slot.request);
    }
  if (owns_comm_) MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiTransport> MpiTransport::subgroup(const std::vector<int>& members) const {
  MPI_Group all, group;
  check_mpi(MPI_Comm_group(comm_, &all), "MPI_Comm_group");
  const int included = MPI_Group_incl(all, static_cast<int>(members.size()), members.data(), &group);
  MPI_Group_free(&all);
  check_mpi(included, "MPI_Group_incl");
  MPI_Comm comm = MPI_COMM_NULL;
  const int created = MPI_Comm_create(comm_, group, &comm);
  MPI_Group_free(&group);
  std::string list;
  for (int m : members) list += (list.empty() ? "" : ",") + std::to_string(m);
  check_mpi(created, "MPI_Comm_create for ranks " + list);
  if (comm == MPI_COMM_NULL) return nullptr;
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  auto transport = std::make_unique<MpiTransport>(comm, true);
  transport->set_timeout(timeout_seconds_);
  return transport;
}

void MpiTransport::send_message(int peer, int tag, const std::string& bytes) const {
  const std::string what = "message to rank " + std::to_string(peer);
  check_mpi(MPI_Send(bytes.data(), checked_count(bytes.size(), what), MPI_BYTE, peer, tag, comm_), what);
}

std::string MpiTransport::receive_message(int peer, int tag) const {
  const std::string what = "message from rank " + std::to_string(peer);
  MPI_Status status;
  for (int arrived = 0;;) {
    check_mpi(MPI_Iprobe(peer, tag, comm_, &arrived, &status), what);
    if (arrived) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  std::string bytes(static_cast<size_t>(count), '\0');
  check_mpi(MPI_Recv(bytes.data(), count, MPI_BYTE, peer, tag, comm_, MPI_STATUS_IGNORE), what);
  return bytes;
}

void MpiTransport::abort(int code) const {
  MPI_Abort(comm_, code);
  std::_Exit(code);  // MPI_Abort does not return; if it ever did, the rank must not go on
}

Transport::Ticket MpiTransport::take_slot(int peer, int tag, size_t capacity, bool is_recv) {
  Ticket ticket;
  if (!free_.empty()) {
    ticket = free_.back();
    free_.pop_back();
  } else {
    ticket = static_cast<Ticket>(slots_.size());
    slots_.emplace_back();
  }
  slots_[ticket] = Slot{MPI_REQUEST_NULL, peer, tag, capacity, is_recv};
  return ticket;
}

Transport::Ticket MpiTransport::post_send(int peer, int tag, const uint8_t* data, size_t bytes) {
  const std::string what = "MPI_Isend to rank " + std::to_string(peer) + " tag " + std::to_string(tag);
  const Ticket t = take_slot(peer, tag, bytes, false);
  check_mpi(MPI_Isend(data, checked_count(bytes, what), MPI_BYTE, peer, tag, comm_, &slots_[t].request), what);
  return t;
}

Transport::Ticket MpiTransport::post_recv(int peer, int tag, uint8_t* data, size_t capacity) {
  const std::string what = "MPI_Irecv from rank " + std::to_string(peer) + " tag " + std::to_string(tag);
  const Ticket t = take_slot(peer, tag, capacity, true);
  check_mpi(MPI_Irecv(data, checked_count(capacity, what), MPI_BYTE, peer, tag, comm_, &slots_[t].request), what);
  return t;
}

// Polls instead of MPI_Wait so that no rank waits forever: a peer that died without MPI
// noticing, or hangs, turns into an error naming it after --comm-timeout seconds.
void MpiTransport::complete(MPI_Request& request, MPI_Status* status, const std::function<std::string()>& what) const {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (long polls = 0;; ++polls) {
    int done = 0;
    const int code = MPI_Test(&request, &done, status);
    if (code != MPI_SUCCESS) check_mpi(code, what());
    if (done) return;
    // Yield after a short spin: with more ranks than cores the peer we wait for needs the CPU.
    if (polls > 64) std::this_thread::yield();
    if (timeout_seconds_ > 0 && (polls & 1023) == 0 &&
        std::chrono::duration<double>(Clock::now() - start).count() > timeout_seconds_)
      throw Error("no progress for " + std::to_string(static_cast<int>(timeout_seconds_)) + " s (--comm-timeout) in " +
                  what() + "; that rank has probably died or hung");
  }
}

size_t MpiTransport::wait(Ticket ticket) {
  Slot& slot = slots_.at(ticket);
  MPI_Status status;
  // Described only on failure: the steady state builds no strings.
  auto what = [&slot] {
    return std::string(slot.is_recv ? "receive from" : "send to") + " rank " + std::to_string(slot.peer) + " (tag " +
           std::to_string(slot.tag) + ")";
  };
  try {
    complete(slot.request, &status, what);
  } catch (...) {
    free_.push_back(ticket);
    if (slot.request != MPI_REQUEST_NULL) {
      if (slot.is_recv) MPI_Cancel(&slot.request);
      MPI_Request_free(&slot.request);
    }
    throw;
  }
  free_.push_back(ticket);
  if (!slot.is_recv) return slot.capacity;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  if (static_cast<size_t>(count) > slot.capacity)
    throw Error(what() + ": message larger than the " + std::to_string(slot.capacity) + "-byte buffer posted for it");
  return static_cast<size_t>(count);
}

void MpiTransport::finish_collective(MPI_Request& request, const char* name) const {
  complete(request, MPI_STATUS_IGNORE, [name] { return std::string("collective ") + name; });
}

void MpiTransport::agree_on(const std::optional<std::string>& local_error, int exit_code) const {
  int mine = local_error ? rank_ : size_;
  int first = size_;
  MPI_Request request;
  MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm_, &request);
  finish_collective(request, "agree_on");
  if (first == size_) return;
  std::string message = local_error ? *local_error : std::string();
  std::vector<int64_t> code{exit_code};
  broadcast(code, first);
  broadcast(message, first);
  if (first != 0) message = "rank " + std::to_string(first) + ": " + message;
  throw CollectiveError(message, static_cast<int>(code.at(0)));
}

void MpiTransport::sum_in_place(std::vector<float>& values) const {
  if (values.size() > static_cast<size_t>(INT_MAX)) throw Error("sum_in_place: too many values for one MPI call");
  MPI_Request request;
  MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_FLOAT, MPI_SUM, comm_, &request);
  finish_collective(request, "sum_in_place");
}

std::vector<int> MpiTransport::max_over_ranks(const std::vector<int>& values) const {
  std::vector<int> result(values.size());
  MPI_Request request;
  MPI_Iallreduce(values.data(), result.data(), static_cast<int>(values.size()), MPI_INT, MPI_MAX, comm_, &request);
  finish_collective(request, "max_over_ranks");
  return result;
}

void MpiTransport::broadcast(std::string& text, int root) const {
  std::vector<int64_t> length{static_cast<int64_t>(text.size())};
  broadcast(length, root);
  text.resize(static_cast<size_t>(length.at(0)));
  MPI_Request request;
  MPI_Ibcast(text.data(), static_cast<int>(text.size()), MPI_CHAR, root, comm_, &request);
  finish_collective(request, "broadcast");
}

void MpiTransport::broadcast(std::vector<int64_t>& values, int root) const {
  int64_t length = static_cast<int64_t>(values.size());
  MPI_Request request;
  MPI_Ibcast(&length, 1, MPI_INT64_T, root, comm_, &request);
  finish_collective(request, "broadcast");
  values.resize(static_cast<size_t>(length));
  MPI_Ibcast(values.data(), static_cast<int>(length), MPI_INT64_T, root, comm_, &request);
  finish_collective(request, "broadcast");
}

std::vector<std::vector<double>> MpiTransport::gather(const std::vector<double>& values, int root) const {
  const int n = static_cast<int>(values.size());
  std::vector<double> all(rank_ == root ? static_cast<size_t>(n) * size_ : 0);
  MPI_Request request;
  MPI_Igather(values.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, root, comm_, &request);
  finish_collective(request, "gather");
  std::vector<std::vector<double>> result;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) result.emplace_back(all.begin() + r * n, all.begin() + (r + 1) * n);
  return result;
}

std::vector<std::string> MpiTransport::gather_strings(const std::string& text, int root) const {
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(size_);
  MPI_Request request;
  MPI_Igather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, comm_, &request);
  finish_collective(request, "gather_strings");
  std::vector<int> offsets(size_, 0);
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    offsets[r] = total;
    total += lengths[r];
  }
  std::string all(rank_ == root ? total : 0, '\0');
  MPI_Igatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, root, comm_,
               &request);
  finish_collective(request, "gather_strings");
  std::vector<std::string> result;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) result.push_back(all.substr(offsets[r], lengths[r]));
  return result;
}

void MpiTransport::barrier() const {
  MPI_Request request;
  MPI_Ibarrier(comm_, &request);
  finish_collective(request, "barrier");
}

}  // namespace splitpipe
