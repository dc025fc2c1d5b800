// The codec table: adding a codec is one source file defining its factory plus one line here.
// (An explicit table rather than self-registering statics: the codecs live in a static library,
// and the linker would drop a codec file that nothing references.)
#include "spec_parser.hpp"
#include "splitpipe/codec.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {

// Each factory reads its parameters from `params` through the typed getters.
std::unique_ptr<Codec> make_none_codec(CodecParams& params);
std::unique_ptr<Codec> make_fp16_codec(CodecParams& params);
std::unique_ptr<Codec> make_bf16_codec(CodecParams& params);
std::unique_ptr<Codec> make_quant_codec(CodecParams& params);
std::unique_ptr<Codec> make_sortquant_codec(CodecParams& params);
std::unique_ptr<Codec> make_lowrank_codec(CodecParams& params);
std::unique_ptr<Codec> make_topk_codec(CodecParams& params);
std::unique_ptr<Codec> make_kmeans_codec(CodecParams& params);

namespace {

struct CodecEntry {
  const char* name;
  const char* summary;
  std::unique_ptr<Codec> (*make)(CodecParams&);
};

const CodecEntry kCodecs[] = {
    {"none", "raw float32 (no parameters)", make_none_codec},
    {"fp16", "IEEE half precision, 2 bytes a value (no parameters)", make_fp16_codec},
    {"bf16", "bfloat16, 2 bytes a value, float32 range (no parameters)", make_bf16_codec},
    {"quant", "bits=1..16 (8), per=tensor|channel (dim 1; of [N,T,W]: W), round=nearest|stochastic, ef=0|1", make_quant_codec},
    {"sortquant", "bits=1..16 (6), split=0..8 (2) quantile buckets, ef=0|1", make_sortquant_codec},
    {"lowrank", "rank=R (8), iters=1..100 (1), view=sample|batch, factors=fp32|fp16, ef=0|1", make_lowrank_codec},
    {"topk", "ratio=0<P<=1 (0.1) of largest magnitudes kept, ef=0|1", make_topk_codec},
    {"kmeans", "bits=1..8 (4), iters=0..1000 (20) Lloyd rounds, ef=0|1", make_kmeans_codec},
};

}  // namespace

std::unique_ptr<Codec> make_codec(const std::string& spec) {
  CodecParams params = CodecParams::parse(spec);
  for (const auto& entry : kCodecs) {
    if (params.codec() != entry.name) continue;
    std::unique_ptr<Codec> codec = entry.make(params);
    params.reject_unknown();
    return codec;
  }
  std::string known;
  for (const auto& entry : kCodecs) known += (known.empty() ? "" : ", ") + std::string(entry.name);
  throw UsageError("unknown codec '" + params.codec() + "'; known: " + known);
}

std::vector<std::pair<std::string, std::string>> codec_catalogue() {
  std::vector<std::pair<std::string, std::string>> catalogue;
  for (const auto& entry : kCodecs) catalogue.emplace_back(entry.name, entry.summary);
  return catalogue;
}

}  // namespace splitpipe
