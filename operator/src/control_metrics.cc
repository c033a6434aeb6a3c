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
    // Checkpoints (Flink's checkpointing metrics of the JobManager's job scope).
    auto gauge = [](const char* name, const char* help) {
      return FamilyBuilder::Gauge(name, help);
    };
    auto last_duration = gauge("eddy_job_last_checkpoint_duration_seconds",
                               "Duration of the last completed checkpoint or savepoint, from "
                               "trigger to metadata written (lastCheckpointDuration).");
    auto last_size = gauge("eddy_job_last_checkpoint_size_bytes",
                           "State bytes uploaded for the last completed checkpoint; with "
                           "incremental snapshots only the new files (lastCheckpointSize).");
    auto last_full_size = gauge("eddy_job_last_checkpoint_full_size_bytes",
                                "Size of the whole state of the last completed checkpoint "
                                "(lastCheckpointFullSize).");
    auto last_alignment = gauge("eddy_job_last_checkpoint_alignment_seconds",
                                "Longest barrier alignment of any subtask in the last completed "
                                "checkpoint (checkpointAlignmentTime).");
    auto last_persisted = gauge("eddy_job_last_checkpoint_persisted_in_flight_bytes",
                                "In-flight input data persisted with the last completed "
                                "checkpoint, summed over its subtasks; 0 unless unaligned "
                                "(checkpointPersistedData).");
    auto in_progress = gauge("eddy_job_checkpoints_in_progress",
                             "Checkpoints and savepoints triggered and not yet completed or "
                             "failed (numberOfInProgressCheckpoints).");
    auto completed = FamilyBuilder::Counter("eddy_job_checkpoints_completed_total",
                                            "Checkpoints and savepoints completed "
                                            "(numberOfCompletedCheckpoints).");
    auto failed = FamilyBuilder::Counter("eddy_job_checkpoints_failed_total",
                                         "Checkpoints and savepoints that failed: declined, "
                                         "expired or not written (numberOfFailedCheckpoints).");
    auto restores = FamilyBuilder::Counter("eddy_job_checkpoint_restores_total",
                                           "Execution attempts started from a checkpoint or "
                                           "savepoint (numberOfRestoredCheckpoints).");
    auto fallbacks = FamilyBuilder::Counter(
        "eddy_job_checkpoint_restore_fallbacks_total",
        "Restores that skipped an unreadable (missing, truncated or corrupt) newest checkpoint "
        "for an older one.");
    auto duration_hist = FamilyBuilder::Histogram(
        "eddy_job_checkpoint_duration_seconds",
        "Durations of completed checkpoints and savepoints (checkpointDuration).");
    auto size_hist = FamilyBuilder::Histogram(
        "eddy_job_checkpoint_size_bytes",
        "State bytes uploaded per completed checkpoint or savepoint (checkpointedSize).");
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
      const CheckpointStats& c = j.checkpoints;
      // The last-checkpoint gauges exist once a checkpoint completed (Flink reports -1 before).
      if (c.completed > 0) {
        last_duration.Add(l, static_cast<double>(c.last_duration_ms) / 1e3);
        last_size.Add(l, static_cast<double>(c.last_size));
        last_full_size.Add(l, static_cast<double>(c.last_full_size));
        last_alignment.Add(l, static_cast<double>(c.last_alignment_ms) / 1e3);
        last_persisted.Add(l, static_cast<double>(c.last_persisted_bytes));
      }
      in_progress.Add(l, c.in_progress);
      completed.Add(l, static_cast<double>(c.completed));
      failed.Add(l, static_cast<double>(c.failed));
      restores.Add(l, static_cast<double>(c.restored));
      fallbacks.Add(l, static_cast<double>(c.restore_fallbacks));
      duration_hist.Add(l, c.histograms.duration_s);
      size_hist.Add(l, c.histograms.size_bytes);
    }
    out.push_back(restarts.Build());
    out.push_back(state.Build());
    out.push_back(uptime.Build());
    for (auto* f :
         {&last_duration, &last_size, &last_full_size, &last_alignment, &last_persisted,
          &in_progress, &completed, &failed, &restores, &fallbacks, &duration_hist, &size_hist}) {
      prometheus::MetricFamily family = f->Build();
      // No job completed a checkpoint yet: leave the last-checkpoint gauges out.
      if (!family.metric.empty()) out.push_back(std::move(family));
    }
  }
  return out;
}

std::shared_ptr<metrics::CallbackCollectable> MakeControlPlaneCollectable(ControlPlane* cp) {
  return metrics::CallbackCollectable::Make([cp] { return CollectControlPlaneMetrics(*cp); });
}

}  // namespace eddy::control
