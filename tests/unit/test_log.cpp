// RunFile tests: everything is checked by reopening the file with the plain HDF5 API, so the
// tests see what h5py or a later resume would see, not RunFile's own view of it.
#include <ATen/ATen.h>
#include <H5Cpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "splitpipe/error.hpp"
#include "splitpipe/run_file.hpp"

namespace fs = std::filesystem;
using splitpipe::Error;
using splitpipe::RunFile;

namespace {

class RunFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("splitpipe_test_log_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "run.h5").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string path_;
};

H5::H5File open_read(const std::string& path) { return H5::H5File(path, H5F_ACC_RDONLY); }

std::string string_attr(const H5::H5File& file, const std::string& name) {
  const H5::Attribute attribute = file.openGroup("/").openAttribute(name);
  std::string value;
  attribute.read(attribute.getStrType(), value);
  return value;
}

template <typename T>
T number_attr(const H5::H5File& file, const std::string& name, const H5::PredType& type) {
  T value{};
  file.openGroup("/").openAttribute(name).read(type, &value);
  return value;
}

std::vector<hsize_t> shape(const H5::DataSet& dataset) {
  const H5::DataSpace space = dataset.getSpace();
  std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  return dims;
}

std::vector<double> doubles(const H5::H5File& file, const std::string& name) {
  const H5::DataSet dataset = file.openDataSet(name);
  EXPECT_EQ(dataset.getTypeClass(), H5T_FLOAT);
  std::vector<double> values(shape(dataset).at(0));
  if (!values.empty()) dataset.read(values.data(), H5::PredType::NATIVE_DOUBLE);
  return values;
}

std::vector<std::string> strings(const H5::H5File& file, const std::string& name) {
  const H5::DataSet dataset = file.openDataSet(name);
  const H5::StrType type = dataset.getStrType();
  EXPECT_TRUE(type.isVariableStr());
  std::vector<char*> raw(shape(dataset).at(0));
  dataset.read(raw.data(), type);
  std::vector<std::string> values(raw.begin(), raw.end());
  H5::DataSet::vlenReclaim(raw.data(), type, dataset.getSpace());
  return values;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool is_iso_timestamp(const std::string& text) {
  return std::regex_match(text, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4})"));
}

// Runs `body`, expects an Error, and returns its message.
template <typename Body>
std::string error_message(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected splitpipe::Error";
  return "";
}

TEST_F(RunFileTest, CreateSetsRootAttributes) {
  RunFile::create(path_, false).finish("complete");
  const H5::H5File file = open_read(path_);
  EXPECT_EQ(number_attr<int64_t>(file, "format_version", H5::PredType::NATIVE_INT64),
            splitpipe::kRunFileFormatVersion);
  EXPECT_EQ(string_attr(file, "status"), "complete");
  EXPECT_TRUE(is_iso_timestamp(string_attr(file, "start_time")));
  EXPECT_TRUE(is_iso_timestamp(string_attr(file, "end_time")));
}

TEST_F(RunFileTest, AttributesOfEachTypeRoundTrip) {
  {
    RunFile run = RunFile::create(path_, false);
    run.set_attribute("model", std::string("resnet18"));
    run.set_attribute("note", std::string("naïve – ünïcode"));
    run.set_attribute("seed", int64_t{-(int64_t{1} << 40)});
    run.set_attribute("lr", 0.1);
    run.set_attribute("tiny", std::numeric_limits<double>::denorm_min());
    // Replacing changes the type and length: the old attribute must be gone, not reused.
    run.set_attribute("changes", int64_t{7});
    run.set_attribute("changes", std::string("now a rather longer string"));
    run.set_attribute("model", std::string("vgg"));
    EXPECT_EQ(run.string_attribute("model"), "vgg");
    EXPECT_EQ(run.string_attribute("status"), "running");
    run.finish("complete");
  }
  const H5::H5File file = open_read(path_);
  EXPECT_EQ(string_attr(file, "model"), "vgg");
  EXPECT_EQ(string_attr(file, "note"), "naïve – ünïcode");
  EXPECT_EQ(number_attr<int64_t>(file, "seed", H5::PredType::NATIVE_INT64),
            -(int64_t{1} << 40));
  EXPECT_EQ(number_attr<double>(file, "lr", H5::PredType::NATIVE_DOUBLE), 0.1);
  EXPECT_EQ(number_attr<double>(file, "tiny", H5::PredType::NATIVE_DOUBLE),
            std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(string_attr(file, "changes"), "now a rather longer string");
  const H5::Attribute note = file.openGroup("/").openAttribute("note");
  EXPECT_EQ(note.getStrType().getCset(), H5T_CSET_UTF8);
}

TEST_F(RunFileTest, MissingOrNonStringAttributeIsAnError) {
  RunFile run = RunFile::create(path_, false);
  run.set_attribute("seed", int64_t{3});
  std::string message = error_message([&] { run.string_attribute("nope"); });
  EXPECT_NE(message.find("nope"), std::string::npos) << message;
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  message = error_message([&] { run.string_attribute("seed"); });
  EXPECT_NE(message.find("not a string"), std::string::npos) << message;
}

TEST_F(RunFileTest, AppendRowsToSeveralNestedGroups) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    RunFile run = RunFile::create(path_, false);
    EXPECT_EQ(run.rows("epochs"), 0);
    for (int epoch = 0; epoch < 3; ++epoch) {
      run.append_row("epochs", {{"epoch", epoch}, {"loss", 1.0 / (epoch + 3)}});
      run.append_row("ranks/1", {{"busy_s", 0.25 * epoch}});
      if (epoch < 2) run.append_row("ranks/2", {{"busy_s", -1e-300}, {"bytes", 1e18 + epoch}});
    }
    run.append_row("ranks", {{"total", nan}});
    EXPECT_EQ(run.rows("epochs"), 3);
    EXPECT_EQ(run.rows("ranks/1"), 3);
    EXPECT_EQ(run.rows("ranks/2"), 2);
    EXPECT_EQ(run.rows("ranks"), 1);  // its subgroups are not columns
    EXPECT_EQ(run.rows("ranks/3"), 0);
    EXPECT_EQ(run.rows("absent/deeper"), 0);
    run.finish("complete");
  }
  const H5::H5File file = open_read(path_);
  EXPECT_EQ(doubles(file, "epochs/epoch"), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(doubles(file, "epochs/loss"), (std::vector<double>{1.0 / 3, 1.0 / 4, 1.0 / 5}));
  EXPECT_EQ(doubles(file, "ranks/1/busy_s"), (std::vector<double>{0, 0.25, 0.5}));
  EXPECT_EQ(doubles(file, "ranks/2/busy_s"), (std::vector<double>{-1e-300, -1e-300}));
  EXPECT_EQ(doubles(file, "ranks/2/bytes"), (std::vector<double>{1e18, 1e18 + 1}));
  const std::vector<double> total = doubles(file, "ranks/total");
  ASSERT_EQ(total.size(), 1u);
  EXPECT_TRUE(std::isnan(total[0]));
  // Extendible: chunked with an unlimited first dimension.
  const H5::DataSet loss = file.openDataSet("epochs/loss");
  EXPECT_EQ(loss.getCreatePlist().getLayout(), H5D_CHUNKED);
  hsize_t max_dims[1] = {0};
  hsize_t dims[1] = {0};
  loss.getSpace().getSimpleExtentDims(dims, max_dims);
  EXPECT_EQ(max_dims[0], H5S_UNLIMITED);
}

TEST_F(RunFileTest, RowWithOtherColumnsIsRejectedWithoutPartialWrite) {
  RunFile run = RunFile::create(path_, false);
  run.append_row("epochs", {{"a", 1}, {"b", 2}});
  std::string message = error_message([&] { run.append_row("epochs", {{"a", 3}, {"c", 4}}); });
  EXPECT_NE(message.find("epochs"), std::string::npos) << message;
  EXPECT_NE(message.find("'c'"), std::string::npos) << message;
  message = error_message([&] { run.append_row("epochs", {{"a", 3}}); });
  EXPECT_NE(message.find("'b'"), std::string::npos) << message;
  message = error_message([&] { run.append_row("epochs", {{"a", 3}, {"b", 4}, {"c", 5}}); });
  EXPECT_NE(message.find("'c'"), std::string::npos) << message;
  message = error_message([&] { run.append_row("epochs", {{"a", 3}, {"a", 4}}); });
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
  EXPECT_THROW(run.append_row("other", {}), Error);
  EXPECT_THROW(run.append_row("other", {{"x/y", 1}}), Error);
  // Column order within a row does not matter.
  run.append_row("epochs", {{"b", 6}, {"a", 5}});
  EXPECT_EQ(run.rows("epochs"), 2);
  run.finish("complete");

  const H5::H5File file = open_read(path_);
  EXPECT_EQ(doubles(file, "epochs/a"), (std::vector<double>{1, 5}));
  EXPECT_EQ(doubles(file, "epochs/b"), (std::vector<double>{2, 6}));
  EXPECT_FALSE(file.nameExists("epochs/c"));
}

TEST_F(RunFileTest, AppendMatrixStacksSlices) {
  {
    RunFile run = RunFile::create(path_, false);
    run.append_matrix("confusion", at::arange(6, at::kInt).reshape({2, 3}));
    run.append_matrix("confusion", at::full({2, 3}, 7.9, at::kFloat));  // stored truncated
    run.append_matrix("confusion", at::arange(6, at::kLong).reshape({3, 2}).t() * 1000000000000);
    run.append_matrix("eval/confusion", at::eye(2, at::kLong));  // nested path
    EXPECT_THROW(run.append_matrix("confusion", at::zeros({3, 2}, at::kLong)), Error);
    EXPECT_THROW(run.append_matrix("confusion", at::zeros({2, 3, 1}, at::kLong)), Error);
    EXPECT_THROW(run.append_matrix("empty", at::zeros({0, 3}, at::kLong)), Error);
    run.finish("complete");
  }
  const H5::H5File file = open_read(path_);
  const H5::DataSet confusion = file.openDataSet("confusion");
  EXPECT_EQ(shape(confusion), (std::vector<hsize_t>{3, 2, 3}));
  EXPECT_EQ(confusion.getTypeClass(), H5T_INTEGER);
  EXPECT_EQ(confusion.getIntType().getSize(), 8u);
  std::vector<int64_t> values(18);
  confusion.read(values.data(), H5::PredType::NATIVE_INT64);
  const int64_t t = 1000000000000;
  EXPECT_EQ(values, (std::vector<int64_t>{0, 1, 2, 3, 4, 5,  //
                                          7, 7, 7, 7, 7, 7,  //
                                          0, 2 * t, 4 * t, 1 * t, 3 * t, 5 * t}));
  const H5::DataSet eye = file.openDataSet("eval/confusion");
  EXPECT_EQ(shape(eye), (std::vector<hsize_t>{1, 2, 2}));
}

TEST_F(RunFileTest, RefusesToOverwriteUnlessAsked) {
  {
    RunFile run = RunFile::create(path_, false);
    run.set_attribute("marker", std::string("first run"));
    run.append_row("epochs", {{"loss", 1}});
    run.finish("complete");
  }
  const std::string before = file_bytes(path_);
  const std::string message = error_message([&] { RunFile::create(path_, false); });
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  EXPECT_NE(message.find("--overwrite"), std::string::npos) << message;
  EXPECT_NE(message.find("--output"), std::string::npos) << message;
  EXPECT_EQ(file_bytes(path_), before);
  EXPECT_EQ(string_attr(open_read(path_), "marker"), "first run");

  RunFile::create(path_, true).finish("complete");
  const H5::H5File file = open_read(path_);
  EXPECT_FALSE(file.openGroup("/").attrExists("marker"));
  EXPECT_FALSE(file.nameExists("epochs"));
}

TEST_F(RunFileTest, CreatesMissingParentDirectories) {
  const std::string nested = (dir_ / "a" / "b" / "run.h5").string();
  RunFile::create(nested, false).finish("complete");
  EXPECT_EQ(string_attr(open_read(nested), "status"), "complete");
}

TEST_F(RunFileTest, HdfFailuresBecomeErrorsNamingTheFile) {
  const std::string message = error_message([&] { RunFile::create(dir_.string(), true); });
  EXPECT_NE(message.find(dir_.string()), std::string::npos) << message;
  EXPECT_NE(message.find("create"), std::string::npos) << message;
  RecordProperty("message", message);
}

TEST_F(RunFileTest, DestroyedWithoutFinishStaysRunningWithItsRows) {
  {
    RunFile run = RunFile::create(path_, false);
    run.append_row("epochs", {{"loss", 0.5}});
    run.append_row("epochs", {{"loss", 0.25}});
  }
  const H5::H5File file = open_read(path_);
  EXPECT_EQ(string_attr(file, "status"), "running");
  EXPECT_FALSE(file.openGroup("/").attrExists("end_time"));
  EXPECT_EQ(doubles(file, "epochs/loss"), (std::vector<double>{0.5, 0.25}));
}

// The flush after each append is what a crashed run relies on: kill a writer mid-run.
TEST_F(RunFileTest, KilledWriterLeavesEveryAppendedRowReadable) {
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    RunFile run = RunFile::create(path_, false);
    for (int epoch = 0; epoch < 3; ++epoch) {
      run.append_row("epochs", {{"epoch", epoch}});
      run.commit();  // as the driver does after each epoch's rows
    }
    run.append_matrix("confusion", at::ones({2, 2}, at::kLong));
    raise(SIGKILL);
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
  const H5::H5File file = open_read(path_);
  EXPECT_EQ(string_attr(file, "status"), "running");
  EXPECT_EQ(doubles(file, "epochs/epoch"), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(shape(file.openDataSet("confusion")), (std::vector<hsize_t>{1, 2, 2}));
}

TEST_F(RunFileTest, OpenExistingAppendsToTheSameDatasets) {
  {
    RunFile run = RunFile::create(path_, false);
    run.set_attribute("seed", int64_t{1});
    run.append_row("epochs", {{"epoch", 0}, {"loss", 0.9}});
    run.append_row("epochs", {{"epoch", 1}, {"loss", 0.8}});
    run.append_matrix("confusion", at::eye(2, at::kLong));
  }
  {
    RunFile run = RunFile::open_existing(path_);
    EXPECT_EQ(run.path(), path_);
    EXPECT_EQ(run.rows("epochs"), 2);
    EXPECT_EQ(run.string_attribute("status"), "running");
    EXPECT_THROW(run.append_row("epochs", {{"epoch", 2}}), Error);
    run.append_row("epochs", {{"epoch", 2}, {"loss", 0.7}});
    run.append_matrix("confusion", at::eye(2, at::kLong) * 2);
    EXPECT_EQ(run.rows("epochs"), 3);
    run.finish("complete");
  }
  const H5::H5File file = open_read(path_);
  EXPECT_EQ(doubles(file, "epochs/epoch"), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(doubles(file, "epochs/loss"), (std::vector<double>{0.9, 0.8, 0.7}));
  EXPECT_EQ(shape(file.openDataSet("confusion")), (std::vector<hsize_t>{2, 2, 2}));
  EXPECT_EQ(number_attr<int64_t>(file, "seed", H5::PredType::NATIVE_INT64), 1);
  EXPECT_EQ(string_attr(file, "status"), "complete");
}

TEST_F(RunFileTest, OpenExistingRejectsMissingAndForeignFiles) {
  std::string message = error_message([&] { RunFile::open_existing(path_); });
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path_));

  std::ofstream(path_) << "not hdf5\n";
  message = error_message([&] { RunFile::open_existing(path_); });
  EXPECT_NE(message.find("not an HDF5 file"), std::string::npos) << message;

  H5::H5File(path_, H5F_ACC_TRUNC).close();
  message = error_message([&] { RunFile::open_existing(path_); });
  EXPECT_NE(message.find("format_version"), std::string::npos) << message;
}

TEST_F(RunFileTest, StringAndNumberColumnsReadBackAndReplace) {
  {
    RunFile run = RunFile::create(path_, false);
    run.write_string_column("classes", "name", {"cat", "dog"});
    run.write_string_column("classes", "name", {"airplane", "", "ünïcode"});  // replaces
    run.write_number_column("classes", "count", {5000, 0.5, -1});
    run.write_number_column("layers/stage0", "params", {});
    run.finish("complete");
  }
  const H5::H5File file = open_read(path_);
  EXPECT_EQ(strings(file, "classes/name"), (std::vector<std::string>{"airplane", "", "ünïcode"}));
  EXPECT_EQ(doubles(file, "classes/count"), (std::vector<double>{5000, 0.5, -1}));
  EXPECT_TRUE(doubles(file, "layers/stage0/params").empty());
}

TEST_F(RunFileTest, H5dumpShowsTheStatus) {
  if (!fs::exists("/usr/bin/h5dump")) GTEST_SKIP() << "h5dump (hdf5-tools) is not installed";
  RunFile::create(path_, false).finish("failed: out of memory");
  const std::string command = "/usr/bin/h5dump -a /status '" + path_ + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_NE(output.find("\"failed: out of memory\""), std::string::npos) << output;
}

TEST_F(RunFileTest, MovesAndUseAfterFinish) {
  RunFile first = RunFile::create(path_, false);
  RunFile second = std::move(first);
  second.append_row("epochs", {{"loss", 1}});
  RunFile third = RunFile::create((dir_ / "other.h5").string(), false);
  third = std::move(second);  // closes other.h5, takes over run.h5
  EXPECT_EQ(third.path(), path_);
  third.append_row("epochs", {{"loss", 2}});
  EXPECT_THROW(first.rows("epochs"), Error);
  third.finish("complete");
  EXPECT_THROW(third.append_row("epochs", {{"loss", 3}}), Error);
  EXPECT_EQ(doubles(open_read(path_), "epochs/loss"), (std::vector<double>{1, 2}));
  EXPECT_EQ(string_attr(open_read((dir_ / "other.h5").string()), "status"), "running");
}

TEST(IsoTimestamp, HasDateTimeAndOffset) {
  EXPECT_TRUE(is_iso_timestamp(splitpipe::iso_timestamp_now())) << splitpipe::iso_timestamp_now();
}

}  // namespace

namespace {

// --- Never damage a file this run did not create ---------------------------------------------

std::vector<std::string> partial_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".partial") != std::string::npos) names.push_back(entry.path().string());
  return names;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(RunFileTest, NewFileAppearsUnderItsNameOnlyAtTheFirstCommit) {
  RunFile run = RunFile::create(path_, false);
  run.append_row("epochs", {{"epoch", 1}});
  EXPECT_FALSE(fs::exists(path_));
  ASSERT_EQ(partial_files(dir_).size(), 1u);
  run.commit();
  EXPECT_TRUE(fs::exists(path_));
  EXPECT_TRUE(partial_files(dir_).empty());
  run.finish("complete");
  EXPECT_EQ(doubles(open_read(path_), "epochs/epoch"), (std::vector<double>{1}));
}

TEST_F(RunFileTest, FailedOverwriteBeforeItsFirstCommitLeavesTheOldFileAlone) {
  std::ofstream(path_) << "an older result";
  {
    RunFile run = RunFile::create(path_, true);
    run.append_row("epochs", {{"epoch", 1}});
    run.finish("failed: rank 1: it broke");
  }
  EXPECT_EQ(file_text(path_), "an older result");
  EXPECT_TRUE(partial_files(dir_).empty());
  {
    RunFile dropped = RunFile::create(path_, true);  // destroyed without finish(): also a failure
  }
  EXPECT_EQ(file_text(path_), "an older result");
  EXPECT_TRUE(partial_files(dir_).empty());
}

TEST_F(RunFileTest, FailedRunWithoutAnOlderFileIsPublishedWithItsStatus) {
  RunFile::create(path_, false).finish("failed: rank 0: no data");
  EXPECT_EQ(string_attr(open_read(path_), "status"), "failed: rank 0: no data");
  EXPECT_TRUE(partial_files(dir_).empty());
}

// Lock conflicts are between open file descriptions, so one process shows them too.
TEST_F(RunFileTest, AFileBeingWrittenCanBeNeitherOverwrittenNorResumed) {
  RunFile writer = RunFile::create(path_, false);
  writer.append_row("epochs", {{"epoch", 1}});
  writer.commit();
  std::string message = error_message([&] { RunFile::create(path_, true); });
  EXPECT_NE(message.find("in use"), std::string::npos) << message;
  message = error_message([&] { RunFile::open_existing(path_); });
  EXPECT_NE(message.find("in use"), std::string::npos) << message;
  EXPECT_TRUE(partial_files(dir_).empty());
  writer.append_row("epochs", {{"epoch", 2}});
  writer.finish("complete");
  EXPECT_EQ(doubles(open_read(path_), "epochs/epoch"), (std::vector<double>{1, 2}));
  RunFile::open_existing(path_).finish("complete");  // free again once the writer is done
}

TEST_F(RunFileTest, EveryRunHasItsOwnRunId) {
  std::string first, second;
  {
    RunFile run = RunFile::create(path_, false);
    first = run.run_id();
    run.finish("complete");
  }
  {
    RunFile run = RunFile::create(path_, true);
    second = run.run_id();
    run.finish("complete");
  }
  EXPECT_FALSE(first.empty());
  EXPECT_NE(first, second);
  EXPECT_EQ(RunFile::open_existing(path_).run_id(), second);
}

}  // namespace
