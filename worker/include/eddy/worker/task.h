#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "eddy/graph/stream_graph.h"
#include "eddy/operators/operator.h"
#include "eddy/state/timers.h"
#include "eddy/worker/channels.h"

namespace eddy::worker {

/// Which state backend keyed operators use.
enum class StateBackendKind : uint8_t { kHeap, kRocksDB };

/// Per-task settings derived from the job (Flink's TaskConfig).
struct TaskOptions {
  StateBackendKind state_backend = StateBackendKind::kHeap;
  /// Bad records an input may skip before the task fails; <0 = unlimited (count and skip).
  int64_t max_bad_records = -1;
  /// Processing-time clock override for tests; nullptr = wall clock.
  std::function<Timestamp()> clock;
};

/// Metrics of one task (subtask of a vertex), readable from any thread.
struct TaskMetrics {
  std::atomic<uint64_t> records_in{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bad_records{0};
  std::atomic<int64_t> busy_ns{0};
  std::atomic<int64_t> idle_ns{0};
  std::atomic<int64_t> input_watermark{INT64_MIN};
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
  const std::string& name() const { return name_; }
  int subtask() const { return subtask_; }
  VertexId vertex_id() const { return vertex_.id; }
  InputGate* gate() { return wiring_.gate.get(); }
  const TaskMetrics& metrics() const { return metrics_; }
  const IoCounters& io() const { return *wiring_.io; }
  /// Operator counters by chain position, valid after Run() returned.
  const std::vector<OperatorCounters>& operator_counters() const { return counters_; }

 private:
  Status BuildChain();
  Status RunSource();
  Status RunInputs();
  Status ProcessBuffer(int channel, NetworkBuffer* b);
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
  std::atomic<bool> cancelled_{false};
  TaskTimeService time_service_;

  std::vector<std::unique_ptr<StreamOperatorBase>> operators_;  // chain order, head first
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
};

}  // namespace eddy::worker
