// Learning rate as a function of training progress, evaluated at every optimizer step.
#pragma once
#include <cstdint>
#include <string>

namespace splitpipe {

struct LrSchedule {
  std::string kind = "constant";  // constant | step | cosine
  double base = 0.1;
  int epochs = 1;
  int warmup_epochs = 0;  // linear ramp to base over these epochs, then the schedule
  int step_epochs = 30;   // step: multiply by gamma every step_epochs (counted after warm-up)
  double gamma = 0.1;
  int64_t steps_per_epoch = 1;

  // Rate for optimizer step `step` (0-based) of epoch `epoch` (0-based). The warm-up ramps
  // linearly from base/(warmup steps) at the first step to base at the last warm-up step;
  // cosine decays from base after warm-up to 0 at the end of the last epoch.
  double at(int epoch, int64_t step) const;
};

}  // namespace splitpipe
