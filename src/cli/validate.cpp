// Range and name checks that Boost's typed parsing cannot do. Every message names the option.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "splitpipe/codec.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/fault.hpp"
#include "splitpipe/link.hpp"
#include "splitpipe/schedule.hpp"
#include "splitpipe/transports.hpp"
#include "splitpipe/model.hpp"

#ifndef SPLITPIPE_VERSION
#define SPLITPIPE_VERSION "0.0.0"
#endif
#ifndef SPLITPIPE_GIT_DESCRIBE
#define SPLITPIPE_GIT_DESCRIBE "unknown"
#endif

namespace splitpipe {
namespace {

std::string shortest(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

void require(bool ok, const std::string& option, const std::string& what) {
  if (!ok) throw UsageError("--" + option + ": " + what);
}

void require_one_of(const std::string& value, const std::string& option,
                    const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw UsageError("--" + option + ": unknown value '" + value + "' (choose one of: " + list + ")");
}

}  // namespace

void validate(const RunConfig& c) {
  require(c.threads >= 1 && c.threads <= 1024, "threads", "must be between 1 and 1024, got " + std::to_string(c.threads));
  require(c.expect_ranks >= 0, "expect-ranks", "must be >= 0");
  require(c.progress_every >= 0, "progress-every", "must be >= 0");
  require(c.prefetch >= 0 && c.prefetch <= 64, "prefetch", "must be between 0 and 64");
  require(c.plan_top >= 1, "plan-top", "must be >= 1");
  require(c.max_rel_error > 0, "max-rel-error", "must be > 0");
  parse_byte_size(c.plan_max_memory, "plan-max-memory");
  for (const auto& spec : split_plan_codecs(c.plan_codecs)) {
    try {
      make_codec(spec);
    } catch (const UsageError& e) {
      throw UsageError(std::string("--plan-codecs: ") + e.what());
    }
  }
  require(c.trace_steps >= 1 && c.trace_steps <= 10000, "trace-steps", "must be between 1 and 10000");
  // A scripted model (torchscript:FILE) is checked when it is loaded, where the file is read.
  if (c.model.rfind("torchscript:", 0) != 0) require_one_of(c.model, "model", model_names());
  require_one_of(c.data.dataset, "dataset", dataset_names());
  require(c.data.max_train_samples >= 0, "max-train-samples", "must be >= 0 (0 means all)");
  require(c.data.max_test_samples >= 0, "max-test-samples", "must be >= 0 (0 means all)");
  require(c.data.synthetic_classes >= 2, "synthetic-classes", "must be >= 2");
  require(c.data.synthetic_train >= 1, "synthetic-train", "must be >= 1");
  require(c.data.synthetic_test >= 1, "synthetic-test", "must be >= 1");
  require(c.data.seq_len >= 1 && c.data.seq_len <= 65536, "seq-len", "must be between 1 and 65536");
  require(c.data.image_size >= 0 && c.data.image_size <= 8192, "image-size", "must be between 0 (keep) and 8192");
  require(c.data.image_channels == 1 || c.data.image_channels == 3, "image-channels", "must be 1 (grayscale) or 3 (RGB)");
  require(c.transformer.layers >= 1 && c.transformer.layers <= 1024, "transformer-layers", "must be between 1 and 1024");
  require(c.transformer.width >= 1 && c.transformer.width <= 65536, "transformer-width", "must be between 1 and 65536");
  require(c.transformer.heads >= 1 && c.transformer.width % c.transformer.heads == 0, "transformer-heads",
          "must divide --transformer-width " + std::to_string(c.transformer.width));
  require(c.transformer.patch >= 1 && c.transformer.patch <= 4096, "vit-patch", "must be between 1 and 4096");
  require(c.epochs >= 1, "epochs", "must be >= 1, got " + std::to_string(c.epochs));
  require(c.batch_size >= 1, "batch-size", "must be >= 1, got " + std::to_string(c.batch_size));
  // The optimizer holds these as float; far smaller bounds than float's range still only
  // produce NaN, so say so up front.
  require(std::isfinite(c.lr) && c.lr > 0 && c.lr <= 1e6, "lr", "must be a number in (0, 1e6]");
  require(c.momentum >= 0 && c.momentum < 1, "momentum", "must be in [0, 1)");
  require(std::isfinite(c.weight_decay) && c.weight_decay >= 0 && c.weight_decay <= 1e6, "weight-decay",
          "must be a number in [0, 1e6]");
  require(!c.nesterov || c.momentum > 0, "nesterov", "needs --momentum > 0");
  require_one_of(c.lr_schedule, "lr-schedule", {"constant", "step", "cosine"});
  require(c.warmup_epochs >= 0 && c.warmup_epochs < c.epochs, "warmup-epochs",
          "must be in [0, epochs), got " + std::to_string(c.warmup_epochs));
  require(c.lr_step_epochs >= 1, "lr-step-epochs", "must be >= 1");
  require(c.lr_gamma > 0 && c.lr_gamma <= 1, "lr-gamma", "must be in (0, 1]");
  require(c.edge_first_auto || c.edge_first >= 1, "edge-first", "must be >= 1 (the edge keeps at least its first block)");
  require(c.edge_last_auto || c.edge_last >= 0, "edge-last", "must be >= 0 (0: the last server rank holds the loss)");
  if (c.schedule != "auto") require_one_of(c.schedule, "schedule", schedule_names());
  require(c.chunks_auto || (c.chunks >= 1 && c.chunks <= 256), "chunks",
          "must be between 1 and 256, got " + std::to_string(c.chunks));
  require(c.chunks_auto || c.chunks <= c.batch_size, "chunks",
          std::to_string(c.chunks) + " micro-batches do not fit in --batch-size " + std::to_string(c.batch_size) +
              " (each micro-batch needs at least one sample)");
  require_one_of(c.memory_format, "memory-format", {"auto", "contiguous", "channels-last"});
  require(c.edge_compute_scale >= 1.0 && c.edge_compute_scale <= 1000.0, "edge-compute-scale",
          "must be between 1 (no emulation) and 1000 (an edge that many times slower), got " +
              shortest(c.edge_compute_scale));
  require_one_of(c.edge_device, "edge-device", {"cpu", "cuda"});
  require_one_of(c.server_device, "server-device", {"cpu", "cuda"});
  if (c.server_split != "even" && c.server_split != "params" && c.server_split != "time" && c.server_split != "auto")
    parse_int_list(c.server_split, "server-split");
  for (const auto& [option, spec] : {std::pair{"fwd-codec", c.fwd_codec}, std::pair{"bwd-codec", c.bwd_codec}}) {
    if (spec == "auto") continue;
    try {
      make_codec(spec);
    } catch (const UsageError& e) {
      throw UsageError(std::string("--") + option + ": " + e.what());
    }
  }
  require(c.edge_ranks >= 1, "edge-ranks",
          "must be >= 1 (the number of edge clients), got " + std::to_string(c.edge_ranks));
  parse_shard_spec(c.shard);
  require_one_of(c.client_mode, "client-mode", {"sequential", "parallel"});
  require(c.sync_every >= 1, "sync-every", "must be >= 1, got " + std::to_string(c.sync_every));
  require(c.checkpoint_every >= 1, "checkpoint-every", "must be >= 1, got " + std::to_string(c.checkpoint_every));
  require(!c.resume || !c.checkpoint_dir.empty(), "resume", "needs --checkpoint-dir (where to find the checkpoint)");
  require(c.comm_timeout >= 0 && c.comm_timeout <= 1e7, "comm-timeout",
          "must be between 0 and 1e7 seconds (0: wait forever)");
  require(c.keep_checkpoints >= 1, "keep-checkpoints", "must be >= 1, got " + std::to_string(c.keep_checkpoints));
  require_one_of(c.on_nonfinite, "on-nonfinite", {"stop", "skip-batch"});
  if (!c.fault_inject.empty()) parse_fault_spec(c.fault_inject);
  if (!c.link.empty()) parse_link_list(c.link, c.edge_ranks);
  require_one_of(c.transport, "transport", transport_names());
  require(!c.plan || c.edge_ranks == 1, "plan",
          "plans one edge client with its servers; run it without --edge-ranks (the clients of a multi-client run "
          "share the plan of one)");
  if (c.planned()) {
    require(!c.resume, "resume",
            "cannot be combined with auto options: the checkpoint holds the plan the first run chose, so pass its "
            "values (printed in its 'plan:' line and stored in its run file's /options) instead of auto");
    require(c.edge_ranks == 1, "edge-ranks",
            "the planner (auto options) plans one edge client; with several clients give the values explicitly "
            "(--plan on a one-client run suggests them)");
  }
}

}  // namespace splitpipe
