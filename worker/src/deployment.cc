#include "eddy/worker/deployment.h"

namespace eddy::worker {

namespace {

std::vector<int> ConsumersOf(PartitionerKind kind, int producer, int ps, int pt) {
  std::vector<int> r;
  if (kind == PartitionerKind::kForward) {
    r.push_back(producer);
  } else if (kind == PartitionerKind::kRescale) {
    if (ps >= pt) {
      r.push_back(static_cast<int>(static_cast<int64_t>(producer) * pt / ps));
    } else {
      int from = static_cast<int>(static_cast<int64_t>(producer) * pt / ps);
      int to = static_cast<int>(static_cast<int64_t>(producer + 1) * pt / ps);
      for (int j = from; j < to; ++j) r.push_back(j);
    }
  } else {
    for (int j = 0; j < pt; ++j) r.push_back(j);
  }
  return r;
}

}  // namespace

ChannelPlan::ChannelPlan(const JobGraph& jg) {
  inputs_.resize(jg.vertices().size());
  for (const auto& v : jg.vertices())
    inputs_[static_cast<size_t>(v.id.value())].resize(static_cast<size_t>(v.parallelism));
  outputs_.resize(jg.edges().size());
  for (size_t ei = 0; ei < jg.edges().size(); ++ei) {
    const auto& e = jg.edges()[ei];
    const auto& sv = jg.vertex(e.source);
    const auto& tv = jg.vertex(e.target);
    outputs_[ei].resize(static_cast<size_t>(sv.parallelism));
    for (int p = 0; p < sv.parallelism; ++p) {
      for (int c : ConsumersOf(e.stream_edge->partitioner, p, sv.parallelism, tv.parallelism)) {
        auto& in = inputs_[static_cast<size_t>(tv.id.value())][static_cast<size_t>(c)];
        outputs_[ei][static_cast<size_t>(p)].push_back({c, static_cast<int>(in.size())});
        in.push_back({static_cast<uint32_t>(ei), p, e.stream_edge->target_input});
      }
    }
  }
}

Result<std::vector<std::unique_ptr<Task>>> DeployTasks(const JobGraph& jg,
                                                       const DeploymentOptions& o) {
  ChannelPlan plan(jg);
  auto local = [&](VertexId v, int s) { return !o.is_local || o.is_local(v, s); };
  std::vector<std::vector<Task::Wiring>> wiring(jg.vertices().size());
  for (const auto& v : jg.vertices()) {
    auto& per = wiring[static_cast<size_t>(v.id.value())];
    per.resize(static_cast<size_t>(v.parallelism));
    for (int s = 0; s < v.parallelism; ++s) {
      if (!local(v.id, s)) continue;
      auto& w = per[static_cast<size_t>(s)];
      const auto& ins = plan.inputs(v.id, s);
      if (ins.empty()) continue;
      std::vector<NetworkService::InboundChannel> remote;
      for (size_t ch = 0; ch < ins.size(); ++ch) {
        w.channel_input.push_back(ins[ch].input);
        VertexId src = jg.edges()[ins[ch].edge].source;
        if (!local(src, ins[ch].producer)) {
          ChannelKey key{o.attempt, ins[ch].edge, static_cast<uint32_t>(ins[ch].producer),
                         static_cast<uint32_t>(s)};
          remote.push_back({key, static_cast<int>(ch), o.endpoint_of(src, ins[ch].producer)});
        }
      }
      w.gate = std::make_unique<InputGate>(static_cast<int>(ins.size()));
      if (!remote.empty()) {
        if (!o.network) return Status::Internal("remote channels without a network service");
        EDDY_RETURN_NOT_OK(o.network->AddInbound(w.gate.get(), std::move(remote)));
      }
    }
  }
  for (size_t ei = 0; ei < jg.edges().size(); ++ei) {
    const auto& e = jg.edges()[ei];
    const auto& sv = jg.vertex(e.source);
    for (int p = 0; p < sv.parallelism; ++p) {
      if (!local(e.source, p)) continue;
      std::vector<ResultPartition::Target> targets;
      for (const auto& out : plan.outputs(ei, p)) {
        ResultPartition::Target t;
        if (local(e.target, out.consumer)) {
          auto& cw =
              wiring[static_cast<size_t>(e.target.value())][static_cast<size_t>(out.consumer)];
          t.gate = cw.gate.get();
          t.channel = out.gate_channel;
        } else {
          ChannelKey key{o.attempt, static_cast<uint32_t>(ei), static_cast<uint32_t>(p),
                         static_cast<uint32_t>(out.consumer)};
          t.remote = o.network->AddOutbound(key, o.endpoint_of(e.target, out.consumer));
        }
        targets.push_back(t);
      }
      EDDY_ASSIGN_OR_RETURN(
          auto pool,
          LocalBufferPool::Make(o.global, targets.size() * 2 + o.partition_extra_buffers));
      auto& pw = wiring[static_cast<size_t>(e.source.value())][static_cast<size_t>(p)];
      auto part = std::make_unique<ResultPartition>(std::move(pool), std::move(targets),
                                                    o.buffer_timeout, pw.io.get(), o.cancelled);
      pw.writers[e.stream_edge] = part.get();
      pw.partitions.push_back(std::move(part));
    }
  }
  TaskOptions task_options = o.task;
  if (jg.stream_graph().state_backend)
    task_options.state_backend = *jg.stream_graph().state_backend;
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& v : jg.vertices()) {
    for (int s = 0; s < v.parallelism; ++s) {
      if (!local(v.id, s)) continue;
      tasks.push_back(std::make_unique<Task>(
          jg, v.id, s, std::move(wiring[static_cast<size_t>(v.id.value())][static_cast<size_t>(s)]),
          task_options));
    }
  }
  return tasks;
}

}  // namespace eddy::worker
