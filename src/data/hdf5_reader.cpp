// `--dataset hdf5`: samples and labels as datasets of one HDF5 file (default train/x, train/y,
// test/x, test/y). Samples may be of any numeric type, N x ...; labels integers, N. The file is
// read in slabs of rows converted straight into the float32 (uint8 pixels: uint8; labels: int64)
// tensor, so the file's own type never needs a second full-size copy in memory.
#include <H5Cpp.h>
#include <torch/torch.h>

#include <filesystem>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

// Rows per slab: about 64 MiB of float32 at a time.
int64_t rows_per_slab(int64_t row_elements) { return std::max<int64_t>(1, (int64_t{64} << 20) / 4 / row_elements); }

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string text;
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? "x" : "") + std::to_string(dims[i]);
  return text;
}

// Reads `name` of `file` into a tensor of `type` (float or long), slab by slab.
at::Tensor read_dataset(const H5::H5File& file, const std::string& path, const std::string& name, bool labels) {
  // H5Lexists cannot test "a/b" when "a" is missing: test each prefix of the path.
  bool exists = !name.empty();
  for (size_t slash = name.find('/', 1); exists; slash = name.find('/', slash + 1)) {
    exists = file.nameExists(name.substr(0, slash));
    if (slash == std::string::npos) break;
  }
  if (!exists)
    throw FormatError(path + ": no dataset '" + name + "' (set the names with --hdf5-keys TRAIN_X,TRAIN_Y,TEST_X,TEST_Y)");
  const H5::DataSet dataset = file.openDataSet(name);
  const H5T_class_t type_class = dataset.getTypeClass();
  if (type_class != H5T_INTEGER && type_class != H5T_FLOAT)
    throw FormatError(path + ": dataset '" + name + "' is not numeric");
  if (labels && type_class != H5T_INTEGER)
    throw FormatError(path + ": labels '" + name + "' are not integers (class numbers 0..C-1 expected)");
  H5::DataSpace space = dataset.getSpace();
  std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  if (dims.empty() || (labels && dims.size() != 1))
    throw FormatError(path + ": '" + name + "' has shape " + (dims.empty() ? "scalar" : shape_text(dims)) +
                      (labels ? "; labels must be one integer per sample (N)" : "; samples must be N x ..."));
  std::vector<int64_t> shape(dims.begin(), dims.end());
  // 8-bit pixels stay bytes, so they become [0, 1] floats exactly as the image readers' do.
  const bool pixels = !labels && type_class == H5T_INTEGER && dataset.getIntType().getSize() == 1 &&
                      dataset.getIntType().getSign() == H5T_SGN_NONE;
  at::Tensor out = at::empty(shape, labels ? at::kLong : pixels ? at::kByte : at::kFloat);
  const int64_t rows = shape[0], row_elements = rows > 0 ? out.numel() / rows : 1;
  const H5::PredType& memory_type = labels   ? H5::PredType::NATIVE_INT64
                                    : pixels ? H5::PredType::NATIVE_UINT8
                                             : H5::PredType::NATIVE_FLOAT;
  const int64_t slab = rows_per_slab(std::max<int64_t>(row_elements, 1));
  for (int64_t first = 0; first < rows; first += slab) {
    std::vector<hsize_t> start(dims.size(), 0), count = dims;
    start[0] = static_cast<hsize_t>(first);
    count[0] = static_cast<hsize_t>(std::min(slab, rows - first));
    space.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
    const H5::DataSpace memory(static_cast<int>(count.size()), count.data());
    void* target = static_cast<char*>(out.data_ptr()) + first * row_elements * static_cast<int64_t>(out.element_size());
    dataset.read(target, memory_type, memory, space);
  }
  return out;
}

}  // namespace

LabelledSplits read_hdf5_dataset(const std::string& path, const std::vector<std::string>& keys) {
  if (keys.size() != 4)
    throw UsageError("--hdf5-keys needs 4 dataset names: train samples, train labels, test samples, test labels");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error((path.empty() ? std::string("(none)") : path) +
                ": no such file; --dataset hdf5 reads the file named by --data-file");
  H5::Exception::dontPrint();
  try {
    if (!H5::H5File::isHdf5(path)) throw FormatError(path + ": not an HDF5 file");
    const H5::H5File file(path, H5F_ACC_RDONLY);
    LabelledSplits splits;
    splits.train = {read_dataset(file, path, keys[0], false), read_dataset(file, path, keys[1], true)};
    splits.test = {read_dataset(file, path, keys[2], false), read_dataset(file, path, keys[3], true)};
    for (const auto* split : {&splits.train, &splits.test}) {
      const bool train = split == &splits.train;
      if (split->images.size(0) != split->labels.size(0))
        throw FormatError(path + ": '" + keys[train ? 0 : 2] + "' holds " + std::to_string(split->images.size(0)) +
                          " samples but '" + keys[train ? 1 : 3] + "' " + std::to_string(split->labels.size(0)) +
                          " labels");
      if (split->labels.numel() > 0 && split->labels.min().item<int64_t>() < 0)
        throw FormatError(path + ": '" + keys[train ? 1 : 3] + "' holds a negative label; classes are 0..C-1");
    }
    return splits;
  } catch (const H5::Exception& e) {
    throw FormatError(path + ": cannot read (" + e.getDetailMsg() + ")");
  }
}

}  // namespace splitpipe
