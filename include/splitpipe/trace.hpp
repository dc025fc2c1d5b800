// --trace FILE.json: a Chrome trace (the JSON Trace Event Format that Perfetto, ui.perfetto.dev,
// and chrome://tracing read) of the first --trace-steps training steps of a run, one track per
// rank:
//   action   every schedule action, named as the schedule prints it ("F0.1", "sa0.1>1", ...)
//   codec    encode inside a send, decode at the end of a receive
//   wait     the wait inside a receive (link wait included; its share is in the args), the
//            step's final wait for its sends, and the labels/results of --edge-last 0
//   step     the whole step, with data (batch preparation), optimizer and edge-sync inside
// Times are microseconds since a barrier every rank passes before the first traced step: ranks
// of one node share the clock; across nodes the skew is that of the barrier (microseconds).
// The file is written by rank 0 when the window is full (or the first training pass ends
// short of it), gathered from every rank; a run that fails before then writes none.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "splitpipe/control_plane.hpp"

namespace splitpipe {

class Tracer {
 public:
  using Clock = std::chrono::steady_clock;

  // `rank_names[r]`: the track name of rank r (e.g. "rank 1 (server)").
  Tracer(std::string path, int64_t steps, const ControlPlane& control, std::vector<std::string> rank_names);

  // Whether spans are recorded now (inside a traced step).
  bool recording() const { return recording_; }
  // Collective, at every training step: the first one sets the common origin.
  void begin_step(int epoch, int64_t step);
  // Collective: ends the step; after the last traced step rank 0 writes the file.
  void end_step();
  // Collective: writes what was recorded if the window did not fill (a short run).
  void finish();

  void span(const std::string& name, const char* category, Clock::time_point start, Clock::time_point end,
            int stage = -1, int microbatch = -1, const std::string& extra_args = "");

 private:
  void write();

  std::string path_;
  int64_t steps_;
  const ControlPlane& control_;
  std::vector<std::string> rank_names_;
  Clock::time_point origin_;
  int64_t traced_ = 0;
  int epoch_ = 0;
  int64_t step_ = 0;
  bool recording_ = false, written_ = false;
  std::string events_;  // this rank's events, comma-separated JSON objects
};

}  // namespace splitpipe
