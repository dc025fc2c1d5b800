// Throughput and accuracy of every boundary codec, in the style of nccl-tests / OSU: the setup
// first, then one table per activation shape, with a plain memcpy of the same bytes as the
// reference and, for lowrank, a truncated torch::linalg_svd at the same rank.
//
//   bench_codecs [--threads N] [--iters N] [--quick] [--codec SPEC]... [--shape N,C,...]...
#include "splitpipe/codec.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/step_memory.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kWarmup = 2;

struct Options {
  int threads = 0;  // 0: LibTorch's default
  int iters = 5;
  bool quick = false;
  std::vector<std::string> codecs;
  std::vector<std::vector<int64_t>> shapes;  // --shape; empty: the default set
};

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::stringstream in(text);
  for (std::string dim; std::getline(in, dim, ',');) {
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(dim, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != dim.size() || value < 1)
      throw splitpipe::UsageError("--shape " + text + ": dims must be positive integers separated by commas, e.g. 64,1280,7,7");
    shape.push_back(value);
  }
  if (shape.size() < 2) throw splitpipe::UsageError("--shape " + text + ": needs at least [batch, features]");
  return shape;
}

Options parse_options(int argc, char** argv) {
  Options options;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) throw splitpipe::UsageError(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads") {
      options.threads = std::stoi(value(i));
    } else if (arg == "--iters") {
      options.iters = std::max(1, std::stoi(value(i)));
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--codec") {
      options.codecs.push_back(value(i));
    } else if (arg == "--shape") {
      options.shapes.push_back(parse_shape(value(i)));
    } else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: bench_codecs [--threads N] [--iters N (>=5 recommended)] [--quick] [--codec SPEC]... [--shape N,C,...]...\n";
      std::exit(0);
    } else {
      throw splitpipe::UsageError("unknown option '" + arg + "' (see --help)");
    }
  }
  if (options.codecs.empty())
    options.codecs = {"none", "fp16", "bf16", "quant:bits=12", "quant:bits=8", "quant:bits=4",
                      "quant:bits=8,per=channel", "sortquant:bits=6,split=2", "sortquant:bits=2,split=2",
                      "lowrank:rank=8", "lowrank:rank=8,view=batch", "lowrank:rank=8,factors=fp16", "topk:ratio=0.1", "kmeans:bits=4"};
  return options;
}

// Median seconds of `iters` timed runs after kWarmup untimed ones.
double median_seconds(int iters, const std::function<void()>& run) {
  for (int i = 0; i < kWarmup; ++i) run();
  std::vector<double> seconds;
  for (int i = 0; i < iters; ++i) {
    const auto start = Clock::now();
    run();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
  return seconds[seconds.size() / 2];
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t d = 0; d < shape.size(); ++d) text += (d ? "," : "") + std::to_string(shape[d]);
  return text + "]";
}

void bench_shape(const std::vector<int64_t>& shape, const Options& options, uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  // ReLU-like activations: half zeros, a half-normal tail.
  const at::Tensor x = at::relu(at::randn(shape, generator, at::kFloat));
  const double bytes = static_cast<double>(x.numel()) * sizeof(float);
  const double norm = x.norm().item<double>();
  std::printf("\n# shape %s  (%.1f MB float32)\n", shape_text(shape).c_str(), bytes / 1e6);
  std::printf("%-30s %12s %12s %9s %11s  %s\n", "codec", "encode GB/s", "decode GB/s", "ratio", "rel.error",
              "note");

  std::vector<uint8_t> copy(static_cast<size_t>(bytes));
  const double memcpy_s =
      median_seconds(options.iters, [&] { std::memcpy(copy.data(), x.data_ptr<float>(), copy.size()); });
  std::printf("%-30s %12.2f %12s %9.4f %11.2e  %s\n", "memcpy (reference)", bytes / memcpy_s / 1e9, "-", 1.0, 0.0,
              "std::memcpy into a preallocated buffer");

  for (const auto& spec : options.codecs) {
    auto codec = splitpipe::make_codec(spec);
    std::vector<uint8_t> message;
    message.reserve(codec->encoded_bytes(x.sizes()));
    size_t message_bytes = 0;
    const double encode_s = median_seconds(options.iters, [&] { message_bytes = codec->encode(x, message, 0); });
    at::Tensor decoded;
    const double decode_s =
        median_seconds(options.iters, [&] { codec->decode_into(message.data(), message_bytes, decoded); });
    const double error = (x - decoded).norm().item<double>() / norm;
    std::string note;
    if (codec->id() == splitpipe::CodecId::LowRank && x.dim() >= 2) {
      // The alternative the notes measured: a full (thin) SVD truncated to the same rank, of
      // the same matrices the codec factors (per sample, or one [N, numel/N]).
      const bool per_sample = x.dim() >= 3 && codec->spec().find("view=sample") != std::string::npos;
      const at::Tensor matrix = per_sample ? x.reshape({x.size(0), x.size(1), -1}) : x.reshape({1, x.size(0), -1});
      const std::string canonical = codec->spec();
      const int64_t codec_rank = std::stoll(canonical.substr(canonical.find("rank=") + 5));
      const int64_t rank = std::min<int64_t>({codec_rank, matrix.size(1), matrix.size(2)});
      const double svd_s = median_seconds(options.iters, [&] {
        at::Tensor u, s, vh;
        std::tie(u, s, vh) = torch::linalg_svd(matrix, /*full_matrices=*/false);
        (u.narrow(2, 0, rank) * s.narrow(1, 0, rank).unsqueeze(1)).bmm(vh.narrow(1, 0, rank));
      });
      char text[128];
      std::snprintf(text, sizeof(text), "linalg_svd rank %lld: %.1f ms, encode %.1f ms, speedup %.1fx",
                    static_cast<long long>(rank), svd_s * 1e3, encode_s * 1e3, svd_s / encode_s);
      note = text;
    }
    std::printf("%-30s %12.2f %12.2f %9.4f %11.2e  %s\n", spec.c_str(), bytes / encode_s / 1e9,
                bytes / decode_s / 1e9, static_cast<double>(message_bytes) / bytes, error, note.c_str());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  splitpipe::step_memory::keep_freed_memory_for_reuse();  // the heap splitpipe itself runs with
  try {
    const Options options = parse_options(argc, argv);
    if (options.threads > 0) at::set_num_threads(options.threads);
    const std::vector<std::vector<int64_t>> shapes =
        !options.shapes.empty() ? options.shapes
        : options.quick ? std::vector<std::vector<int64_t>>{{8, 32, 28, 28}, {8, 160, 7, 7}, {8, 64, 96}}
                      : std::vector<std::vector<int64_t>>{{64, 32, 112, 112}, {64, 1280, 7, 7}, {64, 128, 768}};
    std::printf("# bench_codecs: boundary codecs, CPU\n");
    std::printf("# threads      %d (at::get_num_threads)\n", at::get_num_threads());
    std::printf("# shapes      ");
    for (const auto& shape : shapes) std::printf(" %s", shape_text(shape).c_str());
    std::printf("\n# batch        %lld (dim 0)\n", static_cast<long long>(shapes[0][0]));
    std::printf("# iterations   %d timed (median reported), %d warm-up\n", options.iters, kWarmup);
    std::printf("# input        relu(randn), seeded; GB/s counts float32 input bytes; ratio = wire bytes / float32 bytes\n");
    std::printf("# decode       into a kept tensor, as a boundary channel decodes (Codec::decode_into)\n");
    std::printf("# error        ||x - decoded|| / ||x||\n");
    std::printf("# heap         freed memory kept for reuse, as in splitpipe (MALLOC_* variables override)\n");
    uint64_t seed = 1;
    for (const auto& shape : shapes) bench_shape(shape, options, seed++);
    return 0;
  } catch (const splitpipe::Error& error) {
    std::fprintf(stderr, "bench_codecs: %s\n", error.what());
    return error.exit_code();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_codecs: %s\n", error.what());
    return 1;
  }
}
