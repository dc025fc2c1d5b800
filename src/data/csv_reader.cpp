// CSV of numbers: feature columns, then an integer label; an optional header row.
#include <torch/torch.h>

#include <charconv>
#include <cmath>
#include <string_view>

#include "byte_source.hpp"
#include "splitpipe/data.hpp"

namespace splitpipe {
namespace {

constexpr const char* kCsvFormat =
    "CSV of numbers: feature columns then one integer label column (>= 0), optional header row";

std::string_view trim(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split_cells(std::string_view line) {
  std::vector<std::string_view> cells;
  for (;;) {
    const size_t comma = line.find(',');
    cells.push_back(trim(line.substr(0, comma)));
    if (comma == std::string_view::npos) return cells;
    line.remove_prefix(comma + 1);
  }
}

// from_chars is locale-independent, so "1.5" parses the same whatever LC_NUMERIC says.
// nan and inf are refused: one of them would turn a whole column's normalisation into nan.
std::optional<double> parse_any_number(std::string_view cell) {
  double value = 0;
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (cell.empty() || error != std::errc() || end != cell.data() + cell.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_number(std::string_view cell) {
  const auto value = parse_any_number(cell);
  if (!value || !std::isfinite(*value)) return std::nullopt;
  return value;
}

// A cell as an error message may quote it: binary junk becomes '?', and long cells are cut.
std::string printable(std::string_view cell) {
  std::string text;
  for (const char c : cell.substr(0, 40)) text += (c >= 0x20 && c < 0x7f) ? c : '?';
  return cell.size() > 40 ? text + "..." : text;
}

// A header names its columns: no cell of it reads as a number (nan and inf included), so a
// first data row with a nan in it is an error, not a header to skip.
bool is_header(const std::vector<std::string_view>& cells) {
  for (const auto cell : cells)
    if (parse_any_number(cell)) return false;
  return true;
}

}  // namespace

LabelledImages read_csv(const std::string& path) {
  using data_detail::throw_format_error;
  const std::vector<uint8_t> bytes = data_detail::read_file_bytes(path, kCsvFormat);
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // Spreadsheet exports often start with a UTF-8 byte order mark; it is not part of the data.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  std::vector<float> features;
  std::vector<int64_t> labels;
  size_t columns = 0;       // set by the first data row
  size_t columns_line = 0;  // the line that set it, for the ragged-row message
  bool first_row = true;
  for (size_t line_number = 1; !text.empty(); ++line_number) {
    const size_t newline = text.find('\n');
    const std::string_view line = trim(text.substr(0, newline));
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.empty()) continue;

    const std::vector<std::string_view> cells = split_cells(line);
    std::vector<double> values;
    values.reserve(cells.size());
    std::optional<size_t> bad_cell;
    for (size_t c = 0; c < cells.size() && !bad_cell; ++c) {
      if (const auto value = parse_number(cells[c])) {
        values.push_back(*value);
      } else {
        bad_cell = c;
      }
    }
    const std::string where = "line " + std::to_string(line_number);
    if (bad_cell) {
      if (first_row && is_header(cells)) {
        first_row = false;
        continue;
      }
      throw_format_error(path,
                         where + ", column " + std::to_string(*bad_cell + 1) + ": '" +
                             printable(cells[*bad_cell]) + "' is not a finite number",
                         kCsvFormat);
    }
    first_row = false;
    if (columns == 0) {
      if (values.size() < 2) {
        throw_format_error(path, where + " has " + std::to_string(values.size()) +
                                     " column, need at least one feature and the label", kCsvFormat);
      }
      columns = values.size();
      columns_line = line_number;
    } else if (values.size() != columns) {
      throw_format_error(path,
                         where + " has " + std::to_string(values.size()) + " columns, line " +
                             std::to_string(columns_line) + " has " + std::to_string(columns),
                         kCsvFormat);
    }
    const double label = values.back();
    if (!(label >= 0) || label != std::floor(label) || label > 1e9) {
      throw_format_error(path, where + ": label '" + std::string(cells.back()) + "' is not a non-negative integer",
                         kCsvFormat);
    }
    labels.push_back(static_cast<int64_t>(label));
    features.insert(features.end(), values.begin(), values.end() - 1);
  }
  if (labels.empty()) throw_format_error(path, "no data rows", kCsvFormat);

  const auto rows = static_cast<int64_t>(labels.size());
  const auto feature_columns = static_cast<int64_t>(columns - 1);
  return {torch::tensor(features).reshape({rows, feature_columns}), torch::tensor(labels)};
}

}  // namespace splitpipe
