#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eddy/graph/stream_graph.h"
#include "eddy/metrics/histogram.h"
#include "eddy/operators/operator.h"
#include "eddy/state/backend_kind.h"
#include "eddy/state/rocksdb_backend.h"
#include "eddy/state/timers.h"
#include "eddy/worker/channels.h"

namespace eddy::proto {
class AcknowledgeCheckpoint;
class OperatorState;
class DeclineCheckpoint;
class CheckpointMetadata;
}  // namespace eddy::proto
namespace eddy::storage {
class ObjectStore;
}

namespace eddy::worker {

/// Steady clock, ns.
int64_t SteadyNs();

/// A completed checkpoint or savepoint to start the tasks from.
struct RestoreSnapshot {
  std::shared_ptr<const proto::CheckpointMetadata> metadata;
  /// Rooted where the metadata's state file keys are relative to.
  std::shared_ptr<storage::ObjectStore> store;
};

/// What the tasks of one execution attempt need to take part in checkpoints (Flink's
/// SubtaskCheckpointCoordinator). Shared by the attempt's tasks; every member is callable from
/// any thread.
struct CheckpointHooks {
  /// The job's checkpoint directory (`<checkpoint-dir>/<job-id>`); null = checkpointing is off.
  std::shared_ptr<storage::ObjectStore> store;
  /// Aligned barriers (exactly-once) or not (at-least-once).
  bool exactly_once = true;
  /// Exactly-once only: snapshot at the first barrier of a checkpoint and persist what the other
  /// channels deliver before their barriers (Flink's unaligned checkpoints). Savepoints stay
  /// aligned.
  bool unaligned = false;
  /// Unaligned: in-flight data of one channel up to this many bytes travels inline in the
  /// metadata; more becomes a file of the checkpoint. Default 64 KiB; fixed per attempt.
  size_t max_inline_channel_state = 64 * 1024;
  /// Runs the slow half of a snapshot (uploads) off the task thread.
  std::function<void(std::move_only_function<void()>)> run_async;
  /// Reports a subtask's finished snapshot, or why it could not take one.
  std::function<void(proto::AcknowledgeCheckpoint)> acknowledge;
  std::function<void(proto::DeclineCheckpoint)> decline;
  /// State to start from; null = a fresh start.
  std::shared_ptr<const RestoreSnapshot> restore;
  uint64_t attempt = 0;
};

/// Which state backend keyed operators use (eddy/state/backend_kind.h).
using StateBackendKind = eddy::StateBackendKind;

/// Per-task settings derived from the job (Flink's TaskConfig).
struct TaskOptions {
  /// Backend of keyed operators (default heap). The job spec's `stateBackend`, when set, replaces
  /// it (DeployTasks).
  StateBackendKind state_backend = StateBackendKind::kHeap;
  /// Where RocksDB backends keep their working directories, one unique subdirectory per keyed
  /// operator instance, removed when the task ends (Flink's state.backend.rocksdb.localdir).
  /// Empty (default) = $TMPDIR/eddy-state, or /tmp/eddy-state without TMPDIR.
  std::string local_state_dir;
  /// Tuning of RocksDB backends (each field documents its default); fixed per task.
  RocksDBStateOptions rocksdb;
  /// Bad records an input may skip before the task fails; <0 = unlimited (count and skip).
  int64_t max_bad_records = -1;
  /// Processing-time clock override for tests; nullptr = wall clock.
  std::function<Timestamp()> clock;
  /// Checkpointing and restore; null = neither.
  std::shared_ptr<const CheckpointHooks> checkpoints;
};

/// Metrics of one task (subtask of a vertex), written by the task thread, readable from any
/// thread. Output-side counters are in `IoCounters`.
struct TaskMetrics {
  std::atomic<uint64_t> records_in{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bad_records{0};
  /// Tasks with inputs: time spent processing buffers (including time blocked on output
  /// buffers), ns. Sources do not measure it per record; see `Task::Times`.
  std::atomic<int64_t> busy_ns{0};
  /// Time waiting for input (sources: sleeping because nothing was available), ns.
  std::atomic<int64_t> idle_ns{0};
  /// Steady-clock ns when Run started and ended (0 = not yet).
  std::atomic<int64_t> started_ns{0};
  std::atomic<int64_t> ended_ns{0};
  /// Minimum over the input channels' watermarks, ms (Flink's currentInputWatermark);
  /// INT64_MIN until every input has one.
  std::atomic<int64_t> input_watermark{INT64_MIN};
  /// Latency markers received (and forwarded).
  std::atomic<uint64_t> latency_markers_in{0};
  /// Checkpoint alignment: time the last aligned checkpoint spent between its first and last
  /// barrier (Flink's checkpointAlignmentTime), ns; and the checkpoints this task snapshotted.
  std::atomic<int64_t> last_alignment_ns{0};
  std::atomic<uint64_t> checkpoints_taken{0};
  /// Unaligned checkpoints: in-flight input bytes persisted with the last one, and in total.
  std::atomic<uint64_t> last_in_flight_bytes{0};
  std::atomic<uint64_t> in_flight_bytes_total{0};
};

/// How a task spent its time since it started, ns (Flink's busy / idle / back-pressured time):
/// busy excludes back-pressure; a source's busy time is what is left of its running time.
struct TaskTimes {
  int64_t busy_ns = 0;
  int64_t idle_ns = 0;
  int64_t backpressured_ns = 0;
};

/// End-to-end latency seen by one task for the markers of one source vertex.
struct LatencySeries {
  VertexId source;
  /// Seconds from the marker's creation at the source to its arrival at this task.
  std::unique_ptr<metrics::AtomicHistogram> histogram;
};

/// Timer heap on the task thread; the mailbox loop runs due callbacks between records.
class TaskTimeService final : public ProcessingTimeService {
 public:
  explicit TaskTimeService(std::function<Timestamp()> clock) : clock_(std::move(clock)) {}
  Timestamp Now() override { return clock_ ? clock_() : NowProcessingTime(); }
  void RegisterTimer(Timestamp time, std::function<void(Timestamp)> cb) override;
  /// Runs every callback due at Now(); returns the next due time or Max.
  Timestamp RunDue();
  Timestamp next() const { return heap_.empty() ? Timestamp::Max() : heap_.top().time; }

 private:
  struct Entry {
    Timestamp time;
    uint64_t seq;
    std::function<void(Timestamp)> cb;
    bool operator>(const Entry& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };
  std::function<Timestamp()> clock_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  uint64_t seq_ = 0;
};

/// One parallel instance of a JobVertex: its operator chain, its input channels and its
/// outgoing partitions, driven by a mailbox loop on a thread of its own. Lifecycle: constructed
/// by the executor with all wiring, Run() on its thread until the input ends, it fails, or
/// Cancel(). Threading: Run on the task thread; Cancel and metrics from any thread.
class Task {
 public:
  struct Wiring {
    /// Channel index -> operator input index (0/1) of the chain head; empty for sources.
    std::vector<int> channel_input;
    std::unique_ptr<InputGate> gate;
    /// Outgoing partition for each non-chained StreamEdge leaving this chain.
    std::map<const StreamEdge*, ResultPartition*> writers;
    std::vector<std::unique_ptr<ResultPartition>> partitions;
    /// Output counters shared by this task's partitions.
    std::unique_ptr<IoCounters> io = std::make_unique<IoCounters>();
  };
  Task(const JobGraph& job, VertexId vertex, int subtask, Wiring wiring, TaskOptions options);
  ~Task();

  /// Instantiates and opens the chain, then loops until end of input, failure or cancel.
  Status Run();
  void Cancel();
  /// Source tasks: inject `barrier` (snapshot, then send it downstream) at the next chance.
  /// Any thread.
  void TriggerCheckpoint(CheckpointBarrier barrier);
  /// Checkpoint `id` completed (or was aborted) everywhere. Any thread.
  void NotifyCheckpoint(CheckpointId id, bool completed);
  const std::string& name() const { return name_; }
  int subtask() const { return subtask_; }
  VertexId vertex_id() const { return vertex_.id; }
  InputGate* gate() { return wiring_.gate.get(); }
  const JobVertex& vertex() const { return vertex_; }
  /// Whether the chain head is a source (no inputs).
  bool is_source() const { return is_source_; }
  const TaskMetrics& metrics() const { return metrics_; }
  const IoCounters& io() const { return *wiring_.io; }
  /// Operator counters by chain position (any thread, any time: they are relaxed atomics).
  const std::vector<OperatorCounters>& operator_counters() const { return counters_; }
  /// Operator names by chain position.
  const std::vector<std::string>& operator_names() const { return operator_names_; }
  /// Busy / idle / back-pressured time so far. Any thread.
  TaskTimes Times() const;
  /// Buffers of the output partitions' pools in use (held by this task or in flight to the
  /// consumers) and their total. Any thread.
  std::pair<size_t, size_t> OutputBuffers() const;
  /// One series per source vertex upstream of this task (empty for sources), fixed at
  /// construction; observed when a latency marker arrives. Any thread.
  const std::vector<LatencySeries>& latency() const { return latency_; }

 private:
  Status BuildChain();
  Status RunSource();
  Status RunInputs();
  Status ProcessBuffer(int channel, NetworkBuffer* b);
  /// The frames of a data buffer (or restored channel state) of `channel`.
  Status ProcessData(int channel, const char* data, size_t size);
  /// Next buffer to process: stashed buffers released by a finished alignment first, then the
  /// gate. Buffers of channels blocked by an alignment are stashed, not returned.
  NetworkBuffer* NextBuffer(int& channel);
  void OnBarrier(int channel, const CheckpointBarrier& barrier);
  /// Whether `barrier` is taken unaligned (unaligned mode, and not a savepoint).
  bool IsUnaligned(const CheckpointBarrier& barrier) const;
  /// Every open channel delivered the pending barrier: snapshot (aligned) or acknowledge the
  /// snapshot taken at the first barrier with the recorded channel state (unaligned).
  void CompleteAlignment();
  /// Snapshots the chain for `barrier` (after alignment, or at the first barrier when unaligned)
  /// and sends the barrier downstream. Aligned: the upload and acknowledgement follow at once;
  /// unaligned: they wait in `deferred_ack_` for the channel state (`DispatchAck`).
  void PerformCheckpoint(const CheckpointBarrier& barrier, int64_t alignment_ns);
  /// A snapshot's synchronous half (worker/src/pending_ack.h).
  struct PendingAck;
  /// Hands a snapshot's slow half (uploads, then the acknowledgement) to the upload thread.
  void DispatchAck(PendingAck pending);
  void EndAlignment();
  /// Feeds restored in-flight data (unaligned checkpoints) through the input path, channel by
  /// channel, before the network is read.
  Status ReplayRestoredChannels();
  /// Every open channel delivered the pending barrier.
  bool AlignmentComplete() const;
  void ProcessMail();
  Status RestoreChain(bool after_open);
  /// Unaligned checkpoints: this subtask's in-flight data from the chain head's snapshot `st`
  /// into `restored_channels_`; refuses a changed parallelism or channel count.
  Status RestoreChannelState(const proto::OperatorState& st, storage::ObjectStore& store,
                             const std::string& what);
  void OnLatencyMarker(std::string_view payload);
  void EmitLatencyMarkers(int64_t now_ms);
  void FlushOutputs();
  void FinishChain();
  std::chrono::steady_clock::time_point NextWake();

  const JobGraph& job_;
  const JobVertex& vertex_;
  int subtask_;
  std::string name_;
  Wiring wiring_;
  TaskOptions options_;
  TaskMetrics metrics_;
  bool is_source_ = false;
  std::vector<std::string> operator_names_;
  std::vector<LatencySeries> latency_;
  /// Sources: latencyTrackingInterval in ms (0 = off) and when the next marker is due (steady
  /// ms; max = never).
  int64_t latency_interval_ms_ = 0;
  int64_t next_marker_ms_ = INT64_MAX;
  std::atomic<bool> cancelled_{false};
  TaskTimeService time_service_;

  std::vector<std::unique_ptr<StreamOperatorBase>> operators_;  // chain order, head first
  size_t opened_ = 0;  // operators opened, counted from the chain's tail
  std::vector<std::unique_ptr<OperatorContext>> contexts_;
  std::vector<OperatorCounters> counters_;
  std::vector<std::unique_ptr<OutputBase>> outputs_;
  std::vector<std::unique_ptr<KeyedStateBackend>> backends_;
  std::vector<std::unique_ptr<OperatorStateStore>> op_states_;
  std::vector<std::unique_ptr<RecordDecoder>> decoders_;  // per head input
  std::vector<ChannelReader> readers_;                    // per channel
  std::vector<WatermarkCombiner> valves_;                 // per head input
  std::vector<std::vector<int>> input_channels_;          // head input -> local channel numbers
  std::vector<int> channel_local_;                        // channel -> index within its input
  int channels_ended_ = 0;
  Status failure_;  // set by operators through OperatorContext::Fail
  int64_t next_flush_ms_ = INT64_MAX;

  // Mailbox: control messages from other threads, run on the task thread between buffers.
  struct Mail {
    enum class Kind : uint8_t { kTrigger, kComplete, kAbort } kind;
    CheckpointBarrier barrier;
  };
  std::mutex mail_mu_;
  std::vector<Mail> mail_;
  std::atomic<bool> has_mail_{false};

  // Barrier handling (task thread). Alignment holds back the channels that delivered the pending
  // barrier; their buffers wait in `stash_` (bounded by the channel's credits or its producer's
  // pool) and go to `replay_` when every open channel delivered it.
  std::vector<bool> channel_ended_;
  std::vector<bool> got_barrier_;  // delivered the pending barrier
  std::vector<bool> blocked_;      // ... and is held back until alignment ends (exactly-once)
  std::vector<std::deque<NetworkBuffer*>> stash_;
  std::deque<std::pair<int, NetworkBuffer*>> replay_;
  CheckpointBarrier pending_barrier_;  // id 0 = none pending
  // Unaligned: the pending checkpoint was snapshotted at its first barrier; `recording_` channels
  // have not delivered it yet and append every data buffer to `channel_state_` (which starts with
  // the partial frame their reader held at the snapshot). The acknowledgement waits in
  // `deferred_ack_` until every open channel delivered the barrier.
  bool pending_unaligned_ = false;
  std::vector<bool> recording_;
  std::vector<std::string> channel_state_;
  std::unique_ptr<PendingAck> deferred_ack_;
  /// Restored in-flight data by channel, replayed before the first network read.
  std::vector<std::pair<int, std::string>> restored_channels_;
  int64_t alignment_start_ns_ = 0;
  int64_t last_checkpoint_ = 0;  // highest checkpoint id snapshotted or given up
  /// stop-with-savepoint: the savepoint after which this task ends (0 = none), and whether a
  /// source stopped producing for it.
  int64_t stop_after_ = 0;
  bool source_stopped_ = false;
  bool stop_now_ = false;
  bool drain_end_ = false;  // a source drained for stop-with-savepoint: its input ends now
};

}  // namespace eddy::worker
