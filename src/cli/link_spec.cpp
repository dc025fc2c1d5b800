// --link: "bandwidth=100Mbit[,latency=5ms][,direction=both|up|down]", or one such spec per
// edge client separated by ';'.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "splitpipe/error.hpp"
#include "splitpipe/link.hpp"

namespace splitpipe {
namespace {

const char* const kExpected =
    "expected bandwidth=B[,latency=T][,direction=both|up|down], e.g. bandwidth=100Mbit,latency=5ms";

UsageError link_error(const std::string& problem) { return UsageError("--link: " + problem + " (" + kExpected + ")"); }

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// Splits "12.5Mbit" into 12.5 and "Mbit"; the number must be finite and >= 0.
std::pair<double, std::string> number_and_unit(const std::string& key, const std::string& value) {
  const char* begin = value.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(number) || number < 0)
    throw link_error(key + " '" + value + "' does not start with a non-negative number");
  return {number, std::string(end)};
}

constexpr double kMinBitsPerSecond = 1, kMaxBitsPerSecond = 1e13, kMaxLatencySeconds = 60;

double parse_bandwidth(const std::string& value) {
  auto [number, unit] = number_and_unit("bandwidth", value);
  std::string lower = unit;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.find('B') != std::string::npos || lower.find("byte") != std::string::npos)
    throw link_error("bandwidth '" + value + "': byte units are ambiguous here; write bits per second, e.g. 800Mbit");
  double scale = 1;
  std::string base = unit;
  if (!unit.empty()) {
    switch (std::tolower(static_cast<unsigned char>(unit[0]))) {
      case 'k': scale = 1e3; base = unit.substr(1); break;
      case 'm': scale = 1e6; base = unit.substr(1); break;
      case 'g': scale = 1e9; base = unit.substr(1); break;
      default: break;
    }
  }
  if (base != "bit" && base != "bit/s" && base != "bps")
    throw link_error("bandwidth '" + value + "': " + (unit.empty() ? std::string("needs a unit") : "unknown unit '" + unit + "'") +
                     " (bit, kbit, Mbit or Gbit per second; 'Mbit/s' and 'Mbps' also read as megabits)");
  const double bits_per_second = number * scale;
  // Outside this range the emulation would either stall for years or round to no delay at all.
  if (!(bits_per_second > 0)) throw link_error("bandwidth '" + value + "' must be > 0");
  if (!(bits_per_second >= kMinBitsPerSecond && bits_per_second <= kMaxBitsPerSecond))
    throw link_error("bandwidth '" + value + "' is outside 1 bit/s to 10 Tbit/s");
  return bits_per_second;
}

double parse_latency(const std::string& value) {
  auto [number, unit] = number_and_unit("latency", value);
  double seconds = -1;
  if (unit == "us") seconds = number * 1e-6;
  if (unit == "ms") seconds = number * 1e-3;
  if (unit == "s" || (unit.empty() && number == 0)) seconds = number;
  if (seconds >= 0) {
    if (!(seconds <= kMaxLatencySeconds)) throw link_error("latency '" + value + "' is over 60 s");
    return seconds;
  }
  throw link_error("latency '" + value + "': " + (unit.empty() ? std::string("needs a unit") : "unknown unit '" + unit + "'") +
                   " (us, ms or s)");
}

// Shortest of a few significant digits: "12.5", "100", "0.25".
std::string short_number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

}  // namespace

LinkSpec parse_link_spec(const std::string& text) {
  LinkSpec spec;
  std::set<std::string> seen;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto equals = item.find('=');
    const std::string key = trim(item.substr(0, equals));
    const std::string value = equals == std::string::npos ? "" : trim(item.substr(equals + 1));
    if (equals == std::string::npos || key.empty() || value.empty())
      throw link_error("'" + trim(item) + "' is not key=value");
    if (!seen.insert(key).second) throw link_error("'" + key + "' given twice");
    if (key == "bandwidth") {
      spec.bits_per_second = parse_bandwidth(value);
    } else if (key == "latency") {
      spec.latency_seconds = parse_latency(value);
    } else if (key == "direction") {
      if (value != "both" && value != "up" && value != "down")
        throw link_error("direction '" + value + "' is not both, up (edge -> server) or down (server -> edge)");
      spec.shape_up = value != "down";
      spec.shape_down = value != "up";
    } else {
      throw link_error("unknown key '" + key + "' (known: bandwidth, latency, direction)");
    }
  }
  // getline drops a trailing empty item: "bandwidth=1Mbit," would otherwise pass.
  if (!text.empty() && text.back() == ',') throw link_error("trailing ',' in '" + text + "'");
  if (!seen.count("bandwidth")) throw link_error("bandwidth is required");
  return spec;
}

std::vector<LinkSpec> parse_link_list(const std::string& text, int clients) {
  std::vector<LinkSpec> links;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ';')) links.push_back(parse_link_spec(trim(item)));
  if (!text.empty() && text.back() == ';') throw link_error("trailing ';' in '" + text + "'");
  if (links.size() == 1) return std::vector<LinkSpec>(static_cast<size_t>(std::max(clients, 1)), links.front());
  if (static_cast<int>(links.size()) != clients)
    throw UsageError("--link: " + std::to_string(links.size()) + " links given for " + std::to_string(clients) +
                     " edge client(s) (--edge-ranks); give one link for all, or one per client separated by ';', "
                     "e.g. bandwidth=10Mbit;bandwidth=100Mbit");
  return links;
}

std::string LinkSpec::describe() const {
  static const std::vector<std::pair<double, const char*>> units{{1e9, "Gbit/s"}, {1e6, "Mbit/s"}, {1e3, "kbit/s"}};
  std::string text = short_number(bits_per_second) + " bit/s";
  for (const auto& [scale, name] : units)
    if (bits_per_second >= scale) {
      text = short_number(bits_per_second / scale) + " " + name;
      break;
    }
  if (latency_seconds > 0)
    text += ", latency " + (latency_seconds >= 1e-3 ? short_number(latency_seconds * 1e3) + " ms"
                                                     : short_number(latency_seconds * 1e6) + " us");
  text += shape_up && shape_down ? ", both directions" : shape_up ? ", up only (edge -> server)" : ", down only (server -> edge)";
  return text;
}

}  // namespace splitpipe
