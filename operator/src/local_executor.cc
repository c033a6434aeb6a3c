#include "eddy/control/local_executor.h"

#include <chrono>
#include <map>
#include <thread>
#include <tuple>

#include "eddy/worker/deployment.h"

namespace eddy::control {

using worker::Task;

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

  worker::DeploymentOptions dep;
  dep.global = &global;
  dep.buffer_timeout = graph.buffer_timeout;
  // The executor's flag unblocks producers waiting for buffers when the job is cancelled.
  dep.cancelled = &cancelled_;
  dep.task = options_.task;
  auto deployed = worker::DeployTasks(jg, dep);
  if (!deployed.ok()) {
    result.status = deployed.status();
    return result;
  }
  std::vector<std::unique_ptr<Task>> tasks = std::move(*deployed);
  std::vector<Task*> all;
  for (auto& t : tasks) all.push_back(t.get());
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
  {
    for (auto& t : tasks) {
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
