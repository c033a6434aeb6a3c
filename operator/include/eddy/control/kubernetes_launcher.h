#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "eddy/control/worker_launcher.h"
#include "eddy/k8s/informer.h"
#include "eddy/k8s/kube_client.h"

namespace eddy::control {

struct KubernetesLauncherOptions {
  std::string ns;
  /// Pod names are `<pod_prefix>-<n>` with n from the worker id "worker-<n>".
  std::string pod_prefix;
  /// Labels every pod of this launcher carries (must include `run_label`), used as the watch's
  /// selector and for deleting them all.
  std::map<std::string, std::string> selector;
  /// The complete worker pod but for its name and the worker's arguments: metadata (labels,
  /// annotations, ownerReferences) and spec with a container named `eddy-worker`, whose `args`
  /// get `--jobmanager … --id … --slots …` prepended.
  k8s::Json pod_template;
  /// Log lines ("eddy-operator: …").
  std::function<void(const std::string&)> log;
};

/// The ResourceManager's WorkerLauncher on Kubernetes: one pod per worker (restartPolicy Never:
/// a crashed worker is replaced by a new pod and the job fails over, as Flink's native
/// Kubernetes integration does). Creates and deletes run on the launcher's own thread, so the
/// control plane's thread never waits for the API server; pod ends (Failed, Succeeded, deleted,
/// being deleted) come from a watch on the selector. Repeated creation failures back off
/// (1 s … 30 s) and end the worker with the API server's reason.
class KubernetesLauncher final : public WorkerLauncher {
 public:
  KubernetesLauncher(std::shared_ptr<k8s::KubeClient> client, KubernetesLauncherOptions options);
  ~KubernetesLauncher() override;
  Status Launch(const std::string& worker_id, const std::string& jobmanager, int slots) override;
  void Stop(const std::string& worker_id) override;
  std::vector<Exit> PollExits() override;
  /// Deletes every pod with the selector and waits (≤ 30 s) until they are gone from the watch.
  void StopAll() override;

  /// The job is over: queued pod creations are dropped and later Launch calls create nothing
  /// (the control plane is being torn down and must not replace pods meanwhile). Any thread.
  void Retire();
  /// Pods of this launcher that are Running (for status.taskManagers).
  int RunningPods() const;
  std::string PodName(const std::string& worker_id) const;
  std::string LabelSelector() const;

 private:
  void OnPod(const std::string& type, const k8s::Json& pod);
  void Post(std::function<void()> op);
  void RunOps();
  void Log(const std::string& m) const;

  std::shared_ptr<k8s::KubeClient> client_;
  KubernetesLauncherOptions o_;
  std::unique_ptr<k8s::Informer> pods_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> ops_;
  std::vector<Exit> exits_;
  std::set<std::string> ended_;     // worker ids already reported
  std::set<std::string> launched_;  // worker ids with a pod requested
  int64_t create_backoff_ms_ = 0;
  bool stopping_ = false;
  bool retired_ = false;
  std::thread thread_;
};

}  // namespace eddy::control
