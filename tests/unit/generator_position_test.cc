// The checkpointed positions of the generator and the file source: records are neither lost nor
// repeated when a job resumes from a snapshot at the same or another parallelism, across several
// rescalings.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include "eddy/sources.h"
#include "eddy/state/operator_state.h"

namespace eddy {
namespace {

struct VectorOutput final : Output<int64_t> {
  std::vector<int64_t>* out;
  explicit VectorOutput(std::vector<int64_t>* o) : out(o) {}
  void Collect(const int64_t& v, Timestamp) override { out->push_back(v); }
  void EmitWatermark(Watermark) override {}
  void EmitIdleness(bool) override {}
};

struct LineOutput final : Output<std::string> {
  std::vector<int64_t>* out;
  explicit LineOutput(std::vector<int64_t>* o) : out(o) {}
  void Collect(const std::string& v, Timestamp) override { out->push_back(std::stoll(v)); }
  void EmitWatermark(Watermark) override {}
  void EmitIdleness(bool) override {}
};

/// One run of `parallelism` readers made by `make` and restored from `snapshots` (the previous
/// run's operator state, one per old subtask; empty = fresh), each emitting up to `budget`
/// records (or to the end when budget < 0). Returns the new snapshots; appends what was emitted
/// to `emitted`.
template <class Out, class Make>
std::vector<std::string> RunReaders(int parallelism, const std::vector<std::string>& snapshots,
                                    Make make, int64_t budget, std::vector<int64_t>& emitted) {
  std::vector<OperatorStateStore> stores(static_cast<size_t>(parallelism));
  if (!snapshots.empty()) {
    auto r = RedistributeOperatorState(snapshots, parallelism);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    stores = std::move(*r);
  }
  std::vector<std::string> out;
  for (int s = 0; s < parallelism; ++s) {
    OperatorContext ctx;
    ctx.subtask_index = s;
    ctx.parallelism = parallelism;
    ctx.operator_state = &stores[static_cast<size_t>(s)];
    auto reader = make();
    Status st = reader->Open(ctx);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::vector<int64_t> got;
    Out c(&got);
    // A call emits a bounded batch; a budget stops between calls.
    while (budget < 0 || static_cast<int64_t>(got.size()) < budget) {
      if (reader->PollNext(c) == InputStatus::kEndOfInput) break;
    }
    std::string raw;
    reader->SnapshotPosition(raw);
    EXPECT_TRUE(raw.empty()) << "the position is operator state, not raw state";
    emitted.insert(emitted.end(), got.begin(), got.end());
    std::string snap;
    SnapshotOperatorState(stores[static_cast<size_t>(s)], snap);
    out.push_back(std::move(snap));
  }
  return out;
}

std::vector<std::string> RunGenerators(int parallelism, const std::vector<std::string>& snapshots,
                                       int64_t count, int64_t budget,
                                       std::vector<int64_t>& emitted) {
  return RunReaders<VectorOutput>(
      parallelism, snapshots,
      [count] {
        return std::make_unique<GeneratorReader<int64_t>>([](int64_t n, int64_t& v) { v = n; },
                                                          count, 0);
      },
      budget, emitted);
}

std::vector<std::string> RunFileReaders(int parallelism, const std::vector<std::string>& snapshots,
                                        const std::string& path, int64_t budget,
                                        std::vector<int64_t>& emitted) {
  return RunReaders<LineOutput>(
      parallelism, snapshots, [path] { return std::make_unique<TextFileReader>(path); }, budget,
      emitted);
}

TEST(GeneratorPositionTest, RescalingNeitherLosesNorRepeats) {
  const int64_t count = 20000;
  for (std::vector<int> plan : {std::vector<int>{2, 2, 2}, {2, 4, 1}, {3, 2, 5, 1}, {1, 7, 3}}) {
    std::vector<int64_t> emitted;
    std::vector<std::string> snaps;
    for (size_t i = 0; i < plan.size(); ++i) {
      bool last = i + 1 == plan.size();
      snaps = RunGenerators(plan[i], snaps, count, last ? -1 : 1000 + 300 * static_cast<int64_t>(i),
                            emitted);
    }
    std::sort(emitted.begin(), emitted.end());
    ASSERT_EQ(emitted.size(), static_cast<size_t>(count)) << "plan starting " << plan[0];
    for (int64_t n = 0; n < count; ++n) ASSERT_EQ(emitted[static_cast<size_t>(n)], n);
  }
}

TEST(FileSourcePositionTest, RescalingNeitherLosesNorRepeats) {
  const int64_t count = 20000;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("eddy-file-position-" + std::to_string(::getpid()) + ".txt"))
                               .string();
  {
    std::ofstream f(path);
    for (int64_t n = 0; n < count; ++n) f << n << "\n";
  }
  for (std::vector<int> plan : {std::vector<int>{2, 2, 2}, {2, 4, 1}, {3, 2, 5, 1}, {1, 7, 3}}) {
    std::vector<int64_t> emitted;
    std::vector<std::string> snaps;
    for (size_t i = 0; i < plan.size(); ++i) {
      bool last = i + 1 == plan.size();
      snaps = RunFileReaders(plan[i], snaps, path, last ? -1 : 1000 + 300 * static_cast<int64_t>(i),
                             emitted);
    }
    std::sort(emitted.begin(), emitted.end());
    ASSERT_EQ(emitted.size(), static_cast<size_t>(count)) << "plan starting " << plan[0];
    for (int64_t n = 0; n < count; ++n) ASSERT_EQ(emitted[static_cast<size_t>(n)], n);
  }
  std::filesystem::remove(path);
}

TEST(FileSourcePositionTest, CorruptStateFailsOpenNamingTheFile) {
  OperatorStateStore store;
  store.Get("_file_source.position", OperatorStateStore::Mode::kUnion).items.push_back("\xff");
  OperatorContext ctx;
  ctx.operator_state = &store;
  TextFileReader f("/etc/hostname");
  Status st = f.Open(ctx);
  EXPECT_EQ(st.code(), StatusCode::kParseError);
  EXPECT_NE(st.message().find("/etc/hostname"), std::string::npos) << st.ToString();
}

TEST(GeneratorPositionTest, CorruptStateFailsOpen) {
  OperatorStateStore store;
  store.Get("_generator.position", OperatorStateStore::Mode::kUnion).items.push_back("\\xff");
  OperatorContext ctx;
  ctx.operator_state = &store;
  GeneratorReader<int64_t> g([](int64_t n, int64_t& v) { v = n; }, 10, 0);
  EXPECT_EQ(g.Open(ctx).code(), StatusCode::kParseError);
}

}  // namespace
}  // namespace eddy
