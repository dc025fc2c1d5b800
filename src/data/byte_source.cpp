// Reads a whole file into memory, inflating gzip with zlib so datasets can stay compressed on disk.
#include "byte_source.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "splitpipe/error.hpp"

namespace splitpipe::data_detail {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FileHandle = std::unique_ptr<std::FILE, FileCloser>;

struct InflateEnder {
  void operator()(z_stream* stream) const { inflateEnd(stream); }
};

bool has_gzip_magic(const uint8_t* bytes, size_t size) {
  return size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

std::vector<uint8_t> read_raw(const std::string& path) {
  const FileHandle file(std::fopen(path.c_str(), "rb"));
  if (!file) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(1 << 20);
  size_t got = 0;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), file.get())) > 0) {
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
  }
  if (std::ferror(file.get())) throw Error(path + ": read failed: " + std::strerror(errno));
  return bytes;
}

// The last four bytes of a gzip member hold its uncompressed size modulo 2^32: a good first
// size for the output buffer. A truncated file ends in arbitrary bytes instead, so the guess is
// capped at a generous compression ratio; a larger output still fits, by growing the buffer.
size_t guess_inflated_size(const std::vector<uint8_t>& compressed) {
  constexpr size_t kMaxRatio = 16;
  if (compressed.size() < 4) return 0;
  const uint8_t* tail = compressed.data() + compressed.size() - 4;
  const uint32_t size = uint32_t{tail[0]} | uint32_t{tail[1]} << 8 | uint32_t{tail[2]} << 16 |
                        uint32_t{tail[3]} << 24;
  return std::min<size_t>(size, compressed.size() * kMaxRatio);
}

// Inflates every member of a gzip file (gzip allows several concatenated members).
std::vector<uint8_t> inflate_gzip(const std::string& path, const std::vector<uint8_t>& compressed,
                                  const std::string& expected_format) {
  const std::string gzip_format = "gzip-compressed " + expected_format;
  z_stream stream{};
  // 16 + MAX_WBITS: accept the gzip wrapper only, and check its CRC and length trailer.
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw Error(path + ": zlib inflateInit2 failed");
  const std::unique_ptr<z_stream, InflateEnder> stream_guard(&stream);

  std::vector<uint8_t> out(std::max<size_t>(guess_inflated_size(compressed), 1 << 16));
  size_t produced = 0;
  size_t consumed = 0;  // bytes of `compressed` handed to zlib so far
  // zlib counts in uInt: feed and drain in pieces for files larger than 4 GiB.
  constexpr size_t kMaxPiece = std::numeric_limits<uInt>::max();
  for (;;) {
    if (stream.avail_in == 0 && consumed < compressed.size()) {
      const size_t piece = std::min(kMaxPiece, compressed.size() - consumed);
      stream.next_in = const_cast<Bytef*>(compressed.data() + consumed);  // zlib API is not const
      stream.avail_in = static_cast<uInt>(piece);
      consumed += piece;
    }
    if (produced == out.size()) out.resize(out.size() * 2);
    const size_t room = std::min(kMaxPiece, out.size() - produced);
    stream.next_out = out.data() + produced;
    stream.avail_out = static_cast<uInt>(room);

    const int rc = inflate(&stream, Z_NO_FLUSH);
    produced += room - stream.avail_out;
    const size_t unread = stream.avail_in + (compressed.size() - consumed);
    if (rc == Z_STREAM_END) {
      if (unread == 0) break;
      const uint8_t* next = compressed.data() + (compressed.size() - unread);
      if (!has_gzip_magic(next, unread)) {
        throw_format_error(path, std::to_string(unread) + " bytes of trailing garbage after the gzip stream",
                           gzip_format);
      }
      inflateReset(&stream);
      continue;
    }
    if (rc == Z_BUF_ERROR && unread == 0) {
      throw_format_error(path,
                         "truncated gzip stream: input ended after " + std::to_string(compressed.size()) +
                             " compressed bytes (" + std::to_string(produced) + " inflated)",
                         gzip_format);
    }
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      throw_format_error(path, std::string("corrupt gzip stream: ") + (stream.msg ? stream.msg : "inflate failed"),
                         gzip_format);
    }
  }
  out.resize(produced);
  return out;
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& expected_format) {
  std::vector<uint8_t> raw = read_raw(path);
  if (!has_gzip_magic(raw.data(), raw.size())) return raw;
  return inflate_gzip(path, raw, expected_format);
}

void throw_format_error(const std::string& path, const std::string& problem, const std::string& expected_format) {
  throw FormatError(path + ": " + problem + " (expected " + expected_format + ")");
}

}  // namespace splitpipe::data_detail
