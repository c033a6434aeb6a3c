// The job spec compiler: error messages ("file:line:col: path: message") and small end-to-end
// runs (inputs written to a temp folder, a json file sink read back).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/src/spec/upsert_sink.h"
#include "eddy/control/local_executor.h"
#include "eddy/spec/job_spec.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fs::path TempRoot() {
  return fs::temp_directory_path() / ("eddy_job_spec_" + std::to_string(::getpid()));
}

/// Removes this process's temp folders after the last test.
class TempRootCleanup final : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(TempRoot(), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const kCleanup =
    ::testing::AddGlobalTestEnvironment(new TempRootCleanup);

/// A fresh folder per call. File sinks keep one open file per path for the whole process, so a
/// path is never used twice (not even by --gtest_repeat).
fs::path TestDir(const std::string& sub = "") {
  static int counter = 0;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = TempRoot() / (std::string(info->test_suite_name()) + "." + info->name() + sub + "." +
                             std::to_string(counter++));
  fs::create_directories(d);
  return d;
}

void WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

/// `s` without the spaces outside quoted strings: file sinks write compact JSON, the tests are
/// easier to read with spaces.
std::string Compact(const std::string& s) {
  std::string r;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"' && (i == 0 || s[i - 1] != '\\')) quoted = !quoted;
    if (s[i] == ' ' && !quoted) continue;
    r += s[i];
  }
  return r;
}

/// Expected lines: compacted and sorted like ReadLines' result.
std::vector<std::string> Sorted(std::vector<std::string> v) {
  for (auto& l : v) l = Compact(l);
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> ReadLines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> v;
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty()) v.push_back(l);
  }
  std::sort(v.begin(), v.end());
  return v;
}

bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// The compile error of `yaml` (the test fails if it compiles).
std::string CompileError(const std::string& yaml, const fs::path& dir = fs::temp_directory_path()) {
  JobSpecOptions o;
  o.base_dir = dir.string();
  auto r = CompileJobSpec(yaml, "job.yaml", o);
  EXPECT_FALSE(r.ok()) << "compiled:\n" << yaml;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  return r.status().message();
}

/// A valid prefix: a generator source `g` with fields n (int64), k (string), v (double).
const std::string kGen = R"y(name: t
sources:
  - name: g
    generator: {count: 10, fields: {n: "n", k: "'k' + (n % 2)", v: "n * 1.5"}}
)y";

control::JobResult RunJob(CompiledJob& job) {
  control::LocalExecutor ex;
  return ex.Execute(job.env->graph());
}

/// Compiles and runs `yaml` (paths relative to `dir`); returns the sorted lines of `out_file`.
std::vector<std::string> RunSpec(const std::string& yaml, const fs::path& dir,
                                 const std::string& out_file = "out.jsonl", int parallelism = 0) {
  JobSpecOptions o;
  o.base_dir = dir.string();
  o.parallelism = parallelism;
  auto job = CompileJobSpec(yaml, "job.yaml", o);
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  if (!job.ok()) return {};
  auto r = RunJob(*job);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  return ReadLines(dir / out_file);
}

std::string Plan(const std::string& yaml) {
  auto job = CompileJobSpec(yaml, "job.yaml");
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  if (!job.ok()) return "";
  auto jg = JobGraph::FromStreamGraph(job->env->graph());
  EXPECT_TRUE(jg.ok());
  return jg.ok() ? jg->ToText() : "";
}

// ---------------------------------------------------------------------------------------------
// Errors: every message says where (file:line:col), what (path) and why
// ---------------------------------------------------------------------------------------------

TEST(JobSpecErrorTest, UnknownKey) {
  std::string m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, filtr: "n > 1"}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:6:24: steps[0]: unknown key 'filtr' (expected one of: name, from,"))
      << m;
  m = CompileError("name: t\nnmae: x\n");
  EXPECT_TRUE(Has(m, "job.yaml:2:1: unknown key 'nmae'")) << m;
}

TEST(JobSpecErrorTest, MissingName) {
  std::string m = CompileError(R"y(sources:
  - {name: g, generator: {count: 1, fields: {n: "n"}}}
sinks:
  - {name: o, from: g, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:1:1: name: is required")) << m;
  m = CompileError(R"y(name: t
sources:
  - generator: {count: 1, fields: {n: "n"}}
sinks:
  - {name: o, from: g, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:3:5: sources[0].name: is required")) << m;
}

TEST(JobSpecErrorTest, DuplicateName) {
  std::string m = CompileError(kGen + R"y(  - name: g
    generator: {count: 1, fields: {n: "n"}}
sinks:
  - {name: o, from: g, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:5:11: sources[1].name: 'g' is already defined")) << m;
  m = CompileError(kGen + R"y(sinks:
  - {name: g, from: g, print: {}}
)y");
  EXPECT_TRUE(Has(m, "sinks[0].name: 'g' is already defined")) << m;
}

TEST(JobSpecErrorTest, UnknownFromListsTheKnownStreams) {
  std::string m = CompileError(kGen + R"y(steps:
  - {name: s, from: nope, filter: "n > 1"}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:6:21: steps[0] (s).from: unknown stream 'nope' (defined so far: g;"))
      << m;
  m = CompileError(kGen + R"y(sinks:
  - {name: o, from: g.errors, print: {}}
)y");
  EXPECT_TRUE(Has(m, "'g' has no side output 'errors'")) << m;
}

TEST(JobSpecErrorTest, BadDuration) {
  std::string m = CompileError(kGen + R"y(steps:
  - name: w
    from: g
    keyBy: [k]
    window: {tumbling: 10q}
    aggregate: {c: "count()"}
sinks:
  - {name: o, from: w, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:9:24: steps[0] (w).window.tumbling: bad duration unit in '10q'"))
      << m;
  m = CompileError("name: t\nbufferTimeout: soon\n" + kGen.substr(8));
  EXPECT_TRUE(Has(m, "job.yaml:2:16: bufferTimeout: bad duration 'soon'")) << m;
}

TEST(JobSpecErrorTest, BadType) {
  std::string m = CompileError(R"y(name: t
sources:
  - name: r
    file: {path: in.csv}
    schema: {id: strin, ts: int64}
sinks:
  - {name: o, from: r, print: {}}
)y",
                               TestDir());
  EXPECT_TRUE(Has(m, "job.yaml:5:18: sources[0] (r).schema.id: unknown type 'strin'")) << m;
}

TEST(JobSpecErrorTest, BadExpression) {
  std::string m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, map: {x: "n +* 2"}}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:6:33: steps[0] (s).map.x: expression 'n +* 2', column")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, filter: "nn > 1"}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (s).filter: expression 'nn > 1', column 1: unknown field 'nn'"))
      << m;
}

TEST(JobSpecErrorTest, NonBooleanFilter) {
  std::string m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, filter: "n + 1"}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:6:32: steps[0] (s).filter: must be a boolean expression")) << m;
}

TEST(JobSpecErrorTest, EventTimeWindowNeedsTimestamps) {
  std::string m = CompileError(kGen + R"y(steps:
  - name: w
    from: g
    keyBy: [k]
    window: {tumbling: 10s}
    aggregate: {c: "count()"}
sinks:
  - {name: o, from: w, print: {}}
)y");
  EXPECT_TRUE(Has(m,
                  "job.yaml:7:11: steps[0] (w).from: this step uses event time but its input has "
                  "no timestamps"))
      << m;
}

TEST(JobSpecErrorTest, BadAggregate) {
  std::string m = CompileError(kGen + R"y(steps:
  - {name: a, from: g, keyBy: [k], aggregate: {m: "median(v)"}}
sinks:
  - {name: o, from: a, print: {}}
)y");
  EXPECT_TRUE(Has(m, "job.yaml:6:51: steps[0] (a).aggregate.m: unknown aggregate 'median'")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: a, from: g, keyBy: [k], aggregate: {m: "sum(k)"}}
sinks:
  - {name: o, from: a, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (a).aggregate.m: sum needs a numeric argument")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: a, from: g, aggregate: {m: "count()"}}
sinks:
  - {name: o, from: a, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (a).aggregate: an aggregate without a window needs keyBy")) << m;
}

TEST(JobSpecErrorTest, WindowOptionsWithoutAWindow) {
  std::string m = CompileError(kGen + R"y(steps:
  - {name: a, from: g, keyBy: [k], aggregate: {c: "count()"}, lateOutput: late}
sinks:
  - {name: o, from: a, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (a).lateOutput:")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: a, from: g, filter: "n > 1", lateOutput: late}
sinks:
  - {name: o, from: a, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (a).lateOutput: only applies to an aggregate step")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: a, from: g, keyBy: [k], aggregate: {c: "count()"}, trigger: {count: 2}}
sinks:
  - {name: o, from: a, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (a).trigger:")) << m;
}

TEST(JobSpecErrorTest, MoreStructuralErrors) {
  EXPECT_TRUE(Has(CompileError("[1, 2]"), "a job spec is a mapping"));
  EXPECT_TRUE(Has(CompileError("name: t\nsources: []\nsinks: []\n"),
                  "sources: at least one entry is required"));
  EXPECT_TRUE(Has(CompileError("name: t\nsources: [\n"), "job.yaml:"));  // YAML syntax error
  std::string m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, filter: "n > 1", map: {x: n}}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "needs exactly one operator key")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, keyBy: [nope], rolling: {sum: v}}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (s).keyBy: unknown field 'nope' (fields: n, k, v)")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, keyBy: [k], window: {hopping: 1s}, aggregate: {c: "count()"}}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m, "unknown window 'hopping'")) << m;
  m = CompileError(kGen + R"y(steps:
  - {name: s, from: g, partition: sideways}
sinks:
  - {name: o, from: s, print: {}}
)y");
  EXPECT_TRUE(Has(m,
                  "steps[0] (s).partition: must be rebalance, rescale, shuffle, broadcast, global "
                  "or forward"))
      << m;
  m = CompileError(kGen + R"y(sinks:
  - {name: o, from: g, file: {path: x.txt, format: text}}
)y");
  EXPECT_TRUE(Has(m, "sinks[0] (o).file.format: must be json or csv")) << m;
}

TEST(JobSpecErrorTest, WindowWithoutKeyByIsAWindowAllOfParallelismOne) {
  std::string plan = Plan(R"y(name: t
parallelism: 3
sources:
  - name: g
    generator: {count: 10, fields: {n: "n"}}
    timestamp: n
steps:
  - {name: w, from: g, window: {tumbling: 1s}, aggregate: {c: "count()"}}
sinks:
  - {name: o, from: w, print: {}}
)y");
  EXPECT_TRUE(Has(plan, "WindowAll(TumblingEventTimeWindows(1s), aggregate)  parallelism=1"))
      << plan;
}

// ---------------------------------------------------------------------------------------------
// End-to-end runs
// ---------------------------------------------------------------------------------------------

const std::string kSensorCsv =
    "sensor_1,1000,35.5\n"
    "sensor_6,2000,15.5\n"
    "sensor_7,3000,6.5\n"
    "sensor_1,4000,36.5\n"
    "sensor_10,5000,38.5\n";

TEST(JobSpecRunTest, CsvSourceFilterMapAndJsonFileSink) {
  auto dir = TestDir();
  WriteFile(dir / "in.csv", kSensorCsv);
  for (int par : {1, 2}) {
    std::string out = "out" + std::to_string(par) + ".jsonl";
    auto lines = RunSpec(R"y(name: csv
time: processing
sources:
  - name: r
    file: {path: in.csv, format: csv}
    schema: {id: string, ts: int64, temperature: double}
steps:
  - {name: hot, from: r, filter: "temperature > 30"}
  - {name: m, from: hot, map: {id: id, twice: "temperature * 2", at: ts}}
sinks:
  - {name: o, from: m, file: {path: )y" +
                             out + R"y(, format: json}}
)y",
                         dir, out, par);
    EXPECT_EQ(lines, Sorted({R"({"id": "sensor_10", "twice": 77.0, "at": 5000})",
                             R"({"id": "sensor_1", "twice": 71.0, "at": 1000})",
                             R"({"id": "sensor_1", "twice": 73.0, "at": 4000})"}))
        << "parallelism " << par;
  }
}

TEST(JobSpecRunTest, CsvHeaderAndDelimiterAndCsvSink) {
  auto dir = TestDir();
  WriteFile(dir / "in.csv", "id;v\na;1\nb;2\nc;3\n");
  auto lines = RunSpec(R"y(name: hdr
time: processing
sources:
  - name: r
    file: {path: in.csv, delimiter: ";", header: true}
    schema: {id: string, v: int64}
sinks:
  - {name: o, from: r, file: {path: out.csv, format: csv}}
)y",
                       dir, "out.csv", 2);
  EXPECT_EQ(lines, Sorted({"a,1", "b,2", "c,3"}));
}

TEST(JobSpecRunTest, JsonSourceSkipsBadRecordsByDefault) {
  auto dir = TestDir();
  WriteFile(dir / "in.jsonl",
            "{\"id\": \"a\", \"v\": 1}\nnot json\n{\"id\": \"b\", \"v\": 2, \"extra\": true}\n"
            "{\"v\": 3}\n");
  auto lines = RunSpec(R"y(name: js
time: processing
sources:
  - name: r
    file: {path: in.jsonl, format: json}
    schema: {id: string, v: int64}
sinks:
  - {name: o, from: r, file: {path: out.jsonl}}
)y",
                       dir);
  EXPECT_EQ(lines, Sorted({R"({"id": "a", "v": 1})", R"({"id": "b", "v": 2})",
                           R"({"id": null, "v": 3})"}));
}

TEST(JobSpecRunTest, DeadLetterSendsBadRecordsToTheErrorsSideOutput) {
  auto dir = TestDir();
  WriteFile(dir / "in.csv", "a,1\nb,notanumber\nc,3\n");
  auto good = RunSpec(R"y(name: dl
time: processing
sources:
  - name: r
    file: {path: in.csv}
    schema: {id: string, v: int64!}
    onError: dead-letter
sinks:
  - {name: o, from: r, file: {path: out.jsonl}}
  - {name: e, from: r.errors, file: {path: errors.jsonl}}
)y",
                      dir);
  EXPECT_EQ(good, Sorted({R"({"id": "a", "v": 1})", R"({"id": "c", "v": 3})"}));
  auto errors = ReadLines(dir / "errors.jsonl");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(Has(errors[0], R"({"source":"r","record":"b,notanumber","error":"field 'v')"))
      << errors[0];
}

TEST(JobSpecRunTest, OnErrorFailStopsTheJobNamingTheRecord) {
  auto dir = TestDir();
  WriteFile(dir / "in.csv", "a,1\nb,notanumber\n");
  JobSpecOptions o;
  o.base_dir = dir.string();
  auto job = CompileJobSpec(R"y(name: f
time: processing
sources:
  - name: r
    file: {path: in.csv}
    schema: {id: string, v: int64!}
    onError: fail
sinks:
  - {name: o, from: r, file: {path: out.jsonl}}
)y",
                            "job.yaml", o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto r = RunJob(*job);
  ASSERT_FALSE(r.status.ok());
  EXPECT_FALSE(r.status.IsRetryable());
  EXPECT_TRUE(Has(r.status.message(), "source 'r': bad record 'b,notanumber'"))
      << r.status.message();
  EXPECT_TRUE(Has(r.status.message(), "onError: fail")) << r.status.message();
}

TEST(JobSpecRunTest, TextSourceAndFlatMapSplit) {
  auto dir = TestDir();
  WriteFile(dir / "in.txt", "a,b\nc\n");
  auto lines = RunSpec(R"y(name: txt
time: processing
sources:
  - name: l
    file: {path: in.txt, format: text}
steps:
  - {name: words, from: l, flatMap: {split: line, delimiter: ",", as: word}}
  - {name: w, from: words, map: {word: word, len: "length(line)"}}
sinks:
  - {name: o, from: w, file: {path: out.jsonl}}
)y",
                       dir, "out.jsonl", 2);
  EXPECT_EQ(lines, Sorted({R"({"word": "a", "len": 3})", R"({"word": "b", "len": 3})",
                           R"({"word": "c", "len": 1})"}));
}

TEST(JobSpecRunTest, GeneratorSourceRollingAndRunningAggregate) {
  auto dir = TestDir();
  auto lines = RunSpec(R"y(name: gen
time: processing
sources:
  - name: g
    generator: {count: 6, fields: {k: "'k' + (n % 2)", v: "n"}}
    parallelism: 1
steps:
  - {name: s, from: g, keyBy: [k], rolling: {sum: v}}
  - {name: a, from: g, keyBy: [k], aggregate: {c: "count()", total: "sum(v)", mx: "max(v)"}}
sinks:
  - {name: o, from: s, file: {path: rolling.jsonl}}
  - {name: o2, from: a, file: {path: out.jsonl}}
)y",
                       dir, "out.jsonl", 2);
  EXPECT_EQ(lines, Sorted({R"({"k": "k0", "c": 1, "total": 0, "mx": 0})",
                           R"({"k": "k0", "c": 2, "total": 2, "mx": 2})",
                           R"({"k": "k0", "c": 3, "total": 6, "mx": 4})",
                           R"({"k": "k1", "c": 1, "total": 1, "mx": 1})",
                           R"({"k": "k1", "c": 2, "total": 4, "mx": 3})",
                           R"({"k": "k1", "c": 3, "total": 9, "mx": 5})"}));
  EXPECT_EQ(ReadLines(dir / "rolling.jsonl"),
            Sorted({R"({"k": "k0", "v": 0})", R"({"k": "k0", "v": 2})", R"({"k": "k0", "v": 6})",
                    R"({"k": "k1", "v": 1})", R"({"k": "k1", "v": 4})", R"({"k": "k1", "v": 9})"}));
}

TEST(JobSpecRunTest, StateBackendRocksDBGivesTheSameResults) {
  const std::string body = R"y(time: processing
sources:
  - name: g
    generator: {count: 200, fields: {k: "'k' + (n % 7)", v: "n"}}
    parallelism: 1
steps:
  - {name: s, from: g, keyBy: [k], rolling: {sum: v}}
  - {name: a, from: g, keyBy: [k], aggregate: {c: "count()", total: "sum(v)", mx: "max(v)"}}
sinks:
  - {name: o, from: s, file: {path: rolling.jsonl}}
  - {name: o2, from: a, file: {path: out.jsonl}}
)y";
  auto heap_dir = TestDir("heap");
  auto heap = RunSpec("name: gen\nstateBackend: heap\n" + body, heap_dir, "out.jsonl", 2);
  auto rocks_dir = TestDir("rocksdb");
  auto rocks = RunSpec("name: gen\nstateBackend: rocksdb\n" + body, rocks_dir, "out.jsonl", 2);
  EXPECT_EQ(heap.size(), 200u);
  EXPECT_EQ(rocks, heap);
  EXPECT_EQ(ReadLines(rocks_dir / "rolling.jsonl"), ReadLines(heap_dir / "rolling.jsonl"));

  auto job = CompileJobSpec("name: gen\nstateBackend: rocksdb\n" + body, "job.yaml");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->env->graph().state_backend, StateBackendKind::kRocksDB);
  job = CompileJobSpec("name: gen\n" + body, "job.yaml");
  ASSERT_TRUE(job.ok());
  EXPECT_FALSE(job->env->graph().state_backend.has_value()) << "unset: the process default";
  std::string m = CompileError("name: gen\nstateBackend: memory\n" + body);
  EXPECT_TRUE(Has(m, "job.yaml:2:15: stateBackend: must be heap or rocksdb")) << m;
}

TEST(JobSpecRunTest, RollingMinByMaxByKeepTheWholeRow) {
  auto dir = TestDir();
  WriteFile(dir / "in.csv", "a,1,5\na,2,9\na,3,1\na,4,9\n");
  const std::string head = R"y(name: r
time: processing
sources:
  - name: r
    file: {path: in.csv}
    schema: {id: string, ts: int64, t: int64}
    parallelism: 1
steps:
)y";
  auto maxby = RunSpec(head + R"y(  - {name: s, from: r, keyBy: [id], rolling: {maxBy: t}}
sinks:
  - {name: o, from: s, file: {path: maxby.jsonl}}
)y",
                       dir, "maxby.jsonl");
  EXPECT_EQ(maxby, Sorted({R"({"id": "a", "ts": 1, "t": 5})", R"({"id": "a", "ts": 2, "t": 9})",
                           R"({"id": "a", "ts": 2, "t": 9})", R"({"id": "a", "ts": 2, "t": 9})"}));
  auto max = RunSpec(head + R"y(  - {name: s, from: r, keyBy: [id], rolling: {max: t}}
sinks:
  - {name: o, from: s, file: {path: max.jsonl}}
)y",
                     dir, "max.jsonl");
  EXPECT_EQ(max, Sorted({R"({"id": "a", "ts": 1, "t": 5})", R"({"id": "a", "ts": 1, "t": 9})",
                         R"({"id": "a", "ts": 1, "t": 9})", R"({"id": "a", "ts": 1, "t": 9})"}));
  auto minby = RunSpec(head + R"y(  - {name: s, from: r, keyBy: [id], rolling: {minBy: t}}
sinks:
  - {name: o, from: s, file: {path: minby.jsonl}}
)y",
                       dir, "minby.jsonl");
  EXPECT_EQ(minby, Sorted({R"({"id": "a", "ts": 1, "t": 5})", R"({"id": "a", "ts": 1, "t": 5})",
                           R"({"id": "a", "ts": 3, "t": 1})", R"({"id": "a", "ts": 3, "t": 1})"}));
}

/// Event-time input: key, ts (ms), v.
const std::string kEvents =
    "a,1000,1\n"
    "a,2000,2\n"
    "b,2500,10\n"
    "a,9000,3\n"
    "a,12000,4\n"
    "b,30000,20\n";

/// A keyed window step `w` over events.csv (watermark after every record, bound 1 s).
std::string EventJob(const std::string& step_options,
                     const std::string& aggregate = R"y({c: "count()", s: "sum(v)"})y") {
  return R"y(name: w
sources:
  - name: e
    file: {path: events.csv}
    schema: {key: string, ts: int64, v: int64}
    timestamp: ts
    watermark: {maxOutOfOrderness: 1s, interval: 0ms}
steps:
  - name: w
    from: e
    keyBy: [key]
)y" + step_options +
         "    aggregate: " + aggregate + R"y(
sinks:
  - {name: o, from: w, file: {path: out.jsonl}}
)y";
}

/// The lines without their window bounds (global windows of count windows).
std::vector<std::string> WithoutWindow(const std::vector<std::string>& lines) {
  std::vector<std::string> r;
  for (const auto& l : lines) r.push_back(l.substr(0, l.find(",\"window_start\"")));
  return r;
}

TEST(JobSpecRunTest, TumblingWindows) {
  auto dir = TestDir();
  WriteFile(dir / "events.csv", kEvents);
  auto lines = RunSpec(EventJob("    window: {tumbling: 10s}\n"), dir, "out.jsonl", 2);
  EXPECT_EQ(
      lines,
      Sorted({R"({"key": "a", "c": 1, "s": 4, "window_start": 10000, "window_end": 20000})",
              R"({"key": "a", "c": 3, "s": 6, "window_start": 0, "window_end": 10000})",
              R"({"key": "b", "c": 1, "s": 10, "window_start": 0, "window_end": 10000})",
              R"({"key": "b", "c": 1, "s": 20, "window_start": 30000, "window_end": 40000})"}));
}

TEST(JobSpecRunTest, SlidingWindows) {
  auto dir = TestDir();
  WriteFile(dir / "events.csv", "a,1000,1\na,6000,2\n");
  auto lines = RunSpec(EventJob("    window: {sliding: {size: 10s, slide: 5s}}\n"), dir);
  EXPECT_EQ(lines,
            Sorted({R"({"key": "a", "c": 1, "s": 1, "window_start": -5000, "window_end": 5000})",
                    R"({"key": "a", "c": 1, "s": 2, "window_start": 5000, "window_end": 15000})",
                    R"({"key": "a", "c": 2, "s": 3, "window_start": 0, "window_end": 10000})"}));
}

TEST(JobSpecRunTest, SessionWindows) {
  auto dir = TestDir();
  WriteFile(dir / "events.csv", kEvents);
  auto lines = RunSpec(EventJob("    window: {session: {gap: 5s}}\n"), dir, "out.jsonl", 2);
  // a: 1000, 2000 -> [1000, 7000); 9000, 12000 -> [9000, 17000). b: 2500; 30000.
  EXPECT_EQ(
      lines,
      Sorted({R"({"key": "a", "c": 2, "s": 3, "window_start": 1000, "window_end": 7000})",
              R"({"key": "a", "c": 2, "s": 7, "window_start": 9000, "window_end": 17000})",
              R"({"key": "b", "c": 1, "s": 10, "window_start": 2500, "window_end": 7500})",
              R"({"key": "b", "c": 1, "s": 20, "window_start": 30000, "window_end": 35000})"}));
}

TEST(JobSpecRunTest, CountWindows) {
  auto dir = TestDir();
  WriteFile(dir / "events.csv", "a,1,1\na,2,2\na,3,3\na,4,4\na,5,5\nb,6,100\n");
  auto lines = RunSpec(EventJob("    window: {count: 2}\n"), dir);
  EXPECT_EQ(WithoutWindow(lines),
            Sorted({R"({"key": "a", "c": 2, "s": 3)", R"({"key": "a", "c": 2, "s": 7)"}));
  auto dir2 = TestDir("-sliding");
  WriteFile(dir2 / "events.csv", "a,1,1\na,2,2\na,3,3\na,4,4\na,5,5\n");
  auto sliding = RunSpec(EventJob("    window: {count: {size: 3, slide: 2}}\n"), dir2);
  // Every 2 elements, the newest 3: {1,2} then {2,3,4}.
  EXPECT_EQ(WithoutWindow(sliding),
            Sorted({R"({"key": "a", "c": 2, "s": 3)", R"({"key": "a", "c": 3, "s": 9)"}));
}

TEST(JobSpecRunTest, TriggersAndEvictors) {
  const std::string five = "a,1000,1\na,2000,2\na,3000,3\na,4000,4\na,5000,5\n";
  // A count trigger fires every 2 elements with the window's contents so far.
  auto dir = TestDir("-count");
  WriteFile(dir / "events.csv", five);
  EXPECT_EQ(RunSpec(EventJob("    window: {tumbling: 10s}\n    trigger: {count: 2}\n"), dir),
            Sorted({R"({"key": "a", "c": 2, "s": 3, "window_start": 0, "window_end": 10000})",
                    R"({"key": "a", "c": 4, "s": 10, "window_start": 0, "window_end": 10000})"}));
  dir = TestDir("-purge");
  WriteFile(dir / "events.csv", five);
  EXPECT_EQ(
      RunSpec(EventJob("    window: {tumbling: 10s}\n    trigger: {count: 2, purge: true}\n"), dir),
      Sorted({R"({"key": "a", "c": 2, "s": 3, "window_start": 0, "window_end": 10000})",
              R"({"key": "a", "c": 2, "s": 7, "window_start": 0, "window_end": 10000})"}));
  dir = TestDir("-evict");
  WriteFile(dir / "events.csv", five);
  EXPECT_EQ(RunSpec(EventJob("    window: {tumbling: 10s}\n    evictor: {count: 2}\n"), dir),
            Sorted({R"({"key": "a", "c": 2, "s": 9, "window_start": 0, "window_end": 10000})"}));
  dir = TestDir("-time-evict");
  WriteFile(dir / "events.csv", five);
  EXPECT_EQ(RunSpec(EventJob("    window: {tumbling: 10s}\n    evictor: {time: 2s}\n"), dir),
            Sorted({R"({"key": "a", "c": 2, "s": 9, "window_start": 0, "window_end": 10000})"}));
  dir = TestDir("-continuous");
  WriteFile(dir / "events.csv", "a,1000,1\na,2500,2\na,4500,3\na,20000,4\n");
  // Early firings every 2 s of watermark progress. 4500 is added before its watermark (3499)
  // fires the timer at 2000 with {1, 2, 3}; the jump to 18999 fires at 4000, 6000, 8000 and the
  // window end. [20000, 30000) fires 5 times the same way with the final watermark.
  auto cont = RunSpec(
      EventJob("    window: {tumbling: 10s}\n    trigger: {continuousEventTime: 2s}\n"), dir);
  std::vector<std::string> want;
  for (int i = 0; i < 5; ++i) {
    want.push_back(R"({"key": "a", "c": 3, "s": 6, "window_start": 0, "window_end": 10000})");
    want.push_back(R"({"key": "a", "c": 1, "s": 4, "window_start": 20000, "window_end": 30000})");
  }
  EXPECT_EQ(cont, Sorted(want));
}

TEST(JobSpecRunTest, AllowedLatenessAndLateOutput) {
  auto dir = TestDir();
  // Watermark = max ts - 1 s - 1 ms. After 12000 (wm 10999) [0,10000) has fired, and 9500 is
  // within the 2 s lateness: it fires again. After 14000 (wm 12999 >= 9999 + 2000) the window is
  // gone and 2000 goes to the late output.
  WriteFile(dir / "events.csv", "a,1000,1\na,12000,2\na,9500,3\na,14000,4\na,2000,5\n");
  auto lines = RunSpec(EventJob(R"y(    window: {tumbling: 10s}
    allowedLateness: 2s
    lateOutput: late
)y") + "  - {name: l, from: w.late, file: {path: late.jsonl}}\n",
                       dir);
  EXPECT_EQ(
      lines,
      Sorted({R"({"key": "a", "c": 1, "s": 1, "window_start": 0, "window_end": 10000})",
              R"({"key": "a", "c": 2, "s": 4, "window_start": 0, "window_end": 10000})",
              R"({"key": "a", "c": 2, "s": 6, "window_start": 10000, "window_end": 20000})"}));
  EXPECT_EQ(ReadLines(dir / "late.jsonl"), Sorted({R"({"key": "a", "ts": 2000, "v": 5})"}));
}

TEST(JobSpecRunTest, UnionAndPartition) {
  auto dir = TestDir();
  WriteFile(dir / "a.csv", "a,1\nb,2\n");
  WriteFile(dir / "b.csv", "c,3\n");
  for (std::string kind : {"rebalance", "rescale", "shuffle", "global", "forward", "broadcast"}) {
    std::string out = "out-" + kind + ".jsonl";
    auto lines = RunSpec(R"y(name: u
time: processing
sources:
  - {name: x, file: {path: a.csv}, schema: {id: string, v: int64}}
  - {name: y, file: {path: b.csv}, schema: {id: string, v: int64}}
steps:
  - {name: both, from: x, union: [y]}
  - {name: p, from: both, partition: )y" +
                             kind + R"y(, parallelism: 2}
sinks:
  - {name: o, from: p, file: {path: )y" +
                             out + R"y(}, parallelism: 2}
)y",
                         dir, out, 2);
    std::vector<std::string> want = {R"({"id": "a", "v": 1})", R"({"id": "b", "v": 2})",
                                     R"({"id": "c", "v": 3})"};
    if (kind == "broadcast") {
      auto once = want;
      want.insert(want.end(), once.begin(), once.end());
    }
    EXPECT_EQ(lines, Sorted(want)) << kind;
  }
  std::string m = CompileError(R"y(name: u
sources:
  - {name: x, generator: {count: 1, fields: {id: "'a'"}}}
  - {name: y, generator: {count: 1, fields: {id: "n"}}}
steps:
  - {name: both, from: x, union: [y]}
sinks:
  - {name: o, from: both, print: {}}
)y");
  EXPECT_TRUE(Has(m, "steps[0] (both).union[0]: schema") && Has(m, "differs from")) << m;
}

TEST(JobSpecRunTest, DedupKeepsTheFirstRowPerKey) {
  auto dir = TestDir();
  WriteFile(dir / "in.csv", "a,1\nb,2\na,3\nc,4\nb,5\n");
  auto lines = RunSpec(R"y(name: d
time: processing
sources:
  - {name: r, file: {path: in.csv}, schema: {id: string, v: int64}, parallelism: 1}
steps:
  - {name: d, from: r, keyBy: [id], process: {function: dedup}}
sinks:
  - {name: o, from: d, file: {path: out.jsonl}}
)y",
                       dir, "out.jsonl", 2);
  EXPECT_EQ(lines,
            Sorted({R"({"id": "a", "v": 1})", R"({"id": "b", "v": 2})", R"({"id": "c", "v": 4})"}));
}

TEST(JobSpecRunTest, RisingTemperatureAlertsInEventTime) {
  auto dir = TestDir();
  // s1 rises from 1 s: alert at 11 s (the watermark passes it with the reading at 12 s). s2 drops
  // at 5 s, which deletes its timer; it rises again from 6 s: alert at 16 s (watermark 19999).
  WriteFile(dir / "in.csv",
            "s1,1,10\ns2,1,10\ns1,3,11\ns2,3,12\ns2,5,8\ns2,6,9\ns1,12,12\ns2,7,10\ns1,20,5\n");
  auto lines = RunSpec(R"y(name: rise
sources:
  - name: r
    file: {path: in.csv}
    schema: {id: string, ts: int64, temperature: double}
    timestamp: "ts * 1000"
    watermark: {interval: 0ms}
    parallelism: 1
steps:
  - name: alerts
    from: r
    keyBy: [id]
    process: {function: rising-temperature, field: temperature, interval: 10s}
sinks:
  - {name: o, from: alerts, file: {path: out.jsonl}}
)y",
                       dir, "out.jsonl", 2);
  EXPECT_EQ(
      lines,
      Sorted(
          {R"({"id": "s1", "alert_time": 11000, "message": "s1: temperature rose continuously for 10s"})",
           R"({"id": "s2", "alert_time": 16000, "message": "s2: temperature rose continuously for 10s"})"}));
}

// ---------------------------------------------------------------------------------------------
// Upsert sink
// ---------------------------------------------------------------------------------------------

namespace upsert {

/// name -> content of every file in `dir`.
std::map<std::string, std::string> Objects(const fs::path& dir) {
  std::map<std::string, std::string> m;
  if (!fs::exists(dir)) return m;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path());
    m[e.path().filename().string()] =
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return m;
}

}  // namespace upsert

TEST(JobSpecRunTest, UpsertSinkKeepsTheLatestRowPerKey) {
  auto dir = TestDir();
  const std::string spec = R"y(name: up
time: processing
sources:
  - name: g
    generator: {count: 9, fields: {k: "'k/' + (n % 3)", v: "n"}}
    parallelism: 1
steps:
  - {name: s, from: g, keyBy: [k], rolling: {sum: v}}
sinks:
  - {name: o, from: s, upsert: {path: latest, key: k}}
)y";
  auto lines = RunSpec(spec, dir, "unused", 2);
  (void)lines;
  const std::map<std::string, std::string> want = {{"k%2F0.json", "{\"k\":\"k/0\",\"v\":9}\n"},
                                                   {"k%2F1.json", "{\"k\":\"k/1\",\"v\":12}\n"},
                                                   {"k%2F2.json", "{\"k\":\"k/2\",\"v\":15}\n"}};
  EXPECT_EQ(upsert::Objects(dir / "latest"), want);
  // Running again (a replay) rewrites the same objects: the directory does not change.
  RunSpec(spec, dir, "unused", 3);
  EXPECT_EQ(upsert::Objects(dir / "latest"), want);
  // The sink's input is partitioned by the key.
  std::string plan = Plan(R"y(name: up
sources:
  - {name: g, generator: {count: 9, fields: {k: "'k' + (n % 3)", v: "n"}}}
sinks:
  - {name: o, from: g, upsert: {path: /tmp/x, key: [k, v], format: csv}}
)y");
  EXPECT_TRUE(Has(plan, "HASH")) << plan;
  EXPECT_TRUE(Has(plan, "UpsertSink(o)")) << plan;
}

TEST(JobSpecRunTest, UpsertObjectNamesEncodeTheKeyValues) {
  auto name = [](Row row, std::vector<int> fields) {
    std::string out = "x/";
    UpsertSinkFunction::AppendObjectName(row, fields, ".json", out);
    return out;
  };
  Row r(std::vector<Value>{Value::String("a b/c,d_e.f-G9"), Value::Int(-42), Value(),
                           Value::String(""), Value::Double(2.5)});
  EXPECT_EQ(name(r, {0}), "x/a%20b%2Fc%2Cd%5Fe.f-G9.json");
  EXPECT_EQ(name(r, {1, 2, 3, 4}), "x/-42,~,_,2.5.json");
  EXPECT_NE(name(r, {3}), name(Row(std::vector<Value>{Value::String("_")}), {0}))
      << "empty vs underscore";
  EXPECT_NE(name(r, {2}), name(Row(std::vector<Value>{Value::String("~")}), {0}))
      << "null vs tilde";
  EXPECT_EQ(name(Row(std::vector<Value>{Value::String("null")}), {0}), "x/null.json");
  // Long keys: 160 bytes, '#', a 16-digit hash; different long keys differ.
  std::string a = name(Row(std::vector<Value>{Value::String(std::string(300, 'a'))}), {0});
  std::string b = name(Row(std::vector<Value>{Value::String(std::string(299, 'a') + "b")}), {0});
  EXPECT_EQ(a.size(), 2u + 160 + 1 + 16 + 5) << a;
  EXPECT_EQ(a.substr(2, 160), std::string(160, 'a'));
  EXPECT_EQ(a[2 + 160], '#');
  EXPECT_NE(a, b);
}

TEST(JobSpecErrorTest, UpsertSinkErrors) {
  std::string e = CompileError(kGen + "sinks:\n  - {name: o, from: g, upsert: {path: x}}\n");
  EXPECT_TRUE(Has(e, "sinks[0] (o).upsert.key")) << e;
  EXPECT_TRUE(Has(e, "required")) << e;
  e = CompileError(kGen + "sinks:\n  - {name: o, from: g, upsert: {path: x, key: [nope]}}\n");
  EXPECT_TRUE(Has(e, "unknown field 'nope'")) << e;
  e = CompileError(kGen + "sinks:\n  - {name: o, from: g, upsert: {path: x, key: k}, print: {}}\n");
  EXPECT_TRUE(Has(e, "exactly one of print, file, upsert, discard")) << e;
  e = CompileError(kGen +
                   "sinks:\n  - {name: o, from: g, upsert: {path: x, key: k, format: text}}\n");
  EXPECT_TRUE(Has(e, "must be json or csv")) << e;
  e = CompileError(kGen + "sinks:\n  - {name: o, from: g, upsert: {path: x, key: k, ttl: 1}}\n");
  EXPECT_TRUE(Has(e, "ttl")) << e;
  e = CompileError(kGen +
                   "sinks:\n  - {name: o, from: g, upsert: {path: \"ftp://h/x\", key: k}}\n");
  EXPECT_TRUE(Has(e, "upsert.path")) << e;
}

}  // namespace
}  // namespace eddy
