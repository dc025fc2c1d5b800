// The step runner: everything one step needs on this rank besides the stage state: the
// data-plane transport (and the emulated links of --link), the executor with its codecs, and
// the schedules, built once per shape and kept.
#pragma once
#include <memory>
#include <vector>

#include "splitpipe/config.hpp"
#include "splitpipe/control_plane.hpp"
#include "splitpipe/partition.hpp"
#include "splitpipe/pipeline.hpp"

namespace splitpipe {

class StepRunner {
 public:
  // Collective over `control`: makes the transport (--transport; refused on every rank where a
  // backend cannot run) and the links, then the executor over them.
  StepRunner(const RunConfig& config, const ControlPlane& control, const PartitionPlan& plan,
             const std::vector<Block>& blocks, const PipelineOptions& options);
  ~StepRunner();

  // Micro-batches of a batch of `rows` samples: --chunks, or fewer for a small batch.
  int microbatches(int64_t rows) const;
  // The schedule of one step: of client `client`'s pipeline, or with -1 of every client's.
  const Schedule& schedule(int client, int microbatches, bool forward_only);
  // Runs one step of `client`'s pipeline (-1: every client's) on batches of `rows` samples.
  // `batch` (already cut into microbatches(rows)) is needed where the pipeline starts.
  StepResult run(int client, int64_t rows, const EdgeBatch* batch, bool train);
  // Whether this rank has anything to do in that step (an idle client in another's turn does not).
  bool takes_part(int client, int64_t rows, bool train);

  PipelineExecutor& executor();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitpipe
