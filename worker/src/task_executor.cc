#include "eddy/worker/task_executor.h"
#include "eddy/clock.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "eddy/metrics/metrics.h"
#include "eddy/proto/checkpoint.pb.h"
#include "eddy/rpc/envelope.h"
#include "eddy/serial_executor.h"
#include "eddy/spec/job_spec.h"
#include "eddy/state/metadata.h"
#include "eddy/storage/object_store.h"
#include "eddy/worker/deployment.h"

namespace eddy::worker {

namespace {

proto::TaskState ToProto(const Status& s) {
  if (s.ok()) return proto::TASK_FINISHED;
  return s.code() == StatusCode::kCancelled ? proto::TASK_CANCELED : proto::TASK_FAILED;
}

/// Adds `b`'s family to `out` unless it has no samples (an empty family is noise).
void Put(std::vector<prometheus::MetricFamily>& out, metrics::FamilyBuilder& b) {
  prometheus::MetricFamily f = b.Build();
  if (!f.metric.empty()) out.push_back(std::move(f));
}

}  // namespace

struct TaskExecutor::Impl {
  /// One execution attempt's subtasks on this worker.
  struct Attempt {
    uint64_t id = 0;
    std::string job_id;
    CompiledJob job;
    std::unique_ptr<JobGraph> graph;
    std::atomic<bool> cancelled{false};
    std::vector<std::unique_ptr<Task>> tasks;
    std::vector<std::pair<int, int>> ids;  // (vertex, subtask) per task
    std::vector<std::thread> threads;
    std::vector<proto::TaskState> states;  // guarded by attempts_mu (written by Run)
    // Previous heartbeat's figures, for ratios (Run thread only).
    std::vector<int64_t> last_busy_ns, last_bp_ns, last_idle_ns;
    /// Busy, back-pressured and idle ratio per task over the last heartbeat interval; guarded by
    /// attempts_mu.
    std::vector<std::array<double, 3>> ratios;
    int64_t last_report_ms = 0;
    bool started = false;  // guarded by attempts_mu
    std::shared_ptr<CheckpointHooks> checkpoints;
  };

  WorkerOptions options;
  std::unique_ptr<NetworkBufferPool> global;
  std::unique_ptr<NetworkService> network;
  zmq::context_t ctx{1};
  zmq::socket_t socket{ctx, zmq::socket_type::dealer};
  int wake_fd = -1;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> malformed{0};
  int64_t heartbeat_interval_ms = 1000;
  /// Changed by the Run thread under attempts_mu (which also guards each Attempt's `states`,
  /// `ratios` and `started`); the Run thread reads without it, metrics scrapes under it.
  std::map<uint64_t, std::unique_ptr<Attempt>> attempts;
  mutable std::mutex attempts_mu;
  std::string metrics_endpoint;  // host:port, "" = none
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  std::shared_ptr<metrics::CallbackCollectable> probe;

  // Task threads report their end here; the Run thread forwards it (it owns the socket).
  std::mutex mu;
  std::vector<proto::TaskStateUpdate> updates;
  /// Checkpoint acknowledgements and declines from the upload thread, forwarded by Run.
  std::vector<proto::Envelope> outbox;
  /// Uploads of snapshots, one after another, off the task threads. Declared after the attempts
  /// so that it drains (and stops) before they go away.
  std::unique_ptr<SerialExecutor> uploader = std::make_unique<SerialExecutor>("eddy-upload");

  void Post(proto::Envelope e) {
    {
      std::lock_guard lock(mu);
      outbox.push_back(std::move(e));
    }
    Wake();
  }

  /// The checkpoint wiring of a deployed attempt: storage, restore state, reporting.
  Result<std::shared_ptr<CheckpointHooks>> MakeHooks(const proto::DeployAttempt& d) {
    auto hooks = std::make_shared<CheckpointHooks>();
    hooks->attempt = d.attempt_id();
    hooks->exactly_once = d.exactly_once();
    hooks->unaligned = d.exactly_once() && d.unaligned();
    if (!d.checkpoint_dir().empty()) {
      auto store = storage::OpenObjectStore(d.checkpoint_dir());
      if (!store.ok()) return store.status().WithContext("checkpoint storage");
      hooks->store = std::move(*store);
    }
    if (d.has_restore() && !d.restore().metadata_uri().empty()) {
      const auto& r = d.restore();
      std::string uri = r.metadata_uri();
      size_t slash = uri.rfind('/');
      if (slash == std::string::npos) return Status::InvalidArgument("bad metadata URI " + uri);
      auto dir = storage::OpenObjectStore(uri.substr(0, slash));
      if (!dir.ok()) return dir.status().WithContext("restore");
      auto bytes = (*dir)->Get(uri.substr(slash + 1));
      if (!bytes.ok()) return bytes.status().WithContext("restore from " + uri);
      auto md = std::make_shared<proto::CheckpointMetadata>();
      if (Status st = ParseCheckpointMetadata(*bytes, *md); !st.ok()) {
        return st.WithContext("restore from " + uri);
      }
      auto root = storage::OpenObjectStore(r.state_root());
      if (!root.ok()) return root.status().WithContext("restore");
      auto restore = std::make_shared<RestoreSnapshot>();
      restore->metadata = std::move(md);
      restore->store = std::move(*root);
      hooks->restore = std::move(restore);
    }
    SerialExecutor* up = uploader.get();
    hooks->run_async = [up](std::move_only_function<void()> f) { up->Submit(std::move(f)); };
    hooks->acknowledge = [this](proto::AcknowledgeCheckpoint a) {
      proto::Envelope e;
      *e.mutable_ack_checkpoint() = std::move(a);
      Post(std::move(e));
    };
    hooks->decline = [this](proto::DeclineCheckpoint dc) {
      Log("checkpoint " + std::to_string(dc.checkpoint_id()) + " declined: " + dc.reason());
      proto::Envelope e;
      *e.mutable_decline_checkpoint() = std::move(dc);
      Post(std::move(e));
    };
    return hooks;
  }

  void HandleTrigger(const proto::TriggerCheckpoint& t) {
    auto it = attempts.find(t.attempt_id());
    if (it == attempts.end() || !it->second->started) return;
    CheckpointBarrier b;
    b.id = CheckpointId(t.checkpoint_id());
    b.timestamp = Timestamp(t.timestamp());
    b.flags = static_cast<uint8_t>((t.savepoint() ? CheckpointBarrier::kSavepoint : 0) |
                                   (t.stop() ? CheckpointBarrier::kStop : 0) |
                                   (t.drain() ? CheckpointBarrier::kDrain : 0));
    b.target = t.target_dir();
    for (auto& task : it->second->tasks) {
      if (task->is_source()) task->TriggerCheckpoint(b);
    }
  }

  void HandleNotify(const proto::NotifyCheckpoint& n) {
    auto it = attempts.find(n.attempt_id());
    if (it == attempts.end()) return;
    for (auto& task : it->second->tasks) {
      task->NotifyCheckpoint(CheckpointId(n.checkpoint_id()), n.completed());
    }
  }

  void Log(const std::string& msg) const {
    std::fprintf(stderr, "eddy-worker[%s]: %s\n", options.worker_id.c_str(), msg.c_str());
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t r = ::write(wake_fd, &one, sizeof one);
    (void)r;
  }

  void Send(proto::Envelope& e) {
    std::string bytes = rpc::Pack(e);
    // The DEALER queues while the control plane is unreachable; never block the loop on it.
    (void)socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  }

  /// Slot sharing: the subtasks with the same index share a slot. Run thread, or attempts_mu.
  int slots_used() const {
    int n = 0;
    for (const auto& [id, a] : attempts) {
      std::map<int, int> per_index;
      for (const auto& [vx, s] : a->ids) per_index[s] = 1;
      n += static_cast<int>(per_index.size());
    }
    return n;
  }

  void SendRegistration() {
    proto::Envelope e;
    auto* r = e.mutable_register_worker();
    r->set_worker_id(options.worker_id);
    r->set_slots(options.slots);
    r->set_data_endpoint(network->endpoint());
    r->set_metrics_endpoint(metrics_endpoint);
    r->set_pid(static_cast<int32_t>(::getpid()));
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    r->set_host(host);
    Send(e);
  }

  void SendHeartbeat() {
    proto::Envelope e;
    auto* hb = e.mutable_heartbeat();
    hb->set_worker_id(options.worker_id);
    hb->set_slots_used(slots_used());
    hb->set_buffers_used(global->used());
    hb->set_buffers_total(global->total());
    int64_t now = SteadyMillis();
    std::lock_guard lock(attempts_mu);  // for `ratios`
    for (auto& [id, a] : attempts) {
      if (!a->started) continue;
      double interval_ns = static_cast<double>(std::max<int64_t>(1, now - a->last_report_ms)) * 1e6;
      for (size_t i = 0; i < a->tasks.size(); ++i) {
        const Task& t = *a->tasks[i];
        auto* r = hb->add_tasks();
        r->set_attempt_id(a->id);
        r->set_vertex(a->ids[i].first);
        r->set_subtask(a->ids[i].second);
        r->set_state(a->states[i]);
        r->set_records_in(t.metrics().records_in.load());
        r->set_bytes_in(t.metrics().bytes_in.load());
        r->set_records_out(t.io().records_out.load());
        r->set_bytes_out(t.io().bytes_out.load());
        r->set_input_watermark(t.metrics().input_watermark.load());
        r->set_bad_records(t.metrics().bad_records.load());
        TaskTimes times = t.Times();
        auto ratio = [&](int64_t cur, int64_t& last) {
          double v = static_cast<double>(cur - last) / interval_ns;
          last = cur;
          return std::clamp(v, 0.0, 1.0);
        };
        auto& ratios = a->ratios[i];
        ratios[0] = ratio(times.busy_ns, a->last_busy_ns[i]);
        ratios[1] = ratio(times.backpressured_ns, a->last_bp_ns[i]);
        ratios[2] = ratio(times.idle_ns, a->last_idle_ns[i]);
        r->set_busy_ratio(ratios[0]);
        r->set_backpressured_ratio(ratios[1]);
        r->set_idle_ratio(ratios[2]);
      }
      a->last_report_ms = now;
    }
    Send(e);
  }

  void HandleDeploy(const proto::DeployAttempt& d) {
    proto::Envelope reply;
    auto* ack = reply.mutable_deploy_ack();
    ack->set_attempt_id(d.attempt_id());
    auto fail = [&](const std::string& msg) {
      Log("deployment of attempt " + std::to_string(d.attempt_id()) + " of job " + d.job_id() +
          " failed: " + msg);
      ack->set_ok(false);
      ack->set_error(msg);
      Send(reply);
    };
    if (attempts.count(d.attempt_id())) return fail("attempt already deployed");
    auto a = std::make_unique<Attempt>();
    a->id = d.attempt_id();
    a->job_id = d.job_id();
    JobSpecOptions jo;
    jo.parallelism = d.parallelism();
    jo.base_dir = d.base_dir();
    jo.append_output_files = true;
    auto job = CompileJobSpec(d.spec_text(), d.spec_file(), jo);
    if (!job.ok()) return fail(job.status().message());
    a->job = std::move(*job);
    auto jg = JobGraph::FromStreamGraph(a->job.env->graph());
    if (!jg.ok()) return fail(jg.status().message());
    a->graph = std::make_unique<JobGraph>(std::move(*jg));
    std::map<std::pair<int, int>, std::string> where;
    for (const auto& p : d.placements()) {
      where[{p.vertex(), p.subtask()}] =
          p.worker_id() == options.worker_id ? std::string() : p.data_endpoint();
    }
    for (const auto& v : a->graph->vertices()) {
      for (int s = 0; s < v.parallelism; ++s) {
        if (!where.count({v.id.value(), s}))
          return fail("the placement misses subtask " + std::to_string(s) + " of vertex '" +
                      v.name + "' (do control plane and worker run the same Eddy version?)");
      }
    }
    auto hooks = MakeHooks(d);
    if (!hooks.ok()) return fail(hooks.status().message());
    a->checkpoints = *hooks;
    DeploymentOptions o;
    o.task.checkpoints = a->checkpoints;
    o.global = global.get();
    o.buffer_timeout = d.buffer_timeout_ms() >= 0 ? Duration::Millis(d.buffer_timeout_ms())
                                                  : a->job.env->graph().buffer_timeout;
    o.cancelled = &a->cancelled;
    o.is_local = [&where](VertexId v, int s) { return where.at({v.value(), s}).empty(); };
    o.endpoint_of = [&where](VertexId v, int s) { return where.at({v.value(), s}); };
    o.network = network.get();
    o.attempt = a->id;
    auto tasks = DeployTasks(*a->graph, o);
    if (!tasks.ok()) {
      network->ReleaseAttempt(a->id);
      return fail(tasks.status().message());
    }
    a->tasks = std::move(*tasks);
    for (const auto& t : a->tasks) {
      a->ids.emplace_back(t->vertex_id().value(), t->subtask());
      a->states.push_back(proto::TASK_DEPLOYING);
    }
    a->last_busy_ns.assign(a->tasks.size(), 0);
    a->last_bp_ns.assign(a->tasks.size(), 0);
    a->last_idle_ns.assign(a->tasks.size(), 0);
    a->ratios.assign(a->tasks.size(), {0.0, 0.0, 0.0});
    Log("deployed " + std::to_string(a->tasks.size()) + " subtasks of job '" + a->job.name +
        "' (attempt " + std::to_string(a->id) + ")");
    {
      std::lock_guard lock(attempts_mu);
      attempts[a->id] = std::move(a);
    }
    ack->set_ok(true);
    Send(reply);
  }

  void HandleStart(uint64_t id) {
    auto it = attempts.find(id);
    if (it == attempts.end() || it->second->started) return;
    Attempt& a = *it->second;
    {
      std::lock_guard lock(attempts_mu);
      a.started = true;
      for (auto& st : a.states) st = proto::TASK_RUNNING;
    }
    a.last_report_ms = SteadyMillis();
    network->StartAttempt(id);
    for (size_t i = 0; i < a.tasks.size(); ++i) {
      a.threads.emplace_back([this, &a, i] {
        Status s = a.tasks[i]->Run();
        if (!s.ok() && s.code() != StatusCode::kCancelled) {
          Log("task " + a.tasks[i]->name() + " failed: " + s.ToString());
        }
        proto::TaskStateUpdate u;
        u.set_attempt_id(a.id);
        u.set_vertex(a.ids[i].first);
        u.set_subtask(a.ids[i].second);
        u.set_state(a.cancelled.load() && !s.ok() ? proto::TASK_CANCELED : ToProto(s));
        if (!s.ok()) u.set_error(s.ToString());
        {
          std::lock_guard lock(mu);
          updates.push_back(std::move(u));
        }
        Wake();
      });
    }
  }

  void Cancel(Attempt& a) {
    a.cancelled = true;
    for (auto& t : a.tasks) t->Cancel();
  }

  void Release(uint64_t id) {
    std::unique_ptr<Attempt> gone;
    {
      // Out of the map first, so that no scrape reads it while it is torn down.
      std::lock_guard lock(attempts_mu);
      auto it = attempts.find(id);
      if (it == attempts.end()) return;
      gone = std::move(it->second);
      attempts.erase(it);
    }
    Cancel(*gone);
    for (auto& t : gone->threads) t.join();
    network->ReleaseAttempt(id);
  }

  void ForwardUpdates() {
    std::vector<proto::TaskStateUpdate> batch;
    std::vector<proto::Envelope> out;
    {
      std::lock_guard lock(mu);
      batch.swap(updates);
      out.swap(outbox);
    }
    // Acknowledgements before state updates: a task that acknowledged and then finished has its
    // snapshot counted.
    for (auto& e : out) Send(e);
    if (batch.empty()) return;
    for (auto& u : batch) {
      if (auto it = attempts.find(u.attempt_id()); it != attempts.end()) {
        std::lock_guard lock(attempts_mu);
        for (size_t i = 0; i < it->second->ids.size(); ++i) {
          if (it->second->ids[i] == std::pair<int, int>(u.vertex(), u.subtask()))
            it->second->states[i] = u.state();
        }
      }
    }
    // The tasks' final figures first: once the last task reported FINISHED the JobMaster
    // releases the attempt and no longer takes reports for it (short jobs would show zeros).
    SendHeartbeat();
    for (auto& u : batch) {
      proto::Envelope e;
      *e.mutable_task_state() = std::move(u);
      Send(e);
    }
  }

  /// The worker's metric families (docs/metrics.md), built from atomics at scrape time. Runs on
  /// the metrics server's threads.
  std::vector<prometheus::MetricFamily> Collect() const {
    using metrics::FamilyBuilder;
    using metrics::Labels;
    auto counter = [](const char* name, const char* help) {
      return FamilyBuilder::Counter(name, help);
    };
    auto gauge = [](const char* name, const char* help) {
      return FamilyBuilder::Gauge(name, help);
    };
    auto d = [](auto v) { return static_cast<double>(v); };

    FamilyBuilder records_in = counter("eddy_task_records_in_total",
                                       "Records a subtask read from its inputs (numRecordsIn).");
    FamilyBuilder records_out = counter("eddy_task_records_out_total",
                                        "Records a subtask wrote to its outputs (numRecordsOut).");
    FamilyBuilder bytes_in =
        counter("eddy_task_bytes_in_total", "Bytes of the buffers a subtask read (numBytesIn).");
    FamilyBuilder bytes_out =
        counter("eddy_task_bytes_out_total", "Record bytes a subtask wrote (numBytesOut).");
    FamilyBuilder buffers_out = counter("eddy_task_buffers_out_total",
                                        "Network buffers a subtask handed to its consumers.");
    FamilyBuilder bad_records = counter("eddy_task_bad_records_total",
                                        "Input records a subtask could not decode (skipped).");
    FamilyBuilder busy_s =
        counter("eddy_task_busy_seconds_total",
                "Time a subtask spent processing, excluding back-pressure (accumulated busyTime).");
    FamilyBuilder idle_s =
        counter("eddy_task_idle_seconds_total",
                "Time a subtask spent waiting for input (accumulated idleTime).");
    FamilyBuilder bp_s =
        counter("eddy_task_backpressured_seconds_total",
                "Time a subtask spent blocked on output buffers (accumulated backPressuredTime).");
    FamilyBuilder busy_r = gauge("eddy_task_busy_time_ratio",
                                 "Share of the last heartbeat interval (1 s) a subtask was busy "
                                 "(busyTimeMsPerSecond / 1000).");
    FamilyBuilder idle_r = gauge("eddy_task_idle_time_ratio",
                                 "Share of the last heartbeat interval (1 s) a subtask was idle "
                                 "(idleTimeMsPerSecond / 1000).");
    FamilyBuilder bp_r = gauge("eddy_task_backpressured_time_ratio",
                               "Share of the last heartbeat interval (1 s) a subtask was "
                               "back-pressured (backPressuredTimeMsPerSecond / 1000).");
    FamilyBuilder out_used =
        gauge("eddy_task_output_buffers_used",
              "Buffers of a subtask's output pools in use: being filled or queued for consumers.");
    FamilyBuilder out_total =
        gauge("eddy_task_output_buffers", "Buffers of a subtask's output pools.");
    FamilyBuilder in_wm =
        gauge("eddy_task_input_watermark_seconds",
              "Input watermark of a subtask, epoch seconds (currentInputWatermark / 1000).");
    FamilyBuilder out_wm = gauge(
        "eddy_task_output_watermark_seconds",
        "Last watermark a subtask sent downstream, epoch seconds (currentOutputWatermark / 1000).");
    FamilyBuilder wm_lag =
        gauge("eddy_task_watermark_lag_seconds",
              "Wall clock minus a subtask's input watermark (sources: output watermark).");
    FamilyBuilder markers_in = counter("eddy_task_latency_markers_in_total",
                                       "Latency markers a subtask received and forwarded.");
    FamilyBuilder markers_out = counter("eddy_task_latency_markers_out_total",
                                        "Latency markers a subtask wrote to its outputs.");
    FamilyBuilder late = counter("eddy_operator_late_records_dropped_total",
                                 "Records an operator dropped as late (numLateRecordsDropped).");
    FamilyBuilder op_bad = counter("eddy_operator_bad_records_total",
                                   "Records an operator could not process (skipped).");
    FamilyBuilder fill = FamilyBuilder::Histogram(
        "eddy_buffer_fill_to_send_seconds",
        "Time from the first write into a network buffer to its hand-over to the consumer.");
    FamilyBuilder latency = FamilyBuilder::Histogram(
        "eddy_latency_seconds",
        "Time from a latency marker's creation at a source to its arrival at a subtask (latency).");

    const double now_ms = d(EpochMillis());
    int slots = 0;
    {
      std::lock_guard lock(attempts_mu);
      slots = slots_used();
      std::set<std::string> jobs_seen;
      // Newest attempt first: an older attempt of the same job still being released would
      // repeat its series, which makes Prometheus drop the whole scrape.
      for (auto it = attempts.rbegin(); it != attempts.rend(); ++it) {
        const Attempt& a = *it->second;
        if (!jobs_seen.insert(a.job_id).second) continue;
        for (size_t i = 0; i < a.tasks.size(); ++i) {
          const Task& t = *a.tasks[i];
          const Labels l{{"job", a.job.name},
                         {"job_id", a.job_id},
                         {"vertex", t.vertex().name},
                         {"subtask", std::to_string(t.subtask())}};
          const TaskMetrics& m = t.metrics();
          const IoCounters& io = t.io();
          records_in.Add(l, d(m.records_in.load(std::memory_order_relaxed)));
          records_out.Add(l, d(io.records_out.load(std::memory_order_relaxed)));
          bytes_in.Add(l, d(m.bytes_in.load(std::memory_order_relaxed)));
          bytes_out.Add(l, d(io.bytes_out.load(std::memory_order_relaxed)));
          buffers_out.Add(l, d(io.buffers_out.load(std::memory_order_relaxed)));
          bad_records.Add(l, d(m.bad_records.load(std::memory_order_relaxed)));
          TaskTimes times = t.Times();
          busy_s.Add(l, d(times.busy_ns) * 1e-9);
          idle_s.Add(l, d(times.idle_ns) * 1e-9);
          bp_s.Add(l, d(times.backpressured_ns) * 1e-9);
          busy_r.Add(l, a.ratios[i][0]);
          bp_r.Add(l, a.ratios[i][1]);
          idle_r.Add(l, a.ratios[i][2]);
          auto [used, total] = t.OutputBuffers();
          if (total > 0) {
            out_used.Add(l, d(used));
            out_total.Add(l, d(total));
            fill.Add(l, io.fill_to_send.Snapshot());
            markers_out.Add(l, d(io.latency_markers_out.load(std::memory_order_relaxed)));
          }
          int64_t iwm = m.input_watermark.load(std::memory_order_relaxed);
          int64_t owm = io.output_watermark.load(std::memory_order_relaxed);
          if (iwm != INT64_MIN) in_wm.Add(l, d(iwm) / 1e3);
          if (owm != INT64_MIN) out_wm.Add(l, d(owm) / 1e3);
          int64_t lag_wm = t.is_source() ? owm : iwm;
          // Before the first watermark and after the last (Long.MAX at end of input): no lag.
          if (lag_wm != INT64_MIN && lag_wm != INT64_MAX) wm_lag.Add(l, (now_ms - d(lag_wm)) / 1e3);
          if (!t.is_source())
            markers_in.Add(l, d(m.latency_markers_in.load(std::memory_order_relaxed)));
          for (const LatencySeries& ls : t.latency()) {
            metrics::HistogramSnapshot snap = ls.histogram->Snapshot();
            if (snap.count == 0) continue;  // no markers from that source (yet, or tracking off)
            Labels ll = l;
            ll["source_vertex"] = a.graph->vertex(ls.source).name;
            latency.Add(ll, snap);
          }
          std::set<std::string> op_seen;
          for (size_t k = 0; k < t.operator_counters().size(); ++k) {
            Labels ol = l;
            std::string op = t.operator_names()[k];
            // Names are unique in a job spec but not necessarily in the C++ API.
            if (!op_seen.insert(op).second) op += "#" + std::to_string(k);
            ol["operator"] = op;
            late.Add(ol, d(t.operator_counters()[k].late_records_dropped.load()));
            op_bad.Add(ol, d(t.operator_counters()[k].bad_records.load()));
          }
        }
      }
    }

    std::vector<prometheus::MetricFamily> out;
    for (FamilyBuilder* b :
         {&records_in,  &records_out, &bytes_in, &bytes_out, &buffers_out, &bad_records,
          &busy_s,      &idle_s,      &bp_s,     &busy_r,    &idle_r,      &bp_r,
          &out_used,    &out_total,   &in_wm,    &out_wm,    &wm_lag,      &markers_in,
          &markers_out, &late,        &op_bad,   &fill,      &latency}) {
      Put(out, *b);
    }

    const Labels none;
    auto worker_gauge = [&](const char* name, const char* help, double v) {
      FamilyBuilder b = gauge(name, help);
      b.Add(none, v);
      Put(out, b);
    };
    auto worker_counter = [&](const char* name, const char* help, double v) {
      FamilyBuilder b = counter(name, help);
      b.Add(none, v);
      Put(out, b);
    };
    {
      FamilyBuilder info = gauge("eddy_worker_info", "Always 1; labels name this worker.");
      info.Add({{"worker", options.worker_id}, {"data_endpoint", network->endpoint()}}, 1);
      Put(out, info);
    }
    worker_gauge("eddy_worker_slots", "Task slots this worker offers (taskSlotsTotal).",
                 options.slots);
    worker_gauge("eddy_worker_slots_used",
                 "Task slots in use (subtasks with the same index share one).", slots);
    worker_gauge("eddy_worker_network_buffers_used",
                 "Network buffers (32 KiB) reserved by partitions and receive pools.",
                 d(global->used()));
    worker_gauge("eddy_worker_network_buffers", "Network buffers (32 KiB) of this worker.",
                 d(global->total()));
    worker_counter("eddy_worker_malformed_control_messages_total",
                   "Control messages that could not be parsed (logged and dropped).",
                   d(malformed.load(std::memory_order_relaxed)));
    const NetworkStats& ns = network->stats();
    auto load = [](const std::atomic<uint64_t>& a) {
      return static_cast<double>(a.load(std::memory_order_relaxed));
    };
    worker_counter("eddy_network_buffers_sent_total", "Data-plane buffers sent to other workers.",
                   load(ns.buffers_sent));
    worker_counter("eddy_network_buffers_received_total",
                   "Data-plane buffers received from other workers.", load(ns.buffers_received));
    worker_counter("eddy_network_bytes_sent_total", "Data-plane bytes sent to other workers.",
                   load(ns.bytes_sent));
    worker_counter("eddy_network_bytes_received_total",
                   "Data-plane bytes received from other workers.", load(ns.bytes_received));
    worker_counter("eddy_network_credits_granted_total",
                   "Credits (free receive buffers) announced to producers.",
                   load(ns.credits_granted));
    worker_counter("eddy_network_credits_received_total", "Credits received from consumers.",
                   load(ns.credits_received));
    worker_counter("eddy_network_malformed_messages_total",
                   "Data-plane messages that broke the protocol (logged and dropped).",
                   load(ns.malformed_messages));
    worker_counter("eddy_network_unknown_channel_messages_total",
                   "Data-plane messages for channels this worker does not know (dropped).",
                   load(ns.unknown_channel_messages));
    return out;
  }

  /// Starts the metrics endpoint (options.metrics_address) and says where it is.
  Status StartMetrics() {
    if (options.metrics_address.empty()) return Status::Ok();
    auto server = metrics::MetricsServer::Start(options.metrics_address);
    if (!server.ok()) {
      return server.status().WithContext(
          "metrics endpoint (choose another with --metrics-port, 0 = any free port, or turn it "
          "off with --no-metrics)");
    }
    metrics_server = std::move(*server);
    probe = metrics::CallbackCollectable::Make([this] { return Collect(); });
    metrics_server->Add(probe);
    metrics_server->Add(std::make_shared<metrics::ProcessCollectable>());
    // The host peers and Prometheus use: the bound one, unless it is every interface.
    std::string host = options.metrics_address;
    size_t colon = host.rfind(':');
    host = colon == std::string::npos ? std::string() : host.substr(0, colon);
    if (host.empty() || host == "0.0.0.0" || host == "[::]") host = options.network.advertised_host;
    metrics_endpoint = host + ":" + std::to_string(metrics_server->port());
    Log("metrics at http://" + metrics_endpoint + "/metrics");
    return Status::Ok();
  }

  Status Loop() {
    socket.set(zmq::sockopt::routing_id, options.worker_id);
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(options.jobmanager);
    SendRegistration();
    bool registered = false;
    int64_t start = SteadyMillis();
    int64_t last_heard = start;
    int64_t next_beat = start + 1000;
    zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    while (!stop.load()) {
      int64_t now = SteadyMillis();
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(std::max<int64_t>(1, next_beat - now)));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) Log(std::string("poll failed: ") + e.what());
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t v;
        ssize_t r = ::read(wake_fd, &v, sizeof v);
        (void)r;
      }
      ForwardUpdates();
      while (true) {
        zmq::message_t m;
        if (!socket.recv(m, zmq::recv_flags::dontwait)) break;
        auto env = rpc::Unpack(std::string_view(static_cast<const char*>(m.data()), m.size()));
        if (!env.ok()) {
          malformed.fetch_add(1);
          Log("dropped control message: " + env.status().message());
          continue;
        }
        last_heard = SteadyMillis();
        switch (env->body_case()) {
          case proto::Envelope::kRegisterAck:
            if (!env->register_ack().accepted()) {
              return Status::InvalidArgument("the control plane refused this worker: " +
                                             env->register_ack().error());
            }
            if (!registered) {
              Log("registered with " + options.jobmanager + ", " + std::to_string(options.slots) +
                  " slots, data plane at " + network->endpoint());
            }
            registered = true;
            if (env->register_ack().heartbeat_interval_ms() > 0)
              heartbeat_interval_ms = env->register_ack().heartbeat_interval_ms();
            break;
          case proto::Envelope::kDeploy:
            HandleDeploy(env->deploy());
            break;
          case proto::Envelope::kStart:
            HandleStart(env->start().attempt_id());
            break;
          case proto::Envelope::kCancel:
            if (auto it = attempts.find(env->cancel().attempt_id()); it != attempts.end())
              Cancel(*it->second);
            break;
          case proto::Envelope::kRelease:
            Release(env->release().attempt_id());
            break;
          case proto::Envelope::kTriggerCheckpoint:
            HandleTrigger(env->trigger_checkpoint());
            break;
          case proto::Envelope::kNotifyCheckpoint:
            HandleNotify(env->notify_checkpoint());
            break;
          case proto::Envelope::kShutdown:
            Log("asked to shut down: " + env->shutdown().reason());
            stop = true;
            break;
          default:
            malformed.fetch_add(1);
            Log("dropped control message of unexpected kind " +
                std::to_string(static_cast<int>(env->body_case())));
        }
      }
      now = SteadyMillis();
      if (!registered && now - start > options.registration_timeout_ms) {
        return Status::Unavailable("no answer from the control plane at " + options.jobmanager +
                                   " within " + std::to_string(options.registration_timeout_ms) +
                                   " ms");
      }
      if (registered && now - last_heard > options.jobmanager_timeout_ms) {
        return Status::Unavailable("lost the control plane at " + options.jobmanager +
                                   ": nothing heard for " + std::to_string(now - last_heard) +
                                   " ms");
      }
      if (now >= next_beat) {
        // Until registered, the heartbeat is the registration (the control plane may start
        // after us or may have forgotten us).
        if (registered) {
          SendHeartbeat();
        } else {
          SendRegistration();
        }
        next_beat = now + heartbeat_interval_ms;
      }
    }
    return Status::Ok();
  }
};

Result<std::unique_ptr<TaskExecutor>> TaskExecutor::Make(WorkerOptions options) {
  std::unique_ptr<TaskExecutor> te(new TaskExecutor());
  te->impl_ = std::make_unique<Impl>();
  auto& impl = *te->impl_;
  if (options.slots <= 0)
    options.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (options.worker_id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    options.worker_id = std::string(host) + "-" + std::to_string(::getpid());
  }
  impl.options = options;
  impl.global = std::make_unique<NetworkBufferPool>(options.network_buffers);
  EDDY_ASSIGN_OR_RETURN(impl.network, NetworkService::Start(options.network, impl.global.get()));
  impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl.wake_fd < 0) return Status::IOError("eventfd failed");
  EDDY_RETURN_NOT_OK(impl.StartMetrics());
  return te;
}

TaskExecutor::~TaskExecutor() {
  if (!impl_) return;
  // No scrape may run once the attempts, the network and the pool start going away.
  if (impl_->probe) impl_->probe->Detach();
  impl_->metrics_server.reset();
  std::vector<uint64_t> ids;
  for (auto& [id, a] : impl_->attempts) ids.push_back(id);
  for (auto id : ids) impl_->Release(id);
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

Status TaskExecutor::Run() {
  try {
    return impl_->Loop();
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("control connection failed: ") + e.what());
  }
}

void TaskExecutor::RequestStop() {
  impl_->stop.store(true);
  uint64_t one = 1;
  ssize_t r = ::write(impl_->wake_fd, &one, sizeof one);
  (void)r;
}

const NetworkService& TaskExecutor::network() const {
  return *impl_->network;
}

const std::string& TaskExecutor::metrics_endpoint() const {
  return impl_->metrics_endpoint;
}

std::vector<prometheus::MetricFamily> TaskExecutor::CollectMetrics() const {
  return impl_->Collect();
}

uint64_t TaskExecutor::malformed_control_messages() const {
  return impl_->malformed.load();
}

}  // namespace eddy::worker
