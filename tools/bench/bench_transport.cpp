// The data plane against raw MPI, in the style of the OSU latency (osu_latency) and bandwidth
// (osu_bw) tests, between ranks 0 and 1, for message sizes 8 B .. --max-bytes, through
//   raw MPI        MPI_Isend/MPI_Irecv + MPI_Wait on a duplicated communicator (the reference),
//   MpiTransport   splitpipe's MPI data plane (post, then a polled wait with a timeout),
//   +link          the same wrapped in the emulated-link decorator at 1 Tbit/s (its own cost),
//   channel        what a pipeline boundary does with codec `none`: encode the float32 tensor
//                  into the message (64-byte header + copy), send it, decode it into a tensor,
// each measured in the same run. Latency: half a ping-pong round trip. Bandwidth: rank 0 posts a
// window of messages, rank 1 receives them all and answers with 4 bytes.
//
//   mpirun -np 2 bench_transport [--iters N] [--max-bytes N] [--window N]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "splitpipe/codec.hpp"
#include "splitpipe/emulated_link.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/step_memory.hpp"

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
  splitpipe::step_memory::keep_freed_memory_for_reuse();  // the heap splitpipe itself runs with
  splitpipe::MpiSession session(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int iters = 200, window = 64;
  size_t max_bytes = size_t{64} << 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iters" && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--max-bytes" && i + 1 < argc) {
      max_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--window" && i + 1 < argc) {
      window = std::max(1, std::atoi(argv[++i]));
    } else {
      if (rank == 0) std::printf("usage: mpirun -np 2 bench_transport [--iters N] [--max-bytes N] [--window N]\n");
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

  // A boundary message with codec none: the tensor is encoded into the message buffer, and the
  // receiver decodes the message into a tensor, as InboundChannel/OutboundChannel do.
  at::set_num_threads(1);
  auto codec = splitpipe::make_codec("none");
  std::vector<uint8_t> message(codec->encoded_bytes({static_cast<int64_t>(max_bytes / 4)})), inbox(message.size());
  const at::Tensor tensor = at::ones({static_cast<int64_t>(max_bytes / 4)});
  auto channel_once = [&](bool first, size_t bytes) {
    const at::Tensor x = tensor.narrow(0, 0, static_cast<int64_t>(bytes / 4));
    const size_t size = codec->encoded_bytes(x.sizes());
    auto send_tensor = [&] { transport.wait(transport.post_send(peer, message.data(), codec->encode(x, message))); };
    auto receive_tensor = [&] {
      transport.wait(transport.post_recv(peer, inbox.data(), size));
      (void)codec->decode(inbox.data(), size);
    };
    if (first) {
      send_tensor();
      receive_tensor();
    } else {
      receive_tensor();
      send_tensor();
    }
  };

  if (rank == 0) {
    std::printf("# bench_transport: 2 ranks; binding as mpirun set it (tools/bench-transport: --bind-to none); "
                "1 thread per rank\n");
    std::printf("# reference: raw MPI_Isend/MPI_Irecv + MPI_Wait on a duplicate of MPI_COMM_WORLD, same run\n");
    std::printf("# heap: freed memory kept for reuse, as in splitpipe (MALLOC_* variables override)\n");
    std::printf("# latency: us per one-way message (half a ping-pong round trip), best of 3 x %d; extra = us over raw\n",
                iters);
    std::printf("%12s %10s %12s %8s %10s %8s %11s %8s\n", "bytes", "raw us", "Transport us", "extra", "+link us",
                "extra", "channel us", "extra");
  }
  std::vector<size_t> sizes;
  for (size_t bytes = 8; bytes <= max_bytes; bytes *= 4) sizes.push_back(bytes);
  if (sizes.back() != max_bytes && max_bytes >= 8) sizes.push_back(max_bytes);  // 64 MiB by default
  for (const size_t bytes : sizes) {
    const int n = bytes >= (size_t{1} << 20) ? std::max(iters / 20, 5) : iters;
    const double raw_s = round_trip_seconds(raw_once, bytes, n, rank) / 2;
    const double transport_s = round_trip_seconds(data_plane_once(transport), bytes, n, rank) / 2;
    const double link_s = round_trip_seconds(data_plane_once(link), bytes, n, rank) / 2;
    const double channel_s = round_trip_seconds(channel_once, bytes, n, rank) / 2;
    if (rank == 0)
      std::printf("%12zu %10.2f %12.2f %8.2f %10.2f %8.2f %11.2f %8.2f\n", bytes, raw_s * 1e6, transport_s * 1e6,
                  (transport_s - raw_s) * 1e6, link_s * 1e6, (link_s - raw_s) * 1e6, channel_s * 1e6,
                  (channel_s - raw_s) * 1e6);
  }

  // Bandwidth: a window of messages in flight (each from its own buffer slot, as the pipeline's
  // micro-batches are), then a 4-byte acknowledgement.
  if (rank == 0) {
    std::printf("# bandwidth: window of up to %d messages in flight (at most 256 MiB per window), then a 4-byte "
                "ack; GB/s = window x bytes / time, best of 3; ratio = GB/s / raw MPI GB/s\n", window);
    std::printf("%12s %7s %10s %13s %8s %10s %8s\n", "bytes", "window", "raw GB/s", "Transport GB/s", "ratio",
                "+link GB/s", "ratio");
  }
  std::vector<uint8_t> ack(4);
  for (const size_t bytes : sizes) {
    const int w = static_cast<int>(std::max<size_t>(1, std::min<size_t>(window, (size_t{256} << 20) / bytes)));
    std::vector<uint8_t> slots(static_cast<size_t>(w) * bytes);
    auto raw_window = [&](bool first, size_t b) {
      std::vector<MPI_Request> requests(static_cast<size_t>(w));
      for (int i = 0; i < w; ++i)
        first ? MPI_Isend(slots.data() + i * b, static_cast<int>(b), MPI_BYTE, peer, 1, raw, &requests[i])
              : MPI_Irecv(slots.data() + i * b, static_cast<int>(b), MPI_BYTE, peer, 1, raw, &requests[i]);
      MPI_Waitall(w, requests.data(), MPI_STATUSES_IGNORE);
      first ? MPI_Recv(ack.data(), 4, MPI_BYTE, peer, 2, raw, MPI_STATUS_IGNORE)
            : MPI_Send(ack.data(), 4, MPI_BYTE, peer, 2, raw);
    };
    auto plane_window = [&](splitpipe::Transport& t) {
      return [&t, &slots, &ack, w, peer](bool first, size_t b) {
        std::vector<splitpipe::Transport::Ticket> tickets;
        for (int i = 0; i < w; ++i)
          tickets.push_back(first ? t.post_send(peer, slots.data() + i * b, b) : t.post_recv(peer, slots.data() + i * b, b));
        for (const auto ticket : tickets) t.wait(ticket);
        t.wait(first ? t.post_recv(peer, ack.data(), 4) : t.post_send(peer, ack.data(), 4));
      };
    };
    const int n = std::max(3, std::min(iters, static_cast<int>((size_t{512} << 20) / (bytes * w))));
    const double raw_s = round_trip_seconds(raw_window, bytes, n, rank);
    const double transport_s = round_trip_seconds(plane_window(transport), bytes, n, rank);
    const double link_s = round_trip_seconds(plane_window(link), bytes, n, rank);
    const double volume = static_cast<double>(w) * static_cast<double>(bytes);
    if (rank == 0)
      std::printf("%12zu %7d %10.2f %13.2f %8.2f %10.2f %8.2f\n", bytes, w, volume / raw_s / 1e9,
                  volume / transport_s / 1e9, raw_s / transport_s, volume / link_s / 1e9, raw_s / link_s);
  }
  MPI_Comm_free(&raw);
  return 0;
}
