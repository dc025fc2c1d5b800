// Versions a run depends on, for --version and the run file's attributes.
#include <torch/cuda.h>
#include <torch/version.h>

#include "splitpipe/config.hpp"

namespace splitpipe {

std::string splitpipe_version() { return std::string(SPLITPIPE_VERSION) + " (" + SPLITPIPE_GIT_DESCRIBE + ")"; }

std::string libtorch_version() { return TORCH_VERSION; }

std::string version_report() {
  // The build links LibTorch's CUDA backend (cmake/LibTorch.cmake refuses a LibTorch without
  // one); whether a GPU is there is a fact of this machine.
  const size_t gpus = torch::cuda::device_count();
  return "splitpipe " + splitpipe_version() + "\nLibTorch " + libtorch_version() +
         "\nCUDA backend: built in; GPUs visible: " + std::to_string(gpus) +
         (gpus ? "\n" : " (--edge-device/--server-device cuda are refused on this machine)\n");
}

}  // namespace splitpipe
