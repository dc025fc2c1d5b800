// The run file's schema, defined once: every attribute, dataset and table column with its type,
// unit and one-line description. The writer labels each dataset from it (attributes `units` and
// `description`, and per-column ones for counter tables), stores the whole table as /schema,
// and `splitpipe --print-schema` prints it as the README's schema section (a test keeps the two
// equal).
#pragma once
#include <string>
#include <vector>

namespace splitpipe {

constexpr int kRunFileFormatVersion = 2;

struct SchemaEntry {
  // "/epochs/train_loss"; "<r>", "<c>" stand for a rank or client number, "<option>" for an option
  // name; "/@name" is an attribute of "/", "/options/@<option>" one of "/options"; "table:column"
  // is a column of a 2-D or 3-D counter table.
  std::string path;
  std::string kind;  // attribute | dataset | column
  std::string type;  // e.g. "float64 [epoch]", "int64 [epoch, C, C]", "string"
  std::string units;  // s, B, 1, count, samples/s, bit/s, index, text
  std::string description;
};

const std::vector<SchemaEntry>& run_schema();

// The entry whose path pattern matches `path` (a concrete name such as "/ranks/rank3/counters"),
// or nullptr.
const SchemaEntry* find_schema_entry(const std::string& path);

// The column names of a counter table ("/ranks/rank<r>/counters"), in the order its last axis
// holds them.
std::vector<std::string> schema_columns(const std::string& table_pattern);

// The table as Markdown, one row per entry (the README's "The run file" section).
std::string schema_markdown();

}  // namespace splitpipe
