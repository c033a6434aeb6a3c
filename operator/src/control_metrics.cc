#include "eddy/control/control_metrics.h"
#include "eddy/clock.h"

#include <chrono>
#include <string>
#include <vector>

namespace eddy::control {

namespace {

constexpr JobState kAllStates[] = {JobState::kCreated,    JobState::kRunning,  JobState::kFailing,
                                   JobState::kRestarting, JobState::kFinished, JobState::kCanceling,
                                   JobState::kCanceled,   JobState::kFailed};

}  // namespace

std::vector<prometheus::MetricFamily> CollectControlPlaneMetrics(ControlPlane& cp) {
  using metrics::FamilyBuilder;
  ClusterInfo cluster = cp.Cluster();
  std::vector<JobInfo> jobs = cp.Jobs();
  std::vector<prometheus::MetricFamily> out;
  auto single = [&](FamilyBuilder b, double v) {
    b.Add({}, v);
    out.push_back(b.Build());
  };
  single(FamilyBuilder::Gauge("eddy_cluster_workers",
                              "Workers registered with the control plane "
                              "(numRegisteredTaskManagers)."),
         static_cast<double>(cluster.workers.size()));
  single(FamilyBuilder::Gauge("eddy_cluster_slots",
                              "Task slots of all registered workers (taskSlotsTotal)."),
         cluster.slots_total);
  single(FamilyBuilder::Gauge("eddy_cluster_slots_available",
                              "Task slots not in use (taskSlotsAvailable)."),
         cluster.slots_free);
  single(FamilyBuilder::Gauge("eddy_jobs_running",
                              "Jobs not yet finished, canceled or failed (numRunningJobs)."),
         cluster.jobs_running);
  single(FamilyBuilder::Gauge("eddy_jobs_finished", "Jobs that finished."), cluster.jobs_finished);
  single(FamilyBuilder::Gauge("eddy_jobs_canceled", "Jobs that were canceled."),
         cluster.jobs_canceled);
  single(FamilyBuilder::Gauge("eddy_jobs_failed", "Jobs that failed for good."),
         cluster.jobs_failed);
  single(FamilyBuilder::Counter("eddy_control_malformed_messages_total",
                                "Control messages the control plane could not parse or did not "
                                "expect (logged and dropped)."),
         static_cast<double>(cluster.malformed_messages));

  if (!jobs.empty()) {
    auto restarts = FamilyBuilder::Counter("eddy_job_restarts_total",
                                           "Times a job was restarted after a failure "
                                           "(numRestarts).");
    auto state = FamilyBuilder::Gauge(
        "eddy_job_state", "1 for a job's current state, 0 for the others (Flink's JobStatus).");
    auto uptime = FamilyBuilder::Gauge(
        "eddy_job_uptime_seconds",
        "Time since a job was submitted; for an ended job, how long it lasted (uptime).");
    const int64_t now = EpochMillis();
    for (const JobInfo& j : jobs) {
      const metrics::Labels l{{"job", j.name}, {"job_id", j.id}};
      restarts.Add(l, j.restarts);
      for (JobState s : kAllStates) {
        metrics::Labels sl = l;
        sl["state"] = std::string(JobStateName(s));
        state.Add(sl, s == j.state ? 1 : 0);
      }
      int64_t end = IsTerminal(j.state) && j.end_time_ms >= 0 ? j.end_time_ms : now;
      uptime.Add(l, static_cast<double>(std::max<int64_t>(0, end - j.start_time_ms)) / 1e3);
    }
    out.push_back(restarts.Build());
    out.push_back(state.Build());
    out.push_back(uptime.Build());
  }
  return out;
}

std::shared_ptr<metrics::CallbackCollectable> MakeControlPlaneCollectable(ControlPlane* cp) {
  return metrics::CallbackCollectable::Make([cp] { return CollectControlPlaneMetrics(*cp); });
}

}  // namespace eddy::control
