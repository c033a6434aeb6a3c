// eddy-worker: the TaskManager process. Registers its slots with the control plane and runs the
// subtasks deployed to it until told to shut down (or SIGTERM/SIGINT).

#include <sys/prctl.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "eddy/worker/task_executor.h"

namespace {

constexpr const char* kUsage = R"(usage: eddy-worker [options]

  --jobmanager ENDPOINT   control plane RPC endpoint (default tcp://127.0.0.1:6123)
  --id NAME               worker id (default <host>-<pid>)
  --slots N               task slots (default: number of cores)
  --data-port N           data plane port (default 6121; 0 = ephemeral)
  --bind HOST             interface to bind (default 0.0.0.0)
  --advertise HOST        host name peers use (default 127.0.0.1)
  --network-buffers N     32 KiB network buffers of this worker (default 2048)
  --metrics-port N        Prometheus /metrics port (default 9249; 0 = ephemeral)
  --metrics-bind HOST     interface the metrics endpoint binds (default 0.0.0.0)
  --no-metrics            serve no /metrics
  --exit-with-parent      exit when the process that started this one dies (local clusters)
)";

eddy::worker::TaskExecutor* g_executor = nullptr;

void OnSignal(int) {
  if (g_executor) g_executor->RequestStop();
}

bool ParseInt(const char* s, long lo, long hi, long& out) {
  char* end = nullptr;
  out = std::strtol(s, &end, 10);
  return end && *end == '\0' && out >= lo && out <= hi;
}

}  // namespace

int main(int argc, char** argv) {
  eddy::worker::WorkerOptions o;
  bool exit_with_parent = false;
  bool metrics = true;
  std::string metrics_bind = "0.0.0.0";
  long metrics_port = 9249;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    long n = 0;
    const char* v = nullptr;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--exit-with-parent") {
      exit_with_parent = true;
      continue;
    } else if (a == "--no-metrics") {
      metrics = false;
      continue;
    }
    v = value();
    if (!v) {
      std::fprintf(stderr, "eddy-worker: %s needs a value\n\n%s", a.c_str(), kUsage);
      return 2;
    }
    if (a == "--jobmanager") {
      o.jobmanager = v;
    } else if (a == "--id") {
      o.worker_id = v;
    } else if (a == "--slots" && ParseInt(v, 1, 1024, n)) {
      o.slots = static_cast<int>(n);
    } else if (a == "--data-port" && ParseInt(v, 0, 65535, n)) {
      o.network.port = static_cast<int>(n);
    } else if (a == "--bind") {
      o.network.bind_host = v;
    } else if (a == "--advertise") {
      o.network.advertised_host = v;
    } else if (a == "--network-buffers" && ParseInt(v, 16, 1 << 22, n)) {
      o.network_buffers = static_cast<size_t>(n);
    } else if (a == "--metrics-port" && ParseInt(v, 0, 65535, n)) {
      metrics_port = n;
    } else if (a == "--metrics-bind") {
      metrics_bind = v;
    } else {
      std::fprintf(stderr, "eddy-worker: bad option %s %s\n\n%s", a.c_str(), v, kUsage);
      return 2;
    }
  }
  o.metrics_address = metrics ? metrics_bind + ":" + std::to_string(metrics_port) : "";
  if (exit_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  auto te = eddy::worker::TaskExecutor::Make(o);
  if (!te.ok()) {
    std::fprintf(stderr, "eddy-worker: %s\n", te.status().ToString().c_str());
    return 1;
  }
  g_executor = te->get();
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  eddy::Status s = (*te)->Run();
  g_executor = nullptr;
  if (!s.ok()) {
    std::fprintf(stderr, "eddy-worker: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
