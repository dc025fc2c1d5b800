// The program once MPI is up: every failure that depends on one rank's view (data files, the
// output file) is agreed on collectively, so all ranks stop together with one message.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <tuple>

#include "splitpipe/interrupt.hpp"
#include "splitpipe/checkpoint.hpp"
#include "splitpipe/clients.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/link.hpp"
#include "splitpipe/run_file.hpp"
#include "splitpipe/trainer.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;

double peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;  // Linux reports KiB
}

std::string hostname() {
  char name[256] = {0};
  gethostname(name, sizeof(name) - 1);
  return name;
}

std::string default_output(const RunConfig& config) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return "results/" + config.model + "-" + config.data.dataset + "-" + stamp + ".h5";
}

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "x" : "") + std::to_string(shape[i]);
  return text;
}

// Each rank checks the device of the stages it will hold (an edge without a GPU may well
// serve a GPU server), and every rank learns of a refusal: none waits for a peer that left.
void check_devices(const RunConfig& config, const MpiTransport& world) {
  const bool single = world.size() == 1;
  const bool edge = world.rank() < config.edge_ranks;
  std::optional<std::string> error;
  for (const auto& [option, device, holds] : {std::tuple{"edge-device", config.edge_device, single || edge},
                                              std::tuple{"server-device", config.server_device, single || !edge}})
    if (holds && device == "cuda" && !error && torch::cuda::device_count() == 0)
      error = std::string("--") + option + " cuda: no GPU is visible to this process (" +
              (single ? "" : edge ? "an edge rank, " : "a server rank, ") +
              "CUDA_VISIBLE_DEVICES='" + (std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "") +
              "'); run it on a GPU node (e.g. sbatch --gpus-per-task=1) or use --" + option + " cpu";
  world.agree_on(error, 2);
}

// Rank 0 alone reads the data; the others learn from agree_on whether it worked.
std::optional<DatasetSplits> load_on_edge(const RunConfig& config, const MpiTransport& world) {
  std::optional<DatasetSplits> data;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    try {
      data = load_dataset(config.data);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  world.agree_on(error);
  return data;
}

// The run file is opened by rank 0; a refusal (file exists) stops every rank. A resumed run
// reopens the file its checkpoint names and drops rows written after the checkpoint.
std::optional<RunFile> open_run_file(const RunConfig& config, const MpiTransport& world, std::string& path,
                                     const std::optional<CheckpointPosition>& resumed) {
  std::optional<RunFile> file;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    try {
      if (resumed) {
        path = config.output.empty() ? resumed->run_file : config.output;
        file = RunFile::open_existing(path);
        file->truncate("epochs", resumed->rows);
        file->truncate("confusion", resumed->rows);
        for (int r = 0; r < world.size(); ++r) file->truncate("ranks/rank" + std::to_string(r), resumed->rows);
        file->set_attribute("status", std::string("running"));
      } else {
        path = config.output.empty() ? default_output(config) : config.output;
        file = RunFile::create(path, config.overwrite);
      }
    } catch (const Error& e) {
      error = e.what();
    }
  }
  world.agree_on(error);
  return file;
}

// A fresh run never mixes its checkpoints with an older run's: refused unless --overwrite,
// which removes the old ones first.
void prepare_checkpoint_dir(const RunConfig& config, const MpiTransport& world) {
  if (config.checkpoint_dir.empty() || config.resume) return;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::vector<fs::path> old;
    for (const auto& entry : fs::directory_iterator(config.checkpoint_dir, ec))
      if (entry.is_directory() && entry.path().filename().string().rfind("epoch-", 0) == 0) old.push_back(entry.path());
    if (!old.empty() && !config.overwrite)
      error = "--checkpoint-dir '" + config.checkpoint_dir + "' already holds " + std::to_string(old.size()) +
              " checkpoint(s): add --resume to continue that run, or --overwrite to delete them and start over";
    else
      for (const auto& dir : old) fs::remove_all(dir, ec);
  }
  world.agree_on(error, 2);
}

void write_static_metadata(RunFile& file, const RunConfig& config, const Trainer& trainer, const MpiTransport& world,
                           const std::vector<std::string>& hosts) {
  file.set_attribute("splitpipe_version", splitpipe_version());
  file.set_attribute("libtorch_version", libtorch_version());
  file.set_attribute("world_size", static_cast<int64_t>(world.size()));
  std::string host_list;
  for (size_t r = 0; r < hosts.size(); ++r) host_list += (r ? "," : "") + hosts[r];
  file.set_attribute("hostnames", host_list);
  file.set_attribute("resolved_config", config.to_ini());
  file.set_attribute("config", config.config_file);
  for (const auto& option : config.resolved) file.set_attribute(option.name, option.value);

  std::vector<std::string> names, shapes;
  std::vector<double> index, params;
  for (size_t b = 0; b < trainer.blocks().size(); ++b) {
    const Block& block = trainer.blocks()[b];
    index.push_back(static_cast<double>(b));
    names.push_back(block.name);
    shapes.push_back(shape_text(block.output_shape));
    params.push_back(static_cast<double>(block.parameters));
  }
  file.write_number_column("model", "index", index);
  file.write_string_column("model", "name", names);
  file.write_string_column("model", "output_shape", shapes);
  file.write_number_column("model", "parameters", params);

  std::vector<double> stage, rank, first, end, stage_params, seconds;
  std::vector<std::string> roles;
  for (const auto& s : trainer.plan().stages) {
    stage.push_back(s.stage);
    rank.push_back(s.rank);
    roles.push_back(s.role);
    first.push_back(s.first_block);
    end.push_back(s.end_block);
    stage_params.push_back(static_cast<double>(s.parameters));
    seconds.push_back(s.estimated_seconds);
  }
  file.write_number_column("ranks", "stage", stage);
  file.write_number_column("ranks", "rank", rank);
  file.write_string_column("ranks", "role", roles);
  file.write_number_column("ranks", "first_block", first);
  file.write_number_column("ranks", "end_block", end);
  file.write_number_column("ranks", "parameters", stage_params);
  file.write_number_column("ranks", "estimated_seconds", seconds);
}

int64_t total_parameters(const std::vector<Block>& blocks) {
  int64_t total = 0;
  for (const auto& b : blocks) total += b.parameters;
  return total;
}

std::string role_of(const PartitionPlan& plan, int rank) {
  for (const auto& s : plan.stages)
    if (s.rank == rank) return s.role == "edge-first" || s.role == "edge-last" ? "edge" : s.role;
  return "?";
}

// Per-rank counters of one epoch, with the derived idle time and bubble fraction.
std::vector<std::pair<std::string, double>> rank_row(const RankCounters& c, double epoch_seconds) {
  auto row = c.row();
  const double busy = c.forward_seconds + c.backward_seconds + c.encode_seconds + c.decode_seconds;
  row.emplace_back("idle_seconds", std::max(0.0, epoch_seconds - busy - c.wait_seconds));
  row.emplace_back("bubble_fraction", c.step_seconds > 0 ? c.wait_seconds / c.step_seconds : 0.0);
  row.emplace_back("epoch_seconds", epoch_seconds);
  row.emplace_back("peak_rss_bytes", peak_rss_bytes());
  return row;
}

double value_of(const std::vector<std::pair<std::string, double>>& names, const std::vector<double>& values,
                const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].first == name) return values[i];
  return 0;
}

void print_time_table(const PartitionPlan& plan, const std::vector<std::pair<std::string, double>>& names,
                      const std::vector<std::vector<double>>& totals) {
  std::cout << "\nwhere the time went (seconds, all epochs):\n"
            << "  rank  role      forward  backward   encode   decode  comm-wait     idle  bubble  sent MB  recv MB\n";
  for (size_t r = 0; r < totals.size(); ++r) {
    double sent = 0, received = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      const auto& n = names[i].first;
      if (n.find("_sent_bytes") != std::string::npos) sent += totals[r][i];
      if (n.find("_received_bytes") != std::string::npos) received += totals[r][i];
    }
    auto v = [&](const char* name) { return value_of(names, totals[r], name); };
    const double bubble = v("step_seconds") > 0 ? v("comm_wait_seconds") / v("step_seconds") : 0;
    std::cout << "  " << std::setw(4) << r << "  " << std::left << std::setw(8) << role_of(plan, r) << std::right
              << std::setw(9) << fixed(v("forward_seconds"), 2) << std::setw(10) << fixed(v("backward_seconds"), 2)
              << std::setw(9) << fixed(v("encode_seconds"), 2) << std::setw(9) << fixed(v("decode_seconds"), 2)
              << std::setw(11) << fixed(v("comm_wait_seconds"), 2) << std::setw(9) << fixed(v("idle_seconds"), 2)
              << std::setw(7) << fixed(100 * bubble, 1) << "%" << std::setw(9) << fixed(sent / 1e6, 1)
              << std::setw(9) << fixed(received / 1e6, 1) << "\n";
  }
}

}  // namespace

void run(const RunConfig& config, MpiTransport& world) {
  install_interrupt_handlers();  // again, for callers other than main (tests)
  // Armed before the first collective: a rank that fails or hangs in any check below must not
  // leave the others waiting forever.
  world.set_timeout(config.comm_timeout);
  if (config.expect_ranks > 0 && config.expect_ranks != world.size())
    throw UsageError("this run expects " + std::to_string(config.expect_ranks) + " ranks (--expect-ranks) but mpirun started " +
                     std::to_string(world.size()) + "; use mpirun -np " + std::to_string(config.expect_ranks));
  check_devices(config, world);
  // Before the data loads: an existing result is refused at once, not after minutes of setup.
  std::optional<std::string> exists;
  const bool writes_output = !config.dry_run && !config.print_schedule && !config.resume;
  if (world.rank() == 0 && writes_output && !config.output.empty() && !config.overwrite &&
      std::filesystem::exists(config.output))
    exists = "run file '" + config.output + "' already exists; pass --overwrite to replace it or choose another --output";
  world.agree_on(exists);
  at::set_num_threads(config.threads);
  if (config.edge_ranks > 1) return run_clients(config, world);  // several edge clients: src/train/clients.cpp
  const bool root = world.rank() == 0;

  const auto data = load_on_edge(config, world);
  if (root) std::cout << "data: " << data->description << "\n";

  std::vector<double> block_seconds;
  if (config.server_split == "time") {
    // Rank 0 profiles and everyone plans from the same numbers.
    std::vector<int64_t> micro;
    if (root) {
      torch::manual_seed(config.seed);
      auto blocks = build_model({config.model, data->train.sample_shape(), data->train.num_classes, config.mlp_hidden});
      for (double s : profile_blocks(blocks, data->train.sample_shape(), (config.batch_size + config.chunks - 1) / config.chunks))
        micro.push_back(static_cast<int64_t>(s * 1e9));
    }
    world.broadcast(micro);
    for (int64_t ns : micro) block_seconds.push_back(ns * 1e-9);
  }
  Trainer trainer(config, world, data ? &*data : nullptr, block_seconds);
  const PartitionPlan& plan = trainer.plan();

  if (config.dry_run || config.print_schedule) {
    if (root) {
      if (config.dry_run)
        std::cout << "resolved configuration:\n" << config.to_ini() << "\nmodel " << config.model << ":\n"
                  << format_block_table(trainer.blocks()) << "\n" << plan.format(trainer.blocks());
      if (config.print_schedule) {
        const int m = static_cast<int>(std::min<int64_t>(config.chunks, config.batch_size));
        std::cout << format_schedule(trainer.schedule(m, false)) << format_schedule(trainer.schedule(m, true));
      }
    }
    return;
  }

  prepare_checkpoint_dir(config, world);
  std::optional<CheckpointPosition> resumed;
  if (config.resume) resumed = load_checkpoint(config.checkpoint_dir, trainer, config.model, world);
  std::string path;
  auto file = open_run_file(config, world, path, resumed);
  const auto hosts = world.gather_strings(hostname());
  const auto names = rank_row(trainer.executor().counters(), 0);
  std::vector<std::vector<double>> totals(world.size(), std::vector<double>(names.size(), 0.0));
  try {
    if (root) {
      if (!resumed) write_static_metadata(*file, config, trainer, world, hosts);
      std::cout << "model " << config.model << ": " << trainer.blocks().size() << " blocks, "
                << total_parameters(trainer.blocks()) << " parameters\n"
                << plan.format(trainer.blocks()) << "schedule " << config.schedule << ", " << config.chunks
                << " chunks, batch " << config.batch_size << ", " << trainer.steps_per_epoch()
                << " steps/epoch, threads " << config.threads << "; fwd codec " << config.fwd_codec << ", bwd codec "
                << config.bwd_codec << (config.link.empty() ? "" : "; link " + parse_link_spec(config.link).describe()) << "\n"
                << (resumed ? "resuming from epoch " + std::to_string(resumed->epoch + 1) + " step " +
                                  std::to_string(resumed->step) + ", appending to "
                            : "writing ")
                << path << "\n";
    }
    const auto run_start = Clock::now();
    const int first_epoch = resumed ? resumed->epoch : 0;
    for (int epoch = first_epoch; epoch < config.epochs; ++epoch) {
      trainer.executor().counters().reset();
      auto last_print = Clock::now();
      const Trainer::Progress progress = [&](int64_t step, int64_t steps, const PassStats& so_far) {
        if (!root) return;
        const bool due = config.progress_every > 0
                             ? step % config.progress_every == 0
                             : std::chrono::duration<double>(Clock::now() - last_print).count() > 10.0;
        if (!due || step == steps) return;
        last_print = Clock::now();
        std::cout << "  epoch " << epoch + 1 << " step " << step << "/" << steps << "  loss " << fixed(so_far.loss, 4)
                  << "  acc " << fixed(100 * so_far.accuracy, 2) << "%  "
                  << fixed(so_far.samples / std::max(so_far.seconds, 1e-9), 0) << " samples/s" << std::endl;
      };
      const auto epoch_start = Clock::now();
      const int64_t first_step = resumed && epoch == resumed->epoch ? resumed->step : 0;
      PassStats train = trainer.train(epoch, first_step, -1, progress);
      if (first_step > 0 && root) {  // the part of this epoch before the checkpoint
        PassStats before;
        before.samples = resumed->samples;
        before.loss = resumed->samples ? resumed->loss_sum / resumed->samples : 0;
        before.accuracy = resumed->samples ? resumed->correct / resumed->samples : 0;
        before.seconds = resumed->seconds;
        before.skipped_steps = resumed->skipped_steps;
        before.confusion = resumed->confusion;
        train = merge(before, train);
      }
      if (train.interrupted) {
        CheckpointPosition position{epoch, train.next_step, epoch, path, train.loss * train.samples,
                                    train.accuracy * train.samples, train.seconds, train.samples,
                                    train.skipped_steps, train.confusion};
        const std::string where = config.checkpoint_dir.empty()
                                      ? std::string("no --checkpoint-dir, nothing saved")
                                      : "checkpoint " + save_checkpoint(config.checkpoint_dir, position, trainer,
                                                                        config.model, world);
        throw InterruptedError("stopped by SIGUSR1/SIGTERM at epoch " + std::to_string(epoch + 1) + " step " +
                               std::to_string(train.next_step) + "; " + where +
                               (config.checkpoint_dir.empty() ? "" : "; continue with --resume"));
      }
      const PassStats test = trainer.evaluate();
      const double epoch_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
      const auto row = rank_row(trainer.executor().counters(), epoch_seconds);
      std::vector<double> values;
      for (const auto& [name, value] : row) values.push_back(value);
      const auto gathered = world.gather(values);
      if (root) {
        const double samples_per_second = train.samples / train.seconds;
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        file->append_row("epochs", {{"epoch", epoch + 1.0},
                                    {"lr", trainer.lr_schedule().at(epoch, trainer.steps_per_epoch() - 1)},
                                    {"train_loss", train.loss},
                                    {"train_acc", train.accuracy},
                                    {"test_loss", test.loss},
                                    {"test_acc", test.accuracy},
                                    {"epoch_seconds", epoch_seconds},
                                    {"samples_per_second", samples_per_second},
                                    {"skipped_steps", static_cast<double>(train.skipped_steps)},
                                    {"peak_rss_bytes", peak_rss_bytes()}});
        file->append_matrix("confusion", test.confusion);
        for (int r = 0; r < world.size(); ++r) {
          std::vector<std::pair<std::string, double>> rank_values;
          for (size_t i = 0; i < names.size(); ++i) {
            rank_values.emplace_back(names[i].first, gathered[r][i]);
            totals[r][i] += gathered[r][i];
          }
          file->append_row("ranks/rank" + std::to_string(r), rank_values);
        }
        const double eta = elapsed / (epoch + 1 - first_epoch) * (config.epochs - epoch - 1);
        std::cout << "epoch " << epoch + 1 << "/" << config.epochs << "  train loss " << fixed(train.loss, 4) << " acc "
                  << fixed(100 * train.accuracy, 2) << "%  test loss " << fixed(test.loss, 4) << " acc "
                  << fixed(100 * test.accuracy, 2) << "%  " << fixed(samples_per_second, 0) << " samples/s  "
                  << fixed(epoch_seconds, 1) << " s  elapsed " << fixed(elapsed, 1) << " s  ETA " << fixed(eta, 1)
                  << " s" << std::endl;
      }
      const bool last = epoch + 1 == config.epochs;
      if (!config.checkpoint_dir.empty() && ((epoch + 1) % config.checkpoint_every == 0 || last))
        save_checkpoint(config.checkpoint_dir, CheckpointPosition{epoch + 1, 0, epoch + 1, path}, trainer, config.model,
                        world);
    }
    // Equal digests on every rank mean bit-identical weights (resume tests compare them).
    const auto digests = world.gather_strings(trainer.weights_digest());
    if (root) {
      std::string digest_list;
      for (size_t r = 0; r < digests.size(); ++r) digest_list += (r ? "," : "") + digests[r];
      file->set_attribute("weights_digest", digest_list);
      const int epochs_run = config.epochs - first_epoch;
      for (auto& rank_totals : totals)  // ratios are per epoch; report their mean
        for (size_t i = 0; i < names.size(); ++i)
          if (names[i].first.find("rel_error") != std::string::npos || names[i].first == "bubble_fraction" ||
              names[i].first == "peak_rss_bytes")
            rank_totals[i] /= std::max(epochs_run, 1);
      print_time_table(plan, names, totals);
      file->finish("complete");
      std::cout << "wrote " << path << std::endl;
    }
  } catch (const std::exception& e) {
    if (file) file->finish(std::string(dynamic_cast<const InterruptedError*>(&e) ? "interrupted: " : "failed: ") + e.what());
    throw;
  }
}

}  // namespace splitpipe
