#include "eddy/control/checkpoint_coordinator.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>

#include "eddy/clock.h"
#include "eddy/spec/job_spec.h"
#include "eddy/state/metadata.h"

namespace eddy::control {

namespace {

Result<Duration> ParseDurationField(const YAML::Node& n, const std::string& field) {
  std::string text;
  try {
    text = n.as<std::string>();
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument("checkpointing." + field + ": must be a duration like 10s");
  }
  auto d = ParseDuration(text);
  if (!d.ok())
    return Status::InvalidArgument("checkpointing." + field + ": " + d.status().message());
  return *d;
}

Result<int> ParseIntField(const YAML::Node& n, const std::string& field, int min) {
  try {
    int v = n.as<int>();
    if (v < min) {
      return Status::InvalidArgument("checkpointing." + field + ": must be at least " +
                                     std::to_string(min));
    }
    return v;
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument("checkpointing." + field + ": must be an integer");
  }
}

std::string CheckpointKey(int64_t id) {
  return "chk-" + std::to_string(id) + "/";
}

constexpr size_t kHistorySize = 10;

/// Histogram bounds: checkpoint durations from 50 ms up to the default timeout (10 min); sizes
/// from 1 KiB to 16 GiB in steps of 4.
const std::vector<double>& DurationBounds() {
  static const std::vector<double> b = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
  return b;
}
const std::vector<double>& SizeBounds() {
  static const std::vector<double> b = [] {
    std::vector<double> v;
    for (double x = 1024; x <= 16.0 * 1024 * 1024 * 1024; x *= 4) v.push_back(x);
    return v;
  }();
  return b;
}

metrics::HistogramSnapshot EmptyHistogram(const std::vector<double>& bounds) {
  metrics::HistogramSnapshot h;
  h.upper_bounds = bounds;
  h.cumulative_counts.assign(bounds.size() + 1, 0);
  return h;
}

void Observe(metrics::HistogramSnapshot& h, double v) {
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    if (v <= h.upper_bounds[i]) ++h.cumulative_counts[i];
  }
  ++h.cumulative_counts.back();
  ++h.count;
  h.sum += v;
}

}  // namespace

std::string DefaultCheckpointStorage() {
  std::string home;
  if (const char* e = std::getenv("EDDY_HOME"); e && *e) {
    home = e;
  } else if (const char* h = std::getenv("HOME"); h && *h) {
    home = std::string(h) + "/.cache/eddy";
  } else {
    home = "/tmp/eddy";
  }
  return "file://" + home + "/checkpoints";
}

Result<CheckpointConfig> ParseCheckpointConfig(const YAML::Node& root) {
  CheckpointConfig c;
  if (!root.IsMap()) return c;
  if (root["savepointDir"]) {
    try {
      c.savepoint_dir = root["savepointDir"].as<std::string>();
    } catch (const YAML::Exception&) {
      return Status::InvalidArgument("savepointDir: must be a string (a directory URI)");
    }
  }
  YAML::Node n = root["checkpointing"];
  if (!n) return c;
  if (!n.IsMap()) return Status::InvalidArgument("checkpointing: must be a mapping");
  static const std::set<std::string> kKeys = {
      "interval", "mode",          "storage",           "retained", "timeout",
      "minPause", "maxConcurrent", "tolerableFailures", "unaligned"};
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    if (!kKeys.count(key)) {
      return Status::InvalidArgument("checkpointing." + key +
                                     ": unknown field (interval, mode, storage, retained, timeout, "
                                     "minPause, maxConcurrent, tolerableFailures, unaligned)");
    }
  }
  if (n["interval"]) {
    EDDY_ASSIGN_OR_RETURN(c.interval, ParseDurationField(n["interval"], "interval"));
    if (c.interval.millis() != 0 && c.interval.millis() < 10) {
      return Status::InvalidArgument("checkpointing.interval: must be at least 10ms (or 0 = off)");
    }
  }
  if (n["mode"]) {
    std::string m = n["mode"].as<std::string>("");
    if (m == "exactly-once" || m == "EXACTLY_ONCE") {
      c.exactly_once = true;
    } else if (m == "at-least-once" || m == "AT_LEAST_ONCE") {
      c.exactly_once = false;
    } else {
      return Status::InvalidArgument("checkpointing.mode: '" + m +
                                     "' is not exactly-once or at-least-once");
    }
  }
  if (n["storage"]) {
    c.storage = n["storage"].as<std::string>("");
    if (c.storage.empty()) return Status::InvalidArgument("checkpointing.storage: is empty");
  }
  if (n["retained"]) {
    EDDY_ASSIGN_OR_RETURN(c.retained, ParseIntField(n["retained"], "retained", 1));
  }
  if (n["timeout"]) {
    EDDY_ASSIGN_OR_RETURN(c.timeout, ParseDurationField(n["timeout"], "timeout"));
    if (c.timeout.millis() <= 0) {
      return Status::InvalidArgument("checkpointing.timeout: must be positive");
    }
  }
  if (n["minPause"]) {
    EDDY_ASSIGN_OR_RETURN(c.min_pause, ParseDurationField(n["minPause"], "minPause"));
  }
  if (n["maxConcurrent"]) {
    EDDY_ASSIGN_OR_RETURN(c.max_concurrent, ParseIntField(n["maxConcurrent"], "maxConcurrent", 1));
  }
  if (n["tolerableFailures"]) {
    EDDY_ASSIGN_OR_RETURN(c.tolerable_failures,
                          ParseIntField(n["tolerableFailures"], "tolerableFailures", -1));
  }
  if (n["unaligned"]) {
    try {
      c.unaligned = n["unaligned"].as<bool>();
    } catch (const YAML::Exception&) {
      return Status::InvalidArgument("checkpointing.unaligned: must be true or false");
    }
  }
  EDDY_RETURN_NOT_OK(ValidateCheckpointConfig(c));
  return c;
}

Status ValidateCheckpointConfig(const CheckpointConfig& c) {
  if (c.unaligned && !c.exactly_once) {
    return Status::InvalidArgument(
        "checkpointing.unaligned: needs mode exactly-once (at-least-once checkpoints never "
        "block channels, so there is nothing to unalign); drop `unaligned` or use exactly-once");
  }
  return Status::Ok();
}

CheckpointCoordinator::CheckpointCoordinator(std::string job_id, std::string job_name,
                                             CheckpointConfig config,
                                             std::shared_ptr<storage::ObjectStore> store,
                                             Callbacks callbacks)
    : job_id_(std::move(job_id)),
      job_name_(std::move(job_name)),
      config_(std::move(config)),
      store_(std::move(store)),
      cb_(std::move(callbacks)),
      io_(std::make_unique<SerialExecutor>("eddy-ckpt-io")) {
  stats_.histograms.duration_s = EmptyHistogram(DurationBounds());
  stats_.histograms.size_bytes = EmptyHistogram(SizeBounds());
}

CheckpointCoordinator::~CheckpointCoordinator() {
  io_.reset();
}

void CheckpointCoordinator::OnAttemptDeployed(uint64_t attempt, int tasks,
                                              std::map<std::string, int> max_parallelism) {
  attempt_ = attempt;
  tasks_ = tasks;
  all_running_ = false;
  max_parallelism_ = std::move(max_parallelism);
}

void CheckpointCoordinator::SetAllRunning(bool running) {
  if (running && !all_running_) {
    // The first checkpoint of an attempt comes one interval after it started.
    next_trigger_ = SteadyMillis() + config_.interval.millis();
  }
  all_running_ = running;
}

void CheckpointCoordinator::OnAttemptEnded() {
  all_running_ = false;
  std::vector<int64_t> ids;
  for (const auto& [id, p] : pending_) {
    if (!p.finalizing) ids.push_back(id);
  }
  // Not counted as failures: the job failed over or ended, the checkpoint did not fail.
  for (int64_t id : ids) Fail(id, "the execution attempt ended", /*count=*/false);
}

void CheckpointCoordinator::Tick(int64_t now) {
  std::vector<int64_t> expired;
  for (const auto& [id, p] : pending_) {
    if (!p.finalizing && now - p.trigger_steady > config_.timeout.millis()) expired.push_back(id);
  }
  for (int64_t id : expired) {
    Fail(id,
         "expired after " + std::to_string(config_.timeout.millis()) +
             " ms before every task acknowledged",
         true);
  }
  if (!config_.enabled() || !all_running_ || now < next_trigger_) return;
  if (static_cast<int>(pending_.size()) >= config_.max_concurrent) return;
  if (now - last_end_steady_ < config_.min_pause.millis() && last_end_steady_ != 0) return;
  next_trigger_ = now + config_.interval.millis();
  Trigger(false, false, false, "", "");
}

void CheckpointCoordinator::Trigger(bool savepoint, bool stop, bool drain, const std::string& dir,
                                    const std::string& trigger_id) {
  Pending p;
  p.id = next_id_++;
  p.trigger_epoch = EpochMillis();
  p.trigger_steady = SteadyMillis();
  p.savepoint = savepoint;
  p.stop = stop;
  p.dir = dir;
  p.trigger_id = trigger_id;
  proto::TriggerCheckpoint t;
  t.set_attempt_id(attempt_);
  t.set_checkpoint_id(p.id);
  t.set_timestamp(p.trigger_epoch);
  t.set_savepoint(savepoint);
  t.set_target_dir(dir);
  t.set_stop(stop);
  t.set_drain(drain);
  stats_.last_trigger_epoch_ms = p.trigger_epoch;
  pending_.emplace(p.id, std::move(p));
  stats_.in_progress = static_cast<int>(pending_.size());
  cb_.trigger(t);
}

Result<int64_t> CheckpointCoordinator::TriggerCheckpoint() {
  if (!all_running_) {
    return Status::Unavailable("the job is not running (every task must run to take a checkpoint)");
  }
  int64_t id = next_id_;
  Trigger(false, false, false, "", "");
  cb_.log("checkpoint " + std::to_string(id) + " triggered on request");
  return id;
}

Result<std::string> CheckpointCoordinator::TriggerSavepoint(std::string dir, bool stop,
                                                            bool drain) {
  if (dir.empty()) dir = config_.savepoint_dir;
  if (dir.empty()) {
    return Status::InvalidArgument(
        "no savepoint directory: give one, or set savepointDir in the job spec");
  }
  if (!all_running_) {
    return Status::Unavailable("the job is not running (every task must run to take a savepoint)");
  }
  auto store = storage::OpenObjectStore(dir);
  if (!store.ok()) return store.status().WithContext("savepoint directory");
  // Flink names savepoints savepoint-<first 6 of the job id>-<random>.
  std::string trigger_id = job_id_.substr(0, 6) + "-" + std::to_string(++savepoint_seq_) + "-" +
                           std::to_string(EpochMillis() % 1000000);
  std::string target = storage::JoinKey((*store)->root(), "savepoint-" + trigger_id);
  savepoints_[trigger_id] = SavepointStatus{};
  Trigger(true, stop, drain, target, trigger_id);
  cb_.log("savepoint " + trigger_id + " triggered into " + target + (stop ? " (stop" : "") +
          (stop && drain ? ", drain)"
           : stop        ? ")"
                         : ""));
  return trigger_id;
}

std::optional<SavepointStatus> CheckpointCoordinator::Savepoint(
    const std::string& trigger_id) const {
  auto it = savepoints_.find(trigger_id);
  if (it == savepoints_.end()) return std::nullopt;
  return it->second;
}

bool CheckpointCoordinator::StopPending() const {
  for (const auto& [id, p] : pending_) {
    if (p.stop) return true;
  }
  return false;
}

void CheckpointCoordinator::OnAcknowledge(const proto::AcknowledgeCheckpoint& ack) {
  if (ack.attempt_id() != attempt_) return;
  auto it = pending_.find(ack.checkpoint_id());
  if (it == pending_.end() || it->second.finalizing) return;  // late: expired or aborted
  Pending& p = it->second;
  p.acks[{ack.vertex(), ack.subtask()}] = ack;
  if (static_cast<int>(p.acks.size()) >= tasks_) Finalize(p);
}

void CheckpointCoordinator::OnDecline(const proto::DeclineCheckpoint& d) {
  if (d.attempt_id() != attempt_) return;
  if (!pending_.count(d.checkpoint_id())) return;
  Fail(d.checkpoint_id(), d.reason(), true);
}

void CheckpointCoordinator::Finalize(Pending& p) {
  p.finalizing = true;
  auto md = std::make_shared<proto::CheckpointMetadata>();
  md->set_version(kCheckpointMetadataVersion);
  md->set_checkpoint_id(p.id);
  md->set_job_id(job_id_);
  md->set_job_name(job_name_);
  md->set_trigger_timestamp(p.trigger_epoch);
  md->set_completion_timestamp(EpochMillis());
  md->set_savepoint(p.savepoint);
  md->set_mode(config_.exactly_once ? "exactly-once" : "at-least-once");
  std::map<std::string, proto::OperatorState*> by_uid;
  uint64_t size = 0, full = 0;
  int64_t alignment = 0;
  uint64_t persisted = 0;
  for (const auto& [key, ack] : p.acks) {
    size += ack.checkpointed_size();
    full += ack.full_size();
    persisted += ack.persisted_in_flight();
    alignment = std::max(alignment, ack.alignment_duration_ms());
    for (const auto& os : ack.operators()) {
      proto::OperatorState*& st = by_uid[os.uid()];
      if (!st) {
        st = md->add_operators();
        st->set_uid(os.uid());
        st->set_name(os.name());
        auto mp = max_parallelism_.find(os.uid());
        st->set_max_parallelism(mp == max_parallelism_.end() ? 0 : mp->second);
      }
      *st->add_subtasks() = os.state();
    }
  }
  for (auto& [uid, st] : by_uid) {
    st->set_parallelism(st->subtasks_size());
    std::sort(st->mutable_subtasks()->begin(), st->mutable_subtasks()->end(),
              [](const auto& a, const auto& b) { return a.subtask() < b.subtask(); });
  }
  stats_.last_size = size;
  stats_.last_full_size = full;
  stats_.last_alignment_ms = alignment;
  stats_.last_persisted_bytes = persisted;
  std::shared_ptr<storage::ObjectStore> store = store_;
  std::string dir = p.dir;
  bool savepoint = p.savepoint;
  int64_t id = p.id;
  md->set_root(savepoint ? dir : (store ? store->root() : std::string()));
  std::weak_ptr<int> alive = alive_;
  auto post = cb_.post;
  io_->Submit([md, store, dir, savepoint, id, alive, post, this] {
    Status s;
    std::string path;
    std::string bytes = SerializeCheckpointMetadata(*md);
    if (savepoint) {
      auto sp = storage::OpenObjectStore(dir);
      s = sp.ok() ? (*sp)->Put("_metadata", bytes) : sp.status();
      path = dir;
    } else if (!store) {
      s = Status::Unavailable("no checkpoint storage");
    } else {
      s = store->Put(CheckpointKey(id) + "_metadata", bytes);
      path = store->Uri(CheckpointKey(id));
    }
    post([alive, this, id, s, path]() mutable {
      if (alive.expired()) return;
      OnFinalized(id, std::move(s), std::move(path));
    });
  });
}

void CheckpointCoordinator::OnFinalized(int64_t id, Status written, std::string path) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (!written.ok()) {
    it->second.finalizing = false;
    Fail(id, "writing its metadata failed: " + written.ToString(), true);
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  stats_.in_progress = static_cast<int>(pending_.size());
  int64_t duration = SteadyMillis() - p.trigger_steady;
  last_end_steady_ = SteadyMillis();
  consecutive_failures_ = 0;
  ++stats_.completed;
  stats_.last_id = id;
  stats_.last_duration_ms = duration;
  stats_.last_path = path;
  stats_.durations_s.push_back(static_cast<double>(duration) / 1000.0);
  stats_.sizes.push_back(static_cast<double>(stats_.last_size));
  stats_.full_sizes.push_back(static_cast<double>(stats_.last_full_size));
  stats_.persisted.push_back(static_cast<double>(stats_.last_persisted_bytes));
  if (stats_.last_persisted_bytes > 0) ++stats_.with_in_flight_data;
  stats_.persisted_bytes_total += stats_.last_persisted_bytes;
  if (stats_.durations_s.size() > 1024) {
    stats_.durations_s.erase(stats_.durations_s.begin());
    stats_.sizes.erase(stats_.sizes.begin());
    stats_.full_sizes.erase(stats_.full_sizes.begin());
    stats_.persisted.erase(stats_.persisted.begin());
  }
  Observe(stats_.histograms.duration_s, static_cast<double>(duration) / 1000.0);
  Observe(stats_.histograms.size_bytes, static_cast<double>(stats_.last_size));
  {
    CheckpointRecord r;
    r.id = id;
    r.savepoint = p.savepoint;
    r.trigger_epoch_ms = p.trigger_epoch;
    r.end_epoch_ms = EpochMillis();
    r.duration_ms = duration;
    r.acknowledged = static_cast<int>(p.acks.size());
    r.tasks = tasks_;
    r.size = stats_.last_size;
    r.full_size = stats_.last_full_size;
    r.alignment_ms = stats_.last_alignment_ms;
    r.persisted_bytes = stats_.last_persisted_bytes;
    r.path = path;
    (p.savepoint ? stats_.latest_savepoint : stats_.latest_completed) = r;
    AddToHistory(std::move(r));
  }
  // Aborted checkpoints older than this one will never complete.
  std::vector<int64_t> older;
  for (const auto& [pid, pp] : pending_) {
    if (pid < id && !pp.finalizing && !pp.savepoint) older.push_back(pid);
  }
  for (int64_t o : older) Fail(o, "subsumed by checkpoint " + std::to_string(id), false);

  if (p.savepoint) {
    savepoints_[p.trigger_id] = SavepointStatus{SavepointStatus::State::kCompleted, path, ""};
    cb_.log("savepoint " + p.trigger_id + " completed at " + path + " (" +
            std::to_string(duration) + " ms)");
  } else {
    Completed c;
    c.id = id;
    c.metadata_key = CheckpointKey(id) + "_metadata";
    for (const auto& [key, ack] : p.acks) {
      for (const auto& os : ack.operators()) {
        for (const auto& f : os.state().keyed().files()) {
          if (f.shared()) c.shared_keys.insert(f.key());
        }
      }
    }
    completed_.push_back(std::move(c));
    ApplyRetention();
  }
  cb_.notify(id, true);
  if (p.stop && cb_.stopped) cb_.stopped(id);
}

void CheckpointCoordinator::Fail(int64_t id, const std::string& why, bool count) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  stats_.in_progress = static_cast<int>(pending_.size());
  last_end_steady_ = SteadyMillis();
  std::string what = (p.savepoint ? "savepoint " : "checkpoint ") + std::to_string(id);
  if (p.savepoint) {
    savepoints_[p.trigger_id] = SavepointStatus{SavepointStatus::State::kFailed, "", why};
  }
  if (count) {
    ++stats_.failed;
    stats_.last_failure = what + ": " + why;
    cb_.log(what + " failed: " + why);
    CheckpointRecord r;
    r.id = id;
    r.savepoint = p.savepoint;
    r.status = CheckpointRecord::Status::kFailed;
    r.trigger_epoch_ms = p.trigger_epoch;
    r.end_epoch_ms = EpochMillis();
    r.duration_ms = SteadyMillis() - p.trigger_steady;
    r.acknowledged = static_cast<int>(p.acks.size());
    r.tasks = tasks_;
    r.failure = why;
    stats_.latest_failed = r;
    AddToHistory(std::move(r));
  }
  cb_.notify(id, false);
  if (count && !p.savepoint) {
    ++consecutive_failures_;
    if (config_.tolerable_failures >= 0 && consecutive_failures_ > config_.tolerable_failures) {
      consecutive_failures_ = 0;
      cb_.fail("exceeded the checkpoint tolerable failure threshold (" +
               std::to_string(config_.tolerable_failures) + "); last: " + what + ": " + why);
    }
  }
  // Leftover files of a failed checkpoint.
  if (!p.savepoint && store_) {
    std::shared_ptr<storage::ObjectStore> store = store_;
    io_->Submit([store, id] { (void)store->DeletePrefix(CheckpointKey(id)); });
  }
}

void CheckpointCoordinator::ApplyRetention() {
  std::vector<Completed> dropped;
  while (static_cast<int>(completed_.size()) > config_.retained) {
    dropped.push_back(std::move(completed_.front()));
    completed_.pop_front();
  }
  if (dropped.empty() || !store_) return;
  std::set<std::string> kept;
  for (const auto& c : completed_) kept.insert(c.shared_keys.begin(), c.shared_keys.end());
  std::vector<std::string> prefixes, files;
  for (const auto& d : dropped) {
    prefixes.push_back(CheckpointKey(d.id));
    for (const auto& k : d.shared_keys) {
      if (!kept.count(k)) files.push_back(k);
    }
  }
  std::shared_ptr<storage::ObjectStore> store = store_;
  auto log = cb_.log;
  io_->Submit([store, prefixes, files, log] {
    for (const auto& p : prefixes) {
      Status s = store->DeletePrefix(p);
      if (!s.ok()) log("could not delete old checkpoint " + store->Uri(p) + ": " + s.ToString());
    }
    for (const auto& f : files) {
      Status s = store->Delete(f);
      if (!s.ok()) log("could not delete shared state " + store->Uri(f) + ": " + s.ToString());
    }
  });
}

void CheckpointCoordinator::ResolveRestore(
    std::function<void(Result<std::optional<proto::RestoreFrom>>)> done) {
  if (completed_.empty()) {
    done(std::optional<proto::RestoreFrom>());
    return;
  }
  std::vector<Completed> candidates(completed_.rbegin(), completed_.rend());
  std::shared_ptr<storage::ObjectStore> store = store_;
  std::weak_ptr<int> alive = alive_;
  auto post = cb_.post;
  auto log = cb_.log;
  io_->Submit([candidates, store, alive, post, log, done, this]() mutable {
    std::vector<int64_t> unusable;
    std::optional<proto::RestoreFrom> found;
    for (const auto& c : candidates) {
      auto bytes = store->Get(c.metadata_key);
      proto::CheckpointMetadata md;
      std::string why;
      if (!bytes.ok()) {
        why = bytes.status().ToString();
      } else if (Status st = ParseCheckpointMetadata(*bytes, md); !st.ok()) {
        why = st.message();
      } else if (md.checkpoint_id() != c.id) {
        why = "its _metadata names checkpoint " + std::to_string(md.checkpoint_id());
      }
      if (!why.empty()) {
        log("checkpoint " + std::to_string(c.id) + " at " + store->Uri(c.metadata_key) +
            " cannot be restored: " + why + "; falling back to an older one");
        unusable.push_back(c.id);
        continue;
      }
      proto::RestoreFrom r;
      r.set_checkpoint_id(c.id);
      r.set_metadata_uri(store->Uri(c.metadata_key));
      r.set_state_root(store->root());
      found = r;
      break;
    }
    post([alive, this, unusable, found, done]() {
      if (alive.expired()) return;
      for (int64_t id : unusable) {
        ++stats_.restore_fallbacks;
        completed_.erase(std::remove_if(completed_.begin(), completed_.end(),
                                        [&](const Completed& c) { return c.id == id; }),
                         completed_.end());
      }
      if (!found) {
        done(Status::NotFound("no completed checkpoint of job " + job_id_ +
                              " is readable; cannot restore its state"));
        return;
      }
      ++stats_.restored;
      stats_.latest_restored =
          RestoreRecord{found->checkpoint_id(), false, EpochMillis(), found->metadata_uri()};
      done(found);
    });
  });
}

void CheckpointCoordinator::RecordRestore(const proto::RestoreFrom& from, bool savepoint) {
  ++stats_.restored;
  stats_.latest_restored =
      RestoreRecord{from.checkpoint_id(), savepoint, EpochMillis(), from.metadata_uri()};
}

void CheckpointCoordinator::AddToHistory(CheckpointRecord r) {
  stats_.history.push_front(std::move(r));
  if (stats_.history.size() > kHistorySize) stats_.history.pop_back();
}

Result<proto::RestoreFrom> CheckpointCoordinator::LocateSnapshot(
    const std::string& path, std::shared_ptr<proto::CheckpointMetadata>* out) {
  std::string dir = path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.ends_with("/_metadata")) dir.resize(dir.size() - 10);
  EDDY_ASSIGN_OR_RETURN(auto store, storage::OpenObjectStore(dir));
  auto bytes = store->Get("_metadata");
  if (!bytes.ok()) return bytes.status().WithContext("savepoint " + path);
  auto md = std::make_shared<proto::CheckpointMetadata>();
  if (Status st = ParseCheckpointMetadata(*bytes, *md); !st.ok()) {
    return st.WithContext("savepoint " + store->Uri("_metadata"));
  }
  proto::RestoreFrom r;
  r.set_checkpoint_id(md->checkpoint_id());
  r.set_metadata_uri(store->Uri("_metadata"));
  // Checkpoints (chk-N) keep their file keys relative to the job directory above them;
  // savepoints are self-contained.
  std::string root = store->root();
  if (!md->savepoint()) {
    size_t slash = root.rfind('/');
    if (slash != std::string::npos) root.resize(slash);
  }
  r.set_state_root(root);
  if (out) *out = std::move(md);
  return r;
}

}  // namespace eddy::control
