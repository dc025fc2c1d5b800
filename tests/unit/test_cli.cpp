// Command-line and INI parsing: every refusal is a UsageError (exit code 2) that names the
// option, and the resolved configuration written to run files parses back to itself.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "splitpipe/config.hpp"
#include "splitpipe/error.hpp"

namespace fs = std::filesystem;
using splitpipe::CommandLine;
using splitpipe::RunConfig;
using splitpipe::UsageError;

namespace {

CommandLine parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"splitpipe"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return splitpipe::parse_command_line(static_cast<int>(argv.size()), argv.data());
}

// The UsageError that parsing `args` must throw (a test failure if it throws nothing).
UsageError usage_error_of(const std::vector<std::string>& args) {
  try {
    parse(args);
  } catch (const UsageError& e) {
    return e;
  }
  ADD_FAILURE() << "no UsageError for the arguments given";
  return UsageError("(none thrown)");
}

// A temporary directory per test, removed afterwards.
class CliFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("splitpipe_test_cli_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir_;
};

const RunConfig::ResolvedOption* find_resolved(const RunConfig& c, const std::string& name) {
  for (const auto& option : c.resolved)
    if (option.name == name) return &option;
  return nullptr;
}

}  // namespace

TEST(Cli, NoArgumentsGiveTheDocumentedDefaults) {
  // (threads: the launcher's cores when it says; see below)
  for (const char* variable : {"SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"}) unsetenv(variable);
  const CommandLine cl = parse({});
  const RunConfig& c = cl.config;
  EXPECT_FALSE(cl.help);
  EXPECT_EQ(c.model, "lenet5");
  EXPECT_EQ(c.data.dataset, "fashion-mnist");
  EXPECT_EQ(c.epochs, 10);
  EXPECT_EQ(c.batch_size, 64);
  EXPECT_DOUBLE_EQ(c.lr, 0.05);
  EXPECT_DOUBLE_EQ(c.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.weight_decay, 5e-4);
  EXPECT_FALSE(c.nesterov);
  // The tuned LeNet-5 schedule (configs/fmnist-lenet5.ini) is the default.
  EXPECT_EQ(c.lr_schedule, "cosine");
  EXPECT_EQ(c.warmup_epochs, 1);
  EXPECT_EQ(c.seed, 1u);
  EXPECT_EQ(c.data.seed, 1u);  // the data seed follows --seed
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.edge_first, 1);
  EXPECT_EQ(c.edge_last, 1);
  EXPECT_EQ(c.server_split, "even");
  EXPECT_EQ(c.schedule, "gpipe");
  EXPECT_EQ(c.chunks, 1);
  EXPECT_EQ(c.fwd_codec, "none");
  EXPECT_EQ(c.bwd_codec, "none");
  EXPECT_EQ(c.mlp_hidden, (std::vector<int64_t>{1000, 500, 125}));
  EXPECT_EQ(c.data.synthetic_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_TRUE(c.output.empty());
  EXPECT_FALSE(c.overwrite);
  // Every option is in the resolved table with the text a run file stores.
  ASSERT_NE(find_resolved(c, "epochs"), nullptr);
  EXPECT_EQ(find_resolved(c, "epochs")->section, "train");
  EXPECT_EQ(find_resolved(c, "epochs")->value, "10");
  ASSERT_NE(find_resolved(c, "lr"), nullptr);
  EXPECT_EQ(find_resolved(c, "lr")->value, "0.05");
  ASSERT_NE(find_resolved(c, "model"), nullptr);
  EXPECT_EQ(find_resolved(c, "model")->section, "model");
  ASSERT_NE(find_resolved(c, "chunks"), nullptr);
  EXPECT_EQ(find_resolved(c, "chunks")->section, "pipeline");
}

// Sets an environment variable for one scope, restoring what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Cli, ThreadsDefaultToTheLaunchersCoresAndAnExplicitValueWins) {
  ScopedEnv no_slurm("SLURM_CPUS_PER_TASK", nullptr), no_omp("OMP_NUM_THREADS", nullptr);
  EXPECT_EQ(parse({}).config.threads, 1);
  {
    ScopedEnv omp("OMP_NUM_THREADS", "3,1");
    EXPECT_EQ(parse({}).config.threads, 3) << "OMP_NUM_THREADS' first level";
    ScopedEnv slurm("SLURM_CPUS_PER_TASK", "4");
    const RunConfig c = parse({}).config;
    EXPECT_EQ(c.threads, 4) << "Slurm's --cpus-per-task before OMP_NUM_THREADS";
    ASSERT_NE(find_resolved(c, "threads"), nullptr);
    EXPECT_EQ(find_resolved(c, "threads")->value, "4") << "the run file records the threads used";
    EXPECT_EQ(parse({"--threads", "2"}).config.threads, 2) << "an explicit --threads wins";
  }
  for (const char* bad : {"0", "many", "-2", "99999"}) {
    ScopedEnv slurm("SLURM_CPUS_PER_TASK", bad);
    try {
      parse({});
      ADD_FAILURE() << "SLURM_CPUS_PER_TASK=" << bad << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("SLURM_CPUS_PER_TASK='" + std::string(bad) + "'"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(parse({"--threads", "1"}).config.threads, 1) << "--threads makes the variable irrelevant";
  }
}

TEST(Cli, DefaultWarmupStepsAsideForAOneEpochRunButAnExplicitOneIsChecked) {
  const RunConfig one = parse({"--epochs", "1"}).config;
  EXPECT_EQ(one.warmup_epochs, 0);
  ASSERT_NE(find_resolved(one, "warmup-epochs"), nullptr);
  EXPECT_EQ(find_resolved(one, "warmup-epochs")->value, "0") << "the run file records the warm-up used";
  EXPECT_EQ(parse({"--epochs", "2"}).config.warmup_epochs, 1);
  EXPECT_EQ(parse({"--epochs", "3", "--warmup-epochs", "2"}).config.warmup_epochs, 2);
  EXPECT_THROW(parse({"--epochs", "1", "--warmup-epochs", "1"}), UsageError);
}

TEST(Cli, TypedValuesFlagsAndListsAreParsed) {
  const RunConfig c = parse({"--epochs", "3", "--lr=0.125", "--nesterov", "--overwrite=false", "--model", "mlp",
                             "--mlp-hidden", "64,32", "--dataset", "synthetic", "--synthetic-shape", "3x8x8",
                             "--seed", "18446744073709551615", "--schedule", "1f1b", "--chunks", "4",
                             "--server-split", "2,3", "--fwd-codec", "quant:bits=8"})
                          .config;
  EXPECT_EQ(c.epochs, 3);
  EXPECT_DOUBLE_EQ(c.lr, 0.125);
  EXPECT_TRUE(c.nesterov);  // a flag without a value means true
  EXPECT_FALSE(c.overwrite);
  EXPECT_EQ(c.model, "mlp");
  EXPECT_EQ(c.mlp_hidden, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(c.data.synthetic_shape, (std::vector<int64_t>{3, 8, 8}));
  EXPECT_EQ(c.seed, 18446744073709551615ull);
  EXPECT_EQ(c.data.seed, c.seed);
  EXPECT_EQ(c.schedule, "1f1b");
  EXPECT_EQ(c.chunks, 4);
  EXPECT_EQ(c.server_split, "2,3");
  EXPECT_EQ(c.fwd_codec, "quant:bits=8");
}

TEST_F(CliFiles, IniFileWithSectionsIsRead) {
  const std::string ini = write("run.ini",
                                "# a comment\n[train]\nepochs = 3\nlr = 0.01\nlr-schedule = cosine\n\n"
                                "[pipeline]\nchunks = 4\nschedule = 1f1b\n[model]\nmodel = mlp\n"
                                "[compress]\nbwd-codec = topk:ratio=0.5\n");
  const RunConfig c = parse({"--config", ini}).config;
  EXPECT_EQ(c.config_file, ini);
  EXPECT_EQ(c.epochs, 3);
  EXPECT_DOUBLE_EQ(c.lr, 0.01);
  EXPECT_EQ(c.lr_schedule, "cosine");
  EXPECT_EQ(c.chunks, 4);
  EXPECT_EQ(c.schedule, "1f1b");
  EXPECT_EQ(c.model, "mlp");
  EXPECT_EQ(c.bwd_codec, "topk:ratio=0.5");
  EXPECT_EQ(c.batch_size, 64);  // untouched options keep their defaults
  EXPECT_EQ(find_resolved(c, "epochs")->value, "3");
}

TEST_F(CliFiles, CommandLineWinsOverIni) {
  const std::string ini = write("run.ini", "[train]\nepochs = 3\nbatch-size = 16\n");
  // The command line wins whether it comes before or after --config.
  const RunConfig before = parse({"--epochs", "7", "--config", ini}).config;
  const RunConfig after = parse({"--config", ini, "--epochs", "7"}).config;
  for (const RunConfig* c : {&before, &after}) {
    EXPECT_EQ(c->epochs, 7);
    EXPECT_EQ(c->batch_size, 16);  // the INI still sets what the command line leaves alone
  }
}

TEST(Cli, AnOptionPrefixIsNotGuessedButCompleted) {
  const UsageError e = usage_error_of({"--chunk", "4"});
  EXPECT_NE(std::string(e.what()).find("--chunk'"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("did you mean --chunks?"), std::string::npos) << e.what();
  const UsageError ambiguous = usage_error_of({"--edge", "2"});
  EXPECT_NE(std::string(ambiguous.what()).find("--edge-first"), std::string::npos) << ambiguous.what();
  EXPECT_NE(std::string(ambiguous.what()).find("--edge-last"), std::string::npos) << ambiguous.what();
  EXPECT_EQ(parse({"--chunks", "4"}).config.chunks, 4);
}

TEST(Cli, UnknownCommandLineOptionIsAUsageErrorNamingIt) {
  const UsageError e = usage_error_of({"--epochs", "2", "--no-such-option", "1"});
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_NE(std::string(e.what()).find("--no-such-option"), std::string::npos) << e.what();
}

TEST_F(CliFiles, UnknownIniKeyIsAUsageErrorNamingKeyAndFile) {
  const std::string ini = write("bad.ini", "[train]\nepochs = 3\nepohcs = 4\n");
  const UsageError e = usage_error_of({"--config", ini});
  EXPECT_EQ(e.exit_code(), 2);
  const std::string message = e.what();
  EXPECT_NE(message.find("epohcs"), std::string::npos) << message;
  EXPECT_NE(message.find(ini), std::string::npos) << message;
}

TEST_F(CliFiles, IniCannotNestConfigOrAskForHelp) {
  for (const std::string key : {"config", "help"}) {
    const UsageError e = usage_error_of({"--config", write(key + ".ini", "[run]\n" + key + " = x\n")});
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

TEST_F(CliFiles, BadIniValuesNameTheFileAndTheOption) {
  struct Case {
    std::string text, option;
  };
  for (const Case& c : {Case{"[train]\nepochs = abc\n", "epochs"}, Case{"[train]\nepochs = 3\nepochs = 4\n", "epochs"},
                        Case{"[pipeline]\nchunks = 0\n", "--chunks"}, Case{"[train\nepochs = 2\n", "[train"},
                        Case{"just words\n", "just words"}}) {
    SCOPED_TRACE(c.text);
    const std::string ini = write("bad.ini", c.text);
    const UsageError e = usage_error_of({"--config", ini});
    const std::string message = e.what();
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(message.find(c.option), std::string::npos) << message;
    if (c.option != "--chunks") {  // a range error is the same wherever the value came from
      EXPECT_NE(message.find(ini), std::string::npos) << message;
    }
  }
}

TEST_F(CliFiles, UnreadableConfigFileIsAUsageErrorNamingThePath) {
  const std::string missing = (dir_ / "missing.ini").string();
  UsageError e = usage_error_of({"--config", missing});
  EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();

  // A directory opens as an empty stream; it must not pass for an empty config.
  e = usage_error_of({"--config", dir_.string()});
  EXPECT_NE(std::string(e.what()).find(dir_.string()), std::string::npos) << e.what();

  if (geteuid() != 0) {  // root reads files whatever their mode
    const std::string locked = write("locked.ini", "[train]\nepochs = 2\n");
    chmod(locked.c_str(), 0);
    e = usage_error_of({"--config", locked});
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
}

// One refused command line and the text its message must contain (the option it names).
// A single test over the table: one CTest process instead of one per row.
struct BadArguments {
  std::string name;
  std::vector<std::string> args;
  std::string expected;
};

TEST(Cli, BadValuesAreUsageErrorsNamingTheOption) {
  const std::vector<BadArguments> table{
      {"EpochsNotANumber", {"--epochs", "abc"}, "--epochs"},
      {"EpochsFraction", {"--epochs", "1.5"}, "--epochs"},
      {"EpochsOverflow", {"--epochs", "99999999999"}, "--epochs"},
      {"EpochsMissingValue", {"--epochs"}, "--epochs"},
      {"EpochsZero", {"--epochs", "0"}, "--epochs"},
      {"EpochsGivenTwice", {"--epochs", "2", "--epochs", "3"}, "--epochs"},
      {"BatchSizeZero", {"--batch-size", "0"}, "--batch-size"},
      {"ChunksZero", {"--chunks", "0"}, "--chunks"},
      {"ChunksTooMany", {"--chunks", "1000"}, "--chunks"},
      {"ChunksLargerThanBatch", {"--chunks", "8", "--batch-size", "4"}, "--chunks"},
      {"MomentumOne", {"--momentum", "1"}, "--momentum"},
      {"MomentumAboveOne", {"--momentum", "1.5"}, "--momentum"},
      {"MomentumNegative", {"--momentum", "-0.1"}, "--momentum"},
      {"NesterovWithoutMomentum", {"--nesterov", "--momentum", "0"}, "--nesterov"},
      {"LrNegative", {"--lr", "-1"}, "--lr"},
      {"LrZero", {"--lr", "0"}, "--lr"},
      {"LrNan", {"--lr", "nan"}, "--lr"},
      {"LrInfinite", {"--lr", "inf"}, "--lr"},
      {"WeightDecayNegative", {"--weight-decay", "-1e-4"}, "--weight-decay"},
      {"WeightDecayInfinite", {"--weight-decay", "inf"}, "--weight-decay"},
      {"LrGammaZero", {"--lr-gamma", "0"}, "--lr-gamma"},
      {"LrGammaAboveOne", {"--lr-gamma", "2"}, "--lr-gamma"},
      {"LrStepEpochsZero", {"--lr-step-epochs", "0"}, "--lr-step-epochs"},
      {"WarmupAsLongAsTraining", {"--epochs", "3", "--warmup-epochs", "3"}, "--warmup-epochs"},
      {"WarmupNegative", {"--warmup-epochs", "-1"}, "--warmup-epochs"},
      {"ThreadsZero", {"--threads", "0"}, "--threads"},
      {"ThreadsAbsurd", {"--threads", "5000"}, "--threads"},
      {"SeedNegative", {"--seed", "-1"}, "--seed"},
      {"SeedOverflow", {"--seed", "18446744073709551616"}, "--seed"},
      {"SeedNotANumber", {"--seed", "0x10"}, "--seed"},
      {"ExpectRanksNegative", {"--expect-ranks", "-1"}, "--expect-ranks"},
      {"ProgressEveryNegative", {"--progress-every", "-5"}, "--progress-every"},
      {"OverwriteNotABool", {"--overwrite=maybe"}, "--overwrite"},
      {"LrScheduleUnknown", {"--lr-schedule", "linear"}, "--lr-schedule"},
      {"ScheduleUnknown", {"--schedule", "pipedream"}, "--schedule"},
      {"ModelUnknown", {"--model", "resnet50"}, "--model"},
      {"DatasetUnknown", {"--dataset", "imagenet"}, "--dataset"},
      {"MaxTrainSamplesNegative", {"--max-train-samples", "-1"}, "--max-train-samples"},
      {"SyntheticClassesOne", {"--synthetic-classes", "1"}, "--synthetic-classes"},
      {"SyntheticShapeZeroDim", {"--synthetic-shape", "1x0x28"}, "--synthetic-shape"},
      {"MlpHiddenEmptyItem", {"--mlp-hidden", "10,,2"}, "--mlp-hidden"},
      {"ServerSplitNotAList", {"--server-split", "1,a"}, "--server-split"},
      {"ServerSplitUnknownWord", {"--server-split", "flops"}, "--server-split"},
      {"ServerSplitZero", {"--server-split", "0"}, "--server-split"},
      {"EdgeFirstZero", {"--edge-first", "0"}, "--edge-first"},
      {"EdgeLastNegative", {"--edge-last", "-1"}, "--edge-last"},
      {"EdgeDeviceUnknown", {"--edge-device", "tpu"}, "--edge-device"},
      {"ServerDeviceUnknown", {"--server-device", "gpu"}, "--server-device"},
      {"FwdCodecUnknown", {"--fwd-codec", "zip"}, "--fwd-codec"},
      {"FwdCodecUnknownParameter", {"--fwd-codec", "quant:level=3"}, "level"},
      {"FwdCodecParameterOutOfRange", {"--fwd-codec", "quant:bits=99"}, "--fwd-codec"},
      {"FwdCodecMalformedParameter", {"--fwd-codec", "quant:bits"}, "--fwd-codec"},
      {"FwdCodecEmpty", {"--fwd-codec", ""}, "--fwd-codec"},
      {"BwdCodecParameterOutOfRange", {"--bwd-codec", "topk:ratio=2"}, "--bwd-codec"},
      {"BwdCodecParameterTwice", {"--bwd-codec", "sortquant:bits=4,bits=5"}, "--bwd-codec"}};
  for (const BadArguments& bad : table) {
    SCOPED_TRACE(bad.name);
    const UsageError e = usage_error_of(bad.args);
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find(bad.expected), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << bad.expected;
  }
}

TEST(Cli, HelpGroupsOptionsBySectionAndShowsDefaults) {
  const CommandLine cl = parse({"--help"});
  ASSERT_TRUE(cl.help);
  const std::string& help = cl.help_text;
  // Sections in declaration order, each with its own options.
  const std::vector<std::string> captions{"Run:", "Model:", "Data:", "Training:", "Pipeline", "Compression"};
  std::vector<size_t> at;
  for (const auto& caption : captions) {
    at.push_back(help.find("\n" + caption));
    ASSERT_NE(at.back(), std::string::npos) << "no section " << caption << " in\n" << help;
  }
  for (size_t i = 1; i < at.size(); ++i) EXPECT_LT(at[i - 1], at[i]) << captions[i];
  auto section_of = [&](const std::string& option) {
    const size_t where = help.find("--" + option + " ");
    EXPECT_NE(where, std::string::npos) << option;
    size_t section = 0;
    for (size_t i = 0; i < at.size(); ++i)
      if (at[i] < where) section = i;
    return captions[section];
  };
  EXPECT_EQ(section_of("output"), "Run:");
  EXPECT_EQ(section_of("model"), "Model:");
  EXPECT_EQ(section_of("data-dir"), "Data:");
  EXPECT_EQ(section_of("epochs"), "Training:");
  EXPECT_EQ(section_of("momentum"), "Training:");
  EXPECT_EQ(section_of("chunks"), "Pipeline");
  EXPECT_EQ(section_of("fwd-codec"), "Compression");
  // Defaults are shown as a user would type them.
  for (const std::string shown : {"--epochs arg (=10)", "--batch-size arg (=64)", "--lr arg (=0.05)",
                                  "--momentum arg (=0.9)", "--weight-decay arg (=0.0005)", "--model arg (=lenet5)",
                                  "--schedule arg (=gpipe)", "--seed arg (=1)", "--fwd-codec arg (=none)"})
    EXPECT_NE(help.find(shown), std::string::npos) << "help lacks '" << shown << "':\n" << help;
  EXPECT_EQ(help.find("0.050000"), std::string::npos) << "a default printed with binary noise:\n" << help;
  EXPECT_NE(help.find("Usage:"), std::string::npos);
  EXPECT_NE(help.find("sortquant"), std::string::npos);  // the codec catalogue
}

TEST_F(CliFiles, ResolvedIniRoundTrips) {
  const RunConfig first =
      parse({"--model", "mlp", "--mlp-hidden", "32,16", "--dataset", "synthetic", "--synthetic-shape", "2x6x6",
             "--synthetic-classes", "4", "--epochs", "4", "--lr", "0.0123456789", "--momentum", "0.5",
             "--weight-decay", "0", "--nesterov", "--lr-schedule", "step", "--lr-step-epochs", "2", "--lr-gamma",
             "0.3", "--warmup-epochs", "1", "--batch-size", "12", "--chunks", "3", "--schedule", "1f1b",
             "--server-split", "2", "--edge-first", "2", "--fwd-codec", "quant:bits=4", "--bwd-codec",
             "sortquant:bits=6,split=2", "--seed", "12345678901234", "--output", dir_.string() + "/out.h5",
             "--overwrite", "--threads", "2"})
          .config;
  const std::string text = first.to_ini();
  // One header per section, in the order of the table.
  for (const std::string header : {"[run]", "[model]", "[data]", "[train]", "[pipeline]", "[compress]"}) {
    const size_t at = text.find(header + "\n");
    ASSERT_NE(at, std::string::npos) << header << " missing in\n" << text;
    EXPECT_EQ(text.find(header + "\n", at + 1), std::string::npos) << header << " twice in\n" << text;
  }
  EXPECT_NE(text.find("model = mlp\n"), std::string::npos) << text;

  const RunConfig second = parse({"--config", write("resolved.ini", text)}).config;
  ASSERT_EQ(second.resolved.size(), first.resolved.size());
  for (size_t i = 0; i < first.resolved.size(); ++i) {
    EXPECT_EQ(second.resolved[i].section, first.resolved[i].section);
    EXPECT_EQ(second.resolved[i].name, first.resolved[i].name);
    EXPECT_EQ(second.resolved[i].value, first.resolved[i].value) << first.resolved[i].name;
  }
  EXPECT_EQ(second.to_ini(), text);
  EXPECT_EQ(second.mlp_hidden, first.mlp_hidden);
  EXPECT_EQ(second.data.synthetic_shape, first.data.synthetic_shape);
  EXPECT_EQ(second.seed, first.seed);
  EXPECT_DOUBLE_EQ(second.lr, first.lr);
  EXPECT_EQ(second.nesterov, true);
  EXPECT_EQ(second.overwrite, true);
  EXPECT_EQ(second.bwd_codec, "sortquant:bits=6,split=2");
}

TEST(Cli, ParseIntListNamesTheOption) {
  EXPECT_EQ(splitpipe::parse_int_list("1x28x28", "shape"), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(splitpipe::parse_int_list("4, 5,6", "cuts"), (std::vector<int64_t>{4, 5, 6}));
  for (const std::string bad : {"", "1,,2", "0", "-3", "2.5", "1x", "abc", "99999999999999999999"}) {
    try {
      splitpipe::parse_int_list(bad, "my-option");
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--my-option"), std::string::npos) << e.what();
    }
  }
}
