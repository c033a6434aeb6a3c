#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eddy/control/checkpoint_coordinator.h"
#include "eddy/control/restart_strategy.h"
#include "eddy/control/worker_launcher.h"
#include "eddy/status.h"

namespace eddy::control {

/// Job states (Flink's JobStatus).
enum class JobState : uint8_t {
  kCreated,
  kRunning,
  kFailing,
  kRestarting,
  kFinished,
  kCanceling,
  kCanceled,
  kFailed
};
std::string_view JobStateName(JobState s);
inline bool IsTerminal(JobState s) {
  return s == JobState::kFinished || s == JobState::kCanceled || s == JobState::kFailed;
}

/// Options of the control plane (JobMaster + ResourceManager + RPC endpoint).
struct ControlPlaneOptions {
  /// Interface and port of the RPC ROUTER (Flink's jobmanager.rpc.port 6123; 0 = ephemeral).
  std::string rpc_bind_host = "0.0.0.0";
  int rpc_port = 6123;
  /// Host workers use to reach the RPC port.
  std::string advertised_host = "127.0.0.1";
  /// Heartbeats: workers report every interval; a worker silent for the timeout is lost.
  /// Flink's defaults are 10 s / 50 s; local and pod failures are detected faster here (the
  /// launcher sees a process or pod end at once; the timeout catches hangs and partitions).
  int64_t heartbeat_interval_ms = 1000;
  int64_t heartbeat_timeout_ms = 10000;
  /// A job waiting for slots longer than this fails (Flink's slot.request.timeout, 5 min).
  int64_t slot_request_timeout_ms = 300000;
  /// After a cancel, wait this long for tasks to report before releasing them anyway.
  int64_t cancel_timeout_ms = 10000;
  /// Workers the ResourceManager keeps running through `launcher` (replacing lost ones), and
  /// the slots each offers. 0 workers = only workers that register on their own.
  int workers = 0;
  int slots_per_worker = 1;
  std::shared_ptr<WorkerLauncher> launcher;
  /// Overrides the jobs' buffer timeout (ms); <0 = each job's own.
  int64_t buffer_timeout_ms = -1;
  /// Log lines to stderr ("eddy: ...").
  bool verbose = true;
};

/// A job as submitted: the job spec text and where it came from.
struct JobSubmission {
  std::string spec_text;
  std::string spec_file = "job.yaml";  // for messages
  std::string base_dir;                // relative paths resolve here
  int parallelism = 0;                 // >0 overrides the spec
  /// Overrides the spec's restartStrategy when set.
  std::optional<RestartStrategyConfig> restart;
  /// Start from this savepoint or retained checkpoint (its directory or `_metadata`).
  std::string from_savepoint;
  /// Skip savepoint state of operators the job no longer has (else the submission fails).
  bool allow_non_restored_state = false;
  /// Override the spec's checkpointing.interval / .storage and savepointDir when set.
  std::optional<Duration> checkpoint_interval;
  std::string checkpoint_storage;
  std::string savepoint_dir;
  /// Overrides the spec's checkpointing.unaligned when set.
  std::optional<bool> unaligned_checkpoints;  /// The job id to use (32 lowercase hex digits, not in
                                              /// use), "" = a new one. The operator picks
  /// it so that the FlinkJob status names the job (and its checkpoint directory) before it runs.
  std::string job_id;
};

struct SubtaskInfo {
  int subtask = 0;
  std::string worker_id;
  std::string state;  // TaskState name
  uint64_t records_in = 0, records_out = 0, bytes_in = 0, bytes_out = 0;
  int64_t input_watermark = INT64_MIN;
  double busy_ratio = 0, backpressured_ratio = 0, idle_ratio = 0;
};

struct VertexInfo {
  int id = 0;
  std::string name;
  int parallelism = 1;
  std::vector<SubtaskInfo> subtasks;
};

struct JobInfo {
  std::string id;
  std::string name;
  JobState state = JobState::kCreated;
  int64_t start_time_ms = 0;  // epoch ms
  int64_t end_time_ms = -1;
  int restarts = 0;
  std::string failure;  // the last failure's cause
  std::string plan_json;
  std::vector<VertexInfo> vertices;
  /// Checkpointing: settings, counters and the last completed checkpoint.
  CheckpointConfig checkpoint_config;
  CheckpointStats checkpoints;
  std::string checkpoint_dir;  ///< the job's checkpoint directory URI
};

struct WorkerInfo {
  std::string id;
  std::string data_endpoint;
  std::string metrics_endpoint;
  int slots = 0;
  int slots_free = 0;
  int pid = 0;
  int64_t last_heartbeat_ms = 0;  // epoch ms
  uint64_t buffers_used = 0, buffers_total = 0;
};

struct ClusterInfo {
  std::vector<WorkerInfo> workers;
  int slots_total = 0;
  int slots_free = 0;
  uint64_t malformed_messages = 0;
  int jobs_running = 0, jobs_finished = 0, jobs_canceled = 0, jobs_failed = 0;
};

/// The control plane of a cluster: the RPC endpoint workers register with, the ResourceManager
/// (workers, slots, the WorkerLauncher) and one JobMaster per job (scheduling with slot
/// sharing, deployment, task states, failure detection and restarts). Lifecycle: Start, then
/// submit jobs; the destructor shuts workers down. Threading: one internal thread owns the
/// socket and all state; public methods may be called from any thread (they post to it).
class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> Start(ControlPlaneOptions options);
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  /// tcp://advertised_host:port workers register at.
  const std::string& rpc_endpoint() const;
  /// Waits until `n` workers registered; Timeout otherwise.
  Status WaitForWorkers(int n, int64_t timeout_ms);
  /// Compiles and schedules a job; InvalidArgument for a bad spec. Returns the job id.
  Result<std::string> Submit(JobSubmission job);
  Status Cancel(const std::string& job_id);
  std::optional<JobInfo> Job(const std::string& job_id);
  std::vector<JobInfo> Jobs();
  ClusterInfo Cluster();
  /// Starts a savepoint of a running job into `dir` (empty: the job's savepointDir); `stop`
  /// ends the job after it (Flink's stop-with-savepoint), `drain` first fires every event-time
  /// window. Returns the trigger id for SavepointState.
  Result<std::string> TriggerSavepoint(const std::string& job_id, const std::string& dir, bool stop,
                                       bool drain);
  /// Takes a checkpoint of a running job now; returns its id (Unavailable unless RUNNING).
  Result<int64_t> TriggerCheckpoint(const std::string& job_id);
  /// NotFound for an unknown job or trigger id.
  Result<SavepointStatus> SavepointState(const std::string& job_id, const std::string& trigger_id);
  /// Blocks until the job is FINISHED, CANCELED or FAILED (or the timeout passed: nullopt).
  std::optional<JobInfo> WaitForJob(const std::string& job_id, int64_t timeout_ms = -1);

 private:
  struct Impl;
  ControlPlane() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eddy::control
