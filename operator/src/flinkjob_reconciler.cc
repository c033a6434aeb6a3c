#include "operator/src/flinkjob_reconciler.h"

#include <algorithm>
#include <random>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "eddy/clock.h"
#include "eddy/control/checkpoint_coordinator.h"
#include "eddy/spec/job_spec.h"
#include "eddy/storage/object_store.h"
#include "operator/src/flinkjob_resources.h"

namespace eddy::control {

namespace {

constexpr size_t kSavepointHistory = 20;

/// "s3://b/ck/JOB" for "s3://b/ck/JOB/chk-7/" (a trailing slash is not a level).
std::string ParentDir(std::string path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

/// `to` as an RFC 7386 merge patch that turns `from` into `to`: `to` itself, plus null for every
/// key of an object in `from` that the same object in `to` no longer has.
Json MergePatchOver(const Json& from, const Json& to) {
  if (!from.is_object() || !to.is_object()) return to;
  Json patch = to;
  for (const auto& [k, v] : from.items()) {
    if (!to.contains(k)) {
      patch[k] = nullptr;
    } else if (v.is_object() && to[k].is_object()) {
      patch[k] = MergePatchOver(v, to[k]);
    }
  }
  return patch;
}

/// A snapshot lookup error: a store that cannot answer now (retryable) fails the lookup — picking
/// an older snapshot instead would replay committed output —, anything else (missing, corrupt)
/// just means "not this one".
Result<std::string> Skip(const Status& s, const std::string& what) {
  if (s.ok() || !s.IsRetryable()) return std::string();
  return s.WithContext("looking for snapshots in " + what);
}

}  // namespace

std::string NewFlinkJobId() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(EpochMillis()));
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::pair<std::string, std::string> JobSnapshotDirs(const std::string& spec_text,
                                                    const std::string& job_id) {
  YAML::Node root;
  try {
    root = YAML::Load(spec_text);  // JSON is YAML
  } catch (const YAML::Exception&) {
    return {};
  }
  auto cc = ParseCheckpointConfig(root);
  if (!cc.ok()) return {};
  std::string storage = cc->storage.empty() ? DefaultCheckpointStorage() : cc->storage;
  return {storage::JoinKey(storage, job_id), cc->savepoint_dir};
}

Result<std::string> LatestCheckpoint(const std::string& job_dir) {
  if (job_dir.empty()) return std::string();
  auto store = storage::OpenObjectStore(job_dir);
  if (!store.ok()) return Skip(store.status(), job_dir);
  auto list = (*store)->List("chk-");
  if (!list.ok()) return Skip(list.status(), job_dir);
  std::vector<int64_t> ids;
  for (const auto& o : *list) {
    const std::string& k = o.key;
    if (k.size() < 14 || k.compare(k.size() - 10, 10, "/_metadata") != 0) continue;
    try {
      ids.push_back(std::stoll(k.substr(4, k.size() - 14)));
    } catch (const std::exception&) {
    }
  }
  std::sort(ids.rbegin(), ids.rend());
  for (int64_t id : ids) {
    std::string path = job_dir + "/chk-" + std::to_string(id);
    auto located = CheckpointCoordinator::LocateSnapshot(path, nullptr);
    if (located.ok()) return path;
    EDDY_RETURN_NOT_OK(Skip(located.status(), path).status());
  }
  return std::string();
}

Result<std::string> LatestSavepointOf(const std::string& savepoint_dir, const std::string& job_id) {
  if (savepoint_dir.empty() || job_id.size() < 6) return std::string();
  auto store = storage::OpenObjectStore(savepoint_dir);
  if (!store.ok()) return Skip(store.status(), savepoint_dir);
  // Savepoints are named savepoint-<first 6 of the job id>-…; the metadata says whose it is.
  auto list = (*store)->List("savepoint-" + job_id.substr(0, 6) + "-");
  if (!list.ok()) return Skip(list.status(), savepoint_dir);
  std::string best;
  int64_t best_time = INT64_MIN;
  for (const auto& o : *list) {
    const std::string& k = o.key;
    if (!k.ends_with("/_metadata")) continue;
    std::string path = storage::JoinKey((*store)->root(), k.substr(0, k.size() - 10));
    std::shared_ptr<proto::CheckpointMetadata> md;
    auto located = CheckpointCoordinator::LocateSnapshot(path, &md);
    if (!located.ok() || !md) {
      EDDY_RETURN_NOT_OK(Skip(located.status(), path).status());
      continue;
    }
    if (md->job_id() == job_id && md->completion_timestamp() > best_time) {
      best_time = md->completion_timestamp();
      best = path;
    }
  }
  return best;
}

Result<std::string> NewestSnapshot(const std::vector<std::string>& paths) {
  std::string best;
  int64_t best_time = INT64_MIN;
  for (const auto& p : paths) {
    if (p.empty()) continue;
    std::shared_ptr<proto::CheckpointMetadata> md;
    auto located = CheckpointCoordinator::LocateSnapshot(p, &md);
    if (!located.ok() || !md) {
      EDDY_RETURN_NOT_OK(Skip(located.status(), p).status());
      continue;
    }
    if (md->completion_timestamp() > best_time) {
      best_time = md->completion_timestamp();
      best = p;
    }
  }
  // The snapshot's directory, also when it was named by its `_metadata`.
  if (best.ends_with("/_metadata")) best.resize(best.size() - 10);
  return best;
}

namespace {

/// What the operator is waiting for on a FlinkJob.
enum class PendingOp : uint8_t { kNone, kSavepoint, kUpgrade, kSuspend, kDelete };

}  // namespace

struct FlinkJobReconciler::Record {
  std::string uid;  // of the FlinkJob this record is about (a recreated one starts afresh)
  std::unique_ptr<JobDeployment> dep;
  std::string dep_key;  // UpgradeKey of the spec `dep` runs
  PendingOp op = PendingOp::kNone;
  std::string trigger_id;
  int64_t op_started_ms = 0;
  int64_t op_nonce = 0;
  /// The snapshot the next deployment starts from, and why ("upgrade", "suspend", …).
  std::optional<std::string> restore_from;
  /// Status fields kept between reconciles.
  Json savepoint_info = Json::object();
  Json checkpoint_info = Json::object();
  Json last_written;
  std::string last_error;
  int64_t retry_after_ms = 0;  // steady ms: no new stop-with-savepoint before (after a failure)
  /// The spec an upgrade savepoint failed for: not retried until the spec changes again, and
  /// the status keeps describing the spec that runs.
  std::string failed_upgrade_key;
  std::string spec_changed_event_for;  // the spec a SpecChanged Event was sent for
  std::string deploy_failed_key;       // the spec whose deployment failed for good
  std::string invalid_event_for;       // spec key an InvalidSpec Event was sent for
  bool finished = false;               // the job reached a terminal state on its own
  std::string finished_key;
  Json terminal_job_status;
};

namespace {

std::string LastSavepointPath(const Json& savepoint_info) {
  if (!savepoint_info.is_object() || !savepoint_info.contains("lastSavepoint")) return {};
  return StrOr(savepoint_info["lastSavepoint"], "path");
}

}  // namespace

struct FlinkJobReconciler::Impl {
  FlinkJobApi& api;
  JobDeployer& deployer;
  FlinkJobReconcilerOptions o;
  std::map<std::string, Record> records;

  Impl(FlinkJobApi& a, JobDeployer& d, FlinkJobReconcilerOptions opts)
      : api(a), deployer(d), o(std::move(opts)) {}

  void Log(const std::string& m) const {
    if (o.log) o.log(m);
  }

  /// Stops the deployed job (cancel, JobMaster, pods) and forgets it.
  void Teardown(Record& rec) {
    if (!rec.dep) return;
    rec.dep->Stop();
    rec.dep.reset();
    rec.dep_key.clear();
  }

  void Event(const Json& fj, const std::string& type, const std::string& reason,
             const std::string& message) {
    const Json& md = fj["metadata"];
    std::string ns = md.value("namespace", "default");
    std::string now = Rfc3339(EpochMillis());
    Json ev = {{"apiVersion", "v1"},
               {"kind", "Event"},
               {"metadata", {{"generateName", md.value("name", "") + "."}, {"namespace", ns}}},
               {"involvedObject",
                {{"apiVersion", kFlinkJobGroupVersion},
                 {"kind", "FlinkJob"},
                 {"name", md.value("name", "")},
                 {"namespace", ns},
                 {"uid", md.value("uid", "")},
                 {"resourceVersion", md.value("resourceVersion", "")}}},
               {"reason", reason},
               {"message", message.substr(0, 1024)},
               {"type", type},
               {"source", {{"component", "eddy-operator"}}},
               {"reportingComponent", "eddy.dev/operator"},
               {"reportingInstance", o.instance},
               {"firstTimestamp", now},
               {"lastTimestamp", now},
               {"count", 1}};
    Status r = api.CreateEvent(ns, ev);
    if (!r.ok()) Log("cannot record Event " + reason + ": " + r.message());
    Log("FlinkJob " + ns + "/" + md.value("name", "") + ": " + reason + ": " + message);
  }

  Status WriteStatus(const Json& fj, Record& rec, Json status) {
    // Conditions keep their lastTransitionTime while their status stays the same.
    if (rec.last_written.contains("conditions")) {
      for (auto& c : status["conditions"]) {
        for (const auto& old : rec.last_written["conditions"]) {
          if (old.value("type", "") == c.value("type", "") &&
              old.value("status", "") == c.value("status", ""))
            c["lastTransitionTime"] = old.value("lastTransitionTime", "");
        }
      }
    }
    if (status == rec.last_written) return Status::Ok();
    // A merge patch keeps what it does not mention: fields dropped since the last write (a
    // cleared error, the job id of a deployment that failed) are sent as null, at every level.
    Json patch = MergePatchOver(rec.last_written, status);
    Status r = api.PatchStatus(fj, patch);
    if (!r.ok()) return r.WithContext("writing the status");
    rec.last_written = std::move(status);
    return Status::Ok();
  }

  Json Condition(const std::string& type, bool ok, const std::string& reason,
                 const std::string& message, int64_t generation) {
    return {{"type", type},
            {"status", ok ? "True" : "False"},
            {"observedGeneration", generation},
            {"lastTransitionTime", Rfc3339(EpochMillis())},
            {"reason", reason},
            {"message", message.substr(0, 2048)}};
  }

  /// Deletes worker pods of earlier JobMasters of this FlinkJob (a previous operator's).
  void DeleteStalePods(const std::string& ns, const std::string& name) {
    Status r = api.DeletePods(ns, std::string(kJobLabel) + "=" + name);
    if (!r.ok()) Log("cannot delete stale pods of " + ns + "/" + name + ": " + r.message());
  }

  /// Starts Flink's stop-with-savepoint of the deployed job for `op` (an upgrade or suspend);
  /// the reconciles that follow poll it.
  Status StopWithSavepoint(Record& rec, PendingOp op, const char* what) {
    auto t = rec.dep->TriggerSavepoint(/*stop=*/true);
    if (!t.ok()) return t.status().WithContext(std::string(what) + " with a savepoint");
    rec.op = op;
    rec.trigger_id = *t;
    rec.op_started_ms = EpochMillis();
    return Status::Ok();
  }

  /// Where a job stopped without a savepoint (last-state; savepoint mode while not RUNNING)
  /// resumes: the newest of its checkpoints, the snapshot it started from (an upgrade before
  /// its first checkpoint must not fall back to something older) and its savepoints.
  static Result<std::string> NewestSnapshotOf(const std::optional<JobInfo>& info) {
    if (!info) return std::string();
    const auto& c = info->checkpoints;
    EDDY_ASSIGN_OR_RETURN(std::string newest_chk, LatestCheckpoint(info->checkpoint_dir));
    EDDY_ASSIGN_OR_RETURN(std::string newest_sp,
                          LatestSavepointOf(info->checkpoint_config.savepoint_dir, info->id));
    return NewestSnapshot({newest_chk, c.latest_completed ? c.latest_completed->path : "",
                           c.latest_restored ? c.latest_restored->path : "",
                           c.latest_savepoint ? c.latest_savepoint->path : "", newest_sp});
  }

  /// The store holding the snapshots did not answer: nothing is deployed, and the status says so
  /// (a job torn down for an upgrade or suspend no longer runs). Retried.
  Status LookupFailed(const Json& fj, Record& rec, Json& status, const Status& why,
                      int64_t generation, int64_t& requeue) {
    std::string msg = "cannot find the snapshot to start from: " + why.message();
    Log("FlinkJob " + fj["metadata"].value("namespace", "") + "/" +
        fj["metadata"].value("name", "") + ": " + msg);
    status["error"] = msg;
    status["taskManagers"] = 0;
    status["conditions"] =
        Json::array({Condition("Ready", false, "SnapshotLookupFailed", msg, generation)});
    requeue = 2000;
    return WriteStatus(fj, rec, status);
  }

  /// Polls a pending manual (nonce) savepoint; once it ended, records it (or the failure, which
  /// stays in status.error until the next deployment) and clears the pending operation.
  Status SettleManualSavepoint(const Json& fj, Record& rec) {
    auto [done, path, failure] = PollSavepoint(rec);
    if (!done) return Status::Ok();
    rec.op = PendingOp::kNone;
    rec.savepoint_info["triggerNonce"] = rec.op_nonce;
    rec.savepoint_info["triggerId"] = "";
    if (failure.empty()) {
      RecordSavepoint(rec, path, "manual", rec.op_nonce);
      Event(fj, "Normal", "SavepointCompleted", "savepoint " + path);
    } else {
      Event(fj, "Warning", "SavepointFailed",
            "savepoint for nonce " + std::to_string(rec.op_nonce) + ": " + failure);
      rec.last_error = "savepoint failed: " + failure;
    }
    return Status::Ok();
  }

  // ------------------------------------------------------------------ reconcile
  Status Reconcile(const std::string& key, const std::optional<Json>& found, int64_t& requeue);
  Status ReconcileDeletion(const Json& fj, Record& rec, int64_t& requeue);
  /// status.jobStatus: `status`'s, refreshed from the deployed job.
  Json JobStatusJson(const Json& status, Record& rec, std::optional<JobInfo>* info_out);
  /// A pending savepoint: still running (done false), completed (path) or failed/timed out.
  struct SavepointPoll {
    bool done = false;
    std::string path;
    std::string failure;
  };
  SavepointPoll PollSavepoint(const Record& rec) const;
  void RecordSavepoint(Record& rec, const std::string& path, const std::string& type,
                       int64_t nonce);
};

FlinkJobReconciler::Impl::SavepointPoll FlinkJobReconciler::Impl::PollSavepoint(
    const Record& rec) const {
  if (!rec.dep) return {true, "", "the job is gone"};
  auto st = rec.dep->SavepointState(rec.trigger_id);
  if (!st.ok()) return {true, "", st.status().message()};
  if (st->state == SavepointStatus::State::kCompleted) return {true, st->location, ""};
  if (st->state == SavepointStatus::State::kFailed) return {true, "", st->failure};
  if (EpochMillis() - rec.op_started_ms > o.savepoint_timeout_ms) {
    return {
        true, "",
        "the savepoint did not complete within " + std::to_string(o.savepoint_timeout_ms) + " ms"};
  }
  return {};
}

void FlinkJobReconciler::Impl::RecordSavepoint(Record& rec, const std::string& path,
                                               const std::string& type, int64_t nonce) {
  Json sp = {{"path", path}, {"time", Rfc3339(EpochMillis())}, {"triggerType", type}};
  Json last = sp;
  if (type == "manual") last["triggerNonce"] = nonce;
  rec.savepoint_info["lastSavepoint"] = last;
  Json& h = rec.savepoint_info["history"];
  if (!h.is_array()) h = Json::array();
  h.push_back(sp);
  while (h.size() > kSavepointHistory) h.erase(h.begin());
}

Json FlinkJobReconciler::Impl::JobStatusJson(const Json& status, Record& rec,
                                             std::optional<JobInfo>* info_out) {
  Json js = status.value("jobStatus", Json::object());
  if (rec.dep) {
    auto info = rec.dep->Info();
    if (info) {
      js["jobId"] = info->id;
      js["jobName"] = info->name;
      js["state"] = std::string(JobStateName(info->state));
      js["startTime"] = Rfc3339(info->start_time_ms);
      js["restarts"] = info->restarts;
      if (!info->checkpoint_dir.empty()) js["checkpointDir"] = info->checkpoint_dir;
      if (info->checkpoints.latest_completed) {
        const auto& c = *info->checkpoints.latest_completed;
        js["lastCheckpoint"] = {{"id", c.id}, {"path", c.path}, {"time", Rfc3339(c.end_epoch_ms)}};
      }
      if (info_out) *info_out = info;
    }
  }
  js["updateTime"] = Rfc3339(EpochMillis());
  js["savepointInfo"] = rec.savepoint_info;
  js["checkpointInfo"] = rec.checkpoint_info;
  return js;
}

Status FlinkJobReconciler::Impl::ReconcileDeletion(const Json& fj, Record& rec, int64_t& requeue) {
  const Json& md = fj["metadata"];
  bool has_finalizer = false;
  Json rest = Json::array();
  for (const auto& f : md.value("finalizers", Json::array())) {
    if (f == kFlinkJobFinalizer) {
      has_finalizer = true;
    } else {
      rest.push_back(f);
    }
  }
  if (!has_finalizer) {
    if (rec.dep) Teardown(rec);
    rec.dep.reset();
    return Status::Ok();
  }
  // A stop-with-savepoint already in flight (upgrade, suspend) serves as the final savepoint; a
  // manual one finishes first. Never two at once.
  if (rec.op == PendingOp::kUpgrade || rec.op == PendingOp::kSuspend) rec.op = PendingOp::kDelete;
  if (rec.op == PendingOp::kSavepoint) {
    EDDY_RETURN_NOT_OK(SettleManualSavepoint(fj, rec));
    if (rec.op == PendingOp::kSavepoint) {
      requeue = 500;
      return Status::Ok();
    }
  }
  bool want_savepoint = o.savepoint_on_deletion;
  if (md.contains("annotations") && md["annotations"].contains("eddy.dev/savepoint-on-deletion"))
    want_savepoint = md["annotations"]["eddy.dev/savepoint-on-deletion"] == "true";
  auto info = rec.dep ? rec.dep->Info() : std::nullopt;
  if (want_savepoint && info && info->state == JobState::kRunning && rec.op != PendingOp::kDelete &&
      !info->checkpoint_config.savepoint_dir.empty()) {
    auto t = rec.dep->TriggerSavepoint(/*stop=*/true);
    if (t.ok()) {
      rec.op = PendingOp::kDelete;
      rec.trigger_id = *t;
      rec.op_started_ms = EpochMillis();
      requeue = 500;
      return Status::Ok();
    }
    Event(fj, "Warning", "SavepointFailed",
          "no savepoint before deletion: " + t.status().message());
  }
  if (rec.op == PendingOp::kDelete) {
    auto [done, path, failure] = PollSavepoint(rec);
    if (!done) {
      requeue = 500;
      return Status::Ok();
    }
    if (failure.empty()) {
      Event(fj, "Normal", "SavepointCompleted", "final savepoint before deletion: " + path);
    } else {
      Event(fj, "Warning", "SavepointFailed", "final savepoint before deletion: " + failure);
    }
    rec.op = PendingOp::kNone;
  }
  if (rec.dep) Teardown(rec);
  rec.dep.reset();
  DeleteStalePods(md.value("namespace", ""), md.value("name", ""));
  Json patch = {{"metadata",
                 {{"finalizers", rest.empty() ? Json(nullptr) : rest},
                  {"resourceVersion", md.value("resourceVersion", "")}}}};
  Status r = api.PatchFlinkJob(md.value("namespace", ""), md.value("name", ""), patch);
  if (!r.ok() && r.code() != StatusCode::kNotFound) return r;
  return Status::Ok();
}

Status FlinkJobReconciler::Impl::Reconcile(const std::string& key, const std::optional<Json>& found,
                                           int64_t& requeue) {
  Record& rec = records[key];
  if (o.debug) Log("reconcile " + key + (found ? "" : ": gone"));
  if (!found) {
    if (rec.dep) {
      Log("FlinkJob " + key + " is gone: stopping its job");
      Teardown(rec);
    }
    records.erase(key);
    return Status::Ok();
  }
  const Json& fj = *found;
  const Json& md = fj["metadata"];
  if (const std::string uid = md.value("uid", ""); rec.uid != uid) {
    if (!rec.uid.empty()) {
      // Deleted and created again under the same name before we saw the deletion: nothing of the
      // old one (its job, its status) belongs to the new one.
      Log("FlinkJob " + key + " was recreated: stopping the old one's job");
      Teardown(rec);
      rec = Record{};
    }
    rec.uid = uid;
  }
  const std::string ns = md.value("namespace", "");
  const std::string name = md.value("name", "");
  const int64_t generation = IntOr(md, "generation", 0);
  const Json& spec = fj.contains("spec") ? fj["spec"] : Json::object();
  Json old_status = fj.contains("status") ? fj["status"] : Json::object();
  if (rec.last_written.is_null() && !old_status.empty()) {
    rec.last_written = old_status;
    if (old_status.contains("jobStatus") && old_status["jobStatus"].contains("savepointInfo"))
      rec.savepoint_info = old_status["jobStatus"]["savepointInfo"];
    if (old_status.contains("jobStatus") && old_status["jobStatus"].contains("checkpointInfo"))
      rec.checkpoint_info = old_status["jobStatus"]["checkpointInfo"];
  }
  // The operator is the status' only writer: what it wrote last is at least as new as what a
  // lagging watch shows.
  if (rec.last_written.is_object()) old_status = rec.last_written;

  if (md.contains("deletionTimestamp")) return ReconcileDeletion(fj, rec, requeue);

  // The finalizer first: from here on a deletion waits for us.
  Json finalizers = md.value("finalizers", Json::array());
  if (std::find(finalizers.begin(), finalizers.end(), kFlinkJobFinalizer) == finalizers.end()) {
    finalizers.push_back(kFlinkJobFinalizer);
    Status r = api.PatchFlinkJob(
        ns, name,
        Json{{"metadata",
              {{"finalizers", finalizers}, {"resourceVersion", md.value("resourceVersion", "")}}}});
    if (!r.ok()) return r.WithContext("adding the finalizer");
    return Status::Ok();  // the update comes back through the watch
  }

  const std::string upgrade_key = UpgradeKey(spec);
  const std::string desired = StrOr(spec, "state", "running");
  const std::string mode = StrOr(spec, "upgradeMode", "stateless");
  if (o.debug) {
    Log("reconcile " + key + ": generation " + std::to_string(generation) + ", desired " + desired +
        ", deployed " + (rec.dep ? rec.dep->job_id() : std::string("-")) + ", pending op " +
        std::to_string(static_cast<int>(rec.op)));
  }
  Json status = old_status;
  status["selector"] = std::string(kJobLabel) + "=" + name;
  status.erase("error");
  std::string lifecycle = StrOr(old_status, "lifecycleState", "CREATED");
  Json conditions = Json::array();

  // ---- validate
  const std::string spec_text = EffectiveJob(spec).dump();
  JobSpecOptions jo;
  jo.base_dir = "/";
  Status shape = ValidatePodTemplate(spec);
  auto compiled =
      shape.ok() ? CompileJobSpec(spec_text, "spec.job", jo) : Result<CompiledJob>(shape);
  if (!compiled.ok()) {
    std::string msg = "invalid FlinkJob: " + compiled.status().message();
    if (rec.invalid_event_for != upgrade_key) {
      Event(fj, "Warning", "InvalidSpec",
            msg + (rec.dep ? " (the running job is left as it is)" : ""));
      rec.invalid_event_for = upgrade_key;
    }
    status["error"] = msg;
    status["observedGeneration"] = generation;  // seen, and refused
    if (!rec.dep) status["lifecycleState"] = "FAILED";
    conditions.push_back(Condition("Ready", rec.dep != nullptr, "InvalidSpec", msg, generation));
    status["conditions"] = conditions;
    if (rec.dep) {
      std::optional<JobInfo> info;
      status["jobStatus"] = JobStatusJson(status, rec, &info);
      requeue = o.status_interval_ms;
    }
    return WriteStatus(fj, rec, status);
  }
  rec.invalid_event_for.clear();

  // ---- a pending stop-with-savepoint (upgrade, suspend)
  if (rec.op == PendingOp::kUpgrade || rec.op == PendingOp::kSuspend) {
    auto [done, path, failure] = PollSavepoint(rec);
    if (!done) {
      requeue = 500;
      return Status::Ok();
    }
    const char* what = rec.op == PendingOp::kUpgrade ? "upgrade" : "suspend";
    if (!failure.empty()) {
      std::string msg = std::string("the ") + what + "'s savepoint failed: " + failure +
                        "; the job keeps running with the previous spec";
      Event(fj, "Warning", "SavepointFailed", msg);
      rec.op = PendingOp::kNone;
      rec.last_error = msg;  // shown until the next deployment
      rec.retry_after_ms = SteadyMillis() + 10000;
      // Try again only when the spec changes again.
      if (desired == "running") rec.failed_upgrade_key = upgrade_key;
    } else {
      Event(fj, "Normal", "SavepointCompleted",
            std::string("savepoint for the ") + what + ": " + path);
      RecordSavepoint(rec, path, what, 0);
      rec.restore_from = path;
      const bool suspending = rec.op == PendingOp::kSuspend;
      rec.op = PendingOp::kNone;
      Teardown(rec);
      rec.dep.reset();
      if (suspending) {
        Event(fj, "Normal", "Suspended",
              "job suspended (upgradeMode " + mode + "); resumes from " + path);
      }
    }
  }

  // ---- suspended (a manual savepoint in flight finishes first)
  if (desired == "suspended" && rec.op == PendingOp::kSavepoint) {
    EDDY_RETURN_NOT_OK(SettleManualSavepoint(fj, rec));
    if (rec.op == PendingOp::kSavepoint) {
      requeue = 500;
      return Status::Ok();
    }
  }
  if (desired == "suspended") {
    if (rec.dep) {
      auto info = rec.dep->Info();
      if (mode == "savepoint" && info && info->state == JobState::kRunning) {
        if (SteadyMillis() < rec.retry_after_ms) {  // the last attempt failed: wait a little
          status["error"] = rec.last_error;
          requeue = rec.retry_after_ms - SteadyMillis();
          return WriteStatus(fj, rec, status);
        }
        EDDY_RETURN_NOT_OK(StopWithSavepoint(rec, PendingOp::kSuspend, "suspend"));
        status["jobStatus"] = JobStatusJson(status, rec, nullptr);
        status["lifecycleState"] = "UPGRADING";
        status["conditions"] = Json::array(
            {Condition("Ready", false, "Suspending", "taking a savepoint to suspend", generation)});
        requeue = 500;
        return WriteStatus(fj, rec, status);
      }
      Teardown(rec);
      // Chosen after the job ended: no checkpoint completes later. Should the store not answer,
      // the next reconcile resumes from the status like a successor would.
      auto newest =
          mode == "stateless" ? Result<std::string>(std::string()) : NewestSnapshotOf(info);
      if (!newest.ok()) return LookupFailed(fj, rec, status, newest.status(), generation, requeue);
      if (info || mode == "stateless") {
        rec.restore_from = *newest;
      } else {
        rec.restore_from.reset();  // the job vanished: resume from what the status records
      }
      Event(fj, "Normal", "Suspended",
            "job suspended (upgradeMode " + mode + ")" +
                (!rec.restore_from || rec.restore_from->empty()
                     ? std::string()
                     : "; resumes from " + *rec.restore_from));
    }
    status["lifecycleState"] = "SUSPENDED";
    status["taskManagers"] = 0;
    Json js = JobStatusJson(status, rec, nullptr);
    js["state"] = "SUSPENDED";
    status["jobStatus"] = js;
    status["observedGeneration"] = generation;
    if (!status["reconciliationStatus"].is_object())
      status["reconciliationStatus"] = Json::object();
    status["reconciliationStatus"]["state"] = "DEPLOYED";
    status["reconciliationStatus"]["lastReconciledSpec"] = spec.dump();
    status["conditions"] = Json::array(
        {Condition("Ready", true, "Suspended", "the job is suspended as requested", generation)});
    return WriteStatus(fj, rec, status);
  }

  // ---- running: upgrade when the spec changed
  if (rec.dep && rec.dep_key != upgrade_key && rec.failed_upgrade_key != upgrade_key &&
      rec.op == PendingOp::kNone) {
    auto info = rec.dep->Info();
    if (rec.spec_changed_event_for != upgrade_key) {  // once per spec, not per retry
      Event(fj, "Normal", "SpecChanged", "upgrading the job (upgradeMode " + mode + ")");
      rec.spec_changed_event_for = upgrade_key;
    }
    if (mode == "savepoint" && info && info->state == JobState::kRunning) {
      EDDY_RETURN_NOT_OK(StopWithSavepoint(rec, PendingOp::kUpgrade, "upgrade"));
      status["jobStatus"] = JobStatusJson(status, rec, nullptr);
      status["lifecycleState"] = "UPGRADING";
      status["reconciliationStatus"]["state"] = "UPGRADING";
      status["conditions"] = Json::array(
          {Condition("Ready", false, "Upgrading", "taking a savepoint to upgrade", generation)});
      requeue = 500;
      return WriteStatus(fj, rec, status);
    }
    Teardown(rec);
    auto newest = mode == "stateless" ? Result<std::string>(std::string()) : NewestSnapshotOf(info);
    if (!newest.ok()) return LookupFailed(fj, rec, status, newest.status(), generation, requeue);
    if (info || mode == "stateless") {
      rec.restore_from = *newest;
    } else {
      rec.restore_from.reset();  // the job vanished: resume from what the status records
    }
  }

  // ---- running: deploy
  if (!rec.dep && rec.op == PendingOp::kNone) {
    if (rec.deploy_failed_key == upgrade_key) return Status::Ok();  // status already says why
    if (rec.finished && rec.finished_key == upgrade_key) {
      status["jobStatus"] = rec.terminal_job_status;
      return WriteStatus(fj, rec, status);
    }
    std::string restore;
    std::string why;
    if (rec.restore_from) {
      restore = *rec.restore_from;
      why = restore.empty() ? "" : "the snapshot taken for the upgrade or suspend";
    } else {
      // First deployment by this operator. A job deployed before (by an operator that restarted
      // or lost the leadership, or suspended by it) continues from its newest snapshot, whichever
      // completed last of: the checkpoints in the recorded job's checkpoint directory (written
      // to the status before the job started, so also those the status does not list yet), the
      // recorded checkpoint and its directory, the snapshot the job started from, the job's
      // savepoints in its savepoint directory (an upgrade or suspend savepoint whose completion
      // the previous operator could not record) and the last recorded savepoint. Stateless
      // FlinkJobs start empty; a new FlinkJob starts from initialSavepointPath.
      const Json js = old_status.value("jobStatus", Json::object());
      std::string prev_state = StrOr(js, "state");
      bool terminal =
          prev_state == "FINISHED" || prev_state == "CANCELED" || prev_state == "FAILED";
      // A job that ended under the previous operator with this very spec stays ended (a
      // bounded job must not run twice); a changed spec deploys again.
      const Json last = Json::parse(
          StrOr(old_status.value("reconciliationStatus", Json::object()), "lastReconciledSpec"),
          nullptr, false);
      if (terminal && !StrOr(js, "jobId").empty() && last.is_object() &&
          UpgradeKey(last) == upgrade_key) {
        rec.finished = true;
        rec.finished_key = upgrade_key;
        rec.terminal_job_status = js;
        status["jobStatus"] = js;
        return WriteStatus(fj, rec, status);
      }
      // A FAILED job whose spec changed resumes from its newest snapshot too (the fix of
      // what made it fail); FINISHED and CANCELED ones start over.
      bool resumable = !StrOr(js, "jobId").empty() && (!terminal || prev_state == "FAILED");
      if (resumable && mode != "stateless") {
        const std::string chk = StrOr(js.value("lastCheckpoint", Json::object()), "path");
        const std::string restored = StrOr(js, "restoredFrom");
        const bool legacy = !js.contains("checkpointDir");  // written by an older operator
        const std::string last_sp = legacy ? LastSavepointPath(rec.savepoint_info) : "";
        auto newest = [&]() -> Result<std::string> {
          EDDY_ASSIGN_OR_RETURN(std::string in_dir, LatestCheckpoint(StrOr(js, "checkpointDir")));
          EDDY_ASSIGN_OR_RETURN(std::string beside, LatestCheckpoint(ParentDir(chk)));
          EDDY_ASSIGN_OR_RETURN(std::string sp,
                                LatestSavepointOf(StrOr(js, "savepointDir"), StrOr(js, "jobId")));
          return NewestSnapshot({in_dir, beside, chk, restored, sp, last_sp});
        }();
        if (!newest.ok())
          return LookupFailed(fj, rec, status, newest.status(), generation, requeue);
        restore = *newest;
        why = prev_state == "SUSPENDED" ? "resuming"
              : prev_state == "FAILED"  ? "the failed job's newest snapshot"
                                        : "taking over from the previous operator";
        const std::string initial = StrOr(spec, "initialSavepointPath");
        if (restore.empty() && (!chk.empty() || !restored.empty() || !last_sp.empty())) {
          // Snapshots were recorded but none reads back: starting empty would lose the state. A
          // different initialSavepointPath is the user's way to say where to start instead.
          const std::string recorded = chk.empty() ? restored : chk;
          if (!initial.empty() && initial != restored) {
            restore = initial;
            why =
                "initialSavepointPath; the recorded snapshots (" + recorded + ") do not read back";
          } else {
            std::string msg = "none of the recorded snapshots (" + recorded +
                              ", …) can be read: not starting the job with empty state; set "
                              "spec.initialSavepointPath to a snapshot to start from it";
            status["error"] = msg;
            status["conditions"] =
                Json::array({Condition("Ready", false, "DeploymentFailed", msg, generation)});
            requeue = 10000;
            return WriteStatus(fj, rec, status);
          }
        }
      } else if (StrOr(js, "jobId").empty()) {
        restore = StrOr(spec, "initialSavepointPath");
        if (!restore.empty()) why = "initialSavepointPath";
      } else if (prev_state == "RECONCILING") {
        // A stateless deployment the previous operator started (or was starting): what it chose.
        restore = StrOr(js, "restoredFrom");
        if (!restore.empty()) why = "the interrupted deployment's snapshot";
      }
    }
    DeleteStalePods(ns, name);
    EDDY_RETURN_NOT_OK(
        api.EnsureService(ns, TaskManagerService(fj)).WithContext("creating the headless Service"));
    // The job id, its directories and the snapshot it starts from reach the status before the
    // job runs: a successor operator that finds this status (and not the one written after the
    // deployment) must still see every snapshot the job will complete.
    DeployRequest req;
    req.key = key;
    req.flinkjob = &fj;
    req.spec_text = spec_text;
    req.restore_from = restore;
    req.job_id = NewFlinkJobId();
    const Json js_before = status.value("jobStatus", Json::object());
    {
      auto [checkpoint_dir, savepoint_dir] = JobSnapshotDirs(spec_text, req.job_id);
      Json js = status.value("jobStatus", Json::object());
      // Nothing of the previous job stays: a successor must not take its checkpoint for this
      // job's (restoredFrom says where this one starts).
      for (const char* k : {"lastCheckpoint", "startTime", "restarts", "jobName"}) js.erase(k);
      js["jobId"] = req.job_id;
      js["state"] = "RECONCILING";
      js["checkpointDir"] = checkpoint_dir;
      js["savepointDir"] = savepoint_dir;
      if (restore.empty()) {
        js.erase("restoredFrom");
      } else {
        js["restoredFrom"] = restore;
      }
      js["savepointInfo"] = rec.savepoint_info;
      js["checkpointInfo"] = rec.checkpoint_info;
      js["updateTime"] = Rfc3339(EpochMillis());
      status["jobStatus"] = js;
      EDDY_RETURN_NOT_OK(
          WriteStatus(fj, rec, status).WithContext("recording the job before deploying it"));
    }
    auto d = deployer.Deploy(req);
    if (!d.ok()) {
      std::string msg = "cannot deploy the job: " + d.status().message();
      Event(fj, "Warning", "DeploymentFailed", msg);
      status["error"] = msg;
      status["lifecycleState"] = "FAILED";
      status["conditions"] =
          Json::array({Condition("Ready", false, "DeploymentFailed", msg, generation)});
      // The job never ran: the status goes back to naming the previous one (a FlinkJob whose
      // first deployment failed still takes a corrected initialSavepointPath).
      status["jobStatus"] = js_before;
      status["jobStatus"]["savepointInfo"] = rec.savepoint_info;
      status["jobStatus"]["checkpointInfo"] = rec.checkpoint_info;
      (void)WriteStatus(fj, rec, status);
      if (d.status().IsRetryable()) {
        requeue = 10000;  // the store or the API server may be back soon
      } else {
        rec.deploy_failed_key = upgrade_key;  // fatal (a bad snapshot path): wait for a new spec
      }
      return Status::Ok();
    }
    rec.dep = std::move(*d);
    rec.dep_key = upgrade_key;
    rec.deploy_failed_key.clear();
    rec.last_error.clear();
    rec.failed_upgrade_key.clear();
    rec.restore_from.reset();
    rec.finished = false;
    Event(fj, "Normal", "JobDeployed",
          "job " + rec.dep->job_id() + " deployed with " + std::to_string(Replicas(spec)) +
              " worker pod(s)" + (restore.empty() ? "" : ", from " + restore + " (" + why + ")"));
    status["lifecycleState"] = "DEPLOYED";
    if (!status["reconciliationStatus"].is_object())
      status["reconciliationStatus"] = Json::object();
    status["reconciliationStatus"]["state"] = "DEPLOYED";
    status["reconciliationStatus"]["lastReconciledSpec"] = spec.dump();
  }

  if (rec.op == PendingOp::kUpgrade || rec.op == PendingOp::kSuspend) {
    requeue = 500;
    return WriteStatus(fj, rec, status);
  }

  // ---- savepoint nonce
  int64_t nonce = IntOr(spec, "savepointTriggerNonce", 0);
  int64_t handled = IntOr(rec.savepoint_info, "triggerNonce", 0);
  if (rec.op == PendingOp::kSavepoint) {
    EDDY_RETURN_NOT_OK(SettleManualSavepoint(fj, rec));
  } else if (spec.contains("savepointTriggerNonce") && nonce != handled && rec.dep) {
    auto info = rec.dep->Info();
    if (info && info->state == JobState::kRunning) {
      auto t = rec.dep->TriggerSavepoint(/*stop=*/false);
      if (t.ok()) {
        rec.op = PendingOp::kSavepoint;
        rec.trigger_id = *t;
        rec.op_nonce = nonce;
        rec.op_started_ms = EpochMillis();
        rec.savepoint_info["triggerId"] = *t;
        rec.savepoint_info["triggerTime"] = Rfc3339(EpochMillis());
        Event(fj, "Normal", "SavepointTriggered",
              "savepoint " + *t + " for nonce " + std::to_string(nonce));
      } else {
        rec.savepoint_info["triggerNonce"] = nonce;
        Event(fj, "Warning", "SavepointFailed", t.status().message());
      }
    }
  }

  // ---- checkpoint nonce
  int64_t cnonce = IntOr(spec, "checkpointTriggerNonce", 0);
  if (spec.contains("checkpointTriggerNonce") && rec.dep &&
      cnonce != IntOr(rec.checkpoint_info, "triggerNonce", 0)) {
    auto info = rec.dep->Info();
    if (info && info->state == JobState::kRunning) {
      auto t = rec.dep->TriggerCheckpoint();
      rec.checkpoint_info = {{"triggerNonce", cnonce}, {"triggerTime", Rfc3339(EpochMillis())}};
      if (t.ok()) {
        Event(fj, "Normal", "CheckpointTriggered",
              "checkpoint " + std::to_string(*t) + " for nonce " + std::to_string(cnonce));
      } else {
        Event(fj, "Warning", "CheckpointFailed", t.status().message());
      }
    }
  }

  // ---- observe
  std::optional<JobInfo> info;
  status["jobStatus"] = JobStatusJson(status, rec, &info);
  status["taskManagers"] = rec.dep ? rec.dep->RunningPods() : 0;
  // After a failed upgrade the job still runs the previous spec: the status says so rather
  // than describing the new one.
  const bool applied = !rec.dep || rec.dep_key == upgrade_key;
  if (!status.contains("reconciliationStatus") || !status["reconciliationStatus"].is_object())
    status["reconciliationStatus"] = Json::object();
  status["reconciliationStatus"]["state"] = "DEPLOYED";
  if (applied) {
    status["parallelism"] = IntOr(spec, "parallelism", 1);
    status["observedGeneration"] = generation;
    status["reconciliationStatus"]["lastReconciledSpec"] = spec.dump();
  }
  if (info && !applied && !IsTerminal(info->state)) {
    conditions.push_back(Condition(
        "Ready", false, "UpgradeFailed",
        rec.last_error.empty() ? "the upgrade did not happen" : rec.last_error, generation));
  } else if (info) {
    switch (info->state) {
      case JobState::kRunning:
        status["lifecycleState"] = "STABLE";
        status["reconciliationStatus"]["lastStableSpec"] = spec.dump();
        conditions.push_back(
            Condition("Ready", true, "JobRunning", "the job is running", generation));
        break;
      case JobState::kFailed:
        status["lifecycleState"] = "FAILED";
        status["error"] = "the job failed: " + info->failure;
        conditions.push_back(Condition("Ready", false, "JobFailed", info->failure, generation));
        break;
      case JobState::kFinished:
      case JobState::kCanceled:
        status["lifecycleState"] = "STABLE";
        conditions.push_back(Condition("Ready", true, "JobFinished",
                                       "the job " + std::string(JobStateName(info->state)),
                                       generation));
        break;
      default:
        status["lifecycleState"] = "DEPLOYED";
        conditions.push_back(Condition("Ready", false, "JobStarting",
                                       "the job is " + std::string(JobStateName(info->state)) +
                                           (info->failure.empty() ? "" : ": " + info->failure),
                                       generation));
    }
    if (IsTerminal(info->state)) {
      Event(fj, info->state == JobState::kFailed ? "Warning" : "Normal",
            "Job" + std::string(JobStateName(info->state)),
            "job " + info->id + " " + std::string(JobStateName(info->state)) +
                (info->state != JobState::kFailed || info->failure.empty() ? ""
                                                                           : ": " + info->failure));
      rec.finished = true;
      rec.finished_key = rec.dep_key;  // the spec that ran, not necessarily the current
      rec.terminal_job_status = status["jobStatus"];
      Teardown(rec);
      rec.dep.reset();
      status["taskManagers"] = 0;
    }
  }
  status["conditions"] = conditions;
  if (!rec.last_error.empty() && !status.contains("error")) status["error"] = rec.last_error;
  if (rec.dep || rec.op != PendingOp::kNone)
    requeue = rec.op != PendingOp::kNone ? 500 : o.status_interval_ms;
  return WriteStatus(fj, rec, status);
}

FlinkJobReconciler::FlinkJobReconciler(FlinkJobApi& api, JobDeployer& deployer,
                                       FlinkJobReconcilerOptions options)
    : impl_(std::make_unique<Impl>(api, deployer, std::move(options))) {}

FlinkJobReconciler::~FlinkJobReconciler() = default;

Status FlinkJobReconciler::Reconcile(const std::string& key, const std::optional<Json>& flinkjob,
                                     int64_t& requeue) {
  requeue = -1;
  try {
    return impl_->Reconcile(key, flinkjob, requeue);
  } catch (const std::exception& e) {
    // Malformed parts of a FlinkJob the API server does not validate (podTemplate) must not take
    // down the JobMasters of every other FlinkJob.
    requeue = 10000;
    return Status::InvalidArgument(std::string("unexpected shape in the FlinkJob: ") + e.what());
  }
}

void FlinkJobReconciler::Shutdown(bool stop_jobs) {
  for (auto& [key, rec] : impl_->records) {
    if (stop_jobs) {
      impl_->Teardown(rec);
    } else {
      // Left for the next leader: the pods lose this JobMaster and end; the successor restarts
      // the job from its newest snapshot. The process is about to exit.
      (void)rec.dep.release();  // NOLINT: leaked on purpose
    }
  }
  impl_->records.clear();
}

JobDeployment* FlinkJobReconciler::Deployed(const std::string& key) const {
  auto it = impl_->records.find(key);
  return it == impl_->records.end() ? nullptr : it->second.dep.get();
}

}  // namespace eddy::control
