#include "model_util.hpp"

#include <algorithm>
#include <sstream>

#include "splitpipe/error.hpp"

namespace splitpipe {
namespace models {

void append_conv_bn(torch::nn::Sequential& seq, int64_t in, int64_t out, int64_t kernel,
                    int64_t stride, Act act, int64_t groups, bool bias) {
  seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                       .stride(stride)
                                       .padding(kernel / 2)
                                       .groups(groups)
                                       .bias(bias)));
  seq->push_back(torch::nn::BatchNorm2d(out));
  switch (act) {
    case Act::ReLU:
      seq->push_back(torch::nn::ReLU());
      break;
    case Act::ReLU6:
      seq->push_back(torch::nn::ReLU6());
      break;
    case Act::None:
      break;
  }
}

ImageShape require_image(const ModelSpec& spec, int64_t min_spatial) {
  const auto& s = spec.input_shape;
  if (s.size() != 3) {
    throw UsageError("model '" + spec.name + "' needs an image input shape CxHxW, got " +
                     shape_string(s));
  }
  if (s[1] < min_spatial || s[2] < min_spatial) {
    throw UsageError("model '" + spec.name + "' needs inputs of at least " +
                     std::to_string(min_spatial) + "x" + std::to_string(min_spatial) +
                     " pixels, got " + shape_string(s));
  }
  return {s[0], s[1], s[2]};
}

namespace {

// Runs `fn(block_index, output)` after each block on a batch-1 zeros input. Blocks go to eval
// mode for the pass (batch-1 BatchNorm on a 1x1 map fails in training mode, and eval-mode
// dropout draws no random numbers) and come back to the mode they were in.
template <typename Fn>
void dummy_pass(const std::vector<Block>& blocks, const std::vector<int64_t>& input_shape, Fn fn) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> batch_shape{1};
  batch_shape.insert(batch_shape.end(), input_shape.begin(), input_shape.end());
  auto x = torch::zeros(batch_shape);
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto module = blocks[i].module;
    const bool was_training = module->is_training();
    module->eval();
    try {
      x = module->forward(x);
    } catch (const c10::Error& e) {
      module->train(was_training);
      // The model-specific checks catch the usual cases; this names whatever else slips by.
      std::string what = e.what_without_backtrace();
      throw UsageError("input shape " + shape_string(input_shape) + " does not fit block '" +
                       blocks[i].name + "': " + what.substr(0, what.find('\n')));
    }
    module->train(was_training);
    fn(i, x);
  }
}

std::vector<int64_t> per_sample(const torch::Tensor& t) {
  auto sizes = t.sizes().vec();
  return {sizes.begin() + 1, sizes.end()};
}

std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

std::vector<int64_t> output_shape(const std::vector<Block>& blocks,
                                  const std::vector<int64_t>& input_shape) {
  std::vector<int64_t> shape = input_shape;
  dummy_pass(blocks, input_shape, [&](size_t, const torch::Tensor& y) { shape = per_sample(y); });
  return shape;
}

void fill_block_info(std::vector<Block>& blocks, const std::vector<int64_t>& input_shape) {
  dummy_pass(blocks, input_shape, [&](size_t i, const torch::Tensor& y) {
    blocks[i].output_shape = per_sample(y);
    blocks[i].parameters = count_parameters(*blocks[i].module);
  });
}

std::string shape_string(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "(scalar)";
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += 'x';
    out += std::to_string(shape[i]);
  }
  return out;
}

int64_t product(const std::vector<int64_t>& shape) {
  int64_t p = 1;
  for (auto d : shape) p *= d;
  return p;
}

}  // namespace models

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) total += p.numel();
  return total;
}

std::string format_block_table(const std::vector<Block>& blocks) {
  struct Row {
    std::string index, name, shape, params;
  };
  std::vector<Row> rows{{"#", "block", "output", "parameters"}};
  int64_t total = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    rows.push_back({std::to_string(i), blocks[i].name, models::shape_string(blocks[i].output_shape),
                    models::with_thousands(blocks[i].parameters)});
    total += blocks[i].parameters;
  }
  rows.push_back({"", "total", "", models::with_thousands(total)});

  size_t w0 = 0, w1 = 0, w2 = 0, w3 = 0;
  for (const auto& r : rows) {
    w0 = std::max(w0, r.index.size());
    w1 = std::max(w1, r.name.size());
    w2 = std::max(w2, r.shape.size());
    w3 = std::max(w3, r.params.size());
  }
  auto pad_right = [](const std::string& s, size_t w) {
    return s + std::string(w - s.size(), ' ');
  };
  auto pad_left = [](const std::string& s, size_t w) { return std::string(w - s.size(), ' ') + s; };
  std::ostringstream out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    // Numbers align right so digits line up; the total sits under a rule.
    if (i + 1 == rows.size()) out << std::string(w0 + w1 + w2 + w3 + 6, '-') << '\n';
    std::string line = pad_left(r.index, w0) + "  " + pad_right(r.name, w1) + "  " +
                       pad_right(r.shape, w2) + "  " + pad_left(r.params, w3);
    out << line << '\n';
  }
  return out.str();
}

}  // namespace splitpipe
