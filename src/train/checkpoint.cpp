#include "splitpipe/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "splitpipe/config.hpp"
#include "splitpipe/control_plane.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/file_io.hpp"
#include "splitpipe/trainer.hpp"

namespace splitpipe {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCompleteMarker = "COMPLETE";
constexpr const char* kManifest = "MANIFEST";

std::string checkpoint_name(int epoch, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "epoch-%04d-step-%07lld", epoch, static_cast<long long>(step));
  return name;
}

std::string rank_file_name(int rank) { return "rank" + std::to_string(rank) + ".pt"; }

// A checkpoint directory found on disk, ordered by (epoch, step) as numbers: past epoch 9999
// the names no longer sort as text.
struct FoundCheckpoint {
  fs::path path;
  long long epoch = 0, step = 0;
  bool complete = false;
  bool operator<(const FoundCheckpoint& other) const {
    return std::tie(epoch, step) < std::tie(other.epoch, other.step);
  }
};

std::vector<FoundCheckpoint> list_checkpoints(const fs::path& dir) {
  std::vector<FoundCheckpoint> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    FoundCheckpoint checkpoint;
    const std::string name = entry.path().filename().string();
    int used = 0;
    if (std::sscanf(name.c_str(), "epoch-%lld-step-%lld%n", &checkpoint.epoch, &checkpoint.step, &used) != 2 ||
        used != static_cast<int>(name.size()))
      continue;
    checkpoint.path = entry.path();
    checkpoint.complete = fs::exists(entry.path() / kCompleteMarker, ec);
    found.push_back(checkpoint);
  }
  std::sort(found.begin(), found.end());
  return found;
}

// What must match between the run that wrote a checkpoint and the one loading it.
std::string identity(const RunConfig& config, const Trainer& trainer, const ControlPlane& world) {
  std::ostringstream text;
  text << "model " << config.model << ", " << trainer.blocks().size() << " blocks, " << world.size() << " ranks, "
       << trainer.strategy().clients() << " edge client(s) " << trainer.strategy().mode() << ", stages";
  for (const auto& stage : trainer.plan().stages) text << " " << stage.first_block << "-" << stage.end_block;
  return text.str();
}

// Options a resumed run may change: they alter neither the math nor the order of the data.
// Everything else defines the run. --epochs defines it only where it shapes the learning rate.
const std::set<std::string> kFreeOnResume = {
    "help",     "version",          "config",     "output",       "overwrite", "dry-run",
    "print-schedule", "threads",    "expect-ranks", "progress-every", "checkpoint-dir", "checkpoint-every",
    "keep-checkpoints", "resume",   "comm-timeout", "fault-inject", "link",      "transport", "epochs"};

std::map<std::string, std::string> defining_options(const RunConfig& config) {
  std::map<std::string, std::string> options;
  for (const auto& option : config.resolved)
    if (!kFreeOnResume.count(option.name)) options[option.name] = option.value;
  if (config.lr_schedule == "cosine") options["epochs"] = std::to_string(config.epochs);
  return options;
}

std::string encode_options(const std::map<std::string, std::string>& options) {
  std::string text;
  for (const auto& [name, value] : options) text += name + "=" + value + "\n";
  return text;
}

std::map<std::string, std::string> decode_options(const std::string& text) {
  std::map<std::string, std::string> options;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) options[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return options;
}

// "--batch-size 64 (checkpoint: 32), --lr 0.1 (checkpoint: 0.05)", or empty when equal.
std::string differences(const std::map<std::string, std::string>& saved, const std::map<std::string, std::string>& now) {
  std::set<std::string> names;
  for (const auto& entry : saved) names.insert(entry.first);
  for (const auto& entry : now) names.insert(entry.first);
  auto quoted = [](const std::map<std::string, std::string>& options, const std::string& name) {
    const auto it = options.find(name);
    return it == options.end() ? std::string("(not set)") : it->second.empty() ? std::string("''") : it->second;
  };
  std::string list;
  for (const auto& name : names) {
    if (quoted(saved, name) == quoted(now, name)) continue;
    list += (list.empty() ? "--" : ", --") + name + " " + quoted(now, name) + " (checkpoint: " + quoted(saved, name) + ")";
    if (name == "epochs") list += " [--epochs sets the span of --lr-schedule cosine]";
  }
  return list;
}

// Keeps `written` and the newest `keep` - 1 other complete checkpoints; deletes the other
// complete ones, and incomplete leftovers (a crashed write) older than a kept one. Rank 0
// only; a failure only warns.
void prune(const fs::path& dir, const fs::path& written, int keep) {
  const auto found = list_checkpoints(dir);
  int others_kept = 0;
  bool newer_kept = false;
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    bool remove = false;
    if (it->path.filename() == written.filename()) {
      newer_kept = true;
    } else if (it->complete) {
      remove = ++others_kept > keep - 1;
      newer_kept = newer_kept || !remove;
    } else {
      remove = newer_kept;
    }
    if (!remove) continue;
    std::error_code ec;
    fs::remove_all(it->path, ec);
    if (ec) std::cerr << "splitpipe: warning: cannot delete old checkpoint " << it->path << ": " << ec.message() << std::endl;
  }
}

}  // namespace

void prepare_checkpoint_dir(const RunConfig& config, const ControlPlane& world, bool fresh) {
  if (config.checkpoint_dir.empty()) return;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    const auto old = list_checkpoints(config.checkpoint_dir);
    if (fresh && !old.empty() && !config.overwrite)
      error = "--checkpoint-dir '" + config.checkpoint_dir + "' already holds " + std::to_string(old.size()) +
              " checkpoint(s): add --resume to continue that run, or --overwrite to delete them and start over";
    std::error_code ec;
    if (fresh && !error)
      for (const auto& checkpoint : old) fs::remove_all(checkpoint.path, ec);
    if (!error) {
      try {
        fs::create_directories(config.checkpoint_dir, ec);
        if (ec) throw Error("cannot create it: " + ec.message());
        const std::string probe = (fs::path(config.checkpoint_dir) / ".write-test").string();
        write_file_atomically(probe, "splitpipe\n", "a test file");
        fs::remove(probe, ec);
      } catch (const Error& e) {
        error = "--checkpoint-dir '" + config.checkpoint_dir + "' is not writable (" + e.what() +
                "); choose another directory";
      }
    }
  }
  world.agree_on(error, 2);
}

std::string save_checkpoint(const RunConfig& config, const CheckpointPosition& position, const Trainer& trainer,
                            const ControlPlane& world) {
  const fs::path target = fs::path(config.checkpoint_dir) / checkpoint_name(position.epoch, position.step);
  std::string entry;  // "rank<r>.pt <bytes> <crc>", or "!<error>"
  try {
    std::error_code ec;
    fs::create_directories(target, ec);
    if (ec) throw Error("cannot create checkpoint directory '" + target.string() + "': " + ec.message());
    torch::serialize::OutputArchive archive;
    archive.write("identity", c10::IValue(identity(config, trainer, world)));
    archive.write("options", c10::IValue(encode_options(defining_options(config))));
    archive.write("epoch", c10::IValue(static_cast<int64_t>(position.epoch)));
    archive.write("step", c10::IValue(position.step));
    archive.write("rows", c10::IValue(position.rows));
    archive.write("run_file", c10::IValue(position.run_file));
    archive.write("run_id", c10::IValue(position.run_id));
    archive.write("loss_sum", c10::IValue(position.loss_sum));
    archive.write("correct", c10::IValue(position.correct));
    archive.write("seconds", c10::IValue(position.seconds));
    archive.write("active_seconds", c10::IValue(position.active_seconds));
    archive.write("samples", c10::IValue(position.samples));
    archive.write("skipped_steps", c10::IValue(position.skipped_steps));
    if (position.confusion.defined()) archive.write("confusion", position.confusion, true);
    if (!position.counters.empty())
      archive.write("counters", at::tensor(at::ArrayRef<double>(position.counters), at::kDouble), true);
    trainer.state().save(archive);
    // Serialized in memory and written by us: LibTorch's own writer reports a full disk
    // without the reason, and the checksum is computed on the very bytes written.
    std::string bytes;
    archive.save_to([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
    const std::string name = rank_file_name(world.rank());
    write_file_atomically((target / name).string(), bytes, "checkpoint file");
    entry = name + " " + std::to_string(bytes.size()) + " " + checksum_hex(bytes);
  } catch (const std::exception& e) {
    entry = "!" + one_line(e);
  }
  const auto entries = world.gather_strings(entry);
  std::optional<std::string> failure;
  if (world.rank() == 0) {
    std::string manifest = identity(config, trainer, world) + "\n";
    for (size_t r = 0; r < entries.size() && !failure; ++r) {
      if (!entries[r].empty() && entries[r][0] == '!')
        failure = (r ? "rank " + std::to_string(r) + ": " : std::string()) + entries[r].substr(1);
      manifest += entries[r] + "\n";
    }
    try {
      if (!failure) {
        write_file_atomically((target / kManifest).string(), manifest, "checkpoint manifest");
        write_file_atomically((target / kCompleteMarker).string(), "complete\n", "checkpoint marker");
      }
    } catch (const Error& e) {
      failure = e.what();
    }
    std::error_code ec;
    if (failure) {
      fs::remove_all(target, ec);
      *failure += "; the previous checkpoint is unchanged (free space or fix the directory, then --resume)";
    } else {
      prune(config.checkpoint_dir, target, config.keep_checkpoints);
    }
  }
  world.agree_on(failure);
  return target.string();
}

std::optional<CheckpointPosition> load_checkpoint(const RunConfig& config, Trainer& trainer, const ControlPlane& world) {
  const std::string& dir = config.checkpoint_dir;
  std::string chosen, manifest;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    const auto found = list_checkpoints(dir);
    for (auto it = found.rbegin(); it != found.rend() && chosen.empty(); ++it)
      if (it->complete) chosen = it->path.string();
    try {
      if (!chosen.empty())
        manifest = read_whole_file((fs::path(chosen) / kManifest).string(), "checkpoint manifest");
      else if (!found.empty())
        error = "--resume: '" + dir + "' holds " + std::to_string(found.size()) +
                " checkpoint director(ies) but none is complete (a crash while writing); delete them, or start over "
                "without --resume and with --overwrite";
    } catch (const Error& e) {
      error = std::string(e.what()) + " (written by an older splitpipe, or damaged: delete " + chosen +
              " to resume from the checkpoint before it)";
    }
  }
  world.agree_on(error);
  world.broadcast(chosen);
  if (chosen.empty()) return std::nullopt;
  world.broadcast(manifest);

  CheckpointPosition position;
  const std::string name = rank_file_name(world.rank());
  const std::string file = (fs::path(chosen) / name).string();
  try {
    std::istringstream lines(manifest);
    std::string line, listed_size, listed_crc;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string listed;
      if (fields >> listed && listed == name) fields >> listed_size >> listed_crc;
    }
    if (listed_crc.empty()) throw Error("checkpoint " + chosen + ": MANIFEST does not list " + name);
    const std::string bytes = read_whole_file(file, "checkpoint file");
    const std::string crc = checksum_hex(bytes);
    if (std::to_string(bytes.size()) != listed_size || crc != listed_crc)
      throw Error("checkpoint file " + file + " is damaged (" + std::to_string(bytes.size()) + " bytes, CRC-32 " + crc +
                  "; MANIFEST says " + listed_size + " bytes, " + listed_crc + "); delete " + chosen +
                  " to resume from the checkpoint before it");
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size(), trainer.executor().device());
    c10::IValue value;
    auto integer = [&](const char* key) {
      archive.read(key, value);
      return value.toInt();
    };
    auto real = [&](const char* key) {
      archive.read(key, value);
      return value.toDouble();
    };
    auto text = [&](const char* key) {
      archive.read(key, value);
      return value.toStringRef();
    };
    position.epoch = static_cast<int>(integer("epoch"));
    position.step = integer("step");
    position.rows = integer("rows");
    position.samples = integer("samples");
    position.skipped_steps = integer("skipped_steps");
    position.loss_sum = real("loss_sum");
    position.correct = real("correct");
    position.seconds = real("seconds");
    position.active_seconds = real("active_seconds");
    position.run_file = text("run_file");
    position.run_id = text("run_id");
    at::Tensor confusion;
    if (archive.try_read("confusion", confusion, true)) position.confusion = confusion;
    at::Tensor counters;
    if (archive.try_read("counters", counters, true)) {
      counters = counters.to(at::kDouble).contiguous();
      position.counters.assign(counters.data_ptr<double>(), counters.data_ptr<double>() + counters.numel());
    }
    // Every reason to refuse in one message: a user fixes them all at once.
    archive.read("options", value);
    const std::string changed = differences(decode_options(value.toStringRef()), defining_options(config));
    std::string refusal;
    if (!changed.empty())
      refusal = "--resume: these options differ from the checkpoint's run and would change its results: " + changed +
                ". Resume with the checkpoint's values (only --epochs upwards, --threads, --comm-timeout, "
                "--progress-every, --link, --transport and checkpoint options may change), or start a new run";
    if (config.epochs <= position.epoch)
      refusal += (refusal.empty() ? "" : "; also ") + std::string("--epochs ") + std::to_string(config.epochs) +
                 ": the checkpoint " + chosen + " has already trained " + std::to_string(position.epoch) +
                 " epoch(s); pass a larger --epochs to train further";
    if (!refusal.empty()) throw Error(refusal);
    archive.read("identity", value);
    const std::string expected = identity(config, trainer, world);
    if (value.toStringRef() != expected)
      throw Error("checkpoint " + chosen + " was written by a different run (" + value.toStringRef() +
                  "); this run has " + expected + ". Use the same model, ranks and partition, or another --checkpoint-dir");
    trainer.state().load(archive);
  } catch (const std::exception& e) {
    const std::string why = one_line(e);
    error = why.rfind("checkpoint", 0) == 0 || why.rfind("--", 0) == 0 ? why : "cannot load checkpoint " + file + ": " + why;
  }
  world.agree_on(error, 2);
  return position;
}

}  // namespace splitpipe
