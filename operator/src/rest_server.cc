#include "eddy/control/rest_server.h"
#include "eddy/clock.h"

#include <fcntl.h>

#include <cpprest/http_listener.h>
#include <cpprest/uri.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "eddy/spec/job_spec.h"
#include "operator/src/rest_checkpoints.h"

namespace eddy::control {

namespace {

// Flink's ordered field names read better than alphabetical ones.
using Json = nlohmann::ordered_json;

/// Bodies larger than this (by Content-Length) are refused with 413 without being decoded.
/// cpprestsdk still receives the whole body before the answer goes out.
constexpr uint64_t kMaxBodyBytes = 8ull << 20;

RestResponse Reply(int status, const Json& body) {
  // Invalid UTF-8 in a message (a garbage job spec quoted back) is replaced, never thrown.
  return {status, body.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

RestResponse Error(int status, const std::string& message) {
  Json j = Json::object();
  j["errors"] = Json::array({message});
  return Reply(status, j);
}

RestResponse NotFound(const RestRequest& r) {
  std::string path;
  for (const auto& s : r.path) path += "/" + s;
  return Error(404, "Not found: " + (path.empty() ? std::string("/") : path));
}

RestResponse MethodNotAllowed(const RestRequest& r, const char* allowed) {
  return Error(405, "method " + r.method + " is not allowed here (allowed: " + allowed + ")");
}

RestResponse JobNotFound(const std::string& id) {
  return Error(404, "Job " + id + " not found");
}

/// "true" or "false" (Flink's boolean query parameters).
std::optional<bool> ParseBool(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  return std::nullopt;
}

/// Parses a whole decimal integer in [lo, hi].
std::optional<int64_t> ParseInt(const std::string& s, int64_t lo, int64_t hi) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

int64_t JobDurationMs(const JobInfo& j) {
  return (j.end_time_ms >= 0 ? j.end_time_ms : EpochMillis()) - j.start_time_ms;
}

/// Flink's ExecutionState names in lower case, the keys of a "tasks" count object.
constexpr const char* kTaskStates[] = {"created",     "scheduled",   "deploying", "running",
                                       "finished",    "canceling",   "canceled",  "failed",
                                       "reconciling", "initializing"};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

/// Subtask counts per state over `vertices`: Flink's "tasks" of a job overview (lower-case keys
/// and a total) or of a vertex (upper-case keys).
Json TaskCounts(const std::vector<VertexInfo>& vertices, bool job_overview) {
  Json counts = Json::object();
  if (job_overview) counts["total"] = 0;
  for (const char* s : kTaskStates) counts[job_overview ? std::string(s) : Upper(s)] = 0;
  int total = 0;
  for (const auto& v : vertices) {
    for (const auto& s : v.subtasks) {
      ++total;
      std::string key = job_overview ? Lower(s.state) : s.state;
      if (counts.contains(key)) counts[key] = counts[key].get<int>() + 1;
    }
  }
  if (job_overview) counts["total"] = total;
  return counts;
}

/// A vertex's state from its subtasks' (Flink's ExecutionJobVertex#getAggregateJobVertexState).
std::string VertexStatus(const VertexInfo& v) {
  int finished = 0, failed = 0, canceled = 0, running = 0, deploying = 0;
  for (const auto& s : v.subtasks) {
    finished += s.state == "FINISHED";
    failed += s.state == "FAILED";
    canceled += s.state == "CANCELED";
    running += s.state == "RUNNING";
    deploying += s.state == "DEPLOYING";
  }
  int n = static_cast<int>(v.subtasks.size());
  if (n > 0 && finished == n) return "FINISHED";
  if (failed > 0) return "FAILED";
  if (canceled > 0) return "CANCELED";
  if (running > 0 || finished > 0) return "RUNNING";
  if (deploying > 0) return "DEPLOYING";
  return "CREATED";
}

bool SubtaskTerminal(const SubtaskInfo& s) {
  return s.state == "FINISHED" || s.state == "CANCELED" || s.state == "FAILED";
}

/// Flink's IOMetricsInfo for one subtask or the sum over a vertex.
Json IoMetrics(const std::vector<SubtaskInfo>& subtasks) {
  uint64_t rr = 0, wr = 0, rb = 0, wb = 0;
  bool complete = !subtasks.empty();
  for (const auto& s : subtasks) {
    rr += s.records_in;
    wr += s.records_out;
    rb += s.bytes_in;
    wb += s.bytes_out;
    complete &= SubtaskTerminal(s);
  }
  Json m = Json::object();
  m["read-bytes"] = rb;
  m["read-bytes-complete"] = complete;
  m["write-bytes"] = wb;
  m["write-bytes-complete"] = complete;
  m["read-records"] = rr;
  m["read-records-complete"] = complete;
  m["write-records"] = wr;
  m["write-records-complete"] = complete;
  return m;
}

/// The plan as Flink's JobPlanInfo.RawJson: our JobGraph JSON plus jid and type.
Json Plan(const JobInfo& j) {
  Json plan = Json::parse(j.plan_json, nullptr, /*allow_exceptions=*/false);
  if (plan.is_discarded() || !plan.is_object()) plan = Json::object();
  Json out = Json::object();
  out["jid"] = j.id;
  out["name"] = j.name;
  out["type"] = "STREAMING";
  for (auto& [k, v] : plan.items()) {
    if (k != "name") out[k] = v;
  }
  return out;
}

Json JobOverview(const JobInfo& j) {
  Json o = Json::object();
  o["jid"] = j.id;
  o["name"] = j.name;
  o["state"] = std::string(JobStateName(j.state));
  o["start-time"] = j.start_time_ms;
  o["end-time"] = j.end_time_ms;
  o["duration"] = JobDurationMs(j);
  o["last-modification"] = j.end_time_ms >= 0 ? j.end_time_ms : j.start_time_ms;
  o["tasks"] = TaskCounts(j.vertices, /*job_overview=*/true);
  return o;
}

Json VertexSummary(const JobInfo& j, const VertexInfo& v) {
  Json o = Json::object();
  o["id"] = v.id;
  o["name"] = v.name;
  o["parallelism"] = v.parallelism;
  o["status"] = VertexStatus(v);
  o["start-time"] = j.start_time_ms;
  o["end-time"] = j.end_time_ms;
  o["duration"] = JobDurationMs(j);
  o["tasks"] = TaskCounts({v}, /*job_overview=*/false);
  o["metrics"] = IoMetrics(v.subtasks);
  return o;
}

Json JobDetails(const JobInfo& j) {
  Json o = Json::object();
  o["jid"] = j.id;
  o["name"] = j.name;
  o["isStoppable"] = false;
  o["state"] = std::string(JobStateName(j.state));
  o["start-time"] = j.start_time_ms;
  o["end-time"] = j.end_time_ms;
  o["duration"] = JobDurationMs(j);
  o["now"] = EpochMillis();
  Json plan = Plan(j);
  o["maxParallelism"] = plan.contains("maxParallelism") ? plan["maxParallelism"] : Json(-1);
  Json ts = Json::object();
  ts["CREATED"] = j.start_time_ms;
  if (j.end_time_ms >= 0) ts[std::string(JobStateName(j.state))] = j.end_time_ms;
  o["timestamps"] = ts;
  Json vertices = Json::array();
  Json status_counts = Json::object();
  for (const auto& v : j.vertices) {
    vertices.push_back(VertexSummary(j, v));
    std::string st = VertexStatus(v);
    status_counts[st] = status_counts.contains(st) ? status_counts[st].get<int>() + 1 : 1;
  }
  o["vertices"] = vertices;
  o["status-counts"] = status_counts;
  o["plan"] = plan;
  // Eddy's additions.
  o["restarts"] = j.restarts;
  o["failure-cause"] = j.failure.empty() ? Json(nullptr) : Json(j.failure);
  return o;
}

Json TaskManager(const WorkerInfo& w) {
  Json o = Json::object();
  o["id"] = w.id;
  o["path"] = w.data_endpoint;
  auto colon = w.data_endpoint.rfind(':');
  auto port = colon == std::string::npos ? std::nullopt
                                         : ParseInt(w.data_endpoint.substr(colon + 1), 0, 65535);
  o["dataPort"] = port ? *port : -1;
  o["jmxPort"] = -1;
  // As in Flink, despite the name: the time (epoch ms) of the last heartbeat.
  o["timeSinceLastHeartbeat"] = w.last_heartbeat_ms;
  o["slotsNumber"] = w.slots;
  o["freeSlots"] = w.slots_free;
  // Eddy's additions.
  o["pid"] = w.pid;
  o["metricsEndpoint"] = w.metrics_endpoint;
  o["networkBuffersUsed"] = w.buffers_used;
  o["networkBuffersTotal"] = w.buffers_total;
  return o;
}

const char* BackpressureLevel(double ratio) {
  // Flink's JobVertexBackPressureHandler thresholds.
  if (ratio <= 0.10) return "ok";
  if (ratio <= 0.5) return "low";
  return "high";
}

std::string WatermarkValue(int64_t w) {
  return std::to_string(w);
}

/// Flink's metric listing: without `get`, the available ids; with `get=a,b`, their values.
RestResponse Metrics(const RestRequest& r,
                     const std::vector<std::pair<std::string, std::string>>& all) {
  Json out = Json::array();
  auto get = r.query.find("get");
  if (get == r.query.end()) {
    for (const auto& [id, value] : all) out.push_back(Json{{"id", id}});
    return Reply(200, out);
  }
  std::vector<std::string> wanted;
  size_t start = 0;
  const std::string& list = get->second;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) wanted.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  for (const auto& w : wanted) {
    for (const auto& [id, value] : all) {
      if (id == w) {
        Json m = Json::object();
        m["id"] = id;
        m["value"] = value;
        out.push_back(m);
      }
    }
  }
  return Reply(200, out);
}

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// ---- handlers ----

RestResponse Overview(ControlPlane& cp) {
  ClusterInfo c = cp.Cluster();
  Json o = Json::object();
  o["taskmanagers"] = c.workers.size();
  o["slots-total"] = c.slots_total;
  o["slots-available"] = c.slots_free;
  o["jobs-running"] = c.jobs_running;
  o["jobs-finished"] = c.jobs_finished;
  o["jobs-cancelled"] = c.jobs_canceled;
  o["jobs-failed"] = c.jobs_failed;
  o["flink-version"] = kEddyRestVersion;
  o["flink-commit"] = "";
  return Reply(200, o);
}

RestResponse Config() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  Json o = Json::object();
  o["refresh-interval"] = 3000;
  o["timezone-name"] = local.tm_zone ? local.tm_zone : "UTC";
  o["timezone-offset"] = static_cast<int64_t>(local.tm_gmtoff) * 1000;
  o["flink-version"] = kEddyRestVersion;
  o["flink-revision"] = "";
  Json features = Json::object();
  features["web-submit"] = false;
  features["web-cancel"] = true;
  features["web-rescale"] = false;
  features["web-history"] = false;
  o["features"] = features;
  return Reply(200, o);
}

RestResponse Index() {
  Json o = Json::object();
  o["flink-version"] = kEddyRestVersion;
  o["endpoints"] = Json::array({"GET /overview",
                                "GET /config",
                                "GET /jobs",
                                "POST /jobs",
                                "GET /jobs/overview",
                                "GET /jobs/:jobid",
                                "PATCH /jobs/:jobid?mode=cancel",
                                "GET /jobs/:jobid/plan",
                                "GET /jobs/:jobid/exceptions",
                                "GET /jobs/:jobid/metrics",
                                "GET /jobs/:jobid/checkpoints",
                                "GET /jobs/:jobid/checkpoints/config",
                                "GET /jobs/:jobid/checkpoints/details/:checkpointid",
                                "POST /jobs/:jobid/savepoints",
                                "GET /jobs/:jobid/savepoints/:triggerid",
                                "POST /jobs/:jobid/stop",
                                "GET /jobs/:jobid/vertices/:vertexid",
                                "GET /jobs/:jobid/vertices/:vertexid/backpressure",
                                "GET /jobs/:jobid/vertices/:vertexid/watermarks",
                                "GET /jobs/:jobid/vertices/:vertexid/metrics",
                                "GET /taskmanagers",
                                "GET /taskmanagers/:taskmanagerid"});
  return Reply(200, o);
}

RestResponse ListJobs(ControlPlane& cp) {
  Json jobs = Json::array();
  for (const auto& j : cp.Jobs()) {
    Json o = Json::object();
    o["id"] = j.id;
    o["status"] = std::string(JobStateName(j.state));
    jobs.push_back(o);
  }
  Json out = Json::object();
  out["jobs"] = jobs;
  return Reply(200, out);
}

RestResponse JobsOverview(ControlPlane& cp) {
  Json jobs = Json::array();
  for (const auto& j : cp.Jobs()) jobs.push_back(JobOverview(j));
  Json out = Json::object();
  out["jobs"] = jobs;
  return Reply(200, out);
}

RestResponse SubmitJob(ControlPlane& cp, const RestRequest& r) {
  bool blank = true;
  for (char c : r.body) blank &= c == ' ' || c == '\t' || c == '\r' || c == '\n';
  if (blank) return Error(400, "the request body must be a job spec (YAML or JSON); it is empty");
  JobSubmission sub;
  sub.spec_text = r.body;
  if (auto it = r.query.find("parallelism"); it != r.query.end()) {
    auto p = ParseInt(it->second, 1, 32768);
    if (!p) return Error(400, "parallelism must be an integer between 1 and 32768");
    sub.parallelism = static_cast<int>(*p);
  }
  if (auto it = r.query.find("baseDir"); it != r.query.end()) {
    if (it->second.empty() || it->second[0] != '/')
      return Error(400, "baseDir must be an absolute path, not '" + it->second + "'");
    sub.base_dir = it->second;
  } else {
    std::error_code ec;
    sub.base_dir = std::filesystem::current_path(ec).string();
  }
  if (auto it = r.query.find("file"); it != r.query.end() && !it->second.empty()) {
    sub.spec_file = it->second;
  }
  // Flink's run-request names for the savepoint to start from.
  if (auto it = r.query.find("savepointPath"); it != r.query.end()) {
    if (it->second.empty()) return Error(400, "savepointPath is empty");
    if (it->second[0] != '/' && it->second.find("://") == std::string::npos)
      return Error(400,
                   "savepointPath must be an absolute path or a URI, not '" + it->second + "'");
    sub.from_savepoint = it->second;
  }
  if (auto it = r.query.find("allowNonRestoredState"); it != r.query.end()) {
    auto b = ParseBool(it->second);
    if (!b) return Error(400, "allowNonRestoredState must be true or false");
    sub.allow_non_restored_state = *b;
  }
  // Eddy's overrides of the spec's checkpointing.interval / .storage and savepointDir.
  if (auto it = r.query.find("checkpointInterval"); it != r.query.end()) {
    auto d = ParseDuration(it->second);
    if (!d.ok() || (d->millis() != 0 && d->millis() < 10))
      return Error(400, "checkpointInterval must be a duration of at least 10ms (0 = off), not '" +
                            it->second + "'");
    sub.checkpoint_interval = *d;
  }
  if (auto it = r.query.find("unalignedCheckpoints"); it != r.query.end()) {
    auto b = ParseBool(it->second);
    if (!b) return Error(400, "unalignedCheckpoints must be true or false");
    sub.unaligned_checkpoints = *b;
  }
  for (const auto& [param, field] : {std::pair{"checkpointDir", &sub.checkpoint_storage},
                                     std::pair{"savepointDir", &sub.savepoint_dir}}) {
    auto it = r.query.find(param);
    if (it == r.query.end()) continue;
    if (it->second.empty() || (it->second[0] != '/' && it->second.find("://") == std::string::npos))
      return Error(
          400, std::string(param) + " must be an absolute path or a URI, not '" + it->second + "'");
    *field = it->second;
  }
  auto id = cp.Submit(std::move(sub));
  if (!id.ok()) {
    const Status& s = id.status();
    int code = s.code() == StatusCode::kInternal ? 500 : s.IsRetryable() ? 503 : 400;
    return Error(code, s.message());
  }
  Json out = Json::object();
  out["jobid"] = *id;
  out["jobUrl"] = "/jobs/" + *id;
  return Reply(202, out);
}

RestResponse CancelJob(ControlPlane& cp, const RestRequest& r, const std::string& id) {
  auto mode = r.query.find("mode");
  if (mode != r.query.end() && mode->second != "cancel") {
    if (mode->second == "stop")
      return Error(400, "mode=stop is not supported; stop with a savepoint through POST /jobs/" +
                            id + "/stop");
    return Error(400, "unknown termination mode '" + mode->second + "' (use mode=cancel)");
  }
  auto job = cp.Job(id);
  if (!job) return JobNotFound(id);
  if (job->state == JobState::kFinished || job->state == JobState::kFailed) {
    return Error(409, "Job cancellation failed: job " + id +
                          " already reached the terminal state " +
                          std::string(JobStateName(job->state)));
  }
  Status s = cp.Cancel(id);
  if (s.code() == StatusCode::kNotFound) return JobNotFound(id);
  if (!s.ok()) return Error(500, s.message());
  return Reply(202, Json::object());
}

RestResponse Exceptions(const JobInfo& j) {
  Json o = Json::object();
  Json ts = j.end_time_ms >= 0 && !j.failure.empty() ? Json(j.end_time_ms) : Json(nullptr);
  o["root-exception"] = j.failure.empty() ? Json(nullptr) : Json(j.failure);
  o["timestamp"] = ts;
  o["all-exceptions"] = Json::array();
  o["truncated"] = false;
  Json entries = Json::array();
  if (!j.failure.empty()) {
    Json e = Json::object();
    e["exceptionName"] = "JobFailure";
    e["stacktrace"] = j.failure;
    e["timestamp"] = ts;
    e["taskName"] = nullptr;
    e["location"] = nullptr;
    e["taskManagerId"] = nullptr;
    e["failureLabels"] = Json::object();
    e["concurrentExceptions"] = Json::array();
    entries.push_back(e);
  }
  Json history = Json::object();
  history["entries"] = entries;
  history["truncated"] = false;
  o["exceptionHistory"] = history;
  return Reply(200, o);
}

RestResponse JobMetrics(const RestRequest& r, const JobInfo& j) {
  // Flink's uptime: time since the job started while it runs, -1 once it ended.
  int64_t uptime = IsTerminal(j.state) ? -1 : EpochMillis() - j.start_time_ms;
  return Metrics(r, {{"numRestarts", std::to_string(j.restarts)},
                     {"fullRestarts", std::to_string(j.restarts)},
                     {"uptime", std::to_string(uptime)}});
}

RestResponse VertexDetails(ControlPlane& cp, const JobInfo& j, const VertexInfo& v) {
  std::map<std::string, std::string> endpoints;
  for (const auto& w : cp.Cluster().workers) endpoints[w.id] = w.data_endpoint;
  Json o = Json::object();
  o["id"] = v.id;
  o["name"] = v.name;
  o["parallelism"] = v.parallelism;
  Json plan = Plan(j);
  o["maxParallelism"] = plan.contains("maxParallelism") ? plan["maxParallelism"] : Json(-1);
  o["now"] = EpochMillis();
  Json subtasks = Json::array();
  for (const auto& s : v.subtasks) {
    Json st = Json::object();
    st["subtask"] = s.subtask;
    st["status"] = s.state;
    st["attempt"] = j.restarts;
    st["endpoint"] = endpoints.count(s.worker_id) ? Json(endpoints[s.worker_id]) : Json(nullptr);
    st["taskmanager-id"] = s.worker_id.empty() ? Json(nullptr) : Json(s.worker_id);
    st["metrics"] = IoMetrics({s});
    // Eddy's additions.
    st["currentInputWatermark"] = s.input_watermark;
    st["busyRatio"] = s.busy_ratio;
    st["backPressuredRatio"] = s.backpressured_ratio;
    st["idleRatio"] = s.idle_ratio;
    subtasks.push_back(st);
  }
  o["subtasks"] = subtasks;
  return Reply(200, o);
}

RestResponse Backpressure(const VertexInfo& v) {
  Json o = Json::object();
  if (v.subtasks.empty()) {
    o["status"] = "deprecated";
    return Reply(200, o);
  }
  double max_ratio = 0;
  Json subtasks = Json::array();
  for (const auto& s : v.subtasks) {
    max_ratio = std::max(max_ratio, s.backpressured_ratio);
    Json st = Json::object();
    st["subtask"] = s.subtask;
    st["backpressure-level"] = BackpressureLevel(s.backpressured_ratio);
    st["ratio"] = s.backpressured_ratio;
    st["idleRatio"] = s.idle_ratio;
    st["busyRatio"] = s.busy_ratio;
    subtasks.push_back(st);
  }
  o["status"] = "ok";
  o["backpressure-level"] = BackpressureLevel(max_ratio);
  o["end-timestamp"] = EpochMillis();
  o["subtasks"] = subtasks;
  return Reply(200, o);
}

RestResponse Watermarks(const VertexInfo& v) {
  Json out = Json::array();
  for (const auto& s : v.subtasks) {
    Json m = Json::object();
    m["id"] = std::to_string(s.subtask) + ".currentInputWatermark";
    m["value"] = WatermarkValue(s.input_watermark);
    out.push_back(m);
  }
  return Reply(200, out);
}

RestResponse VertexMetrics(const RestRequest& r, const VertexInfo& v) {
  std::vector<std::pair<std::string, std::string>> all;
  for (const auto& s : v.subtasks) {
    std::string p = std::to_string(s.subtask) + ".";
    all.emplace_back(p + "numRecordsIn", std::to_string(s.records_in));
    all.emplace_back(p + "numRecordsOut", std::to_string(s.records_out));
    all.emplace_back(p + "numBytesIn", std::to_string(s.bytes_in));
    all.emplace_back(p + "numBytesOut", std::to_string(s.bytes_out));
    all.emplace_back(p + "currentInputWatermark", WatermarkValue(s.input_watermark));
    all.emplace_back(p + "busyTimeMsPerSecond", Fixed(s.busy_ratio * 1000));
    all.emplace_back(p + "backPressuredTimeMsPerSecond", Fixed(s.backpressured_ratio * 1000));
    all.emplace_back(p + "idleTimeMsPerSecond", Fixed(s.idle_ratio * 1000));
    all.emplace_back(p + "isBackPressured", s.backpressured_ratio > 0.5 ? "true" : "false");
  }
  return Metrics(r, all);
}

RestResponse TaskManagers(ControlPlane& cp) {
  Json tms = Json::array();
  for (const auto& w : cp.Cluster().workers) tms.push_back(TaskManager(w));
  Json out = Json::object();
  out["taskmanagers"] = tms;
  return Reply(200, out);
}

/// The body of a POST as a JSON object (an empty body is `{}`) whose keys are all in `allowed`;
/// else the 400 to answer.
std::variant<Json, RestResponse> JsonBody(const RestRequest& r,
                                          std::initializer_list<const char*> allowed) {
  bool blank = true;
  for (char c : r.body) blank &= c == ' ' || c == '\t' || c == '\r' || c == '\n';
  if (blank) return Json::object();
  Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Error(400, "the request body must be a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }) ==
        allowed.end()) {
      std::string names;
      for (const char* a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
      return Error(400, "unknown field '" + k + "' in the request body (known: " + names + ")");
    }
  }
  return j;
}

/// `field` of `body` as a string: absent or null = "", else 400 unless a string.
std::optional<RestResponse> StringField(const Json& body, const char* field, std::string& out) {
  if (!body.contains(field) || body[field].is_null()) return std::nullopt;
  if (!body[field].is_string()) return Error(400, std::string(field) + " must be a string");
  out = body[field].get<std::string>();
  if (!out.empty() && out[0] != '/' && out.find("://") == std::string::npos)
    return Error(400, std::string(field) + " must be an absolute path or a URI, not '" + out + "'");
  return std::nullopt;
}

/// `field` of `body` as a bool: absent or null = false, else 400 unless a bool.
std::optional<RestResponse> BoolField(const Json& body, const char* field, bool& out) {
  if (!body.contains(field) || body[field].is_null()) return std::nullopt;
  if (!body[field].is_boolean()) return Error(400, std::string(field) + " must be true or false");
  out = body[field].get<bool>();
  return std::nullopt;
}

/// Flink's `POST /jobs/:id/savepoints` (`{"target-directory", "cancel-job"}`) and
/// `POST /jobs/:id/stop` (`{"targetDirectory", "drain"}`): 202 `{"request-id"}`.
RestResponse TriggerSavepoint(ControlPlane& cp, const RestRequest& r, const std::string& id,
                              bool stop_request) {
  auto job = cp.Job(id);
  if (!job) return JobNotFound(id);
  auto parsed = stop_request ? JsonBody(r, {"targetDirectory", "drain", "formatType"})
                             : JsonBody(r, {"target-directory", "cancel-job", "formatType"});
  if (auto* err = std::get_if<RestResponse>(&parsed)) return *err;
  const Json& body = std::get<Json>(parsed);
  std::string dir;
  bool stop = stop_request, drain = false;
  std::optional<RestResponse> bad =
      StringField(body, stop_request ? "targetDirectory" : "target-directory", dir);
  if (!bad)
    bad = stop_request ? BoolField(body, "drain", drain) : BoolField(body, "cancel-job", stop);
  if (!bad && body.contains("formatType") && body["formatType"] != "CANONICAL")
    bad = Error(400, "formatType: only CANONICAL savepoints exist");
  if (bad) return *bad;
  if (IsTerminal(job->state)) {
    return Error(409, "Job " + id + " is " + std::string(JobStateName(job->state)) +
                          "; a savepoint needs a running job");
  }
  auto trigger = cp.TriggerSavepoint(id, dir, stop, drain);
  if (!trigger.ok()) {
    const Status& s = trigger.status();
    if (s.code() == StatusCode::kNotFound) return JobNotFound(id);
    // Unavailable: not every task runs yet (deploying, restarting): try again shortly.
    return Error(s.IsRetryable()                     ? 503
                 : s.code() == StatusCode::kInternal ? 500
                                                     : 400,
                 s.message());
  }
  Json out = Json::object();
  out["request-id"] = *trigger;
  return Reply(202, out);
}

RestResponse SavepointStatusOf(ControlPlane& cp, const std::string& id,
                               const std::string& trigger) {
  auto st = cp.SavepointState(id, trigger);
  if (!st.ok()) {
    if (!cp.Job(id)) return JobNotFound(id);
    return Error(404, "Operation not found: no savepoint request " + trigger + " for job " + id);
  }
  return Reply(200, rest::SavepointOperation(*st));
}

/// `/jobs/:id/checkpoints[/config | /details/:checkpointid]` and `/jobs/:id/savepoints[/:trigger]`,
/// `/jobs/:id/stop`; nullopt for other paths.
std::optional<RestResponse> RouteCheckpoints(ControlPlane& cp, const RestRequest& r,
                                             const std::vector<std::string>& p) {
  if (p.size() < 3) return std::nullopt;
  const std::string& id = p[1];
  const bool get = r.method == "GET", post = r.method == "POST";
  if (p[2] == "stop" && p.size() == 3) {
    return post ? TriggerSavepoint(cp, r, id, /*stop_request=*/true) : MethodNotAllowed(r, "POST");
  }
  if (p[2] == "savepoints") {
    if (p.size() == 3) {
      return post ? TriggerSavepoint(cp, r, id, /*stop_request=*/false)
                  : MethodNotAllowed(r, "POST");
    }
    if (p.size() == 4) return get ? SavepointStatusOf(cp, id, p[3]) : MethodNotAllowed(r, "GET");
    return NotFound(r);
  }
  if (p[2] != "checkpoints") return std::nullopt;
  const bool config = p.size() == 4 && p[3] == "config";
  const bool details = p.size() == 5 && p[3] == "details";
  if (p.size() != 3 && !config && !details) return NotFound(r);
  if (!get) return MethodNotAllowed(r, "GET");
  auto job = cp.Job(id);
  if (!job) return JobNotFound(id);
  if (config) return Reply(200, rest::CheckpointConfigInfo(*job));
  if (details) {
    auto cid = ParseInt(p[4], 1, INT64_MAX / 10);
    auto found = cid ? rest::CheckpointDetails(*job, *cid) : std::nullopt;
    if (!found) {
      return Error(404, "Could not find checkpointing statistics for checkpoint " + p[4] +
                            " (only the last 10 are kept)");
    }
    return Reply(200, *found);
  }
  return Reply(200, rest::CheckpointingStatistics(*job));
}

RestResponse Route(ControlPlane& cp, const RestRequest& r) {
  std::vector<std::string> p = r.path;
  if (!p.empty() && p[0] == "v1") p.erase(p.begin());  // Flink's versioned prefix
  bool get = r.method == "GET";
  if (p.empty()) return get ? Index() : MethodNotAllowed(r, "GET");
  if (p[0] == "overview" && p.size() == 1) return get ? Overview(cp) : MethodNotAllowed(r, "GET");
  if (p[0] == "config" && p.size() == 1) return get ? Config() : MethodNotAllowed(r, "GET");
  if (p[0] == "taskmanagers") {
    if (p.size() == 1) return get ? TaskManagers(cp) : MethodNotAllowed(r, "GET");
    if (p.size() == 2) {
      if (!get) return MethodNotAllowed(r, "GET");
      for (const auto& w : cp.Cluster().workers) {
        if (w.id == p[1]) return Reply(200, TaskManager(w));
      }
      return Error(404, "TaskManager " + p[1] + " not found");
    }
    return NotFound(r);
  }
  if (p[0] != "jobs") return NotFound(r);
  if (p.size() == 1) {
    if (get) return ListJobs(cp);
    if (r.method == "POST") return SubmitJob(cp, r);
    return MethodNotAllowed(r, "GET, POST");
  }
  if (p[1] == "overview" && p.size() == 2)
    return get ? JobsOverview(cp) : MethodNotAllowed(r, "GET");
  const std::string& id = p[1];
  if (p.size() == 2 && r.method == "PATCH") return CancelJob(cp, r, id);
  if (auto resp = RouteCheckpoints(cp, r, p)) return *resp;
  if (p.size() > 5) return NotFound(r);
  // Everything below reads one job.
  static const char* const kJobPaths[] = {"plan", "exceptions", "metrics", "vertices"};
  if (p.size() >= 3 &&
      std::find(std::begin(kJobPaths), std::end(kJobPaths), p[2]) == std::end(kJobPaths))
    return NotFound(r);
  if (p.size() == 3 && p[2] == "vertices") return NotFound(r);
  if (p.size() >= 4 && p[2] != "vertices") return NotFound(r);
  static const char* const kVertexPaths[] = {"backpressure", "watermarks", "metrics"};
  if (p.size() == 5 &&
      std::find(std::begin(kVertexPaths), std::end(kVertexPaths), p[4]) == std::end(kVertexPaths))
    return NotFound(r);
  if (!get) return MethodNotAllowed(r, p.size() == 2 ? "GET, PATCH" : "GET");
  auto job = cp.Job(id);
  if (!job) return JobNotFound(id);
  if (p.size() == 2) return Reply(200, JobDetails(*job));
  if (p.size() == 3) {
    if (p[2] == "plan") {
      Json o = Json::object();
      o["plan"] = Plan(*job);
      return Reply(200, o);
    }
    if (p[2] == "exceptions") return Exceptions(*job);
    return JobMetrics(r, *job);
  }
  auto vid = ParseInt(p[3], 0, INT_MAX);
  const VertexInfo* vertex = nullptr;
  for (const auto& v : job->vertices) {
    if (vid && v.id == *vid) vertex = &v;
  }
  if (!vertex) return Error(404, "Vertex " + p[3] + " not found in job " + id);
  if (p.size() == 4) return VertexDetails(cp, *job, *vertex);
  if (p[4] == "backpressure") return Backpressure(*vertex);
  if (p[4] == "watermarks") return Watermarks(*vertex);
  return VertexMetrics(r, *vertex);
}

}  // namespace

RestResponse HandleRestRequest(ControlPlane& cp, const RestRequest& request) {
  try {
    return Route(cp, request);
  } catch (const std::exception& e) {
    return Error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return Error(500, "internal error");
  }
}

// ---- HTTP transport (cpprestsdk) ----

namespace {

/// cpprestsdk opens its listening socket without close-on-exec, so every worker process the
/// launcher spawns afterwards would inherit it (and keep the port bound after the cluster
/// died). Finds the socket listening on `port` (/proc/net/tcp{,6}) among our fds and marks it.
void MarkListenerCloseOnExec(int port) {
  std::set<std::string> sockets;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      auto colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;  // 0A = LISTEN
      if (std::strtol(local.c_str() + colon + 1, nullptr, 16) == port)
        sockets.insert("socket:[" + inode + "]");
    }
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    auto target = std::filesystem::read_symlink(e.path(), link_ec);
    if (link_ec || !sockets.count(target.string())) continue;
    int fd = std::atoi(e.path().filename().c_str());
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

}  // namespace

namespace http = web::http;
using http::experimental::listener::http_listener;

struct RestServer::Impl {
  std::function<RestResponse(const RestRequest&)> handler;
  std::string address;
  std::unique_ptr<http_listener> listener;

  void Serve(http::http_request req) {
    RestResponse resp;
    try {
      resp = Decode(req);
    } catch (const std::exception& e) {
      resp = Error(400, std::string("malformed request: ") + e.what());
    } catch (...) {
      resp = Error(400, "malformed request");
    }
    if (resp.status >= 500) std::fprintf(stderr, "eddy: rest: %s\n", resp.body.c_str());
    try {
      req.reply(static_cast<http::status_code>(resp.status), std::move(resp.body),
                "application/json; charset=utf-8")
          .then([](const pplx::task<void>& t) {
            try {
              t.get();
            } catch (...) {
              // The client went away before the reply: nothing to do.
            }
          });
    } catch (...) {
      // Same: a reply that cannot be sent must not take the server down.
    }
  }

  /// Turns the HTTP request into a RestRequest (400/413 for what cannot be decoded) and routes it.
  RestResponse Decode(http::http_request& req) {
    RestRequest r;
    r.method = req.method();
    web::uri uri = req.relative_uri();
    for (const auto& s : web::uri::split_path(uri.path())) {
      r.path.push_back(web::uri::decode(s));
    }
    for (const auto& [k, v] : web::uri::split_query(uri.query())) {
      r.query[web::uri::decode(k)] = web::uri::decode(v);
    }
    uint64_t length = req.headers().content_length();
    if (length > kMaxBodyBytes) {
      return Error(413, "request body of " + std::to_string(length) +
                            " bytes exceeds the limit of " + std::to_string(kMaxBodyBytes) +
                            " bytes");
    }
    if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
      r.body = req.extract_utf8string(/*ignore_content_type=*/true).get();
    }
    return handler(r);
  }
};

Result<std::unique_ptr<RestServer>> RestServer::Start(ControlPlane* cp,
                                                      const std::string& address) {
  if (cp == nullptr) return Status::InvalidArgument("REST API: no control plane");
  return Start([cp](const RestRequest& r) { return HandleRestRequest(*cp, r); }, address);
}

Result<std::unique_ptr<RestServer>> RestServer::Start(
    std::function<RestResponse(const RestRequest&)> handler, const std::string& address) {
  std::unique_ptr<RestServer> server(new RestServer());
  server->impl_ = std::make_unique<Impl>();
  Impl* impl = server->impl_.get();
  impl->handler = std::move(handler);
  impl->address = address;
  try {
    web::uri uri(address);
    if (uri.scheme() != "http" || uri.host().empty() || uri.port() <= 0) {
      return Status::InvalidArgument("REST API: address must look like http://HOST:PORT, not '" +
                                     address + "' (port 0 is not supported)");
    }
    impl->listener = std::make_unique<http_listener>(uri);
    impl->listener->support([impl](const http::http_request& req) { impl->Serve(req); });
    impl->listener->open().wait();
    MarkListenerCloseOnExec(uri.port());
  } catch (const web::uri_exception& e) {
    return Status::InvalidArgument("REST API: bad address '" + address + "': " + e.what());
  } catch (const std::exception& e) {
    impl->listener.reset();
    return Status::IOError("REST API: cannot listen on " + address + ": " + e.what());
  }
  return server;
}

RestServer::~RestServer() {
  if (!impl_ || !impl_->listener) return;
  try {
    impl_->listener->close().wait();
  } catch (...) {
    // Closing a listener that failed is not worth a crash at shutdown.
  }
}

const std::string& RestServer::address() const {
  return impl_->address;
}

}  // namespace eddy::control
