#include "eddy/control/kubernetes_launcher.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace eddy::control {

namespace {

constexpr const char* kWorkerIdLabel = "eddy.dev/worker-id";

std::string WorkerIdOf(const k8s::Json& pod) {
  const auto& md = pod["metadata"];
  if (!md.contains("labels") || !md["labels"].contains(kWorkerIdLabel)) return {};
  return md["labels"][kWorkerIdLabel].get<std::string>();
}

/// "container eddy-worker terminated: exit code 137 (OOMKilled)" and the like.
std::string DescribePodEnd(const k8s::Json& pod) {
  const k8s::Json& st = pod.contains("status") ? pod["status"] : k8s::Json::object();
  std::string phase = st.value("phase", "");
  std::string out = "pod " + pod["metadata"].value("name", "") + " " +
                    (phase.empty() ? std::string("ended") : "is " + phase);
  if (st.contains("containerStatuses")) {
    for (const auto& cs : st["containerStatuses"]) {
      if (!cs.contains("state") || !cs["state"].contains("terminated")) continue;
      const auto& t = cs["state"]["terminated"];
      out += ": container " + cs.value("name", "") + " terminated with exit code " +
             std::to_string(t.value("exitCode", 0));
      if (t.contains("signal")) out += ", signal " + std::to_string(t.value("signal", 0));
      if (t.contains("reason")) out += " (" + t.value("reason", "") + ")";
      break;
    }
  }
  if (st.contains("reason")) out += " [" + st.value("reason", "") + "]";
  return out;
}

}  // namespace

KubernetesLauncher::KubernetesLauncher(std::shared_ptr<k8s::KubeClient> client,
                                       KubernetesLauncherOptions options)
    : client_(std::move(client)), o_(std::move(options)) {
  k8s::Informer::Options io;
  io.path =
      "/api/v1/namespaces/" + o_.ns + "/pods?labelSelector=" + k8s::QueryEscape(LabelSelector());
  io.watch_timeout_seconds = 120;
  io.on_event = [this](const std::string& type, const k8s::Json& pod) { OnPod(type, pod); };
  io.on_error = [this](const Status& s) { Log("watching worker pods: " + s.message()); };
  pods_ = std::make_unique<k8s::Informer>(client_, std::move(io));
  pods_->Start();
  thread_ = std::thread([this] { RunOps(); });
}

KubernetesLauncher::~KubernetesLauncher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  pods_->Stop();
}

void KubernetesLauncher::Log(const std::string& m) const {
  if (o_.log) o_.log(m);
}

std::string KubernetesLauncher::LabelSelector() const {
  std::string s;
  for (const auto& [k, v] : o_.selector) s += (s.empty() ? "" : ",") + k + "=" + v;
  return s;
}

std::string KubernetesLauncher::PodName(const std::string& worker_id) const {
  std::string n = worker_id;
  if (n.rfind("worker-", 0) == 0) n = n.substr(7);
  return o_.pod_prefix + "-" + n;
}

void KubernetesLauncher::Post(std::function<void()> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.push_back(std::move(op));
  }
  cv_.notify_all();
}

void KubernetesLauncher::RunOps() {
  while (true) {
    std::function<void()> op;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !ops_.empty(); });
      if (stopping_) return;
      op = std::move(ops_.front());
      ops_.pop_front();
    }
    op();
  }
}

Status KubernetesLauncher::Launch(const std::string& worker_id, const std::string& jobmanager,
                                  int slots) {
  k8s::Json pod = o_.pod_template;
  pod["apiVersion"] = "v1";
  pod["kind"] = "Pod";
  pod["metadata"]["name"] = PodName(worker_id);
  pod["metadata"]["namespace"] = o_.ns;
  for (const auto& [k, v] : o_.selector) pod["metadata"]["labels"][k] = v;
  pod["metadata"]["labels"][kWorkerIdLabel] = worker_id;
  bool found = false;
  for (auto& c : pod["spec"]["containers"]) {
    if (c.value("name", "") != "eddy-worker") continue;
    k8s::Json args = k8s::Json::array(
        {"--jobmanager", jobmanager, "--id", worker_id, "--slots", std::to_string(slots)});
    if (c.contains("args")) {
      for (const auto& a : c["args"]) args.push_back(a);
    }
    c["args"] = std::move(args);
    found = true;
  }
  if (!found)
    return Status::InvalidArgument("the worker pod template has no container eddy-worker");
  auto create = [this, pod = std::move(pod), worker_id] {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (create_backoff_ms_ > 0) {
        cv_.wait_for(lock, std::chrono::milliseconds(create_backoff_ms_),
                     [&] { return stopping_ || retired_; });
      }
      if (stopping_ || retired_) return;
    }
    auto r = client_->Create("/api/v1/namespaces/" + o_.ns + "/pods", pod);
    std::lock_guard<std::mutex> lock(mu_);
    if (r.ok() || r.status().code() == StatusCode::kAlreadyExists) {
      create_backoff_ms_ = 0;
      return;
    }
    create_backoff_ms_ = std::clamp<int64_t>(create_backoff_ms_ * 2, 1000, 30000);
    if (ended_.insert(worker_id).second) {
      exits_.push_back({worker_id, "cannot create pod " + pod["metadata"].value("name", "") + ": " +
                                       r.status().message()});
    }
  };
  {
    // Checked and queued under one lock: no create slips in after Retire.
    std::lock_guard<std::mutex> lock(mu_);
    if (retired_) return Status::Ok();  // the control plane is going away
    launched_.insert(worker_id);
    ops_.push_back(std::move(create));
  }
  cv_.notify_all();
  return Status::Ok();
}

void KubernetesLauncher::Stop(const std::string& worker_id) {
  std::string name = PodName(worker_id);
  Post([this, name] {
    Status s = client_->Delete("/api/v1/namespaces/" + o_.ns + "/pods/" + name);
    if (!s.ok()) Log("cannot delete pod " + name + ": " + s.message());
  });
}

void KubernetesLauncher::OnPod(const std::string& type, const k8s::Json& pod) {
  std::string id = WorkerIdOf(pod);
  if (id.empty()) return;
  std::string reason;
  std::string phase = pod.contains("status") ? pod["status"].value("phase", "") : "";
  if (type == "DELETED") {
    reason = "pod " + pod["metadata"].value("name", "") + " was deleted";
  } else if (phase == "Failed" || phase == "Succeeded") {
    reason = DescribePodEnd(pod);
  } else if (pod["metadata"].contains("deletionTimestamp")) {
    reason = "pod " + pod["metadata"].value("name", "") + " is being deleted";
  } else {
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!launched_.count(id)) return;  // not ours (an earlier run's pod with the same labels)
  if (ended_.insert(id).second) exits_.push_back({id, reason});
}

std::vector<WorkerLauncher::Exit> KubernetesLauncher::PollExits() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Exit> out;
  out.swap(exits_);
  return out;
}

void KubernetesLauncher::Retire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    retired_ = true;
    ops_.clear();  // creates not yet sent; StopAll deletes every pod of this launcher later
  }
  cv_.notify_all();  // a create waiting out its backoff gives up
}

void KubernetesLauncher::StopAll() {
  // No queued create may run after the pods are deleted: stop the queue first (the operation
  // in progress, if any, finishes).
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    ops_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::string path =
      "/api/v1/namespaces/" + o_.ns + "/pods?labelSelector=" + k8s::QueryEscape(LabelSelector());
  auto r = client_->Request("DELETE", path);
  if (!r.ok() || !r->ok()) {
    Log("cannot delete the worker pods (" + LabelSelector() +
        "): " + (r.ok() ? r->message() : r.status().message()));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && !pods_->List().empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int KubernetesLauncher::RunningPods() const {
  int n = 0;
  for (const auto& p : pods_->List()) {
    if (p.contains("status") && p["status"].value("phase", "") == "Running" &&
        !p["metadata"].contains("deletionTimestamp"))
      ++n;
  }
  return n;
}

}  // namespace eddy::control
