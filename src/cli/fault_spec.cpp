#include <sstream>

#include "splitpipe/error.hpp"
#include "splitpipe/fault.hpp"

namespace splitpipe {

FaultSpec parse_fault_spec(const std::string& text) {
  auto fail = [&](const std::string& why) {
    return UsageError("--fault-inject: " + why + " in '" + text + "' (expected rank=R,step=S,mode=crash|hang|exception)");
  };
  FaultSpec spec;
  bool has_rank = false, has_step = false, has_mode = false;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw fail("'" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    auto integer = [&]() -> int64_t {
      size_t used = 0;
      int64_t v = -1;
      try {
        v = std::stoll(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != value.size() || v < 0) throw fail(key + " must be an integer >= 0, got '" + value + "'");
      return v;
    };
    if (key == "rank") {
      spec.rank = static_cast<int>(integer());
      has_rank = true;
    } else if (key == "step") {
      spec.step = integer();
      has_step = true;
    } else if (key == "mode") {
      if (value == "crash") spec.mode = FaultSpec::Mode::Crash;
      else if (value == "hang") spec.mode = FaultSpec::Mode::Hang;
      else if (value == "exception") spec.mode = FaultSpec::Mode::Exception;
      else throw fail("unknown mode '" + value + "'");
      has_mode = true;
    } else {
      throw fail("unknown key '" + key + "'");
    }
  }
  if (!has_rank || !has_step || !has_mode) throw fail("rank, step and mode are all required");
  return spec;
}

}  // namespace splitpipe
