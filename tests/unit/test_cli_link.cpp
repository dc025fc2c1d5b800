// --link: parsing of the spec and the arithmetic of the link queue (no MPI here; the timing of
// the transport decorator is tested under mpirun in tests/mpi/test_link.cpp).
#include <gtest/gtest.h>

#include "splitpipe/error.hpp"
#include "splitpipe/link.hpp"

using namespace splitpipe;

namespace {

// The message of the UsageError thrown for `text` (fails the test when nothing is thrown).
std::string link_error(const std::string& text) {
  try {
    parse_link_spec(text);
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UsageError for '" << text << "'";
  return "";
}

}  // namespace

TEST(LinkSpec, BandwidthUnitsAreDecimalBitsPerSecond) {
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=800bit").bits_per_second, 800);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=64kbit").bits_per_second, 64e3);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=100Mbit").bits_per_second, 100e6);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=2.5Gbit").bits_per_second, 2.5e9);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=10mbit").bits_per_second, 10e6);  // tc's spelling
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=10Mbit/s").bits_per_second, 10e6);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=10Mbps").bits_per_second, 10e6);  // bits, not tc's bytes
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=1Gbps").bits_per_second, 1e9);
}

TEST(LinkSpec, DefaultsAreNoLatencyAndBothDirections) {
  const LinkSpec spec = parse_link_spec("bandwidth=10Mbit");
  EXPECT_EQ(spec.latency_seconds, 0);
  EXPECT_TRUE(spec.shape_up);
  EXPECT_TRUE(spec.shape_down);
}

TEST(LinkSpec, LatencyUnitsAndDirection) {
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=1Mbit,latency=250us").latency_seconds, 250e-6);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=1Mbit,latency=5ms").latency_seconds, 5e-3);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=1Mbit,latency=0.1s").latency_seconds, 0.1);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=1Mbit,latency=0").latency_seconds, 0);
  // Keys in any order, spaces around items tolerated.
  const LinkSpec up = parse_link_spec("direction=up, bandwidth=1Mbit");
  EXPECT_TRUE(up.shape_up);
  EXPECT_FALSE(up.shape_down);
  const LinkSpec down = parse_link_spec("bandwidth=1Mbit,direction=down");
  EXPECT_FALSE(down.shape_up);
  EXPECT_TRUE(down.shape_down);
}

TEST(LinkSpec, ErrorsNameTheOptionAndTheBadPart) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"latency=5ms", "bandwidth is required"},
      {"bandwidth=100", "needs a unit"},
      {"bandwidth=100MB", "byte units are ambiguous"},
      {"bandwidth=100MBps", "byte units are ambiguous"},
      {"bandwidth=100Mbyte", "byte units are ambiguous"},
      {"bandwidth=100Tbit", "unknown unit 'Tbit'"},
      {"bandwidth=fast", "bandwidth 'fast' does not start with a non-negative number"},
      {"bandwidth=-1Mbit", "does not start with a non-negative number"},
      {"bandwidth=0Mbit", "must be > 0"},
      {"bandwidth=1e-300bit", "outside 1 bit/s to 10 Tbit/s"},  // would silently switch emulation off
      {"bandwidth=50000Gbit", "outside 1 bit/s to 10 Tbit/s"},
      {"bandwidth=1Mbit,latency=61s", "latency '61s' is over 60 s"},
      {"bandwidth=1Mbit,latency=5", "latency '5': needs a unit"},
      {"bandwidth=1Mbit,latency=5min", "unknown unit 'min'"},
      {"bandwidth=1Mbit,direction=sideways", "direction 'sideways'"},
      {"bandwidth=1Mbit,jitter=1ms", "unknown key 'jitter'"},
      {"bandwidth=1Mbit,bandwidth=2Mbit", "'bandwidth' given twice"},
      {"bandwidth", "'bandwidth' is not key=value"},
      {"bandwidth=1Mbit,", "trailing ','"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string message = link_error(text);
    EXPECT_EQ(message.rfind("--link: ", 0), 0u) << text << " -> " << message;
    EXPECT_NE(message.find(expected), std::string::npos) << text << " -> " << message;
  }
}

TEST(LinkSpec, DescribeReadsBack) {
  EXPECT_EQ(parse_link_spec("bandwidth=10Mbit").describe(), "10 Mbit/s, both directions");
  EXPECT_EQ(parse_link_spec("bandwidth=1.5Gbit,latency=5ms,direction=up").describe(),
            "1.5 Gbit/s, latency 5 ms, up only (edge -> server)");
  EXPECT_EQ(parse_link_spec("bandwidth=64kbit,latency=200us,direction=down").describe(),
            "64 kbit/s, latency 200 us, down only (server -> edge)");
}

TEST(LinkQueue, SerialisationPlusLatency) {
  LinkQueue link(100e6, 0.005);
  // 1.25 MB at 100 Mbit/s: 0.1 s on the wire, then 5 ms of propagation.
  EXPECT_NEAR(link.send(10.0, 1'250'000), 10.105, 1e-9);
  EXPECT_NEAR(link.free_at(), 10.1, 1e-9);
}

TEST(LinkQueue, MessagesSerialiseInOrder) {
  LinkQueue link(8e6, 0.001);  // 1 byte per microsecond
  // Three messages handed over at once leave one after the other.
  EXPECT_NEAR(link.send(0.0, 1000), 0.001 + 0.001, 1e-12);
  EXPECT_NEAR(link.send(0.0, 2000), 0.003 + 0.001, 1e-12);
  EXPECT_NEAR(link.send(0.0, 500), 0.0035 + 0.001, 1e-12);
  // One handed over while the link is still busy waits for it...
  EXPECT_NEAR(link.send(0.003, 1000), 0.0045 + 0.001, 1e-12);
  // ...and one handed over after it went idle starts at once.
  EXPECT_NEAR(link.send(1.0, 1000), 1.001 + 0.001, 1e-12);
}

TEST(LinkList, OneSpecServesEveryClientAndAListGivesEachItsOwn) {
  const auto same = parse_link_list("bandwidth=10Mbit,latency=5ms", 3);
  ASSERT_EQ(same.size(), 3u);
  for (const auto& link : same) EXPECT_DOUBLE_EQ(link.bits_per_second, 10e6);
  const auto own = parse_link_list("bandwidth=10Mbit; bandwidth=100Mbit,direction=up ;bandwidth=1Gbit", 3);
  ASSERT_EQ(own.size(), 3u);
  EXPECT_DOUBLE_EQ(own[0].bits_per_second, 10e6);
  EXPECT_DOUBLE_EQ(own[1].bits_per_second, 100e6);
  EXPECT_FALSE(own[1].shape_down);
  EXPECT_DOUBLE_EQ(own[2].bits_per_second, 1e9);
  EXPECT_EQ(parse_link_list("bandwidth=1Mbit", 1).size(), 1u);
}

TEST(LinkList, AListOfTheWrongLengthOrWithAnEmptyItemIsRefused) {
  auto message = [](const std::string& text, int clients) {
    try {
      parse_link_list(text, clients);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("bandwidth=1Mbit;bandwidth=2Mbit", 3).find("2 links given for 3 edge client(s)"), std::string::npos);
  EXPECT_NE(message("bandwidth=1Mbit;", 1).find("trailing ';'"), std::string::npos);
  EXPECT_NE(message("bandwidth=1Mbit;;bandwidth=2Mbit", 3).find("--link"), std::string::npos);
}
