#include "splitpipe/checkpoint.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "splitpipe/error.hpp"
#include "splitpipe/control_plane.hpp"
#include "splitpipe/trainer.hpp"

namespace splitpipe {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCompleteMarker = "COMPLETE";

std::string checkpoint_name(int epoch, int64_t step) {
  std::ostringstream name;
  name << "epoch-" << std::setw(4) << std::setfill('0') << epoch << "-step-" << std::setw(7) << step;
  return name.str();
}

std::string rank_file(const fs::path& dir, int rank) { return (dir / ("rank" + std::to_string(rank) + ".pt")).string(); }

// What must match between the run that wrote a checkpoint and the one loading it.
std::string identity(const std::string& model, const Trainer& trainer, const ControlPlane& world) {
  std::ostringstream text;
  text << "model " << model << ", " << trainer.blocks().size() << " blocks, " << world.size() << " ranks, "
       << trainer.strategy().clients() << " edge client(s) " << trainer.strategy().mode() << ", stages";
  for (const auto& stage : trainer.plan().stages) text << " " << stage.first_block << "-" << stage.end_block;
  return text.str();
}

// Newest directory with a COMPLETE marker; names sort by (epoch, step).
std::optional<fs::path> newest_complete(const fs::path& dir) {
  std::optional<fs::path> newest;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory() || !fs::exists(entry.path() / kCompleteMarker)) continue;
    if (!newest || entry.path().filename() > newest->filename()) newest = entry.path();
  }
  return newest;
}

}  // namespace

std::string save_checkpoint(const std::string& dir, const CheckpointPosition& position, const Trainer& trainer,
                            const std::string& model, const ControlPlane& world) {
  const fs::path target = fs::path(dir) / checkpoint_name(position.epoch, position.step);
  std::optional<std::string> error;
  try {
    fs::create_directories(target);
    torch::serialize::OutputArchive archive;
    archive.write("identity", c10::IValue(identity(model, trainer, world)));
    archive.write("epoch", c10::IValue(static_cast<int64_t>(position.epoch)));
    archive.write("step", c10::IValue(position.step));
    archive.write("rows", c10::IValue(position.rows));
    archive.write("run_file", c10::IValue(position.run_file));
    archive.write("loss_sum", c10::IValue(position.loss_sum));
    archive.write("correct", c10::IValue(position.correct));
    archive.write("seconds", c10::IValue(position.seconds));
    archive.write("active_seconds", c10::IValue(position.active_seconds));
    archive.write("samples", c10::IValue(position.samples));
    archive.write("skipped_steps", c10::IValue(position.skipped_steps));
    if (position.confusion.defined()) archive.write("confusion", position.confusion, true);
    trainer.state().save(archive);
    const std::string final_name = rank_file(target, world.rank());
    const std::string temporary = final_name + ".tmp";
    archive.save_to(temporary);
    fs::rename(temporary, final_name);
  } catch (const std::exception& e) {
    error = "cannot write checkpoint " + target.string() + ": " + e.what();
  }
  world.agree_on(error);  // every rank's file is in place before the marker exists
  if (world.rank() == 0) {
    const fs::path marker = target / kCompleteMarker, temporary = target / "COMPLETE.tmp";
    std::ofstream(temporary) << identity(model, trainer, world) << "\n";
    fs::rename(temporary, marker);
  }
  world.barrier();
  return target.string();
}

CheckpointPosition load_checkpoint(const std::string& dir, Trainer& trainer, const std::string& model,
                                   const ControlPlane& world) {
  std::string chosen;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    if (const auto newest = newest_complete(dir))
      chosen = newest->string();
    else
      error = "--resume: no complete checkpoint in '" + dir + "' (a checkpoint directory with a COMPLETE marker)";
  }
  world.agree_on(error, 2);
  world.broadcast(chosen);

  CheckpointPosition position;
  try {
    const std::string file = rank_file(chosen, world.rank());
    if (!fs::exists(file)) throw Error("missing " + file);
    torch::serialize::InputArchive archive;
    archive.load_from(file, trainer.executor().device());
    c10::IValue value;
    archive.read("identity", value);
    const std::string expected = identity(model, trainer, world);
    if (value.toStringRef() != expected)
      throw Error("checkpoint " + chosen + " was written by a different run (" + value.toStringRef() +
                  "); this run has " + expected + ". Use the same model, ranks and partition, or another --checkpoint-dir");
    auto integer = [&](const char* key) {
      archive.read(key, value);
      return value.toInt();
    };
    auto real = [&](const char* key) {
      archive.read(key, value);
      return value.toDouble();
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
    archive.read("run_file", value);
    position.run_file = value.toStringRef();
    at::Tensor confusion;
    if (archive.try_read("confusion", confusion, true)) position.confusion = confusion;
    trainer.state().load(archive);
  } catch (const c10::Error& e) {
    error = "cannot load checkpoint " + chosen + ": " + e.what_without_backtrace();
  } catch (const std::exception& e) {
    error = "cannot load checkpoint " + chosen + ": " + e.what();
  }
  world.agree_on(error, 2);
  return position;
}

}  // namespace splitpipe
