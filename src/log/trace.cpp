#include "splitpipe/trace.hpp"

#include <cstdio>
#include <optional>

#include "splitpipe/error.hpp"
#include "splitpipe/file_io.hpp"

namespace splitpipe {
namespace {

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string microseconds(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", value);
  return text;
}

}  // namespace

Tracer::Tracer(std::string path, int64_t steps, const ControlPlane& control, std::vector<std::string> rank_names)
    : path_(std::move(path)), steps_(steps), control_(control), rank_names_(std::move(rank_names)) {}

void Tracer::begin_step(int epoch, int64_t step) {
  if (written_ || traced_ >= steps_) return;
  if (traced_ == 0) {
    control_.barrier();
    origin_ = Clock::now();
  }
  epoch_ = epoch;
  step_ = step;
  recording_ = true;
}

void Tracer::end_step() {
  if (!recording_) return;
  recording_ = false;
  if (++traced_ == steps_) write();
}

void Tracer::finish() {
  recording_ = false;
  if (traced_ > 0 && !written_) write();
}

void Tracer::span(const std::string& name, const char* category, Clock::time_point start, Clock::time_point end,
                  int stage, int microbatch, const std::string& extra_args) {
  if (!recording_) return;
  const auto since_origin = [&](Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(t - origin_).count();
  };
  if (!events_.empty()) events_ += ",\n";
  events_ += "{\"name\":" + json_string(name) + ",\"cat\":\"" + category + "\",\"ph\":\"X\",\"ts\":" +
             microseconds(since_origin(start)) + ",\"dur\":" + microseconds(since_origin(end) - since_origin(start)) +
             ",\"pid\":" + std::to_string(control_.rank()) + ",\"tid\":0,\"args\":{\"epoch\":" +
             std::to_string(epoch_ + 1) + ",\"step\":" + std::to_string(step_);
  if (stage >= 0) events_ += ",\"stage\":" + std::to_string(stage);
  if (microbatch >= 0) events_ += ",\"microbatch\":" + std::to_string(microbatch);
  if (!extra_args.empty()) events_ += "," + extra_args;
  events_ += "}}";
}

void Tracer::write() {
  written_ = true;
  const auto per_rank = control_.gather_strings(events_);
  events_.clear();
  std::optional<std::string> error;
  if (control_.rank() == 0) {
    std::string json = "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"splitpipe\",\"traced_steps\":" +
                       std::to_string(traced_) + "},\n\"traceEvents\":[\n";
    for (size_t r = 0; r < per_rank.size(); ++r) {
      const std::string name = r < rank_names_.size() ? rank_names_[r] : "rank " + std::to_string(r);
      json += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(r) +
              ",\"args\":{\"name\":" + json_string(name) + "}},\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" +
              std::to_string(r) + ",\"args\":{\"sort_index\":" + std::to_string(r) + "}}";
      json += per_rank[r].empty() ? "" : ",\n" + per_rank[r];
      json += r + 1 < per_rank.size() ? ",\n" : "\n";
    }
    json += "]}\n";
    try {
      write_file_atomically(path_, json, "trace file (--trace)");
    } catch (const Error& e) {
      error = e.what();
    }
  }
  control_.agree_on(error);
}

}  // namespace splitpipe
