#include "eddy/control/flinkjob_operator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "eddy/clock.h"
#include "eddy/control/control_metrics.h"
#include "eddy/control/control_plane.h"
#include "eddy/control/kubernetes_launcher.h"
#include "eddy/k8s/informer.h"
#include "eddy/spec/job_spec.h"
#include "eddy/storage/object_store.h"

namespace eddy::control {

namespace {

using k8s::Json;

constexpr const char* kGroupVersion = "eddy.dev/v1alpha1";
constexpr const char* kFinalizer = "eddy.dev/finalizer";
constexpr const char* kJobLabel = "eddy.dev/job";
constexpr const char* kRunLabel = "eddy.dev/run";
constexpr int kDataPort = 6121;
constexpr int kMetricsPort = 9249;
constexpr size_t kSavepointHistory = 20;

std::string FlinkJobPath(const std::string& ns, const std::string& name = "") {
  std::string p = std::string("/apis/") + kGroupVersion + "/namespaces/" + ns + "/flinkjobs";
  return name.empty() ? p : p + "/" + name;
}

std::string RandomSuffix(size_t n) {
  static const char* kChars = "bcdfghjklmnpqrstvwxz2456789";
  thread_local std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(EpochMillis()));
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kChars[rng() % 27];
  return s;
}

/// Flink's JobStatus names (the CRD's jobStatus.state enum) are the control plane's.
std::string FlinkJobStateName(JobState s) {
  return std::string(JobStateName(s));
}

int64_t IntOr(const Json& o, const char* key, int64_t dflt) {
  return o.is_object() && o.contains(key) && o[key].is_number_integer() ? o[key].get<int64_t>()
                                                                        : dflt;
}

std::string StrOr(const Json& o, const char* key, const std::string& dflt = "") {
  return o.is_object() && o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : dflt;
}

/// spec.job with the FlinkJob-level overrides applied (they win, as `eddy run`'s flags do).
Json EffectiveJob(const Json& spec) {
  Json job = spec.contains("job") && spec["job"].is_object() ? spec["job"] : Json::object();
  for (const char* k :
       {"parallelism", "maxParallelism", "stateBackend", "savepointDir", "restartStrategy"}) {
    if (spec.contains(k) && !spec[k].is_null()) job[k] = spec[k];
  }
  if (spec.contains("checkpointing") && spec["checkpointing"].is_object()) {
    if (!job.contains("checkpointing") || !job["checkpointing"].is_object())
      job["checkpointing"] = Json::object();
    for (const auto& [k, v] : spec["checkpointing"].items()) job["checkpointing"][k] = v;
  }
  return job;
}

/// What an upgrade is about: the spec without the fields that do not redeploy.
std::string UpgradeKey(const Json& spec) {
  Json s = spec;
  for (const char* k : {"state", "savepointTriggerNonce", "checkpointTriggerNonce"}) s.erase(k);
  return s.dump();
}

int Slots(const Json& spec) {
  return static_cast<int>(IntOr(spec.value("taskManager", Json::object()), "slots", 1));
}

int Replicas(const Json& spec) {
  const Json tm = spec.value("taskManager", Json::object());
  int64_t r = IntOr(tm, "replicas", 0);
  if (r > 0) return static_cast<int>(r);
  int64_t p = IntOr(spec, "parallelism", 1);
  int slots = std::max(1, Slots(spec));
  return static_cast<int>((p + slots - 1) / slots);
}

/// The newest checkpoint under a job's checkpoint directory whose `_metadata` reads back.
std::string LatestCheckpoint(const std::string& job_dir) {
  if (job_dir.empty()) return {};
  auto store = storage::OpenObjectStore(job_dir);
  if (!store.ok()) return {};
  auto list = (*store)->List("chk-");
  if (!list.ok()) return {};
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
    if (CheckpointCoordinator::LocateSnapshot(path, nullptr).ok()) return path;
  }
  return {};
}

/// "s3://b/ck/JOB" for "s3://b/ck/JOB/chk-7/" (a trailing slash is not a level).
std::string ParentDir(std::string path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

/// The most recently completed of the given snapshots (checkpoint or savepoint directories, ""
/// ignored), by the completion time in their `_metadata`; unreadable ones are skipped. Restoring
/// anything older than the newest completed snapshot would replay output that an exactly-once
/// sink already committed when that snapshot completed.
std::string NewestSnapshot(const std::vector<std::string>& paths) {
  std::string best;
  int64_t best_time = INT64_MIN;
  for (const auto& p : paths) {
    if (p.empty()) continue;
    std::shared_ptr<proto::CheckpointMetadata> md;
    if (!CheckpointCoordinator::LocateSnapshot(p, &md).ok() || !md) continue;
    if (md->completion_timestamp() > best_time) {
      best_time = md->completion_timestamp();
      best = p;
    }
  }
  return best;
}

/// `spec.taskManager.podTemplate` is not validated by the API server (preserve-unknown-fields):
/// the parts the operator merges into must have the right JSON types.
Status ValidatePodTemplate(const Json& spec) {
  if (!spec.contains("taskManager") || !spec["taskManager"].is_object()) return Status::Ok();
  const Json& tm = spec["taskManager"];
  if (!tm.contains("podTemplate")) return Status::Ok();
  const std::string at = "spec.taskManager.podTemplate";
  const Json& t = tm["podTemplate"];
  if (!t.is_object()) return Status::InvalidArgument(at + " must be an object (a PodTemplateSpec)");
  if (t.contains("metadata")) {
    const Json& md = t["metadata"];
    if (!md.is_object()) return Status::InvalidArgument(at + ".metadata must be an object");
    for (const char* k : {"labels", "annotations"}) {
      if (!md.contains(k)) continue;
      if (!md[k].is_object())
        return Status::InvalidArgument(at + ".metadata." + k + " must be a map");
      for (const auto& [name, v] : md[k].items()) {
        if (!v.is_string()) {
          return Status::InvalidArgument(at + ".metadata." + k + "." + name + " must be a string");
        }
      }
    }
  }
  if (!t.contains("spec")) return Status::Ok();
  const Json& ps = t["spec"];
  if (!ps.is_object()) return Status::InvalidArgument(at + ".spec must be an object (a PodSpec)");
  if (!ps.contains("containers")) return Status::Ok();
  if (!ps["containers"].is_array()) {
    return Status::InvalidArgument(at + ".spec.containers must be a list");
  }
  for (size_t i = 0; i < ps["containers"].size(); ++i) {
    const Json& c = ps["containers"][i];
    std::string ci = at + ".spec.containers[" + std::to_string(i) + "]";
    if (!c.is_object()) return Status::InvalidArgument(ci + " must be an object (a Container)");
    if (c.contains("args") && !c["args"].is_array()) {
      return Status::InvalidArgument(ci + ".args must be a list of strings");
    }
    if (c.contains("env") && !c["env"].is_array()) {
      return Status::InvalidArgument(ci + ".env must be a list");
    }
  }
  return Status::Ok();
}

/// A running JobMaster of one FlinkJob and its worker pods.
struct Deployment {
  std::string run_id;
  std::string upgrade_key;
  Json spec;
  std::shared_ptr<KubernetesLauncher> launcher;
  std::shared_ptr<ControlPlane> cp;  // shared with REST requests in flight
  std::string job_id;
  int64_t deployed_ms = 0;
};

/// What the operator is waiting for on a FlinkJob.
enum class PendingOp : uint8_t { kNone, kSavepoint, kUpgrade, kSuspend, kDelete };

struct Record {
  std::unique_ptr<Deployment> dep;
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

std::string LastSavepointPath(const Record& rec) {
  const Json& info = rec.savepoint_info;
  if (!info.is_object() || !info.contains("lastSavepoint")) return {};
  return StrOr(info["lastSavepoint"], "path");
}

}  // namespace

std::string Rfc3339(int64_t epoch_ms) {
  std::time_t t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct FlinkJobOperator::Impl {
  std::shared_ptr<k8s::KubeClient> client;
  FlinkJobOperatorOptions o;
  std::vector<std::unique_ptr<k8s::Informer>> informers;

  std::mutex mu;  // the queue
  std::condition_variable cv;
  std::map<std::string, int64_t> due;  // key → steady ms
  bool stopping = false;
  std::thread worker;

  std::map<std::string, Record> records;  // worker thread only

  /// The JobMasters for the REST API: FlinkJob key → (job id, control plane).
  mutable std::mutex rest_mu;
  std::map<std::string, std::pair<std::string, std::shared_ptr<ControlPlane>>> running;

  void Publish(const std::string& key, const Deployment* d) {
    std::lock_guard<std::mutex> lock(rest_mu);
    if (d && d->cp) {
      running[key] = {d->job_id, d->cp};
    } else {
      running.erase(key);
    }
  }

  void Log(const std::string& m) const {
    if (o.log) o.log(m);
  }

  void Enqueue(const std::string& key, int64_t delay_ms = 0) {
    {
      std::lock_guard<std::mutex> lock(mu);
      int64_t t = SteadyMillis() + delay_ms;
      auto it = due.find(key);
      if (it == due.end() || it->second > t) due[key] = t;
    }
    cv.notify_all();
  }

  std::optional<Json> Lookup(const std::string& key) const {
    for (const auto& inf : informers) {
      if (auto j = inf->Get(key)) return j;
    }
    return std::nullopt;
  }

  void Run() {
    while (true) {
      std::string key;
      {
        std::unique_lock<std::mutex> lock(mu);
        while (!stopping) {
          int64_t now = SteadyMillis();
          auto next = std::min_element(due.begin(), due.end(), [](const auto& a, const auto& b) {
            return a.second < b.second;
          });
          if (next != due.end() && next->second <= now) {
            key = next->first;
            due.erase(next);
            break;
          }
          if (next == due.end()) {
            cv.wait(lock);
          } else {
            cv.wait_for(lock, std::chrono::milliseconds(next->second - now));
          }
        }
        if (stopping) return;
      }
      auto t0 = std::chrono::steady_clock::now();
      int64_t requeue = -1;
      Status s;
      try {
        s = Reconcile(key, requeue);
      } catch (const std::exception& e) {
        // Malformed parts of a FlinkJob the API server does not validate (podTemplate) must
        // not take down the JobMasters of every other FlinkJob.
        s = Status::InvalidArgument(std::string("unexpected shape in the FlinkJob: ") + e.what());
        requeue = 10000;
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o.on_reconcile) o.on_reconcile(secs, s.ok());
      if (!s.ok()) {
        Log("reconciling FlinkJob " + key + " failed: " + s.ToString());
        // Rate-limited retry: the API server or the store may be back soon.
        requeue = requeue < 0 ? 2000 : std::min<int64_t>(requeue, 2000);
      }
      if (requeue >= 0) Enqueue(key, requeue);
    }
  }

  // ------------------------------------------------------------------ Kubernetes writes
  void Event(const Json& fj, const std::string& type, const std::string& reason,
             const std::string& message) {
    const Json& md = fj["metadata"];
    std::string ns = md.value("namespace", "default");
    std::string now = Rfc3339(EpochMillis());
    Json ev = {{"apiVersion", "v1"},
               {"kind", "Event"},
               {"metadata", {{"generateName", md.value("name", "") + "."}, {"namespace", ns}}},
               {"involvedObject",
                {{"apiVersion", kGroupVersion},
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
               {"reportingInstance", o.advertise_address},
               {"firstTimestamp", now},
               {"lastTimestamp", now},
               {"count", 1}};
    auto r = client->Create("/api/v1/namespaces/" + ns + "/events", ev);
    if (!r.ok()) Log("cannot record Event " + reason + ": " + r.status().message());
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
    const Json& md = fj["metadata"];
    // A merge patch keeps what it does not mention: fields dropped since the last write (a
    // cleared error) are sent as null.
    Json patch = status;
    if (rec.last_written.is_object()) {
      for (const auto& [k, v] : rec.last_written.items()) {
        if (!status.contains(k)) patch[k] = nullptr;
      }
    }
    auto r = client->MergePatch(
        FlinkJobPath(md.value("namespace", ""), md.value("name", "")) + "/status",
        Json{{"status", patch}});
    if (!r.ok()) return r.status().WithContext("writing the status");
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

  // ------------------------------------------------------------------ worker pods
  Json OwnerReference(const Json& fj) {
    return Json::array({{{"apiVersion", kGroupVersion},
                         {"kind", "FlinkJob"},
                         {"name", fj["metadata"].value("name", "")},
                         {"uid", fj["metadata"].value("uid", "")},
                         {"controller", true},
                         {"blockOwnerDeletion", true}}});
  }

  /// The worker pod without name and worker arguments (KubernetesLauncher adds those).
  Json WorkerPod(const Json& fj, const std::string& run_id) {
    const Json& spec = fj["spec"];
    const std::string name = fj["metadata"].value("name", "");
    const Json tm = spec.value("taskManager", Json::object());
    Json pod = tm.contains("podTemplate") && tm["podTemplate"].is_object() ? tm["podTemplate"]
                                                                           : Json::object();
    if (!pod.contains("metadata") || !pod["metadata"].is_object()) pod["metadata"] = Json::object();
    if (!pod.contains("spec") || !pod["spec"].is_object()) pod["spec"] = Json::object();
    Json& md = pod["metadata"];
    md.erase("name");
    md.erase("generateName");
    md["labels"]["app.kubernetes.io/name"] = "eddy-worker";
    md["labels"]["app.kubernetes.io/instance"] = name;
    md["labels"]["app.kubernetes.io/component"] = "taskmanager";
    md["labels"]["app.kubernetes.io/managed-by"] = "eddy-operator";
    md["labels"][kJobLabel] = name;
    md["labels"][kRunLabel] = run_id;
    md["annotations"]["prometheus.io/scrape"] = "true";
    md["annotations"]["prometheus.io/port"] = std::to_string(kMetricsPort);
    md["annotations"]["prometheus.io/path"] = "/metrics";
    md["ownerReferences"] = OwnerReference(fj);
    Json& ps = pod["spec"];
    ps["restartPolicy"] = "Never";
    ps["subdomain"] = name + "-taskmanager";
    if (spec.contains("serviceAccount")) {
      ps["serviceAccountName"] = spec["serviceAccount"];
    } else if (!o.worker_service_account.empty()) {
      ps["serviceAccountName"] = o.worker_service_account;
    }
    if (!ps.contains("containers") || !ps["containers"].is_array())
      ps["containers"] = Json::array();
    Json* c = nullptr;
    for (auto& x : ps["containers"]) {
      if (x.value("name", "") == "eddy-worker") c = &x;
    }
    if (!c) {
      ps["containers"].push_back({{"name", "eddy-worker"}});
      c = &ps["containers"].back();
    }
    (*c)["image"] = StrOr(spec, "image", o.worker_image);
    if (spec.contains("imagePullPolicy")) (*c)["imagePullPolicy"] = spec["imagePullPolicy"];
    Json args = Json::array({"--bind", "$(POD_IP)", "--advertise", "$(POD_IP)", "--data-port",
                             std::to_string(kDataPort), "--metrics-bind", "$(POD_IP)",
                             "--metrics-port", std::to_string(kMetricsPort)});
    if (c->contains("args")) {
      for (const auto& a : (*c)["args"]) args.push_back(a);
    }
    (*c)["args"] = std::move(args);
    Json env = Json::array(
        {{{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
         {{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
         {{"name", "POD_NAMESPACE"},
          {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}}});
    const Json s3 = spec.value("s3", Json::object());
    if (s3.contains("endpoint"))
      env.push_back({{"name", "AWS_ENDPOINT_URL_S3"}, {"value", s3["endpoint"]}});
    if (s3.contains("region")) env.push_back({{"name", "AWS_REGION"}, {"value", s3["region"]}});
    if (s3.contains("credentialsSecret") && s3["credentialsSecret"].is_object()) {
      const Json& cs = s3["credentialsSecret"];
      std::string secret = StrOr(cs, "name");
      auto ref = [&](const char* var, const std::string& key, bool optional) {
        env.push_back(
            {{"name", var},
             {"valueFrom",
              {{"secretKeyRef", {{"name", secret}, {"key", key}, {"optional", optional}}}}}});
      };
      ref("AWS_ACCESS_KEY_ID", StrOr(cs, "accessKeyIdKey", "AWS_ACCESS_KEY_ID"), false);
      ref("AWS_SECRET_ACCESS_KEY", StrOr(cs, "secretAccessKeyKey", "AWS_SECRET_ACCESS_KEY"), false);
      if (cs.contains("sessionTokenKey"))
        ref("AWS_SESSION_TOKEN", StrOr(cs, "sessionTokenKey"), true);
    }
    if (c->contains("env")) {
      for (const auto& e : (*c)["env"]) env.push_back(e);
    }
    (*c)["env"] = std::move(env);
    (*c)["ports"] = Json::array({{{"name", "data"}, {"containerPort", kDataPort}},
                                 {{"name", "metrics"}, {"containerPort", kMetricsPort}}});
    const Json res = tm.value("resources", Json::object());
    Json q = Json::object();
    for (const char* k : {"cpu", "memory"}) {
      if (!res.contains(k)) continue;
      q[k] = res[k].is_string() ? res[k] : Json(res[k].dump());
    }
    if (!q.empty()) (*c)["resources"] = {{"requests", q}, {"limits", q}};
    return pod;
  }

  Status EnsureService(const Json& fj) {
    const std::string name = fj["metadata"].value("name", "");
    const std::string ns = fj["metadata"].value("namespace", "");
    Json svc = {{"apiVersion", "v1"},
                {"kind", "Service"},
                {"metadata",
                 {{"name", name + "-taskmanager"},
                  {"namespace", ns},
                  {"labels",
                   {{"app.kubernetes.io/name", "eddy-worker"},
                    {"app.kubernetes.io/instance", name},
                    {"app.kubernetes.io/managed-by", "eddy-operator"},
                    {kJobLabel, name}}},
                  {"ownerReferences", OwnerReference(fj)}}},
                {"spec",
                 {{"clusterIP", "None"},
                  {"publishNotReadyAddresses", true},
                  {"selector", {{kJobLabel, name}}},
                  {"ports", Json::array({{{"name", "data"}, {"port", kDataPort}},
                                         {{"name", "metrics"}, {"port", kMetricsPort}}})}}}};
    auto r = client->Create("/api/v1/namespaces/" + ns + "/services", svc);
    if (r.ok() || r.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
    return r.status().WithContext("creating the headless Service");
  }

  /// Deletes worker pods of earlier JobMasters of this FlinkJob (a previous operator's).
  void DeleteStalePods(const std::string& ns, const std::string& name) {
    std::string sel = std::string(kJobLabel) + "=" + name;
    auto r = client->Request(
        "DELETE", "/api/v1/namespaces/" + ns + "/pods?labelSelector=" + k8s::QueryEscape(sel));
    if (!r.ok() || !r->ok()) {
      Log("cannot delete stale pods of " + ns + "/" + name + ": " +
          (r.ok() ? r->message() : r.status().message()));
    }
  }

  // ------------------------------------------------------------------ deploy / tear down
  Result<std::unique_ptr<Deployment>> Deploy(const Json& fj, const std::string& spec_text,
                                             const std::string& restore_from) {
    const Json& spec = fj["spec"];
    const std::string name = fj["metadata"].value("name", "");
    const std::string ns = fj["metadata"].value("namespace", "");
    EDDY_RETURN_NOT_OK(EnsureService(fj));
    auto d = std::make_unique<Deployment>();
    d->run_id = RandomSuffix(5);
    d->spec = spec;
    d->upgrade_key = UpgradeKey(spec);
    KubernetesLauncherOptions lo;
    lo.ns = ns;
    lo.pod_prefix = name.substr(0, 40) + "-tm-" + d->run_id;
    lo.selector = {{kJobLabel, name}, {kRunLabel, d->run_id}};
    lo.pod_template = WorkerPod(fj, d->run_id);
    lo.log = [this, key = ns + "/" + name](const std::string& m) { Log(key + ": " + m); };
    d->launcher = std::make_shared<KubernetesLauncher>(client, std::move(lo));
    ControlPlaneOptions co;
    co.rpc_bind_host = o.rpc_bind_host;
    co.rpc_port = 0;
    co.advertised_host = o.advertise_address;
    co.workers = Replicas(spec);
    co.slots_per_worker = std::max(1, Slots(spec));
    co.launcher = d->launcher;
    co.heartbeat_timeout_ms = o.heartbeat_timeout_ms;
    EDDY_ASSIGN_OR_RETURN(std::unique_ptr<ControlPlane> cp, ControlPlane::Start(std::move(co)));
    d->cp = std::move(cp);
    JobSubmission sub;
    sub.spec_text = spec_text;
    sub.spec_file = "FlinkJob " + ns + "/" + name + " spec.job";
    sub.base_dir = "/";
    sub.from_savepoint = restore_from;
    sub.allow_non_restored_state = spec.value("allowNonRestoredState", false);
    auto id = d->cp->Submit(std::move(sub));
    if (!id.ok()) {
      d->cp.reset();
      return id.status();
    }
    d->job_id = *id;
    d->deployed_ms = EpochMillis();
    return d;
  }

  /// Cancels the job (when still running) and removes its JobMaster and pods. The control plane
  /// is destroyed here, on the reconcile thread, after REST and metrics let go of it.
  void Teardown(Deployment& d) {
    std::shared_ptr<ControlPlane> registered;
    {
      std::lock_guard<std::mutex> lock(rest_mu);
      for (auto it = running.begin(); it != running.end();) {
        if (it->second.first == d.job_id) {
          registered = std::move(it->second.second);
          it = running.erase(it);
        } else {
          ++it;
        }
      }
    }
    registered.reset();
    if (!d.cp) return;
    auto info = d.cp->Job(d.job_id);
    if (info && !IsTerminal(info->state)) {
      (void)d.cp->Cancel(d.job_id);
      d.cp->WaitForJob(d.job_id, 10000);
    }
    // A REST request or scrape may still hold a reference for a moment.
    for (int i = 0; i < 500 && d.cp.use_count() > 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    d.cp.reset();  // shuts the workers down and deletes their pods
  }

  /// Starts Flink's stop-with-savepoint of the deployed job for `op` (an upgrade or suspend);
  /// the reconciles that follow poll it.
  Status StopWithSavepoint(Record& rec, PendingOp op, const char* what) {
    auto t = rec.dep->cp->TriggerSavepoint(rec.dep->job_id, "", /*stop=*/true, false);
    if (!t.ok()) return t.status().WithContext(std::string(what) + " with a savepoint");
    rec.op = op;
    rec.trigger_id = *t;
    rec.op_started_ms = EpochMillis();
    return Status::Ok();
  }

  /// Where a job stopped without a savepoint (last-state; savepoint mode while not RUNNING)
  /// resumes: the newest of its checkpoints, the snapshot it started from (an upgrade before
  /// its first checkpoint must not fall back to something older) and the FlinkJob's last
  /// savepoint.
  static std::string NewestSnapshotOf(const Record& rec, const std::optional<JobInfo>& info) {
    std::string latest = info && info->checkpoints.latest_completed
                             ? info->checkpoints.latest_completed->path
                             : std::string();
    std::string restored = info && info->checkpoints.latest_restored
                               ? info->checkpoints.latest_restored->path
                               : std::string();
    return NewestSnapshot({LatestCheckpoint(info ? info->checkpoint_dir : ""), latest, restored,
                           LastSavepointPath(rec)});
  }

  /// Polls a pending manual (nonce) savepoint; once it ended, records it (or the failure, which
  /// stays in status.error until the next deployment) and clears the pending operation.
  Status SettleManualSavepoint(const Json& fj, Record& rec) {
    bool done = false;
    std::string path, failure;
    EDDY_RETURN_NOT_OK(PollSavepoint(fj, rec, done, path, failure));
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
  Status Reconcile(const std::string& key, int64_t& requeue);
  Status ReconcileDeletion(const Json& fj, Record& rec, int64_t& requeue);
  Json JobStatusJson(const Json& fj, Record& rec, std::optional<JobInfo>* info_out);
  Status PollSavepoint(const Json& fj, Record& rec, bool& done, std::string& path,
                       std::string& failure);
  void RecordSavepoint(Record& rec, const std::string& path, const std::string& type,
                       int64_t nonce);
};

Status FlinkJobOperator::Impl::PollSavepoint(const Json& fj, Record& rec, bool& done,
                                             std::string& path, std::string& failure) {
  (void)fj;
  done = false;
  if (!rec.dep || !rec.dep->cp) {
    done = true;
    failure = "the job is gone";
    return Status::Ok();
  }
  auto st = rec.dep->cp->SavepointState(rec.dep->job_id, rec.trigger_id);
  if (!st.ok()) {
    done = true;
    failure = st.status().message();
    return Status::Ok();
  }
  if (st->state == SavepointStatus::State::kCompleted) {
    done = true;
    path = st->location;
  } else if (st->state == SavepointStatus::State::kFailed) {
    done = true;
    failure = st->failure;
  } else if (EpochMillis() - rec.op_started_ms > o.savepoint_timeout_ms) {
    done = true;
    failure =
        "the savepoint did not complete within " + std::to_string(o.savepoint_timeout_ms) + " ms";
  }
  return Status::Ok();
}

void FlinkJobOperator::Impl::RecordSavepoint(Record& rec, const std::string& path,
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

Json FlinkJobOperator::Impl::JobStatusJson(const Json& fj, Record& rec,
                                           std::optional<JobInfo>* info_out) {
  Json js = fj.contains("status") && fj["status"].contains("jobStatus") ? fj["status"]["jobStatus"]
                                                                        : Json::object();
  if (rec.dep && rec.dep->cp) {
    auto info = rec.dep->cp->Job(rec.dep->job_id);
    if (info) {
      js["jobId"] = info->id;
      js["jobName"] = info->name;
      js["state"] = FlinkJobStateName(info->state);
      js["startTime"] = Rfc3339(info->start_time_ms);
      js["restarts"] = info->restarts;
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

Status FlinkJobOperator::Impl::ReconcileDeletion(const Json& fj, Record& rec, int64_t& requeue) {
  const Json& md = fj["metadata"];
  bool has_finalizer = false;
  Json rest = Json::array();
  for (const auto& f : md.value("finalizers", Json::array())) {
    if (f == kFinalizer) {
      has_finalizer = true;
    } else {
      rest.push_back(f);
    }
  }
  if (!has_finalizer) {
    if (rec.dep) Teardown(*rec.dep);
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
  auto info = rec.dep && rec.dep->cp ? rec.dep->cp->Job(rec.dep->job_id) : std::nullopt;
  if (want_savepoint && info && info->state == JobState::kRunning && rec.op != PendingOp::kDelete &&
      !info->checkpoint_config.savepoint_dir.empty()) {
    auto t = rec.dep->cp->TriggerSavepoint(rec.dep->job_id, "", /*stop=*/true, false);
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
    bool done = false;
    std::string path, failure;
    EDDY_RETURN_NOT_OK(PollSavepoint(fj, rec, done, path, failure));
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
  if (rec.dep) Teardown(*rec.dep);
  rec.dep.reset();
  DeleteStalePods(md.value("namespace", ""), md.value("name", ""));
  Json patch = {{"metadata",
                 {{"finalizers", rest.empty() ? Json(nullptr) : rest},
                  {"resourceVersion", md.value("resourceVersion", "")}}}};
  auto r = client->MergePatch(FlinkJobPath(md.value("namespace", ""), md.value("name", "")), patch);
  if (!r.ok() && r.status().code() != StatusCode::kNotFound) return r.status();
  return Status::Ok();
}

Status FlinkJobOperator::Impl::Reconcile(const std::string& key, int64_t& requeue) {
  Record& rec = records[key];
  std::optional<Json> found = Lookup(key);
  if (o.debug) Log("reconcile " + key + (found ? "" : ": gone"));
  if (!found) {
    if (rec.dep) {
      Log("FlinkJob " + key + " is gone: stopping its job");
      Teardown(*rec.dep);
    }
    records.erase(key);
    return Status::Ok();
  }
  const Json& fj = *found;
  const Json& md = fj["metadata"];
  const std::string ns = md.value("namespace", "");
  const std::string name = md.value("name", "");
  const int64_t generation = IntOr(md, "generation", 0);
  const Json& spec = fj.contains("spec") ? fj["spec"] : Json::object();
  const Json old_status = fj.contains("status") ? fj["status"] : Json::object();
  if (rec.last_written.is_null() && !old_status.empty()) {
    rec.last_written = old_status;
    if (old_status.contains("jobStatus") && old_status["jobStatus"].contains("savepointInfo"))
      rec.savepoint_info = old_status["jobStatus"]["savepointInfo"];
    if (old_status.contains("jobStatus") && old_status["jobStatus"].contains("checkpointInfo"))
      rec.checkpoint_info = old_status["jobStatus"]["checkpointInfo"];
  }

  if (md.contains("deletionTimestamp")) return ReconcileDeletion(fj, rec, requeue);

  // The finalizer first: from here on a deletion waits for us.
  Json finalizers = md.value("finalizers", Json::array());
  if (std::find(finalizers.begin(), finalizers.end(), kFinalizer) == finalizers.end()) {
    finalizers.push_back(kFinalizer);
    auto r = client->MergePatch(
        FlinkJobPath(ns, name),
        Json{{"metadata",
              {{"finalizers", finalizers}, {"resourceVersion", md.value("resourceVersion", "")}}}});
    if (!r.ok()) return r.status().WithContext("adding the finalizer");
    return Status::Ok();  // the update comes back through the watch
  }

  const std::string upgrade_key = UpgradeKey(spec);
  const std::string desired = StrOr(spec, "state", "running");
  const std::string mode = StrOr(spec, "upgradeMode", "stateless");
  if (o.debug) {
    Log("reconcile " + key + ": generation " + std::to_string(generation) + ", desired " + desired +
        ", deployed " + (rec.dep ? rec.dep->job_id : std::string("-")) + ", pending op " +
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
      status["jobStatus"] = JobStatusJson(fj, rec, &info);
      requeue = o.status_interval_ms;
    }
    return WriteStatus(fj, rec, status);
  }
  rec.invalid_event_for.clear();

  // ---- a pending stop-with-savepoint (upgrade, suspend)
  if (rec.op == PendingOp::kUpgrade || rec.op == PendingOp::kSuspend) {
    bool done = false;
    std::string path, failure;
    EDDY_RETURN_NOT_OK(PollSavepoint(fj, rec, done, path, failure));
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
      Teardown(*rec.dep);
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
      auto info = rec.dep->cp->Job(rec.dep->job_id);
      if (mode == "savepoint" && info && info->state == JobState::kRunning) {
        if (SteadyMillis() < rec.retry_after_ms) {  // the last attempt failed: wait a little
          status["error"] = rec.last_error;
          requeue = rec.retry_after_ms - SteadyMillis();
          return WriteStatus(fj, rec, status);
        }
        EDDY_RETURN_NOT_OK(StopWithSavepoint(rec, PendingOp::kSuspend, "suspend"));
        status["lifecycleState"] = "UPGRADING";
        status["conditions"] = Json::array(
            {Condition("Ready", false, "Suspending", "taking a savepoint to suspend", generation)});
        requeue = 500;
        return WriteStatus(fj, rec, status);
      }
      Teardown(*rec.dep);
      rec.restore_from = mode == "stateless" ? std::string() : NewestSnapshotOf(rec, info);
      rec.dep.reset();
      Event(
          fj, "Normal", "Suspended",
          "job suspended (upgradeMode " + mode + ")" +
              (rec.restore_from->empty() ? std::string() : "; resumes from " + *rec.restore_from));
    }
    status["lifecycleState"] = "SUSPENDED";
    status["taskManagers"] = 0;
    Json js = JobStatusJson(fj, rec, nullptr);
    js["state"] = "SUSPENDED";
    status["jobStatus"] = js;
    status["observedGeneration"] = generation;
    status["reconciliationStatus"] = {{"state", "DEPLOYED"}, {"lastReconciledSpec", spec.dump()}};
    status["conditions"] = Json::array(
        {Condition("Ready", true, "Suspended", "the job is suspended as requested", generation)});
    return WriteStatus(fj, rec, status);
  }

  // ---- running: upgrade when the spec changed
  if (rec.dep && rec.dep->upgrade_key != upgrade_key && rec.failed_upgrade_key != upgrade_key &&
      rec.op == PendingOp::kNone) {
    auto info = rec.dep->cp->Job(rec.dep->job_id);
    if (rec.spec_changed_event_for != upgrade_key) {  // once per spec, not per retry
      Event(fj, "Normal", "SpecChanged", "upgrading the job (upgradeMode " + mode + ")");
      rec.spec_changed_event_for = upgrade_key;
    }
    if (mode == "savepoint" && info && info->state == JobState::kRunning) {
      EDDY_RETURN_NOT_OK(StopWithSavepoint(rec, PendingOp::kUpgrade, "upgrade"));
      status["lifecycleState"] = "UPGRADING";
      status["reconciliationStatus"]["state"] = "UPGRADING";
      status["conditions"] = Json::array(
          {Condition("Ready", false, "Upgrading", "taking a savepoint to upgrade", generation)});
      requeue = 500;
      return WriteStatus(fj, rec, status);
    }
    Teardown(*rec.dep);
    rec.dep.reset();
    rec.restore_from = mode == "stateless" ? std::string() : NewestSnapshotOf(rec, info);
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
      // or lost the leadership, or suspended by it) continues from its newest snapshot: the
      // newest checkpoint in the recorded job's checkpoint directory or the last savepoint,
      // whichever completed last. Stateless FlinkJobs start empty; a new FlinkJob starts from
      // initialSavepointPath.
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
        std::string chk = StrOr(js.value("lastCheckpoint", Json::object()), "path");
        restore = NewestSnapshot({LatestCheckpoint(ParentDir(chk)), chk, LastSavepointPath(rec)});
        why = prev_state == "SUSPENDED" ? "resuming"
              : prev_state == "FAILED"  ? "the failed job's newest snapshot"
                                        : "taking over from the previous operator";
      } else if (StrOr(js, "jobId").empty()) {
        restore = StrOr(spec, "initialSavepointPath");
        if (!restore.empty()) why = "initialSavepointPath";
      }
    }
    DeleteStalePods(ns, name);
    auto d = Deploy(fj, spec_text, restore);
    if (!d.ok()) {
      std::string msg = "cannot deploy the job: " + d.status().message();
      Event(fj, "Warning", "DeploymentFailed", msg);
      status["error"] = msg;
      status["lifecycleState"] = "FAILED";
      status["conditions"] =
          Json::array({Condition("Ready", false, "DeploymentFailed", msg, generation)});
      (void)WriteStatus(fj, rec, status);
      if (d.status().IsRetryable()) {
        requeue = 10000;  // the store or the API server may be back soon
      } else {
        rec.deploy_failed_key = upgrade_key;  // fatal (a bad snapshot path): wait for a new spec
      }
      return Status::Ok();
    }
    rec.dep = std::move(*d);
    rec.deploy_failed_key.clear();
    rec.last_error.clear();
    rec.failed_upgrade_key.clear();
    Publish(key, rec.dep.get());
    rec.restore_from.reset();
    rec.finished = false;
    Event(fj, "Normal", "JobDeployed",
          "job " + rec.dep->job_id + " deployed with " + std::to_string(Replicas(spec)) +
              " worker pod(s)" + (restore.empty() ? "" : ", from " + restore + " (" + why + ")"));
    status["lifecycleState"] = "DEPLOYED";
    status["reconciliationStatus"] = {{"state", "DEPLOYED"}, {"lastReconciledSpec", spec.dump()}};
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
    auto info = rec.dep->cp->Job(rec.dep->job_id);
    if (info && info->state == JobState::kRunning) {
      auto t = rec.dep->cp->TriggerSavepoint(rec.dep->job_id, "", false, false);
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
    auto info = rec.dep->cp->Job(rec.dep->job_id);
    if (info && info->state == JobState::kRunning) {
      auto t = rec.dep->cp->TriggerCheckpoint(rec.dep->job_id);
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
  status["jobStatus"] = JobStatusJson(fj, rec, &info);
  status["taskManagers"] = rec.dep ? rec.dep->launcher->RunningPods() : 0;
  // After a failed upgrade the job still runs the previous spec: the status says so rather
  // than describing the new one.
  const bool applied = !rec.dep || rec.dep->upgrade_key == upgrade_key;
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
                                       "the job " + FlinkJobStateName(info->state), generation));
        break;
      default:
        status["lifecycleState"] = "DEPLOYED";
        conditions.push_back(Condition("Ready", false, "JobStarting",
                                       "the job is " + FlinkJobStateName(info->state) +
                                           (info->failure.empty() ? "" : ": " + info->failure),
                                       generation));
    }
    if (IsTerminal(info->state)) {
      Event(fj, info->state == JobState::kFailed ? "Warning" : "Normal",
            "Job" + FlinkJobStateName(info->state),
            "job " + info->id + " " + FlinkJobStateName(info->state) +
                (info->state != JobState::kFailed || info->failure.empty() ? ""
                                                                           : ": " + info->failure));
      rec.finished = true;
      rec.finished_key = rec.dep->upgrade_key;  // the spec that ran, not necessarily the current
      rec.terminal_job_status = status["jobStatus"];
      Teardown(*rec.dep);
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

Result<std::unique_ptr<FlinkJobOperator>> FlinkJobOperator::Start(
    std::shared_ptr<k8s::KubeClient> client, FlinkJobOperatorOptions options) {
  std::unique_ptr<FlinkJobOperator> op(new FlinkJobOperator());
  op->impl_ = std::make_unique<Impl>();
  Impl& impl = *op->impl_;
  impl.client = std::move(client);
  impl.o = std::move(options);
  std::vector<std::string> paths;
  if (impl.o.namespaces.empty()) {
    paths.push_back(std::string("/apis/") + kGroupVersion + "/flinkjobs");
  } else {
    for (const auto& ns : impl.o.namespaces) paths.push_back(FlinkJobPath(ns));
  }
  for (const auto& p : paths) {
    k8s::Informer::Options io;
    io.path = p;
    io.on_event = [&impl](const std::string& type, const Json& obj) {
      if (impl.o.debug) impl.Log("event " + type + " " + k8s::Informer::KeyOf(obj));
      impl.Enqueue(k8s::Informer::KeyOf(obj));
    };
    io.on_error = [&impl, p](const Status& s) { impl.Log("watching " + p + ": " + s.message()); };
    impl.informers.push_back(std::make_unique<k8s::Informer>(impl.client, std::move(io)));
  }
  for (auto& inf : impl.informers) inf->Start();
  impl.worker = std::thread([&impl] { impl.Run(); });
  return op;
}

FlinkJobOperator::~FlinkJobOperator() {
  Stop(false);
}

void FlinkJobOperator::Stop(bool stop_jobs) {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
  for (auto& inf : impl_->informers) inf->Stop();
  for (auto& [key, rec] : impl_->records) {
    if (!rec.dep) continue;
    if (stop_jobs) {
      impl_->Teardown(*rec.dep);
    } else if (rec.dep->cp) {
      // Leave the pods for the next leader: they lose this JobMaster and end; the new one
      // restarts the job from its newest checkpoint.
      new std::shared_ptr<ControlPlane>(std::move(rec.dep->cp));  // NOLINT: leaked on purpose
    }
  }
  impl_->records.clear();
  std::lock_guard<std::mutex> lock(impl_->rest_mu);
  impl_->running.clear();
}

std::vector<prometheus::MetricFamily> FlinkJobOperator::CollectJobMetrics() {
  std::map<std::string, std::pair<std::string, std::shared_ptr<ControlPlane>>> running;
  {
    std::lock_guard<std::mutex> lock(impl_->rest_mu);
    running = impl_->running;
  }
  std::vector<prometheus::MetricFamily> out;
  std::map<std::string, size_t> index;
  for (const auto& [key, v] : running) {
    size_t slash = key.find('/');
    prometheus::ClientMetric::Label ns{"namespace", key.substr(0, slash)};
    prometheus::ClientMetric::Label fj{"flinkjob", key.substr(slash + 1)};
    for (auto& family : CollectControlPlaneMetrics(*v.second)) {
      for (auto& m : family.metric) {
        m.label.push_back(ns);
        m.label.push_back(fj);
      }
      auto it = index.find(family.name);
      if (it == index.end()) {
        index[family.name] = out.size();
        out.push_back(std::move(family));
      } else {
        auto& into = out[it->second].metric;
        into.insert(into.end(), family.metric.begin(), family.metric.end());
      }
    }
  }
  return out;
}

RestResponse FlinkJobOperator::HandleRest(const RestRequest& request) {
  RestRequest r = request;
  if (!r.path.empty() && r.path[0] == "v1") r.path.erase(r.path.begin());
  std::map<std::string, std::pair<std::string, std::shared_ptr<ControlPlane>>> running;
  {
    std::lock_guard<std::mutex> lock(impl_->rest_mu);
    running = impl_->running;
  }
  auto reply = [](int status, const Json& body) { return RestResponse{status, body.dump()}; };
  auto error = [&](int status, const std::string& m) {
    return reply(status, Json{{"errors", Json::array({m})}});
  };
  if (r.method != "GET" && (r.path.size() < 2 || r.path[0] != "jobs")) {
    return error(405, "only GET here; jobs are submitted as FlinkJob resources");
  }
  if (r.path.size() == 1 && r.path[0] == "flinkjobs") {
    Json out = Json::array();
    for (const auto& [key, v] : running) {
      size_t slash = key.find('/');
      out.push_back({{"namespace", key.substr(0, slash)},
                     {"name", key.substr(slash + 1)},
                     {"jobId", v.first}});
    }
    return reply(200, Json{{"flinkjobs", out}});
  }
  if ((r.path.size() == 1 && r.path[0] == "jobs") ||
      (r.path.size() == 2 && r.path[0] == "jobs" && r.path[1] == "overview")) {
    Json jobs = Json::array();
    for (const auto& [key, v] : running) {
      RestResponse one = HandleRestRequest(*v.second, r);
      Json j = Json::parse(one.body, nullptr, false);
      if (j.is_object() && j.contains("jobs") && j["jobs"].is_array()) {
        for (auto& x : j["jobs"]) jobs.push_back(std::move(x));
      }
    }
    return reply(200, Json{{"jobs", jobs}});
  }
  if (r.path.size() == 1 && r.path[0] == "overview") {
    Json sum = Json::object();
    for (const auto& [key, v] : running) {
      Json j = Json::parse(HandleRestRequest(*v.second, r).body, nullptr, false);
      if (!j.is_object()) continue;
      for (const auto& [k, x] : j.items()) {
        if (x.is_number_integer()) {
          sum[k] = sum.value(k, 0) + x.get<int64_t>();
        } else if (!sum.contains(k)) {
          sum[k] = x;
        }
      }
    }
    if (sum.empty()) sum = {{"taskmanagers", 0}, {"jobs-running", 0}};
    return reply(200, sum);
  }
  if (r.path.size() >= 2 && r.path[0] == "jobs") {
    for (const auto& [key, v] : running) {
      if (v.first == r.path[1]) return HandleRestRequest(*v.second, r);
    }
    return error(404, "no job " + r.path[1] + " runs in this operator (GET /flinkjobs lists them)");
  }
  std::string path;
  for (const auto& seg : r.path) path += "/" + seg;
  return error(404, "Not found: " + (path.empty() ? std::string("/") : path) +
                        " (the operator serves /overview, /jobs, /jobs/overview, /jobs/:jobid/…, "
                        "/flinkjobs)");
}

bool FlinkJobOperator::Ready() const {
  for (const auto& inf : impl_->informers) {
    if (!inf->Synced()) return false;
  }
  return true;
}

std::map<std::string, int> FlinkJobOperator::JobsByLifecycle() const {
  std::map<std::string, int> out;
  for (const auto& inf : impl_->informers) {
    for (const auto& fj : inf->List()) {
      out[fj.contains("status") ? StrOr(fj["status"], "lifecycleState", "CREATED") : "CREATED"]++;
    }
  }
  return out;
}

}  // namespace eddy::control
