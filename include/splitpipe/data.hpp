// Datasets held in memory as tensors, and the seeded order in which training visits them.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace splitpipe {

struct Dataset {
  at::Tensor inputs;  // float32 [N, ...sample_shape], already normalised
  at::Tensor labels;  // int64 [N], values in [0, num_classes)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // may be empty

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  std::vector<int64_t> sample_shape() const;  // inputs.sizes() without the first dim
};

struct DatasetSplits {
  Dataset train;
  Dataset test;
  std::string description;  // one line: name, source directory, sizes
};

struct DataOptions {
  std::string dataset = "fashion-mnist";  // one of dataset_names()
  std::string data_dir;                   // empty: the dataset's default directory
  int64_t max_train_samples = 0;          // 0: all
  int64_t max_test_samples = 0;           // 0: all
  uint64_t seed = 1;
  // synthetic only
  std::vector<int64_t> synthetic_shape{1, 28, 28};
  int64_t synthetic_classes = 10;
  int64_t synthetic_train = 2048;
  int64_t synthetic_test = 512;
  // hdf5: the file and its four datasets (train samples, train labels, test samples, test labels)
  std::string data_file;
  std::vector<std::string> hdf5_keys{"train/x", "train/y", "test/x", "test/y"};
  // image-folder: side of the square the images are resized to (0: keep), 1 or 3 channels
  int64_t image_size = 0;
  int image_channels = 1;
  // text datasets (fortunes, text)
  int64_t seq_len = 128;  // tokens per example: longer texts are cut, shorter ones padded
};

// fashion-mnist, mnist, cifar10, csv, synthetic, fortunes (Debian's quotations by topic), text.
std::vector<std::string> dataset_names();

// Default directory of each dataset (Debian's dataset-fashion-mnist for fashion-mnist).
std::string default_data_dir(const std::string& dataset);

// Loads and normalises both splits. Throws splitpipe::Error naming the file and the
// expected format when something is missing or corrupt.
DatasetSplits load_dataset(const DataOptions& options);

// --- Readers (exposed for tests and tools) ---

// IDX file (MNIST layout), plain or gzip (detected by magic bytes, not by name).
// Returns uint8 tensor with the dims from the header.
at::Tensor read_idx(const std::string& path);

// CIFAR-10 binary batches: each record is 1 label byte + 3072 pixel bytes.
// Returns {uint8 images [N,3,32,32], int64 labels [N]}.
struct LabelledImages {
  at::Tensor images;
  at::Tensor labels;
};
LabelledImages read_cifar10_batches(const std::vector<std::string>& paths);

// Byte-level tokens of each text, int64 [N, length]: byte values 1..255, 0-padded, cut at length.
at::Tensor byte_tokens(const std::vector<std::string>& texts, int64_t length);

// Text classification splits (images = tokens [N, length]) with their class names.
struct TextSplits {
  LabelledImages train, test;
  std::vector<std::string> class_names;
  std::string note;  // what the reader left out, for the data description
};

// Debian's fortunes as topic classification: every topic file (no '.' in its name) of `dir`
// with at least kMinFortunesPerTopic entries (separated by lines holding '%') is a class; the
// others are dropped and named in `note`. Each topic gives kFortunesTestFraction of its
// entries, drawn from `seed`, to the test split.
constexpr int64_t kMinFortunesPerTopic = 100;
constexpr double kFortunesTestFraction = 0.2;
TextSplits read_fortunes(const std::string& dir, int64_t length, uint64_t seed);

// Both splits of a labelled dataset as read (before normalisation).
struct LabelledSplits {
  LabelledImages train, test;
};

// `--dataset hdf5`: the four datasets `keys` (train samples, train labels, test samples, test
// labels) of the HDF5 file `path`; samples of any numeric type become float32, labels must be
// integers >= 0.
LabelledSplits read_hdf5_dataset(const std::string& path, const std::vector<std::string>& keys);

// `--dataset image-folder`: PNG/JPEG files, one subfolder per class, in DIR/train and DIR/test
// or, without those, in DIR (then kImageFolderTestFraction of each class, drawn from `seed`,
// is the test split). Images become uint8 [N, channels, size, size] (size 0: as stored, every
// file the same size); samples are ordered by file name across the class folders.
constexpr double kImageFolderTestFraction = 0.2;
struct ImageFolderSplits {
  LabelledImages train, test;
  std::vector<std::string> class_names;
};
ImageFolderSplits read_image_folder(const std::string& dir, int64_t size, int channels, uint64_t seed);

// Users' text: one example per line, "label<TAB>text"; the classes are the training file's
// labels in sorted order.
TextSplits read_labelled_text(const std::string& train_path, const std::string& test_path, int64_t length);

// CSV of numbers: feature columns then one integer label column; an optional header row
// (a first row that does not parse as numbers) is skipped. Returns {float32 [N,F], int64 [N]}.
LabelledImages read_csv(const std::string& path);

// Seeded synthetic classification data that a small model can learn (class prototypes + noise).
Dataset make_synthetic(const std::vector<int64_t>& sample_shape, int64_t num_classes, int64_t samples,
                       uint64_t seed);

// --- Epoch order ---

// Visits [0, n) in batches; the order is a permutation drawn from (seed, epoch), so every
// run with the same seed sees the same batches, and a resume can restart at any epoch.
class BatchOrder {
 public:
  BatchOrder(int64_t num_samples, int64_t batch_size, bool shuffle, uint64_t seed);
  void start_epoch(int64_t epoch);  // epoch counts from 0
  int64_t num_batches() const;      // the last batch may be smaller
  int64_t batch_length(int64_t batch) const;
  at::Tensor batch_indices(int64_t batch) const;  // int64

 private:
  int64_t num_samples_, batch_size_;
  bool shuffle_;
  uint64_t seed_;
  at::Tensor order_;
};

// --- Shards of the training set, one per edge client ---

struct ShardSpec {
  std::string kind = "iid";  // iid | label-skew
  double alpha = 0;          // label-skew: Dirichlet concentration (small: few labels per client)
};

// Splits [0, labels.size(0)) into `clients` disjoint shards that together cover every index,
// each shard in ascending index order. iid: one seeded permutation cut into sizes that differ
// by at most one. label-skew: for every label, proportions drawn from Dirichlet(alpha) over the
// clients share out that label's samples. Throws Error naming the client whose shard holds
// fewer than `min_samples` samples (less than one mini-batch).
std::vector<at::Tensor> make_shards(const at::Tensor& labels, int64_t num_classes, int clients,
                                    const ShardSpec& spec, uint64_t seed, int64_t min_samples);

// Random crop (pad 4) and horizontal flip for CIFAR-style images [B,C,H,W], drawn from gen_seed.
at::Tensor augment_crop_flip(const at::Tensor& images, uint64_t gen_seed);

}  // namespace splitpipe
