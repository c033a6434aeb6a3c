#pragma once

// What the operator derives from a FlinkJob object: the effective job spec, the upgrade key, the
// worker pod template and the headless Service. Pure functions of their arguments (no I/O), used
// by the reconciler and by the deployer that starts JobMasters; internal to operator/.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "eddy/status.h"

namespace eddy::control {

using Json = nlohmann::json;

inline constexpr const char* kFlinkJobGroupVersion = "eddy.dev/v1alpha1";
inline constexpr const char* kFlinkJobFinalizer = "eddy.dev/finalizer";
inline constexpr const char* kJobLabel = "eddy.dev/job";
inline constexpr const char* kRunLabel = "eddy.dev/run";
inline constexpr int kWorkerDataPort = 6121;
inline constexpr int kWorkerMetricsPort = 9249;

/// o[key] when it is an integer (a string), else `dflt`.
int64_t IntOr(const Json& o, const char* key, int64_t dflt);
std::string StrOr(const Json& o, const char* key, const std::string& dflt = "");

/// "/apis/eddy.dev/v1alpha1/namespaces/<ns>/flinkjobs[/<name>]".
std::string FlinkJobPath(const std::string& ns, const std::string& name = "");

/// spec.job with the FlinkJob-level overrides applied (they win, as `eddy run`'s flags do).
Json EffectiveJob(const Json& spec);

/// What an upgrade is about: the spec without the fields that do not redeploy (state, nonces).
std::string UpgradeKey(const Json& spec);

/// taskManager.slots (default 1) and the worker pod count: taskManager.replicas, else
/// ceil(parallelism / slots).
int Slots(const Json& spec);
int Replicas(const Json& spec);

/// `spec.taskManager.podTemplate` is not validated by the API server (preserve-unknown-fields):
/// the parts the operator merges into must have the right JSON types. The error names the place.
Status ValidatePodTemplate(const Json& spec);

/// The controller ownerReference to the FlinkJob (pods and Service go with it).
Json OwnerReference(const Json& flinkjob);

/// Defaults of worker pods that the FlinkJob does not set.
struct WorkerPodDefaults {
  std::string image = "eddy-worker:latest";  ///< when spec.image is unset
  std::string service_account;               ///< when spec.serviceAccount is unset; "" = default
};

/// The worker pod of JobMaster run `run_id` without name and worker identity (the
/// KubernetesLauncher adds those): taskManager.podTemplate underneath, then labels, Prometheus
/// annotations, ports bound to $(POD_IP), S3 settings as env, resources (requests = limits).
Json WorkerPodTemplate(const Json& flinkjob, const std::string& run_id,
                       const WorkerPodDefaults& defaults);

/// The headless Service `<name>-taskmanager` that gives worker pods DNS names.
Json TaskManagerService(const Json& flinkjob);

/// Epoch ms → "2025-01-01T00:01:00Z".
std::string Rfc3339(int64_t epoch_ms);

}  // namespace eddy::control
