// Disjoint shards of the training set, one per edge client (--edge-ranks, --shard).
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <sstream>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {

std::vector<at::Tensor> make_shards(const at::Tensor& labels, int64_t num_classes, int clients,
                                    const ShardSpec& spec, uint64_t seed, int64_t min_samples) {
  if (clients < 1) throw Error("shards: need at least one client, got " + std::to_string(clients));
  const int64_t n = labels.size(0);
  // A generator of our own, salted so that shards are not correlated with the epoch orders
  // (BatchOrder draws from seed * 1000003 + epoch).
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + 0x5eedULL);
  std::vector<std::vector<at::Tensor>> parts(clients);
  if (spec.kind == "iid") {
    const at::Tensor order = torch::randperm(n, generator, torch::kLong);
    int64_t begin = 0;
    for (int c = 0; c < clients; ++c) {
      const int64_t size = n / clients + (c < n % clients ? 1 : 0);
      parts[c].push_back(order.narrow(0, begin, size));
      begin += size;
    }
  } else if (spec.kind == "label-skew") {
    const at::Tensor concentration = torch::full({clients}, spec.alpha, torch::kDouble);
    for (int64_t label = 0; label < num_classes; ++label) {
      const at::Tensor members = labels.eq(label).nonzero().view(-1);
      const int64_t count = members.size(0);
      const at::Tensor shuffled = members.index_select(0, torch::randperm(count, generator, torch::kLong));
      at::Tensor share = at::_sample_dirichlet(concentration, generator);
      // A tiny alpha can underflow every gamma draw to zero: then one client takes the label.
      if (!torch::isfinite(share).all().item<bool>() || share.sum().item<double>() <= 0)
        share = torch::zeros({clients}, torch::kDouble).index_fill_(0, torch::tensor({label % clients}), 1.0);
      const at::Tensor cumulative = share.cumsum(0) / share.sum();
      int64_t begin = 0;
      for (int c = 0; c < clients; ++c) {
        const int64_t end = c + 1 == clients ? count : std::llround(cumulative[c].item<double>() * count);
        const int64_t clamped = std::clamp<int64_t>(end, begin, count);
        parts[c].push_back(shuffled.narrow(0, begin, clamped - begin));
        begin = clamped;
      }
    }
  } else {
    throw UsageError("--shard: unknown kind '" + spec.kind + "' (iid | label-skew)");
  }
  std::ostringstream spec_text;
  spec_text << spec.kind;
  if (spec.kind == "label-skew") spec_text << ":alpha=" << spec.alpha;
  std::vector<at::Tensor> shards;
  for (int c = 0; c < clients; ++c) {
    const at::Tensor shard = std::get<0>(at::cat(parts[c]).sort());
    if (shard.size(0) < min_samples)
      throw Error("edge client " + std::to_string(c) + " (rank " + std::to_string(c) + "): its shard of the training set (--shard " +
                  spec_text.str() +
                  ") holds " + std::to_string(shard.size(0)) + " samples, fewer than one mini-batch of " +
                  std::to_string(min_samples) +
                  "; use fewer --edge-ranks, more training samples, a smaller --batch-size or a larger alpha");
    shards.push_back(shard);
  }
  return shards;
}

}  // namespace splitpipe
