// The data plane against raw MPI, in the style of the OSU latency/bandwidth tests: a ping-pong
// between ranks 0 and 1 for each message size, through
//   raw MPI        MPI_Isend/MPI_Irecv + MPI_Wait on a duplicated communicator (the reference),
//   MpiTransport   splitpipe's MPI data plane (post, then a polled wait with a timeout),
//   +link          the same wrapped in the emulated-link decorator at 1 Tbit/s (its own cost),
// each measured in the same run, with the ratio of their round-trip times to raw MPI's.
//
//   mpirun -np 2 bench_transport [--iters N] [--max-bytes N]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "splitpipe/emulated_link.hpp"
#include "splitpipe/mpi_world.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Seconds per round trip of `bytes` from rank 0 to rank 1 and back, best of 3 repetitions of
// `iters` round trips (after a warm-up), agreed on rank 0.
double round_trip_seconds(const std::function<void(bool first, size_t bytes)>& once, size_t bytes, int iters, int rank) {
  double best = 1e30;
  for (int repeat = 0; repeat < 4; ++repeat) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = Clock::now();
    for (int i = 0; i < iters; ++i) once(rank == 0, bytes);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count() / iters;
    if (repeat > 0) best = std::min(best, seconds);  // repeat 0 warms up
  }
  MPI_Bcast(&best, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  splitpipe::MpiSession session(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int iters = 200;
  size_t max_bytes = size_t{16} << 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iters" && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--max-bytes" && i + 1 < argc) {
      max_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else {
      if (rank == 0) std::printf("usage: mpirun -np 2 bench_transport [--iters N] [--max-bytes N]\n");
      return arg == "--help" ? 0 : 2;
    }
  }
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "bench_transport: run it with mpirun -np 2 (got %d ranks)\n", size);
    return 2;
  }

  MPI_Comm raw;
  MPI_Comm_dup(MPI_COMM_WORLD, &raw);
  splitpipe::MpiControlPlane control(MPI_COMM_WORLD);
  control.set_timeout(60);
  splitpipe::MpiTransport transport(control);
  splitpipe::LinkSpec fast;
  fast.bits_per_second = 1e12;
  splitpipe::EmulatedLinkTransport link(transport, control, {fast});

  std::vector<uint8_t> send(max_bytes, 1), receive(max_bytes, 0);
  const int peer = 1 - rank;
  auto raw_once = [&](bool first, size_t bytes) {
    MPI_Request request;
    if (first) {
      MPI_Isend(send.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw, &request);
      MPI_Wait(&request, MPI_STATUS_IGNORE);
      MPI_Irecv(receive.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw, &request);
      MPI_Wait(&request, MPI_STATUS_IGNORE);
    } else {
      MPI_Irecv(receive.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw, &request);
      MPI_Wait(&request, MPI_STATUS_IGNORE);
      MPI_Isend(send.data(), static_cast<int>(bytes), MPI_BYTE, peer, 0, raw, &request);
      MPI_Wait(&request, MPI_STATUS_IGNORE);
    }
  };
  auto data_plane_once = [&](splitpipe::Transport& t) {
    return [&t, &send, &receive, peer](bool first, size_t bytes) {
      if (first) {
        t.wait(t.post_send(peer, send.data(), bytes));
        t.wait(t.post_recv(peer, receive.data(), bytes));
      } else {
        t.wait(t.post_recv(peer, receive.data(), bytes));
        t.wait(t.post_send(peer, send.data(), bytes));
      }
    };
  };

  if (rank == 0) {
    std::printf("# bench_transport: ping-pong between 2 ranks, best of 3 x %d round trips per size\n", iters);
    std::printf("# reference: raw MPI_Isend/MPI_Irecv + MPI_Wait on a duplicate of MPI_COMM_WORLD, same run\n");
    std::printf("# unit: microseconds per round trip; MB/s = 2 x bytes / round trip; ratio = time / raw MPI time\n");
    std::printf("# binding: as mpirun set it (tools/bench-transport passes --bind-to none); 1 thread per rank\n");
    std::printf("%12s %12s %10s %12s %8s %12s %8s\n", "bytes", "raw MPI us", "MB/s", "Transport us", "ratio",
                "+link us", "ratio");
  }
  for (size_t bytes = 8; bytes <= max_bytes; bytes *= 8) {
    const int n = bytes >= (size_t{1} << 20) ? std::max(iters / 10, 5) : iters;
    const double raw_s = round_trip_seconds(raw_once, bytes, n, rank);
    const double transport_s = round_trip_seconds(data_plane_once(transport), bytes, n, rank);
    const double link_s = round_trip_seconds(data_plane_once(link), bytes, n, rank);
    if (rank == 0)
      std::printf("%12zu %12.1f %10.0f %12.1f %8.2f %12.1f %8.2f\n", bytes, raw_s * 1e6, 2.0 * bytes / raw_s / 1e6,
                  transport_s * 1e6, transport_s / raw_s, link_s * 1e6, link_s / raw_s);
  }
  MPI_Comm_free(&raw);
  return 0;
}
