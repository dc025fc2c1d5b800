// Parallel edge clients (--client-mode parallel) keep one copy of the edge stages each; every
// --sync-every steps they replace it by the element-wise mean over the clients (SplitFed):
// parameters, floating-point buffers (BatchNorm running statistics) and SGD momentum. Equal
// weights are exact here: between two averages every client trains the same number of
// mini-batches of the same size.
#pragma once
#include <memory>

#include "splitpipe/mpi_world.hpp"
#include "splitpipe/pipeline.hpp"

namespace torch::optim {
class SGD;
}

namespace splitpipe {

class EdgeAverager {
 public:
  // Collective over `world`: ranks 0..clients-1 form the averaging communicator.
  EdgeAverager(const MpiTransport& world, int clients, double timeout_seconds);

  bool is_member() const { return clients_ != nullptr; }
  // Collective over the clients. `optimizer` may be null (no parameters on this rank).
  void average(PipelineExecutor& executor, torch::optim::SGD* optimizer);

  double seconds() const { return seconds_; }  // spent in average(), accumulated
  double bytes() const { return bytes_; }      // floats this rank contributed, x4, accumulated

 private:
  std::unique_ptr<MpiTransport> clients_;  // over ranks 0..clients-1; null on servers
  int count_;
  double seconds_ = 0, bytes_ = 0;
};

}  // namespace splitpipe
