// Unaligned checkpoints in the task: a barrier on one channel snapshots at once while the other
// channel keeps being processed and its data until its own barrier becomes channel state; the
// acknowledgement waits for the last barrier; a restore replays the channel state (and without it
// records are lost, so the replay is what makes the counts exact); a changed parallelism is
// refused. Plus the spec rules of `checkpointing.unaligned`.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "eddy/control/checkpoint_coordinator.h"
#include "eddy/proto/checkpoint.pb.h"
#include "eddy/proto/control.pb.h"
#include "eddy/spec/job_spec.h"
#include "eddy/storage/object_store.h"
#include "eddy/worker/deployment.h"

namespace eddy::worker {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kCount = 20000;
constexpr int kKeys = 5;

fs::path TempDir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("eddy-unaligned-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

/// Two generator subtasks feed two keyed-window subtasks (each has one channel per generator);
/// one window of an hour holds everything, so the final counts cover every record exactly once.
std::string Spec(const fs::path& out, int parallelism) {
  return "name: unaligned\nparallelism: " + std::to_string(parallelism) + R"yaml(
sources:
  - name: numbers
    generator: {fields: {n: "n", k: "n % 5", ts: "n"}, count: 20000, rate: 10000}
    schema: {n: int64, k: int64, ts: int64}
    timestamp: "ts"
steps:
  - name: sums
    from: numbers
    keyBy: [k]
    window: {tumbling: 1h}
    aggregate: {c: "count()", s: "sum(n)"}
sinks:
  - {name: out, from: sums, file: {path: )yaml" +
         out.string() + ", format: json}}\n";
}

struct Acks {
  std::mutex mu;
  std::vector<std::pair<proto::AcknowledgeCheckpoint, std::chrono::steady_clock::time_point>> acks;
  std::vector<proto::DeclineCheckpoint> declines;
};

/// A job deployed in this process with checkpoint hooks.
struct Job {
  CompiledJob compiled;
  std::unique_ptr<JobGraph> graph;
  NetworkBufferPool global{4096};
  std::atomic<bool> cancelled{false};
  std::vector<std::unique_ptr<Task>> tasks;
  std::vector<std::thread> threads;
  std::vector<Status> results;
  std::shared_ptr<Acks> acks = std::make_shared<Acks>();

  void Join() {
    for (auto& t : threads) t.join();
    threads.clear();
  }
  ~Job() {
    cancelled = true;
    for (auto& t : tasks) t->Cancel();
    Join();
  }
};

std::unique_ptr<Job> Start(const std::string& spec, const fs::path& store_dir, bool unaligned,
                           std::shared_ptr<const RestoreSnapshot> restore = nullptr,
                           size_t max_inline = 64 * 1024) {
  auto j = std::make_unique<Job>();
  auto compiled = CompileJobSpec(spec, "job.yaml");
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  if (!compiled.ok()) return nullptr;
  j->compiled = std::move(*compiled);
  auto jg = JobGraph::FromStreamGraph(j->compiled.env->graph());
  EXPECT_TRUE(jg.ok()) << jg.status().ToString();
  if (!jg.ok()) return nullptr;
  j->graph = std::make_unique<JobGraph>(std::move(*jg));
  auto hooks = std::make_shared<CheckpointHooks>();
  auto store = storage::OpenObjectStore("file://" + store_dir.string());
  EXPECT_TRUE(store.ok());
  hooks->store = std::move(*store);
  hooks->exactly_once = true;
  hooks->unaligned = unaligned;
  hooks->max_inline_channel_state = max_inline;
  hooks->attempt = 1;
  hooks->run_async = [](std::move_only_function<void()> f) { f(); };
  std::shared_ptr<Acks> acks = j->acks;
  hooks->acknowledge = [acks](proto::AcknowledgeCheckpoint a) {
    std::lock_guard lock(acks->mu);
    acks->acks.emplace_back(std::move(a), std::chrono::steady_clock::now());
  };
  hooks->decline = [acks](proto::DeclineCheckpoint d) {
    std::lock_guard lock(acks->mu);
    acks->declines.push_back(std::move(d));
  };
  hooks->restore = std::move(restore);
  DeploymentOptions o;
  o.global = &j->global;
  o.buffer_timeout = j->compiled.env->graph().buffer_timeout;
  o.cancelled = &j->cancelled;
  o.task.checkpoints = hooks;
  auto tasks = DeployTasks(*j->graph, o);
  EXPECT_TRUE(tasks.ok()) << tasks.status().ToString();
  if (!tasks.ok()) return nullptr;
  j->tasks = std::move(*tasks);
  j->results.resize(j->tasks.size());
  for (size_t i = 0; i < j->tasks.size(); ++i) {
    j->threads.emplace_back([&j = *j, i] {
      j.results[i] = j.tasks[i]->Run();
      if (!j.results[i].ok()) {
        // As the executor does: one failed task cancels the others (producers would block).
        j.cancelled = true;
        for (auto& t : j.tasks) t->Cancel();
      }
    });
  }
  return j;
}

CheckpointBarrier Barrier(int64_t id) {
  CheckpointBarrier b;
  b.id = CheckpointId(id);
  b.timestamp = Timestamp(1);
  return b;
}

/// The completed checkpoint's metadata, merged from every subtask's acknowledgement as the
/// coordinator does.
std::shared_ptr<proto::CheckpointMetadata> Metadata(Acks& acks, int64_t id) {
  auto md = std::make_shared<proto::CheckpointMetadata>();
  md->set_version(1);
  md->set_checkpoint_id(id);
  std::map<std::string, proto::OperatorState*> by_uid;
  for (const auto& [ack, at] : acks.acks) {
    if (ack.checkpoint_id() != id) continue;
    for (const auto& os : ack.operators()) {
      proto::OperatorState*& st = by_uid[os.uid()];
      if (!st) {
        st = md->add_operators();
        st->set_uid(os.uid());
        st->set_name(os.name());
      }
      *st->add_subtasks() = os.state();
    }
  }
  for (auto& [uid, st] : by_uid) {
    st->set_parallelism(st->subtasks_size());
    std::sort(st->mutable_subtasks()->begin(), st->mutable_subtasks()->end(),
              [](const auto& a, const auto& b) { return a.subtask() < b.subtask(); });
  }
  return md;
}

/// key -> (count, sum) over the sink's part files in `out`.
std::map<int64_t, std::pair<int64_t, int64_t>> Results(const fs::path& out) {
  std::map<int64_t, std::pair<int64_t, int64_t>> got;
  std::ifstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    YAML::Node n = YAML::Load(line);
    auto& [c, s] = got[n["k"].as<int64_t>()];
    c += n["c"].as<int64_t>();
    s += n["s"].as<int64_t>();
  }
  return got;
}

std::map<int64_t, std::pair<int64_t, int64_t>> Expected() {
  std::map<int64_t, std::pair<int64_t, int64_t>> want;
  for (int64_t n = 0; n < kCount; ++n) {
    auto& [c, s] = want[n % kKeys];
    ++c;
    s += n;
  }
  return want;
}

struct FirstRun {
  std::shared_ptr<proto::CheckpointMetadata> metadata;
  std::shared_ptr<storage::ObjectStore> store;
  uint64_t in_flight = 0;
  int channel_files = 0;  ///< channel states written as files rather than inline
};

/// Runs the job once, triggering checkpoint 1 (or a savepoint) at generator 0 and, 300 ms later,
/// at generator 1, and checks what the window subtasks acknowledged.
FirstRun RunWithSkewedBarriers(const fs::path& dir, bool unaligned, bool savepoint = false,
                               size_t max_inline = 64 * 1024) {
  FirstRun r;
  auto job = Start(Spec(dir / "first.jsonl", 2), dir / "store", unaligned, nullptr, max_inline);
  CheckpointBarrier barrier = Barrier(1);
  if (savepoint) {
    barrier.flags = CheckpointBarrier::kSavepoint;
    barrier.target = "file://" + (dir / "savepoint").string();
  }
  if (!job) return r;
  std::vector<Task*> sources;
  for (auto& t : job->tasks) {
    if (t->is_source()) sources.push_back(t.get());
  }
  EXPECT_EQ(sources.size(), 2u);
  std::this_thread::sleep_for(200ms);
  sources[0]->TriggerCheckpoint(barrier);
  std::this_thread::sleep_for(300ms);
  const auto second = std::chrono::steady_clock::now();
  sources[1]->TriggerCheckpoint(barrier);
  job->Join();
  for (size_t i = 0; i < job->results.size(); ++i) {
    EXPECT_TRUE(job->results[i].ok()) << job->results[i].ToString();
  }
  std::lock_guard lock(job->acks->mu);
  for (const auto& d : job->acks->declines) ADD_FAILURE() << "declined: " << d.reason();
  ChannelPlan plan(*job->graph);
  int window_acks = 0;
  for (const auto& [ack, at] : job->acks->acks) {
    EXPECT_EQ(ack.checkpoint_id(), 1);
    const JobVertex& v = job->graph->vertex(VertexId(ack.vertex()));
    if (job->graph->stream_graph().node(v.head).is_source) continue;
    ++window_acks;
    EXPECT_GE(at, second) << "acknowledged before the last barrier arrived";
    const proto::OperatorSubtaskState& head = ack.operators(0).state();
    const auto& inputs = plan.inputs(VertexId(ack.vertex()), ack.subtask());
    if (inputs.size() != 2u) {
      ADD_FAILURE() << inputs.size() << " input channels";
      continue;
    }
    if (!unaligned || savepoint) {
      EXPECT_EQ(head.input_channels_size(), 0);
      EXPECT_EQ(ack.persisted_in_flight(), 0u);
      // Aligned: the channel of generator 0 was blocked until generator 1's barrier came.
      EXPECT_GE(ack.alignment_duration_ms(), 200);
      continue;
    }
    EXPECT_EQ(head.num_input_channels(), 2);
    uint64_t sum = 0;
    std::set<int> producers;
    for (const auto& ch : head.input_channels()) {
      if (ch.channel() < 0 || ch.channel() >= 2) {
        ADD_FAILURE() << "channel " << ch.channel();
        continue;
      }
      producers.insert(inputs[static_cast<size_t>(ch.channel())].producer);
      EXPECT_GT(ch.size(), 0u);
      EXPECT_EQ(ch.size(), ch.has_file() && !ch.file().key().empty()
                               ? ch.file().size()
                               : static_cast<uint64_t>(ch.inline_data().size()));
      sum += ch.size();
      if (ch.has_file() && !ch.file().key().empty()) ++r.channel_files;
    }
    // Generator 1 sent ~300 ms of records after the snapshot and before its barrier; generator
    // 0's channel delivered the barrier first and recorded nothing.
    EXPECT_EQ(producers, std::set<int>{1});
    EXPECT_GT(sum, 1000u);
    EXPECT_EQ(ack.persisted_in_flight(), sum);
    r.in_flight += sum;
  }
  EXPECT_EQ(window_acks, 2);
  EXPECT_EQ(job->acks->acks.size(), 4u) << "every subtask acknowledges, sources included";
  r.metadata = Metadata(*job->acks, 1);
  auto store =
      storage::OpenObjectStore("file://" + (dir / (savepoint ? "savepoint" : "store")).string());
  EXPECT_TRUE(store.ok());
  r.store = std::move(*store);
  return r;
}

std::map<int64_t, std::pair<int64_t, int64_t>> Restore(
    const fs::path& dir, const std::string& name,
    std::shared_ptr<const proto::CheckpointMetadata> md, std::shared_ptr<storage::ObjectStore> st,
    int parallelism, std::vector<Status>* results = nullptr) {
  auto restore = std::make_shared<RestoreSnapshot>();
  restore->metadata = std::move(md);
  restore->store = std::move(st);
  fs::path out = dir / (name + ".jsonl");
  auto job = Start(Spec(out, parallelism), dir / ("store-" + name), true, restore);
  if (!job) return {};
  job->Join();
  if (results) {
    *results = job->results;
  } else {
    for (const Status& s : job->results) EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return Results(out);
}

TEST(UnalignedCheckpointTest, SnapshotsAtFirstBarrierRecordsOtherChannelAndRestoreReplaysIt) {
  fs::path dir = TempDir("roundtrip");
  // More than 8 KiB of a channel's in-flight data becomes a file of the checkpoint (the busier
  // window subtask records ~15 KiB in 300 ms, the other ~4 KiB): both forms are restored.
  FirstRun first = RunWithSkewedBarriers(dir, /*unaligned=*/true, /*savepoint=*/false, 8 * 1024);
  ASSERT_TRUE(first.metadata);
  ASSERT_GT(first.in_flight, 0u);
  EXPECT_GE(first.channel_files, 1);

  // Restored with the in-flight data: every record counted exactly once.
  auto got = Restore(dir, "restored", first.metadata, first.store, 2);
  EXPECT_EQ(got, Expected());

  // The same checkpoint without its channel state loses exactly the records that were in flight
  // (the replay above is what made the counts exact).
  auto stripped = std::make_shared<proto::CheckpointMetadata>(*first.metadata);
  for (auto& op : *stripped->mutable_operators()) {
    for (auto& sub : *op.mutable_subtasks()) sub.clear_input_channels();
  }
  auto lossy = Restore(dir, "stripped", stripped, first.store, 2);
  int64_t want_total = 0, got_total = 0;
  for (const auto& [k, cs] : Expected()) want_total += cs.first;
  for (const auto& [k, cs] : lossy) got_total += cs.first;
  EXPECT_LT(got_total, want_total) << "no record was in flight: the test proves nothing";
  fs::remove_all(dir);
}

TEST(UnalignedCheckpointTest, RestoringInFlightDataAtAnotherParallelismIsRefused) {
  fs::path dir = TempDir("rescale");
  FirstRun first = RunWithSkewedBarriers(dir, /*unaligned=*/true);
  ASSERT_TRUE(first.metadata);
  std::vector<Status> results;
  Restore(dir, "rescaled", first.metadata, first.store, 3, &results);
  int refused = 0;
  for (const Status& s : results) {
    if (s.ok() || s.code() == StatusCode::kCancelled) continue;
    EXPECT_NE(s.message().find("unaligned"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("savepoint"), std::string::npos) << s.ToString();
    ++refused;
  }
  EXPECT_GT(refused, 0);
  fs::remove_all(dir);
}

TEST(UnalignedCheckpointTest, AlignedModeBlocksInsteadAndPersistsNoChannelState) {
  fs::path dir = TempDir("aligned");
  FirstRun first = RunWithSkewedBarriers(dir, /*unaligned=*/false);
  ASSERT_TRUE(first.metadata);
  EXPECT_EQ(first.in_flight, 0u);
  EXPECT_EQ(Restore(dir, "restored", first.metadata, first.store, 2), Expected());
  fs::remove_all(dir);
}

TEST(UnalignedCheckpointTest, SavepointsStayAligned) {
  fs::path dir = TempDir("savepoint");
  FirstRun first = RunWithSkewedBarriers(dir, /*unaligned=*/true, /*savepoint=*/true);
  ASSERT_TRUE(first.metadata);
  EXPECT_EQ(first.in_flight, 0u);
  // Aligned, so it also restores at another parallelism.
  EXPECT_EQ(Restore(dir, "rescaled", first.metadata, first.store, 3), Expected());
  fs::remove_all(dir);
}

TEST(UnalignedCheckpointConfigTest, NeedsExactlyOnce) {
  auto ok =
      control::ParseCheckpointConfig(YAML::Load("checkpointing: {interval: 1s, unaligned: true}"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->unaligned);
  EXPECT_TRUE(ok->exactly_once);
  auto off = control::ParseCheckpointConfig(YAML::Load("checkpointing: {interval: 1s}"));
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->unaligned);
  auto alo = control::ParseCheckpointConfig(
      YAML::Load("checkpointing: {mode: at-least-once, unaligned: true}"));
  ASSERT_FALSE(alo.ok());
  EXPECT_NE(alo.status().message().find("checkpointing.unaligned"), std::string::npos);
  EXPECT_NE(alo.status().message().find("exactly-once"), std::string::npos);
  auto bad = control::ParseCheckpointConfig(YAML::Load("checkpointing: {unaligned: maybe}"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("true or false"), std::string::npos);
}

}  // namespace
}  // namespace eddy::worker
