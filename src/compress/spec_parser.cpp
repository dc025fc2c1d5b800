#include "spec_parser.hpp"

#include "splitpipe/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace splitpipe {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::string format_number(double value) {
  char text[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

CodecParams CodecParams::parse(const std::string& spec) {
  CodecParams params;
  const auto colon = spec.find(':');
  params.codec_ = trim(spec.substr(0, colon));
  if (params.codec_.empty()) throw UsageError("empty codec spec '" + spec + "' (expected e.g. 'quant:bits=8')");
  if (colon == std::string::npos) return params;
  const std::string list = spec.substr(colon + 1);
  if (trim(list).empty())
    throw UsageError("codec '" + params.codec_ + "': nothing after ':' (expected key=value[,key=value...])");
  size_t start = 0;
  while (start <= list.size()) {
    const auto comma = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, comma - start);
    const auto equals = item.find('=');
    const std::string key = trim(item.substr(0, equals));
    const std::string value = equals == std::string::npos ? "" : trim(item.substr(equals + 1));
    if (equals == std::string::npos || key.empty() || value.empty())
      params.fail("malformed parameter '" + trim(item) + "' (expected key=value)");
    if (params.values_.count(key)) params.fail("parameter '" + key + "' given twice");
    params.values_[key] = value;
    params.order_.push_back(key);
    start = comma + 1;
  }
  return params;
}

void CodecParams::fail(const std::string& problem) const { throw UsageError("codec '" + codec_ + "': " + problem); }

const std::string* CodecParams::find(const std::string& key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
  const auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

int CodecParams::integer(const std::string& key, int fallback, int lo, int hi) {
  const std::string* text = find(key);
  if (!text) return fallback;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text->c_str(), &end, 10);
  if (end == text->c_str() || *end != '\0' || errno == ERANGE) fail(key + "='" + *text + "' is not an integer");
  if (value < lo || value > hi)
    fail(key + "=" + *text + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
  return static_cast<int>(value);
}

double CodecParams::real_above(const std::string& key, double fallback, double lo, double hi) {
  const std::string* text = find(key);
  if (!text) return fallback;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text->c_str(), &end);
  if (end == text->c_str() || *end != '\0' || errno == ERANGE || value != value)
    fail(key + "='" + *text + "' is not a number");
  if (!(value > lo && value <= hi))
    fail(key + "=" + *text + " is out of range (" + format_number(lo) + " < " + key + " <= " + format_number(hi) + ")");
  return value;
}

std::string CodecParams::choice(const std::string& key, const std::string& fallback,
                                const std::vector<std::string>& allowed) {
  const std::string* text = find(key);
  if (!text) return fallback;
  if (std::find(allowed.begin(), allowed.end(), *text) == allowed.end())
    fail(key + "=" + *text + " is not one of: " + join(allowed));
  return *text;
}

bool CodecParams::flag(const std::string& key, bool fallback) {
  const std::string* text = find(key);
  if (!text) return fallback;
  if (*text == "1" || *text == "true" || *text == "on") return true;
  if (*text == "0" || *text == "false" || *text == "off") return false;
  fail(key + "=" + *text + " is not a switch (use 1 or 0)");
}

void CodecParams::reject_unknown() const {
  for (const auto& key : order_) {
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    fail("unknown parameter '" + key + "' " +
         (known_.empty() ? std::string("(it takes no parameters)") : "(known: " + join(known_) + ")"));
  }
}

}  // namespace splitpipe
