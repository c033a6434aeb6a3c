// Golden tests: every examples/<job>.yaml with an examples/expected/<job>.jsonl runs through the
// real `eddy` binary at parallelism 1, 2 and 4; its output must equal the expected lines as a
// multiset. Add a case by adding the two files; no C++ needed.

#include <gtest/gtest.h>

#include "tests/integration/cli_harness.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::string SourceDir() {
  return EDDY_SOURCE_DIR_DEFAULT;
}
using eddy::testing::EddyBinary;
using eddy::testing::RunEddy;

std::vector<std::string> ReadLines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> v;
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty()) v.push_back(l);
  }
  return v;
}

class ExampleTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ExampleTest, OutputMatchesExpectedAtEveryParallelism) {
  const fs::path job = fs::path(SourceDir()) / "examples" / (GetParam() + ".yaml");
  auto expected =
      ReadLines(fs::path(SourceDir()) / "examples" / "expected" / (GetParam() + ".jsonl"));
  std::sort(expected.begin(), expected.end());
  ASSERT_FALSE(expected.empty());
  for (int p : {1, 2, 4}) {
    auto r = RunEddy("run --quiet --parallelism " + std::to_string(p) + " " + job.string());
    ASSERT_EQ(r.exit_code, 0) << "parallelism " << p;
    std::sort(r.lines.begin(), r.lines.end());
    EXPECT_EQ(r.lines, expected) << GetParam() << " at parallelism " << p;
  }
}

// The same golden output with keyed state in RocksDB (a copy of the spec with
// `stateBackend: rocksdb`).
TEST_P(ExampleTest, RocksDBStateBackendGivesTheSameOutput) {
  fs::path job = eddy::testing::ExampleCopyWith(GetParam(), "stateBackend: rocksdb\n");
  auto expected =
      ReadLines(fs::path(SourceDir()) / "examples" / "expected" / (GetParam() + ".jsonl"));
  std::sort(expected.begin(), expected.end());
  for (int p : {1, 4}) {
    auto r = RunEddy("run --quiet --parallelism " + std::to_string(p) + " " + job.string());
    ASSERT_EQ(r.exit_code, 0) << "parallelism " << p << "\n" << r.log;
    std::sort(r.lines.begin(), r.lines.end());
    EXPECT_EQ(r.lines, expected) << GetParam() << " at parallelism " << p;
  }
  fs::remove_all(job.parent_path());
}

INSTANTIATE_TEST_SUITE_P(Examples, ExampleTest,
                         ::testing::ValuesIn(eddy::testing::GoldenExamples()),
                         eddy::testing::ExampleParamName());

// The C++ API examples (examples/cpp/<name>.cc) against examples/expected/cpp/<name>.txt.
TEST(CppExamplesTest, SeedResultsThroughTheDataStreamApi) {
  for (const char* name : {"sensor_reduce", "window_walkthrough"}) {
    std::string cmd = "cd " + SourceDir() + " && " + std::string(EDDY_BINARY_DIR_DEFAULT) +
                      "/examples/example_" + name + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    EXPECT_EQ(WEXITSTATUS(pclose(p)), 0) << name;
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < out.size()) {
      size_t nl = out.find('\n', start);
      if (nl == std::string::npos) nl = out.size();
      if (nl > start) lines.push_back(out.substr(start, nl - start));
      start = nl + 1;
    }
    std::sort(lines.begin(), lines.end());
    auto expected = ReadLines(fs::path(SourceDir()) / "examples" / "expected" / "cpp" /
                              (std::string(name) + ".txt"));
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(lines, expected) << name;
  }
}

TEST(CliTest, BadJobSpecIsRejectedWithFileLineAndField) {
  fs::path dir = fs::temp_directory_path() / "eddy-cli-test";
  fs::create_directories(dir);
  fs::path job = dir / "bad.yaml";
  std::ofstream(job) << "name: bad\nsources:\n  - name: r\n    file: {path: x.csv, format: csv}\n"
                        "    schema: {id: strin}\nsinks:\n  - {name: o, from: r, print: {}}\n";
  std::string cmd = EddyBinary() + " validate " + job.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(out.find("bad.yaml:5:"), std::string::npos) << out;
  EXPECT_NE(out.find("sources[0] (r).schema.id"), std::string::npos) << out;
  EXPECT_NE(out.find("unknown type 'strin'"), std::string::npos) << out;
}

TEST(CliTest, PlanShowsChainsAndExchanges) {
  auto r = RunEddy("plan " + (fs::path(SourceDir()) / "examples" / "sensor-window.yaml").string());
  ASSERT_EQ(r.exit_code, 0);
  std::string all;
  for (const auto& l : r.lines) all += l + "\n";
  EXPECT_NE(all.find("Source: readings -> Parse(csv) -> Timestamps/Watermarks"), std::string::npos)
      << all;
  EXPECT_NE(all.find("HASH"), std::string::npos) << all;
}

}  // namespace
