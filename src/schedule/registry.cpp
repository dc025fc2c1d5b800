// --schedule names -> per-stage compute orders. A new schedule is one file with its order
// function, declared and listed here (schedule.hpp declares the two classic ones).
#include <utility>

#include "splitpipe/error.hpp"
#include "splitpipe/schedule.hpp"

namespace splitpipe {
namespace {

const std::vector<std::pair<std::string, StageOrderFn>>& registry() {
  static const std::vector<std::pair<std::string, StageOrderFn>> orders{
      {"gpipe", gpipe_order},
      {"1f1b", one_f_one_b_order},
  };
  return orders;
}

}  // namespace

std::vector<std::string> schedule_names() {
  std::vector<std::string> names;
  for (const auto& [name, order] : registry()) names.push_back(name);
  return names;
}

StageOrderFn stage_order_for(const std::string& kind) {
  if (kind == "forward") return gpipe_order;  // evaluation: forwards in order
  for (const auto& [name, order] : registry())
    if (name == kind) return order;
  std::string known;
  for (const auto& name : schedule_names()) known += (known.empty() ? "" : ", ") + name;
  throw UsageError("unknown schedule '" + kind + "' (choose one of: " + known + ")");
}

}  // namespace splitpipe
