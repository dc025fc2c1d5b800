// Predicts many fixed run configurations at once, for tools/sweep --top: the planner's
// measurements (block timings on each rank's hardware, codecs on real activations, the link)
// are taken once per distinct setup and every configuration's own plan is simulated on them.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "splitpipe/control_plane.hpp"

namespace splitpipe {

// Collective over the MPI world, which plays the ranks every file would run on (rank 0 the
// edge, the others servers; one process alone measures both on its own hardware and predicts
// for 2 ranks, as --plan does). Files whose options differ only in the plan (edge-first,
// edge-last, server-split, schedule, chunks, codecs) or in what does not change a step's cost
// (output, epochs, ...) share one measurement. Rank 0 prints, in file order,
// "predicted FILE SAMPLES_PER_SECOND WIRE_BYTES_PER_SAMPLE BUBBLE_FRACTION" or
// "error FILE: <one line>" and returns how many failed (0 on the other ranks).
int predict_configs(const std::vector<std::string>& files, const ControlPlane& world, std::ostream& out);

}  // namespace splitpipe
