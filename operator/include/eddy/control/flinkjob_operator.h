#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "eddy/control/rest_server.h"
#include "eddy/k8s/kube_client.h"
#include "eddy/status.h"

namespace eddy::control {

struct FlinkJobOperatorOptions {
  /// Namespaces whose FlinkJobs are reconciled; empty = all namespaces.
  std::vector<std::string> namespaces;
  /// Where the per-job JobMaster RPC ports listen, and the address worker pods dial.
  std::string rpc_bind_host = "0.0.0.0";
  std::string advertise_address = "127.0.0.1";
  /// Image of FlinkJobs without spec.image.
  std::string worker_image = "eddy-worker:latest";
  /// ServiceAccount of worker pods of FlinkJobs without spec.serviceAccount ("" = the
  /// namespace's default).
  std::string worker_service_account;
  /// Take a savepoint (when the job has a savepointDir) before a deleted FlinkJob's pods go:
  /// Flink operator's kubernetes.operator.job.savepoint-on-deletion. The annotation
  /// `eddy.dev/savepoint-on-deletion: "true"|"false"` overrides it per FlinkJob.
  bool savepoint_on_deletion = false;
  /// How often the status of a running job is refreshed (job state, checkpoints).
  int64_t status_interval_ms = 2000;
  /// Heartbeat timeout of the worker pods (a hung pod is replaced after it).
  int64_t heartbeat_timeout_ms = 10000;
  /// How long a stop-with-savepoint (upgrade, suspend, delete) may take before the operator
  /// gives up on it: the upgrade or suspend then fails with an error in the status.
  int64_t savepoint_timeout_ms = 300000;
  /// Log lines.
  std::function<void(const std::string&)> log;
  /// Logs every reconcile's inputs and decisions.
  bool debug = false;
  /// Called after every reconcile with its duration and whether it failed (metrics).
  std::function<void(double seconds, bool ok)> on_reconcile;
};

/// The FlinkJob controller: watches FlinkJobs and reconciles each (observe → validate →
/// reconcile) on one worker thread with a rate-limited work queue. For each FlinkJob it runs a
/// JobMaster (ControlPlane) in this process, whose ResourceManager launches worker pods through
/// a KubernetesLauncher, and writes the job's status, conditions and Events. Lifecycle: upgrades
/// per upgradeMode, suspend/resume, savepoint nonce, initialSavepointPath, deletion through a
/// finalizer. Stopped (destructor or Stop) it leaves jobs and pods as they are: another
/// operator (the next leader) takes them over from their status and checkpoints.
class FlinkJobOperator {
 public:
  static Result<std::unique_ptr<FlinkJobOperator>> Start(std::shared_ptr<k8s::KubeClient> client,
                                                         FlinkJobOperatorOptions options);
  ~FlinkJobOperator();
  /// Stops reconciling; with `stop_jobs` also cancels every job it runs and deletes their pods.
  void Stop(bool stop_jobs);
  /// True once every FlinkJob informer has synced.
  bool Ready() const;
  /// The REST API over every job this operator runs (Flink's paths, see RestServer):
  /// `/jobs/:jobid/…` goes to that job's JobMaster, `/jobs` and `/jobs/overview` list all of
  /// them, `/overview` sums their clusters, and Eddy's `/flinkjobs` maps FlinkJobs to job ids.
  /// Any thread.
  RestResponse HandleRest(const RestRequest& request);
  /// The control-plane metrics (docs/metrics.md) of every JobMaster it runs, each series labelled
  /// `namespace` and `flinkjob`; families of the same name are merged. Any thread.
  std::vector<prometheus::MetricFamily> CollectJobMetrics();
  /// FlinkJobs by status.lifecycleState (CREATED for those without a status yet).
  std::map<std::string, int> JobsByLifecycle() const;

 private:
  struct Impl;
  FlinkJobOperator() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eddy::control
