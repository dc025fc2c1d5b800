// Fault injection for reliability tests: make one rank fail at one optimizer step.
#pragma once
#include <cstdint>
#include <string>

namespace splitpipe {

struct FaultSpec {
  enum class Mode { Crash, Hang, Exception };
  int rank = 0;
  int64_t step = 0;  // optimizer steps counted from 0 over the whole run (epoch * steps_per_epoch + step)
  Mode mode = Mode::Exception;
};

// Parses "rank=R,step=S,mode=crash|hang|exception". Throws UsageError naming --fault-inject.
FaultSpec parse_fault_spec(const std::string& text);

// Fails as the spec says when this rank reaches `global_step`: crash = SIGKILL to itself (no
// cleanup, like a node failure), hang = sleep forever, exception = throw Error.
void inject_fault_if_due(const FaultSpec& spec, int rank, int64_t global_step);

}  // namespace splitpipe
