#include "eddy/graph/stream_graph.h"

#include <algorithm>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "eddy/state/key_groups.h"

namespace eddy {

std::string_view PartitionerName(PartitionerKind k) {
  switch (k) {
    case PartitionerKind::kForward:
      return "FORWARD";
    case PartitionerKind::kHash:
      return "HASH";
    case PartitionerKind::kRebalance:
      return "REBALANCE";
    case PartitionerKind::kRescale:
      return "RESCALE";
    case PartitionerKind::kShuffle:
      return "SHUFFLE";
    case PartitionerKind::kBroadcast:
      return "BROADCAST";
    case PartitionerKind::kGlobal:
      return "GLOBAL";
    case PartitionerKind::kCustom:
      return "CUSTOM";
  }
  return "?";
}

NodeId StreamGraph::AddNode(StreamNode node) {
  node.id = NodeId(static_cast<int32_t>(nodes_.size()));
  if (node.uid.empty()) node.uid = "node-" + std::to_string(node.id.value());
  nodes_.push_back(std::move(node));
  return nodes_.back().id;
}

void StreamGraph::AddEdge(StreamEdge edge) {
  edges_.push_back(std::move(edge));
}

std::vector<const StreamEdge*> StreamGraph::InEdges(NodeId id) const {
  std::vector<const StreamEdge*> r;
  for (const auto& e : edges_) {
    if (e.target == id) r.push_back(&e);
  }
  return r;
}

std::vector<const StreamEdge*> StreamGraph::OutEdges(NodeId id) const {
  std::vector<const StreamEdge*> r;
  for (const auto& e : edges_) {
    if (e.source == id) r.push_back(&e);
  }
  return r;
}

int StreamGraph::EffectiveMaxParallelism() const {
  if (max_parallelism > 0) return max_parallelism;
  int p = default_parallelism;
  for (const auto& n : nodes_) p = std::max(p, n.parallelism);
  return DefaultMaxParallelism(p);
}

Status StreamGraph::Validate() const {
  int max_par = EffectiveMaxParallelism();
  for (const auto& n : nodes_) {
    if (n.parallelism < 1) {
      return Status::InvalidArgument("operator '" + n.name + "': parallelism must be >= 1");
    }
    int mp = n.max_parallelism > 0 ? n.max_parallelism : max_par;
    if (n.parallelism > mp) {
      return Status::InvalidArgument("operator '" + n.name + "': parallelism " +
                                     std::to_string(n.parallelism) + " exceeds max parallelism " +
                                     std::to_string(mp));
    }
    auto in = InEdges(n.id);
    if (!n.is_source && in.empty()) {
      return Status::InvalidArgument("operator '" + n.name + "' has no input");
    }
    if (n.factory) {
      auto op = n.factory();
      for (int i = 0; i < op->num_inputs(); ++i) {
        bool found =
            std::any_of(in.begin(), in.end(), [&](auto* e) { return e->target_input == i; });
        if (!found) {
          return Status::InvalidArgument("operator '" + n.name + "' input " +
                                         std::to_string(i + 1) + " is not connected");
        }
      }
    }
  }
  for (const auto& e : edges_) {
    const auto& s = node(e.source);
    const auto& t = node(e.target);
    if (e.partitioner == PartitionerKind::kForward && s.parallelism != t.parallelism) {
      return Status::InvalidArgument("forward edge '" + s.name + "' -> '" + t.name +
                                     "' joins different parallelisms (" +
                                     std::to_string(s.parallelism) + " vs " +
                                     std::to_string(t.parallelism) + "); use rebalance or rescale");
    }
  }
  return Status::Ok();
}

Status StreamGraph::Finalize() {
  for (auto& e : edges_) {
    if (!e.default_partitioner) continue;
    e.partitioner = node(e.source).parallelism == node(e.target).parallelism
                        ? PartitionerKind::kForward
                        : PartitionerKind::kRebalance;
  }
  return Validate();
}

Result<JobGraph> JobGraph::FromStreamGraph(StreamGraph& g) {
  EDDY_RETURN_NOT_OK(g.Finalize());
  JobGraph jg;
  jg.graph_ = &g;
  const int max_par = g.EffectiveMaxParallelism();

  auto chainable = [&](const StreamEdge& e) {
    const auto& up = g.node(e.source);
    const auto& down = g.node(e.target);
    return g.chaining_enabled && e.partitioner == PartitionerKind::kForward &&
           up.parallelism == down.parallelism && up.slot_sharing_group == down.slot_sharing_group &&
           down.chaining == ChainingStrategy::kAlways && up.chaining != ChainingStrategy::kNever &&
           !down.is_source && g.InEdges(down.id).size() == 1;
  };

  // Chain heads: nodes whose single input edge is not chainable.
  std::vector<bool> is_head(g.nodes().size(), true);
  for (const auto& e : g.edges()) {
    if (chainable(e)) is_head[static_cast<size_t>(e.target.value())] = false;
  }
  // Build vertices in a topological order of heads (sources first).
  std::vector<int> order;
  {
    std::vector<int> indeg(g.nodes().size(), 0);
    for (const auto& e : g.edges()) indeg[static_cast<size_t>(e.target.value())]++;
    std::vector<int> ready;
    for (size_t i = 0; i < indeg.size(); ++i) {
      if (indeg[i] == 0) ready.push_back(static_cast<int>(i));
    }
    while (!ready.empty()) {
      int n = ready.front();
      ready.erase(ready.begin());
      order.push_back(n);
      for (const auto* e : g.OutEdges(NodeId(n))) {
        if (--indeg[static_cast<size_t>(e->target.value())] == 0)
          ready.push_back(e->target.value());
      }
    }
    if (order.size() != g.nodes().size()) {
      return Status::InvalidArgument("the job graph has a cycle (iterations are not supported)");
    }
  }
  for (int n : order) {
    if (!is_head[static_cast<size_t>(n)]) continue;
    JobVertex v;
    v.id = VertexId(static_cast<int32_t>(jg.vertices_.size()));
    v.head = NodeId(n);
    const auto& head = g.node(v.head);
    v.parallelism = head.parallelism;
    v.max_parallelism = head.max_parallelism > 0 ? head.max_parallelism : max_par;
    v.slot_sharing_group = head.slot_sharing_group;
    // Depth-first over chainable out edges.
    std::function<void(NodeId)> visit = [&](NodeId id) {
      v.nodes.push_back(id);
      jg.node_to_vertex_[id.value()] = v.id;
      for (const auto* e : g.OutEdges(id)) {
        if (chainable(*e)) visit(e->target);
      }
    };
    visit(v.head);
    std::string name;
    for (NodeId id : v.nodes) {
      if (!name.empty()) name += " -> ";
      const auto& sn = g.node(id);
      name += sn.is_source ? "Source: " + sn.name : sn.name;
    }
    v.name = name;
    jg.vertices_.push_back(std::move(v));
  }
  for (const auto& e : g.edges()) {
    VertexId s = jg.node_to_vertex_.at(e.source.value());
    VertexId t = jg.node_to_vertex_.at(e.target.value());
    if (s == t) continue;  // chained
    jg.edges_.push_back(JobEdge{s, t, &e});
  }
  return jg;
}

int JobGraph::RequiredSlots() const {
  std::map<std::string, int> per_group;
  for (const auto& v : vertices_) {
    per_group[v.slot_sharing_group] = std::max(per_group[v.slot_sharing_group], v.parallelism);
  }
  int total = 0;
  for (const auto& [g, p] : per_group) total += p;
  return total;
}

std::string JobGraph::ToText() const {
  std::string s = "Job: " + graph_->job_name + " (max parallelism " +
                  std::to_string(graph_->EffectiveMaxParallelism()) + ", slots " +
                  std::to_string(RequiredSlots()) + ")\n";
  for (const auto& v : vertices_) {
    s += "  [" + std::to_string(v.id.value()) + "] " + v.name +
         "  parallelism=" + std::to_string(v.parallelism);
    if (v.slot_sharing_group != "default") s += " slotSharingGroup=" + v.slot_sharing_group;
    s += "\n";
    for (const auto& e : edges_) {
      if (e.target != v.id) continue;
      s += "      <- [" + std::to_string(e.source.value()) + "] " +
           std::string(PartitionerName(e.stream_edge->partitioner));
      if (e.stream_edge->side_tag != 0) {
        const auto& src = graph_->node(e.stream_edge->source);
        auto it = src.side_names.find(e.stream_edge->side_tag);
        s += " (side output " + (it != src.side_names.end() ? it->second : "?") + ")";
      }
      if (e.stream_edge->target_input != 0) s += " input 2";
      s += "\n";
    }
  }
  return s;
}

std::string JobGraph::ToDot() const {
  std::string s = "digraph \"" + graph_->job_name + "\" {\n  rankdir=LR;\n";
  for (const auto& v : vertices_) {
    s += "  v" + std::to_string(v.id.value()) + " [shape=box, label=\"" + v.name +
         "\\nparallelism " + std::to_string(v.parallelism) + "\"];\n";
  }
  for (const auto& e : edges_) {
    s += "  v" + std::to_string(e.source.value()) + " -> v" + std::to_string(e.target.value()) +
         " [label=\"" + std::string(PartitionerName(e.stream_edge->partitioner)) + "\"];\n";
  }
  return s + "}\n";
}

std::string JobGraph::ToJson() const {
  nlohmann::json j;
  j["name"] = graph_->job_name;
  j["maxParallelism"] = graph_->EffectiveMaxParallelism();
  j["slots"] = RequiredSlots();
  j["nodes"] = nlohmann::json::array();
  for (const auto& v : vertices_) {
    nlohmann::json n;
    n["id"] = v.id.value();
    n["description"] = v.name;
    n["parallelism"] = v.parallelism;
    n["slotSharingGroup"] = v.slot_sharing_group;
    n["operators"] = nlohmann::json::array();
    for (NodeId id : v.nodes) {
      n["operators"].push_back({{"name", graph_->node(id).name}, {"uid", graph_->node(id).uid}});
    }
    n["inputs"] = nlohmann::json::array();
    for (const auto& e : edges_) {
      if (e.target != v.id) continue;
      n["inputs"].push_back(
          {{"id", e.source.value()},
           {"ship_strategy", std::string(PartitionerName(e.stream_edge->partitioner))},
           {"input", e.stream_edge->target_input}});
    }
    j["nodes"].push_back(n);
  }
  return j.dump(2);
}

}  // namespace eddy
