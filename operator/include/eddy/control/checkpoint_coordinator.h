#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "eddy/metrics/histogram.h"
#include "eddy/proto/checkpoint.pb.h"
#include "eddy/proto/control.pb.h"
#include "eddy/serial_executor.h"
#include "eddy/status.h"
#include "eddy/storage/object_store.h"
#include "eddy/types.h"

namespace YAML {
class Node;
}

namespace eddy::control {

/// A job's checkpointing settings: the spec's top-level `checkpointing` (= FlinkJob
/// `spec.checkpointing`), named after Flink's execution.checkpointing.* options.
struct CheckpointConfig {
  /// Trigger period; 0 = periodic checkpoints off (savepoints still work). Flink: interval.
  Duration interval = Duration::Millis(0);
  /// Aligned barriers (exactly-once, default) or barriers only counted (at-least-once).
  bool exactly_once = true;
  /// Unaligned checkpoints (Flink: execution.checkpointing.unaligned, default false): tasks
  /// snapshot at the first barrier and persist in-flight input data instead of blocking channels.
  /// Exactly-once only; savepoints stay aligned. Fixed per job submission.
  bool unaligned = false;
  /// Checkpoint directory (URI); the job's checkpoints go to `<storage>/<job-id>/`. Default:
  /// `file://$EDDY_HOME/checkpoints` (EDDY_HOME defaults to ~/.cache/eddy).
  std::string storage;
  /// Completed checkpoints kept (Flink's state.checkpoints.num-retained, 1; ours 3, as the
  /// FlinkJob CRD's `retained`).
  int retained = 3;
  /// A checkpoint not complete after this long is aborted (Flink: 10 min).
  Duration timeout = Duration::Millis(10 * 60 * 1000);
  /// Minimum time between the end of one checkpoint and the start of the next (Flink: 0).
  Duration min_pause = Duration::Millis(0);
  /// Checkpoints in flight at once (Flink: 1).
  int max_concurrent = 1;
  /// Consecutive failed checkpoints tolerated before the job fails over; <0 = unlimited
  /// (default: an unreachable store must not stop processing; Flink's default is 0).
  int tolerable_failures = -1;
  /// Savepoint directory for savepoints triggered without one (FlinkJob `savepointDir`).
  std::string savepoint_dir;

  bool enabled() const { return interval.millis() > 0; }
};

/// Reads `checkpointing` (and `savepointDir`) of a job spec's root; defaults when absent.
/// InvalidArgument naming the field on a bad value.
Result<CheckpointConfig> ParseCheckpointConfig(const YAML::Node& spec_root);
/// InvalidArgument when the settings contradict each other (unaligned needs exactly-once); run
/// again after command-line overrides.
Status ValidateCheckpointConfig(const CheckpointConfig& config);
/// The default checkpoint directory: file://$EDDY_HOME/checkpoints.
std::string DefaultCheckpointStorage();

/// One completed or failed checkpoint or savepoint, for REST's `latest` and `history`.
struct CheckpointRecord {
  enum class Status : uint8_t { kCompleted, kFailed };
  int64_t id = 0;
  bool savepoint = false;
  Status status = Status::kCompleted;
  int64_t trigger_epoch_ms = 0;
  /// Completion (metadata written) or failure time, epoch ms.
  int64_t end_epoch_ms = 0;
  int64_t duration_ms = 0;
  int acknowledged = 0;  ///< subtasks that acknowledged
  int tasks = 0;         ///< subtasks of the attempt
  uint64_t size = 0;     ///< bytes uploaded for it (0 when failed before all acknowledged)
  uint64_t full_size = 0;
  int64_t alignment_ms = 0;
  /// Unaligned checkpoints: in-flight input data persisted, bytes, summed over the subtasks.
  uint64_t persisted_bytes = 0;
  std::string path;     ///< completed: its directory URI
  std::string failure;  ///< failed: why
};

/// The snapshot an execution attempt last started from.
struct RestoreRecord {
  int64_t id = 0;  ///< checkpoint id recorded in its metadata
  bool savepoint = false;
  int64_t restore_epoch_ms = 0;
  std::string path;  ///< URI of its `_metadata`
};

/// Cumulative histograms of completed checkpoints (every one since the job started, unlike the
/// bounded `durations_s`/`sizes`), for /metrics. Bucket bounds are fixed (see the .cc).
struct CheckpointHistograms {
  metrics::HistogramSnapshot duration_s;
  metrics::HistogramSnapshot size_bytes;
};

/// Counters and last-checkpoint figures (Flink's checkpoint metrics), read by REST and /metrics.
struct CheckpointStats {
  uint64_t completed = 0;
  uint64_t failed = 0;
  int in_progress = 0;
  uint64_t restored = 0;
  uint64_t restore_fallbacks = 0;  ///< newest checkpoint unreadable, an older one used
  int64_t last_id = 0;
  int64_t last_trigger_epoch_ms = 0;
  int64_t last_duration_ms = 0;
  uint64_t last_size = 0;       ///< bytes uploaded for it (incremental)
  uint64_t last_full_size = 0;  ///< bytes of the whole state
  int64_t last_alignment_ms = 0;
  uint64_t last_persisted_bytes = 0;  ///< in-flight data (unaligned checkpoints)
  /// Completed checkpoints that persisted any in-flight data, and its bytes over all of them.
  uint64_t with_in_flight_data = 0;
  uint64_t persisted_bytes_total = 0;
  std::string last_path;
  std::string last_failure;
  /// Durations (s), sizes and full sizes (bytes) of the last 1024 completed checkpoints.
  std::vector<double> durations_s, sizes, full_sizes, persisted;
  /// Latest completed checkpoint, savepoint and (counted) failure; the last restore.
  std::optional<CheckpointRecord> latest_completed, latest_savepoint, latest_failed;
  std::optional<RestoreRecord> latest_restored;
  /// The last 10 completed or failed checkpoints and savepoints, newest first (Flink's
  /// web.checkpoints.history).
  std::deque<CheckpointRecord> history;
  CheckpointHistograms histograms;
};

/// Status of a savepoint request (REST /jobs/:id/savepoints/:trigger).
struct SavepointStatus {
  enum class State : uint8_t { kInProgress, kCompleted, kFailed };
  State state = State::kInProgress;
  std::string location;  ///< the savepoint directory, once completed
  std::string failure;
};

/// One job's checkpoint coordinator (Flink's CheckpointCoordinator): triggers checkpoints at the
/// sources, collects acknowledgements, writes `_metadata` last, notifies tasks, keeps the last N
/// and deletes older ones together with shared files no kept checkpoint references, counts
/// failures, and picks the checkpoint to restore from. Lifecycle: one per job, created at
/// submission. Threading: every method on the control-plane thread; storage I/O runs on an
/// internal executor and reports back through `Callbacks::post`.
class CheckpointCoordinator {
 public:
  struct Callbacks {
    /// Send a trigger to every worker hosting a source subtask of the current attempt.
    std::function<void(const proto::TriggerCheckpoint&)> trigger;
    /// Tell every worker of the current attempt that `id` completed (or was aborted).
    std::function<void(int64_t id, bool completed)> notify;
    /// Run on the control-plane thread (from the I/O thread).
    std::function<void(std::move_only_function<void()>)> post;
    std::function<void(const std::string&)> log;
    /// Too many consecutive failures: fail the attempt over.
    std::function<void(const std::string&)> fail;
    /// A stop-with-savepoint completed: the tasks end (no drain) or drain by themselves.
    std::function<void(int64_t id)> stopped;
  };

  /// `store` is rooted at the job's checkpoint directory (`<storage>/<job-id>`); null when no
  /// storage could be opened (checkpoints then fail with that reason).
  CheckpointCoordinator(std::string job_id, std::string job_name, CheckpointConfig config,
                        std::shared_ptr<storage::ObjectStore> store, Callbacks callbacks);
  ~CheckpointCoordinator();

  const CheckpointConfig& config() const { return config_; }
  const CheckpointStats& stats() const { return stats_; }
  /// URI of the job's checkpoint directory ("" without storage).
  std::string job_dir() const { return store_ ? store_->root() : std::string(); }

  /// A new attempt runs with `tasks` subtasks; `max_parallelism` by operator uid. Periodic
  /// triggering starts once every task runs (`SetAllRunning`).
  void OnAttemptDeployed(uint64_t attempt, int tasks, std::map<std::string, int> max_parallelism);
  void SetAllRunning(bool running);
  /// The attempt ended (failure, cancel, finish): pending checkpoints are aborted.
  void OnAttemptEnded();
  /// Periodic triggering and timeouts. `now` steady ms.
  void Tick(int64_t now);

  void OnAcknowledge(const proto::AcknowledgeCheckpoint& ack);
  void OnDecline(const proto::DeclineCheckpoint& decline);

  /// Starts a savepoint into `dir` (empty: the configured savepoint dir); `stop`: stop the job
  /// after it, `drain`: with the final watermark. Returns the trigger id for SavepointState.
  Result<std::string> TriggerSavepoint(std::string dir, bool stop, bool drain);
  /// A checkpoint now, whatever the interval says (Flink's manual checkpoint trigger; the
  /// FlinkJob's checkpointTriggerNonce). Unavailable unless every task runs. Returns its id.
  Result<int64_t> TriggerCheckpoint();
  std::optional<SavepointStatus> Savepoint(const std::string& trigger_id) const;

  /// Whether a stop-with-savepoint is in flight (triggered, not yet completed or failed).
  bool StopPending() const;

  /// Whether a completed checkpoint exists to restore from.
  bool HasCompleted() const { return !completed_.empty(); }
  /// Finds the newest readable completed checkpoint (I/O thread), dropping unreadable ones with
  /// a log line and a metric; `done` gets it (nullopt: none completed) or an error when
  /// checkpoints completed but none is readable. `done` runs on the control thread.
  void ResolveRestore(std::function<void(Result<std::optional<proto::RestoreFrom>>)> done);
  /// Counts a restore the coordinator did not resolve itself (the job's initial savepoint).
  void RecordRestore(const proto::RestoreFrom& from, bool savepoint);

  /// Reads and checks a savepoint or checkpoint given by path (its directory or its
  /// `_metadata`), for `--from-savepoint`. Blocking: call before the job is scheduled.
  static Result<proto::RestoreFrom> LocateSnapshot(const std::string& path,
                                                   std::shared_ptr<proto::CheckpointMetadata>* md);

 private:
  struct Pending {
    int64_t id = 0;
    int64_t trigger_epoch = 0;
    int64_t trigger_steady = 0;
    bool savepoint = false;
    bool stop = false;
    std::string dir;  // savepoints: target directory URI
    std::string trigger_id;
    std::map<std::pair<int, int>, proto::AcknowledgeCheckpoint> acks;
    bool finalizing = false;  // all acked, metadata being written
  };
  struct Completed {
    int64_t id = 0;
    std::string metadata_key;  // relative to store_
    std::set<std::string> shared_keys;
  };

  void Trigger(bool savepoint, bool stop, bool drain, const std::string& dir,
               const std::string& trigger_id);
  void Finalize(Pending& p);
  void OnFinalized(int64_t id, Status written, std::string path);
  void Fail(int64_t id, const std::string& why, bool count);
  void ApplyRetention();
  void AddToHistory(CheckpointRecord r);

  std::string job_id_;
  std::string job_name_;
  CheckpointConfig config_;
  std::shared_ptr<storage::ObjectStore> store_;
  Callbacks cb_;
  CheckpointStats stats_;

  uint64_t attempt_ = 0;
  int tasks_ = 0;
  bool all_running_ = false;
  std::map<std::string, int> max_parallelism_;
  int64_t next_id_ = 1;
  int64_t last_end_steady_ = 0;
  int64_t next_trigger_ = 0;
  int consecutive_failures_ = 0;
  std::map<int64_t, Pending> pending_;
  std::deque<Completed> completed_;
  std::map<std::string, SavepointStatus> savepoints_;
  uint64_t savepoint_seq_ = 0;
  /// Closures posted back from the I/O thread hold a weak reference: they do nothing once the
  /// coordinator is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  /// Last: its destructor drains queued I/O that may still refer to the members above.
  std::unique_ptr<SerialExecutor> io_;
};

}  // namespace eddy::control
