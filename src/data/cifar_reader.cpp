// CIFAR-10 binary version: fixed 3073-byte records, a label byte then 32x32 R, G and B planes.
#include <torch/torch.h>

#include <cstring>

#include "byte_source.hpp"
#include "splitpipe/data.hpp"

namespace splitpipe {
namespace {

constexpr const char* kCifarFormat =
    "CIFAR-10 binary version: records of 1 label byte (0-9) + 3072 pixel bytes, see "
    "https://www.cs.toronto.edu/~kriz/cifar.html";
constexpr int64_t kChannels = 3, kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;
constexpr int64_t kRecordBytes = 1 + kPixelBytes;
constexpr uint8_t kNumClasses = 10;

}  // namespace

LabelledImages read_cifar10_batches(const std::vector<std::string>& paths) {
  using data_detail::throw_format_error;
  std::vector<at::Tensor> images;
  std::vector<at::Tensor> labels;
  for (const std::string& path : paths) {
    const std::vector<uint8_t> bytes = data_detail::read_file_bytes(path, kCifarFormat);
    const auto size = static_cast<int64_t>(bytes.size());
    if (size == 0 || size % kRecordBytes != 0) {
      throw_format_error(path,
                         "size " + std::to_string(size) + " bytes is not a positive multiple of the " +
                             std::to_string(kRecordBytes) + "-byte record",
                         kCifarFormat);
    }
    const int64_t records = size / kRecordBytes;
    at::Tensor file_images = torch::empty({records, kChannels, kSide, kSide}, torch::kUInt8);
    at::Tensor file_labels = torch::empty({records}, torch::kLong);
    uint8_t* image_out = file_images.data_ptr<uint8_t>();
    int64_t* label_out = file_labels.data_ptr<int64_t>();
    for (int64_t r = 0; r < records; ++r) {
      const uint8_t* record = bytes.data() + r * kRecordBytes;
      if (record[0] >= kNumClasses) {
        throw_format_error(path,
                           "record " + std::to_string(r) + " has label " + std::to_string(record[0]) +
                               ", outside 0-9",
                           kCifarFormat);
      }
      label_out[r] = record[0];
      std::memcpy(image_out + r * kPixelBytes, record + 1, kPixelBytes);
    }
    images.push_back(std::move(file_images));
    labels.push_back(std::move(file_labels));
  }
  if (paths.empty()) {
    return {torch::empty({0, kChannels, kSide, kSide}, torch::kUInt8), torch::empty({0}, torch::kLong)};
  }
  return {torch::cat(images), torch::cat(labels)};
}

}  // namespace splitpipe
