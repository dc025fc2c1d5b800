#include "splitpipe/lr_schedule.hpp"

#include <cmath>

namespace splitpipe {

double LrSchedule::at(int epoch, int64_t step) const {
  const double steps = static_cast<double>(steps_per_epoch);
  const double done = epoch + step / steps;  // epochs completed before this step
  if (done < warmup_epochs) return base * (done + 1.0 / steps) / warmup_epochs;
  const double t = done - warmup_epochs;
  if (kind == "step") return base * std::pow(gamma, std::floor(t / step_epochs));
  if (kind == "cosine") {
    const double span = epochs - warmup_epochs;
    return base * 0.5 * (1.0 + std::cos(M_PI * t / span));
  }
  return base;
}

}  // namespace splitpipe
