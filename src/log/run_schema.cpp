#include "splitpipe/run_schema.hpp"

#include <cctype>
#include <sstream>

namespace splitpipe {
namespace {

constexpr const char* kEpochF64 = "float64 [epoch]";

std::vector<SchemaEntry> build_schema() {
  std::vector<SchemaEntry> s;
  auto attribute = [&](const std::string& name, const std::string& type, const std::string& units,
                       const std::string& text) { s.push_back({"/@" + name, "attribute", type, units, text}); };
  attribute("format_version", "int64", "count", "2 for this schema; readers refuse versions they do not know");
  attribute("status", "string", "text",
            "running, then complete, failed: rank R: <reason> (whichever rank failed) or interrupted: <where>");
  attribute("run_id", "string", "text", "host, pid and time of the run that created the file; a checkpoint only "
                                        "resumes into the file with its run id");
  attribute("start_time", "string", "text", "ISO 8601 local time the file was created");
  attribute("end_time", "string", "text", "ISO 8601 local time the status was last set");
  attribute("splitpipe_version", "string", "text", "project version and git describe of the binary");
  attribute("libtorch_version", "string", "text", "LibTorch the binary was built against");
  attribute("hostnames", "string", "text", "host of each rank, comma-separated, rank order");
  attribute("world_size", "int64", "count", "MPI ranks of the run");
  attribute("resolved_config", "string", "text", "every option as INI text (command line, then --config, then defaults)");
  attribute("config", "string", "text", "the --config file given, empty if none");
  attribute("plan", "string", "text",
            "what the planner chose for the auto options, as options (\"--edge-first 4 --chunks 8\"); empty without auto");
  attribute("predicted_samples_per_second", "float64", "sample/s",
            "the planner's prediction for the chosen plan, beside the measured /epochs samples_per_second; 0 "
            "without auto options");
  attribute("weights_digest", "string", "text",
            "FNV-1a digest of each rank's weights at the end, comma-separated; equal digests mean equal weights");
  s.push_back({"/options/@<option>", "attribute", "int64, uint64, float64 or string", "per option",
               "every option by its command-line name, typed: int64 (integers; flags as 0/1), uint64 (seed), float64, string"});

  auto column = [&](const std::string& table, const std::string& name, const std::string& type,
                    const std::string& units, const std::string& text) {
    s.push_back({table + "/" + name, "dataset", type, units, text});
  };
  const std::string epochs = "/epochs";
  column(epochs, "epoch", kEpochF64, "index", "epoch number, from 1");
  column(epochs, "lr", kEpochF64, "1", "learning rate at the epoch's last step");
  column(epochs, "train_loss", kEpochF64, "1", "mean training loss over every client's batches");
  column(epochs, "train_acc", kEpochF64, "1", "training accuracy (fraction) over every client's batches");
  column(epochs, "test_loss", kEpochF64, "1", "mean loss on the test split");
  column(epochs, "test_acc", kEpochF64, "1", "accuracy (fraction) on the test split");
  column(epochs, "epoch_seconds", kEpochF64, "s", "wall time of the epoch: training, test pass, logging");
  column(epochs, "train_seconds", kEpochF64, "s", "wall time of the training steps");
  column(epochs, "steps", kEpochF64, "count", "training steps (mini-batches) per epoch");
  column(epochs, "train_samples", kEpochF64, "count", "training samples seen in the epoch, all clients");
  column(epochs, "samples_per_second", kEpochF64, "samples/s", "train_samples / train_seconds");
  column(epochs, "skipped_steps", kEpochF64, "count", "steps skipped for a non-finite loss (--on-nonfinite skip-batch)");
  column(epochs, "edge_sync_seconds", kEpochF64, "s", "time spent handing edge weights on or averaging them (clients)");
  column(epochs, "edge_sync_bytes", kEpochF64, "B", "edge weights handed on or averaged (clients)");
  column(epochs, "train_wire_bytes", kEpochF64, "B",
         "bytes on the wire across every pipeline boundary in training, activations and gradients, after "
         "compression, plus train_label_bytes");
  column(epochs, "train_raw_bytes", kEpochF64, "B", "the same tensors uncompressed (float32)");
  column(epochs, "train_label_bytes", kEpochF64, "B",
         "--edge-last 0: labels sent to the loss stage on a server and the loss results sent back, in training "
         "(0 with the loss on the edge)");
  column(epochs, "eval_wire_bytes", kEpochF64, "B", "bytes on the wire in the test pass (not in train_wire_bytes)");
  column(epochs, "act_compression", kEpochF64, "1",
         "wire / raw bytes of training activations (<= 1: smaller); NaN without boundaries");
  column(epochs, "grad_compression", kEpochF64, "1", "wire / raw bytes of training gradients; NaN without boundaries");
  column(epochs, "bubble_fraction", kEpochF64, "1",
         "measured pipeline bubble: 1 - sum of busy seconds / sum of step seconds over all ranks (training)");
  column(epochs, "simulated_bubble_fraction", kEpochF64, "1",
         "the bubble of this schedule simulated with unit forward and double backward costs");
  column(epochs, "peak_rss_bytes", kEpochF64, "B", "peak resident memory of rank 0 so far");

  s.push_back({"/confusion", "dataset", "int64 [epoch, C, C]", "count",
               "test-split confusion matrix per epoch; row = true class, column = predicted"});
  const std::string model = "/model";
  column(model, "index", "float64 [block]", "index", "block number in the model");
  column(model, "name", "string [block]", "text", "block name");
  column(model, "output_shape", "string [block]", "text", "output shape of the block for one sample, e.g. 6x14x14");
  column(model, "parameters", "float64 [block]", "count", "trainable parameters of the block");

  const std::string ranks = "/ranks";
  column(ranks, "stage", "float64 [stage]", "index", "global stage number (client c's stage s is c*S+s)");
  column(ranks, "rank", "float64 [stage]", "index", "MPI rank that runs the stage");
  column(ranks, "role", "string [stage]", "text", "edge-first, server or edge-last");
  column(ranks, "first_block", "float64 [stage]", "index", "first block of the stage");
  column(ranks, "end_block", "float64 [stage]", "index", "one past the stage's last block");
  column(ranks, "parameters", "float64 [stage]", "count", "trainable parameters of the stage");
  column(ranks, "estimated_seconds", "float64 [stage]", "s",
         "profiled seconds per micro-batch of the stage (--server-split time), else 0");

  const std::string counters = "/ranks/rank<r>/counters";
  s.push_back({counters, "dataset", "float64 [epoch, counter]", "see column_units",
               "rank r's training counters per epoch; the columns are named in the attribute columns"});
  auto counter = [&](const std::string& table, const std::string& name, const std::string& units,
                     const std::string& text) { s.push_back({table + ":" + name, "column", "float64", units, text}); };
  counter(counters, "forward_seconds", "s", "forward passes of this rank's stages");
  counter(counters, "backward_seconds", "s", "backward passes of this rank's stages");
  counter(counters, "encode_seconds", "s", "compressing boundary tensors before sending");
  counter(counters, "decode_seconds", "s", "decompressing received boundary tensors");
  counter(counters, "comm_wait_seconds", "s", "blocked on a receive or on a send's completion");
  counter(counters, "link_wait_seconds", "s", "part of comm_wait_seconds spent held back by the emulated link (--link)");
  counter(counters, "step_seconds", "s", "wall time inside the training steps");
  counter(counters, "data_seconds", "s",
          "training steps waiting for their batch (index, augment, cut; prefetched with --prefetch > 0)");
  counter(counters, "emulated_compute_seconds", "s",
          "part of forward + backward seconds spent emulating a slower edge (--edge-compute-scale; 0 without it)");
  counter(counters, "eval_seconds", "s", "wall time of the test pass");
  counter(counters, "idle_seconds", "s", "epoch_seconds minus busy, comm-wait, data and test-pass seconds");
  counter(counters, "wait_fraction", "1", "comm_wait_seconds / step_seconds");
  counter(counters, "busy_fraction", "1", "(forward + backward + encode + decode seconds) / step_seconds");
  counter(counters, "epoch_seconds", "s", "the epoch's wall time on this rank");
  counter(counters, "peak_rss_bytes", "B", "peak resident memory of this rank so far");
  counter(counters, "peak_step_bytes", "B",
          "most host tensor memory one training step of the epoch held above what was alive before it: activations "
          "kept for backward, gradients, messages (exact, from LibTorch's CPU allocator; GPU memory not counted)");
  counter(counters, "microbatch_activation_bytes", "B",
          "most host tensor memory one stage's forward of one micro-batch left allocated in training: the "
          "activations kept for its backward and its output (--recompute: the output only)");
  counter(counters, "sent_bytes", "B",
          "pipeline bytes this rank sent in training (wire, after compression; label_bytes included)");
  counter(counters, "received_bytes", "B", "pipeline bytes this rank received in training (labels included)");
  counter(counters, "label_bytes", "B",
          "--edge-last 0: labels this edge sent to the loss stage, or results the loss stage sent back, in training");
  counter(counters, "eval_label_bytes", "B", "the same in the test pass"); 

  const std::string boundaries = "/boundaries";
  column(boundaries, "index", "float64 [boundary]", "index",
         "boundary b joins pipeline stage b and b+1; every client's pipeline has the same cuts");
  column(boundaries, "from_stage", "float64 [boundary]", "index", "pipeline stage that sends activations across it");
  column(boundaries, "to_stage", "float64 [boundary]", "index", "pipeline stage that receives them");
  column(boundaries, "from_block", "float64 [boundary]", "index", "last block before the cut");
  column(boundaries, "to_block", "float64 [boundary]", "index", "first block after the cut");
  column(boundaries, "activation_shape", "string [boundary]", "text", "activation crossing it, for one sample");
  column(boundaries, "raw_bytes_per_sample", "float64 [boundary]", "B", "that activation as float32, one sample");
  const std::string traffic = "/boundaries/traffic";
  s.push_back({traffic, "dataset", "float64 [epoch, boundary, counter]", "see column_units",
               "traffic per epoch and boundary, all clients together; the columns are named in the attribute columns"});
  for (const std::string phase : {"train", "eval"})
    for (const std::string direction : {"act", "grad"}) {
      if (phase == "eval" && direction == "grad") continue;  // a test pass sends no gradients
      const std::string what = (direction == "act" ? "activations" : "gradients") +
                               std::string(phase == "train" ? " in training" : " in the test pass");
      const std::string prefix = phase + "_" + direction + "_";
      counter(traffic, prefix + "wire_bytes", "B", what + ", bytes sent after compression (headers included)");
      counter(traffic, prefix + "raw_bytes", "B", what + ", the same tensors as float32");
      counter(traffic, prefix + "messages", "count", what + ", messages sent");
    }
  for (const std::string direction : {"act", "grad"}) {
    const std::string what = direction == "act" ? "activations" : "gradients";
    counter(traffic, direction + "_encode_seconds", "s", "compressing " + what + " in training (sender)");
    counter(traffic, direction + "_decode_seconds", "s", "decompressing " + what + " in training (receiver)");
    counter(traffic, direction + "_link_wait_seconds", "s", what + " held back by the emulated link (receiver)");
    counter(traffic, direction + "_rel_error", "1", "mean ‖x − decoded‖ / ‖x‖ of sampled " + what + " messages");
  }

  const std::string clients = "/clients/<c>";
  column(clients, "epoch", kEpochF64, "index", "epoch number, from 1");
  column(clients, "samples", kEpochF64, "count", "training samples of client c's batches");
  column(clients, "loss", kEpochF64, "1", "mean training loss of client c's batches");
  column(clients, "accuracy", kEpochF64, "1", "training accuracy of client c's batches");
  column(clients, "train_seconds", kEpochF64, "s", "seconds of the steps client c took part in");
  column(clients, "edge_sync_seconds", kEpochF64, "s", "handing its edge weights on (sequential) or averaging (parallel)");
  column(clients, "edge_sync_bytes", kEpochF64, "B", "edge weights it handed on or averaged");
  column(clients, "sent_bytes", kEpochF64, "B", "pipeline bytes it sent to the servers (training and test pass)");
  column(clients, "received_bytes", kEpochF64, "B", "pipeline bytes it received from the servers");
  column(clients, "link_wait_seconds", kEpochF64, "s", "seconds its messages were held back by its emulated link");

  const std::string links = "/links";
  column(links, "client", "float64 [client]", "index", "edge client of the link; 0 rows without --link");
  column(links, "bits_per_second", "float64 [client]", "bit/s", "emulated bandwidth (payload bits)");
  column(links, "latency_seconds", "float64 [client]", "s", "emulated one-way latency");
  column(links, "shape_up", "float64 [client]", "1", "1 if client -> server traffic is shaped");
  column(links, "shape_down", "float64 [client]", "1", "1 if server -> client traffic is shaped");

  const std::string schema = "/schema";
  column(schema, "path", "string [entry]", "text", "this table: path pattern of each entry");
  column(schema, "kind", "string [entry]", "text", "attribute, dataset or column");
  column(schema, "type", "string [entry]", "text", "HDF5 type and shape");
  column(schema, "units", "string [entry]", "text", "unit of the values");
  column(schema, "description", "string [entry]", "text", "what the values are");
  return s;
}

// "<r>" and "<c>" match digits, "<option>" any name without '/'.
bool matches(const std::string& pattern, const std::string& path) {
  size_t p = 0, q = 0;
  while (p < pattern.size()) {
    if (pattern[p] == '<') {
      const size_t close = pattern.find('>', p);
      const bool digits = pattern.compare(p, close - p + 1, "<option>") != 0;
      const size_t start = q;
      while (q < path.size() && path[q] != '/' && path[q] != ':' &&
             (!digits || std::isdigit(static_cast<unsigned char>(path[q]))))
        ++q;
      if (q == start) return false;
      p = close + 1;
    } else {
      if (q >= path.size() || path[q] != pattern[p]) return false;
      ++p;
      ++q;
    }
  }
  return q == path.size();
}

}  // namespace

const std::vector<SchemaEntry>& run_schema() {
  static const std::vector<SchemaEntry> schema = build_schema();
  return schema;
}

const SchemaEntry* find_schema_entry(const std::string& path) {
  const std::string absolute = path.empty() || path[0] != '/' ? "/" + path : path;
  for (const auto& entry : run_schema())
    if (matches(entry.path, absolute)) return &entry;
  return nullptr;
}

std::vector<std::string> schema_columns(const std::string& table_pattern) {
  std::vector<std::string> names;
  const std::string prefix = table_pattern + ":";
  for (const auto& entry : run_schema())
    if (entry.path.rfind(prefix, 0) == 0) names.push_back(entry.path.substr(prefix.size()));
  return names;
}

std::string schema_markdown() {
  std::ostringstream out;
  out << "| path | kind | type | units | description |\n|---|---|---|---|---|\n";
  for (const auto& e : run_schema())
    out << "| `" << e.path << "` | " << e.kind << " | " << e.type << " | " << e.units << " | " << e.description
        << " |\n";
  return out.str();
}

}  // namespace splitpipe
