// The FlinkJob state machine (operator/src/flinkjob_reconciler.h) against fault-injecting fakes
// of the Kubernetes API and of the JobMasters: each test drives one lifecycle path reconcile by
// reconcile, injects a failure or an operator crash at a chosen step, and checks what the status,
// the Events and the deployments say. Snapshots are real `_metadata` files in a temp directory.
// The same paths against a real kube-apiserver and real JobMasters are the e2e scenarios.

#include "operator/src/flinkjob_reconciler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eddy/clock.h"
#include "eddy/proto/checkpoint.pb.h"
#include "eddy/state/metadata.h"

namespace eddy::control {
namespace {

namespace fs = std::filesystem;

/// Writes a snapshot's `_metadata` under `dir` (a local path) and returns its URI.
std::string WriteSnapshot(const std::string& dir, const std::string& job_id, int64_t id,
                          bool savepoint, int64_t completed_ms) {
  fs::create_directories(dir);
  proto::CheckpointMetadata md;
  md.set_version(1);
  md.set_checkpoint_id(id);
  md.set_job_id(job_id);
  md.set_savepoint(savepoint);
  md.set_trigger_timestamp(completed_ms - 1);
  md.set_completion_timestamp(completed_ms);
  std::ofstream(dir + "/_metadata", std::ios::binary) << SerializeCheckpointMetadata(md);
  return "file://" + dir;
}

std::string Path(const std::string& uri) {
  return uri.starts_with("file://") ? uri.substr(7) : uri;
}

/// The Kubernetes API server for one FlinkJob, in memory. Fault injection: the next
/// `fail_status_writes` status writes fail as if the API server were unreachable.
class FakeFlinkJobApi final : public FlinkJobApi {
 public:
  Json object;
  std::vector<Json> events;
  int status_writes = 0;
  int fail_status_writes = 0;
  int services = 0;
  int pod_deletions = 0;

  Status PatchStatus(const Json& flinkjob, const Json& patch) override {
    EXPECT_EQ(flinkjob["metadata"]["name"], "fj");
    if (fail_status_writes > 0) {
      --fail_status_writes;
      return Status::Unavailable("injected: the API server is unreachable");
    }
    ++status_writes;
    if (!object.contains("status")) object["status"] = Json::object();
    object["status"].merge_patch(patch);
    return Status::Ok();
  }
  Status PatchFlinkJob(const std::string&, const std::string&, const Json& patch) override {
    Json p = patch;
    p["metadata"].erase("resourceVersion");
    object.merge_patch(p);
    return Status::Ok();
  }
  Status CreateEvent(const std::string&, const Json& event) override {
    events.push_back(event);
    return Status::Ok();
  }
  Status EnsureService(const std::string&, const Json& service) override {
    EXPECT_EQ(service["spec"]["clusterIP"], "None");
    ++services;
    return Status::Ok();
  }
  Status DeletePods(const std::string&, const std::string& selector) override {
    EXPECT_EQ(selector, "eddy.dev/job=fj");
    ++pod_deletions;
    return Status::Ok();
  }

  int Count(const std::string& reason) const {
    int n = 0;
    for (const auto& e : events) n += e["reason"] == reason;
    return n;
  }
  const Json& status() const { return object["status"]; }
  const Json& job_status() const { return object["status"]["jobStatus"]; }
  std::string Ready(std::string* reason = nullptr) const {
    for (const auto& c : object["status"].value("conditions", Json::array())) {
      if (c["type"] == "Ready") {
        if (reason) *reason = c["reason"];
        return c["status"];
      }
    }
    return "";
  }
};

/// A job as the fake JobMaster runs it; the test moves it through its states.
struct FakeJob {
  std::string id;
  std::string restored_from;
  std::string spec_text;
  std::string checkpoint_dir;  // a local path
  JobInfo info;
  bool stopped = false;
  int savepoint_triggers = 0;
  int stop_savepoint_triggers = 0;
  std::map<std::string, SavepointStatus> savepoints;
  std::string last_trigger;

  /// A checkpoint completes (its metadata is written where the JobMaster would put it).
  std::string Checkpoint(int64_t n, int64_t completed_ms) {
    std::string uri =
        WriteSnapshot(checkpoint_dir + "/chk-" + std::to_string(n), id, n, false, completed_ms);
    info.checkpoints.latest_completed = CheckpointRecord{};
    info.checkpoints.latest_completed->id = n;
    info.checkpoints.latest_completed->path = uri;
    info.checkpoints.latest_completed->end_epoch_ms = completed_ms;
    return uri;
  }
  /// The last savepoint triggered completes into `dir`.
  std::string CompleteSavepoint(const std::string& dir, int64_t completed_ms, bool stop) {
    std::string uri = WriteSnapshot(dir + "/savepoint-" + id.substr(0, 6) + "-" + last_trigger, id,
                                    100, true, completed_ms);
    savepoints[last_trigger] = SavepointStatus{SavepointStatus::State::kCompleted, uri, ""};
    if (stop) info.state = JobState::kFinished;
    return uri;
  }
  void FailSavepoint(const std::string& why) {
    savepoints[last_trigger] = SavepointStatus{SavepointStatus::State::kFailed, "", why};
  }
};

class FakeDeployment final : public JobDeployment {
 public:
  explicit FakeDeployment(std::shared_ptr<FakeJob> job) : job_(std::move(job)) {}
  const std::string& job_id() const override { return job_->id; }
  std::optional<JobInfo> Info() override {
    if (job_->stopped) return std::nullopt;
    return job_->info;
  }
  Result<std::string> TriggerSavepoint(bool stop) override {
    if (job_->info.state != JobState::kRunning) return Status::Unavailable("not running");
    ++job_->savepoint_triggers;
    if (stop) ++job_->stop_savepoint_triggers;
    job_->last_trigger = "t" + std::to_string(job_->savepoint_triggers);
    job_->savepoints[job_->last_trigger] = SavepointStatus{};
    return job_->last_trigger;
  }
  Result<SavepointStatus> SavepointState(const std::string& trigger) override {
    auto it = job_->savepoints.find(trigger);
    if (it == job_->savepoints.end()) return Status::NotFound("no savepoint " + trigger);
    return it->second;
  }
  Result<int64_t> TriggerCheckpoint() override { return 1; }
  int RunningPods() const override { return job_->stopped ? 0 : 1; }
  void Stop() override {
    if (!job_->stopped && !IsTerminal(job_->info.state)) job_->info.state = JobState::kCanceled;
    job_->stopped = true;
  }

 private:
  std::shared_ptr<FakeJob> job_;
};

/// Starts FakeJobs. Fault injection: `fail_next` makes the next Deploy fail with it. Records the
/// FlinkJob's status as it was when each job was deployed.
class FakeJobDeployer final : public JobDeployer {
 public:
  explicit FakeJobDeployer(const FakeFlinkJobApi& api) : api_(api) {}
  std::vector<std::shared_ptr<FakeJob>> jobs;
  std::vector<Json> status_at_deploy;
  Status fail_next;
  int attempts = 0;
  JobState start_state = JobState::kRunning;  // what a new job reports at first

  Result<std::unique_ptr<JobDeployment>> Deploy(const DeployRequest& req) override {
    ++attempts;
    status_at_deploy.push_back(api_.object["status"]);
    if (!fail_next.ok()) {
      Status s = fail_next;
      fail_next = Status::Ok();
      return s;
    }
    auto j = std::make_shared<FakeJob>();
    j->id = req.job_id;
    j->restored_from = req.restore_from;
    j->spec_text = req.spec_text;
    j->info.id = req.job_id;
    j->info.name = "job";
    j->info.state = start_state;
    j->info.start_time_ms = EpochMillis();
    const std::string dir = api_.object["status"]["jobStatus"].value("checkpointDir", "");
    j->checkpoint_dir = Path(dir);
    j->info.checkpoint_dir = dir;
    if (!req.restore_from.empty()) {
      j->info.checkpoints.latest_restored = RestoreRecord{};
      j->info.checkpoints.latest_restored->path = req.restore_from + "/_metadata";
    }
    jobs.push_back(j);
    return std::unique_ptr<JobDeployment>(std::make_unique<FakeDeployment>(j));
  }
  FakeJob& last() { return *jobs.back(); }

 private:
  const FakeFlinkJobApi& api_;
};

class FlinkJobReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("eddy-reconciler-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    api_.object = {
        {"apiVersion", "eddy.dev/v1alpha1"},
        {"kind", "FlinkJob"},
        {"metadata", {{"name", "fj"}, {"namespace", "ns"}, {"uid", "u1"}, {"generation", 1}}},
        {"spec",
         {{"parallelism", 2},
          {"upgradeMode", "savepoint"},
          {"savepointDir", "file://" + dir_ + "/sp"},
          {"checkpointing", {{"interval", "5s"}, {"storage", "file://" + dir_ + "/ck"}}},
          {"job",
           {{"name", "job"},
            {"sources", Json::array({{{"name", "events"},
                                      {"generator", {{"rate", 10}, {"fields", {{"n", "n"}}}}}}})},
            {"sinks",
             Json::array({{{"name", "out"}, {"from", "events"}, {"print", Json::object()}}})}}}}}};
    NewOperator();
  }
  void TearDown() override {
    reconciler_.reset();
    fs::remove_all(dir_);
  }

  /// A fresh operator (a restart or a new leader): nothing in memory but what the status says.
  void NewOperator() {
    FlinkJobReconcilerOptions o;
    o.status_interval_ms = 2000;
    o.savepoint_timeout_ms = savepoint_timeout_ms_;
    reconciler_ = std::make_unique<FlinkJobReconciler>(api_, deployer_, o);
  }

  Status Step(int64_t* requeue = nullptr) {
    int64_t r = -1;
    Status s = reconciler_->Reconcile("ns/fj", api_.object, r);
    if (requeue) *requeue = r;
    return s;
  }
  /// Reconciles until the job of the n-th deployment runs (finalizer, deploy).
  void DeployedRunning(size_t n = 1) {
    for (int i = 0; i < 5 && deployer_.jobs.size() < n; ++i) ASSERT_TRUE(Step().ok());
    ASSERT_EQ(deployer_.jobs.size(), n);
    ASSERT_TRUE(Step().ok());
    ASSERT_EQ(api_.job_status()["state"], "RUNNING");
  }
  void ChangeSpec(const char* field, const Json& value) {
    api_.object["spec"][field] = value;
    api_.object["metadata"]["generation"] = api_.object["metadata"]["generation"].get<int>() + 1;
  }
  std::string sp_dir() const { return dir_ + "/sp"; }

  std::string dir_;
  int64_t savepoint_timeout_ms_ = 300000;
  FakeFlinkJobApi api_;
  FakeJobDeployer deployer_{api_};
  std::unique_ptr<FlinkJobReconciler> reconciler_;
};

TEST_F(FlinkJobReconcilerTest, DeploysAfterTheFinalizerAndReportsTheRunningJob) {
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(api_.object["metadata"]["finalizers"], Json::array({"eddy.dev/finalizer"}));
  EXPECT_TRUE(deployer_.jobs.empty()) << "nothing deploys before the finalizer is in place";
  int64_t requeue = -1;
  ASSERT_TRUE(Step(&requeue).ok());
  ASSERT_EQ(deployer_.jobs.size(), 1u);
  EXPECT_EQ(api_.services, 1);
  EXPECT_EQ(api_.pod_deletions, 1) << "pods of an earlier JobMaster go first";
  EXPECT_EQ(deployer_.last().restored_from, "");
  EXPECT_EQ(api_.Count("JobDeployed"), 1);
  EXPECT_EQ(api_.job_status()["jobId"], deployer_.last().id);
  EXPECT_EQ(api_.status()["observedGeneration"], 1);
  EXPECT_EQ(api_.status()["parallelism"], 2);
  EXPECT_EQ(api_.status()["lifecycleState"], "STABLE");
  EXPECT_EQ(api_.Ready(), "True");
  EXPECT_EQ(requeue, 2000);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.jobs.size(), 1u);
}

TEST_F(FlinkJobReconcilerTest, TheJobAndItsDirectoriesReachTheStatusBeforeItRuns) {
  ASSERT_TRUE(Step().ok());
  api_.fail_status_writes = 1;
  Status s = Step();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("recording the job before deploying it"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(deployer_.attempts, 0) << "no job may run that the status does not name";
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 1u);
  const Json& before = deployer_.status_at_deploy[0]["jobStatus"];
  EXPECT_EQ(before["jobId"], deployer_.last().id);
  EXPECT_EQ(before["state"], "RECONCILING");
  EXPECT_EQ(before["checkpointDir"], "file://" + dir_ + "/ck/" + deployer_.last().id);
  EXPECT_EQ(before["savepointDir"], "file://" + sp_dir());
  EXPECT_FALSE(before.contains("restoredFrom"));
}

TEST_F(FlinkJobReconcilerTest, AnInvalidSpecDeploysNothingAndSaysWhy) {
  api_.object["spec"]["job"]["sinks"][0]["from"] = "nowhere";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step().ok());
  EXPECT_TRUE(deployer_.jobs.empty());
  std::string reason;
  EXPECT_EQ(api_.Ready(&reason), "False");
  EXPECT_EQ(reason, "InvalidSpec");
  EXPECT_NE(api_.status()["error"].get<std::string>().find("nowhere"), std::string::npos)
      << api_.status();
  EXPECT_EQ(api_.Count("InvalidSpec"), 1) << "one Event per spec, not per reconcile";
  api_.object["spec"]["job"]["sinks"][0]["from"] = "events";
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.jobs.size(), 1u);
  EXPECT_FALSE(api_.status().contains("error"));
}

TEST_F(FlinkJobReconcilerTest, SavepointUpgradeRestartsFromTheSavepoint) {
  DeployedRunning();
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  FakeJob& old = deployer_.last();
  EXPECT_EQ(old.stop_savepoint_triggers, 1);
  EXPECT_EQ(api_.status()["lifecycleState"], "UPGRADING");
  ASSERT_TRUE(Step().ok());  // still in progress
  EXPECT_EQ(old.savepoint_triggers, 1);
  std::string sp = old.CompleteSavepoint(sp_dir(), EpochMillis(), /*stop=*/true);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_TRUE(deployer_.jobs[0]->stopped);
  EXPECT_EQ(deployer_.last().restored_from, sp);
  EXPECT_EQ(deployer_.status_at_deploy[1]["jobStatus"]["savepointInfo"]["lastSavepoint"]["path"],
            sp)
      << "the upgrade savepoint is in the status before the new job runs";
  EXPECT_EQ(deployer_.status_at_deploy[1]["jobStatus"]["restoredFrom"], sp);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(api_.status()["parallelism"], 3);
  EXPECT_EQ(api_.status()["observedGeneration"], 2);
  EXPECT_EQ(api_.Count("SpecChanged"), 1);
  EXPECT_EQ(api_.job_status()["savepointInfo"]["lastSavepoint"]["triggerType"], "upgrade");
}

TEST_F(FlinkJobReconcilerTest, AFailedUpgradeSavepointKeepsTheRunningSpecInTheStatus) {
  DeployedRunning();
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  deployer_.last().FailSavepoint("injected: a task declined");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.jobs.size(), 1u);
  EXPECT_FALSE(deployer_.last().stopped);
  EXPECT_EQ(deployer_.last().stop_savepoint_triggers, 1) << "not retried for the same spec";
  std::string reason;
  EXPECT_EQ(api_.Ready(&reason), "False");
  EXPECT_EQ(reason, "UpgradeFailed");
  EXPECT_EQ(api_.status()["parallelism"], 2) << "the job still runs the previous spec";
  EXPECT_EQ(api_.status()["observedGeneration"], 1);
  EXPECT_NE(api_.status()["error"].get<std::string>().find("task declined"), std::string::npos);
  EXPECT_EQ(api_.Count("SpecChanged"), 1);
  // A new spec tries again.
  ChangeSpec("parallelism", 4);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.last().stop_savepoint_triggers, 2);
}

TEST_F(FlinkJobReconcilerTest, TwoLastStateUpgradesBeforeACheckpointKeepTheState) {
  api_.object["spec"]["upgradeMode"] = "last-state";
  DeployedRunning();
  std::string chk = deployer_.last().Checkpoint(3, EpochMillis());
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, chk);
  ASSERT_TRUE(Step().ok());
  // The upgraded job has not checkpointed yet when the next upgrade comes.
  ChangeSpec("parallelism", 4);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 3u);
  EXPECT_EQ(deployer_.last().restored_from, chk) << "not empty state, not anything older";
}

TEST_F(FlinkJobReconcilerTest, ASuspendWaitsForTheManualSavepointInFlight) {
  DeployedRunning();
  ChangeSpec("savepointTriggerNonce", 7);
  ASSERT_TRUE(Step().ok());
  FakeJob& job = deployer_.last();
  ASSERT_EQ(job.savepoint_triggers, 1);
  EXPECT_EQ(api_.Count("SavepointTriggered"), 1);
  api_.object["spec"]["state"] = "suspended";
  ASSERT_TRUE(Step().ok());
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(job.savepoint_triggers, 1) << "never two savepoints at once";
  std::string manual = job.CompleteSavepoint(sp_dir(), EpochMillis(), /*stop=*/false);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(api_.job_status()["savepointInfo"]["lastSavepoint"]["path"], manual);
  EXPECT_EQ(api_.job_status()["savepointInfo"]["triggerNonce"], 7);
  EXPECT_EQ(job.stop_savepoint_triggers, 1) << "then the suspend's stop-with-savepoint";
  std::string sp = job.CompleteSavepoint(sp_dir(), EpochMillis() + 1, /*stop=*/true);
  ASSERT_TRUE(Step().ok());
  EXPECT_TRUE(job.stopped);
  EXPECT_EQ(api_.status()["lifecycleState"], "SUSPENDED");
  EXPECT_EQ(api_.job_status()["state"], "SUSPENDED");
  EXPECT_EQ(api_.Count("Suspended"), 1);
  // Resume: from the suspend's savepoint.
  api_.object["spec"]["state"] = "running";
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, sp);
}

TEST_F(FlinkJobReconcilerTest, ADeletionAdoptsTheUpgradeSavepointInFlight) {
  DeployedRunning();
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  FakeJob& job = deployer_.last();
  ASSERT_EQ(job.stop_savepoint_triggers, 1);
  api_.object["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z";
  api_.object["metadata"]["annotations"]["eddy.dev/savepoint-on-deletion"] = "true";
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(job.savepoint_triggers, 1) << "the savepoint in flight serves as the final one";
  EXPECT_EQ(api_.object["metadata"]["finalizers"], Json::array({"eddy.dev/finalizer"}));
  job.CompleteSavepoint(sp_dir(), EpochMillis(), /*stop=*/true);
  ASSERT_TRUE(Step().ok());
  EXPECT_TRUE(job.stopped);
  EXPECT_FALSE(api_.object["metadata"].contains("finalizers"));
  EXPECT_EQ(deployer_.jobs.size(), 1u) << "a deleted FlinkJob is not upgraded";
}

TEST_F(FlinkJobReconcilerTest, ATakeoverFindsAnUpgradeSavepointTheStatusNeverRecorded) {
  DeployedRunning();
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  FakeJob& old = deployer_.last();
  old.Checkpoint(2, EpochMillis() - 1000);
  // The stop-with-savepoint completes (committing the sink's output up to it), and the operator
  // dies before it records it.
  std::string sp = old.CompleteSavepoint(sp_dir(), EpochMillis(), /*stop=*/true);
  NewOperator();
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, sp) << "restoring chk-2 would repeat output";
}

TEST_F(FlinkJobReconcilerTest, ATakeoverFindsCheckpointsTheStatusDoesNotListYet) {
  api_.object["spec"]["upgradeMode"] = "last-state";
  DeployedRunning();
  // Checkpoints complete; the operator dies before a status refresh records them.
  deployer_.last().Checkpoint(1, EpochMillis() - 10);
  std::string chk2 = deployer_.last().Checkpoint(2, EpochMillis());
  EXPECT_FALSE(api_.job_status().contains("lastCheckpoint"));
  NewOperator();
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, chk2);
}

TEST_F(FlinkJobReconcilerTest, ATakeoverBeforeTheFirstCheckpointKeepsTheRestoredSnapshot) {
  api_.object["spec"]["upgradeMode"] = "last-state";
  DeployedRunning();
  std::string chk = deployer_.last().Checkpoint(5, EpochMillis());
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());  // last-state upgrade: job 2 from chk-5
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  NewOperator();  // job 2 never checkpointed, its status may not even say RUNNING
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 3u);
  EXPECT_EQ(deployer_.last().restored_from, chk);
}

TEST_F(FlinkJobReconcilerTest, AStatusWriteFailureAfterTheUpgradeSavepointDelaysTheDeployment) {
  DeployedRunning();
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  std::string sp = deployer_.last().CompleteSavepoint(sp_dir(), EpochMillis(), /*stop=*/true);
  api_.fail_status_writes = 1;
  EXPECT_FALSE(Step().ok());
  EXPECT_EQ(deployer_.jobs.size(), 1u);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, sp);
}

TEST_F(FlinkJobReconcilerTest, AFatalDeploymentErrorWaitsForANewSpec) {
  ASSERT_TRUE(Step().ok());
  deployer_.fail_next = Status::InvalidArgument("injected: no such savepoint");
  int64_t requeue = 0;
  ASSERT_TRUE(Step(&requeue).ok());
  EXPECT_EQ(requeue, -1);
  EXPECT_EQ(api_.Count("DeploymentFailed"), 1);
  EXPECT_EQ(api_.status()["lifecycleState"], "FAILED");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.attempts, 1);
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.attempts, 2);
  EXPECT_EQ(deployer_.jobs.size(), 1u);
}

TEST_F(FlinkJobReconcilerTest, AFailedFirstDeploymentTakesACorrectedInitialSavepointPath) {
  std::string good = WriteSnapshot(dir_ + "/old/savepoint-abcdef-1", "abcdef01", 1, true, 1000);
  api_.object["spec"]["upgradeMode"] = "stateless";
  api_.object["spec"]["initialSavepointPath"] = "file://" + dir_ + "/no-such-savepoint";
  ASSERT_TRUE(Step().ok());
  deployer_.fail_next = Status::InvalidArgument("injected: no such savepoint");
  ASSERT_TRUE(Step().ok());
  EXPECT_FALSE(api_.job_status().contains("jobId")) << "the job that never ran is not named";
  ChangeSpec("initialSavepointPath", good);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 1u);
  EXPECT_EQ(deployer_.last().restored_from, good);
}

TEST_F(FlinkJobReconcilerTest, AStatelessDeploymentInterruptedByACrashKeepsItsChoice) {
  std::string good = WriteSnapshot(dir_ + "/old/savepoint-abcdef-1", "abcdef01", 1, true, 1000);
  api_.object["spec"]["upgradeMode"] = "stateless";
  api_.object["spec"]["initialSavepointPath"] = good;
  DeployedRunning();
  EXPECT_EQ(deployer_.last().restored_from, good);
  // The operator dies right after the pre-deployment status write of the first deployment.
  api_.object["status"]["jobStatus"]["state"] = "RECONCILING";
  NewOperator();
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, good);
}

TEST_F(FlinkJobReconcilerTest, ARetryableDeploymentErrorIsRetriedAndATakeoverResumes) {
  ASSERT_TRUE(Step().ok());
  deployer_.fail_next = Status::Unavailable("injected: the store is down");
  int64_t requeue = 0;
  ASSERT_TRUE(Step(&requeue).ok());
  EXPECT_EQ(requeue, 10000);
  EXPECT_EQ(api_.Count("DeploymentFailed"), 1);
  EXPECT_FALSE(api_.job_status().contains("jobId")) << "the job that never ran is not named";
  ASSERT_TRUE(Step().ok());  // the requeued retry
  EXPECT_EQ(deployer_.attempts, 2);
  ASSERT_EQ(deployer_.jobs.size(), 1u);
  EXPECT_EQ(api_.job_status()["jobId"], deployer_.last().id);
  NewOperator();  // a takeover redeploys it from its (empty) state
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.jobs.size(), 2u);
}

TEST_F(FlinkJobReconcilerTest, UnreadableRecordedSnapshotsDoNotStartAnEmptyJob) {
  api_.object["spec"]["upgradeMode"] = "last-state";
  DeployedRunning();
  std::string chk = deployer_.last().Checkpoint(4, EpochMillis());
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(api_.job_status()["lastCheckpoint"]["path"], chk);
  fs::remove_all(dir_ + "/ck");  // lost (or an unreachable store answering "not found")
  NewOperator();
  int64_t requeue = 0;
  ASSERT_TRUE(Step(&requeue).ok());
  EXPECT_EQ(deployer_.jobs.size(), 1u);
  EXPECT_EQ(requeue, 10000);
  EXPECT_NE(api_.status()["error"].get<std::string>().find("not starting the job with empty"),
            std::string::npos)
      << api_.status();
  // The way out: point initialSavepointPath at a snapshot.
  std::string elsewhere = WriteSnapshot(dir_ + "/backup/savepoint-abcdef-1", "abcdef01", 1, true,
                                        EpochMillis() - 60000);
  ChangeSpec("initialSavepointPath", elsewhere);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, elsewhere);
}

TEST_F(FlinkJobReconcilerTest, AnUpgradeKeepsTheStableSpecAndForgetsThePreviousCheckpoint) {
  api_.object["spec"]["upgradeMode"] = "stateless";
  DeployedRunning();
  deployer_.last().Checkpoint(1, EpochMillis());
  ASSERT_TRUE(Step().ok());
  const std::string stable = api_.status()["reconciliationStatus"]["lastStableSpec"];
  ChangeSpec("parallelism", 3);
  deployer_.start_state = JobState::kCreated;
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_EQ(deployer_.last().restored_from, "");
  const Json& before = deployer_.status_at_deploy[1]["jobStatus"];
  EXPECT_FALSE(before.contains("lastCheckpoint"))
      << "the previous job's checkpoint is not this one's";
  // The upgraded job is not RUNNING yet: the last stable spec is still the previous one.
  EXPECT_EQ(api_.status()["reconciliationStatus"]["lastStableSpec"], stable);
  EXPECT_NE(api_.status()["reconciliationStatus"]["lastReconciledSpec"], stable);
}

TEST_F(FlinkJobReconcilerTest, AnInterruptedUpgradeWhoseSnapshotIsGoneDoesNotStartEmpty) {
  api_.object["spec"]["upgradeMode"] = "last-state";
  DeployedRunning();
  deployer_.last().Checkpoint(5, EpochMillis());
  ChangeSpec("parallelism", 3);
  deployer_.fail_next = Status::Unavailable("injected: the operator dies while deploying");
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 1u);
  // As if the operator had died right after the pre-deployment write: that status stays.
  Json pre = deployer_.status_at_deploy.back();
  ASSERT_EQ(pre["jobStatus"]["state"], "RECONCILING");
  ASSERT_NE(pre["jobStatus"].value("restoredFrom", "").find("chk-5"), std::string::npos);
  api_.object["status"] = pre;
  fs::remove_all(dir_ + "/ck");
  NewOperator();
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.jobs.size(), 1u) << "chk-5 is gone: no job starts without it";
  EXPECT_NE(api_.status()["error"].get<std::string>().find("chk-5"), std::string::npos)
      << api_.status();
}

TEST_F(FlinkJobReconcilerTest, ARecreatedFlinkJobStartsAfresh) {
  api_.object["spec"]["upgradeMode"] = "last-state";
  DeployedRunning();
  deployer_.last().Checkpoint(1, EpochMillis());
  ASSERT_TRUE(Step().ok());
  // Deleted and created again under the same name; the deletion was never reconciled.
  api_.object["metadata"]["uid"] = "u2";
  api_.object.erase("status");
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(deployer_.jobs.size(), 2u);
  EXPECT_TRUE(deployer_.jobs[0]->stopped);
  EXPECT_EQ(deployer_.last().restored_from, "") << "nothing of the old FlinkJob's state";
}

TEST_F(FlinkJobReconcilerTest, AFinishedJobIsNotRunAgainByASuccessor) {
  DeployedRunning();
  deployer_.last().info.state = JobState::kFinished;
  ASSERT_TRUE(Step().ok());
  EXPECT_TRUE(deployer_.last().stopped);
  EXPECT_EQ(api_.job_status()["state"], "FINISHED");
  EXPECT_EQ(api_.Count("JobFINISHED"), 1);
  ASSERT_TRUE(Step().ok());
  NewOperator();
  ASSERT_TRUE(Step().ok());
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.jobs.size(), 1u);
  EXPECT_EQ(api_.job_status()["state"], "FINISHED");
}

TEST_F(FlinkJobReconcilerTest, AManualSavepointIsRecordedAndAFailureReported) {
  DeployedRunning();
  ChangeSpec("savepointTriggerNonce", 1);
  ASSERT_TRUE(Step().ok());
  std::string sp = deployer_.last().CompleteSavepoint(sp_dir(), EpochMillis(), false);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(api_.job_status()["savepointInfo"]["lastSavepoint"]["path"], sp);
  EXPECT_EQ(api_.job_status()["savepointInfo"]["lastSavepoint"]["triggerNonce"], 1);
  EXPECT_EQ(api_.job_status()["savepointInfo"]["history"].size(), 1u);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(deployer_.last().savepoint_triggers, 1) << "a nonce is handled once";
  ChangeSpec("savepointTriggerNonce", 2);
  ASSERT_TRUE(Step().ok());
  deployer_.last().FailSavepoint("injected: disk full");
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(api_.Count("SavepointFailed"), 1);
  EXPECT_NE(api_.status()["error"].get<std::string>().find("disk full"), std::string::npos);
  EXPECT_EQ(api_.job_status()["savepointInfo"]["triggerNonce"], 2);
  EXPECT_EQ(deployer_.jobs.size(), 1u) << "a failed manual savepoint leaves the job alone";
}

TEST_F(FlinkJobReconcilerTest, AStopWithSavepointThatNeverEndsGivesUp) {
  savepoint_timeout_ms_ = 0;
  NewOperator();
  DeployedRunning();
  ChangeSpec("parallelism", 3);
  ASSERT_TRUE(Step().ok());
  ::usleep(2000);
  ASSERT_TRUE(Step().ok());
  std::string reason;
  EXPECT_EQ(api_.Ready(&reason), "False");
  EXPECT_EQ(reason, "UpgradeFailed");
  EXPECT_NE(api_.status()["error"].get<std::string>().find("did not complete"), std::string::npos)
      << api_.status();
}

TEST_F(FlinkJobReconcilerTest, AGoneFlinkJobStopsItsJob) {
  DeployedRunning();
  int64_t requeue = 0;
  ASSERT_TRUE(reconciler_->Reconcile("ns/fj", std::nullopt, requeue).ok());
  EXPECT_TRUE(deployer_.last().stopped);
  EXPECT_EQ(reconciler_->Deployed("ns/fj"), nullptr);
}

std::string Value(const Result<std::string>& r) {
  return r.ok() ? *r : "<error: " + r.status().ToString() + ">";
}

TEST(FlinkJobSnapshotsTest, NewestByCompletionTimeAndSavepointsByJob) {
  std::string dir = fs::temp_directory_path() / ("eddy-snapshots-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::string a = WriteSnapshot(dir + "/ck/j/chk-9", "aaaaaa01", 9, false, 1000);
  std::string b = WriteSnapshot(dir + "/ck/j/chk-10", "aaaaaa01", 10, false, 2000);
  fs::create_directories(dir + "/ck/j/chk-11");  // no _metadata: in progress or lost
  EXPECT_EQ(Value(LatestCheckpoint("file://" + dir + "/ck/j")), b);
  EXPECT_EQ(Value(LatestCheckpoint("file://" + dir + "/ck/none")), "");
  std::string s1 = WriteSnapshot(dir + "/sp/savepoint-aaaaaa-1", "aaaaaa01", 1, true, 3000);
  WriteSnapshot(dir + "/sp/savepoint-aaaaaa-2", "aaaaaa02", 1, true, 4000);  // another job
  WriteSnapshot(dir + "/sp/savepoint-bbbbbb-1", "bbbbbb01", 1, true, 5000);
  EXPECT_EQ(Value(LatestSavepointOf("file://" + dir + "/sp", "aaaaaa01")), s1);
  EXPECT_EQ(Value(LatestSavepointOf("file://" + dir + "/sp", "cccccc01")), "");
  EXPECT_EQ(Value(NewestSnapshot({a, "", s1 + "/_metadata", b, "file://" + dir + "/nothing"})), s1);
  EXPECT_EQ(Value(NewestSnapshot({})), "");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace eddy::control
