// The file readers on small files written here, plain and gzip, well-formed and broken.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <random>

#include "splitpipe/data.hpp"
#include "test_data_helpers.hpp"

namespace {

using namespace splitpipe_test;
using splitpipe::read_cifar10_batches;
using splitpipe::read_csv;
using splitpipe::read_idx;

class IdxReaderTest : public TempDirTest {};

TEST_F(IdxReaderTest, ReadsPlainImagesWithHeaderDims) {
  write_file(path("images"), idx_bytes({3, 2, 4}, counting_bytes(24)));
  const at::Tensor images = read_idx(path("images"));
  EXPECT_EQ(images.scalar_type(), at::kByte);
  EXPECT_EQ(images.sizes().vec(), (std::vector<int64_t>{3, 2, 4}));
  EXPECT_EQ(images[0][0][0].item<int>(), 0);
  EXPECT_EQ(images[1][0][3].item<int>(), 11);  // row-major: 1*8 + 0*4 + 3
  EXPECT_EQ(images[2][1][3].item<int>(), 23);
}

TEST_F(IdxReaderTest, ReadsGzipByMagicBytesWhateverTheName) {
  const Bytes labels = {3, 1, 4, 1, 5, 9, 2, 6};
  write_gzip(path("labels.gz"), idx_bytes({8}, labels));
  write_gzip(path("labels-without-suffix"), idx_bytes({8}, labels));
  for (const std::string name : {"labels.gz", "labels-without-suffix"}) {
    const at::Tensor read = read_idx(path(name));
    ASSERT_EQ(read.sizes().vec(), std::vector<int64_t>{8}) << name;
    for (size_t i = 0; i < labels.size(); ++i) EXPECT_EQ(read[static_cast<int64_t>(i)].item<int>(), labels[i]);
  }
}

TEST_F(IdxReaderTest, ReadsLargeGzipSpanningManyInflateRounds) {
  // Incompressible data bigger than the first output guess is capped at: exercises buffer growth.
  std::mt19937 random(7);
  Bytes data(300 * 1000);
  for (auto& byte : data) byte = static_cast<uint8_t>(random());
  write_gzip(path("big.gz"), idx_bytes({300, 1000}, data));
  const at::Tensor read = read_idx(path("big.gz"));
  ASSERT_EQ(read.sizes().vec(), (std::vector<int64_t>{300, 1000}));
  EXPECT_TRUE(read.flatten().equal(at::tensor(std::vector<int64_t>(data.begin(), data.end())).to(at::kByte)));
}

TEST_F(IdxReaderTest, BadMagicNamesFileAndFormat) {
  write_file(path("not-idx"), Bytes{0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 7});
  const std::string message = error_message([&] { read_idx(path("not-idx")); });
  EXPECT_CONTAINS(message, path("not-idx"));
  EXPECT_CONTAINS(message, "bad magic number 0x12340801");
  EXPECT_CONTAINS(message, "MNIST-style IDX");
}

TEST_F(IdxReaderTest, NonUint8DtypeIsRefused) {
  write_file(path("floats"), idx_bytes({1}, Bytes{0, 0, 0, 0}, 0x0d));
  const std::string message = error_message([&] { read_idx(path("floats")); });
  EXPECT_CONTAINS(message, path("floats"));
  EXPECT_CONTAINS(message, "element type 0x0d");
}

TEST_F(IdxReaderTest, TruncatedDataSaysWhatTheHeaderPromised) {
  Bytes bytes = idx_bytes({10, 28, 28}, counting_bytes(1000));
  write_gzip(path("train-images-idx3-ubyte.gz"), bytes);
  const std::string message = error_message([&] { read_idx(path("train-images-idx3-ubyte.gz")); });
  EXPECT_CONTAINS(message, path("train-images-idx3-ubyte.gz") + ": truncated IDX file: header promises 7840 bytes "
                                                                "of data, found 1000 (expected MNIST-style IDX");
}

TEST_F(IdxReaderTest, TrailingBytesAreAnError) {
  write_file(path("long"), idx_bytes({2}, Bytes{1, 2, 3}));
  const std::string message = error_message([&] { read_idx(path("long")); });
  EXPECT_CONTAINS(message, path("long"));
  EXPECT_CONTAINS(message, "promises 2 bytes of data, found 3");
}

TEST_F(IdxReaderTest, TruncatedHeaderIsAnError) {
  write_file(path("short"), Bytes{0, 0, 8, 3, 0, 0, 0, 2});
  EXPECT_CONTAINS(error_message([&] { read_idx(path("short")); }), path("short") + ": truncated IDX header");
  write_file(path("tiny"), Bytes{0, 0});
  EXPECT_CONTAINS(error_message([&] { read_idx(path("tiny")); }), path("tiny") + ": only 2 bytes");
}

TEST_F(IdxReaderTest, TruncatedGzipStreamIsAnError) {
  std::mt19937 random(3);
  Bytes data(20000);
  for (auto& byte : data) byte = static_cast<uint8_t>(random());
  write_gzip(path("cut.gz"), idx_bytes({20000}, data));
  fs::resize_file(path("cut.gz"), fs::file_size(path("cut.gz")) / 2);
  const std::string message = error_message([&] { read_idx(path("cut.gz")); });
  EXPECT_CONTAINS(message, path("cut.gz") + ": truncated gzip stream");
  EXPECT_CONTAINS(message, "gzip-compressed MNIST-style IDX");
}

TEST_F(IdxReaderTest, GzipMissingOnlyItsTrailerIsTruncated) {
  write_gzip(path("no-trailer.gz"), idx_bytes({4}, Bytes{1, 2, 3, 4}));
  fs::resize_file(path("no-trailer.gz"), fs::file_size(path("no-trailer.gz")) - 4);  // drop ISIZE
  EXPECT_CONTAINS(error_message([&] { read_idx(path("no-trailer.gz")); }),
                  path("no-trailer.gz") + ": truncated gzip stream");
}

TEST_F(IdxReaderTest, CorruptGzipIsAnError) {
  write_gzip(path("corrupt.gz"), idx_bytes({4}, Bytes{1, 2, 3, 4}));
  Bytes bytes(fs::file_size(path("corrupt.gz")));
  std::ifstream(path("corrupt.gz"), std::ios::binary).read(reinterpret_cast<char*>(bytes.data()), bytes.size());
  bytes[bytes.size() - 6] ^= 0xff;  // inside the CRC32 trailer
  write_file(path("corrupt.gz"), bytes);
  EXPECT_CONTAINS(error_message([&] { read_idx(path("corrupt.gz")); }), path("corrupt.gz") + ": corrupt gzip stream");
}

TEST_F(IdxReaderTest, MissingFileIsNamed) {
  const std::string message = error_message([&] { read_idx(path("absent")); });
  EXPECT_CONTAINS(message, path("absent") + ": cannot open");
}

class CifarReaderTest : public TempDirTest {
 protected:
  // Records whose pixel at (c, y, x) is (c * 7 + y * 3 + x + record) mod 256, to check layout.
  static Bytes records(const std::vector<uint8_t>& labels, int first_record) {
    Bytes bytes;
    for (size_t r = 0; r < labels.size(); ++r) {
      bytes.push_back(labels[r]);
      for (int c = 0; c < 3; ++c) {
        for (int y = 0; y < 32; ++y) {
          for (int x = 0; x < 32; ++x) bytes.push_back(static_cast<uint8_t>(c * 7 + y * 3 + x + first_record + r));
        }
      }
    }
    return bytes;
  }
};

TEST_F(CifarReaderTest, ConcatenatesBatchesInOrderWithChannelPlanes) {
  write_file(path("a.bin"), records({3, 9}, 0));
  write_gzip(path("b.bin"), records({0, 5, 1}, 2));  // gzip works too, detected by magic
  const auto read = read_cifar10_batches({path("a.bin"), path("b.bin")});
  ASSERT_EQ(read.images.sizes().vec(), (std::vector<int64_t>{5, 3, 32, 32}));
  EXPECT_EQ(read.images.scalar_type(), at::kByte);
  EXPECT_EQ(read.labels.scalar_type(), at::kLong);
  EXPECT_TRUE(read.labels.equal(at::tensor(std::vector<int64_t>{3, 9, 0, 5, 1})));
  for (int64_t r = 0; r < 5; ++r) {
    EXPECT_EQ(read.images[r][0][0][0].item<int>(), r);
    EXPECT_EQ(read.images[r][2][5][31].item<int>(), (14 + 15 + 31 + r) % 256);
  }
}

TEST_F(CifarReaderTest, PartialRecordIsAnError) {
  Bytes bytes = records({1, 2}, 0);
  bytes.resize(bytes.size() - 100);
  write_file(path("data_batch_1.bin"), bytes);
  const std::string message = error_message([&] { read_cifar10_batches({path("data_batch_1.bin")}); });
  EXPECT_CONTAINS(message, path("data_batch_1.bin") + ": size 6046 bytes is not a positive multiple");
  EXPECT_CONTAINS(message, "CIFAR-10 binary");
}

TEST_F(CifarReaderTest, LabelOutsideTenClassesIsAnError) {
  write_file(path("ok.bin"), records({1}, 0));
  write_file(path("bad.bin"), records({4, 10}, 0));
  const std::string message = error_message([&] { read_cifar10_batches({path("ok.bin"), path("bad.bin")}); });
  EXPECT_CONTAINS(message, path("bad.bin") + ": record 1 has label 10");
}

TEST_F(CifarReaderTest, MissingFileIsNamed) {
  EXPECT_CONTAINS(error_message([&] { read_cifar10_batches({path("nope.bin")}); }), path("nope.bin"));
}

class CsvReaderTest : public TempDirTest {};

TEST_F(CsvReaderTest, SkipsHeaderRow) {
  write_text(path("h.csv"), "a,b,label\n1.5,-2,0\n3,4e1,2\n");
  const auto read = read_csv(path("h.csv"));
  EXPECT_TRUE(read.images.equal(at::tensor({1.5f, -2.f, 3.f, 40.f}).view({2, 2})));
  EXPECT_TRUE(read.labels.equal(at::tensor(std::vector<int64_t>{0, 2})));
}

TEST_F(CsvReaderTest, WithoutHeaderCrlfSpacesAndBlankLines) {
  write_text(path("n.csv"), "1, 2 ,3,1\r\n\r\n4,5,6,0\r\n7,8,9,1\n\n");
  const auto read = read_csv(path("n.csv"));
  EXPECT_EQ(read.images.scalar_type(), at::kFloat);
  EXPECT_TRUE(read.images.equal(at::arange(1, 10, at::kFloat).view({3, 3})));
  EXPECT_TRUE(read.labels.equal(at::tensor(std::vector<int64_t>{1, 0, 1})));
}

TEST_F(CsvReaderTest, GzipCsvReads) {
  const std::string text = "x,y\n0.25,3\n";
  write_gzip(path("g.csv"), Bytes(text.begin(), text.end()));
  const auto read = read_csv(path("g.csv"));
  EXPECT_FLOAT_EQ(read.images[0][0].item<float>(), 0.25f);
  EXPECT_EQ(read.labels[0].item<int64_t>(), 3);
}

TEST_F(CsvReaderTest, NonNumericCellNamesFileLineAndColumn) {
  write_text(path("bad.csv"), "f,label\n1,0\n2,x7,1\n");
  // A wrong cell after the header is an error, not a second header.
  const std::string message = error_message([&] { read_csv(path("bad.csv")); });
  EXPECT_CONTAINS(message, path("bad.csv") + ": line 3, column 2: 'x7' is not a finite number");
  EXPECT_CONTAINS(message, "CSV of numbers");
}

TEST_F(CsvReaderTest, NanCellIsRefused) {
  write_text(path("nan.csv"), "1,0\nnan,1\n");
  EXPECT_CONTAINS(error_message([&] { read_csv(path("nan.csv")); }), path("nan.csv") + ": line 2, column 1");
}

TEST_F(CsvReaderTest, RaggedRowIsAnError) {
  write_text(path("ragged.csv"), "1,2,0\n3,4,1\n5,1\n");
  EXPECT_CONTAINS(error_message([&] { read_csv(path("ragged.csv")); }),
                  path("ragged.csv") + ": line 3 has 2 columns, line 1 has 3");
}

TEST_F(CsvReaderTest, NonIntegerOrNegativeLabelIsAnError) {
  write_text(path("frac.csv"), "1,0.5\n");
  EXPECT_CONTAINS(error_message([&] { read_csv(path("frac.csv")); }),
                  path("frac.csv") + ": line 1: label '0.5' is not a non-negative integer");
  write_text(path("neg.csv"), "1,-1\n");
  EXPECT_CONTAINS(error_message([&] { read_csv(path("neg.csv")); }), path("neg.csv") + ": line 1: label '-1'");
}

TEST_F(CsvReaderTest, HeaderOnlyOrSingleColumnIsAnError) {
  write_text(path("empty.csv"), "a,b\n");
  EXPECT_CONTAINS(error_message([&] { read_csv(path("empty.csv")); }), path("empty.csv") + ": no data rows");
  write_text(path("one.csv"), "1\n2\n");
  EXPECT_CONTAINS(error_message([&] { read_csv(path("one.csv")); }), path("one.csv") + ": line 1 has 1 column");
}

TEST_F(CsvReaderTest, MissingFileIsNamed) {
  EXPECT_CONTAINS(error_message([&] { read_csv(path("gone.csv")); }), path("gone.csv") + ": cannot open");
}

class TextReaderTest : public TempDirTest {};

// A fortunes directory: topic files of entries separated by '%' lines, index files beside them.
std::string fortunes_file(const std::string& topic, int entries) {
  std::string text;
  for (int i = 0; i < entries; ++i) text += topic + " saying " + std::to_string(i) + "\nsecond line\n%\n";
  return text;
}

TEST_F(TextReaderTest, FortunesTopicsAreClassesSplitByTopicAndTokenisedAsBytes) {
  write_text(path("alpha"), fortunes_file("alpha", 150));
  write_text(path("beta"), fortunes_file("beta", 100));
  write_text(path("tiny"), fortunes_file("tiny", 20));      // under kMinFortunesPerTopic: dropped
  write_text(path("alpha.dat"), "binary index, not a topic");  // strfile's index
  const auto splits = splitpipe::read_fortunes(dir_.string(), 16, 3);
  EXPECT_EQ(splits.class_names, (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_CONTAINS(splits.note, "tiny (20)");
  // 20 % of each topic to the test split.
  EXPECT_EQ(splits.test.labels.eq(0).sum().item<int64_t>(), 30);
  EXPECT_EQ(splits.test.labels.eq(1).sum().item<int64_t>(), 20);
  EXPECT_EQ(splits.train.labels.size(0), 200);
  EXPECT_EQ(splits.train.images.sizes(), (std::vector<int64_t>{200, 16}));
  // Every row is the first 16 bytes of an entry of its topic: "alpha saying ..." or "beta saying ...".
  for (int64_t row = 0; row < 200; ++row) {
    const int64_t label = splits.train.labels[row].item<int64_t>();
    const std::string prefix = label == 0 ? "alpha s" : "beta sa";
    for (size_t j = 0; j < prefix.size(); ++j)
      ASSERT_EQ(splits.train.images[row][static_cast<int64_t>(j)].item<int64_t>(), static_cast<unsigned char>(prefix[j]))
          << "row " << row;
  }
  // The split and order follow the seed.
  const auto again = splitpipe::read_fortunes(dir_.string(), 16, 3);
  EXPECT_TRUE(again.train.images.equal(splits.train.images));
  const auto other = splitpipe::read_fortunes(dir_.string(), 16, 4);
  EXPECT_FALSE(other.train.images.equal(splits.train.images));
}

TEST_F(TextReaderTest, FortunesNeedsTwoTopics) {
  write_text(path("only"), fortunes_file("only", 150));
  EXPECT_CONTAINS(error_message([&] { splitpipe::read_fortunes(dir_.string(), 16, 1); }), "fewer than 2 topic files");
  EXPECT_CONTAINS(error_message([&] { splitpipe::read_fortunes(path("missing"), 16, 1); }), "not a directory");
}

TEST_F(TextReaderTest, ByteTokensPadWithZeroAndCut) {
  const auto tokens = splitpipe::byte_tokens({"ab", "abcdef"}, 4);
  EXPECT_TRUE(tokens.equal(at::tensor({97, 98, 0, 0, 97, 98, 99, 100}, at::kLong).view({2, 4})));
}

TEST_F(TextReaderTest, LabelledTextUsesTheTrainingLabelsAsClasses) {
  write_text(path("train.txt"), "spam\tbuy now\nham\thello there\r\n\nspam\tcheap pills\n");
  write_text(path("test.txt"), "ham\thi\n");
  const auto splits = splitpipe::read_labelled_text(path("train.txt"), path("test.txt"), 8);
  EXPECT_EQ(splits.class_names, (std::vector<std::string>{"ham", "spam"}));
  EXPECT_TRUE(splits.train.labels.equal(at::tensor({1, 0, 1}, at::kLong)));
  EXPECT_TRUE(splits.test.labels.equal(at::tensor({0}, at::kLong)));
}

TEST_F(TextReaderTest, LabelledTextErrorsNameFileAndLine) {
  write_text(path("train.txt"), "spam\tbuy now\nno tab here\n");
  write_text(path("test.txt"), "ham\thi\n");
  EXPECT_CONTAINS(error_message([&] { splitpipe::read_labelled_text(path("train.txt"), path("test.txt"), 8); }),
                  path("train.txt") + ": line 2 has no label before a tab");
  write_text(path("train.txt"), "spam\tbuy now\n");
  EXPECT_CONTAINS(error_message([&] { splitpipe::read_labelled_text(path("train.txt"), path("test.txt"), 8); }),
                  "label 'ham' (example 1) does not occur in the training file");
  write_text(path("test.txt"), "");
  EXPECT_CONTAINS(error_message([&] { splitpipe::read_labelled_text(path("train.txt"), path("test.txt"), 8); }),
                  path("test.txt") + ": no examples");
}

}  // namespace
