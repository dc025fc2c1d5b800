// The planner's measurements (--plan): what the blocks, the codecs and the link cost on the
// machines of this run. Every rank times every block on its own hardware (the edge is rank 0,
// a server rank 1); rank 0 measures the codecs on the boundaries' real activations and
// gradients of the first training batch, and the link comes from --link or a ping-pong.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "splitpipe/config.hpp"
#include "splitpipe/control_plane.hpp"
#include "splitpipe/data.hpp"
#include "splitpipe/planner.hpp"

namespace splitpipe {

// Collective. `data` is rank 0's (the others get its first batch through `world`). Compute is
// measured at the micro-batch sizes of `chunk_counts`, each after a warm-up pass, on the
// planner's own copy of the model in training mode and the run's memory format (the caller
// reseeds before building the run's model: dropout here draws from the global generator).
// The table is complete
// on rank 0, which plans; the other ranks' copy holds their own block timings only.
CostTable measure_costs(const RunConfig& config, const ControlPlane& world, const std::optional<DatasetSplits>& data,
                        const std::vector<int>& chunk_counts, const std::vector<std::string>& codec_specs);

}  // namespace splitpipe
