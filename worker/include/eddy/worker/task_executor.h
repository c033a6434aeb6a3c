#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "eddy/status.h"
#include "eddy/worker/network.h"

namespace eddy::worker {

/// Options of one worker process (`eddy-worker` flags; the FlinkJob's taskManager section).
struct WorkerOptions {
  /// Unique name of this worker in the cluster. Default: "<host>-<pid>".
  std::string worker_id;
  /// The control plane's RPC endpoint (JobMaster/ResourceManager, port 6123).
  std::string jobmanager = "tcp://127.0.0.1:6123";
  /// Task slots offered; 0 = the number of cores.
  int slots = 0;
  /// Network buffers (32 KiB each) of this worker: every partition and receive pool is carved
  /// from it. Default 2048 = 64 MiB.
  size_t network_buffers = 2048;
  NetworkService::Options network;
  /// Give up when the control plane does not accept the registration for this long (ms).
  int64_t registration_timeout_ms = 300000;
  /// Leave when nothing was heard from the control plane for this long (ms) after registering.
  int64_t jobmanager_timeout_ms = 30000;
  /// Where the Prometheus endpoint (`/metrics`) listens: "ipv4:port" or a port; port 0 picks an
  /// ephemeral one. Default: all interfaces, port 9249 (Flink's PrometheusReporter port).
  /// "" = no endpoint. Fixed at start; a port that cannot be bound fails `Make`.
  std::string metrics_address = "0.0.0.0:9249";
};

/// The TaskManager side (Flink's TaskExecutor): registers its slots with the ResourceManager,
/// heartbeats with per-task figures, deploys the subtasks the JobMaster places on it (compiling
/// the job spec to the same JobGraph as the control plane), runs each on a thread of its own and
/// reports their state changes, and serves its metrics on `/metrics` (docs/metrics.md).
/// Lifecycle: Make (binds the data and metrics ports), then Run on the main thread until a
/// Shutdown message, RequestStop or a lost control plane; the destructor stops the metrics
/// endpoint before the tasks go away. Threading: RequestStop from any thread or a signal
/// handler; metrics scrapes on the metrics server's threads (they take the attempts' lock);
/// everything else on the Run thread.
class TaskExecutor {
 public:
  static Result<std::unique_ptr<TaskExecutor>> Make(WorkerOptions options);
  ~TaskExecutor();
  Status Run();
  /// Async-signal-safe.
  void RequestStop();
  const NetworkService& network() const;
  /// "host:port" of the metrics endpoint as reported to the control plane ("" = none).
  const std::string& metrics_endpoint() const;
  /// What the metrics endpoint serves (without the process metrics): built from the tasks' and
  /// the network's atomics, any thread. For tests; Prometheus gets it from the endpoint.
  std::vector<prometheus::MetricFamily> CollectMetrics() const;
  /// Counts of control messages that could not be parsed (logged and dropped).
  uint64_t malformed_control_messages() const;

 private:
  struct Impl;
  TaskExecutor() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eddy::worker
