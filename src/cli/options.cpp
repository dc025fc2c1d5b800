// Declares every option once. Boost.ProgramOptions parses the command line and the INI
// file; the same table prints the resolved configuration.
#include <boost/program_options.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iterator>
#include <limits>
#include <sstream>
#include <type_traits>

#include "splitpipe/codec.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/schedule.hpp"
#include "splitpipe/transports.hpp"

namespace po = boost::program_options;

namespace splitpipe {
namespace {

template <class T>
std::string to_text(const T& value) {
  std::ostringstream out;
  out << std::boolalpha << std::setprecision(10) << value;
  return out.str();
}

// Names from a registry, for --help: one list, no copy to keep in step.
std::string joined(const std::vector<std::string>& names, const char* sep) {
  std::string text;
  for (const auto& name : names) {
    if (!text.empty()) text += sep;
    text += name;
  }
  return text;
}

std::string join_ints(const std::vector<int64_t>& values, const char* sep) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) text += (i ? sep : "") + std::to_string(values[i]);
  return text;
}

// Without --threads, a rank uses the cores its launcher gave it: Slurm's --cpus-per-task, else
// OMP_NUM_THREADS (its first level, "4,2" -> 4), else `fallback`. A value that is not a thread
// count is an error naming the variable: a silent 1 would hide a misconfigured job.
int threads_from_launcher(int fallback) {
  for (const char* variable : {"SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"}) {
    const char* value = std::getenv(variable);
    if (!value || !*value) continue;
    const std::string text(value);
    const std::string first = text.substr(0, text.find(','));
    const bool digits = !first.empty() && first.size() <= 4 && first.find_first_not_of("0123456789") == std::string::npos;
    const int threads = digits ? std::stoi(first) : 0;
    if (threads < 1 || threads > 1024)
      throw UsageError(std::string(variable) + "='" + text + "' is not a thread count (1..1024) for --threads; fix or " +
                       "unset it, or pass --threads N");
    return threads;
  }
  return fallback;
}

// "a,b,c" -> exactly `count` non-empty names, or a UsageError naming the option.
std::vector<std::string> split_names(const std::string& text, const std::string& option, size_t count) {
  std::vector<std::string> names;
  std::string name;
  std::istringstream in(text);
  while (std::getline(in, name, ',')) names.push_back(name);
  if (names.size() != count || std::any_of(names.begin(), names.end(), [](const auto& n) { return n.empty(); }))
    throw UsageError("--" + option + " '" + text + "': give " + std::to_string(count) + " names separated by commas");
  return names;
}

// Digits only, within uint64_t: a sign or anything else names the option.
uint64_t parse_unsigned(const std::string& text, const std::string& option) {
  const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  try {
    if (digits) return std::stoull(text);
  } catch (const std::out_of_range&) {
  }
  throw UsageError("--" + option + ": '" + text + "' is not an integer in [0, 2^64)");
}

// An int, all of the text: anything else names the option.
int parse_int(const std::string& text, const std::string& option) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max())
    throw UsageError("--" + option + ": '" + text + "' is neither an integer nor auto");
  return static_cast<int>(value);
}

// Registers options into per-section descriptions and remembers how to print each value.
class OptionTable {
 public:
  struct Entry {
    std::string section, name;
    std::function<std::string()> value;
    char kind = 's';  // the value's type in the run file (RunConfig::ResolvedOption::kind)
  };

  po::options_description& section(const std::string& name, const std::string& caption) {
    for (auto& s : sections_)
      if (s.name == name) return *s.description;
    sections_.push_back({name, std::make_unique<po::options_description>(caption, 100, 50)});
    return *sections_.back().description;
  }

  // The default is shown as to_text prints it ("0.05", not Boost's "0.050000000000000003").
  template <class T>
  void add(const std::string& sec, const char* name, T* field, const std::string& text) {
    const char* help = text.c_str();  // Boost copies it
    if constexpr (std::is_unsigned_v<T>) {
      // Boost converts "-1" to an unsigned type by wrapping around: read the text instead.
      current(sec).add_options()(name,
                                 po::value<std::string>()
                                     ->default_value(to_text(*field))
                                     ->notifier([field, name](const std::string& text) {
                                       *field = static_cast<T>(parse_unsigned(text, name));
                                     }),
                                 help);
    } else {
      current(sec).add_options()(name, po::value<T>(field)->default_value(*field, to_text(*field)), help);
    }
    char kind = 's';
    if constexpr (std::is_same_v<T, bool>) kind = 'b';
    else if constexpr (std::is_unsigned_v<T>) kind = 'u';
    else if constexpr (std::is_integral_v<T>) kind = 'i';
    else if constexpr (std::is_floating_point_v<T>) kind = 'f';
    entries_.push_back({sec, name, [field] { return to_text(*field); }, kind});
  }
  // An integer option that also takes "auto" (the planner chooses it). Printed as "auto" until
  // run() resolves it.
  void add_or_auto(const std::string& sec, const char* name, int* field, bool* automatic, const std::string& text) {
    const char* help = text.c_str();
    current(sec).add_options()(name,
                               po::value<std::string>()->default_value(to_text(*field))->notifier(
                                   [field, automatic, name](const std::string& value) {
                                     *automatic = value == "auto";
                                     if (!*automatic) *field = parse_int(value, name);
                                   }),
                               help);
    entries_.push_back({sec, name, [field, automatic] { return *automatic ? std::string("auto") : to_text(*field); }, 'i'});
  }
  void flag(const std::string& sec, const char* name, bool* field, const char* help) {
    current(sec).add_options()(
        name, po::value<bool>(field)->default_value(*field)->implicit_value(true), help);
    entries_.push_back({sec, name, [field] { return to_text(*field); }, 'b'});
  }
  // A list option held as text on the command line, converted after parsing.
  void list(const std::string& sec, const char* name, std::string* text, const char* help) {
    current(sec).add_options()(name, po::value<std::string>(text)->default_value(*text), help);
    entries_.push_back({sec, name, [text] { return *text; }});
  }

  po::options_description all() const {
    po::options_description everything;
    for (const auto& s : sections_) everything.add(*s.description);
    return everything;
  }
  std::string help() const {
    std::ostringstream out;
    for (const auto& s : sections_) out << *s.description << "\n";
    return out.str();
  }
  const std::vector<Entry>& entries() const { return entries_; }
  bool has_section(const std::string& name) const {
    for (const auto& s : sections_)
      if (s.name == name) return true;
    return false;
  }
  std::string section_names() const {
    std::string names;
    for (const auto& s : sections_) names += (names.empty() ? "" : ", ") + s.name;
    return names;
  }
  bool has(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.name == name) return true;
    return name == "help" || name == "version" || name == "print-schema" || name == "check-configs" ||
           name == "check-ranks" || name == "predict-configs" || name == "config";
  }

 private:
  struct Section {
    std::string name;
    std::unique_ptr<po::options_description> description;
  };
  po::options_description& current(const std::string& name) {
    for (auto& s : sections_)
      if (s.name == name) return *s.description;
    throw std::logic_error("option section not declared: " + name);
  }
  std::vector<Section> sections_;
  std::vector<Entry> entries_;
};

// " (did you mean --a or --b?)" for the long options that begin with `given`, else "".
std::string completions(const po::options_description& all, const std::string& given) {
  const size_t start = given.find_first_not_of('-');
  if (start == std::string::npos) return "";
  const std::string stem = given.substr(start);
  std::vector<std::string> names;
  for (const auto& option : all.options())
    if (option->long_name().rfind(stem, 0) == 0) names.push_back("--" + option->long_name());
  if (names.empty()) return "";
  std::string text = " (did you mean ";
  for (size_t i = 0; i < names.size(); ++i) text += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return text + "?)";
}

struct ListTexts {
  std::string mlp_hidden, synthetic_shape, hdf5_keys;
};

void declare(OptionTable& t, RunConfig& c, ListTexts& lists) {
  t.section("run", "Run").add_options()("help,h", "print this help and exit")(
      "version", "print the splitpipe and LibTorch versions, LibTorch's CUDA backend and the visible GPUs, then exit")(
      "print-schema", "print the run file's schema (every attribute, dataset and column with its unit) as Markdown, then exit")(
      "check-configs", po::value<std::vector<std::string>>()->multitoken(),
      "check these INI files as runs on --check-ranks ranks (options, data, model, partition, schedule) in this one "
      "process; prints 'ok FILE' or 'error FILE: why' per file, exit 0 if all are ok, else 2 (tools/sweep uses it)")(
      "check-ranks", po::value<int>(), "the ranks each --check-configs file would run on (default 1)")(
      "predict-configs", po::value<std::vector<std::string>>()->multitoken(),
      "under mpirun with the files' ranks: measure once per distinct model/data/machine setup (as --plan does) "
      "and predict the training samples/s of each of these INI files' fixed plans; prints 'predicted FILE SAMPLES_PER_S WIRE_B_PER_SAMPLE "
      "BUBBLE' or 'error FILE: why' per file, exit 0 if all were predicted, else 2 (tools/sweep --top uses it)")(
      "config", po::value<std::string>(&c.config_file),
      "INI file with options (sections allowed, e.g. [train]); the command line wins");
  t.add("run", "output", &c.output,
        "HDF5 run file (default: results/<model>-<dataset>-<timestamp>.h5)");
  t.flag("run", "overwrite", &c.overwrite, "replace an existing --output file");
  t.flag("run", "dry-run", &c.dry_run,
         "print the resolved config, the block table and the partition plan, then exit");
  t.flag("run", "print-schedule", &c.print_schedule,
         "print every rank's schedule for one mini-batch, check it, then exit");
  t.flag("run", "plan", &c.plan,
         "measure what every block costs on each rank's hardware, the --plan-codecs on the real activations and "
         "gradients of the first batch, and the link (--link, or a ping-pong), then print the fastest predicted "
         "plans (cut, schedule, chunks, codecs) and exit");
  t.add("run", "plan-codecs", &c.plan_codecs, "codecs the planner may choose, separated by ';'");
  t.add("run", "max-rel-error", &c.max_rel_error,
        "the planner's ceiling on a codec's relative error ||x - decoded|| / ||x|| at any boundary, activations "
        "and gradients alike (default 0.02: 8-bit methods pass, 4-bit ones do not on MobileNetV2)");
  t.add("run", "plan-top", &c.plan_top, "how many plans --plan prints");
  t.add("run", "plan-max-memory", &c.plan_max_memory,
        "the planner's ceiling on the activations one rank holds at once (the micro-batches in flight of its "
        "stages, e.g. 512M or 2G; K/M/G are powers of 1024); plans above it are dropped (0: no ceiling)");
  t.add("run", "seed", &c.seed, "seed for weights, data order, augmentation and codecs");
  t.add("run", "threads", &c.threads,
        "intra-op threads per rank (with mpirun use --bind-to none or --map-by slot:PE=N); when not given: "
        "SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else 1");
  t.add("run", "expect-ranks", &c.expect_ranks,
        "refuse to run unless the MPI world has exactly this many ranks (0: any)");
  t.add("run", "progress-every", &c.progress_every,
        "print a progress line every N training steps (0: about every 10 seconds)");
  t.add("run", "trace", &c.trace,
        "write a Chrome trace (JSON, for ui.perfetto.dev or chrome://tracing) of the first --trace-steps training "
        "steps: every rank's schedule actions, encode/decode, waits, data and optimizer, one track per rank");
  t.add("run", "trace-steps", &c.trace_steps, "training steps --trace records (1..10000), from the run's first step");

  t.section("model", "Model");
  t.add("model", "model", &c.model,
        joined(model_names(), " | ") + " | torchscript:FILE (a scripted module whose top-level children are the blocks)");
  t.list("model", "mlp-hidden", &lists.mlp_hidden, "hidden layer sizes of the mlp model");
  t.add("model", "transformer-layers", &c.transformer.layers, "transformer, vit: encoder layers (one block each)");
  t.add("model", "transformer-width", &c.transformer.width, "transformer, vit: model dimension (a multiple of the heads)");
  t.add("model", "transformer-heads", &c.transformer.heads, "transformer, vit: attention heads");
  t.add("model", "vit-patch", &c.transformer.patch, "vit: square patch side in pixels (divides the image size)");

  t.section("data", "Data");
  t.add("data", "dataset", &c.data.dataset,
        "fashion-mnist | mnist | cifar10 | csv | synthetic | hdf5 (--data-file) | image-folder (one folder per class) | fortunes (topic classification of Debian's "
        "quotations) | text (train.txt, test.txt: label<TAB>text per line)");
  t.add("data", "data-file", &c.data.data_file, "hdf5: the file holding the datasets named by --hdf5-keys");
  t.list("data", "hdf5-keys", &lists.hdf5_keys,
         "hdf5: train samples, train labels, test samples, test labels (samples N x ... of any numeric type, "
         "labels N integers)");
  t.add("data", "image-size", &c.data.image_size,
        "image-folder: resize every image to NxN (0: keep the files' size, which must then agree)");
  t.add("data", "image-channels", &c.data.image_channels, "image-folder: 1 (grayscale) or 3 (RGB)");
  t.add("data", "seq-len", &c.data.seq_len, "fortunes, text: tokens (bytes) per example; longer texts are cut");
  t.add("data", "data-dir", &c.data.data_dir,
        "dataset directory (default: the dataset's; fashion-mnist: /usr/share/datasets/fashion-mnist)");
  t.add("data", "max-train-samples", &c.data.max_train_samples, "use only the first N training samples (0: all)");
  t.add("data", "max-test-samples", &c.data.max_test_samples, "use only the first N test samples (0: all)");
  t.flag("data", "augment", &c.augment, "random crop (pad 4) and horizontal flip of training images");
  t.add("data", "prefetch", &c.prefetch,
        "training batches the edge prepares ahead on a background thread (index, augment, cut) while the step "
        "runs; 0: on the training thread. Results are the same either way");
  t.list("data", "synthetic-shape", &lists.synthetic_shape, "sample shape of --dataset synthetic, e.g. 1x28x28");
  t.add("data", "synthetic-classes", &c.data.synthetic_classes, "classes of --dataset synthetic");
  t.add("data", "synthetic-train", &c.data.synthetic_train, "training samples of --dataset synthetic");
  t.add("data", "synthetic-test", &c.data.synthetic_test, "test samples of --dataset synthetic");

  t.section("train", "Training");
  t.add("train", "epochs", &c.epochs, "number of epochs");
  t.add("train", "batch-size", &c.batch_size, "mini-batch size (one optimizer step each)");
  t.add("train", "lr", &c.lr, "base learning rate");
  t.add("train", "momentum", &c.momentum, "SGD momentum, in [0, 1)");
  t.add("train", "weight-decay", &c.weight_decay, "L2 weight decay");
  t.flag("train", "nesterov", &c.nesterov, "Nesterov momentum");
  t.add("train", "lr-schedule", &c.lr_schedule,
        "constant | step (x lr-gamma every lr-step-epochs) | cosine (to 0 at the last epoch)");
  t.add("train", "warmup-epochs", &c.warmup_epochs,
        "linear warm-up epochs before the schedule (when not given: 1, or 0 for a 1-epoch run)");
  t.add("train", "lr-step-epochs", &c.lr_step_epochs, "epochs between decays of the step schedule");
  t.add("train", "lr-gamma", &c.lr_gamma, "decay factor of the step schedule");

  t.section("pipeline", "Pipeline (with mpirun: rank 0 is the edge, ranks 1.. are servers)");
  t.add_or_auto("pipeline", "edge-first", &c.edge_first, &c.edge_first_auto,
                "K: the edge holds the first K blocks; auto: the planner chooses (see --plan)");
  t.add_or_auto("pipeline", "edge-last", &c.edge_last, &c.edge_last_auto,
                "M: the edge holds the last M blocks and the loss; 0: the last server rank holds the head and the "
                "loss, and the edge sends it the labels (no U-shape); auto: the planner chooses");
  t.add("pipeline", "server-split", &c.server_split,
        "how the middle blocks are split over server ranks: even | params | time | i,j,... (cut points) | auto "
        "(the planner's cut points)");
  t.add("pipeline", "schedule", &c.schedule, joined(schedule_names(), " | ") + " | auto (the planner chooses)");
  t.add_or_auto("pipeline", "chunks", &c.chunks, &c.chunks_auto,
                "micro-batches per mini-batch (1..256); auto: the planner chooses among 1, 2, 4, 8");
  t.flag("pipeline", "recompute", &c.recompute,
         "activation recomputation: keep only each stage's input per micro-batch and run its forward again in "
         "backward (less memory held, one more forward per micro-batch; same results)");
  t.add("pipeline", "memory-format", &c.memory_format,
        "layout of images and conv weights in stages with convolutions: auto (channels-last on CPU stages of "
        "the built-in models, where oneDNN trains MobileNetV2 1.3x faster; contiguous on CUDA and for torchscript "
        "models) | contiguous | channels-last (any device); the results do not depend on it beyond rounding");
  t.add("pipeline", "edge-compute-scale", &c.edge_compute_scale,
        "S >= 1: emulate an edge S times slower than this machine (a phone beside a GPU server): after each "
        "forward or backward of an edge stage the rank waits (S - 1) x its measured time; counted as "
        "emulated_compute_seconds (1: off; every stage in one process)");
  t.add("pipeline", "edge-device", &c.edge_device, "cpu | cuda");
  t.add("pipeline", "server-device", &c.server_device, "cpu | cuda");
  t.add("pipeline", "transport", &c.transport,
        "data plane for boundary messages: " + joined(transport_names(), " | ") +
            "; mpi: host memory, any machine; nccl: GPUs on every rank, refused where a rank sees none");

  t.section("clients", "Several edge clients (with mpirun: ranks 0..E-1 edge clients, E..N-1 servers)");
  t.add("clients", "edge-ranks", &c.edge_ranks, "E: number of edge clients, each with its own shard of the training set");
  t.add("clients", "shard", &c.shard,
        "how the training set is split over the clients: iid | label-skew:alpha=X (Dirichlet over labels)");
  t.add("clients", "client-mode", &c.client_mode,
        "sequential (clients take turns, handing edge weights and optimizer state on) | parallel (all clients "
        "train at once, each on one batch per round; the servers step on the union batch; SplitFed)");
  t.add("clients", "sync-every", &c.sync_every, "parallel mode: average the clients' edge weights, momentum and BatchNorm statistics every N rounds "
        "(and at the end of every epoch); 1 = exactly one SGD step on the union batch per round");

  t.section("compress", "Compression of boundary traffic");
  t.add("compress", "fwd-codec", &c.fwd_codec,
        "codec for activations (edge -> server -> edge), e.g. quant:bits=8; auto: the planner chooses among "
        "--plan-codecs within --max-rel-error");
  t.add("compress", "bwd-codec", &c.bwd_codec, "codec for gradients, e.g. sortquant:bits=6,split=2; auto: as for --fwd-codec");

  t.section("link", "Emulated edge links (edge client <-> server messages only)");
  t.add("link", "link", &c.link,
        "bandwidth=B[,latency=T][,direction=both|up|down], e.g. bandwidth=100Mbit,latency=5ms "
        "(units: bit/kbit/Mbit/Gbit per second; us/ms/s): every client's link; or one spec per edge client "
        "separated by ';', e.g. bandwidth=10Mbit;bandwidth=100Mbit;bandwidth=1Gbit; empty: no emulation");

  t.section("reliability", "Checkpoints and failures");
  t.add("reliability", "checkpoint-dir", &c.checkpoint_dir,
        "directory for checkpoints (one sub-directory per checkpoint; empty: none)");
  t.add("reliability", "checkpoint-every", &c.checkpoint_every, "epochs between checkpoints");
  t.add("reliability", "keep-checkpoints", &c.keep_checkpoints,
        "complete checkpoints to keep; an older one is deleted only after a newer one is complete");
  t.flag("reliability", "resume", &c.resume,
         "continue from the newest complete checkpoint in --checkpoint-dir, appending to the run file it "
         "names (the run's defining options must not change; see README); with no checkpoint there yet, "
         "start the run");
  t.add("reliability", "comm-timeout", &c.comm_timeout,
        "seconds a rank waits without progress before it stops the whole job (0: forever)");
  t.add("reliability", "on-nonfinite", &c.on_nonfinite,
        "NaN/Inf in the loss or a boundary tensor: stop | skip-batch (skip the optimizer step)");
  t.add("reliability", "fault-inject", &c.fault_inject,
        "for tests: rank=R,step=S,mode=crash|hang|exception (S counts optimizer steps from 0 over the run)");
}

// The INI dialect of config files, read here rather than by Boost, whose reader cuts a value
// at any '#' (a codec spec or path may hold one) and ignores byte order marks:
//   [section]            a known section name (one of --help's groups)
//   key = value          a known option, in any section
//   # or ; at line start a comment; " # ..." after a value too ('#' right after text is kept)
// Anything else is refused, naming the file and line.
po::parsed_options parse_ini(const std::string& path, const po::options_description& all,
                             const OptionTable& table) {
  // A directory opens as a stream that reads nothing: it would silently act as an empty file.
  if (std::filesystem::is_directory(path))
    throw UsageError("cannot read config file '" + path + "': " + std::strerror(EISDIR));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read config file '" + path + "': " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte order mark
  if (text.find('\0') != std::string::npos)
    throw UsageError("config file '" + path + "' is not a text file (it holds NUL bytes); expected INI text");
  auto trim = [](std::string value) {
    const auto first = value.find_first_not_of(" \t\r");
    if (first == std::string::npos) return std::string();
    return value.substr(first, value.find_last_not_of(" \t\r") - first + 1);
  };
  po::parsed_options parsed(&all);
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    const std::string where = "config file '" + path + "', line " + std::to_string(number) + ": ";
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    for (size_t hash = line.find('#'); hash != std::string::npos; hash = line.find('#', hash + 1))
      if (line[hash - 1] == ' ' || line[hash - 1] == '\t') {
        line = trim(line.substr(0, hash));
        break;
      }
    if (line[0] == '[') {
      const std::string section = trim(line.substr(1, line.find(']') - 1));
      if (line.back() != ']' || line.find(']') != line.size() - 1 || section.empty())
        throw UsageError(where + "'" + line + "' is not a section header like [train]");
      if (!table.has_section(section))
        throw UsageError(where + "unknown section [" + section + "] (sections: " + table.section_names() + ")");
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw UsageError(where + "'" + line + "' is not 'key = value'");
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (!table.has(key) || key == "config" || key == "help" || key == "version" || key == "print-schema" ||
        key == "check-configs" || key == "check-ranks" || key == "predict-configs")
      throw UsageError(where + "unknown option '" + key + "' (see --help for the options)");
    parsed.options.emplace_back(key, std::vector<std::string>{value});
    parsed.options.back().original_tokens = {key, value};
  }
  return parsed;
}

}  // namespace

double parse_byte_size(const std::string& text, const std::string& option) {
  const auto fail = [&] {
    return UsageError("--" + option + ": '" + text + "' is not a size in bytes (e.g. 65536, 512K, 256M, 2G; K/M/G/T are " +
                      "powers of 1024; 0: no ceiling)");
  };
  size_t used = 0;
  double number = 0;
  try {
    number = std::stod(text, &used);
  } catch (const std::exception&) {
    throw fail();
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();  // "512MB", "512MiB"
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  double scale = 1;
  if (unit.size() == 1) {
    const std::string suffixes = "KMGT";
    const auto at = suffixes.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))));
    if (at == std::string::npos) throw fail();
    scale = std::pow(1024.0, static_cast<double>(at + 1));
  } else if (!unit.empty()) {
    throw fail();
  }
  if (!(number >= 0) || !std::isfinite(number)) throw fail();
  return number * scale;
}

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> values;
  std::string item;
  std::istringstream in(text);
  auto fail = [&] {
    return UsageError("--" + option + ": '" + text + "' is not a list of positive integers (e.g. 1,2,3 or 1x28x28)");
  };
  for (char ch : text + ",") {
    if (ch == ',' || ch == 'x') {
      if (item.empty()) throw fail();
      size_t used = 0;
      int64_t v = 0;
      try {
        v = std::stoll(item, &used);
      } catch (const std::exception&) {
        throw fail();
      }
      if (used != item.size() || v <= 0) throw fail();
      values.push_back(v);
      item.clear();
    } else if (ch != ' ') {
      item += ch;
    }
  }
  return values;
}

void RunConfig::set_resolved(const std::string& name, const std::string& value) {
  for (auto& option : resolved)
    if (option.name == name) {
      option.value = value;
      return;
    }
  throw std::logic_error("set_resolved: no option '" + name + "'");
}

std::string RunConfig::to_ini() const {
  std::ostringstream out;
  std::string section;
  for (const auto& option : resolved) {
    if (option.section != section) {
      out << (section.empty() ? "" : "\n") << "[" << option.section << "]\n";
      section = option.section;
    }
    out << option.name << " = " << option.value << "\n";
  }
  return out.str();
}

CommandLine parse_command_line(int argc, const char* const argv[]) {
  CommandLine result;
  RunConfig& config = result.config;
  ListTexts lists{join_ints(config.mlp_hidden, ","), join_ints(config.data.synthetic_shape, "x"),
                  joined(config.data.hdf5_keys, ",")};
  OptionTable table;
  declare(table, config, lists);
  const po::options_description all = table.all();

  po::variables_map vm;
  try {
    // No prefix guessing: "--chunk 4" must not silently mean --chunks (nor break when a new
    // option makes a prefix ambiguous). An unknown name lists the options it begins.
    const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    try {
      po::store(po::command_line_parser(argc, argv).options(all).style(style).run(), vm);
    } catch (const po::unknown_option& e) {
      throw UsageError(std::string(e.what()) + completions(all, e.get_option_name()) + " (see --help)");
    }
    if (vm.count("version")) {
      result.version = true;
      return result;
    }
    if (vm.count("print-schema")) {
      result.print_schema = true;
      return result;
    }
    if (vm.count("check-configs")) {
      result.check_configs = vm["check-configs"].as<std::vector<std::string>>();
      result.check_ranks = vm.count("check-ranks") ? vm["check-ranks"].as<int>() : 1;
      if (result.check_ranks < 1 || result.check_ranks > 65536)
        throw UsageError("--check-ranks " + std::to_string(result.check_ranks) + ": give the ranks per run, 1..65536");
      return result;
    }
    if (vm.count("check-ranks")) throw UsageError("--check-ranks only goes with --check-configs");
    if (vm.count("predict-configs")) {
      result.predict_configs = vm["predict-configs"].as<std::vector<std::string>>();
      return result;
    }
    if (vm.count("help")) {
      result.help = true;
      result.help_text =
          "splitpipe " + splitpipe_version() +
          ": split learning with pipeline parallelism.\n"
          "Usage: splitpipe [options]                 (one process: the reference run)\n"
          "       mpirun -np N splitpipe [options]    (rank 0 edge, ranks 1..N-1 servers)\n\n" +
          table.help() + "Codecs (--fwd-codec / --bwd-codec):\n";
      for (const auto& [name, summary] : codec_catalogue())
        result.help_text += "  " + name + std::string(name.size() < 12 ? 12 - name.size() : 1, ' ') + summary + "\n";
      return result;
    }
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      const po::parsed_options from_file = parse_ini(path, all, table);
      try {
        po::store(from_file, vm);  // stored second: the command line wins
      } catch (const po::error& e) {
        throw UsageError("config file '" + path + "': " + e.what() + " (see --help)");
      }
    }
    po::notify(vm);
  } catch (const po::multiple_occurrences& e) {
    // Which value should win is not ours to guess (a job script may append a second one by mistake).
    throw UsageError("option '--" + e.get_option_name().substr(e.get_option_name().find_first_not_of('-')) +
                     "' is given more than once; give it once (a --config file's value is replaced by the command "
                     "line's, but the command line itself may name each option only once)");
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
  // The default warm-up fits every run: a 1-epoch run has no room for it. An explicit value
  // is validated as given.
  if (vm["warmup-epochs"].defaulted()) config.warmup_epochs = std::min(config.warmup_epochs, config.epochs - 1);
  if (vm["threads"].defaulted()) config.threads = threads_from_launcher(config.threads);
  config.mlp_hidden = parse_int_list(lists.mlp_hidden, "mlp-hidden");
  config.data.synthetic_shape = parse_int_list(lists.synthetic_shape, "synthetic-shape");
  config.data.hdf5_keys = split_names(lists.hdf5_keys, "hdf5-keys", 4);
  config.data.seed = config.seed;
  for (const auto& entry : table.entries()) config.resolved.push_back({entry.section, entry.name, entry.value(), entry.kind});
  validate(config);
  return result;
}

}  // namespace splitpipe
