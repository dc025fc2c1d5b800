// Checks many run configurations in one process, for tools/sweep: a 100-point sweep is
// checked in seconds instead of one mpirun dry-run per point.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace splitpipe {

// For each INI file, as `splitpipe --config FILE` would run it on `ranks` MPI ranks: options and
// values, data (each distinct data source loaded once), the model, the partition, the client
// shards and the schedule. Prints "ok FILE" or "error FILE: <one line>" per file and returns
// how many failed. What only the ranks themselves can know (a GPU, a writable --output on their
// node) is still checked when the run starts.
int check_configs(const std::vector<std::string>& files, int ranks, std::ostream& out);

}  // namespace splitpipe
