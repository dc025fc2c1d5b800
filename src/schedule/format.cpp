// Text form of schedules: F/B = forward/backward, ra/sa = receive/send activation,
// rg/sg = receive/send gradient; "s.m" = stage s, micro-batch m; ">r" / "<r" = to / from rank r.
#include <sstream>

#include "splitpipe/schedule.hpp"

namespace splitpipe {

std::string to_string(const Action& a) {
  const std::string sm = std::to_string(a.stage) + "." + std::to_string(a.microbatch);
  switch (a.type) {
    case ActionType::Forward: return "F" + sm;
    case ActionType::Backward: return "B" + sm;
    case ActionType::RecvActivation: return "ra" + sm + "<" + std::to_string(a.peer);
    case ActionType::SendActivation: return "sa" + sm + ">" + std::to_string(a.peer);
    case ActionType::RecvGradient: return "rg" + sm + "<" + std::to_string(a.peer);
    case ActionType::SendGradient: return "sg" + sm + ">" + std::to_string(a.peer);
  }
  return "?";
}

std::string format_schedule(const Schedule& schedule) {
  std::ostringstream out;
  out << "schedule " << schedule.kind << ": " << schedule.num_stages() << " stages on " << schedule.num_ranks()
      << " ranks, " << schedule.num_microbatches << " micro-batches";
  if (schedule.num_pipelines() > 1)
    out << " per pipeline; " << schedule.num_pipelines() << " client pipelines of " << schedule.pipeline_length()
        << " stages (stage c*" << schedule.pipeline_length() << "+s = client c's stage s)";
  out << "\n"
      << "  (F/B forward/backward, ra/sa recv/send activation, rg/sg recv/send gradient; stage.microbatch, >to <from rank)\n";
  for (int r = 0; r < schedule.num_ranks(); ++r) {
    out << "  rank " << r << " (stages";
    for (int s = 0; s < schedule.num_stages(); ++s)
      if (schedule.stage_rank[s] == r) out << " " << s;
    out << "):";
    for (const Action& a : schedule.programs[r]) out << " " << to_string(a);
    out << "\n";
  }
  const auto sim = simulate(schedule);
  out << "  simulated (forward 1, backward 2 per micro-batch and stage): makespan " << sim.makespan
      << ", bubble " << static_cast<int>(100 * sim.bubble_fraction + 0.5) << "%, GPipe bound (p-1)/(m+p-1) = "
      << static_cast<int>(100 * sim.analytic_gpipe_bubble + 0.5) << "%\n";
  return out.str();
}

}  // namespace splitpipe
