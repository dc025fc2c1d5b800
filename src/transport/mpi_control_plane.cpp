// The control plane over an MPI communicator: every collective is posted non-blocking and
// polled with the timeout, so a dead or hung rank becomes an error naming the collective.
#include <algorithm>
#include <csignal>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "mpi_common.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/interrupt.hpp"
#include "splitpipe/mpi_world.hpp"

namespace splitpipe {
namespace {

// State hand-offs and setup messages: their own tag on the control plane's communicator.
constexpr int kBytesTag = 1;
// Failure notices (announce_failure).
constexpr int kNoticeTag = 2;
// The failing rank's message, sent to rank 0 after its notice.
constexpr int kNoticeTextTag = 3;
// The control plane whose failure notices check_failure_notices() turns into PeerFailure.
MpiControlPlane* watched_plane = nullptr;
// How long a failing rank listens for an earlier or lower-ranked notice before it reports.
constexpr double kNoticeWindowSeconds = 0.5;

}  // namespace

MpiControlPlane::MpiControlPlane(MPI_Comm comm, bool owns_comm) : comm_(comm), owns_comm_(owns_comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  if (size_ > 1) MPI_Irecv(&notice_from_, 1, MPI_INT, MPI_ANY_SOURCE, kNoticeTag, comm_, &notice_);
}

MpiControlPlane::~MpiControlPlane() {
  if (watched_plane == this) watched_plane = nullptr;
  if (notice_ != MPI_REQUEST_NULL) {
    MPI_Cancel(&notice_);
    MPI_Request_free(&notice_);
  }
  for (auto& request : announced_) MPI_Request_free(&request);
  if (owns_comm_) MPI_Comm_free(&comm_);
}

namespace {
std::function<void(const std::string&)>& sigterm_hook() {
  static std::function<void(const std::string&)> hook;
  return hook;
}
// How long rank 0 waits for the text that follows a notice; the sender posts both at once.
constexpr double kNoticeTextSeconds = 2.0;
}  // namespace

bool MpiControlPlane::notice_arrived() {
  if (noticed_) return true;
  if (notice_ == MPI_REQUEST_NULL) return false;
  int arrived = 0;
  MPI_Test(&notice_, &arrived, MPI_STATUS_IGNORE);
  noticed_ = arrived != 0;
  return noticed_;
}

std::string MpiControlPlane::notice_text() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < kNoticeTextSeconds) {
    int present = 0;
    MPI_Status status;
    MPI_Iprobe(notice_from_, kNoticeTextTag, comm_, &present, &status);
    if (present) {
      int count = 0;
      MPI_Get_count(&status, MPI_CHAR, &count);
      std::string text(static_cast<size_t>(std::max(count, 0)), '\0');
      MPI_Recv(text.data(), count, MPI_CHAR, notice_from_, kNoticeTextTag, comm_, MPI_STATUS_IGNORE);
      return text;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return "failed (its message did not arrive)";
}

void MpiControlPlane::watch_failure_notices() { watched_plane = this; }

void on_sigterm_while_waiting(std::function<void(const std::string&)> hook) {
  sigterm_hook() = std::move(hook);
}

void check_failure_notices(const std::function<std::string()>& waiting_for) {
  if (sigterm_hook() && (interrupt_signal() == SIGTERM || interrupt_signal() == SIGINT)) {
    const auto hook = std::move(sigterm_hook());
    sigterm_hook() = nullptr;  // once
    hook(waiting_for ? waiting_for() : std::string("another rank"));
  }
  MpiControlPlane* plane = watched_plane;
  if (!plane || !plane->notice_arrived()) return;
  watched_plane = nullptr;  // once: the waits that follow (recording the failure) must not throw again
  throw PeerFailure("rank " + std::to_string(plane->notice_from_) + ": " + plane->notice_text());
}

bool MpiControlPlane::announce_failure(const std::string& message) {
  if (size_ == 1) return true;
  if (notice_arrived()) return false;  // another rank failed first and reports it
  if (watched_plane == this) watched_plane = nullptr;
  announced_.resize(static_cast<size_t>(size_) + 1, MPI_REQUEST_NULL);
  for (int r = 0; r < size_; ++r)
    if (r != rank_) MPI_Isend(&rank_, 1, MPI_INT, r, kNoticeTag, comm_, &announced_[r]);
  if (rank_ != 0) {  // rank 0 records why in the run file
    announced_text_ = message.substr(0, 4096);
    MPI_Isend(announced_text_.data(), static_cast<int>(announced_text_.size()), MPI_CHAR, 0, kNoticeTextTag, comm_,
              &announced_[static_cast<size_t>(size_)]);
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < kNoticeWindowSeconds) {
    if (notice_arrived()) {
      if (notice_from_ < rank_) return false;  // announced at the same time, by a lower rank
      noticed_ = false;
      MPI_Irecv(&notice_from_, 1, MPI_INT, MPI_ANY_SOURCE, kNoticeTag, comm_, &notice_);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A collective cannot tell which rank is missing; a rank waiting for a message from the failed
// one can. So collectives wait a grace period longer (half the timeout, at least 5 s; longer
// than an edge's extra patience, see PipelineOptions): when one rank dies or hangs, the error
// that ends the job names it.
void MpiControlPlane::finish(MPI_Request& request, const std::function<std::string()>& what) const {
  const double grace = timeout_seconds_ > 0 ? std::max(5.0, 0.5 * timeout_seconds_) : 0.0;
  complete_request(request, MPI_STATUS_IGNORE, timeout_seconds_ + grace, what);
}

std::unique_ptr<ControlPlane> MpiControlPlane::subgroup(const std::vector<int>& members) const {
  MPI_Group all, group;
  check_mpi(MPI_Comm_group(comm_, &all), "MPI_Comm_group");
  const int included = MPI_Group_incl(all, static_cast<int>(members.size()), members.data(), &group);
  MPI_Group_free(&all);
  check_mpi(included, "MPI_Group_incl");
  MPI_Comm comm = MPI_COMM_NULL;
  const int created = MPI_Comm_create(comm_, group, &comm);
  MPI_Group_free(&group);
  std::string list;
  for (int m : members) {
    if (!list.empty()) list += ',';
    list += std::to_string(m);
  }
  check_mpi(created, "MPI_Comm_create for ranks " + list);
  if (comm == MPI_COMM_NULL) return nullptr;
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  auto control = std::make_unique<MpiControlPlane>(comm, true);
  control->set_timeout(timeout_seconds_);
  return control;
}

void MpiControlPlane::send_bytes(int peer, const std::string& bytes, const std::string& what) const {
  const std::string context = what + " to rank " + std::to_string(peer);
  // Size first, so the receiver can allocate; both non-blocking, so the timeout applies.
  int64_t size = static_cast<int64_t>(bytes.size());
  MPI_Request requests[2];
  check_mpi(MPI_Isend(&size, 1, MPI_INT64_T, peer, kBytesTag, comm_, &requests[0]), context);
  check_mpi(MPI_Isend(bytes.data(), mpi_count(bytes.size(), context), MPI_BYTE, peer, kBytesTag, comm_, &requests[1]),
            context);
  for (auto& request : requests) complete_request(request, MPI_STATUS_IGNORE, timeout_seconds_, [&] { return context; });
}

std::string MpiControlPlane::receive_bytes(int peer, const std::string& what) const {
  const std::string context = what + " from rank " + std::to_string(peer);
  int64_t size = 0;
  MPI_Request request;
  check_mpi(MPI_Irecv(&size, 1, MPI_INT64_T, peer, kBytesTag, comm_, &request), context);
  complete_request(request, MPI_STATUS_IGNORE, timeout_seconds_, [&] { return context; });
  std::string bytes(static_cast<size_t>(size), '\0');
  check_mpi(MPI_Irecv(bytes.data(), mpi_count(bytes.size(), context), MPI_BYTE, peer, kBytesTag, comm_, &request),
            context);
  complete_request(request, MPI_STATUS_IGNORE, timeout_seconds_, [&] { return context; });
  return bytes;
}

void MpiControlPlane::abort(int code) const {
  MPI_Abort(comm_, code);
  std::_Exit(code);  // MPI_Abort does not return; if it ever did, the rank must not go on
}

void MpiControlPlane::agree_on(const std::optional<std::string>& local_error, int exit_code) const {
  int mine = local_error ? rank_ : size_;
  int first = size_;
  MPI_Request request;
  MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm_, &request);
  finish(request, [] { return std::string("collective agree_on (every rank checks for errors)"); });
  if (first == size_) return;
  std::string message = local_error ? *local_error : std::string();
  std::vector<int64_t> code{exit_code};
  broadcast(code, first);
  broadcast(message, first);
  if (first != 0 && size_ > 1) message = "rank " + std::to_string(first) + ": " + message;
  throw CollectiveError(message, static_cast<int>(code.at(0)));
}

void MpiControlPlane::sum_in_place(std::vector<float>& values) const {
  if (values.size() > static_cast<size_t>(INT_MAX)) throw Error("sum_in_place: too many values for one MPI call");
  MPI_Request request;
  MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_FLOAT, MPI_SUM, comm_, &request);
  finish(request, [] { return std::string("collective sum (averaging edge weights over the clients)"); });
}

std::vector<int> MpiControlPlane::max_over_ranks(const std::vector<int>& values) const {
  std::vector<int> result(values.size());
  MPI_Request request;
  MPI_Iallreduce(values.data(), result.data(), static_cast<int>(values.size()), MPI_INT, MPI_MAX, comm_, &request);
  finish(request, [] { return std::string("collective max_over_ranks (the per-step flags)"); });
  return result;
}

void MpiControlPlane::broadcast(std::string& text, int root) const {
  std::vector<int64_t> length{static_cast<int64_t>(text.size())};
  broadcast(length, root);
  text.resize(static_cast<size_t>(length.at(0)));
  MPI_Request request;
  MPI_Ibcast(text.data(), static_cast<int>(text.size()), MPI_CHAR, root, comm_, &request);
  finish(request, [root] { return "broadcast from rank " + std::to_string(root); });
}

void MpiControlPlane::broadcast(std::vector<int64_t>& values, int root) const {
  int64_t length = static_cast<int64_t>(values.size());
  MPI_Request request;
  const auto what = [root] { return "broadcast from rank " + std::to_string(root); };
  MPI_Ibcast(&length, 1, MPI_INT64_T, root, comm_, &request);
  finish(request, what);
  values.resize(static_cast<size_t>(length));
  MPI_Ibcast(values.data(), static_cast<int>(length), MPI_INT64_T, root, comm_, &request);
  finish(request, what);
}

std::vector<std::vector<double>> MpiControlPlane::gather(const std::vector<double>& values, int root) const {
  const int n = static_cast<int>(values.size());
  std::vector<double> all(rank_ == root ? static_cast<size_t>(n) * size_ : 0);
  MPI_Request request;
  MPI_Igather(values.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, root, comm_, &request);
  finish(request, [root] { return "gather to rank " + std::to_string(root); });
  std::vector<std::vector<double>> result;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) result.emplace_back(all.begin() + r * n, all.begin() + (r + 1) * n);
  return result;
}

std::vector<std::string> MpiControlPlane::gather_strings(const std::string& text, int root) const {
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(size_);
  MPI_Request request;
  const auto what = [root] { return "gather to rank " + std::to_string(root); };
  MPI_Igather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, comm_, &request);
  finish(request, what);
  std::vector<int> offsets(size_, 0);
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    offsets[r] = total;
    total += lengths[r];
  }
  std::string all(rank_ == root ? total : 0, '\0');
  MPI_Igatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, root, comm_,
               &request);
  finish(request, what);
  std::vector<std::string> result;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) result.push_back(all.substr(offsets[r], lengths[r]));
  return result;
}

void MpiControlPlane::barrier() const {
  MPI_Request request;
  MPI_Ibarrier(comm_, &request);
  finish(request, [] { return std::string("barrier"); });
}

}  // namespace splitpipe
