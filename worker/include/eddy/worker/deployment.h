#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eddy/graph/stream_graph.h"
#include "eddy/worker/network.h"
#include "eddy/worker/task.h"

namespace eddy::worker {

/// Every channel of an execution, computed from the JobGraph alone so that all processes agree:
/// for each edge and producer subtask the consumer subtasks it feeds (Flink's distribution
/// patterns: forward = pointwise 1:1, rescale = pointwise ranges, else all-to-all), and the
/// number each channel has in its consumer's input gate.
class ChannelPlan {
 public:
  struct Out {
    int consumer;
    int gate_channel;
  };
  struct In {
    uint32_t edge;
    int producer;
    int input;  // operator input of the consumer's chain head (0/1)
  };
  explicit ChannelPlan(const JobGraph& jg);
  /// Consumers of producer subtask `p` on edge `e`, in sub-partition order.
  const std::vector<Out>& outputs(size_t e, int p) const {
    return outputs_[e][static_cast<size_t>(p)];
  }
  /// The gate channels of subtask `s` of vertex `v`, in channel order.
  const std::vector<In>& inputs(VertexId v, int s) const {
    return inputs_[static_cast<size_t>(v.value())][static_cast<size_t>(s)];
  }

 private:
  std::vector<std::vector<std::vector<Out>>> outputs_;
  std::vector<std::vector<std::vector<In>>> inputs_;
};

/// The subtasks of one execution attempt that run in this process, wired: local channels hand
/// buffers to gates directly, remote ones go through the NetworkService.
struct DeploymentOptions {
  NetworkBufferPool* global = nullptr;
  Duration buffer_timeout = Duration::Millis(100);
  /// Wakes producers blocked on buffers when the attempt is cancelled.
  const std::atomic<bool>* cancelled = nullptr;
  TaskOptions task;
  /// Whether subtask s of vertex v runs here; empty = everything is local.
  std::function<bool(VertexId, int)> is_local;
  /// For remote placements: the data endpoint of the worker running subtask s of vertex v.
  std::function<std::string(VertexId, int)> endpoint_of;
  NetworkService* network = nullptr;
  uint64_t attempt = 0;
  /// Buffers per produced partition: 2 per sub-partition plus this many.
  size_t partition_extra_buffers = 8;
};

/// Builds the local tasks (vertex order, then subtask) with their gates and partitions and
/// registers their remote channels. Errors: the buffer budget is short.
Result<std::vector<std::unique_ptr<Task>>> DeployTasks(const JobGraph& jg,
                                                       const DeploymentOptions& options);

}  // namespace eddy::worker
