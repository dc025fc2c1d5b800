#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "splitpipe/error.hpp"
#include "splitpipe/fault.hpp"

namespace splitpipe {

void inject_fault_if_due(const FaultSpec& spec, int rank, int64_t global_step) {
  if (spec.rank != rank || spec.step != global_step) return;
  switch (spec.mode) {
    case FaultSpec::Mode::Crash:
      std::cerr << "splitpipe: fault injection: rank " << rank << " kills itself at step " << global_step << std::endl;
      std::raise(SIGKILL);
      break;
    case FaultSpec::Mode::Hang:
      std::cerr << "splitpipe: fault injection: rank " << rank << " hangs at step " << global_step << std::endl;
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    case FaultSpec::Mode::Exception:
      throw Error("fault injected at step " + std::to_string(global_step) + " (--fault-inject)");
  }
}

}  // namespace splitpipe
