#include "eddy/control/local_executor.h"

#include <chrono>
#include <map>
#include <thread>
#include <tuple>

namespace eddy::control {

using worker::InputGate;
using worker::LocalBufferPool;
using worker::ResultPartition;
using worker::Task;

namespace {

/// Consumers a producer subtask sends to on an edge (Flink's distribution patterns).
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

void LocalExecutor::Cancel() {
  cancelled_ = true;
  std::lock_guard lock(mu_);
  for (auto* t : running_) t->Cancel();
}

JobResult LocalExecutor::Execute(StreamGraph& graph) {
  JobResult result;
  auto start = std::chrono::steady_clock::now();
  auto jg_or = JobGraph::FromStreamGraph(graph);
  if (!jg_or.ok()) {
    result.status = jg_or.status();
    return result;
  }
  const JobGraph& jg = *jg_or;
  worker::NetworkBufferPool global(options_.network_buffers);

  // Channels of every consumer subtask: (edge, producer, consumer) -> channel number.
  std::vector<std::vector<Task::Wiring>> wiring(jg.vertices().size());
  for (const auto& v : jg.vertices())
    wiring[static_cast<size_t>(v.id.value())].resize(static_cast<size_t>(v.parallelism));
  std::map<std::tuple<size_t, int, int>, int> channel_of;
  for (size_t ei = 0; ei < jg.edges().size(); ++ei) {
    const auto& e = jg.edges()[ei];
    const auto& sv = jg.vertex(e.source);
    const auto& tv = jg.vertex(e.target);
    for (int p = 0; p < sv.parallelism; ++p) {
      for (int c : ConsumersOf(e.stream_edge->partitioner, p, sv.parallelism, tv.parallelism)) {
        auto& w = wiring[static_cast<size_t>(tv.id.value())][static_cast<size_t>(c)];
        channel_of[{ei, p, c}] = static_cast<int>(w.channel_input.size());
        w.channel_input.push_back(e.stream_edge->target_input);
      }
    }
  }
  for (auto& per_vertex : wiring) {
    for (auto& w : per_vertex) {
      if (!w.channel_input.empty())
        w.gate = std::make_unique<InputGate>(static_cast<int>(w.channel_input.size()));
    }
  }
  // Result partitions, owned by the producing task's wiring.
  std::vector<std::vector<std::unique_ptr<Task>>> tasks(jg.vertices().size());
  for (size_t ei = 0; ei < jg.edges().size(); ++ei) {
    const auto& e = jg.edges()[ei];
    const auto& sv = jg.vertex(e.source);
    const auto& tv = jg.vertex(e.target);
    for (int p = 0; p < sv.parallelism; ++p) {
      std::vector<ResultPartition::Target> targets;
      for (int c : ConsumersOf(e.stream_edge->partitioner, p, sv.parallelism, tv.parallelism)) {
        auto& cw = wiring[static_cast<size_t>(tv.id.value())][static_cast<size_t>(c)];
        targets.push_back({cw.gate.get(), channel_of[{ei, p, c}]});
      }
      auto pool = LocalBufferPool::Make(&global, targets.size() * 2 + 8);
      if (!pool.ok()) {
        result.status = pool.status();
        return result;
      }
      auto& pw = wiring[static_cast<size_t>(sv.id.value())][static_cast<size_t>(p)];
      // The executor's flag unblocks producers waiting for buffers when the job is cancelled.
      auto part = std::make_unique<ResultPartition>(std::move(*pool), std::move(targets),
                                                    graph.buffer_timeout, pw.io.get(), &cancelled_);
      pw.writers[e.stream_edge] = part.get();
      pw.partitions.push_back(std::move(part));
    }
  }
  for (const auto& v : jg.vertices()) {
    for (int s = 0; s < v.parallelism; ++s) {
      tasks[static_cast<size_t>(v.id.value())].push_back(std::make_unique<Task>(
          jg, v.id, s, std::move(wiring[static_cast<size_t>(v.id.value())][static_cast<size_t>(s)]),
          options_.task));
    }
  }
  std::vector<Task*> all;
  for (auto& tv : tasks) {
    for (auto& t : tv) all.push_back(t.get());
  }
  {
    std::lock_guard lock(mu_);
    running_ = all;
  }
  std::vector<Status> statuses(all.size());
  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};
  for (size_t i = 0; i < all.size(); ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = all[i]->Run();
      if (!statuses[i].ok() && !failed.exchange(true)) {
        // One failed task fails the job: stop the others (Flink's full failover, no restart here).
        cancelled_ = true;
        std::lock_guard lock(mu_);
        for (auto* t : running_) t->Cancel();
      }
    });
  }
  if (cancelled_) Cancel();
  for (auto& t : threads) t.join();
  {
    std::lock_guard lock(mu_);
    running_.clear();
  }
  // The first real failure wins over the cancellations it caused.
  for (const auto& s : statuses) {
    if (!s.ok() && s.code() != StatusCode::kCancelled) {
      result.status = s;
      break;
    }
  }
  if (result.status.ok()) {
    for (const auto& s : statuses) {
      if (!s.ok()) {
        result.status = s;
        break;
      }
    }
  }
  for (size_t vi = 0; vi < tasks.size(); ++vi) {
    for (auto& t : tasks[vi]) {
      TaskSummary ts;
      ts.name = t->name();
      ts.records_in = t->metrics().records_in.load();
      ts.records_out = t->io().records_out.load();
      ts.backpressured_ms = static_cast<double>(t->io().backpressured_ns.load()) / 1e6;
      ts.bad_records = t->metrics().bad_records.load();
      for (const auto& c : t->operator_counters()) {
        ts.bad_records += c.bad_records;
        ts.late_records_dropped += c.late_records_dropped;
      }
      ts.busy_ms = static_cast<double>(t->metrics().busy_ns.load()) / 1e6;
      result.tasks.push_back(ts);
    }
  }
  result.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace eddy::control
