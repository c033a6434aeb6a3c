// eddy: the command-line front door. `eddy run JOB` runs a job spec in this process (local
// embedded mode), `eddy plan JOB` prints its execution plan, `eddy validate JOB` only checks it.
// `eddy cluster start|stop|status` manages a standing local cluster (control plane, REST API and
// eddy-worker processes), and `eddy submit|list|cancel|wait|savepoint|stop` talk to a cluster's
// REST API.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <cpprest/http_client.h>
#include <cpprest/uri.h>
#include <cpprest/uri_builder.h>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "eddy/control/checkpoint_coordinator.h"
#include "eddy/control/control_metrics.h"
#include "eddy/control/control_plane.h"
#include "eddy/control/local_executor.h"
#include "eddy/control/rest_server.h"
#include "eddy/spec/job_spec.h"

namespace {

constexpr const char* kUsage = R"(usage: eddy <command> [options]

commands:
  run JOB.yaml [--parallelism N] [--quiet]   run a job in this process until its input ends (or Ctrl-C)
      [--workers W --slots S]                ... or on a local cluster of W worker processes with
                                             S slots each (control plane in this process)
      [--restart-strategy none|fixed-delay|failure-rate|exponential-delay]
      [--metrics-port N]                     ... serving the control plane's /metrics on
                                             127.0.0.1:N (0 = any free port; workers: any port)
      [--from-savepoint PATH]                start from a savepoint or retained checkpoint (its
      [--allow-non-restored-state]           directory or _metadata); skip state of operators
                                             the job no longer has
      [--checkpoint-interval DURATION]       override the spec's checkpointing.interval (0 = off),
      [--checkpoint-dir URI]                 checkpointing.storage and savepointDir
      [--savepoint-dir URI]                  (checkpoints need worker processes: without
                                             --workers these run on 1 worker with enough slots)
      [--unaligned-checkpoints]              checkpointing.unaligned: true (exactly-once only)
  plan JOB.yaml [--parallelism N] [--format text|dot|json]
                                             print the execution plan (operator chains, edges)
  validate JOB.yaml                          check a job spec without running it
  version                                    print the version

standing local cluster (files in $EDDY_HOME/cluster, default ~/.cache/eddy/cluster):
  cluster start [--workers W] [--slots S]    start a control plane, its REST API and W (2) workers
      [--rest-port P] [--rpc-port P]         with S (2) slots each; REST on 127.0.0.1:P (8081),
      [--foreground]                         RPC on P (6123); in the background unless --foreground
  cluster stop                               stop the cluster (and its workers)
  cluster status                             print the cluster overview

talking to a cluster (--rest URL, else $EDDY_REST, else the local cluster, else
http://127.0.0.1:8081):
  submit JOB.yaml [--parallelism N]          submit a job; prints its job id
      [--from-savepoint PATH] [--allow-non-restored-state]
      [--checkpoint-interval D] [--checkpoint-dir URI] [--savepoint-dir URI]
      [--unaligned-checkpoints]
  list                                       list the jobs (id, name, state, duration)
  cancel JOBID                               cancel a job
  wait JOBID [--timeout DURATION]            wait until the job ends; exit 0 if it finished
  savepoint JOBID [DIR] [--timeout D]        take a savepoint into DIR (default: the job's
                                             savepointDir); prints its path once written
  stop JOBID [--savepoint-dir DIR] [--drain] stop the job with a savepoint (--drain: fire every
      [--timeout D]                          event-time window first); prints the savepoint's
                                             path and waits until the job has finished

exit status: 0 success, 1 the job failed (or no cluster answered), 2 bad command line or job spec
)";

eddy::control::LocalExecutor* g_executor = nullptr;
volatile std::sig_atomic_t g_interrupted = 0;

void OnSignal(int) {
  g_interrupted = 1;
  if (g_executor) g_executor->Cancel();
}

struct Args {
  std::string command;
  std::string job;
  int parallelism = 0;
  std::string format = "text";
  bool quiet = false;
  int workers = 0;
  int slots = 2;
  std::string restart;
  int64_t buffer_timeout_ms = -1;
  int metrics_port = -1;  // run --workers: the control plane's /metrics port; -1 = none
  // Cluster and client commands.
  std::vector<std::string> positional;  // after the command
  std::string rest;                     // --rest URL
  int rest_port = 8081;
  int rpc_port = 6123;
  bool foreground = false;
  int64_t timeout_ms = -1;  // --timeout of `wait`, `savepoint`, `stop`; -1 = none
  // Checkpoints and savepoints (run, submit, savepoint, stop). Local paths are made absolute.
  std::string from_savepoint;
  bool allow_non_restored_state = false;
  std::optional<eddy::Duration> checkpoint_interval;
  /// --unaligned-checkpoints: the spec's checkpointing.unaligned set to true.
  bool unaligned_checkpoints = false;
  std::string checkpoint_dir;
  std::string savepoint_dir;
  bool drain = false;
  /// Any of --from-savepoint, --checkpoint-interval, --checkpoint-dir, --savepoint-dir.
  bool checkpoint_flags() const {
    return !from_savepoint.empty() || checkpoint_interval || unaligned_checkpoints ||
           !checkpoint_dir.empty() || !savepoint_dir.empty();
  }
};

/// A storage location given on the command line: URIs (`s3://…`, `file:///…`) as they are, local
/// paths made absolute (a cluster may run in another directory).
std::string StorageLocation(const std::string& s) {
  if (s.find("://") != std::string::npos) return s;
  std::error_code ec;
  auto abs = std::filesystem::absolute(s, ec);
  return ec ? s : abs.lexically_normal().string();
}

bool ParseArgs(int argc, char** argv, Args& a, std::string& err) {
  if (argc < 2) {
    err = "missing command";
    return false;
  }
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        err = std::string(flag) + " needs a value";
        return nullptr;
      }
      return argv[++i];
    };
    if (s == "--parallelism" || s == "-p") {
      const char* v = value("--parallelism");
      if (!v) return false;
      char* end = nullptr;
      long p = std::strtol(v, &end, 10);
      if (*end != '\0' || p < 1 || p > 32768) {
        err = "--parallelism must be an integer between 1 and 32768";
        return false;
      }
      a.parallelism = static_cast<int>(p);
    } else if (s == "--format") {
      const char* v = value("--format");
      if (!v) return false;
      a.format = v;
      if (a.format != "text" && a.format != "dot" && a.format != "json") {
        err = "--format must be text, dot or json";
        return false;
      }
    } else if (s == "--workers" || s == "--slots") {
      const char* v = value(s.c_str());
      if (!v) return false;
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < 1 || n > 1024) {
        err = s + " must be an integer between 1 and 1024";
        return false;
      }
      (s == "--workers" ? a.workers : a.slots) = static_cast<int>(n);
    } else if (s == "--restart-strategy") {
      const char* v = value("--restart-strategy");
      if (!v) return false;
      a.restart = v;
    } else if (s == "--buffer-timeout") {
      const char* v = value("--buffer-timeout");
      if (!v) return false;
      auto d = eddy::ParseDuration(v);
      if (!d.ok()) {
        err = "--buffer-timeout: " + d.status().message();
        return false;
      }
      a.buffer_timeout_ms = d->millis();
    } else if (s == "--metrics-port") {
      const char* v = value("--metrics-port");
      if (!v) return false;
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < 0 || n > 65535) {
        err = "--metrics-port must be a port number (0 = any free port)";
        return false;
      }
      a.metrics_port = static_cast<int>(n);
    } else if (s == "--quiet" || s == "-q") {
      a.quiet = true;
    } else if (s == "--rest") {
      const char* v = value("--rest");
      if (!v) return false;
      a.rest = v;
    } else if (s == "--rest-port" || s == "--rpc-port") {
      const char* v = value(s.c_str());
      if (!v) return false;
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      long lo = s == "--rest-port" ? 1 : 0;
      if (*end != '\0' || n < lo || n > 65535) {
        err = s + " must be an integer between " + std::to_string(lo) + " and 65535";
        return false;
      }
      (s == "--rest-port" ? a.rest_port : a.rpc_port) = static_cast<int>(n);
    } else if (s == "--foreground") {
      a.foreground = true;
    } else if (s == "--from-savepoint" || s == "--checkpoint-dir" || s == "--savepoint-dir") {
      const char* v = value(s.c_str());
      if (!v) return false;
      if (*v == '\0') {
        err = s + " needs a path or URI";
        return false;
      }
      (s == "--from-savepoint"   ? a.from_savepoint
       : s == "--checkpoint-dir" ? a.checkpoint_dir
                                 : a.savepoint_dir) = StorageLocation(v);
    } else if (s == "--allow-non-restored-state") {
      a.allow_non_restored_state = true;
    } else if (s == "--unaligned-checkpoints") {
      a.unaligned_checkpoints = true;
    } else if (s == "--checkpoint-interval") {
      const char* v = value("--checkpoint-interval");
      if (!v) return false;
      auto d = eddy::ParseDuration(v);
      if (!d.ok() || (d->millis() != 0 && d->millis() < 10)) {
        err = "--checkpoint-interval must be a duration of at least 10ms (0 = off), like 10s";
        return false;
      }
      a.checkpoint_interval = *d;
    } else if (s == "--drain") {
      a.drain = true;
    } else if (s == "--timeout") {
      const char* v = value("--timeout");
      if (!v) return false;
      auto d = eddy::ParseDuration(v);
      if (!d.ok()) {
        err = "--timeout: " + d.status().message();
        return false;
      }
      a.timeout_ms = d->millis();
    } else if (!s.empty() && s[0] == '-') {
      err = "unknown option " + s;
      return false;
    } else {
      a.positional.push_back(s);
    }
  }
  // run, plan, validate and submit take one job file; cluster a subcommand; cancel, wait, stop a
  // job id; savepoint a job id and an optional directory.
  if (!a.positional.empty()) a.job = a.positional[0];
  size_t max_positional = a.command == "savepoint" ? 2 : 1;
  if (a.positional.size() > max_positional) {
    err = "unexpected argument " + a.positional[max_positional];
    return false;
  }
  if (a.command == "savepoint" && a.positional.size() == 2) {
    if (!a.savepoint_dir.empty()) {
      err = "give the savepoint directory once: as an argument or with --savepoint-dir";
      return false;
    }
    a.savepoint_dir = StorageLocation(a.positional[1]);
  }
  return true;
}

/// Whether the job file's spec turns periodic checkpoints on (`checkpointing.interval` > 0).
bool SpecEnablesCheckpoints(const std::string& path) {
  try {
    auto cc = eddy::control::ParseCheckpointConfig(YAML::LoadFile(path));
    return cc.ok() && cc->enabled();
  } catch (const YAML::Exception&) {
    return false;  // the compiler has reported (or will report) what is wrong
  }
}

/// `eddy run --workers W`: the control plane in this process, W eddy-worker processes.
int RunOnLocalCluster(const Args& args) {
  namespace ctl = eddy::control;
  std::ifstream in(args.job, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  ctl::JobSubmission sub;
  sub.spec_text = text.str();
  sub.spec_file = args.job;
  std::error_code ec;
  sub.base_dir = std::filesystem::absolute(args.job, ec).parent_path().string();
  sub.parallelism = args.parallelism;
  if (!args.restart.empty()) {
    auto r = ctl::ParseRestartStrategy("{type: " + args.restart + "}");
    if (!r.ok()) {
      std::fprintf(stderr, "eddy: --restart-strategy: %s\n", r.status().message().c_str());
      return 2;
    }
    sub.restart = *r;
  }
  sub.from_savepoint = args.from_savepoint;
  sub.allow_non_restored_state = args.allow_non_restored_state;
  sub.checkpoint_interval = args.checkpoint_interval;
  if (args.unaligned_checkpoints) sub.unaligned_checkpoints = true;
  sub.checkpoint_storage = args.checkpoint_dir;
  sub.savepoint_dir = args.savepoint_dir;
  ctl::ControlPlaneOptions o;
  o.rpc_bind_host = "127.0.0.1";
  o.rpc_port = 0;
  o.workers = args.workers;
  o.slots_per_worker = args.slots;
  o.launcher = std::make_shared<ctl::ProcessLauncher>();
  o.verbose = !args.quiet;
  o.buffer_timeout_ms = args.buffer_timeout_ms;
  o.slot_request_timeout_ms = 60000;
  auto cp = ctl::ControlPlane::Start(std::move(o));
  if (!cp.ok()) {
    std::fprintf(stderr, "eddy: %s\n", cp.status().ToString().c_str());
    return 1;
  }
  // Declared after `cp`: destroyed first, so no scrape outlives the control plane.
  std::unique_ptr<eddy::metrics::MetricsServer> metrics;
  if (args.metrics_port >= 0) {
    auto m = eddy::metrics::MetricsServer::Start("127.0.0.1:" + std::to_string(args.metrics_port));
    if (!m.ok()) {
      std::fprintf(stderr, "eddy: %s\n", m.status().ToString().c_str());
      return 1;
    }
    metrics = std::move(*m);
    metrics->Add(ctl::MakeControlPlaneCollectable(cp->get()));
    metrics->Add(std::make_shared<eddy::metrics::ProcessCollectable>());
    std::fprintf(stderr, "eddy: control plane metrics at http://127.0.0.1:%d/metrics\n",
                 metrics->port());
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto ready = (*cp)->WaitForWorkers(args.workers, 30000);
  if (!ready.ok()) {
    std::fprintf(stderr, "eddy: %s\n", ready.ToString().c_str());
    return 1;
  }
  auto id = (*cp)->Submit(std::move(sub));
  if (!id.ok()) {
    std::fprintf(stderr, "eddy: invalid job: %s\n", id.status().message().c_str());
    return 2;
  }
  bool cancel_sent = false;
  std::optional<ctl::JobInfo> info;
  while (true) {
    info = (*cp)->WaitForJob(*id, 100);
    if (info) break;
    if (g_interrupted && !cancel_sent) {
      (void)(*cp)->Cancel(*id);
      cancel_sent = true;
    }
  }
  if (info->state == ctl::JobState::kFinished) return 0;
  if (info->state == ctl::JobState::kCanceled) return 0;
  std::fprintf(stderr, "eddy: job '%s' failed: %s\n", info->name.c_str(), info->failure.c_str());
  return 1;
}

// ---- The standing local cluster: `eddy cluster start|stop|status` ----

namespace fs = std::filesystem;
using Json = nlohmann::json;

/// Where a local cluster keeps its pid file, REST address and log: $EDDY_HOME/cluster, else
/// $XDG_CACHE_HOME/eddy/cluster, else ~/.cache/eddy/cluster.
fs::path ClusterDir() {
  if (const char* h = std::getenv("EDDY_HOME"); h && *h) return fs::path(h) / "cluster";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return fs::path(x) / "eddy" / "cluster";
  if (const char* home = std::getenv("HOME"); home && *home)
    return fs::path(home) / ".cache" / "eddy" / "cluster";
  return fs::temp_directory_path() / "eddy-cluster";
}
fs::path PidFile() {
  return ClusterDir() / "cluster.pid";
}
fs::path RestFile() {
  return ClusterDir() / "cluster.rest";
}
fs::path LogFile() {
  return ClusterDir() / "cluster.log";
}

std::string ReadFirstLine(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

std::optional<pid_t> ReadPid() {
  std::string line = ReadFirstLine(PidFile());
  char* end = nullptr;
  long pid = std::strtol(line.c_str(), &end, 10);
  if (line.empty() || *end != '\0' || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

/// A live (not zombie) process that is an `eddy` binary: guards against a reused pid.
bool IsLiveEddy(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  std::string stat = ReadFirstLine("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z')
    return false;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string argv0;
  std::getline(cmd, argv0, '\0');
  return fs::path(argv0).filename() == "eddy";
}

void RemoveClusterFiles() {
  std::error_code ec;
  fs::remove(RestFile(), ec);
  fs::remove(PidFile(), ec);
}

/// The cluster itself (the process `cluster start` forks, or `--foreground`): control plane,
/// workers, REST API; until SIGTERM/SIGINT.
int RunCluster(const Args& args) {
  namespace ctl = eddy::control;
  {
    // O_EXCL: of two concurrent starts, one wins.
    int fd = ::open(PidFile().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::fprintf(stderr, "eddy: cannot create %s: %s (is a cluster running?)\n",
                   PidFile().c_str(), std::strerror(errno));
      return 1;
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    ssize_t n = ::write(fd, pid.data(), pid.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(pid.size())) {
      std::fprintf(stderr, "eddy: cannot write %s\n", PidFile().c_str());
      RemoveClusterFiles();
      return 1;
    }
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, SIG_IGN);
  int workers = args.workers > 0 ? args.workers : 2;
  ctl::ControlPlaneOptions o;
  o.rpc_bind_host = "127.0.0.1";
  o.rpc_port = args.rpc_port;
  o.workers = workers;
  o.slots_per_worker = args.slots;
  o.launcher = std::make_shared<ctl::ProcessLauncher>();
  o.buffer_timeout_ms = args.buffer_timeout_ms;
  auto cp = ctl::ControlPlane::Start(std::move(o));
  if (!cp.ok()) {
    std::fprintf(stderr, "eddy: %s\n", cp.status().ToString().c_str());
    RemoveClusterFiles();
    return 1;
  }
  auto ready = (*cp)->WaitForWorkers(workers, 30000);
  if (!ready.ok()) std::fprintf(stderr, "eddy: warning: %s\n", ready.ToString().c_str());
  std::string url = "http://127.0.0.1:" + std::to_string(args.rest_port);
  auto rest = ctl::RestServer::Start(cp->get(), url);
  if (!rest.ok()) {
    std::fprintf(stderr, "eddy: %s\n", rest.status().ToString().c_str());
    cp->reset();
    RemoveClusterFiles();
    return 1;
  }
  std::ofstream(RestFile()) << url << "\n";
  std::fprintf(stderr,
               "eddy: cluster running (pid %d): REST API %s, RPC %s, %d workers x %d slots\n",
               static_cast<int>(::getpid()), url.c_str(), (*cp)->rpc_endpoint().c_str(), workers,
               args.slots);
  while (!g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::fprintf(stderr, "eddy: stopping the cluster\n");
  rest->reset();
  cp->reset();  // stops the workers
  RemoveClusterFiles();
  std::fprintf(stderr, "eddy: cluster stopped\n");
  return 0;
}

// ---- REST client ----

struct HttpResult {
  int status = 0;  // 0 = no answer (error says why)
  std::string body;
  std::string error;
  Json Parsed() const { return Json::parse(body, nullptr, /*allow_exceptions=*/false); }
  /// The "errors" of an error response, joined; else the body.
  std::string Errors() const {
    Json j = Parsed();
    if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
      std::string out;
      for (const auto& e : j["errors"]) {
        if (!out.empty()) out += "; ";
        out += e.is_string() ? e.get<std::string>() : e.dump();
      }
      return out;
    }
    return body;
  }
};

struct RestTarget {
  std::string url;
  std::string source;  // where the URL came from, for messages
};

/// --rest, else $EDDY_REST, else the local cluster's address file, else Flink's default port.
RestTarget RestUrl(const Args& args) {
  if (!args.rest.empty()) return {args.rest, "--rest"};
  if (const char* e = std::getenv("EDDY_REST"); e && *e) return {e, "$EDDY_REST"};
  std::string local = ReadFirstLine(RestFile());
  if (!local.empty()) return {local, RestFile().string()};
  return {"http://127.0.0.1:8081", "the default"};
}

HttpResult Http(const std::string& base, const web::http::method& method, const std::string& path,
                const std::vector<std::pair<std::string, std::string>>& query = {},
                const std::optional<std::string>& body = std::nullopt,
                const std::string& content_type = "application/yaml") {
  HttpResult r;
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(30));
    web::http::client::http_client client(base, config);
    web::uri_builder b;
    b.set_path(path);
    for (const auto& [k, v] : query) b.append_query(k, v, /*do_encoding=*/true);
    web::http::http_request req(method);
    req.set_request_uri(b.to_uri());
    if (body) req.set_body(*body, content_type);
    web::http::http_response resp = client.request(req).get();
    r.status = resp.status_code();
    r.body = resp.extract_utf8string(/*ignore_content_type=*/true).get();
  } catch (const std::exception& e) {
    r.status = 0;
    r.error = e.what();
  }
  return r;
}

/// Reports a request that got no answer; returns the exit status (1).
int NoCluster(const RestTarget& t, const HttpResult& r) {
  std::fprintf(stderr,
               "eddy: no Eddy cluster answers at %s (from %s): %s\n"
               "      start one with `eddy cluster start`, or point --rest / $EDDY_REST at one\n",
               t.url.c_str(), t.source.c_str(), r.error.c_str());
  return 1;
}

int Unexpected(const std::string& what, const HttpResult& r) {
  std::fprintf(stderr, "eddy: %s failed (HTTP %d): %s\n", what.c_str(), r.status,
               r.Errors().c_str());
  return 1;
}

std::string JobPath(const std::string& id, const std::string& rest = "") {
  return "/jobs/" + web::uri::encode_data_string(id) + rest;
}

std::string FormatDuration(int64_t ms) {
  char buf[64];
  if (ms < 0) return "-";
  if (ms < 60000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000);
  } else {
    int64_t s = ms / 1000;
    std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  }
  return buf;
}

int ClusterStatus(const Args& args) {
  RestTarget t = RestUrl(args);
  HttpResult ov = Http(t.url, web::http::methods::GET, "/overview");
  if (ov.status == 0) return NoCluster(t, ov);
  if (ov.status != 200) return Unexpected("GET /overview", ov);
  Json o = ov.Parsed();
  HttpResult tms = Http(t.url, web::http::methods::GET, "/taskmanagers");
  try {
    std::printf("Eddy cluster at %s (%s)\n", t.url.c_str(),
                o.value("flink-version", std::string("?")).c_str());
    if (auto pid = ReadPid(); pid && t.source == RestFile().string())
      std::printf("  pid %d, log %s\n", static_cast<int>(*pid), LogFile().c_str());
    std::printf("  taskmanagers: %d, slots: %d total, %d available\n", o.value("taskmanagers", 0),
                o.value("slots-total", 0), o.value("slots-available", 0));
    std::printf("  jobs: %d running, %d finished, %d cancelled, %d failed\n",
                o.value("jobs-running", 0), o.value("jobs-finished", 0),
                o.value("jobs-cancelled", 0), o.value("jobs-failed", 0));
    Json tj = tms.Parsed();
    if (tms.status == 200 && tj.is_object() && tj.contains("taskmanagers")) {
      for (const auto& tm : tj["taskmanagers"]) {
        std::printf("  %-12s %-24s %d slots, %d free, pid %d\n",
                    tm.value("id", std::string()).c_str(), tm.value("path", std::string()).c_str(),
                    tm.value("slotsNumber", 0), tm.value("freeSlots", 0), tm.value("pid", 0));
      }
    }
  } catch (const Json::exception& e) {
    std::fprintf(stderr, "eddy: unexpected answer from %s: %s\n", t.url.c_str(), e.what());
    return 1;
  }
  return 0;
}

int ClusterStop() {
  auto pid = ReadPid();
  if (!pid) {
    std::fprintf(stderr, "eddy: no local cluster is running (no pid file %s)\n", PidFile().c_str());
    return 1;
  }
  if (!IsLiveEddy(*pid)) {
    RemoveClusterFiles();
    std::fprintf(stderr, "eddy: no local cluster is running (removed the stale pid file of %d)\n",
                 static_cast<int>(*pid));
    return 1;
  }
  ::kill(*pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (IsLiveEddy(*pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (IsLiveEddy(*pid)) {
    ::kill(*pid, SIGKILL);
    RemoveClusterFiles();
    std::fprintf(stderr, "eddy: the cluster (pid %d) did not stop within 30 s; killed it\n",
                 static_cast<int>(*pid));
    return 1;
  }
  std::fprintf(stderr, "eddy: cluster stopped (pid %d)\n", static_cast<int>(*pid));
  return 0;
}

/// The last `n` lines of a file, for a start that failed.
std::string Tail(const fs::path& p, size_t n) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > n) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

int ClusterStart(const Args& args) {
  std::error_code ec;
  fs::create_directories(ClusterDir(), ec);
  if (ec) {
    std::fprintf(stderr, "eddy: cannot create %s: %s\n", ClusterDir().c_str(),
                 ec.message().c_str());
    return 1;
  }
  if (auto pid = ReadPid()) {
    if (IsLiveEddy(*pid)) {
      std::fprintf(stderr,
                   "eddy: a local cluster is already running (pid %d, REST API %s); stop it "
                   "with `eddy cluster stop` or set EDDY_HOME for another one\n",
                   static_cast<int>(*pid), ReadFirstLine(RestFile()).c_str());
      return 1;
    }
    RemoveClusterFiles();  // stale
  }
  if (args.foreground) return RunCluster(args);

  // Daemonize before any thread exists: fork, new session, output to the log.
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "eddy: fork failed: %s\n", std::strerror(errno));
    return 1;
  }
  if (child == 0) {
    ::setsid();
    int null = ::open("/dev/null", O_RDONLY);
    int log = ::open(LogFile().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null < 0 || log < 0) _exit(1);
    ::dup2(null, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::close(null);
    ::close(log);
    return RunCluster(args);
  }
  // Parent: wait until the REST API answers, or the child gave up.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(child, &st, WNOHANG) == child) {
      std::fprintf(stderr, "eddy: the cluster did not start (%s); from %s:\n%s",
                   eddy::control::DescribeExit(st).c_str(), LogFile().c_str(),
                   Tail(LogFile(), 10).c_str());
      return 1;
    }
    std::string url = ReadFirstLine(RestFile());
    if (!url.empty() && Http(url, web::http::methods::GET, "/overview").status == 200) {
      int workers = args.workers > 0 ? args.workers : 2;
      std::fprintf(stderr,
                   "eddy: cluster started (pid %d): REST API %s, %d workers x %d slots; log %s\n",
                   static_cast<int>(child), url.c_str(), workers, args.slots, LogFile().c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(child, SIGTERM);
  std::fprintf(stderr, "eddy: the cluster did not answer within 60 s; stopped it. From %s:\n%s",
               LogFile().c_str(), Tail(LogFile(), 10).c_str());
  return 1;
}

// ---- `eddy submit|list|cancel|wait` ----

int Submit(const Args& args) {
  if (args.job.empty()) {
    std::fprintf(stderr, "eddy: submit needs a job file\n");
    return 2;
  }
  std::ifstream in(args.job, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "eddy: cannot read %s: %s\n", args.job.c_str(), std::strerror(errno));
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ec;
  std::string base_dir = fs::absolute(args.job, ec).parent_path().string();
  std::vector<std::pair<std::string, std::string>> query = {{"baseDir", base_dir},
                                                            {"file", args.job}};
  if (args.parallelism > 0) query.emplace_back("parallelism", std::to_string(args.parallelism));
  if (!args.from_savepoint.empty()) query.emplace_back("savepointPath", args.from_savepoint);
  if (args.allow_non_restored_state) query.emplace_back("allowNonRestoredState", "true");
  if (args.unaligned_checkpoints) query.emplace_back("unalignedCheckpoints", "true");
  if (args.checkpoint_interval)
    query.emplace_back("checkpointInterval",
                       std::to_string(args.checkpoint_interval->millis()) + "ms");
  if (!args.checkpoint_dir.empty()) query.emplace_back("checkpointDir", args.checkpoint_dir);
  if (!args.savepoint_dir.empty()) query.emplace_back("savepointDir", args.savepoint_dir);
  RestTarget t = RestUrl(args);
  HttpResult r = Http(t.url, web::http::methods::POST, "/jobs", query, text.str());
  if (r.status == 0) return NoCluster(t, r);
  if (r.status == 400) {
    std::fprintf(stderr, "eddy: invalid job: %s\n", r.Errors().c_str());
    return 2;
  }
  Json j = r.Parsed();
  if ((r.status != 200 && r.status != 202) || !j.is_object() || !j.contains("jobid") ||
      !j["jobid"].is_string())
    return Unexpected("submitting " + args.job, r);
  std::printf("%s\n", j["jobid"].get<std::string>().c_str());
  return 0;
}

int List(const Args& args) {
  RestTarget t = RestUrl(args);
  HttpResult r = Http(t.url, web::http::methods::GET, "/jobs/overview");
  if (r.status == 0) return NoCluster(t, r);
  Json j = r.Parsed();
  if (r.status != 200 || !j.is_object() || !j.contains("jobs") || !j["jobs"].is_array())
    return Unexpected("GET /jobs/overview", r);
  try {
    size_t name_width = 4;
    for (const auto& job : j["jobs"])
      name_width = std::max(name_width, job.value("name", std::string()).size());
    std::printf("%-32s  %-*s  %-10s  %s\n", "JOB ID", static_cast<int>(name_width), "NAME", "STATE",
                "DURATION");
    for (const auto& job : j["jobs"]) {
      std::printf("%-32s  %-*s  %-10s  %s\n", job.value("jid", std::string()).c_str(),
                  static_cast<int>(name_width), job.value("name", std::string()).c_str(),
                  job.value("state", std::string()).c_str(),
                  FormatDuration(job.value("duration", int64_t{-1})).c_str());
    }
  } catch (const Json::exception& e) {
    std::fprintf(stderr, "eddy: unexpected answer from %s: %s\n", t.url.c_str(), e.what());
    return 1;
  }
  return 0;
}

int Cancel(const Args& args) {
  if (args.job.empty()) {
    std::fprintf(stderr, "eddy: cancel needs a job id (see `eddy list`)\n");
    return 2;
  }
  RestTarget t = RestUrl(args);
  HttpResult r = Http(t.url, web::http::methods::PATCH, JobPath(args.job), {{"mode", "cancel"}});
  if (r.status == 0) return NoCluster(t, r);
  if (r.status == 202 || r.status == 200) {
    std::fprintf(stderr, "eddy: cancelling job %s\n", args.job.c_str());
    return 0;
  }
  std::fprintf(stderr, "eddy: cannot cancel job %s: %s\n", args.job.c_str(), r.Errors().c_str());
  return 1;
}

int Wait(const Args& args) {
  if (args.job.empty()) {
    std::fprintf(stderr, "eddy: wait needs a job id (see `eddy list`)\n");
    return 2;
  }
  RestTarget t = RestUrl(args);
  auto start = std::chrono::steady_clock::now();
  std::signal(SIGINT, OnSignal);
  while (!g_interrupted) {
    HttpResult r = Http(t.url, web::http::methods::GET, JobPath(args.job));
    if (r.status == 0) return NoCluster(t, r);
    if (r.status == 404) {
      std::fprintf(stderr, "eddy: %s\n", r.Errors().c_str());
      return 1;
    }
    Json j = r.Parsed();
    if (r.status != 200 || !j.is_object() || !j.contains("state") || !j["state"].is_string())
      return Unexpected("GET " + JobPath(args.job), r);
    std::string state = j["state"].get<std::string>();
    if (state == "FINISHED" || state == "FAILED" || state == "CANCELED") {
      std::printf("%s\n", state.c_str());
      if (state == "FAILED" && j.contains("failure-cause") && j["failure-cause"].is_string())
        std::fprintf(stderr, "eddy: job %s failed: %s\n", args.job.c_str(),
                     j["failure-cause"].get<std::string>().c_str());
      return state == "FINISHED" ? 0 : 1;
    }
    if (args.timeout_ms >= 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::milliseconds(args.timeout_ms)) {
      std::fprintf(stderr, "eddy: job %s is still %s after the timeout\n", args.job.c_str(),
                   state.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return 1;
}

/// Triggers a savepoint (`stop`: stop-with-savepoint) and waits until it is written; prints its
/// location on stdout. Returns the exit status.
int TakeSavepoint(const Args& args, bool stop, const RestTarget& t) {
  const std::string what = stop ? "stop job " + args.job : "savepoint of job " + args.job;
  Json body = Json::object();
  if (stop) {
    if (!args.savepoint_dir.empty()) body["targetDirectory"] = args.savepoint_dir;
    body["drain"] = args.drain;
  } else {
    if (!args.savepoint_dir.empty()) body["target-directory"] = args.savepoint_dir;
  }
  const auto start = std::chrono::steady_clock::now();
  auto timed_out = [&] {
    return args.timeout_ms >= 0 &&
           std::chrono::steady_clock::now() - start > std::chrono::milliseconds(args.timeout_ms);
  };
  // 503: the job is deploying or restarting (not every task runs): try again for up to 60 s.
  HttpResult r;
  for (;;) {
    r = Http(t.url, web::http::methods::POST, JobPath(args.job, stop ? "/stop" : "/savepoints"), {},
             body.dump(), "application/json");
    if (r.status == 0) return NoCluster(t, r);
    if (r.status != 503 || timed_out() || g_interrupted ||
        std::chrono::steady_clock::now() - start > std::chrono::seconds(60))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  Json j = r.Parsed();
  if (r.status != 202 || !j.is_object() || !j.contains("request-id") ||
      !j["request-id"].is_string()) {
    std::string action = (stop ? "stop job " : "take a savepoint of job ") + args.job;
    std::fprintf(stderr, "eddy: cannot %s: %s\n", action.c_str(), r.Errors().c_str());
    return r.status == 400 ? 2 : 1;
  }
  std::string trigger = j["request-id"].get<std::string>();
  std::fprintf(stderr, "eddy: %s: savepoint %s triggered\n", what.c_str(), trigger.c_str());
  while (!g_interrupted) {
    HttpResult st = Http(t.url, web::http::methods::GET,
                         JobPath(args.job, "/savepoints/") + web::uri::encode_data_string(trigger));
    if (st.status == 0) return NoCluster(t, st);
    Json sj = st.Parsed();
    if (st.status != 200 || !sj.is_object() || !sj.contains("status"))
      return Unexpected("GET " + JobPath(args.job, "/savepoints/" + trigger), st);
    if (sj["status"].value("id", std::string()) == "COMPLETED") {
      const Json& op = sj["operation"];
      if (op.is_object() && op.contains("location") && op["location"].is_string()) {
        std::printf("%s\n", op["location"].get<std::string>().c_str());
        std::fflush(stdout);
        return 0;
      }
      std::string cause = op.is_object() && op.contains("failure-cause")
                              ? op["failure-cause"].value("stack-trace", std::string("unknown"))
                              : std::string("unknown");
      std::fprintf(stderr, "eddy: the savepoint failed: %s\n", cause.c_str());
      return 1;
    }
    if (timed_out()) {
      std::fprintf(stderr,
                   "eddy: savepoint %s is still in progress after the timeout (it may still "
                   "complete: GET %s)\n",
                   trigger.c_str(), JobPath(args.job, "/savepoints/" + trigger).c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 1;
}

int Savepoint(const Args& args) {
  if (args.job.empty()) {
    std::fprintf(stderr, "eddy: savepoint needs a job id (see `eddy list`)\n");
    return 2;
  }
  return TakeSavepoint(args, /*stop=*/false, RestUrl(args));
}

/// Stop-with-savepoint: the savepoint's path on stdout, then waits until the job has ended.
int Stop(const Args& args) {
  if (args.job.empty()) {
    std::fprintf(stderr, "eddy: stop needs a job id (see `eddy list`)\n");
    return 2;
  }
  RestTarget t = RestUrl(args);
  int rc = TakeSavepoint(args, /*stop=*/true, t);
  if (rc != 0) return rc;
  // The tasks end once the savepoint completed (after draining with --drain).
  const auto start = std::chrono::steady_clock::now();
  while (!g_interrupted) {
    HttpResult r = Http(t.url, web::http::methods::GET, JobPath(args.job));
    if (r.status == 0) return NoCluster(t, r);
    Json j = r.Parsed();
    if (r.status != 200 || !j.is_object() || !j.contains("state") || !j["state"].is_string())
      return Unexpected("GET " + JobPath(args.job), r);
    std::string state = j["state"].get<std::string>();
    if (state == "FINISHED") {
      std::fprintf(stderr, "eddy: job %s stopped\n", args.job.c_str());
      return 0;
    }
    if (state == "FAILED" || state == "CANCELED") {
      std::fprintf(stderr, "eddy: job %s ended %s after the savepoint\n", args.job.c_str(),
                   state.c_str());
      return 1;
    }
    if (args.timeout_ms >= 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::milliseconds(args.timeout_ms)) {
      std::fprintf(stderr, "eddy: job %s is still %s after the timeout\n", args.job.c_str(),
                   state.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 1;
}

/// The commands that do not compile a job here; nullopt for the others.
std::optional<int> RunRemoteCommand(const Args& args) {
  if (args.command == "cluster") {
    if (args.job == "start") return ClusterStart(args);
    if (args.job == "stop") return ClusterStop();
    if (args.job == "status") return ClusterStatus(args);
    std::fprintf(stderr, "eddy: cluster needs start, stop or status%s%s\n\n%s",
                 args.job.empty() ? "" : ", not ", args.job.c_str(), kUsage);
    return 2;
  }
  if (args.command == "submit") return Submit(args);
  if (args.command == "list") return List(args);
  if (args.command == "cancel") return Cancel(args);
  if (args.command == "wait") return Wait(args);
  if (args.command == "savepoint" || args.command == "stop") {
    std::signal(SIGINT, OnSignal);
    return args.command == "savepoint" ? Savepoint(args) : Stop(args);
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  std::string err;
  if (!ParseArgs(argc, argv, args, err)) {
    std::fprintf(stderr, "eddy: %s\n\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (args.command == "help" || args.command == "--help" || args.command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args.command == "version" || args.command == "--version") {
    std::puts("eddy 0.1.0");
    return 0;
  }
  if (auto code = RunRemoteCommand(args)) return *code;
  if (args.command != "run" && args.command != "plan" && args.command != "validate") {
    std::fprintf(stderr, "eddy: unknown command '%s'\n\n%s", args.command.c_str(), kUsage);
    return 2;
  }
  if (args.job.empty()) {
    std::fprintf(stderr, "eddy: %s needs a job file\n", args.command.c_str());
    return 2;
  }
  eddy::JobSpecOptions opts;
  opts.parallelism = args.parallelism;
  auto job = eddy::CompileJobSpecFile(args.job, opts);
  if (!job.ok()) {
    std::fprintf(stderr, "eddy: invalid job: %s\n", job.status().message().c_str());
    return 2;
  }
  auto& graph = job->env->graph();
  if (args.command == "validate") {
    std::fprintf(stderr, "%s: ok\n", args.job.c_str());
    return 0;
  }
  if (args.command == "plan") {
    auto jg = eddy::JobGraph::FromStreamGraph(graph);
    if (!jg.ok()) {
      std::fprintf(stderr, "eddy: invalid job: %s\n", jg.status().message().c_str());
      return 2;
    }
    std::string out = args.format == "dot"    ? jg->ToDot()
                      : args.format == "json" ? jg->ToJson()
                                              : jg->ToText();
    std::fputs(out.c_str(), stdout);
    if (args.format == "json") std::fputc('\n', stdout);
    return 0;
  }
  if (!args.from_savepoint.empty()) {
    // Checked here too, so that a wrong path fails before any worker starts.
    auto found = eddy::control::CheckpointCoordinator::LocateSnapshot(args.from_savepoint, nullptr);
    if (!found.ok()) {
      std::fprintf(stderr, "eddy: --from-savepoint: %s\n", found.status().message().c_str());
      return 2;
    }
  }
  if (args.workers > 0) return RunOnLocalCluster(args);
  if (args.checkpoint_flags() || SpecEnablesCheckpoints(args.job)) {
    // Checkpoints and savepoints are taken by worker processes: run on a local cluster of one
    // worker with the slots the job needs.
    auto jg = eddy::JobGraph::FromStreamGraph(graph);
    if (!jg.ok()) {
      std::fprintf(stderr, "eddy: invalid job: %s\n", jg.status().message().c_str());
      return 2;
    }
    Args cluster_args = args;
    cluster_args.workers = 1;
    cluster_args.slots = std::max(1, jg->RequiredSlots());
    if (!args.quiet) {
      std::fprintf(stderr,
                   "eddy: checkpoints and savepoints need worker processes: running on a local "
                   "cluster of 1 worker with %d slots (choose with --workers/--slots)\n",
                   cluster_args.slots);
    }
    return RunOnLocalCluster(cluster_args);
  }
  eddy::control::LocalExecutor executor;
  g_executor = &executor;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  if (!args.quiet) std::fprintf(stderr, "eddy: running job '%s'\n", job->name.c_str());
  auto result = executor.Execute(graph);
  g_executor = nullptr;
  if (!args.quiet) {
    uint64_t bad = 0, late = 0;
    for (const auto& t : result.tasks) {
      bad += t.bad_records;
      late += t.late_records_dropped;
    }
    std::fprintf(stderr, "eddy: job '%s' %s in %.0f ms", job->name.c_str(),
                 result.status.ok()                                     ? "finished"
                 : result.status.code() == eddy::StatusCode::kCancelled ? "was cancelled"
                                                                        : "failed",
                 result.elapsed_ms);
    if (bad > 0)
      std::fprintf(stderr, " (%llu bad records skipped)", static_cast<unsigned long long>(bad));
    if (late > 0)
      std::fprintf(stderr, " (%llu late records dropped)", static_cast<unsigned long long>(late));
    std::fputc('\n', stderr);
  }
  if (!result.status.ok() && result.status.code() != eddy::StatusCode::kCancelled) {
    std::fprintf(stderr, "eddy: %s\n", result.status.ToString().c_str());
    return 1;
  }
  return 0;
}
