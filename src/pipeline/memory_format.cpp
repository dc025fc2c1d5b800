#include "memory_format.hpp"

#include <torch/autograd.h>

namespace splitpipe {
namespace {

struct ChannelsLastBoundary : torch::autograd::Function<ChannelsLastBoundary> {
  static at::Tensor forward(torch::autograd::AutogradContext* /*context*/, const at::Tensor& x) {
    return canonical_channels_last(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* /*context*/,
                                                 torch::autograd::variable_list gradients) {
    return {canonical_channels_last(gradients.at(0))};
  }
};

}  // namespace

bool wants_channels_last(const std::string& format, bool on_cpu, const std::vector<at::Tensor>& parameters) {
  if (format != "channels-last" && !(format == "auto" && on_cpu)) return false;
  for (const auto& p : parameters)
    if (p.dim() == 4) return true;
  return false;
}

void store_channels_last(const std::vector<at::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  for (auto p : parameters)
    if (p.dim() == 4) p.set_data(canonical_channels_last(p.detach()));
}

at::Tensor channels_last_boundary(const at::Tensor& x) {
  if (x.dim() != 4) return x;
  return ChannelsLastBoundary::apply(x);
}

at::Tensor canonical_channels_last(const at::Tensor& x) {
  if (x.dim() != 4) return x;
  const std::vector<int64_t> strides = c10::get_channels_last_strides_2d(x.sizes());
  if (x.strides() == c10::IntArrayRef(strides)) return x;
  at::Tensor copy = at::empty_strided(x.sizes(), strides, x.options());
  copy.copy_(x);
  return copy;
}

}  // namespace splitpipe
