#include "operator/src/rest_checkpoints.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace eddy::control::rest {

namespace {

/// Flink's StatsSummaryDto over `values`: min, max and avg as integers, percentiles (nearest
/// rank) as doubles; all 0 without values.
Json Summary(std::vector<double> values) {
  Json o = Json::object();
  if (values.empty()) {
    for (const char* k : {"min", "max", "avg"}) o[k] = 0;
    for (const char* k : {"p50", "p90", "p95", "p99", "p999"}) o[k] = 0.0;
    return o;
  }
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  auto rank = [&](double q) {
    auto i = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::min(values.size() - 1, i == 0 ? 0 : i - 1)];
  };
  o["min"] = std::llround(values.front());
  o["max"] = std::llround(values.back());
  o["avg"] = std::llround(sum / static_cast<double>(values.size()));
  o["p50"] = rank(0.5);
  o["p90"] = rank(0.9);
  o["p95"] = rank(0.95);
  o["p99"] = rank(0.99);
  o["p999"] = rank(0.999);
  return o;
}

/// Flink's CompletedCheckpointStatistics / FailedCheckpointStatistics.
Json Checkpoint(const CheckpointRecord& r) {
  const bool completed = r.status == CheckpointRecord::Status::kCompleted;
  Json o = Json::object();
  o["className"] = completed ? "completed" : "failed";
  o["id"] = r.id;
  o["status"] = completed ? "COMPLETED" : "FAILED";
  o["is_savepoint"] = r.savepoint;
  o["savepointFormat"] = r.savepoint ? Json("CANONICAL") : Json(nullptr);
  o["trigger_timestamp"] = r.trigger_epoch_ms;
  o["latest_ack_timestamp"] = completed ? r.end_epoch_ms : -1;
  o["checkpointed_size"] = r.size;
  o["state_size"] = r.full_size;
  o["end_to_end_duration"] = r.duration_ms;
  // Bytes buffered during alignment and processed during it: not kept. Unaligned checkpoints'
  // in-flight data persisted with the snapshot: persisted_data.
  o["alignment_buffered"] = 0;
  o["processed_data"] = 0;
  o["persisted_data"] = r.persisted_bytes;
  o["num_subtasks"] = r.tasks;
  o["num_acknowledged_subtasks"] = r.acknowledged;
  o["checkpoint_type"] = r.savepoint ? "SAVEPOINT" : "CHECKPOINT";
  o["tasks"] = Json::object();
  if (completed) {
    o["external_path"] = r.path;
    o["discarded"] = false;
  } else {
    o["failure_timestamp"] = r.end_epoch_ms;
    o["failure_message"] = r.failure;
  }
  // Eddy's addition: the longest barrier alignment of any subtask, ms.
  o["alignment_duration"] = r.alignment_ms;
  return o;
}

}  // namespace

Json CheckpointingStatistics(const JobInfo& job) {
  const CheckpointStats& s = job.checkpoints;
  Json o = Json::object();
  Json counts = Json::object();
  counts["restored"] = s.restored;
  counts["total"] = s.completed + s.failed + static_cast<uint64_t>(std::max(0, s.in_progress));
  counts["in_progress"] = s.in_progress;
  counts["completed"] = s.completed;
  counts["failed"] = s.failed;
  o["counts"] = counts;

  // Over the last 1024 completed checkpoints and savepoints.
  std::vector<double> durations_ms;
  for (double d : s.durations_s) durations_ms.push_back(d * 1000);
  Json summary = Json::object();
  summary["checkpointed_size"] = Summary(s.sizes);
  summary["state_size"] = Summary(s.full_sizes);
  summary["end_to_end_duration"] = Summary(durations_ms);
  summary["alignment_buffered"] = Summary({});
  summary["processed_data"] = Summary({});
  summary["persisted_data"] = Summary(s.persisted);
  o["summary"] = summary;

  Json latest = Json::object();
  latest["completed"] = s.latest_completed ? Checkpoint(*s.latest_completed) : Json(nullptr);
  latest["savepoint"] = s.latest_savepoint ? Checkpoint(*s.latest_savepoint) : Json(nullptr);
  latest["failed"] = s.latest_failed ? Checkpoint(*s.latest_failed) : Json(nullptr);
  if (s.latest_restored) {
    Json r = Json::object();
    r["id"] = s.latest_restored->id;
    r["restore_timestamp"] = s.latest_restored->restore_epoch_ms;
    r["is_savepoint"] = s.latest_restored->savepoint;
    r["external_path"] = s.latest_restored->path;
    latest["restored"] = r;
  } else {
    latest["restored"] = nullptr;
  }
  o["latest"] = latest;

  Json history = Json::array();
  for (const auto& r : s.history) history.push_back(Checkpoint(r));
  o["history"] = history;
  // Eddy's additions.
  o["checkpoint_dir"] = job.checkpoint_dir;
  o["restore_fallbacks"] = s.restore_fallbacks;
  return o;
}

Json CheckpointConfigInfo(const JobInfo& job) {
  const CheckpointConfig& c = job.checkpoint_config;
  Json o = Json::object();
  o["mode"] = c.exactly_once ? "exactly_once" : "at_least_once";
  // 0 = no periodic checkpoints (savepoints still work); Flink reports Long.MAX_VALUE then.
  o["interval"] = c.interval.millis();
  o["timeout"] = c.timeout.millis();
  o["min_pause"] = c.min_pause.millis();
  o["max_concurrent"] = c.max_concurrent;
  // Completed checkpoints are kept (the last `retained`) when the job ends or is cancelled.
  Json ext = Json::object();
  ext["enabled"] = true;
  ext["delete_on_cancellation"] = false;
  o["externalization"] = ext;
  o["checkpoint_storage"] = c.storage;
  o["unaligned_checkpoints"] = c.unaligned;
  o["tolerable_failed_checkpoints"] = c.tolerable_failures;
  // Eddy's additions.
  o["enabled"] = c.enabled();
  o["retained"] = c.retained;
  o["checkpoint_dir"] = job.checkpoint_dir;
  o["savepoint_dir"] = c.savepoint_dir.empty() ? Json(nullptr) : Json(c.savepoint_dir);
  return o;
}

std::optional<Json> CheckpointDetails(const JobInfo& job, int64_t id) {
  for (const auto& r : job.checkpoints.history) {
    if (r.id == id) return Checkpoint(r);
  }
  return std::nullopt;
}

Json SavepointOperation(const SavepointStatus& s) {
  Json o = Json::object();
  Json status = Json::object();
  status["id"] = s.state == SavepointStatus::State::kInProgress ? "IN_PROGRESS" : "COMPLETED";
  o["status"] = status;
  if (s.state == SavepointStatus::State::kInProgress) {
    o["operation"] = nullptr;
  } else if (s.state == SavepointStatus::State::kCompleted) {
    Json op = Json::object();
    op["location"] = s.location;
    o["operation"] = op;
  } else {
    // As Flink: the operation completed, with a failure cause instead of a location.
    Json cause = Json::object();
    cause["class"] = "eddy.CheckpointException";
    cause["stack-trace"] = s.failure;
    cause["serialized-throwable"] = "";
    Json op = Json::object();
    op["failure-cause"] = cause;
    o["operation"] = op;
  }
  return o;
}

}  // namespace eddy::control::rest
