#include "eddy/control/flinkjob_operator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "eddy/clock.h"
#include "eddy/control/control_metrics.h"
#include "eddy/control/control_plane.h"
#include "eddy/control/kubernetes_launcher.h"
#include "eddy/k8s/informer.h"
#include "operator/src/flinkjob_reconciler.h"
#include "operator/src/flinkjob_resources.h"

namespace eddy::control {

namespace {

using k8s::Json;

/// The JobMasters for the REST API and metrics: FlinkJob key → (job id, control plane). It also
/// destroys stopped control planes on a thread of its own: waiting for REST requests and scrapes
/// to let go, then stopping the workers and deleting their pods takes up to ~35 s, which the
/// reconcile thread (and every other FlinkJob) should not wait for.
class JobRegistry {
 public:
  ~JobRegistry() { Drain(); }

  mutable std::mutex mu;  // jobs
  std::map<std::string, std::pair<std::string, std::shared_ptr<ControlPlane>>> jobs;

  /// Any thread. Destroyed at once when draining.
  void Dispose(std::shared_ptr<ControlPlane> cp) {
    {
      std::lock_guard<std::mutex> lock(reap_mu_);
      if (!draining_) {
        if (!reaper_.joinable()) reaper_ = std::thread([this] { Reap(); });
        reap_.push_back(std::move(cp));
        reap_cv_.notify_all();
        return;
      }
    }
    Destroy(std::move(cp));
  }
  /// Destroys what was disposed of and ends the thread. Any thread but the reaper's.
  void Drain() {
    {
      std::lock_guard<std::mutex> lock(reap_mu_);
      draining_ = true;
    }
    reap_cv_.notify_all();
    if (reaper_.joinable()) reaper_.join();
  }

  /// Waits (≤ 5 s) until nobody else holds `cp`, then destroys it. Any thread.
  static void Destroy(std::shared_ptr<ControlPlane> cp) {
    // A REST request or scrape may still hold a reference for a moment.
    for (int i = 0; i < 500 && cp.use_count() > 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    cp.reset();  // shuts the workers down and deletes their pods
  }

 private:
  void Reap() {
    std::unique_lock<std::mutex> lock(reap_mu_);
    while (true) {
      reap_cv_.wait(lock, [this] { return draining_ || !reap_.empty(); });
      if (reap_.empty()) return;
      std::shared_ptr<ControlPlane> cp = std::move(reap_.front());
      reap_.pop_front();
      lock.unlock();
      Destroy(std::move(cp));
      lock.lock();
    }
  }
  std::mutex reap_mu_;
  std::condition_variable reap_cv_;
  std::deque<std::shared_ptr<ControlPlane>> reap_;
  bool draining_ = false;
  std::thread reaper_;
};

/// The reconciler's Kubernetes writes through the KubeClient. Remembers the resourceVersion its
/// own status writes produced, so that their watch events do not cause another reconcile.
class KubeFlinkJobApi final : public FlinkJobApi {
 public:
  KubeFlinkJobApi(std::shared_ptr<k8s::KubeClient> client,
                  std::function<void(const std::string& key, const std::string& rv)> on_write)
      : client_(std::move(client)), on_write_(std::move(on_write)) {}

  Status PatchStatus(const Json& flinkjob, const Json& status_patch) override {
    const Json& md = flinkjob["metadata"];
    auto r = client_->MergePatch(
        FlinkJobPath(md.value("namespace", ""), md.value("name", "")) + "/status",
        Json{{"status", status_patch}});
    if (!r.ok()) return r.status();
    // The event of this write needs no reconcile only if nothing but the status changed since the
    // object that was reconciled (a spec edit the watch has not delivered yet would be skipped).
    const Json& now = r->contains("metadata") ? (*r)["metadata"] : Json::object();
    auto same = [&](const char* k) { return md.value(k, Json()) == now.value(k, Json()); };
    if (on_write_ && same("generation") && same("deletionTimestamp") && same("annotations") &&
        same("finalizers") && same("labels")) {
      on_write_(md.value("namespace", "") + "/" + md.value("name", ""),
                now.value("resourceVersion", ""));
    }
    return Status::Ok();
  }
  Status PatchFlinkJob(const std::string& ns, const std::string& name, const Json& patch) override {
    auto r = client_->MergePatch(FlinkJobPath(ns, name), patch);
    return r.ok() ? Status::Ok() : r.status();
  }
  Status CreateEvent(const std::string& ns, const Json& event) override {
    auto r = client_->Create("/api/v1/namespaces/" + ns + "/events", event);
    return r.ok() ? Status::Ok() : r.status();
  }
  Status EnsureService(const std::string& ns, const Json& service) override {
    auto r = client_->Create("/api/v1/namespaces/" + ns + "/services", service);
    if (r.ok() || r.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
    return r.status();
  }
  Status DeletePods(const std::string& ns, const std::string& label_selector) override {
    auto r = client_->Request("DELETE", "/api/v1/namespaces/" + ns + "/pods?labelSelector=" +
                                            k8s::QueryEscape(label_selector));
    if (!r.ok()) return r.status();
    if (!r->ok()) return k8s::ResponseStatus(*r, "DELETE pods " + label_selector);
    return Status::Ok();
  }

 private:
  std::shared_ptr<k8s::KubeClient> client_;
  std::function<void(const std::string&, const std::string&)> on_write_;
};

/// A JobMaster (ControlPlane) in this process with its KubernetesLauncher's worker pods.
class ControlPlaneDeployment final : public JobDeployment {
 public:
  ControlPlaneDeployment(std::string key, JobRegistry& registry,
                         std::shared_ptr<KubernetesLauncher> launcher)
      : key_(std::move(key)), registry_(registry), launcher_(std::move(launcher)) {}
  ~ControlPlaneDeployment() override { Stop(); }

  /// Submits the job; registers it for REST and metrics once it runs.
  Status Start(ControlPlaneOptions co, JobSubmission sub) {
    EDDY_ASSIGN_OR_RETURN(std::unique_ptr<ControlPlane> cp, ControlPlane::Start(std::move(co)));
    cp_ = std::move(cp);
    auto id = cp_->Submit(std::move(sub));
    if (!id.ok()) {
      cp_.reset();
      return id.status();
    }
    job_id_ = *id;
    std::lock_guard<std::mutex> lock(registry_.mu);
    registry_.jobs[key_] = {job_id_, cp_};
    return Status::Ok();
  }

  const std::string& job_id() const override { return job_id_; }
  std::optional<JobInfo> Info() override { return cp_ ? cp_->Job(job_id_) : std::nullopt; }
  Result<std::string> TriggerSavepoint(bool stop) override {
    if (!cp_) return Status::Unavailable("the job is stopped");
    return cp_->TriggerSavepoint(job_id_, "", stop, false);
  }
  Result<SavepointStatus> SavepointState(const std::string& trigger_id) override {
    if (!cp_) return Status::Unavailable("the job is stopped");
    return cp_->SavepointState(job_id_, trigger_id);
  }
  Result<int64_t> TriggerCheckpoint() override {
    if (!cp_) return Status::Unavailable("the job is stopped");
    return cp_->TriggerCheckpoint(job_id_);
  }
  int RunningPods() const override { return launcher_ ? launcher_->RunningPods() : 0; }

  /// Retires the launcher (no pod is replaced any more), cancels the job and waits (≤ 10 s) until
  /// it is terminal — the reconciler picks the snapshot to restore next right after, so no
  /// checkpoint may complete later. The rest (REST and metrics let go, workers stop, pods are
  /// deleted) is left to the registry's reaper, unless the job did not end: then the control
  /// plane is destroyed here, which ends every task before the reconciler goes on.
  void Stop() override {
    std::shared_ptr<ControlPlane> registered;
    {
      std::lock_guard<std::mutex> lock(registry_.mu);
      auto it = registry_.jobs.find(key_);
      if (it != registry_.jobs.end() && it->second.first == job_id_) {
        registered = std::move(it->second.second);
        registry_.jobs.erase(it);
      }
    }
    registered.reset();
    if (!cp_) return;
    if (launcher_) launcher_->Retire();  // no pod is replaced from here on
    auto info = cp_->Job(job_id_);
    bool ended = !info || IsTerminal(info->state);
    if (!ended) {
      (void)cp_->Cancel(job_id_);
      auto after = cp_->WaitForJob(job_id_, 10000);
      ended = !after || IsTerminal(after->state);
    }
    if (ended) {
      registry_.Dispose(std::move(cp_));
    } else {
      JobRegistry::Destroy(std::move(cp_));
    }
  }

 private:
  std::string key_;
  JobRegistry& registry_;
  std::shared_ptr<KubernetesLauncher> launcher_;
  std::shared_ptr<ControlPlane> cp_;  // shared with REST requests in flight
  std::string job_id_;
};

std::string RunId() {
  static const char* kChars = "bcdfghjklmnpqrstvwxz2456789";
  std::string id = NewFlinkJobId();  // random hex
  std::string s;
  for (size_t i = 0; i < 5; ++i) s += kChars[std::stoul(id.substr(i * 2, 2), nullptr, 16) % 27];
  return s;
}

/// Deploys a FlinkJob as a ControlPlane in this process whose ResourceManager launches worker
/// pods through a KubernetesLauncher.
class ControlPlaneDeployer final : public JobDeployer {
 public:
  ControlPlaneDeployer(std::shared_ptr<k8s::KubeClient> client,
                       const FlinkJobOperatorOptions& options, JobRegistry& registry)
      : client_(std::move(client)), o_(options), registry_(registry) {}

  Result<std::unique_ptr<JobDeployment>> Deploy(const DeployRequest& req) override {
    const Json& fj = *req.flinkjob;
    const Json& spec = fj["spec"];
    const std::string name = fj["metadata"].value("name", "");
    const std::string ns = fj["metadata"].value("namespace", "");
    const std::string run_id = RunId();
    KubernetesLauncherOptions lo;
    lo.ns = ns;
    lo.pod_prefix = name.substr(0, 40) + "-tm-" + run_id;
    lo.selector = {{kJobLabel, name}, {kRunLabel, run_id}};
    lo.pod_template = WorkerPodTemplate(fj, run_id, {o_.worker_image, o_.worker_service_account});
    lo.log = [log = o_.log, key = req.key](const std::string& m) {
      if (log) log(key + ": " + m);
    };
    auto launcher = std::make_shared<KubernetesLauncher>(client_, std::move(lo));
    ControlPlaneOptions co;
    co.rpc_bind_host = o_.rpc_bind_host;
    co.rpc_port = 0;
    co.advertised_host = o_.advertise_address;
    co.workers = Replicas(spec);
    co.slots_per_worker = std::max(1, Slots(spec));
    co.launcher = launcher;
    co.heartbeat_timeout_ms = o_.heartbeat_timeout_ms;
    JobSubmission sub;
    sub.spec_text = req.spec_text;
    sub.spec_file = "FlinkJob " + req.key + " spec.job";
    sub.base_dir = "/";
    sub.from_savepoint = req.restore_from;
    sub.allow_non_restored_state = spec.value("allowNonRestoredState", false);
    sub.job_id = req.job_id;
    auto d = std::make_unique<ControlPlaneDeployment>(req.key, registry_, std::move(launcher));
    EDDY_RETURN_NOT_OK(d->Start(std::move(co), std::move(sub)));
    return std::unique_ptr<JobDeployment>(std::move(d));
  }

 private:
  std::shared_ptr<k8s::KubeClient> client_;
  const FlinkJobOperatorOptions& o_;
  JobRegistry& registry_;
};

}  // namespace

struct FlinkJobOperator::Impl {
  std::shared_ptr<k8s::KubeClient> client;
  FlinkJobOperatorOptions o;
  std::vector<std::unique_ptr<k8s::Informer>> informers;
  JobRegistry registry;
  std::unique_ptr<KubeFlinkJobApi> api;
  std::unique_ptr<ControlPlaneDeployer> deployer;
  std::unique_ptr<FlinkJobReconciler> reconciler;  // the reconcile thread only

  std::mutex mu;  // the queue and own_writes
  std::condition_variable cv;
  std::map<std::string, int64_t> due;  // key → steady ms
  /// The resourceVersion of each FlinkJob's last status write by this operator: the watch event
  /// it causes is not a reason to reconcile again.
  std::map<std::string, std::string> own_writes;
  bool stopping = false;
  std::thread worker;

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

  void OnEvent(const std::string& type, const Json& obj) {
    std::string key = k8s::Informer::KeyOf(obj);
    if (type == "MODIFIED" && obj.contains("metadata")) {
      std::lock_guard<std::mutex> lock(mu);
      auto it = own_writes.find(key);
      if (it != own_writes.end() && it->second == obj["metadata"].value("resourceVersion", "")) {
        own_writes.erase(it);
        if (o.debug) Log("event " + type + " " + key + ": our own status write");
        return;
      }
    }
    if (o.debug) Log("event " + type + " " + key);
    Enqueue(key);
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
      Status s = reconciler->Reconcile(key, Lookup(key), requeue);
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
};

Result<std::unique_ptr<FlinkJobOperator>> FlinkJobOperator::Start(
    std::shared_ptr<k8s::KubeClient> client, FlinkJobOperatorOptions options) {
  std::unique_ptr<FlinkJobOperator> op(new FlinkJobOperator());
  op->impl_ = std::make_unique<Impl>();
  Impl& impl = *op->impl_;
  impl.client = std::move(client);
  impl.o = std::move(options);
  impl.api = std::make_unique<KubeFlinkJobApi>(
      impl.client, [&impl](const std::string& key, const std::string& rv) {
        std::lock_guard<std::mutex> lock(impl.mu);
        impl.own_writes[key] = rv;
      });
  impl.deployer = std::make_unique<ControlPlaneDeployer>(impl.client, impl.o, impl.registry);
  FlinkJobReconcilerOptions ro;
  ro.savepoint_on_deletion = impl.o.savepoint_on_deletion;
  ro.status_interval_ms = impl.o.status_interval_ms;
  ro.savepoint_timeout_ms = impl.o.savepoint_timeout_ms;
  ro.instance = impl.o.advertise_address;
  ro.log = impl.o.log;
  ro.debug = impl.o.debug;
  impl.reconciler = std::make_unique<FlinkJobReconciler>(*impl.api, *impl.deployer, ro);
  std::vector<std::string> paths;
  if (impl.o.namespaces.empty()) {
    paths.push_back(std::string("/apis/") + kFlinkJobGroupVersion + "/flinkjobs");
  } else {
    for (const auto& ns : impl.o.namespaces) paths.push_back(FlinkJobPath(ns));
  }
  for (const auto& p : paths) {
    k8s::Informer::Options io;
    io.path = p;
    io.on_event = [&impl](const std::string& type, const Json& obj) { impl.OnEvent(type, obj); };
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
    if (impl_->stopping && !impl_->reconciler) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
  for (auto& inf : impl_->informers) inf->Stop();
  if (impl_->reconciler) {
    impl_->reconciler->Shutdown(stop_jobs);
    impl_->reconciler.reset();
  }
  // Leaving (stop_jobs false: the process is about to exit and hand over the Lease), jobs being
  // torn down are not waited for; the next leader deletes their pods.
  if (stop_jobs) impl_->registry.Drain();
  std::lock_guard<std::mutex> lock(impl_->registry.mu);
  impl_->registry.jobs.clear();
}

std::vector<prometheus::MetricFamily> FlinkJobOperator::CollectJobMetrics() {
  std::map<std::string, std::pair<std::string, std::shared_ptr<ControlPlane>>> running;
  {
    std::lock_guard<std::mutex> lock(impl_->registry.mu);
    running = impl_->registry.jobs;
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
    std::lock_guard<std::mutex> lock(impl_->registry.mu);
    running = impl_->registry.jobs;
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
