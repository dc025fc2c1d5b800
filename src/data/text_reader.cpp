// Text classification data as byte-level token sequences: Debian's fortunes (topic
// classification) and users' own "label<TAB>text" files. A token is a byte of the UTF-8 text
// (1..255); 0 pads a short text; a long one is cut at the sequence length.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"
#include "synthetic.hpp"

namespace splitpipe {
namespace {

namespace fs = std::filesystem;

// Streams of derive_seed for the fortunes split (after the synthetic ones).
constexpr uint64_t kSplitStream = 3, kTrainOrderStream = 4, kTestOrderStream = 5;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Fortune files separate their entries with lines holding only '%'.
std::vector<std::string> fortune_entries(const std::string& text) {
  std::vector<std::string> entries;
  std::string entry, line;
  std::istringstream in(text);
  auto flush = [&] {
    while (!entry.empty() && (entry.back() == '\n' || entry.back() == ' ')) entry.pop_back();
    if (!entry.empty()) entries.push_back(entry);
    entry.clear();
  };
  while (std::getline(in, line)) {
    if (line == "%") {
      flush();
    } else {
      entry += line + '\n';
    }
  }
  flush();
  return entries;
}

// A random permutation of [0, n) from `seed`.
at::Tensor permutation(int64_t n, uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
}

LabelledImages take(const LabelledImages& all, const at::Tensor& rows) {
  return {all.images.index_select(0, rows), all.labels.index_select(0, rows)};
}

}  // namespace

at::Tensor byte_tokens(const std::vector<std::string>& texts, int64_t length) {
  if (length < 1) throw UsageError("--seq-len " + std::to_string(length) + ": a sequence needs at least one token");
  at::Tensor tokens = at::zeros({static_cast<int64_t>(texts.size()), length}, at::kLong);
  auto cells = tokens.accessor<int64_t, 2>();
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string& text = texts[i];
    const int64_t n = std::min<int64_t>(length, static_cast<int64_t>(text.size()));
    for (int64_t j = 0; j < n; ++j) cells[static_cast<int64_t>(i)][j] = static_cast<unsigned char>(text[j]);
  }
  return tokens;
}

TextSplits read_fortunes(const std::string& dir, int64_t length, uint64_t seed) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir + ": not a directory; fortunes reads the topic files of Debian's fortunes package "
                "(apt-get install fortunes, into /usr/share/games/fortunes) or of --data-dir");
  std::vector<std::string> topics;
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    const std::string name = item.path().filename().string();
    // The .dat (index) and .u8 (links) files and hidden ones are not topics.
    if (item.is_regular_file() && name.find('.') == std::string::npos) topics.push_back(name);
  }
  std::sort(topics.begin(), topics.end());
  std::vector<std::string> texts, dropped;
  std::vector<int64_t> labels;
  TextSplits out;
  for (const auto& topic : topics) {
    const auto entries = fortune_entries(read_text((fs::path(dir) / topic).string()));
    if (static_cast<int64_t>(entries.size()) < kMinFortunesPerTopic) {
      dropped.push_back(topic + " (" + std::to_string(entries.size()) + ")");
      continue;
    }
    for (const auto& entry : entries) {
      texts.push_back(entry);
      labels.push_back(static_cast<int64_t>(out.class_names.size()));
    }
    out.class_names.push_back(topic);
  }
  if (out.class_names.size() < 2)
    throw FormatError(dir + ": fewer than 2 topic files with at least " + std::to_string(kMinFortunesPerTopic) +
                      " entries (entries are separated by lines holding '%'); is this a fortunes directory?");
  const LabelledImages all{byte_tokens(texts, length), torch::tensor(labels, at::kLong)};

  // Stratified: each topic gives kFortunesTestFraction of its entries to the test split.
  std::vector<int64_t> train_rows, test_rows;
  const at::Tensor order = permutation(static_cast<int64_t>(labels.size()), data_detail::derive_seed(seed, kSplitStream));
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t i = 0; i < order.size(0); ++i) {
    const int64_t row = order[i].item<int64_t>();
    by_class[labels[row]].push_back(row);
  }
  for (const auto& [label, rows] : by_class) {
    const auto test_count = static_cast<size_t>(std::max<double>(1.0, kFortunesTestFraction * rows.size()));
    test_rows.insert(test_rows.end(), rows.begin(), rows.begin() + static_cast<long>(test_count));
    train_rows.insert(train_rows.end(), rows.begin() + static_cast<long>(test_count), rows.end());
  }
  // Topics interleaved, so --max-train-samples keeps every topic.
  auto shuffled = [](std::vector<int64_t> rows, uint64_t stream_seed) {
    const at::Tensor p = permutation(static_cast<int64_t>(rows.size()), stream_seed);
    return torch::tensor(rows, at::kLong).index_select(0, p);
  };
  out.train = take(all, shuffled(train_rows, data_detail::derive_seed(seed, kTrainOrderStream)));
  out.test = take(all, shuffled(test_rows, data_detail::derive_seed(seed, kTestOrderStream)));
  if (!dropped.empty()) {
    std::string list;
    for (const auto& d : dropped) list += (list.empty() ? "" : ", ") + d;
    out.note = "topics with fewer than " + std::to_string(kMinFortunesPerTopic) + " entries dropped: " + list;
  }
  return out;
}

TextSplits read_labelled_text(const std::string& train_path, const std::string& test_path, int64_t length) {
  struct Lines {
    std::vector<std::string> labels, texts;
  };
  auto read = [](const std::string& path) {
    const std::string content = read_text(path);
    Lines lines;
    std::istringstream in(content);
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const size_t tab = line.find('\t');
      if (tab == std::string::npos || tab == 0)
        throw FormatError(path + ": line " + std::to_string(number) +
                          " has no label before a tab (expected one example per line: label, tab, text)");
      lines.labels.push_back(line.substr(0, tab));
      lines.texts.push_back(line.substr(tab + 1));
    }
    if (lines.labels.empty())
      throw FormatError(path + ": no examples (expected one example per line: label, tab, text)");
    return lines;
  };
  const Lines train = read(train_path), test = read(test_path);
  TextSplits out;
  std::map<std::string, int64_t> ids;
  for (const auto& label : train.labels) ids.emplace(label, 0);
  for (auto& [name, id] : ids) {
    id = static_cast<int64_t>(out.class_names.size());
    out.class_names.push_back(name);
  }
  auto encode = [&](const Lines& lines, const std::string& path) {
    std::vector<int64_t> labels;
    for (size_t i = 0; i < lines.labels.size(); ++i) {
      const auto it = ids.find(lines.labels[i]);
      if (it == ids.end())
        throw FormatError(path + ": label '" + lines.labels[i] + "' (example " + std::to_string(i + 1) +
                          ") does not occur in the training file, so no class can predict it");
      labels.push_back(it->second);
    }
    return LabelledImages{byte_tokens(lines.texts, length), torch::tensor(labels, at::kLong)};
  };
  out.train = encode(train, train_path);
  out.test = encode(test, test_path);
  return out;
}

}  // namespace splitpipe
