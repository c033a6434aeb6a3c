#pragma once

// The FlinkJob state machine (observe → validate → reconcile) behind two interfaces: the
// Kubernetes API it writes to (FlinkJobApi) and the JobMasters it starts (JobDeployer). The
// operator (flinkjob_operator.cc) plugs in the KubeClient and ControlPlane implementations; the
// unit tests (tests/unit/flinkjob_reconciler_test.cc) plug in fault-injecting fakes. Internal to
// operator/.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/control/control_plane.h"
#include "eddy/status.h"

namespace eddy::control {

using Json = nlohmann::json;

/// The Kubernetes writes of the reconciler. Implementations may block (requests with retries);
/// called on the reconcile thread only.
class FlinkJobApi {
 public:
  virtual ~FlinkJobApi() = default;
  /// JSON merge patch of the status subresource of `flinkjob` (the object as reconciled):
  /// `{"status": patch}`.
  virtual Status PatchStatus(const Json& flinkjob, const Json& status_patch) = 0;
  /// JSON merge patch of the FlinkJob itself (finalizers, with a resourceVersion precondition).
  virtual Status PatchFlinkJob(const std::string& ns, const std::string& name,
                               const Json& patch) = 0;
  virtual Status CreateEvent(const std::string& ns, const Json& event) = 0;
  /// Ok when created or when it exists already.
  virtual Status EnsureService(const std::string& ns, const Json& service) = 0;
  /// Deletes every pod matching `label_selector` (pods of an earlier JobMaster).
  virtual Status DeletePods(const std::string& ns, const std::string& label_selector) = 0;
};

/// One deployed job: its JobMaster and worker pods. Owned by the reconciler; called on the
/// reconcile thread only.
class JobDeployment {
 public:
  virtual ~JobDeployment() = default;
  virtual const std::string& job_id() const = 0;
  /// The job as its JobMaster sees it; nullopt once stopped.
  virtual std::optional<JobInfo> Info() = 0;
  /// Flink's savepoint / stop-with-savepoint into the job's savepointDir: the trigger id.
  virtual Result<std::string> TriggerSavepoint(bool stop) = 0;
  virtual Result<SavepointStatus> SavepointState(const std::string& trigger_id) = 0;
  virtual Result<int64_t> TriggerCheckpoint() = 0;
  /// Worker pods that run (status.taskManagers).
  virtual int RunningPods() const = 0;
  /// Cancels the job if it still runs, stops the JobMaster and deletes the pods. Idempotent.
  virtual void Stop() = 0;
};

/// What to deploy.
struct DeployRequest {
  std::string key;  ///< "<namespace>/<name>"
  const Json* flinkjob = nullptr;
  std::string spec_text;     ///< the effective job spec (JSON)
  std::string restore_from;  ///< snapshot to start from, "" = empty state
  std::string job_id;        ///< the job id to use (already written to the status)
};

/// Starts jobs. Deploy returns once the job is submitted (its tasks deploy asynchronously).
class JobDeployer {
 public:
  virtual ~JobDeployer() = default;
  virtual Result<std::unique_ptr<JobDeployment>> Deploy(const DeployRequest& request) = 0;
};

struct FlinkJobReconcilerOptions {
  /// Flink operator's kubernetes.operator.job.savepoint-on-deletion; the annotation
  /// `eddy.dev/savepoint-on-deletion: "true"|"false"` overrides it per FlinkJob.
  bool savepoint_on_deletion = false;
  /// Requeue interval of a running job (status refresh), ms.
  int64_t status_interval_ms = 2000;
  /// How long a stop-with-savepoint may take before the operator gives up on it, ms.
  int64_t savepoint_timeout_ms = 300000;
  /// Events' reportingInstance.
  std::string instance = "eddy-operator";
  std::function<void(const std::string&)> log;
  bool debug = false;
};

/// The per-FlinkJob state machine. One instance per operator; every method runs on the reconcile
/// thread (not thread-safe). It keeps, per FlinkJob, the deployed job and the operation it waits
/// for (a savepoint, an upgrade, a suspend, a deletion); everything a successor needs to take
/// over — the job id, its checkpoint and savepoint directories, the snapshot it restored from,
/// savepoints taken — is written to the FlinkJob's status before the step that depends on it.
class FlinkJobReconciler {
 public:
  FlinkJobReconciler(FlinkJobApi& api, JobDeployer& deployer, FlinkJobReconcilerOptions options);
  ~FlinkJobReconciler();
  FlinkJobReconciler(const FlinkJobReconciler&) = delete;
  FlinkJobReconciler& operator=(const FlinkJobReconciler&) = delete;

  /// One reconcile of `key` given the informer's current object (nullopt: gone). Sets `requeue`
  /// to the delay of the next reconcile in ms, or -1 for none (the next watch event). An error
  /// asks for a rate-limited retry.
  Status Reconcile(const std::string& key, const std::optional<Json>& flinkjob, int64_t& requeue);

  /// Forgets every FlinkJob; with `stop_jobs` stops their jobs, else leaves them running (the
  /// next leader takes them over; the deployments are released, not destroyed).
  void Shutdown(bool stop_jobs);

  /// The deployed job of `key` (tests), nullptr if none.
  JobDeployment* Deployed(const std::string& key) const;

 private:
  struct Record;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A new 32-hex-digit job id (like Flink's JobID).
std::string NewFlinkJobId();

/// Where job `job_id` of the job spec `spec_text` keeps checkpoints and savepoints, as the
/// JobMaster derives them (checkpointing.storage or the default, plus the job id; savepointDir).
std::pair<std::string, std::string> JobSnapshotDirs(const std::string& spec_text,
                                                    const std::string& job_id);

/// Snapshot discovery in object storage (any `storage::OpenObjectStore` URI). Missing or
/// unreadable snapshots are skipped; a store that cannot answer now fails the lookup (retryable):
/// choosing an older snapshot instead would replay output an exactly-once sink committed.
/// The newest `chk-N` under a job's checkpoint directory whose `_metadata` reads, "" if none.
Result<std::string> LatestCheckpoint(const std::string& job_dir);
/// The most recently completed savepoint of `job_id` in `savepoint_dir` (by its `_metadata`).
Result<std::string> LatestSavepointOf(const std::string& savepoint_dir, const std::string& job_id);
/// The most recently completed of the given snapshots (directories or their `_metadata`; ""
/// skipped), as its directory.
Result<std::string> NewestSnapshot(const std::vector<std::string>& paths);

}  // namespace eddy::control
