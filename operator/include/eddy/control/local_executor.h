#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "eddy/graph/stream_graph.h"
#include "eddy/worker/task.h"

namespace eddy::control {

/// Options of a single-process run (`eddy run`): every subtask on a thread of this process.
struct LocalExecutorOptions {
  /// Network buffers (32 KiB each) shared by all tasks of the run. Default 4096 = 128 MiB budget;
  /// buffers are only allocated for the partitions that exist.
  size_t network_buffers = 4096;
  worker::TaskOptions task;
};

/// What a finished run reports per task.
struct TaskSummary {
  std::string name;
  uint64_t records_in = 0;
  uint64_t records_out = 0;
  uint64_t bad_records = 0;
  uint64_t late_records_dropped = 0;
  double busy_ms = 0;
  double backpressured_ms = 0;
};

struct JobResult {
  Status status;
  double elapsed_ms = 0;
  std::vector<TaskSummary> tasks;
};

/// Runs a StreamGraph to completion in this process (Flink's MiniCluster). Lifecycle: Execute
/// blocks until every task ended; Cancel (any thread) stops a running execution.
class LocalExecutor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options = {}) : options_(std::move(options)) {}
  JobResult Execute(StreamGraph& graph);
  /// Asks a running Execute to stop; it returns with a Cancelled status.
  void Cancel();

 private:
  LocalExecutorOptions options_;
  std::mutex mu_;
  std::vector<worker::Task*> running_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace eddy::control
