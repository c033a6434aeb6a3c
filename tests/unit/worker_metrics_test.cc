// Worker metrics: latency markers (frame codec, one channel per partition, forwarded by every
// task, observed per source vertex), fill-to-send time per buffer, the worker's and the control
// plane's metric families (naming rules, values) with a real control plane and TaskExecutor.

#include <gtest/gtest.h>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "eddy/control/control_metrics.h"
#include "eddy/control/control_plane.h"
#include "eddy/metrics/metrics.h"
#include "eddy/spec/job_spec.h"
#include "eddy/worker/deployment.h"
#include "eddy/worker/task_executor.h"

namespace eddy::worker {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

fs::path TempPath(const std::string& name) {
  return fs::temp_directory_path() / ("eddy-wm-" + std::to_string(::getpid()) + "-" + name);
}

/// Every frame of one buffer, as (tag, payload).
std::vector<std::pair<FrameTag, std::string>> Frames(NetworkBuffer* b) {
  std::vector<std::pair<FrameTag, std::string>> out;
  ChannelReader r;
  EXPECT_TRUE(r.Feed(b->data, b->size, [&](FrameTag tag, Timestamp, std::string_view payload) {
    out.emplace_back(tag, std::string(payload));
  }));
  return out;
}

TEST(LatencyMarkerTest, RoundTripsAndRejectsGarbage) {
  LatencyMarker m{1'700'000'000'123'456, 7, 300};
  char buf[kMaxLatencyMarkerSize];
  size_t n = EncodeLatencyMarker(m, buf);
  LatencyMarker back;
  ASSERT_TRUE(DecodeLatencyMarker(std::string_view(buf, n), back));
  EXPECT_EQ(back.created_us, m.created_us);
  EXPECT_EQ(back.source_vertex, 7u);
  EXPECT_EQ(back.source_subtask, 300u);
  EXPECT_FALSE(DecodeLatencyMarker(std::string_view(buf, n - 1), back)) << "truncated";
  EXPECT_FALSE(DecodeLatencyMarker(std::string(buf, n) + "x", back)) << "trailing bytes";
  EXPECT_FALSE(DecodeLatencyMarker("", back));
}

struct PartitionFixture {
  explicit PartitionFixture(int channels, Duration timeout) : gate(channels) {
    auto pool = LocalBufferPool::Make(&global, static_cast<size_t>(channels) * 2 + 4);
    EXPECT_TRUE(pool.ok());
    std::vector<ResultPartition::Target> targets;
    for (int c = 0; c < channels; ++c) targets.push_back({&gate, c, nullptr});
    partition =
        std::make_unique<ResultPartition>(std::move(*pool), targets, timeout, &io, &cancelled);
  }
  /// Buffers queued at the gate, by channel.
  std::map<int, std::vector<NetworkBuffer*>> Drain() {
    std::map<int, std::vector<NetworkBuffer*>> out;
    int ch;
    while (NetworkBuffer* b = gate.Poll(ch, std::chrono::steady_clock::now())) {
      out[ch].push_back(b);
    }
    return out;
  }
  NetworkBufferPool global{64};
  InputGate gate;
  IoCounters io;
  std::atomic<bool> cancelled{false};
  std::unique_ptr<ResultPartition> partition;
};

TEST(LatencyMarkerTest, GoesToOneChannelRoundRobinNotBroadcast) {
  PartitionFixture f(3, Duration::Millis(0));  // 0: every frame is flushed at once
  for (int i = 0; i < 6; ++i) {
    f.partition->EmitLatencyMarker(LatencyMarker{1000 + i, 2, 1});
  }
  auto got = f.Drain();
  ASSERT_EQ(got.size(), 3u);
  std::vector<int64_t> created;
  for (auto& [ch, buffers] : got) {
    EXPECT_EQ(buffers.size(), 2u) << "channel " << ch;
    for (NetworkBuffer* b : buffers) {
      for (auto& [tag, payload] : Frames(b)) {
        ASSERT_EQ(tag, FrameTag::kLatencyMarker);
        LatencyMarker m;
        ASSERT_TRUE(DecodeLatencyMarker(payload, m));
        EXPECT_EQ(m.source_vertex, 2u);
        EXPECT_EQ(m.source_subtask, 1u);
        EXPECT_EQ((m.created_us - 1000) % 3, ch) << "round-robin order";
        created.push_back(m.created_us);
      }
      b->Recycle();
    }
  }
  EXPECT_EQ(created.size(), 6u);
  EXPECT_EQ(f.io.latency_markers_out.load(), 6u);
  EXPECT_EQ(f.io.records_out.load(), 0u) << "a marker is not a record";
}

TEST(FillToSendTest, OneObservationPerBufferNotPerRecord) {
  PartitionFixture f(2, Duration::Millis(10'000));  // only full buffers and explicit flushes
  const std::string record(1000, 'x');
  // 100 records of ~1 KiB into channel 0: three full 32 KiB buffers and a partial one.
  for (int i = 0; i < 100; ++i) f.partition->Emit(0, record, Timestamp::None());
  EXPECT_EQ(f.io.fill_to_send.Snapshot().count, 3u);
  // The partial buffer waits; when it goes out, its fill-to-send time covers the wait.
  std::this_thread::sleep_for(30ms);
  f.partition->FlushAll();
  metrics::HistogramSnapshot s = f.io.fill_to_send.Snapshot();
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.count, f.io.buffers_out.load());
  EXPECT_GE(s.sum, 0.030);
  EXPECT_LT(s.sum, 10.0);
  // Watermarks set the output watermark.
  f.partition->BroadcastWatermark(Watermark(12345));
  EXPECT_EQ(f.io.output_watermark.load(), 12345);
  for (auto& [ch, buffers] : f.Drain()) {
    for (NetworkBuffer* b : buffers) b->Recycle();
  }
}

/// A job spec deployed in this process (as the local executor does) and run to the end.
struct Ran {
  CompiledJob job;
  std::unique_ptr<JobGraph> graph;
  NetworkBufferPool global{4096};
  std::atomic<bool> cancelled{false};
  std::vector<std::unique_ptr<Task>> tasks;  // last: goes first
};

std::unique_ptr<Ran> RunSpec(const std::string& spec) {
  auto r = std::make_unique<Ran>();
  auto compiled = CompileJobSpec(spec, "job.yaml");
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  if (!compiled.ok()) return r;
  r->job = std::move(*compiled);
  auto jg = JobGraph::FromStreamGraph(r->job.env->graph());
  EXPECT_TRUE(jg.ok()) << jg.status().ToString();
  r->graph = std::make_unique<JobGraph>(std::move(*jg));
  DeploymentOptions o;
  o.global = &r->global;
  o.buffer_timeout = r->job.env->graph().buffer_timeout;
  o.cancelled = &r->cancelled;
  auto tasks = DeployTasks(*r->graph, o);
  EXPECT_TRUE(tasks.ok()) << tasks.status().ToString();
  if (!tasks.ok()) return r;
  r->tasks = std::move(*tasks);
  std::vector<std::thread> threads;
  for (auto& t : r->tasks) {
    threads.emplace_back([&t] {
      Status s = t->Run();
      EXPECT_TRUE(s.ok()) << s.ToString();
    });
  }
  for (auto& t : threads) t.join();
  return r;
}

std::string ThreeStageSpec(const fs::path& out, const std::string& interval) {
  return "name: markers\nparallelism: 2\nlatencyTrackingInterval: " + interval + R"(
sources:
  - name: numbers
    generator: {fields: {n: "n"}, count: 3000, rate: 10000}
    schema: {n: int64}
steps:
  - {name: spread, from: numbers, partition: rebalance}
  - {name: doubled, from: spread, map: {n: "n * 2"}}
  - {name: again, from: doubled, partition: rebalance}
sinks:
  - {name: out, from: again, file: {path: )" +
         out.string() + "}}\n";
}

TEST(LatencyMarkerTest, SourcesEmitThemAndEveryTaskDownstreamObservesAndForwardsOne) {
  fs::path out = TempPath("markers.jsonl");
  auto ran = RunSpec(ThreeStageSpec(out, "10ms"));
  ASSERT_EQ(ran->tasks.size(), 6u);
  const JobGraph* graph = ran->graph.get();
  const auto& tasks = ran->tasks;
  ASSERT_EQ(graph->vertices().size(), 3u) << graph->ToText();
  EXPECT_EQ(ran->job.env->graph().latency_tracking_interval, Duration::Millis(10));
  const VertexId source = graph->vertices()[0].id;
  // Per vertex: markers written (sources) or received (the others), and latency observations.
  std::map<int, uint64_t> emitted, received, observed;
  for (const auto& t : tasks) {
    int v = t->vertex_id().value();
    emitted[v] += t->io().latency_markers_out.load();
    received[v] += t->metrics().latency_markers_in.load();
    if (t->is_source()) {
      EXPECT_TRUE(t->latency().empty());
      continue;
    }
    ASSERT_EQ(t->latency().size(), 1u) << "one series: the one source vertex upstream";
    EXPECT_EQ(t->latency()[0].source, source);
    auto snap = t->latency()[0].histogram->Snapshot();
    observed[v] += snap.count;
    EXPECT_GE(snap.sum, 0.0);
    EXPECT_LT(snap.sum, 60.0 * static_cast<double>(snap.count));
  }
  const int src = source.value(), mid = graph->vertices()[1].id.value(),
            sink = graph->vertices()[2].id.value();
  // ~0.3 s of input, a marker every 10 ms from each of 2 source subtasks.
  EXPECT_GE(emitted[src], 10u);
  // Each marker goes to exactly one channel: as many arrive as were sent, at every stage (a
  // broadcast would double them per stage).
  EXPECT_EQ(received[mid], emitted[src]);
  EXPECT_EQ(emitted[mid], received[mid]) << "the middle stage forwards every marker once";
  EXPECT_EQ(received[sink], emitted[mid]);
  EXPECT_EQ(emitted[sink], 0u) << "sinks have no outputs";
  EXPECT_EQ(observed[mid], received[mid]);
  EXPECT_EQ(observed[sink], received[sink]);
  // Markers are not records: the sink wrote every record and nothing else.
  for (const auto& t : tasks) {
    if (t->vertex_id().value() != sink) continue;
    EXPECT_GT(t->metrics().input_watermark.load(), INT64_MIN);
  }
  uint64_t sink_records = 0;
  for (const auto& t : tasks)
    if (t->vertex_id().value() == sink) sink_records += t->metrics().records_in.load();
  EXPECT_EQ(sink_records, 3000u);
  fs::remove(out);
}

TEST(LatencyMarkerTest, OffByDefault) {
  fs::path out = TempPath("nomarkers.jsonl");
  auto ran = RunSpec(ThreeStageSpec(out, "0ms"));
  ASSERT_EQ(ran->tasks.size(), 6u);
  for (const auto& t : ran->tasks) {
    EXPECT_EQ(t->io().latency_markers_out.load(), 0u);
    EXPECT_EQ(t->metrics().latency_markers_in.load(), 0u);
  }
  // The key is optional and defaults to off, as Flink's latencyTrackingInterval.
  auto plain = CompileJobSpec(R"(name: x
sources: [{name: g, generator: {fields: {n: "n"}, count: 1}, schema: {n: int64}}]
sinks: [{name: out, from: g, print: {}}]
)",
                              "x.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->env->graph().latency_tracking_interval, Duration::Millis(0));
  auto bad = CompileJobSpec(R"(name: x
latencyTrackingInterval: often
sources: [{name: g, generator: {fields: {n: "n"}, count: 1}, schema: {n: int64}}]
sinks: [{name: out, from: g, print: {}}]
)",
                            "x.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("latencyTrackingInterval"), std::string::npos);
  fs::remove(out);
}

// ---- metric families of a worker and of the control plane ----

const prometheus::MetricFamily* Find(const std::vector<prometheus::MetricFamily>& fams,
                                     const std::string& name) {
  for (const auto& f : fams)
    if (f.name == name) return &f;
  return nullptr;
}

double Value(const prometheus::ClientMetric& m, prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter:
      return m.counter.value;
    case prometheus::MetricType::Gauge:
      return m.gauge.value;
    case prometheus::MetricType::Histogram:
      return static_cast<double>(m.histogram.sample_count);
    default:
      return 0;
  }
}

/// Sum over a family's samples (histograms: their counts).
double Sum(const std::vector<prometheus::MetricFamily>& fams, const std::string& name) {
  const auto* f = Find(fams, name);
  if (!f) return -1;
  double s = 0;
  for (const auto& m : f->metric) s += Value(m, f->type);
  return s;
}

/// The value of the one sample of `name` whose labels include `label=value`; NaN if none.
double Get(const std::vector<prometheus::MetricFamily>& fams, const std::string& name,
           const std::string& label = "", const std::string& value = "") {
  const auto* f = Find(fams, name);
  if (!f) return std::nan("");
  for (const auto& m : f->metric) {
    if (label.empty()) return Value(m, f->type);
    for (const auto& l : m.label)
      if (l.name == label && l.value == value) return Value(m, f->type);
  }
  return std::nan("");
}

TEST(WorkerMetricsTest, FamiliesOfARunningJobFollowTheNamingRulesAndCarryItsFigures) {
  control::ControlPlaneOptions co;
  co.rpc_bind_host = "127.0.0.1";
  co.rpc_port = 0;
  co.verbose = false;
  auto cp = control::ControlPlane::Start(std::move(co));
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();

  WorkerOptions wo;
  wo.worker_id = "w1";
  wo.jobmanager = (*cp)->rpc_endpoint();
  wo.slots = 2;
  wo.network.bind_host = "127.0.0.1";
  wo.network.port = 0;
  wo.network_buffers = 512;
  wo.metrics_address = "127.0.0.1:0";
  auto te = TaskExecutor::Make(wo);
  ASSERT_TRUE(te.ok()) << te.status().ToString();
  ASSERT_NE((*te)->metrics_endpoint().find("127.0.0.1:"), std::string::npos);
  // Its port is taken: a second worker asking for it fails to start, naming the address.
  WorkerOptions clash = wo;
  clash.worker_id = "w2";
  clash.metrics_address = (*te)->metrics_endpoint();
  auto second = TaskExecutor::Make(clash);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find((*te)->metrics_endpoint()), std::string::npos)
      << second.status().ToString();

  auto idle = (*te)->CollectMetrics();
  ASSERT_TRUE(metrics::ValidateFamilies(idle).ok()) << metrics::ValidateFamilies(idle).ToString();
  EXPECT_EQ(Get(idle, "eddy_worker_slots"), 2);
  EXPECT_EQ(Get(idle, "eddy_worker_slots_used"), 0);
  EXPECT_EQ(Get(idle, "eddy_worker_network_buffers"), 512);
  EXPECT_EQ(Find(idle, "eddy_task_records_in_total"), nullptr) << "no tasks, no empty families";

  std::thread runner([&] {
    Status s = (*te)->Run();
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  ASSERT_TRUE((*cp)->WaitForWorkers(1, 10000).ok());
  fs::path out = TempPath("worker-metrics.jsonl");
  control::JobSubmission sub;
  sub.spec_text = R"(name: probe
parallelism: 2
latencyTrackingInterval: 20ms
sources:
  - name: numbers
    generator: {fields: {n: "n", ts: "n"}, count: 100000, rate: 20000}
    schema: {n: int64, ts: int64}
    timestamp: ts
    watermark: {maxOutOfOrderness: 10ms}
steps:
  - {name: spread, from: numbers, partition: rebalance}
sinks:
  - {name: out, from: spread, file: {path: )" +
                  out.string() + "}}\n";
  auto id = (*cp)->Submit(sub);
  ASSERT_TRUE(id.ok()) << id.status().ToString();

  // While it runs: wait for records and markers to show up, then check every family.
  std::vector<prometheus::MetricFamily> fams;
  for (int i = 0; i < 200; ++i) {
    fams = (*te)->CollectMetrics();
    if (Sum(fams, "eddy_task_records_in_total") > 1000 && Sum(fams, "eddy_latency_seconds") > 4 &&
        Sum(fams, "eddy_task_output_watermark_seconds") > 0) {
      break;
    }
    std::this_thread::sleep_for(25ms);
  }
  Status valid = metrics::ValidateFamilies(fams);
  ASSERT_TRUE(valid.ok()) << valid.ToString();
  auto cp_fams = control::CollectControlPlaneMetrics(**cp);
  Status cp_valid = metrics::ValidateFamilies(cp_fams);
  ASSERT_TRUE(cp_valid.ok()) << cp_valid.ToString();

  EXPECT_GT(Sum(fams, "eddy_task_records_in_total"), 1000);
  EXPECT_GT(Sum(fams, "eddy_task_records_out_total"), 1000);
  EXPECT_GT(Sum(fams, "eddy_task_bytes_out_total"), 0);
  EXPECT_GT(Sum(fams, "eddy_buffer_fill_to_send_seconds"), 0);
  EXPECT_GT(Sum(fams, "eddy_latency_seconds"), 4);
  EXPECT_GT(Sum(fams, "eddy_task_output_watermark_seconds"), 0);
  EXPECT_EQ(Get(fams, "eddy_worker_slots_used"), 2);
  EXPECT_EQ(Find(fams, "eddy_task_output_buffers_used")->metric.size(), 2u)
      << "the two source subtasks have output partitions, the sinks none";
  // Labels: job, job_id, vertex, subtask (+ operator, source_vertex where they apply).
  const auto* lat = Find(fams, "eddy_latency_seconds");
  ASSERT_NE(lat, nullptr);
  std::map<std::string, std::string> labels;
  for (const auto& l : lat->metric.at(0).label) labels[l.name] = l.value;
  EXPECT_EQ(labels["job"], "probe");
  EXPECT_EQ(labels["job_id"], *id);
  EXPECT_EQ(labels["source_vertex"].rfind("Source: numbers", 0), 0u) << labels["source_vertex"];
  EXPECT_NE(labels["vertex"].find("FileSink(out)"), std::string::npos) << labels["vertex"];
  EXPECT_TRUE(labels["subtask"] == "0" || labels["subtask"] == "1");
  EXPECT_FALSE(std::isnan(
      Get(fams, "eddy_operator_late_records_dropped_total", "operator", "FileSink(out)")));

  EXPECT_EQ(Get(cp_fams, "eddy_cluster_workers"), 1);
  EXPECT_EQ(Get(cp_fams, "eddy_cluster_slots"), 2);
  EXPECT_EQ(Get(cp_fams, "eddy_cluster_slots_available"), 0);
  EXPECT_EQ(Get(cp_fams, "eddy_jobs_running"), 1);
  EXPECT_EQ(Get(cp_fams, "eddy_job_state", "state", "RUNNING"), 1);
  EXPECT_EQ(Get(cp_fams, "eddy_job_state", "state", "FAILED"), 0);
  EXPECT_EQ(Get(cp_fams, "eddy_job_restarts_total", "job_id", *id), 0);
  EXPECT_GT(Get(cp_fams, "eddy_job_uptime_seconds", "job", "probe"), 0);
  EXPECT_EQ(Get(cp_fams, "eddy_control_malformed_messages_total"), 0);

  ASSERT_TRUE((*cp)->Cancel(*id).ok());
  auto info = (*cp)->WaitForJob(*id, 20000);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->state, control::JobState::kCanceled);
  cp_fams = control::CollectControlPlaneMetrics(**cp);
  EXPECT_EQ(Get(cp_fams, "eddy_jobs_canceled"), 1);
  EXPECT_EQ(Get(cp_fams, "eddy_job_state", "state", "CANCELED"), 1);
  (*te)->RequestStop();
  runner.join();
  fs::remove(out);
}

}  // namespace
}  // namespace eddy::worker
