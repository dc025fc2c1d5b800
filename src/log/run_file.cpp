// RunFile on top of the HDF5 C++ API. Every public operation runs inside `guarded`, so callers
// only ever see splitpipe::Error, phrased with the file path and the operation that failed.
#include "splitpipe/run_file.hpp"

#include <ATen/ATen.h>
#include <H5Cpp.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "splitpipe/error.hpp"
#include "splitpipe/file_io.hpp"

namespace splitpipe {
namespace {

namespace fs = std::filesystem;

// Extendible datasets grow in chunks of this many rows; per-epoch rows are tiny, so a chunk
// of 64 keeps the file small without one allocation per epoch.
constexpr hsize_t kRowsPerChunk = 64;
// Matrix slices (e.g. a confusion matrix of many classes) can be large: cap a chunk near 1 MiB.
constexpr hsize_t kMaxChunkElements = 128 * 1024;

// Runs an HDF5 operation, turning the C++ API's exceptions into an Error that says which file
// and what we were doing. HDF5 would otherwise also print its own error stack to stderr; the
// switch is per thread in thread-safe builds, hence set on every call rather than once.
template <typename Body>
auto guarded(const std::string& path, const std::string& what, Body&& body) -> decltype(body()) {
  H5::Exception::dontPrint();
  try {
    return body();
  } catch (const H5::Exception& e) {
    throw Error("run file '" + path + "': cannot " + what + " (HDF5: " + e.getFuncName() + ": " +
                e.getDetailMsg() + ")");
  }
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : path + '/') {
    if (c != '/') {
      part += c;
    } else if (!part.empty()) {
      parts.push_back(std::move(part));
      part.clear();
    }
  }
  if (parts.empty()) throw Error("empty HDF5 object name '" + path + "'");
  return parts;
}

// Walks `parts` below `root`; missing groups are created when `create` is set, otherwise the
// walk stops with nullopt (H5Lexists cannot test "a/b" when "a" is missing, hence one step at a time).
std::optional<H5::Group> walk_groups(H5::Group group, const std::vector<std::string>& parts,
                                     bool create) {
  for (const auto& part : parts) {
    if (group.nameExists(part)) {
      group = group.openGroup(part);
    } else if (create) {
      group = group.createGroup(part);
    } else {
      return std::nullopt;
    }
  }
  return group;
}

H5::Group open_or_create_group(const H5::Group& root, const std::string& path) {
  return *walk_groups(root, split_path(path), true);
}

std::optional<H5::Group> find_group(const H5::Group& root, const std::string& path) {
  return walk_groups(root, split_path(path), false);
}

// "a/b/c" -> the (created) group "a/b" and the leaf name "c".
std::pair<H5::Group, std::string> parent_and_leaf(const H5::Group& root, const std::string& path) {
  auto parts = split_path(path);
  std::string leaf = std::move(parts.back());
  parts.pop_back();
  return {*walk_groups(root, parts, true), std::move(leaf)};
}

// Datasets directly in `group`, in name order (subgroups such as "ranks/1" are skipped).
std::vector<std::string> dataset_names(const H5::Group& group) {
  std::vector<std::string> names;
  const hsize_t count = group.getNumObjs();
  for (hsize_t i = 0; i < count; ++i) {
    if (group.childObjType(i) == H5O_TYPE_DATASET) names.push_back(group.getObjnameByIdx(i));
  }
  return names;
}

hsize_t length(const H5::DataSet& dataset) {
  const H5::DataSpace space = dataset.getSpace();
  std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  return dims.empty() ? 1 : dims[0];  // a scalar holds one value
}

// An empty dataset of shape [0, slice...] that grows along dim 0 only.
H5::DataSet create_extendible(const H5::Group& group, const std::string& name,
                              const H5::PredType& type, const std::vector<hsize_t>& slice) {
  hsize_t slice_elements = 1;
  for (hsize_t d : slice) slice_elements *= std::max<hsize_t>(d, 1);
  std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED}, chunk{std::clamp<hsize_t>(
                                                          kMaxChunkElements / slice_elements, 1,
                                                          kRowsPerChunk)};
  dims.insert(dims.end(), slice.begin(), slice.end());
  for (hsize_t d : slice) {
    // An empty axis (no boundaries in a one-stage run) needs a chunk of 1, which HDF5 only
    // accepts on an axis that may grow.
    max_dims.push_back(d > 0 ? d : H5S_UNLIMITED);
    chunk.push_back(std::max<hsize_t>(d, 1));
  }
  H5::DSetCreatPropList props;
  props.setChunk(static_cast<int>(chunk.size()), chunk.data());
  const H5::DataSpace space(static_cast<int>(dims.size()), dims.data(), max_dims.data());
  return group.createDataSet(name, type, space, props);
}

// Grows `dataset` by one slice along dim 0 and writes `data` (one slice, `mem_type`) there.
void append_slice(H5::DataSet& dataset, const H5::PredType& mem_type, const void* data) {
  H5::DataSpace space = dataset.getSpace();
  std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = dims[0];
  count[0] = 1;
  ++dims[0];
  dataset.extend(dims.data());
  space = dataset.getSpace();
  space.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
  const H5::DataSpace memory(static_cast<int>(count.size()), count.data());
  dataset.write(data, mem_type, memory, space);
}

// Variable-length UTF-8: h5py reads it as str, h5dump prints it quoted.
H5::StrType utf8_string_type() {
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  return type;
}

// Attributes cannot change type or size in place, so a new value replaces the old attribute.
void replace_attribute(const H5::Group& object, const std::string& name,
                       const H5::DataType& file_type, const H5::DataType& mem_type,
                       const void* value) {
  if (object.attrExists(name)) object.removeAttr(name);
  object.createAttribute(name, file_type, H5::DataSpace(H5S_SCALAR)).write(mem_type, value);
}

// Replaces `group/column` with a fresh 1-D dataset of `count` elements.
H5::DataSet replace_column(const H5::Group& root, const std::string& group,
                           const std::string& column, const H5::DataType& type, hsize_t count) {
  const H5::Group parent = open_or_create_group(root, group);
  if (parent.nameExists(column)) parent.unlink(column);
  return parent.createDataSet(column, type, H5::DataSpace(1, &count));
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

void check_column_name(const std::string& group, const std::string& column) {
  if (column.empty() || column.find('/') != std::string::npos) {
    throw Error("group '" + group + "': invalid column name '" + column + "'");
  }
}

void write_string_attribute(const H5::H5Object& object, const std::string& name, const std::string& value) {
  const H5::StrType type = utf8_string_type();
  const char* text = value.c_str();
  if (object.attrExists(name)) object.removeAttr(name);
  object.createAttribute(name, type, H5::DataSpace(H5S_SCALAR)).write(type, &text);
}

void write_string_list_attribute(const H5::H5Object& object, const std::string& name,
                                 const std::vector<std::string>& values) {
  const H5::StrType type = utf8_string_type();
  std::vector<const char*> texts;
  for (const auto& value : values) texts.push_back(value.c_str());
  const hsize_t count = values.size();
  if (object.attrExists(name)) object.removeAttr(name);
  H5::Attribute attribute = object.createAttribute(name, type, H5::DataSpace(1, &count));
  if (!texts.empty()) attribute.write(type, texts.data());
}

// Labels a dataset with its unit and description from the run schema (a name the schema does
// not know, e.g. in a unit test, stays unlabelled; the schema test finds any in real runs).
void label(const H5::DataSet& dataset, const std::string& path) {
  const SchemaEntry* entry = find_schema_entry(path);
  if (!entry) return;
  write_string_attribute(dataset, "units", entry->units);
  write_string_attribute(dataset, "description", entry->description);
}

// "a/b" (relative to the root) and "c" -> "/a/b/c".
std::string object_path(const std::string& group, const std::string& leaf) {
  std::string path = "/";
  for (const auto& part : split_path(group + "/" + leaf)) path += (path.size() > 1 ? "/" : "") + part;
  return path;
}

}  // namespace

struct RunFile::Impl {
  Impl(std::string target_path, std::string written_path, H5::H5File h5, RunFileLock writer_lock)
      : path(std::move(target_path)),
        writing(std::move(written_path)),
        file(std::make_unique<H5::H5File>(std::move(h5))),
        lock(std::move(writer_lock)) {}
  // Closing can fail (e.g. disk full on the final flush); a destructor must not throw, and
  // everything appended before was already flushed. A file dropped without finish() (the run
  // ended by an error thrown past it) keeps status "running" and is published like a failure.
  ~Impl() {
    if (open) close();
    settle(/*failed=*/true);
  }

  // Closes once. A close that fails (a full disk on the final flush) has already torn down
  // part of HDF5's state, and closing again (H5File's destructor does) crashes inside HDF5: so
  // the handle is then dropped without its destructor, a deliberate leak at the end of a run.
  void close() noexcept {
    open = false;
    try {
      file->close();
    } catch (const H5::Exception&) {
      static_cast<void>(file.release());
    }
  }

  // The implementation of an open file; moved-from and finished RunFiles have none.
  static Impl& live(const std::unique_ptr<Impl>& impl) {
    if (!impl) throw Error("run file used after it was moved from");
    if (!impl->open) throw Error("run file '" + impl->path + "' used after finish()");
    return *impl;
  }

  H5::Group root() const { return file->openGroup("/"); }
  void flush() const { file->flush(H5F_SCOPE_GLOBAL); }
  bool pending() const { return writing != path; }

  // Moves the temporary file to the target name, unless another run has taken the target
  // since this one started.
  void publish() {
    if (!pending()) return;
    if (replaces_existing && RunFileLock::held_elsewhere(path))
      throw Error("run file '" + path + "' is in use: another splitpipe run started writing it after this one; "
                  "this run's results are in '" + writing + "'");
    if (std::rename(writing.c_str(), path.c_str()) != 0)
      throw Error("cannot rename '" + writing + "' to run file '" + path + "': " + os_reason(errno));
    writing = path;
  }

  // After the file is closed: a never-published file is published, or removed if it was to
  // replace an older file and the run failed. Never throws.
  void settle(bool failed) noexcept {
    if (!pending()) return;
    if (failed && replaces_existing) {
      std::remove(writing.c_str());
      writing = path;
      return;
    }
    try {
      publish();
    } catch (const Error&) {  // leaves the temporary file, which the error message named
    }
  }

  std::string path;     // the target: what the user asked for
  std::string writing;  // where the data is now: a temporary name until published
  std::unique_ptr<H5::H5File> file;
  RunFileLock lock;
  bool replaces_existing = false;
  bool open = true;
};

RunFile::RunFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunFile::RunFile(RunFile&&) noexcept = default;
RunFile& RunFile::operator=(RunFile&&) noexcept = default;
RunFile::~RunFile() = default;

namespace {

// HDF5 would hold an exclusive flock on the file for as long as the run writes, so h5py and
// h5dump could not read a running run (errno 11) without HDF5_USE_FILE_LOCKING=FALSE. The
// writer's own RunFileLock keeps other writers out instead, and every append is flushed, so a
// reader between epochs sees a consistent file.
H5::FileAccPropList without_hdf5_locking() {
  H5::FileAccPropList access;
  H5Pset_file_locking(access.getId(), false, true);
  return access;
}

// A run's id: enough to tell two runs apart, even ones started the same second on one host.
std::string new_run_id() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid()) + "-" + iso_timestamp_now() + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
}

}  // namespace

RunFile RunFile::create(const std::string& path, bool overwrite) {
  // Checked before creating directories or opening anything, so a refused run leaves no trace.
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw Error("cannot create run file '" + path + "': it is a directory; name a file in it, e.g. --output '" +
                (fs::path(path) / "run.h5").string() + "'");
  const bool exists = fs::exists(path, ec);
  if (exists && !overwrite) {
    throw Error("run file '" + path +
                "' already exists; pass --overwrite to replace it or choose another --output");
  }
  if (exists && RunFileLock::held_elsewhere(path))
    throw Error("run file '" + path + "' is in use: another splitpipe run is still writing it; --overwrite "
                "cannot replace it until that run ends; choose another --output");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) {
      throw Error("cannot create directory '" + parent.string() + "' for run file '" + path +
                  "': " + ec.message());
    }
  }
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  const std::string temporary = (parent / ("." + fs::path(path).filename().string() + "." + host + "-" +
                                           std::to_string(getpid()) + ".partial"))
                                    .string();
  // Created here rather than by HDF5, whose error never says why (permission, full disk).
  const int fd = ::open(temporary.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error("cannot create run file '" + path + "' (as '" + temporary + "' until its first epoch): " +
                os_reason(errno));
  ::close(fd);
  // Checked once the file could be created: a directory we may not write reports that first.
  const int64_t free = free_bytes(temporary);
  if (free >= 0 && free < kMinFreeBytes) {
    std::remove(temporary.c_str());
    throw Error("cannot create run file '" + path + "': No space left on device (" + std::to_string(free / 1024) +
                " KiB free; splitpipe needs at least " + std::to_string(kMinFreeBytes >> 20) + " MiB)");
  }
  std::unique_ptr<Impl> impl;
  try {
    RunFileLock lock(temporary);
    impl = guarded(path, "create the file", [&] {
      return std::make_unique<Impl>(path, temporary,
                                    H5::H5File(temporary, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT,
                                               without_hdf5_locking()),
                                    std::move(lock));
    });
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  impl->replaces_existing = exists;
  RunFile run(std::move(impl));
  run.set_attribute("format_version", static_cast<int64_t>(kRunFileFormatVersion));
  run.set_attribute("status", std::string("running"));
  run.set_attribute("start_time", iso_timestamp_now());
  run.set_attribute("run_id", new_run_id());
  return run;
}

RunFile RunFile::open_existing(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error("run file '" + path + "' does not exist, so there is nothing to resume");
  }
  RunFileLock lock(path);
  return guarded(path, "open the file for appending", [&] {
    if (!H5::H5File::isHdf5(path)) throw Error("run file '" + path + "' is not an HDF5 file");
    RunFile run(std::make_unique<Impl>(
        path, path, H5::H5File(path, H5F_ACC_RDWR, H5::FileCreatPropList::DEFAULT, without_hdf5_locking()),
        std::move(lock)));
    const H5::Group root = run.impl_->root();
    if (!root.attrExists("format_version")) {
      throw Error("'" + path + "' is not a splitpipe run file (no format_version attribute)");
    }
    int64_t version = 0;
    root.openAttribute("format_version").read(H5::PredType::NATIVE_INT64, &version);
    if (version > kRunFileFormatVersion) {
      throw Error("run file '" + path + "' has format version " + std::to_string(version) +
                  ", newer than this splitpipe understands (" +
                  std::to_string(kRunFileFormatVersion) + ")");
    }
    return run;
  });
}

const std::string& RunFile::path() const {
  if (!impl_) throw Error("run file used after it was moved from");
  return impl_->path;
}

namespace {

H5::Group attribute_owner(const H5::Group& root, const std::string& group) {
  return group == "/" || group.empty() ? root : open_or_create_group(root, group);
}

}  // namespace

void RunFile::set_attribute(const std::string& name, const std::string& value, const std::string& group) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "set attribute '" + name + "'", [&] {
    write_string_attribute(attribute_owner(self.root(), group), name, value);
    self.flush();
  });
}

void RunFile::set_attribute(const std::string& name, int64_t value, const std::string& group) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "set attribute '" + name + "'", [&] {
    replace_attribute(attribute_owner(self.root(), group), name, H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64,
                      &value);
    self.flush();
  });
}

void RunFile::set_attribute(const std::string& name, uint64_t value, const std::string& group) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "set attribute '" + name + "'", [&] {
    replace_attribute(attribute_owner(self.root(), group), name, H5::PredType::STD_U64LE, H5::PredType::NATIVE_UINT64,
                      &value);
    self.flush();
  });
}

void RunFile::set_attribute(const std::string& name, double value, const std::string& group) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "set attribute '" + name + "'", [&] {
    replace_attribute(attribute_owner(self.root(), group), name, H5::PredType::IEEE_F64LE, H5::PredType::NATIVE_DOUBLE,
                      &value);
    self.flush();
  });
}

std::string RunFile::string_attribute(const std::string& name) const {
  const Impl& self = Impl::live(impl_);
  return guarded(self.path, "read attribute '" + name + "'", [&] {
    const H5::Group root = self.root();
    if (!root.attrExists(name)) {
      throw Error("run file '" + self.path + "' has no attribute '" + name + "'");
    }
    const H5::Attribute attribute = root.openAttribute(name);
    if (attribute.getTypeClass() != H5T_STRING) {
      throw Error("run file '" + self.path + "': attribute '" + name + "' is not a string");
    }
    std::string value;
    attribute.read(attribute.getStrType(), value);
    return value;
  });
}

void RunFile::append_row(const std::string& group,
                         const std::vector<std::pair<std::string, double>>& row) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "append a row to group '" + group + "'", [&] {
    if (row.empty()) throw Error("group '" + group + "': a row needs at least one column");
    std::set<std::string> columns;
    for (const auto& [column, value] : row) {
      check_column_name(group, column);
      if (!columns.insert(column).second) {
        throw Error("group '" + group + "': column '" + column + "' appears twice in one row");
      }
    }
    H5::Group target = open_or_create_group(self.root(), group);
    // Validate everything before writing anything, so a rejected row leaves no partial row.
    const std::vector<std::string> existing = dataset_names(target);
    if (!existing.empty()) {
      const std::set<std::string> known(existing.begin(), existing.end());
      for (const auto& column : columns) {
        if (!known.count(column)) {
          throw Error("group '" + group + "': column '" + column +
                      "' is not among its existing columns (" + join(existing) + ")");
        }
      }
      for (const auto& column : existing) {
        if (!columns.count(column)) {
          throw Error("group '" + group + "': row lacks existing column '" + column + "'");
        }
      }
    }
    for (const auto& [column, value] : row) {
      H5::DataSet dataset;
      if (existing.empty()) {
        dataset = create_extendible(target, column, H5::PredType::IEEE_F64LE, {});
        label(dataset, object_path(group, column));
      } else {
        dataset = target.openDataSet(column);
      }
      append_slice(dataset, H5::PredType::NATIVE_DOUBLE, &value);
    }
    self.flush();
  });
}

void RunFile::create_table(const std::string& group, const std::vector<std::string>& columns) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "create the columns of group '" + group + "'", [&] {
    const H5::Group target = open_or_create_group(self.root(), group);
    for (const auto& column : columns) {
      check_column_name(group, column);
      if (!target.nameExists(column))
        label(create_extendible(target, column, H5::PredType::IEEE_F64LE, {}), object_path(group, column));
    }
    self.flush();
  });
}

void RunFile::create_matrix_series(const std::string& dataset, int64_t rows, int64_t columns) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "create dataset '" + dataset + "'", [&] {
    auto [parent, leaf] = parent_and_leaf(self.root(), dataset);
    if (!parent.nameExists(leaf))
      label(create_extendible(parent, leaf, H5::PredType::STD_I64LE,
                              {static_cast<hsize_t>(rows), static_cast<hsize_t>(columns)}),
            object_path(dataset, ""));
    self.flush();
  });
}

void RunFile::create_series(const std::string& dataset, const std::vector<int64_t>& inner_shape,
                            const std::vector<std::string>& columns) {
  Impl& self = Impl::live(impl_);
  if (inner_shape.empty() || inner_shape.back() != static_cast<int64_t>(columns.size()))
    throw Error("run file '" + self.path + "': series '" + dataset + "' needs its last axis to hold its " +
                std::to_string(columns.size()) + " columns");
  guarded(self.path, "create dataset '" + dataset + "'", [&] {
    auto [parent, leaf] = parent_and_leaf(self.root(), dataset);
    if (parent.nameExists(leaf)) return;
    const std::vector<hsize_t> slice(inner_shape.begin(), inner_shape.end());
    const H5::DataSet created = create_extendible(parent, leaf, H5::PredType::IEEE_F64LE, slice);
    const std::string path = object_path(dataset, "");
    label(created, path);
    // Each column's unit and description, so a reader never needs the README.
    std::vector<std::string> units, descriptions;
    const SchemaEntry* table = find_schema_entry(path);
    for (const auto& column : columns) {
      const SchemaEntry* entry = nullptr;
      for (const auto& candidate : run_schema())
        if (table && candidate.path == table->path + ":" + column) entry = &candidate;
      units.push_back(entry ? entry->units : "");
      descriptions.push_back(entry ? entry->description : "");
    }
    write_string_list_attribute(created, "columns", columns);
    write_string_list_attribute(created, "column_units", units);
    write_string_list_attribute(created, "column_descriptions", descriptions);
    self.flush();
  });
}

void RunFile::append_series(const std::string& dataset, const std::vector<double>& values) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "append to dataset '" + dataset + "'", [&] {
    auto [parent, leaf] = parent_and_leaf(self.root(), dataset);
    if (!parent.nameExists(leaf)) throw Error("series '" + dataset + "' was not created");
    H5::DataSet target = parent.openDataSet(leaf);
    const H5::DataSpace space = target.getSpace();
    std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
    space.getSimpleExtentDims(dims.data());
    hsize_t slice = 1;
    for (size_t d = 1; d < dims.size(); ++d) slice *= dims[d];
    if (slice != values.size())
      throw Error("series '" + dataset + "' takes " + std::to_string(slice) + " values per row, got " +
                  std::to_string(values.size()));
    append_slice(target, H5::PredType::NATIVE_DOUBLE, values.data());
    self.flush();
  });
}

void RunFile::append_matrix(const std::string& dataset, const at::Tensor& matrix) {
  Impl& self = Impl::live(impl_);
  if (!matrix.defined() || matrix.dim() != 2 || matrix.numel() == 0) {
    throw Error("run file '" + self.path + "': dataset '" + dataset +
                "' takes non-empty 2-D matrices, got " +
                (matrix.defined() ? "shape " + c10::str(matrix.sizes()) : "an undefined tensor"));
  }
  const at::Tensor values = matrix.to(at::kCPU).to(at::kLong).contiguous();
  const std::vector<hsize_t> slice{static_cast<hsize_t>(values.size(0)),
                                   static_cast<hsize_t>(values.size(1))};
  guarded(self.path, "append a matrix to dataset '" + dataset + "'", [&] {
    auto [parent, leaf] = parent_and_leaf(self.root(), dataset);
    H5::DataSet target;
    if (parent.nameExists(leaf)) {
      target = parent.openDataSet(leaf);
      const H5::DataSpace space = target.getSpace();
      hsize_t dims[3] = {0, 0, 0};
      const bool is_3d = space.getSimpleExtentNdims() == 3;
      if (is_3d) space.getSimpleExtentDims(dims);
      if (!is_3d || dims[1] != slice[0] || dims[2] != slice[1]) {
        throw Error("run file '" + self.path + "': dataset '" + dataset + "' holds " +
                    std::to_string(dims[1]) + "x" + std::to_string(dims[2]) +
                    " matrices, cannot append a " + std::to_string(slice[0]) + "x" +
                    std::to_string(slice[1]) + " one");
      }
    } else {
      target = create_extendible(parent, leaf, H5::PredType::STD_I64LE, slice);
      label(target, object_path(dataset, ""));
    }
    append_slice(target, H5::PredType::NATIVE_INT64, values.data_ptr<int64_t>());
    self.flush();
  });
}

void RunFile::write_string_column(const std::string& group, const std::string& column,
                                  const std::vector<std::string>& values) {
  Impl& self = Impl::live(impl_);
  check_column_name(group, column);
  guarded(self.path, "write column '" + group + "/" + column + "'", [&] {
    const H5::StrType type = utf8_string_type();
    H5::DataSet dataset = replace_column(self.root(), group, column, type, values.size());
    std::vector<const char*> texts;
    texts.reserve(values.size());
    for (const auto& value : values) texts.push_back(value.c_str());
    if (!texts.empty()) dataset.write(texts.data(), type);
    label(dataset, object_path(group, column));
    self.flush();
  });
}

void RunFile::write_number_column(const std::string& group, const std::string& column,
                                  const std::vector<double>& values) {
  Impl& self = Impl::live(impl_);
  check_column_name(group, column);
  guarded(self.path, "write column '" + group + "/" + column + "'", [&] {
    H5::DataSet dataset =
        replace_column(self.root(), group, column, H5::PredType::IEEE_F64LE, values.size());
    if (!values.empty()) dataset.write(values.data(), H5::PredType::NATIVE_DOUBLE);
    label(dataset, object_path(group, column));
    self.flush();
  });
}

int64_t RunFile::rows(const std::string& group) const {
  const Impl& self = Impl::live(impl_);
  return guarded(self.path, "count the rows of group '" + group + "'", [&]() -> int64_t {
    const std::optional<H5::Group> target = find_group(self.root(), group);
    if (!target) return 0;
    const std::vector<std::string> names = dataset_names(*target);
    return names.empty() ? 0 : static_cast<int64_t>(length(target->openDataSet(names.front())));
  });
}

void RunFile::truncate(const std::string& name, int64_t rows) {
  Impl& self = Impl::live(impl_);
  guarded(self.path, "truncate '" + name + "' to " + std::to_string(rows) + " rows", [&] {
    auto shrink = [rows](H5::DataSet dataset) {
      const H5::DataSpace space = dataset.getSpace();
      std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
      space.getSimpleExtentDims(dims.data());
      if (!dims.empty() && dims[0] > static_cast<hsize_t>(rows)) {
        dims[0] = static_cast<hsize_t>(rows);
        dataset.extend(dims.data());
      }
    };
    auto parts = split_path(name);
    const std::string leaf = parts.back();
    parts.pop_back();
    const std::optional<H5::Group> parent = walk_groups(self.root(), parts, false);
    if (!parent || !parent->nameExists(leaf)) return;
    if (parent->childObjType(leaf) == H5O_TYPE_DATASET) {
      shrink(parent->openDataSet(leaf));
    } else {
      const H5::Group group = parent->openGroup(leaf);
      for (const auto& column : dataset_names(group)) shrink(group.openDataSet(column));
    }
    self.flush();
  });
}

std::string RunFile::run_id() const {
  const Impl& self = Impl::live(impl_);
  const bool has = guarded(self.path, "read attribute 'run_id'", [&] { return self.root().attrExists("run_id"); });
  return has ? string_attribute("run_id") : std::string();
}

void RunFile::commit() {
  Impl& self = Impl::live(impl_);
  self.publish();
}

void RunFile::finish(const std::string& status) {
  Impl& self = Impl::live(impl_);
  // However the last writes go (a full disk), the file is closed and settled exactly once.
  std::optional<Error> failure;
  try {
    set_attribute("status", status);
    set_attribute("end_time", iso_timestamp_now());
    guarded(self.path, "flush the file", [&] { self.flush(); });
  } catch (const Error& e) {
    failure = e;
  }
  self.close();
  self.settle(status.rfind("failed", 0) == 0 || failure.has_value());
  self.lock = RunFileLock();  // another run may take the file over now
  if (failure) throw *failure;
}

void RunFile::require_free_space() const {
  const Impl& self = Impl::live(impl_);
  const std::string directory = fs::path(self.writing).parent_path().empty()
                                    ? std::string(".")
                                    : fs::path(self.writing).parent_path().string();
  const int64_t free = free_bytes(directory);
  if (free >= 0 && free < kMinFreeBytes)
    throw Error("run file '" + self.path + "': No space left on device (" + std::to_string(free / 1024) +
                " KiB free in '" + directory + "'; splitpipe stops while " + std::to_string(kMinFreeBytes >> 20) +
                " MiB are left, so every table keeps the same rows and the status can still be written)");
}

std::string iso_timestamp_now() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S%z", &local);
  return text;
}

}  // namespace splitpipe
