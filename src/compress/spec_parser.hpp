// Internal: codec specs "name:key=value,key=value". One parser for every codec, so every codec
// reports bad parameters the same way (UsageError naming the codec, the key and what is allowed).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace splitpipe {

class CodecParams {
 public:
  // Splits the spec; throws UsageError for malformed text ("quant:bits", "quant:", "a=1,a=2").
  static CodecParams parse(const std::string& spec);

  const std::string& codec() const { return codec_; }

  // Typed getters: each records the key as known, returns `fallback` when absent and throws
  // UsageError when the value does not parse or is out of range.
  int integer(const std::string& key, int fallback, int lo, int hi);
  // Accepts lo < value <= hi (lo excluded: "ratio must be positive").
  double real_above(const std::string& key, double fallback, double lo, double hi);
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed);
  bool flag(const std::string& key, bool fallback);

  // Throws UsageError for any key no getter asked about, listing the known ones.
  void reject_unknown() const;
  // Throws UsageError "codec '<name>': <problem>".
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  const std::string* find(const std::string& key);
  std::string codec_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> order_;  // keys as given, for stable error messages
  std::vector<std::string> known_;
};

// Shortest decimal text that reads back as the same double, so spec() round-trips exactly.
std::string format_number(double value);

}  // namespace splitpipe
