// eddy: the command-line front door. `eddy run JOB` runs a job spec in this process (local
// embedded mode), `eddy plan JOB` prints its execution plan, `eddy validate JOB` only checks it.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "eddy/control/control_plane.h"
#include "eddy/control/local_executor.h"
#include "eddy/spec/job_spec.h"

namespace {

constexpr const char* kUsage = R"(usage: eddy <command> [options]

commands:
  run JOB.yaml [--parallelism N] [--quiet]   run a job in this process until its input ends (or Ctrl-C)
      [--workers W --slots S]                ... or on a local cluster of W worker processes with
                                             S slots each (control plane in this process)
      [--restart-strategy none|fixed-delay|failure-rate|exponential-delay]
  plan JOB.yaml [--parallelism N] [--format text|dot|json]
                                             print the execution plan (operator chains, edges)
  validate JOB.yaml                          check a job spec without running it
  version                                    print the version

exit status: 0 success, 1 the job failed, 2 bad command line or job spec
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
};

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
    } else if (s == "--quiet" || s == "-q") {
      a.quiet = true;
    } else if (!s.empty() && s[0] == '-') {
      err = "unknown option " + s;
      return false;
    } else if (a.job.empty()) {
      a.job = s;
    } else {
      err = "unexpected argument " + s;
      return false;
    }
  }
  return true;
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
  if (args.workers > 0) return RunOnLocalCluster(args);
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
