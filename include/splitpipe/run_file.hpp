// The HDF5 file every run writes. Each dataset it creates is labelled from the run schema
// (attributes `units` and `description`) when the schema has an entry for it.
// Only one process (rank 0) owns it. Each append is flushed,
// so a killed run keeps every completed epoch.
//
// A new run file is written under a hidden temporary name beside its target and renamed over
// it at the first commit() (the first complete epoch), so a run that fails before it never
// damages a file it did not create. While a run writes, it holds a lock (RunFileLock): a
// second run cannot replace or resume a file that is still being written. HDF5's own file
// locking is off for the writer, so h5py and h5dump can read a run while it goes on.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "splitpipe/run_schema.hpp"

namespace splitpipe {


class RunFile {
 public:
  // Creates the file (and missing parent directories) under its temporary name. An existing
  // file is refused with an Error unless overwrite is true, and a file another run is writing
  // always. Sets the root attributes status = "running" and a new run_id.
  static RunFile create(const std::string& path, bool overwrite);
  // Opens an existing run file to keep appending (resume); refused while another run writes it.
  static RunFile open_existing(const std::string& path);

  RunFile(RunFile&&) noexcept;
  RunFile& operator=(RunFile&&) noexcept;
  ~RunFile();  // closes; a file never given finish() keeps status "running"

  const std::string& path() const;

  // Attributes of the root group, or of `group` (created if missing); replaced if they exist.
  void set_attribute(const std::string& name, const std::string& value, const std::string& group = "/");
  void set_attribute(const std::string& name, int64_t value, const std::string& group = "/");
  void set_attribute(const std::string& name, uint64_t value, const std::string& group = "/");
  void set_attribute(const std::string& name, double value, const std::string& group = "/");
  std::string string_attribute(const std::string& name) const;

  // Appends one value to each named extendible 1-D float64 dataset in `group` (e.g. "epochs",
  // "ranks/1"), creating group and datasets on first use. Every row of a group must name the
  // same columns. Flushes.
  void append_row(const std::string& group, const std::vector<std::pair<std::string, double>>& row);
  // Creates the empty (0-row) columns of a group that append_row will fill, so a file read
  // before its first row has every dataset; existing columns are kept.
  void create_table(const std::string& group, const std::vector<std::string>& columns);
  // The same for an [n, rows, columns] series of matrices (append_matrix).
  void create_matrix_series(const std::string& dataset, int64_t rows, int64_t columns);
  // An empty float64 series [0, inner...] whose last axis holds `columns` (stored as the
  // attribute `columns`, with their units and descriptions from the schema), and its append.
  void create_series(const std::string& dataset, const std::vector<int64_t>& inner_shape,
                     const std::vector<std::string>& columns);
  void append_series(const std::string& dataset, const std::vector<double>& values);
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

  // The identity given to the file when it was created (empty for files older than run ids).
  std::string run_id() const;

  // Keeps only the first `rows` rows of every dataset in a group, or of one dataset (resume
  // from a checkpoint older than the last row written). Absent names are ignored.
  void truncate(const std::string& group_or_dataset, int64_t rows);

  // Throws Error ("No space left on device") when the file system of the file has less than
  // kMinFreeBytes free: HDF5 cannot be trusted to leave a consistent file when a write fails
  // half-way, so a run stops while every table still has the same rows.
  static constexpr int64_t kMinFreeBytes = int64_t{1} << 20;
  void require_free_space() const;

  // Publishes a new file under its target name (atomically replacing an older file there).
  // Later calls do nothing.
  void commit();

  // Sets status ("complete", "interrupted: ..." or "failed: <reason>") and end_time, flushes
  // and closes. A file never committed is published unless it would replace an older file and
  // the run failed: then it is removed and the older file stays as it was.
  void finish(const std::string& status);

 private:
  struct Impl;
  explicit RunFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Local time as ISO 8601, for start_time/end_time attributes.
std::string iso_timestamp_now();

}  // namespace splitpipe
