// Which files each dataset reads, and the shared steps after reading: truncation, conversion to
// float, per-channel normalisation with training-split statistics.
#include <torch/torch.h>

#include <filesystem>
#include <limits>

#include "byte_source.hpp"
#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"
#include "synthetic.hpp"

namespace splitpipe {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxClasses = 10000;

// Both splits as read, before truncation and normalisation (uint8 pixels or float features).
struct RawSplits {
  LabelledImages train, test;
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  bool tokens = false;  // token ids, not measurements: never normalised
  std::string note;     // what the reader left out
};

const std::vector<std::string> kIdxFiles{"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
const std::vector<std::string> kCifarTrainFiles{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                                "data_batch_4.bin", "data_batch_5.bin"};
const std::string kCifarTestFile = "test_batch.bin";
const std::vector<std::string> kCsvFiles{"train.csv", "test.csv"};

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string joined;
  for (const std::string& part : parts) joined += (joined.empty() ? "" : separator) + part;
  return joined;
}

std::string join_shape(const std::vector<int64_t>& shape) {
  std::vector<std::string> parts;
  for (const int64_t dim : shape) parts.push_back(std::to_string(dim));
  return join(parts, "x");
}

// What the user should do when a dataset's file is missing.
std::string where_to_get(const std::string& dataset) {
  if (dataset == "fashion-mnist") {
    return "install them with `apt-get install dataset-fashion-mnist` (into " + default_data_dir(dataset) +
           ") or pass --data-dir with a directory holding them";
  }
  if (dataset == "mnist") {
    return "download them from http://yann.lecun.com/exdb/mnist/ into " + default_data_dir(dataset) +
           " or pass --data-dir with a directory holding them";
  }
  if (dataset == "cifar10") {
    return "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into "
           "data/ (giving " + default_data_dir(dataset) + ") or pass --data-dir with a directory holding them";
  }
  return "pass --data-dir with a directory holding them";
}

// `name` in `dir`, or its gzip-compressed `name.gz`; a missing file names what the dataset needs.
std::string find_file(const std::string& dir, const std::string& name, const std::string& dataset,
                      const std::vector<std::string>& all_files) {
  const fs::path plain = fs::path(dir) / name;
  const fs::path compressed = fs::path(dir) / (name + ".gz");
  if (fs::is_regular_file(plain)) return plain.string();
  if (fs::is_regular_file(compressed)) return compressed.string();
  throw Error(plain.string() + ": not found (nor " + name + ".gz); " + dataset + " reads " + join(all_files, ", ") +
              " (each optionally .gz) from its data directory, here " + dir + "; " + where_to_get(dataset));
}

[[noreturn]] void throw_count_mismatch(const std::string& images_path, int64_t images, const std::string& labels_path,
                                       int64_t labels) {
  throw FormatError(images_path + " holds " + std::to_string(images) + " samples but " + labels_path + " holds " +
                    std::to_string(labels) + " labels; the two files must come from the same split");
}

void check_label_range(const at::Tensor& labels, int64_t num_classes, const std::string& path) {
  if (labels.numel() == 0) return;
  const at::Tensor out_of_range = (labels < 0).logical_or_(labels >= num_classes).nonzero();
  if (out_of_range.size(0) == 0) return;
  const int64_t index = out_of_range[0][0].item<int64_t>();
  throw FormatError(path + ": label " + std::to_string(labels[index].item<int64_t>()) + " at index " +
                    std::to_string(index) + " is outside [0, " + std::to_string(num_classes) + ")");
}

LabelledImages read_idx_split(const std::string& images_path, const std::string& labels_path, int64_t num_classes) {
  const char* expected = " (expected MNIST-style IDX: images [N,rows,cols] with magic 0x00000803, labels [N] with "
                         "magic 0x00000801)";
  at::Tensor images = read_idx(images_path);
  at::Tensor labels = read_idx(labels_path);
  if (images.dim() != 3) {
    throw FormatError(images_path + ": images file has " + std::to_string(images.dim()) + " dimensions, not 3" +
                      expected);
  }
  if (labels.dim() != 1) {
    throw FormatError(labels_path + ": labels file has " + std::to_string(labels.dim()) + " dimensions, not 1" +
                      expected);
  }
  if (images.size(0) != labels.size(0)) throw_count_mismatch(images_path, images.size(0), labels_path, labels.size(0));
  labels = labels.to(torch::kLong);
  check_label_range(labels, num_classes, labels_path);
  return {images.unsqueeze(1), labels};  // one channel: [N,1,rows,cols]
}

RawSplits read_idx_dataset(const std::string& dataset, const std::string& dir) {
  std::vector<std::string> paths;
  for (const std::string& name : kIdxFiles) paths.push_back(find_file(dir, name, dataset, kIdxFiles));
  RawSplits raw;
  if (dataset == "fashion-mnist") {
    raw.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  } else {
    for (int digit = 0; digit < 10; ++digit) raw.class_names.push_back(std::to_string(digit));
  }
  raw.num_classes = static_cast<int64_t>(raw.class_names.size());
  raw.train = read_idx_split(paths[0], paths[1], raw.num_classes);
  raw.test = read_idx_split(paths[2], paths[3], raw.num_classes);
  return raw;
}

RawSplits read_cifar10_dataset(const std::string& dir) {
  std::vector<std::string> all_files = kCifarTrainFiles;
  all_files.push_back(kCifarTestFile);
  std::vector<std::string> train_paths;
  for (const std::string& name : kCifarTrainFiles) train_paths.push_back(find_file(dir, name, "cifar10", all_files));
  const std::string test_path = find_file(dir, kCifarTestFile, "cifar10", all_files);
  RawSplits raw;
  raw.train = read_cifar10_batches(train_paths);  // checks labels are 0-9
  raw.test = read_cifar10_batches({test_path});
  raw.class_names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  raw.num_classes = static_cast<int64_t>(raw.class_names.size());
  return raw;
}

RawSplits read_csv_dataset(const std::string& dir) {
  const std::string train_path = find_file(dir, kCsvFiles[0], "csv", kCsvFiles);
  const std::string test_path = find_file(dir, kCsvFiles[1], "csv", kCsvFiles);
  RawSplits raw;
  raw.train = read_csv(train_path);
  raw.test = read_csv(test_path);
  if (raw.train.images.size(1) != raw.test.images.size(1)) {
    throw FormatError(train_path + " has " + std::to_string(raw.train.images.size(1)) + " feature columns but " +
                      test_path + " has " + std::to_string(raw.test.images.size(1)));
  }
  raw.num_classes = 1 + std::max(raw.train.labels.max().item<int64_t>(), raw.test.labels.max().item<int64_t>());
  return raw;
}

RawSplits from_text(TextSplits text) {
  RawSplits raw;
  raw.train = std::move(text.train);
  raw.test = std::move(text.test);
  raw.class_names = std::move(text.class_names);
  raw.num_classes = static_cast<int64_t>(raw.class_names.size());
  raw.tokens = true;
  raw.note = std::move(text.note);
  return raw;
}

RawSplits read_text_dataset(const std::string& dir, int64_t length) {
  const std::vector<std::string> files{"train.txt", "test.txt"};
  std::vector<std::string> paths;
  for (const auto& name : files) {
    const fs::path path = fs::path(dir) / name;
    if (!fs::is_regular_file(path))
      throw Error(path.string() + ": not found; text reads train.txt and test.txt (one example per line: label, "
                  "tab, text) from its data directory, here " + dir + "; pass --data-dir with a directory holding them");
    paths.push_back(path.string());
  }
  return from_text(read_labelled_text(paths[0], paths[1], length));
}

RawSplits make_synthetic_dataset(const DataOptions& options) {
  using namespace data_detail;
  const at::Tensor prototypes = synthetic_prototypes(options.synthetic_shape, options.synthetic_classes,
                                                     derive_seed(options.seed, kPrototypeStream));
  // Same prototypes, different noise: the test split measures generalisation, not memory.
  Dataset train = synthetic_samples(prototypes, options.synthetic_train, derive_seed(options.seed, kTrainStream));
  Dataset test = synthetic_samples(prototypes, options.synthetic_test, derive_seed(options.seed, kTestStream));
  RawSplits raw;
  raw.train = {train.inputs, train.labels};
  raw.test = {test.inputs, test.labels};
  raw.num_classes = options.synthetic_classes;
  return raw;
}

void keep_first(LabelledImages& split, int64_t max_samples) {
  if (max_samples <= 0 || max_samples >= split.labels.size(0)) return;
  split.images = split.images.narrow(0, 0, max_samples);
  split.labels = split.labels.narrow(0, 0, max_samples).clone();  // let the full label tensor go
}

// Pixels become [0,1] floats. Always a fresh tensor: normalisation then works in place without
// touching the reader's buffer, and a truncated split stops holding the full one.
at::Tensor to_float(const at::Tensor& inputs) {
  at::Tensor converted = inputs.to(torch::kFloat, /*non_blocking=*/false, /*copy=*/true);
  return inputs.scalar_type() == torch::kUInt8 ? converted.div_(255.0) : converted;
}

// Statistics over every dim but dim 1: per channel for images [N,C,H,W], per column for
// features [N,F]. Only the training split's statistics are used, for both splits.
void normalise_with_train_stats(at::Tensor& train, at::Tensor& test) {
  std::vector<int64_t> reduce_dims{0};
  for (int64_t d = 2; d < train.dim(); ++d) reduce_dims.push_back(d);
  auto [stddev, mean] = torch::std_mean(train, at::IntArrayRef(reduce_dims), /*unbiased=*/false, /*keepdim=*/true);
  // A constant channel has std 0, or a few float ulps of its mean from rounding: leave its
  // scale alone instead of blowing rounding noise up to unit variance.
  const double resolution = 4 * std::numeric_limits<float>::epsilon();
  stddev.masked_fill_(stddev <= mean.abs() * resolution, 1.0);
  train.sub_(mean).div_(stddev);
  test.sub_(mean).div_(stddev);
}

Dataset make_dataset(const LabelledImages& split, const RawSplits& raw) {
  Dataset data;
  data.inputs = split.images;
  data.labels = split.labels;
  data.num_classes = raw.num_classes;
  data.class_names = raw.class_names;
  return data;
}

}  // namespace

std::vector<int64_t> Dataset::sample_shape() const {
  if (!inputs.defined()) return {};
  return inputs.sizes().slice(1).vec();
}

std::vector<std::string> dataset_names() {
  return {"fashion-mnist", "mnist", "cifar10", "csv", "synthetic", "hdf5", "image-folder", "fortunes", "text"};
}

std::string default_data_dir(const std::string& dataset) {
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (dataset == "mnist") return "/usr/share/datasets/mnist";
  if (dataset == "cifar10") return "data/cifar-10-batches-bin";
  if (dataset == "csv") return "data/csv";
  if (dataset == "fortunes") return "/usr/share/games/fortunes";
  if (dataset == "text") return "data/text";
  if (dataset == "image-folder") return "data/images";
  return "";  // synthetic reads nothing
}

DatasetSplits load_dataset(const DataOptions& options) {
  if (options.max_train_samples < 0 || options.max_test_samples < 0) {
    throw UsageError("max train/test samples must be >= 0 (0 keeps all)");
  }
  const std::string& name = options.dataset;
  const std::string dir = options.data_dir.empty() ? default_data_dir(name) : options.data_dir;
  RawSplits raw;
  if (name == "fashion-mnist" || name == "mnist") {
    raw = read_idx_dataset(name, dir);
  } else if (name == "cifar10") {
    raw = read_cifar10_dataset(dir);
  } else if (name == "csv") {
    raw = read_csv_dataset(dir);
  } else if (name == "synthetic") {
    raw = make_synthetic_dataset(options);
  } else if (name == "hdf5") {
    LabelledSplits splits = read_hdf5_dataset(options.data_file, options.hdf5_keys);
    raw.train = std::move(splits.train);
    raw.test = std::move(splits.test);
    raw.num_classes = 1 + std::max(raw.train.labels.numel() ? raw.train.labels.max().item<int64_t>() : 0,
                                   raw.test.labels.numel() ? raw.test.labels.max().item<int64_t>() : 0);
  } else if (name == "image-folder") {
    ImageFolderSplits images = read_image_folder(dir, options.image_size, options.image_channels, options.seed);
    raw.train = std::move(images.train);
    raw.test = std::move(images.test);
    raw.class_names = std::move(images.class_names);
    raw.num_classes = static_cast<int64_t>(raw.class_names.size());
  } else if (name == "fortunes") {
    raw = from_text(read_fortunes(dir, options.seq_len, options.seed));
  } else if (name == "text") {
    raw = read_text_dataset(dir, options.seq_len);
  } else {
    throw UsageError("unknown dataset '" + name + "' (known: " + join(dataset_names(), ", ") + ")");
  }
  const std::string source = name == "synthetic" ? "synthetic (seed " + std::to_string(options.seed) + ")"
                             : name == "hdf5"    ? "hdf5 from " + options.data_file
                                                 : name + " from " + dir;

  keep_first(raw.train, options.max_train_samples);
  keep_first(raw.test, options.max_test_samples);
  if (raw.train.labels.size(0) == 0) throw Error(source + ": the training split is empty");
  // An empty test split would record accuracy 0 as a result.
  if (raw.test.labels.size(0) == 0) throw Error(source + ": the test split is empty; splitpipe measures every epoch on it");
  const auto train_shape = raw.train.images.sizes().slice(1).vec(), test_shape = raw.test.images.sizes().slice(1).vec();
  if (train_shape != test_shape)
    throw FormatError(source + ": training samples are " + join_shape(train_shape) + " but test samples are " +
                      join_shape(test_shape) + "; both splits must have the same sample shape");
  // The confusion matrix alone is classes^2 numbers per epoch: a stray large label would ask
  // for gigabytes.
  if (raw.num_classes > kMaxClasses)
    throw FormatError(source + ": the labels go up to " + std::to_string(raw.num_classes - 1) + ", which means " +
                      std::to_string(raw.num_classes) + " classes; splitpipe accepts at most " +
                      std::to_string(kMaxClasses) + " (labels 0 to " + std::to_string(kMaxClasses - 1) +
                      "): number the classes 0..C-1");
  raw.train.images = to_float(raw.train.images);
  raw.test.images = to_float(raw.test.images);
  if (!raw.tokens) normalise_with_train_stats(raw.train.images, raw.test.images);

  DatasetSplits splits{make_dataset(raw.train, raw), make_dataset(raw.test, raw), ""};
  splits.description = source + ": " + std::to_string(splits.train.size()) + " train, " +
                       std::to_string(splits.test.size()) + " test, " + join_shape(splits.train.sample_shape()) +
                       ", " + std::to_string(raw.num_classes) + " classes" + (raw.note.empty() ? "" : "; " + raw.note);
  return splits;
}

}  // namespace splitpipe
