#include "eddy/control/control_plane.h"
#include "eddy/clock.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <zmq.hpp>

#include "eddy/control/checkpoint_coordinator.h"
#include "eddy/graph/stream_graph.h"
#include "eddy/rpc/envelope.h"
#include "eddy/spec/job_spec.h"

namespace eddy::control {

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kCreated:
      return "CREATED";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kFailing:
      return "FAILING";
    case JobState::kRestarting:
      return "RESTARTING";
    case JobState::kFinished:
      return "FINISHED";
    case JobState::kCanceling:
      return "CANCELLING";
    case JobState::kCanceled:
      return "CANCELED";
    case JobState::kFailed:
      return "FAILED";
  }
  return "?";
}

namespace {

std::string TaskStateName(proto::TaskState s) {
  switch (s) {
    case proto::TASK_CREATED:
      return "CREATED";
    case proto::TASK_DEPLOYING:
      return "DEPLOYING";
    case proto::TASK_RUNNING:
      return "RUNNING";
    case proto::TASK_FINISHED:
      return "FINISHED";
    case proto::TASK_CANCELED:
      return "CANCELED";
    case proto::TASK_FAILED:
      return "FAILED";
    default:
      return "UNKNOWN";
  }
}

bool TaskTerminal(proto::TaskState s) {
  return s == proto::TASK_FINISHED || s == proto::TASK_CANCELED || s == proto::TASK_FAILED;
}

/// A 32-hex-digit id like Flink's JobID.
std::string NewJobId(uint64_t seq) {
  static std::atomic<uint64_t> salt{static_cast<uint64_t>(EpochMillis()) ^
                                    (static_cast<uint64_t>(::getpid()) << 32)};
  uint64_t a = salt.fetch_add(0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
  uint64_t b = (seq + 1) * 0x94D049BB133111EBull ^ a;
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

}  // namespace

struct ControlPlane::Impl {
  struct Worker {
    std::string id;
    std::string data_endpoint;
    std::string metrics_endpoint;
    int slots = 0;
    int pid = 0;
    int64_t last_heartbeat = 0;  // steady ms
    int64_t last_heartbeat_epoch = 0;
    std::vector<std::string> slot_owner;  // job id per slot, "" = free
    uint64_t buffers_used = 0, buffers_total = 0;
    int free() const {
      int n = 0;
      for (const auto& o : slot_owner) n += o.empty();
      return n;
    }
  };

  struct Task {
    std::string worker;
    proto::TaskState state = proto::TASK_CREATED;
    proto::TaskReport report;
  };

  struct Job {
    std::string id;
    std::string name;
    JobSubmission submission;
    CompiledJob compiled;
    std::unique_ptr<JobGraph> graph;
    std::string plan_json;
    JobState state = JobState::kCreated;
    std::unique_ptr<RestartStrategy> restart;
    int restarts = 0;
    std::string failure;
    int64_t start_epoch = 0, end_epoch = -1;
    // Current execution attempt.
    uint64_t attempt = 0;
    bool attempt_live = false;             // deployed and not yet released
    std::vector<std::vector<Task>> tasks;  // [vertex][subtask]
    std::set<std::string> workers;         // involved in the attempt
    int acks_pending = 0;
    int64_t waiting_since = 0;  // waiting for slots
    int64_t restart_at = 0;
    int64_t drain_deadline = 0;
    bool cancel_requested = false;
    // Checkpoints: the coordinator, and the snapshot the next attempt starts from.
    std::unique_ptr<CheckpointCoordinator> checkpoints;
    std::optional<proto::RestoreFrom> initial_restore;  // --from-savepoint
    bool initial_restore_is_savepoint = false;          // (not a retained checkpoint)
    std::optional<proto::RestoreFrom> restore;          // resolved for the next attempt
    bool restore_resolved = false;
    bool restore_resolving = false;
    // Every task finished while a stop-with-savepoint was in flight: the job finishes once the
    // savepoint completed or failed (Tick).
    bool finish_after_stop = false;
  };

  ControlPlaneOptions options;
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string endpoint;
  int wake_fd = -1;
  std::thread loop;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::move_only_function<void()>> commands;

  // Control-thread state.
  std::map<std::string, Worker> workers;
  std::map<std::string, std::unique_ptr<Job>> jobs;
  std::vector<std::string> job_order;
  uint64_t next_attempt = 0;
  uint64_t next_job = 0;
  int next_worker = 0;
  uint64_t malformed = 0;
  int64_t last_launch_check = 0;

  void Log(const std::string& s) const {
    if (options.verbose) std::fprintf(stderr, "eddy: %s\n", s.c_str());
  }

  void Post(std::move_only_function<void()> f) {
    {
      std::lock_guard lock(mu);
      commands.push_back(std::move(f));
    }
    Wake();
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t r = ::write(wake_fd, &one, sizeof one);
    (void)r;
  }

  template <class F>
  auto Call(F f) -> decltype(f()) {
    using R = decltype(f());
    std::promise<R> p;
    auto fut = p.get_future();
    {
      std::lock_guard lock(mu);
      commands.push_back([&p, &f] {
        if constexpr (std::is_void_v<R>) {
          f();
          p.set_value();
        } else {
          p.set_value(f());
        }
      });
    }
    Wake();
    return fut.get();
  }

  void SendTo(const std::string& worker_id, proto::Envelope& e) {
    std::string bytes = rpc::Pack(e);
    try {
      router.send(zmq::buffer(worker_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      router.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& ex) {
      Log("cannot send to worker " + worker_id + ": " + ex.what());
    }
  }

  void Malformed(const std::string& why) {
    ++malformed;
    if (malformed <= 20 || (malformed & (malformed - 1)) == 0)
      Log("dropped control message: " + why + " (" + std::to_string(malformed) + " so far)");
  }

  std::string JobLabel(const Job& j) const { return "job '" + j.name + "' (" + j.id + ")"; }

  // ---- ResourceManager ----

  void OnRegister(const std::string& routing_id, const proto::RegisterWorker& r) {
    proto::Envelope reply;
    auto* ack = reply.mutable_register_ack();
    if (r.worker_id() != routing_id || r.worker_id().empty()) {
      ack->set_accepted(false);
      ack->set_error("worker id '" + r.worker_id() + "' does not match its connection identity");
      SendTo(routing_id, reply);
      return;
    }
    if (r.slots() <= 0 || r.slots() > 1024 || r.data_endpoint().empty()) {
      ack->set_accepted(false);
      ack->set_error("registration needs 1..1024 slots and a data endpoint");
      SendTo(routing_id, reply);
      return;
    }
    if (auto it = workers.find(r.worker_id()); it != workers.end()) {
      if (it->second.data_endpoint == r.data_endpoint()) {
        // A repeated registration (our ack was late): just acknowledge again.
        ack->set_accepted(true);
        ack->set_heartbeat_interval_ms(options.heartbeat_interval_ms);
        SendTo(routing_id, reply);
        return;
      }
      WorkerLost(r.worker_id(), "registered again from " + r.data_endpoint());
    }
    Worker w;
    w.id = r.worker_id();
    w.data_endpoint = r.data_endpoint();
    w.metrics_endpoint = r.metrics_endpoint();
    w.slots = r.slots();
    w.pid = r.pid();
    w.last_heartbeat = SteadyMillis();
    w.last_heartbeat_epoch = EpochMillis();
    w.slot_owner.assign(static_cast<size_t>(r.slots()), "");
    workers[w.id] = std::move(w);
    ack->set_accepted(true);
    ack->set_heartbeat_interval_ms(options.heartbeat_interval_ms);
    SendTo(routing_id, reply);
    Log("worker " + r.worker_id() + " registered (" + std::to_string(r.slots()) + " slots, data " +
        r.data_endpoint() + ", pid " + std::to_string(r.pid()) + ")");
    ScheduleWaiting();
  }

  void WorkerLost(const std::string& id, const std::string& reason) {
    auto it = workers.find(id);
    if (it == workers.end()) return;
    workers.erase(it);
    Log("worker " + id + " lost: " + reason);
    for (auto& [jid, j] : jobs) {
      if (!j->attempt_live || !j->workers.count(id)) continue;
      j->workers.erase(id);
      for (auto& v : j->tasks) {
        for (auto& t : v) {
          if (t.worker == id && !TaskTerminal(t.state)) t.state = proto::TASK_CANCELED;
        }
      }
      FailAttempt(*j, "worker " + id + " lost: " + reason);
    }
    if (options.launcher) options.launcher->Stop(id);
  }

  void KeepWorkersRunning() {
    if (!options.launcher || options.workers <= 0 || shutting_down) return;
    for (const auto& e : options.launcher->PollExits()) {
      if (workers.count(e.worker_id)) {
        WorkerLost(e.worker_id, e.reason);
      } else {
        Log("worker " + e.worker_id + " ended before registering: " + e.reason);
      }
      launched.erase(e.worker_id);
    }
    while (static_cast<int>(launched.size()) < options.workers) {
      std::string id = "worker-" + std::to_string(++next_worker);
      Status s = options.launcher->Launch(id, endpoint, options.slots_per_worker);
      if (!s.ok()) {
        Log("cannot launch " + id + ": " + s.ToString());
        break;
      }
      launched.insert(id);
    }
  }
  std::set<std::string> launched;
  bool shutting_down = false;

  void CheckHeartbeats() {
    int64_t now = SteadyMillis();
    std::vector<std::pair<std::string, int64_t>> late;
    for (const auto& [id, w] : workers) {
      if (now - w.last_heartbeat > options.heartbeat_timeout_ms)
        late.emplace_back(id, now - w.last_heartbeat);
    }
    for (const auto& [id, ms] : late) {
      WorkerLost(id, "no heartbeat for " + std::to_string(ms) + " ms (timeout " +
                         std::to_string(options.heartbeat_timeout_ms) + " ms)");
      launched.erase(id);
    }
  }

  void FreeSlots(const std::string& job_id) {
    for (auto& [id, w] : workers) {
      for (auto& o : w.slot_owner) {
        if (o == job_id) o.clear();
      }
    }
  }

  // ---- JobMaster ----

  Result<std::string> Submit(JobSubmission sub) {
    auto j = std::make_unique<Job>();
    JobSpecOptions jo;
    jo.parallelism = sub.parallelism;
    jo.base_dir = sub.base_dir;
    jo.append_output_files = true;
    auto compiled = CompileJobSpec(sub.spec_text, sub.spec_file, jo);
    if (!compiled.ok()) return compiled.status();
    j->compiled = std::move(*compiled);
    auto jg = JobGraph::FromStreamGraph(j->compiled.env->graph());
    if (!jg.ok()) return jg.status();
    j->graph = std::make_unique<JobGraph>(std::move(*jg));
    RestartStrategyConfig rc;
    if (sub.restart) {
      rc = *sub.restart;
    } else {
      auto from_spec = RestartStrategyFromSpec(sub.spec_text);
      if (!from_spec.ok()) return from_spec.status();
      rc = *from_spec;
    }
    j->restart = std::make_unique<RestartStrategy>(rc, next_job + 1);
    if (!sub.job_id.empty()) {
      bool hex =
          sub.job_id.size() == 32 && std::all_of(sub.job_id.begin(), sub.job_id.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
          });
      if (!hex) {
        return Status::InvalidArgument("job id '" + sub.job_id +
                                       "' is not 32 lowercase hex digits");
      }
      if (jobs.count(sub.job_id)) {
        return Status::AlreadyExists("job id " + sub.job_id + " is in use");
      }
      j->id = sub.job_id;
      ++next_job;
    } else {
      j->id = NewJobId(next_job++);
    }
    j->name = j->compiled.name;
    EDDY_RETURN_NOT_OK(SetUpCheckpoints(*j, sub));
    j->plan_json = j->graph->ToJson();
    j->start_epoch = EpochMillis();
    j->submission = std::move(sub);
    std::string id = j->id;
    Log("submitted " + JobLabel(*j) + ": " + std::to_string(j->graph->vertices().size()) +
        " vertices, " + std::to_string(j->graph->RequiredSlots()) + " slots, restart strategy " +
        std::string(RestartKindName(rc.kind)));
    jobs[id] = std::move(j);
    job_order.push_back(id);
    TrySchedule(*jobs[id]);
    return id;
  }

  /// The job's checkpoint coordinator and, for --from-savepoint, the snapshot to start from.
  Status SetUpCheckpoints(Job& j, const JobSubmission& sub) {
    YAML::Node root;
    try {
      root = YAML::Load(sub.spec_text);
    } catch (const YAML::Exception&) {
    }
    EDDY_ASSIGN_OR_RETURN(CheckpointConfig cc, ParseCheckpointConfig(root));
    if (sub.checkpoint_interval) cc.interval = *sub.checkpoint_interval;
    if (!sub.checkpoint_storage.empty()) cc.storage = sub.checkpoint_storage;
    if (!sub.savepoint_dir.empty()) cc.savepoint_dir = sub.savepoint_dir;
    if (sub.unaligned_checkpoints) cc.unaligned = *sub.unaligned_checkpoints;
    EDDY_RETURN_NOT_OK(ValidateCheckpointConfig(cc));
    if (cc.storage.empty()) cc.storage = DefaultCheckpointStorage();
    std::shared_ptr<storage::ObjectStore> store;
    {
      auto opened = storage::OpenObjectStore(storage::JoinKey(cc.storage, j.id));
      if (!opened.ok()) return opened.status().WithContext("checkpointing.storage");
      store = std::move(*opened);
    }
    if (!sub.from_savepoint.empty()) {
      std::shared_ptr<proto::CheckpointMetadata> md;
      EDDY_ASSIGN_OR_RETURN(proto::RestoreFrom r,
                            CheckpointCoordinator::LocateSnapshot(sub.from_savepoint, &md));
      std::set<std::string> uids;
      for (const auto& n : j.compiled.env->graph().nodes()) uids.insert(n.uid);
      for (const auto& op : md->operators()) {
        bool has_state = false;
        for (const auto& st : op.subtasks()) {
          has_state = has_state || st.has_keyed() || !st.operator_state().empty() ||
                      !st.raw().empty() || !st.timers().empty();
        }
        if (has_state && !uids.count(op.uid()) && !sub.allow_non_restored_state) {
          return Status::InvalidArgument(
              "the savepoint " + sub.from_savepoint + " has state for operator '" + op.name() +
              "' (uid " + op.uid() +
              ") that the job does not have; change the job or pass --allow-non-restored-state");
        }
      }
      // In-flight data of an unaligned checkpoint restores only into the same subtasks.
      std::map<std::string, int> head_parallelism;
      for (const auto& v : j.graph->vertices()) {
        head_parallelism[j.graph->stream_graph().node(v.head).uid] = v.parallelism;
      }
      for (const auto& op : md->operators()) {
        bool in_flight = false;
        for (const auto& st : op.subtasks()) in_flight = in_flight || st.input_channels_size() > 0;
        auto it = head_parallelism.find(op.uid());
        if (in_flight && it != head_parallelism.end() && it->second != op.parallelism()) {
          return Status::InvalidArgument(
              sub.from_savepoint + " is an unaligned checkpoint with in-flight data of '" +
              op.name() + "' at parallelism " + std::to_string(op.parallelism()) +
              ", which cannot be restored at parallelism " + std::to_string(it->second) +
              "; resume at the same parallelism, or rescale from a savepoint (savepoints are "
              "always aligned)");
        }
      }
      r.set_allow_non_restored_state(sub.allow_non_restored_state);
      j.initial_restore = r;
      j.initial_restore_is_savepoint = md->savepoint();
    }
    Job* jp = &j;
    CheckpointCoordinator::Callbacks cb;
    cb.trigger = [this, jp](const proto::TriggerCheckpoint& t) {
      proto::Envelope e;
      *e.mutable_trigger_checkpoint() = t;
      std::set<std::string> sources;
      for (const auto& v : jp->graph->vertices()) {
        if (!jp->graph->stream_graph().node(v.head).is_source) continue;
        for (const auto& task : jp->tasks[static_cast<size_t>(v.id.value())]) {
          sources.insert(task.worker);
        }
      }
      for (const auto& w : sources) {
        if (workers.count(w)) SendTo(w, e);
      }
    };
    cb.notify = [this, jp](int64_t id, bool completed) {
      if (!jp->attempt_live) return;
      proto::Envelope e;
      auto* n = e.mutable_notify_checkpoint();
      n->set_attempt_id(jp->attempt);
      n->set_checkpoint_id(id);
      n->set_completed(completed);
      SendAll(*jp, e);
    };
    cb.post = [this](std::move_only_function<void()> f) { Post(std::move(f)); };
    cb.log = [this, jp](const std::string& m) { Log(JobLabel(*jp) + ": " + m); };
    cb.fail = [this, jp](const std::string& m) {
      if (jp->state == JobState::kRunning) FailAttempt(*jp, m);
    };
    j.checkpoints = std::make_unique<CheckpointCoordinator>(j.id, j.compiled.name, std::move(cc),
                                                            std::move(store), std::move(cb));
    return Status::Ok();
  }

  static Result<RestartStrategyConfig> RestartStrategyFromSpec(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception&) {
      return RestartStrategyConfig{};
    }
    if (!root.IsMap() || !root["restartStrategy"]) return RestartStrategyConfig{};
    YAML::Emitter out;
    out << root["restartStrategy"];
    return ParseRestartStrategy(out.c_str());
  }

  void ScheduleWaiting() {
    for (auto& id : job_order) {
      auto& j = *jobs[id];
      if (j.state == JobState::kCreated) TrySchedule(j);
    }
  }

  void TrySchedule(Job& j) {
    const JobGraph& g = *j.graph;
    if (!j.restore_resolved) {
      // Newest readable completed checkpoint first (I/O off this thread), else the savepoint the
      // job was submitted with, else nothing.
      if (j.checkpoints->HasCompleted()) {
        if (j.restore_resolving) return;
        j.restore_resolving = true;
        Job* jp = &j;
        j.checkpoints->ResolveRestore([this, jp](Result<std::optional<proto::RestoreFrom>> r) {
          jp->restore_resolving = false;
          if (jp->state != JobState::kCreated) return;
          if (!r.ok()) {
            jp->failure = r.status().message();
            jp->state = JobState::kFailed;
            jp->end_epoch = EpochMillis();
            Log(JobLabel(*jp) + " failed: " + jp->failure);
            return;
          }
          jp->restore = *r;
          jp->restore_resolved = true;
          TrySchedule(*jp);
        });
        return;
      }
      j.restore = j.initial_restore;
      j.restore_resolved = true;
      if (j.restore) j.checkpoints->RecordRestore(*j.restore, j.initial_restore_is_savepoint);
    }
    // Slot-sharing groups: subtask i of every vertex of a group shares slot (group base + i).
    std::map<std::string, int> group_width;
    for (const auto& v : g.vertices()) {
      auto& w = group_width[v.slot_sharing_group];
      w = std::max(w, v.parallelism);
    }
    std::map<std::string, int> base;
    int needed = 0;
    for (const auto& [name, width] : group_width) {
      base[name] = needed;
      needed += width;
    }
    int free = 0, total = 0;
    for (const auto& [id, w] : workers) {
      free += w.free();
      total += w.slots;
    }
    int64_t now = SteadyMillis();
    if (free < needed) {
      if (j.waiting_since == 0) {
        j.waiting_since = now;
        Log(JobLabel(j) + " waits for " + std::to_string(needed) + " slots (" +
            std::to_string(free) + " of " + std::to_string(total) + " free)");
      }
      return;
    }
    j.waiting_since = 0;
    // Spread the slots evenly over the workers (round robin), so that small jobs still
    // exchange data across processes and load is balanced.
    std::vector<std::pair<std::string, size_t>> picked;
    std::map<std::string, size_t> cursor;
    while (static_cast<int>(picked.size()) < needed) {
      bool progress = false;
      for (auto& [id, w] : workers) {
        if (static_cast<int>(picked.size()) >= needed) break;
        size_t& c = cursor[id];
        while (c < w.slot_owner.size() && !w.slot_owner[c].empty()) ++c;
        if (c < w.slot_owner.size()) {
          picked.emplace_back(id, c);
          w.slot_owner[c] = j.id;
          ++c;
          progress = true;
        }
      }
      if (!progress) break;
    }
    j.attempt = ++next_attempt;
    j.attempt_live = true;
    j.tasks.assign(g.vertices().size(), {});
    j.workers.clear();
    for (const auto& v : g.vertices()) {
      auto& ts = j.tasks[static_cast<size_t>(v.id.value())];
      ts.resize(static_cast<size_t>(v.parallelism));
      for (int s = 0; s < v.parallelism; ++s) {
        ts[static_cast<size_t>(s)].worker =
            picked[static_cast<size_t>(base[v.slot_sharing_group] + s)].first;
        ts[static_cast<size_t>(s)].state = proto::TASK_DEPLOYING;
        j.workers.insert(ts[static_cast<size_t>(s)].worker);
      }
    }
    // An attempt that starts from scratch starts its file sinks afresh; one restored from a
    // checkpoint appends (at-least-once; transactional sinks commit only what checkpoints cover).
    for (const auto& path : j.restore ? std::vector<std::string>{} : j.compiled.output_files) {
      std::error_code ec;
      auto parent = std::filesystem::path(path).parent_path();
      if (!parent.empty()) std::filesystem::create_directories(parent, ec);
      if (std::FILE* f = std::fopen(path.c_str(), "w")) std::fclose(f);
    }
    proto::Envelope e;
    auto* d = e.mutable_deploy();
    d->set_attempt_id(j.attempt);
    d->set_job_id(j.id);
    d->set_job_name(j.name);
    d->set_spec_text(j.submission.spec_text);
    d->set_spec_file(j.submission.spec_file);
    d->set_base_dir(j.submission.base_dir);
    d->set_parallelism(j.submission.parallelism);
    d->set_buffer_timeout_ms(options.buffer_timeout_ms);
    d->set_checkpoint_dir(j.checkpoints->job_dir());
    d->set_exactly_once(j.checkpoints->config().exactly_once);
    d->set_unaligned(j.checkpoints->config().unaligned);
    if (j.restore) {
      *d->mutable_restore() = *j.restore;
      Log(JobLabel(j) + " restores from " + (j.restore->checkpoint_id() ? "checkpoint " : "") +
          (j.restore->checkpoint_id() ? std::to_string(j.restore->checkpoint_id()) + " at " : "") +
          j.restore->metadata_uri());
    }
    // The next attempt resolves its own restore point again.
    j.restore_resolved = false;
    std::map<std::string, int> max_par;
    int ntasks = 0;
    for (const auto& v : g.vertices()) {
      ntasks += v.parallelism;
      for (NodeId n : v.nodes) max_par[g.stream_graph().node(n).uid] = v.max_parallelism;
    }
    j.checkpoints->OnAttemptDeployed(j.attempt, ntasks, std::move(max_par));
    for (const auto& v : g.vertices()) {
      for (int s = 0; s < v.parallelism; ++s) {
        auto* p = d->add_placements();
        p->set_vertex(v.id.value());
        p->set_subtask(s);
        const auto& wid = j.tasks[static_cast<size_t>(v.id.value())][static_cast<size_t>(s)].worker;
        p->set_worker_id(wid);
        p->set_data_endpoint(workers.at(wid).data_endpoint);
      }
    }
    j.acks_pending = static_cast<int>(j.workers.size());
    for (const auto& wid : j.workers) SendTo(wid, e);
    j.state = JobState::kRunning;
    std::string where;
    for (const auto& w : j.workers) where += (where.empty() ? "" : ", ") + w;
    Log(JobLabel(j) + " attempt " + std::to_string(j.attempt) + " deploying to " + where);
  }

  Job* JobOfAttempt(uint64_t attempt) {
    for (auto& [id, j] : jobs) {
      if (j->attempt == attempt && j->attempt_live) return j.get();
    }
    return nullptr;
  }

  void OnDeployAck(const std::string& worker, const proto::DeployAck& a) {
    Job* j = JobOfAttempt(a.attempt_id());
    if (!j) return;
    if (!a.ok()) {
      FailAttempt(*j, "deployment on worker " + worker + " failed: " + a.error());
      return;
    }
    if (j->state != JobState::kRunning) return;
    if (--j->acks_pending == 0) {
      proto::Envelope e;
      e.mutable_start()->set_attempt_id(j->attempt);
      for (const auto& wid : j->workers) SendTo(wid, e);
      for (auto& v : j->tasks) {
        for (auto& t : v) t.state = proto::TASK_RUNNING;
      }
      j->checkpoints->SetAllRunning(true);
    }
  }

  void OnTaskState(const std::string& worker, const proto::TaskStateUpdate& u) {
    Job* j = JobOfAttempt(u.attempt_id());
    if (!j) return;
    if (u.vertex() < 0 || static_cast<size_t>(u.vertex()) >= j->tasks.size() || u.subtask() < 0 ||
        static_cast<size_t>(u.subtask()) >= j->tasks[static_cast<size_t>(u.vertex())].size()) {
      Malformed("task state for an unknown subtask from " + worker);
      return;
    }
    Task& t = j->tasks[static_cast<size_t>(u.vertex())][static_cast<size_t>(u.subtask())];
    t.state = u.state();
    // Checkpoints need every task running (a finished source injects no barrier).
    if (u.state() != proto::TASK_RUNNING) j->checkpoints->SetAllRunning(false);
    if (u.state() == proto::TASK_FAILED && j->state == JobState::kRunning) {
      const auto& v = j->graph->vertex(VertexId(u.vertex()));
      FailAttempt(*j, "task '" + v.name + "' (" + std::to_string(u.subtask() + 1) + "/" +
                          std::to_string(v.parallelism) + ") on worker " + worker +
                          " failed: " + u.error());
      return;
    }
    if (j->state == JobState::kRunning) {
      bool all_finished = true;
      for (const auto& v : j->tasks) {
        for (const auto& x : v) all_finished &= x.state == proto::TASK_FINISHED;
      }
      if (all_finished) {
        // With --drain the tasks end by themselves after the savepoint's barrier, possibly before
        // their asynchronous snapshot uploads were acknowledged: keep the attempt (and the
        // savepoint) alive until it completed or failed.
        if (j->checkpoints->StopPending()) {
          j->finish_after_stop = true;
          return;
        }
        FinishJob(*j);
      }
    } else {
      CheckDrained(*j);
    }
  }

  void FinishJob(Job& j) {
    j.finish_after_stop = false;
    ReleaseAttempt(j);
    j.state = JobState::kFinished;
    j.end_epoch = EpochMillis();
    std::string unaligned;
    if (j.checkpoints && j.checkpoints->config().unaligned) {
      const CheckpointStats& s = j.checkpoints->stats();
      unaligned = "; unaligned checkpoints: " + std::to_string(s.completed) + " completed, " +
                  std::to_string(s.with_in_flight_data) + " with in-flight data (" +
                  std::to_string(s.persisted_bytes_total) + " bytes)";
    }
    Log(JobLabel(j) + " finished in " + std::to_string(j.end_epoch - j.start_epoch) + " ms" +
        (j.restarts ? " after " + std::to_string(j.restarts) + " restart(s)" : "") + unaligned);
    ScheduleWaiting();
  }

  void OnHeartbeat(const std::string& worker, const proto::Heartbeat& hb) {
    auto it = workers.find(worker);
    if (it == workers.end()) return;
    it->second.last_heartbeat = SteadyMillis();
    it->second.last_heartbeat_epoch = EpochMillis();
    it->second.buffers_used = hb.buffers_used();
    it->second.buffers_total = hb.buffers_total();
    AcknowledgeHeartbeat(worker);
    for (const auto& r : hb.tasks()) {
      Job* j = JobOfAttempt(r.attempt_id());
      if (!j || r.vertex() < 0 || static_cast<size_t>(r.vertex()) >= j->tasks.size() ||
          r.subtask() < 0 ||
          static_cast<size_t>(r.subtask()) >= j->tasks[static_cast<size_t>(r.vertex())].size())
        continue;
      j->tasks[static_cast<size_t>(r.vertex())][static_cast<size_t>(r.subtask())].report = r;
    }
  }

  void SendAll(Job& j, proto::Envelope& e) {
    for (const auto& wid : j.workers) {
      if (workers.count(wid)) SendTo(wid, e);
    }
  }

  void ReleaseAttempt(Job& j) {
    if (!j.attempt_live) return;
    j.checkpoints->OnAttemptEnded();
    proto::Envelope e;
    e.mutable_release()->set_attempt_id(j.attempt);
    SendAll(j, e);
    j.attempt_live = false;
    FreeSlots(j.id);
  }

  void FailAttempt(Job& j, const std::string& cause) {
    if (IsTerminal(j.state) || j.state == JobState::kFailing || j.state == JobState::kCanceling ||
        j.state == JobState::kRestarting)
      return;
    j.failure = cause;
    Log(JobLabel(j) + " failing: " + cause);
    j.checkpoints->OnAttemptEnded();
    j.state = JobState::kFailing;
    proto::Envelope e;
    e.mutable_cancel()->set_attempt_id(j.attempt);
    SendAll(j, e);
    j.drain_deadline = SteadyMillis() + options.cancel_timeout_ms;
    CheckDrained(j);
  }

  void CheckDrained(Job& j) {
    if (j.state != JobState::kFailing && j.state != JobState::kCanceling) return;
    bool drained = true;
    for (const auto& v : j.tasks) {
      for (const auto& t : v) {
        if (!TaskTerminal(t.state) && workers.count(t.worker)) drained = false;
      }
    }
    if (!drained && SteadyMillis() < j.drain_deadline) return;
    ReleaseAttempt(j);
    if (j.state == JobState::kCanceling) {
      j.state = JobState::kCanceled;
      j.end_epoch = EpochMillis();
      Log(JobLabel(j) + " canceled");
      ScheduleWaiting();
      return;
    }
    auto delay = j.restart->OnFailure(SteadyMillis());
    if (!delay) {
      j.state = JobState::kFailed;
      j.end_epoch = EpochMillis();
      Log(JobLabel(j) + " failed for good (restart strategy " +
          std::string(RestartKindName(j.restart->config().kind)) + " gave up after " +
          std::to_string(j.restarts) + " restart(s)): " + j.failure);
      ScheduleWaiting();
      return;
    }
    j.state = JobState::kRestarting;
    j.restart_at = SteadyMillis() + delay->millis();
    ++j.restarts;
    Log(JobLabel(j) + " restarting in " + std::to_string(delay->millis()) + " ms (restart " +
        std::to_string(j.restarts) + ", " + std::string(RestartKindName(j.restart->config().kind)) +
        ")");
    ScheduleWaiting();
  }

  Status Cancel(const std::string& id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return Status::NotFound("no job " + id);
    Job& j = *it->second;
    if (IsTerminal(j.state)) return Status::Ok();
    j.cancel_requested = true;
    if (j.state == JobState::kCreated || j.state == JobState::kRestarting) {
      ReleaseAttempt(j);
      j.state = JobState::kCanceled;
      j.end_epoch = EpochMillis();
      Log(JobLabel(j) + " canceled");
      return Status::Ok();
    }
    j.state = JobState::kCanceling;
    j.checkpoints->OnAttemptEnded();
    proto::Envelope e;
    e.mutable_cancel()->set_attempt_id(j.attempt);
    SendAll(j, e);
    j.drain_deadline = SteadyMillis() + options.cancel_timeout_ms;
    CheckDrained(j);
    return Status::Ok();
  }

  void Tick() {
    int64_t now = SteadyMillis();
    KeepWorkersRunning();
    CheckHeartbeats();
    for (auto& id : job_order) {
      Job& j = *jobs[id];
      if (j.state == JobState::kRestarting && now >= j.restart_at) {
        j.state = JobState::kCreated;
        TrySchedule(j);
      } else if (j.state == JobState::kCreated && j.waiting_since != 0) {
        if (now - j.waiting_since > options.slot_request_timeout_ms) {
          j.failure = "could not get " + std::to_string(j.graph->RequiredSlots()) +
                      " slots within " + std::to_string(options.slot_request_timeout_ms) + " ms";
          j.state = JobState::kFailed;
          j.end_epoch = EpochMillis();
          Log(JobLabel(j) + " failed: " + j.failure);
        } else {
          TrySchedule(j);
        }
      } else if (j.state == JobState::kFailing || j.state == JobState::kCanceling) {
        CheckDrained(j);
      } else if (j.state == JobState::kRunning && j.attempt_live) {
        j.checkpoints->Tick(now);
        if (j.finish_after_stop && !j.checkpoints->StopPending()) FinishJob(j);
      }
    }
  }

  void Receive() {
    for (int i = 0; i < 1000; ++i) {
      zmq::message_t id, body, extra;
      if (!router.recv(id, zmq::recv_flags::dontwait)) return;
      if (!id.more()) {
        Malformed("message without body");
        continue;
      }
      (void)router.recv(body, zmq::recv_flags::none);
      bool more = body.more();
      bool too_many = more;
      while (more) {
        (void)router.recv(extra, zmq::recv_flags::none);
        more = extra.more();
      }
      std::string from(static_cast<const char*>(id.data()), id.size());
      if (too_many) {
        Malformed("more than one frame from " + from);
        continue;
      }
      auto env = rpc::Unpack(std::string_view(static_cast<const char*>(body.data()), body.size()));
      if (!env.ok()) {
        Malformed(env.status().message());
        continue;
      }
      if (env->body_case() == proto::Envelope::kRegisterWorker) {
        OnRegister(from, env->register_worker());
        continue;
      }
      if (!workers.count(from)) {
        Malformed("message from unregistered peer '" + from + "'");
        continue;
      }
      switch (env->body_case()) {
        case proto::Envelope::kHeartbeat:
          OnHeartbeat(from, env->heartbeat());
          break;
        case proto::Envelope::kDeployAck:
          OnDeployAck(from, env->deploy_ack());
          break;
        case proto::Envelope::kTaskState:
          OnTaskState(from, env->task_state());
          break;
        case proto::Envelope::kAckCheckpoint:
          if (Job* j = JobOfAttempt(env->ack_checkpoint().attempt_id()))
            j->checkpoints->OnAcknowledge(env->ack_checkpoint());
          break;
        case proto::Envelope::kDeclineCheckpoint:
          if (Job* j = JobOfAttempt(env->decline_checkpoint().attempt_id()))
            j->checkpoints->OnDecline(env->decline_checkpoint());
          break;
        default:
          Malformed("unexpected message kind " + std::to_string(env->body_case()) + " from " +
                    from);
      }
    }
  }

  void Loop() {
    zmq::pollitem_t items[2] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    int64_t next_tick = 0;
    while (!stop.load()) {
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(50));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) Log(std::string("poll failed: ") + e.what());
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t v;
        ssize_t r = ::read(wake_fd, &v, sizeof v);
        (void)r;
      }
      std::vector<std::move_only_function<void()>> cmds;
      {
        std::lock_guard lock(mu);
        cmds.swap(commands);
      }
      for (auto& f : cmds) f();
      Receive();
      if (SteadyMillis() >= next_tick) {
        Tick();
        next_tick = SteadyMillis() + 50;
      }
    }
  }

  JobInfo Info(const Job& j) const {
    JobInfo info;
    info.id = j.id;
    info.name = j.name;
    info.state = j.state;
    info.start_time_ms = j.start_epoch;
    info.end_time_ms = j.end_epoch;
    info.restarts = j.restarts;
    info.failure = j.failure;
    info.plan_json = j.plan_json;
    info.checkpoint_config = j.checkpoints->config();
    info.checkpoints = j.checkpoints->stats();
    info.checkpoint_dir = j.checkpoints->job_dir();
    for (const auto& v : j.graph->vertices()) {
      VertexInfo vi;
      vi.id = v.id.value();
      vi.name = v.name;
      vi.parallelism = v.parallelism;
      for (int s = 0; s < v.parallelism; ++s) {
        SubtaskInfo si;
        si.subtask = s;
        if (static_cast<size_t>(v.id.value()) < j.tasks.size()) {
          const Task& t = j.tasks[static_cast<size_t>(v.id.value())][static_cast<size_t>(s)];
          si.worker_id = t.worker;
          si.state = TaskStateName(t.state);
          si.records_in = t.report.records_in();
          si.records_out = t.report.records_out();
          si.bytes_in = t.report.bytes_in();
          si.bytes_out = t.report.bytes_out();
          si.input_watermark = t.report.attempt_id() != 0 ? t.report.input_watermark() : INT64_MIN;
          si.busy_ratio = t.report.busy_ratio();
          si.backpressured_ratio = t.report.backpressured_ratio();
          si.idle_ratio = t.report.idle_ratio();
        } else {
          si.state = "CREATED";
        }
        vi.subtasks.push_back(si);
      }
      info.vertices.push_back(std::move(vi));
    }
    return info;
  }

  void Shutdown() {
    shutting_down = true;
    proto::Envelope e;
    e.mutable_shutdown()->set_reason("the control plane stops");
    for (const auto& [id, w] : workers) SendTo(id, e);
  }

  // A worker gives up on a control plane it has not heard from for its timeout (30 s), and an
  // idle cluster (or a long job) sends it nothing otherwise: answer every heartbeat. The
  // protocol has no heartbeat reply, so this is the repeated registration ack that workers
  // already accept silently.
  void AcknowledgeHeartbeat(const std::string& worker) {
    proto::Envelope reply;
    auto* ack = reply.mutable_register_ack();
    ack->set_accepted(true);
    ack->set_heartbeat_interval_ms(options.heartbeat_interval_ms);
    SendTo(worker, reply);
  }
};

Result<std::unique_ptr<ControlPlane>> ControlPlane::Start(ControlPlaneOptions options) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane());
  cp->impl_ = std::make_unique<Impl>();
  auto& impl = *cp->impl_;
  impl.options = std::move(options);
  std::string bind =
      "tcp://" + impl.options.rpc_bind_host + ":" +
      (impl.options.rpc_port == 0 ? std::string("*") : std::to_string(impl.options.rpc_port));
  int port = 0;
  try {
    impl.router.set(zmq::sockopt::linger, 0);
    impl.router.set(zmq::sockopt::sndhwm, 0);
    impl.router.bind(bind);
    std::string last = impl.router.get(zmq::sockopt::last_endpoint);
    port = std::stoi(last.substr(last.rfind(':') + 1));
  } catch (const std::exception& e) {
    return Status::IOError("control plane: cannot bind " + bind + ": " + e.what());
  }
  impl.endpoint = "tcp://" + impl.options.advertised_host + ":" + std::to_string(port);
  impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl.wake_fd < 0) return Status::IOError("eventfd failed");
  impl.loop = std::thread([&impl] { impl.Loop(); });
  return cp;
}

ControlPlane::~ControlPlane() {
  if (!impl_) return;
  if (impl_->loop.joinable()) {
    impl_->Call([this] { impl_->Shutdown(); });
    // Give the shutdown messages a moment to leave before the socket closes.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    impl_->stop = true;
    impl_->Wake();
    impl_->loop.join();
  }
  if (impl_->options.launcher) impl_->options.launcher->StopAll();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

const std::string& ControlPlane::rpc_endpoint() const {
  return impl_->endpoint;
}

Status ControlPlane::WaitForWorkers(int n, int64_t timeout_ms) {
  int64_t end = SteadyMillis() + timeout_ms;
  while (true) {
    int have = impl_->Call([this] { return static_cast<int>(impl_->workers.size()); });
    if (have >= n) return Status::Ok();
    if (SteadyMillis() > end)
      return Status::Timeout("only " + std::to_string(have) + " of " + std::to_string(n) +
                             " workers registered within " + std::to_string(timeout_ms) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<std::string> ControlPlane::Submit(JobSubmission job) {
  return impl_->Call(
      [this, &job]() -> Result<std::string> { return impl_->Submit(std::move(job)); });
}

Status ControlPlane::Cancel(const std::string& job_id) {
  return impl_->Call([this, &job_id] { return impl_->Cancel(job_id); });
}

std::optional<JobInfo> ControlPlane::Job(const std::string& job_id) {
  return impl_->Call([this, &job_id]() -> std::optional<JobInfo> {
    auto it = impl_->jobs.find(job_id);
    if (it == impl_->jobs.end()) return std::nullopt;
    return impl_->Info(*it->second);
  });
}

std::vector<JobInfo> ControlPlane::Jobs() {
  return impl_->Call([this] {
    std::vector<JobInfo> out;
    for (const auto& id : impl_->job_order) out.push_back(impl_->Info(*impl_->jobs.at(id)));
    return out;
  });
}

ClusterInfo ControlPlane::Cluster() {
  return impl_->Call([this] {
    ClusterInfo c;
    for (const auto& [id, w] : impl_->workers) {
      WorkerInfo wi;
      wi.id = id;
      wi.data_endpoint = w.data_endpoint;
      wi.metrics_endpoint = w.metrics_endpoint;
      wi.slots = w.slots;
      wi.slots_free = w.free();
      wi.pid = w.pid;
      wi.last_heartbeat_ms = w.last_heartbeat_epoch;
      wi.buffers_used = w.buffers_used;
      wi.buffers_total = w.buffers_total;
      c.slots_total += w.slots;
      c.slots_free += wi.slots_free;
      c.workers.push_back(std::move(wi));
    }
    c.malformed_messages = impl_->malformed;
    for (const auto& [id, j] : impl_->jobs) {
      c.jobs_running += !IsTerminal(j->state);
      c.jobs_finished += j->state == JobState::kFinished;
      c.jobs_canceled += j->state == JobState::kCanceled;
      c.jobs_failed += j->state == JobState::kFailed;
    }
    return c;
  });
}

Result<std::string> ControlPlane::TriggerSavepoint(const std::string& job_id,
                                                   const std::string& dir, bool stop, bool drain) {
  return impl_->Call([&]() -> Result<std::string> {
    auto it = impl_->jobs.find(job_id);
    if (it == impl_->jobs.end()) return Status::NotFound("no job " + job_id);
    if (it->second->state != JobState::kRunning) {
      return Status::Unavailable("job " + job_id + " is " +
                                 std::string(JobStateName(it->second->state)) + ", not RUNNING");
    }
    return it->second->checkpoints->TriggerSavepoint(dir, stop, drain);
  });
}

Result<int64_t> ControlPlane::TriggerCheckpoint(const std::string& job_id) {
  return impl_->Call([&]() -> Result<int64_t> {
    auto it = impl_->jobs.find(job_id);
    if (it == impl_->jobs.end()) return Status::NotFound("no job " + job_id);
    if (it->second->state != JobState::kRunning) {
      return Status::Unavailable("job " + job_id + " is " +
                                 std::string(JobStateName(it->second->state)) + ", not RUNNING");
    }
    return it->second->checkpoints->TriggerCheckpoint();
  });
}

Result<SavepointStatus> ControlPlane::SavepointState(const std::string& job_id,
                                                     const std::string& trigger_id) {
  return impl_->Call([&]() -> Result<SavepointStatus> {
    auto it = impl_->jobs.find(job_id);
    if (it == impl_->jobs.end()) return Status::NotFound("no job " + job_id);
    auto st = it->second->checkpoints->Savepoint(trigger_id);
    if (!st) return Status::NotFound("no savepoint request " + trigger_id + " for job " + job_id);
    return *st;
  });
}

std::optional<JobInfo> ControlPlane::WaitForJob(const std::string& job_id, int64_t timeout_ms) {
  int64_t end = timeout_ms < 0 ? INT64_MAX : SteadyMillis() + timeout_ms;
  while (true) {
    auto j = Job(job_id);
    if (!j || IsTerminal(j->state)) return j;
    if (SteadyMillis() > end) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace eddy::control
