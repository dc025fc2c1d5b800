#include "model_util.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {

namespace {

using Builder = std::vector<Block> (*)(const ModelSpec&);

struct Entry {
  const char* name;
  Builder build;
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries{
      {"lenet5", models::build_lenet5},           {"mlp", models::build_mlp},
      {"alexnet", models::build_alexnet},         {"vgg16bn", models::build_vgg16bn},
      {"mobilenetv2", models::build_mobilenetv2}, {"resnet18", models::build_resnet18},
      {"transformer", models::build_transformer}, {"vit", models::build_vit},
  };
  return entries;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.emplace_back(e.name);
  return names;
}

std::vector<Block> build_model(const ModelSpec& spec) {
  const Entry* entry = nullptr;
  for (const auto& e : registry()) {
    if (spec.name == e.name) entry = &e;
  }
  static const Entry torchscript{models::kTorchScriptPrefix, models::build_torchscript};
  if (spec.name.rfind(models::kTorchScriptPrefix, 0) == 0) entry = &torchscript;
  if (!entry) {
    std::string known;
    for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    throw UsageError("unknown model '" + spec.name + "' (known: " + known + ", or torchscript:FILE)");
  }
  // Checks every model needs, so each builder only checks what is particular to it.
  if (spec.input_shape.empty()) {
    throw UsageError("model '" + spec.name + "' needs an input shape");
  }
  for (auto d : spec.input_shape) {
    if (d <= 0) {
      throw UsageError("model '" + spec.name + "': input shape " +
                       models::shape_string(spec.input_shape) + " has a non-positive dimension");
    }
  }
  if (spec.num_classes < 1) {
    throw UsageError("model '" + spec.name + "' needs at least one class, got " +
                     std::to_string(spec.num_classes));
  }
  auto blocks = entry->build(spec);
  models::fill_block_info(blocks, spec.input_shape);
  return blocks;
}

}  // namespace splitpipe
