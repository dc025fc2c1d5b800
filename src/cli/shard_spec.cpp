// --shard: "iid" or "label-skew:alpha=X".
#include <cmath>
#include <cstdlib>

#include "splitpipe/config.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {

ShardSpec parse_shard_spec(const std::string& text) {
  const std::string expected = " (expected iid or label-skew:alpha=X with X > 0, e.g. label-skew:alpha=0.5)";
  if (text == "iid") return ShardSpec{"iid", 0};
  const std::string prefix = "label-skew:alpha=";
  if (text.rfind(prefix, 0) != 0) throw UsageError("--shard: unknown value '" + text + "'" + expected);
  const std::string number = text.substr(prefix.size());
  char* end = nullptr;
  const double alpha = std::strtod(number.c_str(), &end);
  if (number.empty() || *end != '\0' || !std::isfinite(alpha) || alpha <= 0)
    throw UsageError("--shard: alpha '" + number + "' is not a finite number > 0" + expected);
  return ShardSpec{"label-skew", alpha};
}

}  // namespace splitpipe
