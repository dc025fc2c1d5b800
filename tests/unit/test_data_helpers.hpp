// Shared by the test_data_*.cpp files: a per-test temporary directory, writers for the small
// plain and gzip files the reader tests build, and a check on error messages.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "splitpipe/error.hpp"

namespace splitpipe_test {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("splitpipe_test_data_" + std::to_string(getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

inline void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_text(const std::string& path, const std::string& text) {
  write_file(path, Bytes(text.begin(), text.end()));
}

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};

inline void write_gzip(const std::string& path, const Bytes& bytes) {
  const std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "wb"));
  ASSERT_TRUE(file) << path;
  ASSERT_EQ(gzwrite(file.get(), bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
}

// An IDX file: 00 00 dtype ndim, big-endian dims, then `data`.
inline Bytes idx_bytes(const std::vector<uint32_t>& dims, const Bytes& data, uint8_t dtype = 0x08) {
  Bytes bytes{0, 0, dtype, static_cast<uint8_t>(dims.size())};
  for (const uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(dim >> shift));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

inline Bytes counting_bytes(size_t n, uint8_t start = 0) {
  Bytes bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(start + i);
  return bytes;
}

// The message of the splitpipe::Error that `action` throws ("" and a failure when none).
inline std::string error_message(const std::function<void()>& action) {
  try {
    action();
  } catch (const splitpipe::Error& error) {
    return error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "threw a non-splitpipe exception: " << error.what();
    return "";
  }
  ADD_FAILURE() << "no splitpipe::Error thrown";
  return "";
}

#define EXPECT_CONTAINS(text, needle) \
  EXPECT_NE(std::string(text).find(needle), std::string::npos) << "'" << (text) << "' lacks '" << (needle) << "'"

}  // namespace splitpipe_test
