// Internal: the one way every reader gets a file's bytes and reports what is wrong with them,
// so plain and gzip files behave alike and every message names the file and the format expected.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace splitpipe::data_detail {

// The whole file, inflated when it starts with the gzip magic bytes (1f 8b) whatever its name.
// Throws Error when the file cannot be opened and FormatError when the gzip stream is corrupt or
// truncated; `expected_format` ends those messages so the user knows what the file should be.
std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& expected_format);

// Throws FormatError "<path>: <problem> (expected <expected_format>)".
[[noreturn]] void throw_format_error(const std::string& path, const std::string& problem,
                                     const std::string& expected_format);

}  // namespace splitpipe::data_detail
