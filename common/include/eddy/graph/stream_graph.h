#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eddy/graph/partitioners.h"
#include "eddy/operators/operator.h"
#include "eddy/runtime/type_info.h"
#include "eddy/state/backend_kind.h"

namespace eddy {

/// Which notion of time windows and timers use by default.
enum class TimeCharacteristic : uint8_t { kEventTime, kProcessingTime, kIngestionTime };

/// Whether an operator may be chained to its neighbours (Flink's ChainingStrategy).
enum class ChainingStrategy : uint8_t {
  kAlways,  ///< chain to predecessor and successors when the rules allow
  kHead,    ///< start a new chain here (startNewChain)
  kNever,   ///< never chain (disableChaining)
};

using OperatorFactory = std::function<std::unique_ptr<StreamOperatorBase>()>;
/// Makes the channel selector of an edge for the record type of its source; the kind is passed so
/// that default edges can be resolved (forward or rebalance) after parallelisms are final.
using SelectorFactory =
    std::function<std::unique_ptr<ChannelSelectorBase>(PartitionerKind, int max_parallelism)>;

/// One operator of the program as the user wrote it.
struct StreamNode {
  NodeId id;
  std::string name;  ///< e.g. "Map", "Window(TumblingEventTimeWindows(10s), count)"
  std::string uid;   ///< stable id for state matching; derived when empty
  int parallelism = 1;
  int max_parallelism = 0;  ///< 0 = the job's
  std::string slot_sharing_group = "default";
  ChainingStrategy chaining = ChainingStrategy::kAlways;
  bool is_source = false;
  bool is_sink = false;
  TypeInfoPtr out_type;
  std::map<int, TypeInfoPtr> side_types;  ///< side-output tag -> its type
  std::map<int, std::string> side_names;  ///< side-output tag -> its name
  OperatorFactory factory;
};

/// A data dependency between two nodes.
struct StreamEdge {
  NodeId source;
  NodeId target;
  int target_input = 0;  ///< 0 or 1 for two-input operators
  int side_tag = 0;      ///< 0 = main output
  PartitionerKind partitioner = PartitionerKind::kForward;
  /// No partitioner chosen by the user: forward when parallelisms match, else rebalance.
  bool default_partitioner = false;
  SelectorFactory make_selector;
};

/// The logical program (Flink's StreamGraph). Built by the DataStream API or the job-spec
/// compiler; immutable once handed to the runtime.
class StreamGraph {
 public:
  std::string job_name = "job";
  int default_parallelism = 1;
  int max_parallelism = 0;  ///< 0 = derived from the highest parallelism
  bool chaining_enabled = true;
  TimeCharacteristic time = TimeCharacteristic::kEventTime;
  /// Buffer timeout for network/local channels; 0 = flush after every record.
  Duration buffer_timeout = Duration::Millis(10);
  /// Flink's latencyTrackingInterval: every source subtask emits a latency marker this often;
  /// 0 (the default, as in Flink) = no markers. Job spec `latencyTrackingInterval`.
  Duration latency_tracking_interval = Duration::Millis(0);
  /// The keyed state backend the job asks for (job spec `stateBackend`); unset = the process's
  /// default (worker::TaskOptions::state_backend, heap unless configured).
  std::optional<StateBackendKind> state_backend;

  NodeId AddNode(StreamNode node);
  void AddEdge(StreamEdge edge);
  StreamNode& node(NodeId id) { return nodes_[static_cast<size_t>(id.value())]; }
  const StreamNode& node(NodeId id) const { return nodes_[static_cast<size_t>(id.value())]; }
  const std::vector<StreamNode>& nodes() const { return nodes_; }
  std::vector<StreamNode>& mutable_nodes() { return nodes_; }
  const std::vector<StreamEdge>& edges() const { return edges_; }
  std::vector<const StreamEdge*> InEdges(NodeId id) const;
  std::vector<const StreamEdge*> OutEdges(NodeId id) const;
  int EffectiveMaxParallelism() const;
  /// Resolves default partitioners and validates. Idempotent.
  Status Finalize();
  /// Checks the graph: forward edges need equal parallelism, parallelism <= max parallelism,
  /// every non-source node has inputs, two-input nodes have both.
  Status Validate() const;

 private:
  std::vector<StreamNode> nodes_;
  std::vector<StreamEdge> edges_;
};

/// A chain of operators that runs as one task (Flink's JobVertex).
struct JobVertex {
  VertexId id;
  std::string name;           ///< "Source: readings -> Filter -> Map"
  std::vector<NodeId> nodes;  ///< chain members, head first, topologically ordered
  NodeId head;
  int parallelism = 1;
  int max_parallelism = 128;
  std::string slot_sharing_group = "default";
};

/// A non-chained StreamEdge between two vertices.
struct JobEdge {
  VertexId source;
  VertexId target;
  const StreamEdge* stream_edge = nullptr;
};

/// The optimized graph (Flink's JobGraph): operators chained into vertices.
class JobGraph {
 public:
  /// Finalizes and chains `graph` (which must outlive the JobGraph).
  static Result<JobGraph> FromStreamGraph(StreamGraph& graph);

  const StreamGraph& stream_graph() const { return *graph_; }
  const std::vector<JobVertex>& vertices() const { return vertices_; }
  const std::vector<JobEdge>& edges() const { return edges_; }
  const JobVertex& vertex(VertexId id) const { return vertices_[static_cast<size_t>(id.value())]; }
  VertexId VertexOf(NodeId n) const { return node_to_vertex_.at(n.value()); }
  /// Slots needed: the sum over slot-sharing groups of the highest parallelism in each.
  int RequiredSlots() const;

  /// Human-readable plan, Graphviz dot, or JSON (Flink's /jobs/:id/plan shape).
  std::string ToText() const;
  std::string ToDot() const;
  std::string ToJson() const;

 private:
  const StreamGraph* graph_ = nullptr;
  std::vector<JobVertex> vertices_;
  std::vector<JobEdge> edges_;
  std::map<int, VertexId> node_to_vertex_;
};

}  // namespace eddy
