// The HDF5 file every run writes. Only one process (rank 0) owns it. Each append is flushed,
// so a killed run keeps every completed epoch.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace splitpipe {

constexpr int kRunFileFormatVersion = 1;

class RunFile {
 public:
  // Creates the file (and missing parent directories). An existing file is refused with an
  // Error unless overwrite is true. Sets the root attribute status = "running".
  static RunFile create(const std::string& path, bool overwrite);
  // Opens an existing run file to keep appending (resume).
  static RunFile open_existing(const std::string& path);

  RunFile(RunFile&&) noexcept;
  RunFile& operator=(RunFile&&) noexcept;
  ~RunFile();  // closes; a file never given finish() keeps status "running"

  const std::string& path() const;

  // Root-group attributes (replaced if they exist).
  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, int64_t value);
  void set_attribute(const std::string& name, double value);
  std::string string_attribute(const std::string& name) const;

  // Appends one value to each named extendible 1-D float64 dataset in `group` (e.g. "epochs",
  // "ranks/1"), creating group and datasets on first use. Every row of a group must name the
  // same columns. Flushes.
  void append_row(const std::string& group, const std::vector<std::pair<std::string, double>>& row);
  // Appends a [R, C] matrix (any numeric dtype, stored int64) as the next slice of an
  // extendible [n, R, C] dataset (e.g. "confusion"). Flushes.
  void append_matrix(const std::string& dataset, const at::Tensor& matrix);
  // Writes a fixed table as one 1-D dataset per column in `group` (replacing it if present).
  void write_string_column(const std::string& group, const std::string& column,
                           const std::vector<std::string>& values);
  void write_number_column(const std::string& group, const std::string& column,
                           const std::vector<double>& values);

  // Number of rows already in a group (0 if absent): a resumed run continues from there.
  int64_t rows(const std::string& group) const;

  // Keeps only the first `rows` rows of every dataset in a group, or of one dataset (resume
  // from a checkpoint older than the last row written). Absent names are ignored.
  void truncate(const std::string& group_or_dataset, int64_t rows);

  // Sets status ("complete" or "failed: <reason>") and end_time, flushes and closes.
  void finish(const std::string& status);

 private:
  struct Impl;
  explicit RunFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Local time as ISO 8601, for start_time/end_time attributes.
std::string iso_timestamp_now();

}  // namespace splitpipe
