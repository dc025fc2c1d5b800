// `--model torchscript:FILE`: a model scripted in Python (torch.jit.script of an nn.Sequential,
// or any module) whose top-level children, in order, are the blocks. Its weights are the
// starting point (pretrained weights train on from there), and each block trains, partitions,
// checkpoints and compresses like a built-in one: its parameters and buffers are registered
// with a LibTorch module that shares their tensors, so the optimizer, checkpoints and .to()
// act on the scripted module's own weights.
#include <torch/script.h>

#include <algorithm>
#include <filesystem>

#include "model_util.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe::models {
namespace {

// Module names may not hold '.'; a nested parameter "0.weight" becomes "0_weight".
std::string flat_name(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

class ScriptedBlockImpl : public torch::nn::Module {
 public:
  ScriptedBlockImpl(torch::jit::Module module, std::string where)
      : module_(std::move(module)), where_(std::move(where)) {
    for (const auto& parameter : module_.named_parameters(/*recurse=*/true))
      register_parameter(flat_name(parameter.name), parameter.value, parameter.value.requires_grad());
    for (const auto& buffer : module_.named_buffers(/*recurse=*/true))
      register_buffer(flat_name(buffer.name), buffer.value);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const c10::IValue out = module_.forward({x});
    if (!out.isTensor())
      throw UsageError(where_ + " returns " + out.tagKind() + ", not a tensor; each top-level child of a "
                       "TorchScript model must map one tensor to one tensor");
    return out.toTensor();
  }

  // Dropout and batch norm follow the pipeline's train/eval switch.
  void train(bool on) override {
    torch::nn::Module::train(on);
    module_.train(on);
  }

 private:
  torch::jit::Module module_;
  std::string where_;
};
TORCH_MODULE(ScriptedBlock);

}  // namespace

std::vector<Block> build_torchscript(const ModelSpec& spec) {
  const std::string path = spec.name.substr(std::string(kTorchScriptPrefix).size());
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw UsageError("--model " + spec.name + ": no file '" + path + "' (write one with torch.jit.script(model).save)");
  torch::jit::Module model;
  try {
    model = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw UsageError("--model " + spec.name + ": '" + path + "' is not a TorchScript file this LibTorch can load: " +
                     e.what_without_backtrace());
  }
  std::vector<Block> blocks;
  for (const auto& child : model.named_children()) {
    const std::string where = "block " + std::to_string(blocks.size()) + " ('" + child.name + "') of " + path;
    if (!child.value.find_method("forward"))
      throw UsageError(where + " has no forward method");
    blocks.push_back(make_block(child.name, torch::nn::Sequential(ScriptedBlock(child.value, where))));
  }
  if (blocks.empty())
    throw UsageError("--model " + spec.name + ": the scripted module has no children, so there are no blocks to "
                     "partition; script an nn.Sequential whose children are the blocks (see the README)");
  return blocks;
}

}  // namespace splitpipe::models
