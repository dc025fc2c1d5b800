// `--dataset image-folder`: one subfolder per class of PNG and JPEG files, decoded with libpng and
// libjpeg (Debian's libpng-dev, libjpeg-dev), resized to --image-size and kept as 8-bit pixels,
// so they are scaled and normalised like the IDX and CIFAR readers' images.
//
// DIR/train/<class>/ and DIR/test/<class>/ when DIR has both, else DIR/<class>/ split by a seeded
// stratified draw (20 % of each class to the test split). Samples are ordered by file name across
// the class folders, so files numbered in a dataset's original order keep that order.
#include <jpeglib.h>
#include <png.h>
#include <torch/torch.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"
#include "synthetic.hpp"

namespace splitpipe {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kImageSplitStream = 6;

struct Decoded {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;  // height x width x channels
};

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

Decoded decode_png(const std::string& path, int channels) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    throw FormatError(path + ": not a readable PNG (" + image.message + ")");
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Decoded out{image.height, image.width, std::vector<uint8_t>(PNG_IMAGE_SIZE(image))};
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    throw FormatError(path + ": not a readable PNG (" + why + ")");
  }
  return out;
}

// libjpeg reports errors through a callback; it jumps back here instead of exiting the process.
struct JpegErrors {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

Decoded decode_jpeg(const std::string& path, int channels) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(path + ": cannot open: " + std::strerror(errno));
  jpeg_decompress_struct info{};
  JpegErrors errors{};
  info.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = [](j_common_ptr common) {
    auto* e = reinterpret_cast<JpegErrors*>(common->err);
    e->manager.format_message(common, e->message);
    std::longjmp(e->jump, 1);
  };
  Decoded out;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    throw FormatError(path + ": not a readable JPEG (" + errors.message + ")");
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file.get());
  jpeg_read_header(&info, TRUE);
  info.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  out.height = info.output_height;
  out.width = info.output_width;
  const int64_t stride = out.width * channels;
  out.pixels.resize(static_cast<size_t>(out.height * stride));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.pixels.data() + info.output_scanline * stride;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return out;
}

// [channels, size, size] uint8; the original pixels when they already have that size.
at::Tensor to_image(const Decoded& decoded, int channels, int64_t size, const std::string& path,
                    int64_t& first_height, int64_t& first_width, const std::string& first_path) {
  at::Tensor image = torch::from_blob(const_cast<uint8_t*>(decoded.pixels.data()),
                                      {decoded.height, decoded.width, channels}, at::kByte)
                         .permute({2, 0, 1})
                         .clone();
  if (size == 0) {  // no resizing: every file must have the first one's size
    if (first_height == 0) {
      first_height = decoded.height;
      first_width = decoded.width;
    } else if (decoded.height != first_height || decoded.width != first_width) {
      throw FormatError(path + " is " + std::to_string(decoded.width) + "x" + std::to_string(decoded.height) +
                        " pixels but " + first_path + " is " + std::to_string(first_width) + "x" +
                        std::to_string(first_height) + "; pass --image-size N to resize every image to NxN");
    }
    return image;
  }
  if (decoded.height == size && decoded.width == size) return image;
  namespace F = torch::nn::functional;
  const at::Tensor resized = F::interpolate(image.unsqueeze(0).to(at::kFloat),
                                            F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{size, size})
                                                .mode(torch::kBilinear)
                                                .align_corners(false)
                                                .antialias(true));
  return resized.squeeze(0).round().clamp(0, 255).to(at::kByte);
}

struct FileList {
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};

// The image files of each class folder of `dir`, ordered by file name across the classes.
FileList list_images(const fs::path& dir, const std::vector<std::string>& classes) {
  std::vector<std::tuple<std::string, std::string, int64_t>> files;  // name, path, label
  for (size_t c = 0; c < classes.size(); ++c) {
    const fs::path folder = dir / classes[c];
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) continue;
    for (const auto& item : fs::directory_iterator(folder)) {
      const std::string ext = lower_extension(item.path());
      if (item.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg"))
        files.emplace_back(item.path().filename().string(), item.path().string(), static_cast<int64_t>(c));
    }
  }
  std::sort(files.begin(), files.end());
  FileList list;
  for (const auto& [name, path, label] : files) {
    list.paths.push_back(path);
    list.labels.push_back(label);
  }
  return list;
}

LabelledImages decode_all(const FileList& list, int channels, int64_t size, int64_t& height, int64_t& width,
                          std::string& first_path) {
  std::vector<at::Tensor> images;
  for (const auto& path : list.paths) {
    const std::string ext = lower_extension(path);
    const Decoded decoded = ext == ".png" ? decode_png(path, channels) : decode_jpeg(path, channels);
    if (first_path.empty()) first_path = path;
    images.push_back(to_image(decoded, channels, size, path, height, width, first_path));
  }
  return {images.empty() ? at::empty({0, channels, std::max<int64_t>(size, 1), std::max<int64_t>(size, 1)}, at::kByte)
                         : at::stack(images),
          torch::tensor(list.labels, at::kLong)};
}

std::vector<std::string> class_folders(const fs::path& dir) {
  std::vector<std::string> classes;
  for (const auto& item : fs::directory_iterator(dir))
    if (item.is_directory()) classes.push_back(item.path().filename().string());
  std::sort(classes.begin(), classes.end());
  return classes;
}

}  // namespace

ImageFolderSplits read_image_folder(const std::string& dir, int64_t size, int channels, uint64_t seed) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir + ": not a directory; image-folder reads one subfolder of PNG/JPEG files per class "
                "(or train/ and test/ holding such subfolders) from --data-dir");
  if (channels != 1 && channels != 3)
    throw UsageError("--image-channels " + std::to_string(channels) + ": 1 (grayscale) or 3 (RGB)");
  const bool presplit = fs::is_directory(fs::path(dir) / "train", ec) && fs::is_directory(fs::path(dir) / "test", ec);
  const fs::path train_dir = presplit ? fs::path(dir) / "train" : fs::path(dir);
  ImageFolderSplits out;
  out.class_names = class_folders(train_dir);
  if (out.class_names.size() < 2)
    throw FormatError(train_dir.string() + ": " + std::to_string(out.class_names.size()) +
                      " class folder(s); image-folder needs one subfolder per class, at least 2");
  int64_t height = 0, width = 0;
  std::string first_path;
  const FileList train_files = list_images(train_dir, out.class_names);
  if (train_files.paths.empty()) throw FormatError(train_dir.string() + ": no .png, .jpg or .jpeg files in the class folders");
  LabelledImages all = decode_all(train_files, channels, size, height, width, first_path);
  if (presplit) {
    for (const auto& name : class_folders(fs::path(dir) / "test"))
      if (std::find(out.class_names.begin(), out.class_names.end(), name) == out.class_names.end())
        throw FormatError((fs::path(dir) / "test" / name).string() + ": class '" + name +
                          "' has no folder in train/, so no class can predict it");
    out.train = std::move(all);
    out.test = decode_all(list_images(fs::path(dir) / "test", out.class_names), channels, size, height, width, first_path);
    return out;
  }
  // One folder per class: a seeded stratified split, file order kept within each split.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(data_detail::derive_seed(seed, kImageSplitStream));
  const at::Tensor draw = at::rand({all.labels.size(0)}, generator);
  std::map<int64_t, std::vector<std::pair<float, int64_t>>> by_class;
  for (int64_t i = 0; i < all.labels.size(0); ++i) by_class[all.labels[i].item<int64_t>()].push_back({draw[i].item<float>(), i});
  std::vector<int64_t> test_rows;
  for (auto& [label, rows] : by_class) {
    std::sort(rows.begin(), rows.end());
    const auto count = static_cast<size_t>(std::max<double>(1.0, kImageFolderTestFraction * rows.size()));
    for (size_t k = 0; k < count && k < rows.size(); ++k) test_rows.push_back(rows[k].second);
  }
  std::sort(test_rows.begin(), test_rows.end());
  at::Tensor is_test = at::zeros({all.labels.size(0)}, at::kBool);
  for (int64_t row : test_rows) is_test[row] = true;
  const at::Tensor train_rows = (~is_test).nonzero().squeeze(1), test_index = is_test.nonzero().squeeze(1);
  out.train = {all.images.index_select(0, train_rows), all.labels.index_select(0, train_rows)};
  out.test = {all.images.index_select(0, test_index), all.labels.index_select(0, test_index)};
  return out;
}

}  // namespace splitpipe
