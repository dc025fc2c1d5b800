// The one run driver, for every client mode: every failure that depends on one rank's view
// (data files, the output file, a device) is agreed on collectively, so all ranks stop
// together with one message.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <tuple>

#include "splitpipe/checkpoint.hpp"
#include "splitpipe/control_plane.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/fault.hpp"
#include "splitpipe/interrupt.hpp"
#include "splitpipe/link.hpp"
#include "splitpipe/run.hpp"
#include "splitpipe/run_file.hpp"
#include "splitpipe/trace.hpp"
#include "splitpipe/run_schema.hpp"
#include "splitpipe/schedule.hpp"
#include "splitpipe/planner.hpp"
#include "splitpipe/trainer.hpp"
#include "plan_costs.hpp"
#include "epoch_tables.hpp"

namespace splitpipe {
namespace {

using Clock = std::chrono::steady_clock;

// The longest a rank waits for the others to load data and build the model.
constexpr double kSetupTimeoutSeconds = 3600;

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
  const std::string clients = config.edge_ranks > 1 ? "-clients" + std::to_string(config.edge_ranks) : "";
  return "results/" + config.model + "-" + config.data.dataset + clients + "-" + stamp + ".h5";
}

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += 'x';
    text += std::to_string(shape[i]);
  }
  return text;
}

// Every edge client reads the dataset itself, as a real client holds its own data; the
// others learn from agree_on whether it worked.
std::optional<DatasetSplits> load_on_clients(const RunConfig& config, const ControlPlane& world) {
  std::optional<DatasetSplits> data;
  std::optional<std::string> error;
  if (world.rank() < config.edge_ranks) {
    try {
      data = load_dataset(config.data);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  world.agree_on(error);
  return data;
}

// Keeps the first `rows` rows of every per-epoch table, so all of them always agree.
void keep_rows(RunFile& file, int64_t rows, int ranks, int clients) {
  file.truncate("epochs", rows);
  file.truncate("confusion", rows);
  file.truncate("boundaries/traffic", rows);
  for (int r = 0; r < ranks; ++r) file.truncate("ranks/rank" + std::to_string(r), rows);
  for (int c = 0; c < clients; ++c) file.truncate("clients/" + std::to_string(c), rows);
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

// The run file is opened by rank 0; a refusal (file exists, in use) stops every rank. A resumed
// run reopens the file its checkpoint names, if it is still that run's, and drops rows written
// after the checkpoint.
std::optional<RunFile> open_run_file(const RunConfig& config, const ControlPlane& world, std::string& path,
                                     const std::optional<CheckpointPosition>& resumed) {
  std::optional<RunFile> file;
  std::optional<std::string> error;
  if (world.rank() == 0) {
    try {
      if (resumed) {
        path = resumed->run_file;
        if (!config.output.empty() && !same_file(config.output, path))
          throw Error("--output '" + config.output + "': the checkpoint belongs to the run writing '" + path +
                      "', and a resumed run keeps appending there; drop --output or pass --output '" + path + "'");
        file = RunFile::open_existing(path);
        if (!resumed->run_id.empty() && file->run_id() != resumed->run_id)
          throw Error("run file '" + path + "' is not the one this checkpoint belongs to (its run_id is '" +
                      file->run_id() + "', the checkpoint's '" + resumed->run_id +
                      "'): another run replaced it. Restore that file, or start over without --resume");
        if (file->rows("epochs") < resumed->rows)
          throw Error("run file '" + path + "' has " + std::to_string(file->rows("epochs")) +
                      " epoch rows but the checkpoint was taken after " + std::to_string(resumed->rows) +
                      "; the file lost rows, so resuming would leave a gap");
        keep_rows(*file, resumed->rows, world.size(), config.edge_ranks);
        file->set_attribute("status", std::string("running"));
      } else {
        path = config.output.empty() ? default_output(config) : config.output;
        file = RunFile::create(path, config.overwrite);
      }
    } catch (const std::exception& e) {
      error = one_line(e);
    }
  }
  world.agree_on(error);
  return file;
}

// /options: every option typed, so a reader compares numbers, not the text "0.05".
void write_typed_options(RunFile& file, const RunConfig& config) {
  for (const auto& option : config.resolved) {
    switch (option.kind) {
      case 'i': file.set_attribute(option.name, static_cast<int64_t>(std::stoll(option.value)), "options"); break;
      case 'u': file.set_attribute(option.name, static_cast<uint64_t>(std::stoull(option.value)), "options"); break;
      case 'b': file.set_attribute(option.name, static_cast<int64_t>(option.value == "true"), "options"); break;
      case 'f': file.set_attribute(option.name, std::stod(option.value), "options"); break;
      default: file.set_attribute(option.name, option.value, "options");
    }
  }
}

// /boundaries: where each cut of a pipeline sits and what crosses it (client 0's pipeline; every
// client's has the same cuts).
void write_boundaries(RunFile& file, const Trainer& trainer) {
  const PartitionPlan& plan = trainer.plan();
  std::vector<double> index, from_stage, to_stage, from_block, to_block, raw_bytes;
  std::vector<std::string> shapes;
  for (int b = 0; b + 1 < plan.pipeline_length(); ++b) {
    const StagePlan& sender = plan.stages.at(b);
    const StagePlan& receiver = plan.stages.at(b + 1);
    const Block& last = trainer.blocks().at(sender.end_block - 1);
    int64_t elements = 1;
    for (int64_t d : last.output_shape) elements *= d;
    index.push_back(b);
    from_stage.push_back(b);
    to_stage.push_back(b + 1);
    from_block.push_back(sender.end_block - 1);
    to_block.push_back(receiver.first_block);
    shapes.push_back(shape_text(last.output_shape));
    raw_bytes.push_back(static_cast<double>(elements) * sizeof(float));
  }
  file.write_number_column("boundaries", "index", index);
  file.write_number_column("boundaries", "from_stage", from_stage);
  file.write_number_column("boundaries", "to_stage", to_stage);
  file.write_number_column("boundaries", "from_block", from_block);
  file.write_number_column("boundaries", "to_block", to_block);
  file.write_string_column("boundaries", "activation_shape", shapes);
  file.write_number_column("boundaries", "raw_bytes_per_sample", raw_bytes);
}

// /links: the emulated links as numbers (0 rows without --link).
void write_links(RunFile& file, const RunConfig& config) {
  std::vector<double> client, bits, latency, up, down;
  if (!config.link.empty()) {
    const auto links = parse_link_list(config.link, config.edge_ranks);
    for (int c = 0; c < config.edge_ranks; ++c) {
      const LinkSpec& link = links.size() == 1 ? links[0] : links.at(c);
      client.push_back(c);
      bits.push_back(link.bits_per_second);
      latency.push_back(link.latency_seconds);
      up.push_back(link.shape_up);
      down.push_back(link.shape_down);
    }
  }
  file.write_number_column("links", "client", client);
  file.write_number_column("links", "bits_per_second", bits);
  file.write_number_column("links", "latency_seconds", latency);
  file.write_number_column("links", "shape_up", up);
  file.write_number_column("links", "shape_down", down);
}

// /schema: the table every dataset here was labelled from.
void write_schema(RunFile& file) {
  std::vector<std::string> path, kind, type, units, description;
  for (const auto& entry : run_schema()) {
    path.push_back(entry.path);
    kind.push_back(entry.kind);
    type.push_back(entry.type);
    units.push_back(entry.units);
    description.push_back(entry.description);
  }
  file.write_string_column("schema", "path", path);
  file.write_string_column("schema", "kind", kind);
  file.write_string_column("schema", "type", type);
  file.write_string_column("schema", "units", units);
  file.write_string_column("schema", "description", description);
}

void write_static_metadata(RunFile& file, const RunConfig& config, const Trainer& trainer, const ControlPlane& world,
                           const std::vector<std::string>& hosts) {
  file.set_attribute("splitpipe_version", splitpipe_version());
  file.set_attribute("libtorch_version", libtorch_version());
  file.set_attribute("world_size", static_cast<int64_t>(world.size()));
  std::string host_list;
  for (size_t r = 0; r < hosts.size(); ++r) host_list += (r ? "," : "") + hosts[r];
  file.set_attribute("hostnames", host_list);
  file.set_attribute("resolved_config", config.to_ini());
  file.set_attribute("config", config.config_file);
  file.set_attribute("plan", config.plan_chosen);
  file.set_attribute("predicted_samples_per_second", config.plan_predicted_samples_per_second);
  write_typed_options(file, config);

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
  write_boundaries(file, trainer);
  write_links(file, config);
  write_schema(file);
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

// One row of /epochs.
struct EpochRow {
  double epoch = 0, lr = 0, train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0, epoch_seconds = 0,
         train_seconds = 0, steps = 0, train_samples = 0, samples_per_second = 0, skipped_steps = 0,
         edge_sync_seconds = 0, edge_sync_bytes = 0, train_wire_bytes = 0, train_raw_bytes = 0, train_label_bytes = 0,
         eval_wire_bytes = 0,
         act_compression = 0, grad_compression = 0, bubble_fraction = 0, simulated_bubble_fraction = 0,
         peak_rss_bytes = 0;
  std::vector<std::pair<std::string, double>> columns() const {
    return {{"epoch", epoch},
            {"lr", lr},
            {"train_loss", train_loss},
            {"train_acc", train_acc},
            {"test_loss", test_loss},
            {"test_acc", test_acc},
            {"epoch_seconds", epoch_seconds},
            {"train_seconds", train_seconds},
            {"steps", steps},
            {"train_samples", train_samples},
            {"samples_per_second", samples_per_second},
            {"skipped_steps", skipped_steps},
            {"edge_sync_seconds", edge_sync_seconds},
            {"edge_sync_bytes", edge_sync_bytes},
            {"train_wire_bytes", train_wire_bytes},
            {"train_raw_bytes", train_raw_bytes},
            {"train_label_bytes", train_label_bytes},
            {"eval_wire_bytes", eval_wire_bytes},
            {"act_compression", act_compression},
            {"grad_compression", grad_compression},
            {"bubble_fraction", bubble_fraction},
            {"simulated_bubble_fraction", simulated_bubble_fraction},
            {"peak_rss_bytes", peak_rss_bytes}};
  }
};

std::vector<std::string> column_names(const std::vector<std::pair<std::string, double>>& row) {
  std::vector<std::string> names;
  for (const auto& column : row) names.push_back(column.first);
  return names;
}

// Totals over the epochs of this session, per rank, with the fractions taken from the sums.
void print_time_table(const PartitionPlan& plan, const std::vector<std::vector<double>>& totals) {
  const auto columns = rank_counter_columns();
  std::cout << "\nwhere the time went (seconds, all epochs):\n"
            << "  rank  role      forward  backward   encode   decode  comm-wait     data     idle   wait  sent MB  recv MB\n";
  for (size_t r = 0; r < totals.size(); ++r) {
    auto v = [&](const std::string& name) {
      for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return totals[r][i];
      throw std::logic_error("no rank counter '" + name + "'");
    };
    const double wait = v("step_seconds") > 0 ? v("comm_wait_seconds") / v("step_seconds") : 0;
    std::cout << "  " << std::setw(4) << r << "  " << std::left << std::setw(8) << role_of(plan, static_cast<int>(r))
              << std::right << std::setw(9) << fixed(v("forward_seconds"), 2) << std::setw(10)
              << fixed(v("backward_seconds"), 2) << std::setw(9) << fixed(v("encode_seconds"), 2) << std::setw(9)
              << fixed(v("decode_seconds"), 2) << std::setw(11) << fixed(v("comm_wait_seconds"), 2) << std::setw(9)
              << fixed(v("data_seconds"), 2) << std::setw(9) << fixed(v("idle_seconds"), 2) << std::setw(6) << fixed(100 * wait, 1) << "%" << std::setw(9)
              << fixed(v("sent_bytes") / 1e6, 1) << std::setw(9) << fixed(v("received_bytes") / 1e6, 1) << "\n";
  }
}

// The bubble of the run's training schedule, simulated with unit costs.
double simulated_bubble(const RunConfig& config, Trainer& trainer) {
  const int m = static_cast<int>(std::min<int64_t>(config.chunks, config.batch_size));
  const int client = trainer.strategy().mode() == "parallel" ? -1 : 0;
  return simulate(trainer.schedule(client, m, false)).bubble_fraction;
}

// Per-client numbers of one epoch, gathered from every rank to rank 0. A client's link waits
// are seen at both ends: on the client (messages from the servers) and on the servers
// (messages from it), so every rank contributes its per-peer link waits.
struct ClientColumns {
  static constexpr int kOwn = 8;  // samples, loss_sum, correct, train_seconds, sync seconds/bytes, sent, received
  static std::vector<double> of_rank(const PassStats& train, const EdgeSyncStats& sync, const RankCounters& counters) {
    double sent = 0, received = 0;
    for (double b : counters.peer_sent_bytes) sent += b;
    for (double b : counters.peer_received_bytes) received += b;
    std::vector<double> values{static_cast<double>(train.samples), train.loss_sum, train.correct,
                               train.active_seconds, sync.seconds, sync.bytes, sent, received};
    values.insert(values.end(), counters.peer_link_wait_seconds.begin(), counters.peer_link_wait_seconds.end());
    return values;
  }
  // Rows of /clients/<c> from the gathered values (rank c is client c).
  static std::vector<std::vector<std::pair<std::string, double>>> rows(const std::vector<std::vector<double>>& gathered,
                                                                       int clients, int epoch) {
    std::vector<std::vector<std::pair<std::string, double>>> rows;
    for (int c = 0; c < clients; ++c) {
      const auto& v = gathered[c];
      double link_wait = 0;
      for (size_t r = 0; r < gathered.size(); ++r) {
        if (static_cast<int>(r) == c) {  // the client's own waits on messages from the servers
          for (size_t peer = 0; peer < gathered.size(); ++peer) link_wait += v[kOwn + peer];
        } else if (static_cast<int>(r) >= clients) {  // a server's waits on messages from client c
          link_wait += gathered[r][kOwn + c];
        }
      }
      rows.push_back({{"epoch", epoch + 1.0},
                      {"samples", v[0]},
                      {"loss", v[0] > 0 ? v[1] / v[0] : 0},
                      {"accuracy", v[0] > 0 ? v[2] / v[0] : 0},
                      {"train_seconds", v[3]},
                      {"edge_sync_seconds", v[4]},
                      {"edge_sync_bytes", v[5]},
                      {"sent_bytes", v[6]},
                      {"received_bytes", v[7]},
                      {"link_wait_seconds", link_wait}});
    }
    return rows;
  }
};

// Profiles the blocks on rank 0 for --server-split time; every rank plans from the same numbers.
std::vector<double> block_seconds_for_split(const RunConfig& config, const ControlPlane& world,
                                            const std::optional<DatasetSplits>& data) {
  if (config.server_split != "time") return {};
  std::vector<int64_t> nanoseconds;
  if (world.rank() == 0) {
    torch::manual_seed(config.seed);
    auto blocks = build_model(model_spec(config, data->train.sample_shape(), data->train.num_classes));
    for (double s : profile_blocks(blocks, data->train.sample_shape(), (config.batch_size + config.chunks - 1) / config.chunks))
      nanoseconds.push_back(static_cast<int64_t>(s * 1e9));
  }
  world.broadcast(nanoseconds);
  std::vector<double> seconds;
  for (int64_t ns : nanoseconds) seconds.push_back(ns * 1e-9);
  return seconds;
}

// The planner's search space for `config`: its fixed options stay fixed, its auto ones vary.
PlanSpace plan_space(const RunConfig& config, const std::vector<int>& chunk_counts) {
  PlanSpace space;
  if (!config.edge_first_auto) space.edge_first = {config.edge_first};
  if (!config.edge_last_auto) space.edge_last = {config.edge_last};
  space.chunks = chunk_counts;
  if (config.schedule != "auto") space.schedules = {config.schedule};
  if (config.fwd_codec != "auto") space.fwd_codecs = {config.fwd_codec};
  if (config.bwd_codec != "auto") space.bwd_codecs = {config.bwd_codec};
  return space;
}

// The codecs to measure: --plan-codecs where a direction is auto, and the fixed ones.
std::vector<std::string> codecs_to_measure(const RunConfig& config) {
  std::vector<std::string> codecs;
  if (config.fwd_codec == "auto" || config.bwd_codec == "auto") codecs = split_plan_codecs(config.plan_codecs);
  for (const auto& fixed : {config.fwd_codec, config.bwd_codec})
    if (fixed != "auto" && std::find(codecs.begin(), codecs.end(), fixed) == codecs.end()) codecs.push_back(fixed);
  return codecs;
}

// Collective: rank 0's ranking of the plans of `space` under --max-rel-error (empty on the other
// ranks). No plan left stops every rank with rank 0's message.
std::vector<PlanPrediction> ranked_plans(const RunConfig& config, const ControlPlane& world, const CostTable& costs,
                                         const PlanSpace& space) {
  std::vector<PlanPrediction> plans;
  std::optional<std::string> problem;
  if (world.rank() == 0) {
    PlanConstraints constraints;
    constraints.max_activation_error = constraints.max_gradient_error = config.max_rel_error;
    constraints.max_rank_bytes = parse_byte_size(config.plan_max_memory, "plan-max-memory");
    try {
      plans = rank_plans(costs, space, constraints);
    } catch (const UsageError& e) {
      problem = e.what();
    }
  }
  world.agree_on(problem, 2);
  return plans;
}

// Auto options: rank 0 measures (collectively), searches and picks the fastest predicted plan;
// every rank applies that choice (broadcast, so a near-tie cannot split the ranks) to the
// options and to their resolved text, and the run goes on with it.
void apply_plan(RunConfig& config, const ControlPlane& world, const std::optional<DatasetSplits>& data) {
  std::vector<int> chunk_counts;
  if (config.chunks_auto) {
    for (int c : {1, 2, 4, 8})
      if (c <= config.batch_size) chunk_counts.push_back(c);
  } else {
    chunk_counts = {config.chunks};
  }
  const CostTable costs = measure_costs(config, world, data, chunk_counts, codecs_to_measure(config));
  const std::vector<PlanPrediction> plans = ranked_plans(config, world, costs, plan_space(config, chunk_counts));
  std::string choice;
  std::vector<int64_t> numbers(4, 0);  // edge-first, edge-last, chunks, predicted samples/s x 1000
  if (world.rank() == 0) {
    const PlanPrediction& best = plans.front();
    std::string cuts;
    for (int cut : best.plan.server_cuts) cuts += (cuts.empty() ? "" : ",") + std::to_string(cut);
    choice = best.plan.fwd_codec + "\n" + best.plan.bwd_codec + "\n" + (cuts.empty() ? "even" : cuts) + "\n" +
             best.plan.schedule;
    numbers = {best.plan.edge_first, best.plan.edge_last, best.plan.chunks,
               static_cast<int64_t>(std::llround(best.samples_per_second * 1000))};
  }
  world.broadcast(choice);
  world.broadcast(numbers);
  std::istringstream lines(choice);
  std::string fwd, bwd, split, schedule;
  std::getline(lines, fwd);
  std::getline(lines, bwd);
  std::getline(lines, split);
  std::getline(lines, schedule);
  std::string chosen;
  const auto take = [&](bool automatic, const char* name, const std::string& value, auto apply) {
    if (!automatic) return;
    apply();
    config.set_resolved(name, value);
    chosen += (chosen.empty() ? "" : " ") + std::string("--") + name + " " + value;
  };
  take(config.edge_first_auto, "edge-first", std::to_string(numbers[0]), [&] { config.edge_first = static_cast<int>(numbers[0]); });
  take(config.edge_last_auto, "edge-last", std::to_string(numbers[1]), [&] { config.edge_last = static_cast<int>(numbers[1]); });
  take(config.chunks_auto, "chunks", std::to_string(numbers[2]), [&] { config.chunks = static_cast<int>(numbers[2]); });
  take(config.schedule == "auto", "schedule", schedule, [&] { config.schedule = schedule; });
  take(config.server_split == "auto", "server-split", split, [&] { config.server_split = split; });
  take(config.fwd_codec == "auto", "fwd-codec", fwd, [&] { config.fwd_codec = fwd; });
  take(config.bwd_codec == "auto", "bwd-codec", bwd, [&] { config.bwd_codec = bwd; });
  config.edge_first_auto = config.edge_last_auto = config.chunks_auto = false;
  config.plan_chosen = chosen;
  config.plan_predicted_samples_per_second = static_cast<double>(numbers[3]) / 1000;
  if (world.rank() == 0)
    std::cout << "plan: " << chosen << " (predicted " << std::llround(config.plan_predicted_samples_per_second)
              << " samples/s; --plan lists the alternatives)\n";
}

// --plan: measure, search, print the fastest predicted plans (rank 0).
void print_plans(const RunConfig& config, const ControlPlane& world, const std::optional<DatasetSplits>& data) {
  const std::vector<int> chunk_counts{1, 2, 4, 8};
  const auto start = std::chrono::steady_clock::now();
  const CostTable costs = measure_costs(config, world, data, chunk_counts, split_plan_codecs(config.plan_codecs));
  PlanSpace space;
  space.chunks = chunk_counts;
  const auto plans = ranked_plans(config, world, costs, space);
  if (world.rank() != 0) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "plan: " << costs.blocks.size() << " blocks, " << costs.servers << " server rank(s), batch "
            << costs.batch_size << ", edge compute x" << costs.edge_compute_scale << ", link "
            << (costs.link.bytes_per_second > 0 ? std::to_string(std::llround(costs.link.bytes_per_second * 8 / 1e6)) + " Mbit/s"
                                                : std::string("unlimited"))
            << ", latency " << std::llround(costs.link.latency_seconds * 1e6) << " us; measured in "
            << std::llround(seconds) << " s\n"
            << plans.size() << " plan(s) meet --max-rel-error " << config.max_rel_error << "; the fastest predicted:\n"
            << format_plans(plans, static_cast<size_t>(config.plan_top));
}

void print_setup(const RunConfig& config, Trainer& trainer, const std::string& path,
                 const std::optional<CheckpointPosition>& resumed) {
  const int E = config.edge_ranks;
  std::cout << "model " << config.model << ": " << trainer.blocks().size() << " blocks, "
            << total_parameters(trainer.blocks()) << " parameters\n";
  if (E > 1) {
    std::cout << E << " edge clients (ranks 0-" << E - 1 << "), client mode " << config.client_mode << ", shard "
              << config.shard << "; shard sizes:";
    for (const auto& shard : trainer.shards()) std::cout << " " << shard.size(0);
    std::cout << "\nplan (stage c*S+s = client c's stage s):\n";
  }
  std::cout << trainer.plan().format(trainer.blocks()) << "schedule " << config.schedule << ", " << config.chunks
            << " chunks, batch " << config.batch_size << ", " << trainer.steps_per_epoch() << " steps/epoch, threads "
            << config.threads << ", transport " << config.transport << "; fwd codec " << config.fwd_codec
            << ", bwd codec " << config.bwd_codec;
  if (!config.link.empty()) {
    const auto links = parse_link_list(config.link, E);
    std::cout << "; link" << (E > 1 ? "s" : "");
    for (int c = 0; c < static_cast<int>(links.size()); ++c)
      std::cout << (c ? ";" : "") << (E > 1 ? " client " + std::to_string(c) + ": " : " ") << links[c].describe();
  }
  std::cout << "\n"
            << (resumed ? "resuming from epoch " + std::to_string(resumed->epoch + 1) + " step " +
                                  std::to_string(resumed->step) + ", appending to "
                            : "writing ")
            << path << std::endl;  // job scripts wait for this line
}

// "epochs = 2 vs epochs = 3": the first line where two resolved configurations differ.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream left(a), right(b);
  std::string x, y;
  while (true) {
    const bool more_left = static_cast<bool>(std::getline(left, x)), more_right = static_cast<bool>(std::getline(right, y));
    if (!more_left && !more_right) return "?";
    if (!more_left || !more_right || x != y) return "'" + x + "' vs '" + y + "'";
  }
}

// "failed: rank R: <one line>" (or "interrupted: ..."), whichever rank failed. Writing it may
// fail too (a full disk): the original error is the one to report.
void record_end(RunFile& file, const std::exception& error, int ranks) {
  const bool interrupted = dynamic_cast<const InterruptedError*>(&error) != nullptr;
  std::string reason = one_line(error);
  if (ranks > 1 && !interrupted && reason.rfind("rank ", 0) != 0) reason = "rank 0: " + reason;
  try {
    file.finish((interrupted ? "interrupted: " : "failed: ") + reason);
  } catch (const Error& e) {
    std::cerr << "splitpipe: warning: could not record the run's end in '" << file.path() << "': " << e.what()
              << std::endl;
  }
}

}  // namespace

void run(const RunConfig& given, ControlPlane& world) {
  RunConfig config = given;  // the planner fills its auto options
  install_interrupt_handlers();  // again, for callers other than main (tests)
  // Armed before the first collective: a rank that fails or hangs in any check below must not
  // leave the others waiting forever.
  world.set_timeout(config.comm_timeout);
  std::optional<std::string> problem;
  if (config.expect_ranks > 0 && config.expect_ranks != world.size())
    problem = "this run expects " + std::to_string(config.expect_ranks) + " ranks (--expect-ranks) but mpirun started " +
              std::to_string(world.size()) + "; use mpirun -np " + std::to_string(config.expect_ranks);
  const int fault_rank = config.fault_inject.empty() ? 0 : parse_fault_spec(config.fault_inject).rank;
  if (!problem && fault_rank >= world.size())
    problem = "--fault-inject: rank " + std::to_string(fault_rank) + " does not exist in a run of " +
              std::to_string(world.size()) + " rank(s)";
  if (!problem) {  // mpirun A : B may start ranks with different options; they would deadlock
    const auto configs = world.gather_strings(config.to_ini());
    for (size_t r = 1; r < configs.size() && !problem; ++r)
      if (configs[r] != configs[0])
        problem = "rank " + std::to_string(r) + " was started with other options than rank 0 (" +
                  first_difference(configs[0], configs[r]) + "); every rank must get the same options";
  }
  world.agree_on(problem, 2);
  // Before the data loads: an existing result is refused at once, not after minutes of setup.
  const bool writes_output = !config.dry_run && !config.print_schedule && !config.plan && !config.resume;
  if (world.rank() == 0 && writes_output && !config.output.empty() && !config.overwrite &&
      std::filesystem::exists(config.output))
    problem = "run file '" + config.output + "' already exists; pass --overwrite to replace it or choose another --output";
  const bool trains = !config.dry_run && !config.print_schedule && !config.plan;
  if (world.rank() == 0 && trains && !config.trace.empty() && !problem) {
    const auto folder = std::filesystem::path(config.trace).parent_path();
    if (!config.overwrite && std::filesystem::exists(config.trace))
      problem = "trace file '" + config.trace + "' already exists; pass --overwrite to replace it or choose another --trace";
    else if (!folder.empty() && !std::filesystem::is_directory(folder))
      problem = "--trace " + config.trace + ": folder '" + folder.string() + "' does not exist";
  }
  world.agree_on(problem);
  at::set_num_threads(config.threads);
  const bool root = world.rank() == 0;
  const int E = config.edge_ranks;

  // Loading and profiling is local work that may take long on one rank (a big dataset on a
  // slow file system): the others wait for it without tripping --comm-timeout, which is about
  // communication. A rank that dies meanwhile still ends the job through mpirun.
  world.set_timeout(config.comm_timeout > 0 ? std::max(config.comm_timeout, kSetupTimeoutSeconds) : 0);
  const auto data = load_on_clients(config, world);
  if (root) std::cout << "data: " << data->description << "\n";
  if (config.plan) {
    print_plans(config, world, data);
    return;
  }
  if (config.planned()) apply_plan(config, world, data);
  const auto block_seconds = block_seconds_for_split(config, world, data);
  world.set_timeout(config.comm_timeout);  // before the Trainer's transports take it over
  Trainer trainer(config, world, data ? &*data : nullptr, block_seconds);
  const PartitionPlan& plan = trainer.plan();
  std::optional<Tracer> tracer;
  if (!config.trace.empty() && trains) {
    std::vector<std::string> names;
    for (int r = 0; r < world.size(); ++r) names.push_back("rank " + std::to_string(r) + " (" + role_of(plan, r) + ")");
    tracer.emplace(config.trace, config.trace_steps, world, names);
    trainer.set_tracer(&*tracer);
  }

  if (config.dry_run || config.print_schedule) {
    if (root) {
      if (config.dry_run)
        std::cout << "resolved configuration:\n" << config.to_ini() << "\nmodel " << config.model << ":\n"
                  << format_block_table(trainer.blocks()) << "\n" << plan.format(trainer.blocks());
      if (config.print_schedule) {
        const int m = static_cast<int>(std::min<int64_t>(config.chunks, config.batch_size));
        const int client = trainer.strategy().mode() == "parallel" ? -1 : 0;
        std::cout << format_schedule(trainer.schedule(client, m, false)) << format_schedule(trainer.schedule(0, m, true));
      }
    }
    return;
  }

  std::optional<CheckpointPosition> resumed;
  if (config.resume) {
    resumed = load_checkpoint(config, trainer, world);
    if (!resumed && root)
      std::cout << "no checkpoint in '" << config.checkpoint_dir << "' yet: starting the run (--resume)\n";
  }
  prepare_checkpoint_dir(config, world, !resumed);
  std::string path;
  auto file = open_run_file(config, world, path, resumed);
  const auto counter_columns = rank_counter_columns();
  std::vector<std::vector<double>> totals(world.size(), std::vector<double>(counter_columns.size(), 0.0));
  const double simulated_bubble_fraction = simulated_bubble(config, trainer);
  const int boundaries = plan.pipeline_length() - 1;
  try {
    const auto hosts = world.gather_strings(hostname());
    // Checkpoints name the run file absolutely: a resume may start in another directory.
    const std::string run_file = root ? std::filesystem::absolute(path).string() : std::string();
    std::string run_id = file ? file->run_id() : std::string();
    world.broadcast(run_id);
    if (root)
      on_sigterm_while_waiting([&file](const std::string& waiting_for) {
        try {
          file->set_attribute("status", "failed: rank 0: SIGTERM while waiting for " + waiting_for +
                                            " (mpirun ends every rank this way when one dies; if this run was "
                                            "stopped on purpose, it was killed before its checkpoint)");
        } catch (const Error&) {  // the run goes on stopping; the status stays as it was
        }
      });
    if (root) {
      if (!resumed) {
        write_static_metadata(*file, config, trainer, world, hosts);
        // Every per-epoch table exists from the start, empty: a reader of a run stopped before
        // its first epoch finds 0 rows, not missing datasets.
        file->create_table("epochs", column_names(EpochRow{}.columns()));
        file->create_matrix_series("confusion", data->train.num_classes, data->train.num_classes);
        const int64_t counters = static_cast<int64_t>(counter_columns.size());
        for (int r = 0; r < world.size(); ++r)
          file->create_series("ranks/rank" + std::to_string(r) + "/counters", {counters}, counter_columns);
        const auto traffic_columns = boundary_traffic_columns();
        file->create_series("boundaries/traffic", {boundaries, static_cast<int64_t>(traffic_columns.size())},
                            traffic_columns);
        const std::vector<std::vector<double>> no_values(
            world.size(), std::vector<double>(ClientColumns::kOwn + world.size(), 0.0));
        const auto client_rows = ClientColumns::rows(no_values, E, 0);
        for (int c = 0; c < E; ++c) file->create_table("clients/" + std::to_string(c), column_names(client_rows[c]));
      }
      file->require_free_space();
      print_setup(config, trainer, path, resumed);
    }
    const auto run_start = Clock::now();
    const int first_epoch = resumed ? resumed->epoch : 0;
    for (int epoch = first_epoch; epoch < config.epochs; ++epoch) {
      trainer.executor().counters().reset();
      trainer.executor().reset_memory_peaks();
      trainer.edge_sync() = EdgeSyncStats{};
      auto last_print = Clock::now();
      const Trainer::Progress progress = [&](int64_t step, int64_t steps, const PassStats& so_far) {
        if (!root) return;
        const bool due = config.progress_every > 0
                             ? step % config.progress_every == 0
                             : std::chrono::duration<double>(Clock::now() - last_print).count() > 10.0;
        if (!due || step == steps) return;
        last_print = Clock::now();
        // The run's ETA from the steps so far (this session's: a resumed run counts from where
        // it resumed), so it is there from the first progress line on.
        const int64_t skipped = resumed ? resumed->step : 0;
        const int64_t done = (epoch - first_epoch) * steps + step - skipped;
        const int64_t total = (config.epochs - first_epoch) * steps - skipped;
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        std::cout << "  epoch " << epoch + 1 << " step " << step << "/" << steps << " (" << 100 * step / steps
                  << "%)  loss " << fixed(so_far.loss, 4) << "  acc " << fixed(100 * so_far.accuracy, 2) << "%  "
                  << fixed(so_far.samples / std::max(so_far.seconds, 1e-9), 0) << " samples/s  run ETA "
                  << (done > 0 ? fixed(elapsed / done * (total - done), 0) + " s" : std::string("?")) << std::endl;
      };
      const auto epoch_start = Clock::now();
      const int64_t first_step = resumed && epoch == resumed->epoch ? resumed->step : 0;
      std::optional<PassStats> before;  // this rank's part of the epoch before the checkpoint
      if (first_step > 0) {
        // The counters too: the epoch's traffic and times are the whole epoch's, as if uninterrupted.
        if (!resumed->counters.empty()) trainer.executor().counters().add(resumed->counters);
        before.emplace();
        before->loss_sum = resumed->loss_sum;
        before->correct = resumed->correct;
        before->samples = resumed->samples;
        before->seconds = resumed->seconds;
        before->active_seconds = resumed->active_seconds;
        before->skipped_steps = resumed->skipped_steps;
        before->confusion = resumed->confusion;
      }
      const PassStats train = trainer.train(epoch, first_step, -1, progress, before ? &*before : nullptr);
      if (train.interrupted) {
        CheckpointPosition position{epoch,
                                    train.next_step,
                                    epoch,
                                    run_file,
                                    run_id,
                                    train.loss_sum,
                                    train.correct,
                                    train.seconds,
                                    train.active_seconds,
                                    train.samples,
                                    train.skipped_steps,
                                    train.confusion,
                                    trainer.executor().counters().values()};
        const std::string where = config.checkpoint_dir.empty()
                                      ? std::string("no --checkpoint-dir, nothing saved")
                                      : "checkpoint " + save_checkpoint(config, position, trainer, world);
        throw InterruptedError("stopped by a signal (SIGUSR1, SIGTERM or Ctrl-C) at epoch " + std::to_string(epoch + 1) + " step " +
                               std::to_string(train.next_step) + "; " + where +
                               (config.checkpoint_dir.empty() ? "" : "; continue with --resume"));
      }
      const RankCounters train_counters = trainer.executor().counters();  // training alone, before the test pass
      const auto eval_start = Clock::now();
      const PassStats test = trainer.evaluate();
      const double eval_seconds = std::chrono::duration<double>(Clock::now() - eval_start).count();
      // A resumed epoch counts the training seconds before its checkpoint too.
      const double epoch_seconds =
          std::chrono::duration<double>(Clock::now() - epoch_start).count() + (before ? before->seconds : 0.0);
      const RankEpoch measured =
          RankEpoch::measure(train_counters, trainer.executor().counters(), epoch_seconds, eval_seconds, peak_rss_bytes(),
                             trainer.executor().memory_peaks());
      std::vector<RankEpoch> every_rank;
      for (const auto& values : world.gather(measured.flatten())) every_rank.push_back(measured.unflatten(values));
      const auto per_client =
          world.gather(ClientColumns::of_rank(train, trainer.edge_sync(), trainer.executor().counters()));
      if (root) {
        const auto client_rows = ClientColumns::rows(per_client, E, epoch);
        const EpochTraffic traffic = EpochTraffic::combine(every_rank);
        double samples = 0, loss_sum = 0, correct = 0, sync_seconds = 0, sync_bytes = 0;
        for (int c = 0; c < E; ++c) {  // the clients' own sums, not their rounded means
          samples += per_client[c][0];
          loss_sum += per_client[c][1];
          correct += per_client[c][2];
          sync_seconds += per_client[c][4];
          sync_bytes += per_client[c][5];
        }
        const double train_loss = samples > 0 ? loss_sum / samples : 0, train_acc = samples > 0 ? correct / samples : 0;
        const double samples_per_second = samples / std::max(train.seconds, 1e-9);
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        // An epoch's rows go into every table or into none (a full disk mid-way), so the tables
        // always agree; the first complete epoch publishes a new file under its name.
        file->require_free_space();
        try {
          file->append_row("epochs", EpochRow{epoch + 1.0,
                                              trainer.lr_schedule().at(epoch, trainer.steps_per_epoch() - 1),
                                              train_loss,
                                              train_acc,
                                              test.loss,
                                              test.accuracy,
                                              epoch_seconds,
                                              train.seconds,
                                              static_cast<double>(trainer.steps_per_epoch()),
                                              samples,
                                              samples_per_second,
                                              static_cast<double>(train.skipped_steps),
                                              sync_seconds,
                                              sync_bytes,
                                              traffic.train_wire_bytes,
                                              traffic.train_raw_bytes,
                                              traffic.train_label_bytes,
                                              traffic.eval_wire_bytes,
                                              traffic.act_compression,
                                              traffic.grad_compression,
                                              traffic.bubble_fraction,
                                              simulated_bubble_fraction,
                                              peak_rss_bytes()}
                                           .columns());
          file->append_matrix("confusion", test.confusion);
          for (int r = 0; r < world.size(); ++r) {
            file->append_series("ranks/rank" + std::to_string(r) + "/counters", traffic.rank_counters[r]);
            for (size_t i = 0; i < counter_columns.size(); ++i) totals[r][i] += traffic.rank_counters[r][i];
          }
          file->append_series("boundaries/traffic", traffic.boundary_traffic);
          for (int c = 0; c < E; ++c) file->append_row("clients/" + std::to_string(c), client_rows[c]);
        } catch (const Error&) {
          try {
            keep_rows(*file, epoch, world.size(), E);
          } catch (const Error&) {  // the original error says what went wrong
          }
          throw;
        }
        file->commit();
        const double eta = elapsed / (epoch + 1 - first_epoch) * (config.epochs - epoch - 1);
        std::cout << "epoch " << epoch + 1 << "/" << config.epochs << "  train loss " << fixed(train_loss, 4) << " acc "
                  << fixed(100 * train_acc, 2) << "%  test loss " << fixed(test.loss, 4) << " acc "
                  << fixed(100 * test.accuracy, 2) << "%  " << fixed(samples_per_second, 0) << " samples/s  "
                  << fixed(epoch_seconds, 1) << " s  elapsed " << fixed(elapsed, 1) << " s  ETA " << fixed(eta, 1) << " s"
                  << (E > 1 ? std::string("  ") + (config.client_mode == "parallel" ? "edge averaging " : "hand-offs ") +
                                  fixed(sync_bytes / 1e6, 2) + " MB in " + fixed(sync_seconds, 3) + " s"
                            : std::string())
                  << std::endl;
      }
      const bool last = epoch + 1 == config.epochs;
      if (!config.checkpoint_dir.empty() && ((epoch + 1) % config.checkpoint_every == 0 || last)) {
        CheckpointPosition next_epoch;
        next_epoch.epoch = epoch + 1;
        next_epoch.rows = epoch + 1;
        next_epoch.run_file = run_file;
        next_epoch.run_id = run_id;
        save_checkpoint(config, next_epoch, trainer, world);
      }
    }
    // Equal digests on every rank mean bit-identical weights (resume tests compare them).
    const auto digests = world.gather_strings(trainer.weights_digest());
    if (root) {
      std::string digest_list;
      for (size_t r = 0; r < digests.size(); ++r) digest_list += (r ? "," : "") + digests[r];
      file->set_attribute("weights_digest", digest_list);
      print_time_table(plan, totals);
      file->finish("complete");
      std::cout << "wrote " << path << std::endl;
    }
  } catch (const std::exception& e) {
    on_sigterm_while_waiting(nullptr);
    if (file) record_end(*file, e, world.size());
    throw;
  }
  on_sigterm_while_waiting(nullptr);
}

}  // namespace splitpipe
