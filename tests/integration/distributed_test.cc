// The distributed runtime against the single-process one: every example and randomized window
// jobs run through `eddy run --workers 3 --slots 2` (control plane in the CLI, three eddy-worker
// processes exchanging records over ZeroMQ) at parallelism 1..6 and must give the same output as
// a multiset, with the per-key order of the single-process run.

#include <gtest/gtest.h>

#include "tests/integration/cli_harness.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::string SourceDir() {
  return EDDY_SOURCE_DIR_DEFAULT;
}
using eddy::testing::RunEddy;

/// Lines grouped by their "id" field (the key of the keyed examples), in output order.
std::map<std::string, std::vector<std::string>> PerKey(const std::vector<std::string>& lines) {
  static const std::regex kId("\"id\": ?\"([^\"]*)\"");
  std::map<std::string, std::vector<std::string>> m;
  for (const auto& l : lines) {
    std::smatch sm;
    if (std::regex_search(l, sm, kId)) m[sm[1]].push_back(l);
  }
  return m;
}

void ExpectSameResults(const std::string& job, const std::string& extra) {
  auto single = RunEddy("run --quiet --parallelism 1 " + extra + " " + job);
  ASSERT_EQ(single.exit_code, 0) << single.log;
  ASSERT_FALSE(single.lines.empty());
  auto sorted_single = single.lines;
  std::sort(sorted_single.begin(), sorted_single.end());
  auto keyed_single = PerKey(single.lines);
  for (int p = 1; p <= 6; ++p) {
    auto dist = RunEddy("run --workers 3 --slots 2 --parallelism " + std::to_string(p) + " " +
                        extra + " " + job);
    ASSERT_EQ(dist.exit_code, 0) << job << " at parallelism " << p << "\n" << dist.log;
    auto sorted = dist.lines;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, sorted_single) << job << " at parallelism " << p << "\n" << dist.log;
    EXPECT_EQ(PerKey(dist.lines), keyed_single) << job << " per-key order at parallelism " << p;
    // The job really ran on the cluster.
    EXPECT_NE(dist.log.find("deploying to worker-"), std::string::npos) << dist.log;
  }
}

class DistributedExampleTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DistributedExampleTest, SameResultsAsSingleProcess) {
  ExpectSameResults((fs::path(SourceDir()) / "examples" / (GetParam() + ".yaml")).string(), "");
}

INSTANTIATE_TEST_SUITE_P(Examples, DistributedExampleTest,
                         ::testing::ValuesIn(eddy::testing::GoldenExamples()),
                         eddy::testing::ExampleParamName());

// `stateBackend: rocksdb` reaches the workers (they compile the same spec text): every keyed
// operator keeps its state in RocksDB in the worker processes, and the results do not change.
TEST(DistributedStateBackendTest, RocksDBOnTheWorkersGivesTheSameResults) {
  for (const char* name : {"sensor-window", "orders-join"}) {
    fs::path job = eddy::testing::ExampleCopyWith(name, "stateBackend: rocksdb\n");
    ExpectSameResults(job.string(), "");
    fs::remove_all(job.parent_path());
  }
}

/// Random readings with bounded disorder (up to 3 s late), 20 keys, over ~10 minutes.
fs::path WriteRandomInput(const fs::path& dir, uint32_t seed, int n) {
  std::mt19937 rng(seed);
  fs::create_directories(dir);
  fs::path p = dir / "readings.csv";
  std::ofstream out(p);
  int64_t t = 1700000000000;
  for (int i = 0; i < n; ++i) {
    t += static_cast<int64_t>(rng() % 1500);
    int64_t ts = t - static_cast<int64_t>(rng() % 3000);
    out << "k" << (rng() % 20) << "," << ts << "," << static_cast<int>(rng() % 1000) << "\n";
  }
  return p;
}

/// Job specs over the random input: the window kinds of the engine-core property test.
std::string WindowJob(const std::string& window) {
  return "name: random-" + std::to_string(std::hash<std::string>()(window) % 1000) + R"yaml(
sources:
  - name: readings
    file: {path: readings.csv, format: csv}
    schema: {id: string, ts: int64, v: int64}
    timestamp: "ts"
    watermark: {maxOutOfOrderness: 3s}
steps:
  - name: agg
    from: readings
    keyBy: [id]
    window: )yaml" +
         window + R"yaml(
    aggregate: {n: "count()", total: "sum(v)", hi: "max(v)"}
sinks:
  - {name: out, from: agg, print: {}}
)yaml";
}

TEST(DistributedRandomizedTest, WindowsOverBoundedDisorderMatchSingleProcess) {
  fs::path dir = fs::temp_directory_path() / ("eddy-dist-random-" + std::to_string(::getpid()));
  const std::vector<std::string> windows = {"{tumbling: 10s}", "{sliding: {size: 30s, slide: 10s}}",
                                            "{session: {gap: 2s}}"};
  for (uint32_t seed : {1u, 2u}) {
    WriteRandomInput(dir, seed, 3000);
    for (const auto& w : windows) {
      fs::path job = dir / "job.yaml";
      std::ofstream(job) << WindowJob(w);
      SCOPED_TRACE("seed " + std::to_string(seed) + " window " + w);
      ExpectSameResults(job.string(), "");
      if (HasFatalFailure()) break;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
