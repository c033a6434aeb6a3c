// The Dispatcher's REST API (eddy/control/rest_server.h) over a real control plane with two
// eddy-worker processes: submission, Flink's monitoring paths and shapes, cancel, and bad input
// (bad specs, unknown ids and paths, garbage bodies and raw garbage on the socket). Then the
// standing local cluster through the real binary: `eddy cluster start` (daemonized, EDDY_HOME in
// a temporary folder, non-default ports), `submit`, `wait`, `list`, `cancel`, `cluster stop`.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cpprest/http_client.h>
#include <cpprest/uri_builder.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "eddy/control/control_metrics.h"
#include "eddy/control/control_plane.h"
#include "eddy/control/rest_server.h"
#include "eddy/metrics/metrics.h"
#include "eddy/rpc/envelope.h"

extern char** environ;

namespace eddy::control {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string SourceDir() {
  return EDDY_SOURCE_DIR_DEFAULT;
}
std::string BinaryDir() {
  return EDDY_BINARY_DIR_DEFAULT;
}

/// A port nobody listens on right now (cpprestsdk cannot bind port 0).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

struct Response {
  int status = 0;
  std::string body;
  Json json;
};

Response Request(const std::string& base, const web::http::method& method, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& query = {},
                 const std::string& body = "") {
  Response r;
  web::http::client::http_client client(base);
  web::uri_builder b;
  b.set_path(path);
  for (const auto& [k, v] : query) b.append_query(k, v, true);
  web::http::http_request req(method);
  req.set_request_uri(b.to_uri());
  if (method == web::http::methods::POST) req.set_body(body, "application/yaml");
  auto resp = client.request(req).get();
  r.status = resp.status_code();
  r.body = resp.extract_utf8string(true).get();
  r.json = Json::parse(r.body, nullptr, false);
  return r;
}

/// Raw bytes to the server; the status line's code (0 if none came back).
int RawRequest(int port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    got.append(buf, static_cast<size_t>(n));
    if (got.find("\r\n") != std::string::npos) break;
  }
  ::close(fd);
  std::smatch m;
  if (std::regex_search(got, m, std::regex("^HTTP/1\\.[01] (\\d{3})"))) return std::stoi(m[1]);
  return 0;
}

bool Eventually(const std::function<bool()>& f, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return f();
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// A job that runs until cancelled: 500 generated readings/s with event time, keyed 1 s windows.
constexpr const char* kEndlessJob = R"yaml(
name: endless
parallelism: 2
sources:
  - name: ticks
    generator: {fields: {id: "'k' + (n % 4)", ts: "n * 10", v: "n"}, rate: 500}
    schema: {id: string, ts: int64, v: int64}
    timestamp: "ts"
    watermark: {maxOutOfOrderness: 0ms, interval: 100ms}
steps:
  - name: per_key
    from: ticks
    keyBy: [id]
    window: {tumbling: 1s}
    aggregate: {n: "count()"}
sinks:
  - {name: out, from: per_key, file: {path: out/endless.jsonl, format: json}}
)yaml";

/// A control plane with two eddy-worker processes (2 slots each) and the REST API on a free port.
class RestApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("eddy-rest-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    ControlPlaneOptions o;
    o.rpc_bind_host = "127.0.0.1";
    o.rpc_port = 0;
    o.workers = 2;
    o.slots_per_worker = 2;
    ProcessLauncherOptions lo;
    lo.worker_binary = BinaryDir() + "/worker/eddy-worker";
    o.launcher = std::make_shared<ProcessLauncher>(lo);
    o.verbose = false;
    auto cp = ControlPlane::Start(std::move(o));
    ASSERT_TRUE(cp.ok()) << cp.status().ToString();
    cp_ = std::move(*cp);
    ASSERT_TRUE(cp_->WaitForWorkers(2, 30000).ok());
    for (int attempt = 0; attempt < 5 && !rest_; ++attempt) {
      port_ = FreePort();
      url_ = "http://127.0.0.1:" + std::to_string(port_);
      auto rest = RestServer::Start(cp_.get(), url_);
      if (rest.ok()) rest_ = std::move(*rest);
    }
    ASSERT_TRUE(rest_) << "no free port for the REST API";
  }
  void TearDown() override {
    rest_.reset();
    cp_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Response Get(const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& q = {}) {
    return Request(url_, web::http::methods::GET, path, q);
  }
  Response Post(const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& q = {}) {
    return Request(url_, web::http::methods::POST, "/jobs", q, body);
  }
  Response Cancel(const std::string& id, const std::string& mode = "cancel") {
    return Request(url_, web::http::methods::PATCH, "/jobs/" + id, {{"mode", mode}});
  }
  std::string Submit(const std::string& spec, const std::string& base_dir) {
    auto r = Post(spec, {{"baseDir", base_dir}});
    EXPECT_EQ(r.status, 202) << r.body;
    if (!r.json.is_object() || !r.json.contains("jobid")) return "";
    return r.json["jobid"].get<std::string>();
  }
  std::string StateOf(const std::string& id) {
    auto r = Get("/jobs/" + id);
    return r.status == 200 ? r.json["state"].get<std::string>()
                           : "HTTP " + std::to_string(r.status);
  }
  bool WaitForState(const std::string& id, const std::string& state, int timeout_ms = 60000) {
    return Eventually([&] { return StateOf(id) == state; }, timeout_ms);
  }

  fs::path dir_;
  std::unique_ptr<ControlPlane> cp_;
  std::unique_ptr<RestServer> rest_;
  int port_ = 0;
  std::string url_;
};

TEST_F(RestApiTest, SubmittedJobRunsToFinishedAndEveryEndpointShowsIt) {
  std::string spec = ReadFile(fs::path(SourceDir()) / "examples" / "sensor-window.yaml");
  std::string id = Submit(spec, (fs::path(SourceDir()) / "examples").string());
  ASSERT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{32}"))) << id;
  ASSERT_TRUE(WaitForState(id, "FINISHED")) << StateOf(id);

  auto jobs = Get("/jobs");
  ASSERT_EQ(jobs.status, 200);
  ASSERT_EQ(jobs.json["jobs"].size(), 1u);
  EXPECT_EQ(jobs.json["jobs"][0]["id"], id);
  EXPECT_EQ(jobs.json["jobs"][0]["status"], "FINISHED");

  auto overview = Get("/jobs/overview");
  ASSERT_EQ(overview.status, 200);
  const Json& o = overview.json["jobs"][0];
  EXPECT_EQ(o["jid"], id);
  EXPECT_EQ(o["name"], "sensor-window");
  EXPECT_EQ(o["state"], "FINISHED");
  EXPECT_GE(o["end-time"].get<int64_t>(), o["start-time"].get<int64_t>());
  EXPECT_EQ(o["tasks"]["total"], 4) << o.dump();  // two vertices at parallelism 2
  EXPECT_EQ(o["tasks"]["finished"], 4) << o.dump();

  auto cluster = Get("/overview");
  ASSERT_EQ(cluster.status, 200);
  EXPECT_EQ(cluster.json["taskmanagers"], 2);
  EXPECT_EQ(cluster.json["slots-total"], 4);
  EXPECT_EQ(cluster.json["slots-available"], 4);
  EXPECT_EQ(cluster.json["jobs-running"], 0);
  EXPECT_EQ(cluster.json["jobs-finished"], 1);
  EXPECT_EQ(cluster.json["jobs-cancelled"], 0);
  EXPECT_EQ(cluster.json["jobs-failed"], 0);
  EXPECT_EQ(cluster.json["flink-version"], "eddy-0.1.0");
  EXPECT_EQ(Get("/v1/overview").status, 200) << "Flink's versioned prefix";

  auto details = Get("/jobs/" + id);
  ASSERT_EQ(details.status, 200);
  const Json& d = details.json;
  EXPECT_EQ(d["jid"], id);
  EXPECT_EQ(d["name"], "sensor-window");
  EXPECT_EQ(d["state"], "FINISHED");
  EXPECT_GE(d["duration"].get<int64_t>(), 0);
  EXPECT_EQ(d["restarts"], 0);
  EXPECT_TRUE(d["failure-cause"].is_null());
  ASSERT_EQ(d["vertices"].size(), 2u) << d.dump();
  for (const auto& v : d["vertices"]) {
    EXPECT_EQ(v["parallelism"], 2);
    EXPECT_EQ(v["status"], "FINISHED");
    for (const char* m : {"read-records", "write-records", "read-bytes", "write-bytes"})
      EXPECT_TRUE(v["metrics"].contains(m)) << m << " in " << v.dump();
  }
  EXPECT_NE(d["vertices"][0]["name"].get<std::string>().find("readings"), std::string::npos);
  // Workers report their tasks' final figures before the job finishes, even for a job shorter
  // than a heartbeat interval.
  EXPECT_GT(d["vertices"][0]["metrics"]["write-records"].get<int64_t>(), 0) << d.dump();
  EXPECT_GT(d["vertices"][1]["metrics"]["read-records"].get<int64_t>(), 0) << d.dump();
  EXPECT_EQ(d["plan"]["nodes"].size(), 2u);

  auto plan = Get("/jobs/" + id + "/plan");
  ASSERT_EQ(plan.status, 200);
  EXPECT_EQ(plan.json["plan"]["jid"], id);
  ASSERT_EQ(plan.json["plan"]["nodes"].size(), 2u);
  EXPECT_EQ(plan.json["plan"]["nodes"][1]["inputs"][0]["ship_strategy"], "HASH");

  auto exceptions = Get("/jobs/" + id + "/exceptions");
  ASSERT_EQ(exceptions.status, 200);
  EXPECT_TRUE(exceptions.json["root-exception"].is_null());
  EXPECT_TRUE(exceptions.json["exceptionHistory"]["entries"].empty());

  auto vertex = Get("/jobs/" + id + "/vertices/1");
  ASSERT_EQ(vertex.status, 200);
  EXPECT_EQ(vertex.json["id"], 1);
  ASSERT_EQ(vertex.json["subtasks"].size(), 2u);
  for (const auto& s : vertex.json["subtasks"]) {
    EXPECT_EQ(s["status"], "FINISHED");
    EXPECT_TRUE(
        std::regex_match(s["taskmanager-id"].get<std::string>(), std::regex("worker-[0-9]+")))
        << s.dump();
    EXPECT_TRUE(s["metrics"].contains("read-records"));
  }

  auto bp = Get("/jobs/" + id + "/vertices/0/backpressure");
  ASSERT_EQ(bp.status, 200);
  EXPECT_EQ(bp.json["status"], "ok");
  EXPECT_TRUE(std::regex_match(bp.json["backpressure-level"].get<std::string>(),
                               std::regex("ok|low|high")));
  ASSERT_EQ(bp.json["subtasks"].size(), 2u);
  for (const auto& s : bp.json["subtasks"]) {
    for (const char* k : {"subtask", "backpressure-level", "ratio", "idleRatio", "busyRatio"})
      EXPECT_TRUE(s.contains(k)) << k << " in " << s.dump();
  }

  auto wm = Get("/jobs/" + id + "/vertices/1/watermarks");
  ASSERT_EQ(wm.status, 200);
  ASSERT_EQ(wm.json.size(), 2u);
  EXPECT_EQ(wm.json[0]["id"], "0.currentInputWatermark");
  EXPECT_EQ(wm.json[1]["id"], "1.currentInputWatermark");
  EXPECT_NO_THROW((void)std::stoll(wm.json[0]["value"].get<std::string>()));

  auto tms = Get("/taskmanagers");
  ASSERT_EQ(tms.status, 200);
  ASSERT_EQ(tms.json["taskmanagers"].size(), 2u);
  for (const auto& tm : tms.json["taskmanagers"]) {
    EXPECT_EQ(tm["slotsNumber"], 2);
    EXPECT_EQ(tm["freeSlots"], 2);
    EXPECT_EQ(tm["path"].get<std::string>().rfind("tcp://", 0), 0u) << tm.dump();
    EXPECT_GT(tm["dataPort"].get<int>(), 0);
    EXPECT_GT(tm["timeSinceLastHeartbeat"].get<int64_t>(), 0);
    auto one = Get("/taskmanagers/" + tm["id"].get<std::string>());
    EXPECT_EQ(one.status, 200);
    EXPECT_EQ(one.json["id"], tm["id"]);
  }

  auto metrics = Get("/jobs/" + id + "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("numRestarts"), std::string::npos);
  auto restarts = Get("/jobs/" + id + "/metrics", {{"get", "numRestarts"}});
  ASSERT_EQ(restarts.status, 200);
  ASSERT_EQ(restarts.json.size(), 1u);
  EXPECT_EQ(restarts.json[0]["value"], "0");
}

TEST_F(RestApiTest, BadSpecsUnknownIdsAndGarbageGetClearErrors) {
  // A bad spec: 400 naming the problem, nothing submitted.
  auto bad = Post(R"yaml(
name: bad
sources:
  - {name: g, generator: {fields: {n: "n"}, count: 3}, schema: {n: int64}}
steps:
  - {name: f, from: g, filtr: "n > 1"}
sinks:
  - {name: out, from: f, print: {}}
)yaml",
                  {{"file", "bad.yaml"}});
  ASSERT_EQ(bad.status, 400) << bad.body;
  ASSERT_TRUE(bad.json["errors"].is_array());
  std::string msg = bad.json["errors"][0].get<std::string>();
  EXPECT_NE(msg.find("unknown key 'filtr'"), std::string::npos) << msg;
  EXPECT_EQ(msg.rfind("bad.yaml:", 0), 0u) << msg;

  auto empty = Post("");
  EXPECT_EQ(empty.status, 400);
  EXPECT_NE(empty.body.find("empty"), std::string::npos) << empty.body;
  auto garbage = Post(std::string("\x00\xff{{[[:::\x01\x02", 11));
  EXPECT_EQ(garbage.status, 400) << garbage.body;
  EXPECT_TRUE(garbage.json["errors"].is_array()) << garbage.body;
  auto json_garbage = Post("{\"name\": 3, \"sources\": 7}");
  EXPECT_EQ(json_garbage.status, 400) << json_garbage.body;
  std::string spec = ReadFile(fs::path(SourceDir()) / "examples" / "sensor-window.yaml");
  auto bad_p = Post(spec, {{"parallelism", "lots"}});
  EXPECT_EQ(bad_p.status, 400);
  EXPECT_NE(bad_p.body.find("parallelism"), std::string::npos);
  auto relative = Post(spec, {{"baseDir", "examples"}});
  EXPECT_EQ(relative.status, 400);
  EXPECT_NE(relative.body.find("absolute"), std::string::npos);
  EXPECT_EQ(Get("/jobs").json["jobs"].size(), 0u) << "nothing was submitted";

  // Unknown jobs, vertices and paths: 404 with Flink's {"errors": [...]}.
  std::string nobody(32, '0');
  for (const std::string& path :
       {"/jobs/" + nobody, "/jobs/" + nobody + "/plan", "/jobs/" + nobody + "/exceptions",
        "/jobs/" + nobody + "/vertices/0", "/jobs/" + nobody + "/vertices/0/backpressure",
        std::string("/jobs/not-an-id"), std::string("/nope"), std::string("/jobs/overview/x"),
        std::string("/taskmanagers/worker-99")}) {
    auto r = Get(path);
    EXPECT_EQ(r.status, 404) << path << ": " << r.body;
    EXPECT_TRUE(r.json.is_object() && r.json["errors"].is_array()) << path << ": " << r.body;
  }
  EXPECT_EQ(Cancel(nobody).status, 404);
  auto wrong_method = Request(url_, web::http::methods::DEL, "/overview");
  EXPECT_EQ(wrong_method.status, 405);

  std::string id = Submit(spec, (fs::path(SourceDir()) / "examples").string());
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Get("/jobs/" + id + "/vertices/7").status, 404);
  EXPECT_EQ(Get("/jobs/" + id + "/vertices/x/watermarks").status, 404);
  EXPECT_EQ(Get("/jobs/" + id + "/vertices/0/flamegraph").status, 404);
  EXPECT_EQ(Cancel(id, "sometimes").status, 400);
  EXPECT_EQ(Cancel(id, "stop").status, 400);
  ASSERT_TRUE(WaitForState(id, "FINISHED"));
  auto late = Cancel(id);
  EXPECT_EQ(late.status, 409) << "a finished job cannot be cancelled: " << late.body;

  // Raw garbage on the socket: an error status or a closed connection, never a crash.
  EXPECT_NE(RawRequest(port_, "GARBAGE\r\n\r\n"), 200);
  EXPECT_EQ(RawRequest(port_, "GET /jobs/%zz%ff HTTP/1.1\r\nHost: x\r\n\r\n") / 100, 4);
  // A body that never arrives: cpprestsdk answers (413) only after the whole body; the request
  // hangs until our read timeout, and other requests are served meanwhile.
  EXPECT_NE(RawRequest(port_,
                       "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
                       "name: x"),
            200);
  EXPECT_NE(RawRequest(port_, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)),
            200);
  EXPECT_EQ(Get("/overview").status, 200) << "the server still answers";
}

TEST_F(RestApiTest, LongRunningJobShowsProgressAndCancels) {
  std::string id = Submit(kEndlessJob, dir_.string());
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForState(id, "RUNNING", 30000)) << StateOf(id);

  // Heartbeats carry the tasks' counters: records flow out of the source vertex.
  EXPECT_TRUE(Eventually(
      [&] {
        auto d = Get("/jobs/" + id);
        return d.status == 200 && d.json["vertices"][0]["metrics"]["write-records"] > 0 &&
               d.json["vertices"][1]["metrics"]["read-records"] > 0;
      },
      20000))
      << Get("/jobs/" + id).body;
  // The windows' input watermark advances past Long.MIN_VALUE.
  EXPECT_TRUE(Eventually(
      [&] {
        auto wm = Get("/jobs/" + id + "/vertices/1/watermarks");
        if (wm.status != 200 || wm.json.size() != 2) return false;
        for (const auto& m : wm.json) {
          if (std::stoll(m["value"].get<std::string>()) <= 0) return false;
        }
        return true;
      },
      20000))
      << Get("/jobs/" + id + "/vertices/1/watermarks").body;
  auto metrics = Get("/jobs/" + id + "/vertices/0/metrics", {{"get", "0.numRecordsOut"}});
  ASSERT_EQ(metrics.status, 200);
  ASSERT_EQ(metrics.json.size(), 1u) << metrics.body;
  EXPECT_GT(std::stoll(metrics.json[0]["value"].get<std::string>()), 0);
  auto running = Get("/overview");
  EXPECT_EQ(running.json["jobs-running"], 1);
  EXPECT_EQ(running.json["slots-available"], 2);
  auto bp = Get("/jobs/" + id + "/vertices/0/backpressure");
  EXPECT_EQ(bp.json["status"], "ok");
  ASSERT_EQ(bp.json["subtasks"].size(), 2u);

  auto cancel = Cancel(id);
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  ASSERT_TRUE(WaitForState(id, "CANCELED", 30000)) << StateOf(id);
  EXPECT_EQ(Cancel(id).status, 202) << "cancelling a cancelled job is a no-op";
  auto after = Get("/overview");
  EXPECT_EQ(after.json["jobs-cancelled"], 1);
  EXPECT_EQ(after.json["jobs-running"], 0);
  EXPECT_EQ(after.json["slots-available"], 4);
  auto overview = Get("/jobs/overview");
  EXPECT_GE(overview.json["jobs"][0]["end-time"].get<int64_t>(), 0);
}

TEST_F(RestApiTest, FailedJobShowsItsRootException) {
  std::ofstream(dir_ / "bad.csv") << "a,1\nb,notanumber\n";
  std::string id = Submit(R"yaml(
name: failing
parallelism: 1
restartStrategy: {type: none}
sources:
  - name: rows
    file: {path: bad.csv, format: csv}
    schema: {id: string, v: int64}
    onError: fail
sinks:
  - {name: out, from: rows, file: {path: out.jsonl, format: json}}
)yaml",
                          dir_.string());
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForState(id, "FAILED")) << StateOf(id);
  auto ex = Get("/jobs/" + id + "/exceptions");
  ASSERT_EQ(ex.status, 200);
  std::string root = ex.json["root-exception"].get<std::string>();
  EXPECT_NE(root.find("bad record 'b,notanumber'"), std::string::npos) << root;
  EXPECT_GT(ex.json["timestamp"].get<int64_t>(), 0);
  ASSERT_EQ(ex.json["exceptionHistory"]["entries"].size(), 1u);
  EXPECT_EQ(ex.json["exceptionHistory"]["entries"][0]["stacktrace"], root);
  auto d = Get("/jobs/" + id);
  EXPECT_EQ(d.json["failure-cause"], root);
  EXPECT_EQ(Get("/overview").json["jobs-failed"], 1);
  EXPECT_EQ(Cancel(id).status, 409);
}

/// kEndlessJob with checkpoints every 200 ms into `dir`/checkpoints and savepoints by default into
/// `dir`/savepoints; its output goes to `out`.
std::string CheckpointedJob(const fs::path& dir, const std::string& out) {
  std::string spec = kEndlessJob;
  spec.replace(spec.find("out/endless.jsonl"), std::string("out/endless.jsonl").size(), out);
  return spec + "checkpointing: {interval: 200ms, storage: \"file://" +
         (dir / "checkpoints").string() + "\"}\nsavepointDir: " + (dir / "savepoints").string() +
         "\n";
}

TEST_F(RestApiTest, CheckpointsSavepointsStopAndResume) {
  std::string id = Submit(CheckpointedJob(dir_, "out/a.jsonl"), dir_.string());
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForState(id, "RUNNING", 30000)) << StateOf(id);

  // Periodic checkpoints complete and show up in Flink's shapes.
  ASSERT_TRUE(Eventually(
      [&] {
        auto c = Get("/jobs/" + id + "/checkpoints");
        return c.status == 200 && c.json["counts"]["completed"].get<int>() >= 2;
      },
      30000))
      << Get("/jobs/" + id + "/checkpoints").body;
  auto c = Get("/jobs/" + id + "/checkpoints");
  const Json& counts = c.json["counts"];
  EXPECT_GE(counts["total"].get<int>(),
            counts["completed"].get<int>() + counts["failed"].get<int>());
  EXPECT_EQ(counts["restored"], 0);
  const Json& latest = c.json["latest"]["completed"];
  ASSERT_TRUE(latest.is_object()) << c.body;
  EXPECT_EQ(latest["className"], "completed");
  EXPECT_EQ(latest["status"], "COMPLETED");
  EXPECT_EQ(latest["is_savepoint"], false);
  EXPECT_EQ(latest["checkpoint_type"], "CHECKPOINT");
  int64_t latest_id = latest["id"].get<int64_t>();
  EXPECT_GE(latest_id, 2);
  std::string chk_dir = "file://" + (dir_ / "checkpoints" / id).string() + "/chk-";
  EXPECT_EQ(latest["external_path"].get<std::string>().rfind(chk_dir, 0), 0u) << latest.dump();
  EXPECT_GE(latest["latest_ack_timestamp"].get<int64_t>(),
            latest["trigger_timestamp"].get<int64_t>());
  EXPECT_GE(latest["end_to_end_duration"].get<int64_t>(), 0);
  EXPECT_GT(latest["state_size"].get<int64_t>(), 0) << latest.dump();
  EXPECT_GT(latest["checkpointed_size"].get<int64_t>(), 0) << latest.dump();
  EXPECT_EQ(latest["num_subtasks"], 4);
  EXPECT_EQ(latest["num_acknowledged_subtasks"], 4);
  EXPECT_TRUE(latest.contains("alignment_buffered"));
  EXPECT_TRUE(c.json["latest"]["savepoint"].is_null());
  EXPECT_TRUE(c.json["latest"]["restored"].is_null());
  for (const char* k : {"checkpointed_size", "state_size", "end_to_end_duration"}) {
    const Json& sm = c.json["summary"][k];
    for (const char* f : {"min", "max", "avg", "p50", "p90", "p95", "p99", "p999"})
      EXPECT_TRUE(sm.contains(f)) << k << "." << f << " in " << c.body;
    EXPECT_LE(sm["min"].get<double>(), sm["max"].get<double>());
  }
  ASSERT_GE(c.json["history"].size(), 2u);
  EXPECT_GT(c.json["history"][0]["id"].get<int64_t>(), c.json["history"][1]["id"].get<int64_t>())
      << "newest first";
  EXPECT_TRUE(fs::exists(dir_ / "checkpoints" / id)) << "checkpoints are written there";

  auto details = Get("/jobs/" + id + "/checkpoints/details/" + std::to_string(latest_id));
  ASSERT_EQ(details.status, 200) << details.body;
  EXPECT_EQ(details.json["id"], latest_id);
  EXPECT_EQ(Get("/jobs/" + id + "/checkpoints/details/999999").status, 404);
  EXPECT_EQ(Get("/jobs/" + id + "/checkpoints/details/x").status, 404);

  auto config = Get("/jobs/" + id + "/checkpoints/config");
  ASSERT_EQ(config.status, 200);
  EXPECT_EQ(config.json["mode"], "exactly_once");
  EXPECT_EQ(config.json["interval"], 200);
  EXPECT_EQ(config.json["timeout"], 600000);
  EXPECT_EQ(config.json["min_pause"], 0);
  EXPECT_EQ(config.json["max_concurrent"], 1);
  EXPECT_EQ(config.json["externalization"]["enabled"], true);
  EXPECT_EQ(config.json["externalization"]["delete_on_cancellation"], false);
  EXPECT_EQ(config.json["checkpoint_storage"], "file://" + (dir_ / "checkpoints").string());
  EXPECT_EQ(config.json["retained"], 3);
  EXPECT_EQ(config.json["savepoint_dir"], (dir_ / "savepoints").string());

  // The control plane's metrics carry the same figures.
  auto families = CollectControlPlaneMetrics(*cp_);
  EXPECT_TRUE(metrics::ValidateFamilies(families).ok())
      << metrics::ValidateFamilies(families).ToString();
  std::map<std::string, const prometheus::MetricFamily*> by_name;
  for (const auto& f : families) by_name[f.name] = &f;
  for (const char* name :
       {"eddy_job_last_checkpoint_duration_seconds", "eddy_job_last_checkpoint_size_bytes",
        "eddy_job_last_checkpoint_full_size_bytes", "eddy_job_last_checkpoint_alignment_seconds",
        "eddy_job_checkpoints_in_progress", "eddy_job_checkpoints_completed_total",
        "eddy_job_checkpoints_failed_total", "eddy_job_checkpoint_restores_total",
        "eddy_job_checkpoint_restore_fallbacks_total", "eddy_job_checkpoint_duration_seconds",
        "eddy_job_checkpoint_size_bytes"}) {
    ASSERT_TRUE(by_name.count(name)) << name;
    ASSERT_EQ(by_name[name]->metric.size(), 1u) << name;
  }
  EXPECT_GE(by_name["eddy_job_checkpoints_completed_total"]->metric[0].counter.value, 2);
  EXPECT_GE(by_name["eddy_job_checkpoint_duration_seconds"]->metric[0].histogram.sample_count, 2u);
  EXPECT_GT(by_name["eddy_job_last_checkpoint_full_size_bytes"]->metric[0].gauge.value, 0);

  // A savepoint into the job's savepointDir, then one into a given directory.
  auto savepoint = [&](const std::string& body) -> std::string {
    auto t = Request(url_, web::http::methods::POST, "/jobs/" + id + "/savepoints", {}, body);
    EXPECT_EQ(t.status, 202) << t.body;
    if (t.status != 202) return "";
    std::string trigger = t.json["request-id"].get<std::string>();
    Response st;
    EXPECT_TRUE(Eventually(
        [&] {
          st = Get("/jobs/" + id + "/savepoints/" + trigger);
          return st.status == 200 && st.json["status"]["id"] == "COMPLETED";
        },
        30000))
        << st.body;
    if (!st.json["operation"].contains("location")) {
      ADD_FAILURE() << st.body;
      return "";
    }
    return st.json["operation"]["location"].get<std::string>();
  };
  std::string sp1 = savepoint("");
  std::string sp_default = "file://" + (dir_ / "savepoints").string() + "/savepoint-";
  EXPECT_EQ(sp1.rfind(sp_default, 0), 0u) << sp1;
  EXPECT_TRUE(fs::exists(sp1.substr(7) + "/_metadata")) << sp1;
  std::string sp2 = savepoint("{\"target-directory\": \"" + (dir_ / "elsewhere").string() +
                              "\", \"cancel-job\": false}");
  EXPECT_EQ(sp2.rfind("file://" + (dir_ / "elsewhere").string() + "/savepoint-", 0), 0u) << sp2;
  EXPECT_EQ(StateOf(id), "RUNNING");
  auto after = Get("/jobs/" + id + "/checkpoints");
  ASSERT_TRUE(after.json["latest"]["savepoint"].is_object()) << after.body;
  EXPECT_EQ(after.json["latest"]["savepoint"]["is_savepoint"], true);
  EXPECT_EQ(after.json["latest"]["savepoint"]["checkpoint_type"], "SAVEPOINT");
  EXPECT_EQ(after.json["latest"]["savepoint"]["external_path"], sp2);

  // Bad requests: 400 with Flink's errors; unknown jobs and triggers: 404; wrong methods: 405.
  auto post = [&](const std::string& path, const std::string& body) {
    return Request(url_, web::http::methods::POST, path, {}, body);
  };
  for (const std::string& body :
       {std::string("not json"), std::string("[1, 2]"), std::string("{\"target-directory\": 5}"),
        std::string("{\"cancel-job\": \"yes\"}"), std::string("{\"targetDirectory\": \"/x\"}"),
        std::string("{\"target-directory\": \"relative/dir\"}"),
        std::string("{\"formatType\": \"NATIVE\"}")}) {
    auto r = post("/jobs/" + id + "/savepoints", body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_TRUE(r.json.is_object() && r.json["errors"].is_array()) << r.body;
  }
  EXPECT_EQ(post("/jobs/" + id + "/stop", "{\"drain\": 1}").status, 400);
  EXPECT_EQ(post("/jobs/" + id + "/stop", "{\"target-directory\": \"/x\"}").status, 400);
  std::string nobody(32, '0');
  EXPECT_EQ(post("/jobs/" + nobody + "/savepoints", "{}").status, 404);
  EXPECT_EQ(post("/jobs/" + nobody + "/stop", "{}").status, 404);
  EXPECT_EQ(Get("/jobs/" + nobody + "/checkpoints").status, 404);
  EXPECT_EQ(Get("/jobs/" + nobody + "/checkpoints/config").status, 404);
  EXPECT_EQ(Get("/jobs/" + nobody + "/savepoints/abc").status, 404);
  auto unknown_trigger = Get("/jobs/" + id + "/savepoints/no-such-trigger");
  EXPECT_EQ(unknown_trigger.status, 404) << unknown_trigger.body;
  EXPECT_TRUE(unknown_trigger.json["errors"].is_array());
  EXPECT_EQ(Get("/jobs/" + id + "/savepoints").status, 405);
  EXPECT_EQ(Get("/jobs/" + id + "/stop").status, 405);
  EXPECT_EQ(post("/jobs/" + id + "/checkpoints", "{}").status, 405);
  EXPECT_EQ(Get("/jobs/" + id + "/checkpoints/nope").status, 404);
  EXPECT_EQ(StateOf(id), "RUNNING") << "bad requests change nothing";

  // Stop with a savepoint: the savepoint completes, then the job finishes.
  auto stop = post("/jobs/" + id + "/stop", "{\"targetDirectory\": \"" + (dir_ / "final").string() +
                                                "\", \"drain\": false}");
  ASSERT_EQ(stop.status, 202) << stop.body;
  std::string trigger = stop.json["request-id"].get<std::string>();
  Response st;
  ASSERT_TRUE(Eventually(
      [&] {
        st = Get("/jobs/" + id + "/savepoints/" + trigger);
        return st.json["status"]["id"] == "COMPLETED";
      },
      30000))
      << st.body;
  ASSERT_TRUE(st.json["operation"].contains("location")) << st.body;
  std::string final_sp = st.json["operation"]["location"].get<std::string>();
  EXPECT_EQ(final_sp.rfind("file://" + (dir_ / "final").string() + "/savepoint-", 0), 0u);
  ASSERT_TRUE(WaitForState(id, "FINISHED", 30000)) << StateOf(id);
  auto late = post("/jobs/" + id + "/savepoints", "{}");
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_EQ(post("/jobs/" + id + "/stop", "{}").status, 409);

  // Resume from it (Flink's savepointPath): the new job restores, its counts say so.
  auto missing = Post(CheckpointedJob(dir_, "out/b.jsonl"),
                      {{"baseDir", dir_.string()}, {"savepointPath", (dir_ / "nothing").string()}});
  EXPECT_EQ(missing.status, 400) << missing.body;
  EXPECT_NE(missing.body.find((dir_ / "nothing").string()), std::string::npos) << missing.body;
  EXPECT_EQ(Post(CheckpointedJob(dir_, "out/b.jsonl"), {{"baseDir", dir_.string()},
                                                        {"savepointPath", final_sp},
                                                        {"allowNonRestoredState", "maybe"}})
                .status,
            400);
  EXPECT_EQ(Post(CheckpointedJob(dir_, "out/b.jsonl"),
                 {{"baseDir", dir_.string()}, {"checkpointInterval", "1ms"}})
                .status,
            400);
  auto resumed = Post(CheckpointedJob(dir_, "out/b.jsonl"), {{"baseDir", dir_.string()},
                                                             {"savepointPath", final_sp},
                                                             {"allowNonRestoredState", "false"},
                                                             {"checkpointInterval", "0ms"}});
  ASSERT_EQ(resumed.status, 202) << resumed.body;
  std::string id2 = resumed.json["jobid"].get<std::string>();
  ASSERT_TRUE(WaitForState(id2, "RUNNING", 30000)) << StateOf(id2);
  auto restored = Get("/jobs/" + id2 + "/checkpoints");
  EXPECT_EQ(restored.json["counts"]["restored"], 1) << restored.body;
  const Json& from = restored.json["latest"]["restored"];
  ASSERT_TRUE(from.is_object()) << restored.body;
  EXPECT_EQ(from["is_savepoint"], true);
  EXPECT_EQ(from["external_path"], final_sp + "/_metadata");
  EXPECT_GT(from["restore_timestamp"].get<int64_t>(), 0);
  EXPECT_EQ(Get("/jobs/" + id2 + "/checkpoints/config").json["interval"], 0)
      << "checkpointInterval overrides the spec";
  EXPECT_EQ(Cancel(id2).status, 202);
  ASSERT_TRUE(WaitForState(id2, "CANCELED", 30000));
}

// A standing cluster is idle most of the time, and workers leave a control plane they have not
// heard from for 30 s: the control plane answers every heartbeat.
TEST(StandingClusterTest, ControlPlaneAnswersHeartbeats) {
  ControlPlaneOptions o;
  o.rpc_bind_host = "127.0.0.1";
  o.rpc_port = 0;
  o.verbose = false;
  auto cp = ControlPlane::Start(std::move(o));
  ASSERT_TRUE(cp.ok());
  zmq::context_t ctx;
  zmq::socket_t d(ctx, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.set(zmq::sockopt::routing_id, "w1");
  d.set(zmq::sockopt::rcvtimeo, 5000);
  d.connect((*cp)->rpc_endpoint());
  auto receive = [&]() -> std::optional<proto::Envelope> {
    zmq::message_t m;
    if (!d.recv(m)) return std::nullopt;
    auto e = rpc::Unpack(std::string_view(static_cast<const char*>(m.data()), m.size()));
    if (!e.ok()) return std::nullopt;
    return *e;
  };
  proto::Envelope reg;
  reg.mutable_register_worker()->set_worker_id("w1");
  reg.mutable_register_worker()->set_slots(1);
  reg.mutable_register_worker()->set_data_endpoint("tcp://127.0.0.1:1");
  d.send(zmq::buffer(rpc::Pack(reg)), zmq::send_flags::none);
  auto ack = receive();
  ASSERT_TRUE(ack && ack->register_ack().accepted());
  for (int i = 0; i < 3; ++i) {
    proto::Envelope hb;
    hb.mutable_heartbeat()->set_worker_id("w1");
    d.send(zmq::buffer(rpc::Pack(hb)), zmq::send_flags::none);
    auto reply = receive();
    ASSERT_TRUE(reply.has_value()) << "no answer to heartbeat " << i;
    EXPECT_TRUE(reply->has_register_ack() && reply->register_ack().accepted());
  }
  EXPECT_EQ((*cp)->Cluster().malformed_messages, 0u);
}

// ---- the standing local cluster through the real binary ----

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class ClusterCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fs::temp_directory_path() / ("eddy-cluster-cli-" + std::to_string(::getpid()));
    fs::remove_all(home_);
    fs::create_directories(home_);
  }
  void TearDown() override {
    // A test that failed half-way must not leave a cluster behind.
    std::ifstream pid_file(home_ / "cluster" / "cluster.pid");
    long pid = 0;
    if (pid_file >> pid && pid > 0) {
      ::kill(static_cast<pid_t>(pid), SIGTERM);
      for (int i = 0; i < 100 && ::kill(static_cast<pid_t>(pid), 0) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::error_code ec;
    fs::remove_all(home_, ec);
  }

  CliResult Eddy(const std::string& args) {
    fs::path err = home_ / "stderr.txt";
    std::string cmd = "env -u EDDY_REST EDDY_HOME=" + home_.string() + " " + BinaryDir() +
                      "/operator/eddy " + args + " 2>" + err.string();
    CliResult r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = ReadFile(err);
    return r;
  }

  fs::path home_;
};

/// The process ended (a zombie not yet reaped by whoever inherited it counts as ended).
bool Gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST_F(ClusterCliTest, StartSubmitListCancelStop) {
  int rest_port = FreePort();
  int rpc_port = FreePort();
  std::string url = "http://127.0.0.1:" + std::to_string(rest_port);
  auto start = Eddy("cluster start --workers 2 --slots 2 --rest-port " + std::to_string(rest_port) +
                    " --rpc-port " + std::to_string(rpc_port));
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_NE(start.err.find("cluster started"), std::string::npos) << start.err;
  EXPECT_EQ(Trim(ReadFile(home_ / "cluster" / "cluster.rest")), url);
  EXPECT_TRUE(fs::exists(home_ / "cluster" / "cluster.pid"));
  EXPECT_TRUE(fs::exists(home_ / "cluster" / "cluster.log"));
  long pid = std::stol(ReadFile(home_ / "cluster" / "cluster.pid"));

  auto again = Eddy("cluster start --rest-port " + std::to_string(FreePort()));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already running"), std::string::npos) << again.err;

  auto status = Eddy("cluster status");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("taskmanagers: 2, slots: 4 total, 4 available"), std::string::npos)
      << status.out;
  auto tms = Request(url, web::http::methods::GET, "/taskmanagers");
  ASSERT_EQ(tms.json["taskmanagers"].size(), 2u);
  std::vector<pid_t> worker_pids;
  for (const auto& tm : tms.json["taskmanagers"]) worker_pids.push_back(tm["pid"].get<int>());

  // A finished job: submit prints the id, wait exits 0 with FINISHED.
  auto submit =
      Eddy("submit " + (fs::path(SourceDir()) / "examples" / "sensor-window.yaml").string());
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  std::string id = Trim(submit.out);
  ASSERT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{32}"))) << submit.out;
  auto wait = Eddy("wait " + id + " --timeout 60s");
  EXPECT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_EQ(Trim(wait.out), "FINISHED");

  // A bad job: exit 2 naming the problem.
  fs::path bad = home_ / "bad.yaml";
  std::ofstream(bad) << "name: bad\nsources: 7\n";
  auto rejected = Eddy("submit " + bad.string());
  EXPECT_EQ(rejected.exit_code, 2);
  EXPECT_NE(rejected.err.find("invalid job"), std::string::npos) << rejected.err;
  EXPECT_NE(rejected.err.find("sources"), std::string::npos) << rejected.err;

  // A job that runs until cancelled; relative paths resolve next to its file.
  fs::path endless = home_ / "endless.yaml";
  std::ofstream(endless) << kEndlessJob;
  auto submit2 = Eddy("submit --parallelism 1 " + endless.string());
  ASSERT_EQ(submit2.exit_code, 0) << submit2.err;
  std::string id2 = Trim(submit2.out);
  ASSERT_TRUE(
      Eventually([&] { return Eddy("list").out.find("RUNNING") != std::string::npos; }, 30000));
  auto list = Eddy("list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(std::regex_search(list.out, std::regex(id + " +sensor-window +FINISHED")))
      << list.out;
  EXPECT_TRUE(std::regex_search(list.out, std::regex(id2 + " +endless +RUNNING"))) << list.out;
  EXPECT_TRUE(Eventually([&] { return fs::exists(home_ / "out" / "endless.jsonl"); }, 10000));

  auto cancel = Eddy("cancel " + id2);
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  auto wait2 = Eddy("wait " + id2 + " --timeout 60s");
  EXPECT_EQ(wait2.exit_code, 1);
  EXPECT_EQ(Trim(wait2.out), "CANCELED");
  auto unknown = Eddy("cancel " + std::string(32, 'f'));
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("not found"), std::string::npos) << unknown.err;

  // Stop: the cluster and its workers end, its files go away, clients say no one answers.
  auto stop = Eddy("cluster stop");
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_TRUE(Eventually([&] { return Gone(static_cast<pid_t>(pid)); }, 5000))
      << "cluster process still there";
  for (pid_t w : worker_pids) {
    EXPECT_TRUE(Eventually([&] { return Gone(w); }, 5000)) << "worker " << w << " still there";
  }
  EXPECT_FALSE(fs::exists(home_ / "cluster" / "cluster.pid"));
  EXPECT_FALSE(fs::exists(home_ / "cluster" / "cluster.rest"));
  EXPECT_NE(ReadFile(home_ / "cluster" / "cluster.log").find("cluster stopped"), std::string::npos);
  auto gone = Eddy("list --rest " + url);
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("no Eddy cluster answers at " + url), std::string::npos) << gone.err;
  auto stop_again = Eddy("cluster stop");
  EXPECT_EQ(stop_again.exit_code, 1);
  EXPECT_NE(stop_again.err.find("no local cluster is running"), std::string::npos);
}

TEST_F(ClusterCliTest, ForegroundClusterStopsOnSigterm) {
  int rest_port = FreePort();
  std::string url = "http://127.0.0.1:" + std::to_string(rest_port);
  // posix_spawn, not fork: this process has threads.
  std::string eddy = BinaryDir() + "/operator/eddy";
  std::string port = std::to_string(rest_port);
  std::vector<std::string> args = {eddy,          "cluster", "start",      "--foreground",
                                   "--workers",   "1",       "--slots",    "1",
                                   "--rest-port", port,      "--rpc-port", "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {"EDDY_HOME=" + home_.string()};
  for (char** e = environ; *e; ++e) {
    if (std::string(*e).rfind("EDDY_HOME=", 0) != 0) env_strings.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  std::string log = (home_ / "foreground.log").string();
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t child = -1;
  int rc = ::posix_spawn(&child, eddy.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ASSERT_EQ(rc, 0) << std::strerror(rc);
  EXPECT_TRUE(Eventually(
      [&] {
        try {
          return Request(url, web::http::methods::GET, "/overview").json["taskmanagers"] == 1;
        } catch (const std::exception&) {
          return false;
        }
      },
      30000));
  auto status = Eddy("cluster status");
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find(url), std::string::npos) << status.out;
  ::kill(child, SIGTERM);
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << ReadFile(log);
  EXPECT_FALSE(fs::exists(home_ / "cluster" / "cluster.pid"));
  EXPECT_NE(ReadFile(log).find("cluster stopped"), std::string::npos) << ReadFile(log);
}

}  // namespace
}  // namespace eddy::control
