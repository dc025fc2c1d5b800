// The state of this rank's stages between steps: their modules (held by the executor), the
// SGD optimizer over them, and the global RNG (dropout). Everything that moves state between
// ranks or to disk goes through here: checkpoints (save/load), the sequential hand-off
// (serialize/deserialize), the parallel clients' average, and the digest that tests compare.
#pragma once
#include <memory>
#include <string>

#include "splitpipe/control_plane.hpp"
#include "splitpipe/pipeline.hpp"

namespace torch::optim {
class SGD;
}
namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace splitpipe {

struct OptimizerOptions {
  double lr = 0.05, momentum = 0.9, weight_decay = 5e-4;
  bool nesterov = false;
};

class StageState {
 public:
  // `executor` must outlive this object. A rank without parameters has no optimizer.
  StageState(PipelineExecutor& executor, const OptimizerOptions& options);
  ~StageState();

  void zero_grad();
  void set_lr(double lr);
  void divide_gradients(double divisor);
  void step();

  // Parameters, buffers, optimizer state and RNG state (CPU, and CUDA where the stages are).
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);
  std::string serialize() const;
  void deserialize(const std::string& bytes);

  // Collective over `group`: parameters, floating-point buffers (BatchNorm statistics) and SGD
  // momentum become their element-wise mean over the group. Returns the bytes this rank
  // contributed.
  double average(const ControlPlane& group);

  // FNV-1a over parameters and buffers: equal digests mean bit-identical weights.
  std::string digest() const;

 private:
  PipelineExecutor& executor_;
  std::unique_ptr<torch::optim::SGD> optimizer_;
};

}  // namespace splitpipe
