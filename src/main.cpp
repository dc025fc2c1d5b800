// splitpipe: one binary for the single-process reference run and for every pipeline rank.
// Errors are caught here once and turned into one message and an exit code.

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "splitpipe/check_configs.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/interrupt.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/predict_configs.hpp"
#include "splitpipe/run.hpp"
#include "splitpipe/run_schema.hpp"
#include "splitpipe/step_memory.hpp"

namespace {

// How long a failing rank other than 0 waits for rank 0 to record its failure and end the job.
constexpr int kSecondsForRank0ToRecord = 3;

}  // namespace

int main(int argc, char** argv) {
  splitpipe::step_memory::keep_freed_memory_for_reuse();
  // Before anything slow: a SIGUSR1 from the job script while MPI starts must not kill the rank.
  splitpipe::install_interrupt_handlers();
  splitpipe::MpiSession mpi(&argc, &argv);
  splitpipe::MpiControlPlane world;
  const bool root = world.rank() == 0;
  const std::string rank_prefix = world.size() > 1 ? "rank " + std::to_string(world.rank()) + ": " : "";
  // Rank 0 owns the run file: a failure another rank announces interrupts its waits, so it can
  // record "failed: rank R: ..." before the job ends.
  if (root) world.watch_failure_notices();
  // A failure on one rank alone cannot end in a normal exit: the others would wait for it.
  // When several ranks notice one failure (a hung peer they all wait for), the first reports.
  // A reporting rank other than 0 gives rank 0 a moment to record the failure (rank 0 then ends
  // the job itself) before it aborts.
  auto abort_job = [&](const std::string& message, int code) {
    const bool reports = world.announce_failure(message);
    if (reports) std::cerr << "splitpipe: error: " << rank_prefix << message << std::endl;
    if (world.size() > 1) {
      if (reports && !root) std::this_thread::sleep_for(std::chrono::seconds(kSecondsForRank0ToRecord));
      world.abort(code);
    }
    return code;
  };
  splitpipe::CommandLine command_line;
  try {
    command_line = splitpipe::parse_command_line(argc, argv);
  } catch (const splitpipe::UsageError& e) {
    // Options are parsed identically on every rank, so every rank is here: one message, exit 2.
    if (root) std::cerr << "splitpipe: error: " << e.what() << std::endl;
    return e.exit_code();
  }
  try {
    if (command_line.help || command_line.version || command_line.print_schema) {
      if (root)
        std::cout << (command_line.help      ? command_line.help_text
                      : command_line.version ? splitpipe::version_report()
                                             : splitpipe::schema_markdown());
      return 0;
    }
    if (!command_line.check_configs.empty()) {
      if (!root) return 0;
      return splitpipe::check_configs(command_line.check_configs, command_line.check_ranks, std::cout) > 0 ? 2 : 0;
    }
    if (!command_line.predict_configs.empty()) {
      // Measuring is local work of seconds to minutes per setup, as a run's setup is; a rank
      // that hangs meanwhile must still end the job (an hour, as run() allows its setup).
      world.set_timeout(3600);
      return splitpipe::predict_configs(command_line.predict_configs, world, std::cout) > 0 ? 2 : 0;
    }
    splitpipe::run(command_line.config, world);
    return 0;
  } catch (const splitpipe::CollectiveError& e) {
    // Every rank agreed on it: one message from rank 0, a normal exit everywhere.
    if (root) std::cerr << "splitpipe: error: " << e.what() << std::endl;
    return e.exit_code();
  } catch (const splitpipe::PeerFailure& e) {
    // Another rank failed and reported it; rank 0 has recorded it in the run file.
    return abort_job(e.what(), 1);
  } catch (const splitpipe::Error& e) {
    // Found on this rank alone (a usage error too): the others may be waiting for it.
    return abort_job(e.what(), e.exit_code());
  } catch (const c10::Error& e) {
    return abort_job("LibTorch: " + splitpipe::one_line(e), 3);
  } catch (const std::exception& e) {
    return abort_job("internal error: " + splitpipe::one_line(e), 3);
  }
}
