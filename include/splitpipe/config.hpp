// The resolved configuration of a run: command line first, then the INI file (--config),
// then defaults. Every option is declared once (src/cli/options.cpp) and drives --help,
// the resolved INI text stored in the run file, and the per-option HDF5 attributes.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "splitpipe/data.hpp"
#include "splitpipe/transformer_shape.hpp"

namespace splitpipe {

struct RunConfig {
  // [run]
  std::string config_file;
  std::string output;  // empty: results/<model>-<dataset>-<timestamp>.h5
  bool overwrite = false;
  bool dry_run = false;
  bool print_schedule = false;
  bool plan = false;  // measure, predict and print the best plans, then exit
  std::string plan_codecs = "none;quant:bits=8;sortquant:bits=6,split=2;quant:bits=4";  // ';'-separated
  double max_rel_error = 0.02;  // the planner's ceiling on a codec's relative error, per direction
  int plan_top = 10;
  std::string plan_max_memory = "0";  // the planner's ceiling on activations held per rank ("512M"; 0: none)
  uint64_t seed = 1;
  int threads = 1;
  int expect_ranks = 0;  // 0: any world size
  int64_t progress_every = 0;  // print a progress line every N steps (0: about every 10 s)
  std::string trace;            // Chrome trace JSON of the first trace_steps steps (empty: none)
  int64_t trace_steps = 10;

  // [model]
  std::string model = "lenet5";
  std::vector<int64_t> mlp_hidden{1000, 500, 125};
  TransformerShape transformer;

  // [data]
  DataOptions data;
  bool augment = false;
  int prefetch = 2;  // batches prepared ahead on a background thread (0: on the training thread)

  // [train]
  int epochs = 10;
  int64_t batch_size = 64;
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = false;
  std::string lr_schedule = "cosine";  // constant | step | cosine
  int warmup_epochs = 1;  // when not given: 0 for a 1-epoch run (see parse_command_line)
  int lr_step_epochs = 30;
  double lr_gamma = 0.1;

  // [pipeline]
  int edge_first = 1;
  // "auto" for --edge-first, --edge-last, --chunks: the planner chooses them (like "auto" in
  // --server-split, --fwd-codec and --bwd-codec); run() resolves them before anything trains.
  bool edge_first_auto = false, edge_last_auto = false, chunks_auto = false;
  // What the planner chose for the auto options and the samples/s it predicted (empty and 0
  // without auto options); stored in the run file beside the measured result.
  std::string plan_chosen;
  double plan_predicted_samples_per_second = 0;
  int edge_last = 1;
  bool recompute = false;
  std::string memory_format = "auto";  // auto | contiguous | channels-last
  double edge_compute_scale = 1.0;     // >= 1: the edge's compute emulated this many times slower
  std::string server_split = "even";  // even | params | time | i,j,...
  std::string schedule = "gpipe";     // gpipe | 1f1b
  int chunks = 1;
  std::string edge_device = "cpu";
  std::string server_device = "cpu";
  std::string transport = "mpi";  // data plane: mpi | nccl (src/transport/registry.cpp)

  // [clients] several edge clients sharing the servers (src/train/client_strategy.hpp)
  int edge_ranks = 1;                      // E: ranks 0..E-1 are edge clients, E..N-1 servers
  std::string shard = "iid";               // iid | label-skew:alpha=X
  std::string client_mode = "sequential";  // sequential | parallel
  int sync_every = 1;                      // parallel: average edge weights every N steps

  // [compress]
  std::string fwd_codec = "none";
  std::string bwd_codec = "none";

  // [link]
  std::string link;  // empty: no emulated link; else one spec for every client, or one per client separated by ';'


  // [reliability]
  std::string checkpoint_dir;  // empty: no checkpoints
  int checkpoint_every = 1;    // epochs between checkpoints (with --checkpoint-dir)
  int keep_checkpoints = 2;    // complete checkpoints kept; older ones are deleted
  bool resume = false;         // continue from the newest complete checkpoint in --checkpoint-dir
  double comm_timeout = 120;   // seconds without progress before a rank gives up (0: never)
  std::string on_nonfinite = "stop";  // stop | skip-batch
  std::string fault_inject;    // tests: "rank=R,step=S,mode=crash|hang|exception"

  // Filled by the parser: every option as (section, name, resolved value text).
  struct ResolvedOption {
    std::string section, name, value;
    char kind = 's';  // i: integer, u: unsigned integer, b: flag (true/false), f: real, s: text
  };
  std::vector<ResolvedOption> resolved;

  std::string to_ini() const;  // the resolved options as INI text, grouped by section
  // Replaces one option's resolved text (the planner's choice for an "auto" option).
  void set_resolved(const std::string& name, const std::string& value);
  // Whether any option is "auto", for the planner to fill.
  bool planned() const {
    return edge_first_auto || edge_last_auto || chunks_auto || schedule == "auto" || server_split == "auto" ||
           fwd_codec == "auto" || bwd_codec == "auto";
  }
};

struct CommandLine {
  bool help = false;  // --help was given: print help_text and exit 0
  bool version = false;  // --version was given: print version_report() and exit 0
  bool print_schema = false;  // --print-schema: print schema_markdown() and exit 0
  std::vector<std::string> check_configs;  // --check-configs: check_configs(these, check_ranks) and exit
  int check_ranks = 1;
  std::vector<std::string> predict_configs;  // --predict-configs: predict_configs(these) on the MPI world, exit
  std::string help_text;
  RunConfig config;
};

// Parses argv (and the --config file). Throws UsageError naming the option and the problem.
CommandLine parse_command_line(int argc, const char* const argv[]);

// Checks values that need more than a type (ranges, names, codec specs). Throws UsageError.
void validate(const RunConfig& config);

// Splits "1,2,3" or "1x28x28" into integers; throws UsageError naming `option`.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& option);

// --shard "iid" or "label-skew:alpha=X" (X finite, > 0). Throws UsageError("--shard: ...").
ShardSpec parse_shard_spec(const std::string& text);

std::string splitpipe_version();  // project version + git describe
std::string libtorch_version();   // the LibTorch compiled against, e.g. "2.15.0"
// What --version prints: splitpipe, LibTorch, its CUDA backend and the GPUs this process sees.
std::string version_report();

// A byte count with an optional binary suffix: "512M", "2G", "65536" (bytes). Throws UsageError
// naming `option`.
double parse_byte_size(const std::string& text, const std::string& option);

// --plan-codecs as a list: ';'-separated specs, blanks around them ignored, empty ones dropped.
inline std::vector<std::string> split_plan_codecs(const std::string& text) {
  std::vector<std::string> specs;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(';', begin), text.size());
    const size_t first = text.find_first_not_of(" \t", begin);
    if (first != std::string::npos && first < end) {
      const size_t last = text.find_last_not_of(" \t", end - 1);
      specs.push_back(text.substr(first, last - first + 1));
    }
    begin = end + 1;
  }
  return specs;
}

}  // namespace splitpipe
