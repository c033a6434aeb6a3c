// eddy-operator: the FlinkJob controller (see docs/architecture.md, "Kubernetes").
#include <cpprest/http_listener.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/clock.h"
#include "eddy/control/flinkjob_operator.h"
#include "eddy/k8s/kube_client.h"
#include "eddy/k8s/leader_election.h"
#include "eddy/metrics/histogram.h"
#include "eddy/metrics/metrics.h"

namespace {

const char* kUsage =
    "usage: eddy-operator [options]\n"
    "  --kubeconfig PATH           kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
    "  --watch-namespaces A,B      namespaces whose FlinkJobs to reconcile (default: all)\n"
    "  --leader-elect              run leader election on a Lease (for 2+ replicas)\n"
    "  --lease-name NAME           the Lease (default eddy-operator)\n"
    "  --lease-namespace NS        its namespace (default $POD_NAMESPACE, else the config's)\n"
    "  --health-port N             /healthz and /readyz (default 8085)\n"
    "  --metrics-port N            Prometheus /metrics (default 9249)\n"
    "  --rest-port N               Flink's REST API over the jobs it runs (default 8081)\n"
    "  --bind-address ADDR         address the ports above and the JobMaster RPC ports bind\n"
    "                              (default 0.0.0.0)\n"
    "  --advertise-address ADDR    address worker pods reach the JobMasters at\n"
    "                              (default $POD_IP, else the bind address, else 127.0.0.1)\n"
    "  --worker-image IMAGE        image of FlinkJobs without spec.image (eddy-worker:latest)\n"
    "  --worker-service-account SA ServiceAccount of worker pods of FlinkJobs without\n"
    "                              spec.serviceAccount (default: the namespace's default)\n"
    "  --savepoint-on-deletion     take a savepoint before a deleted FlinkJob's pods go\n"
    "  --status-interval MS        status refresh of running jobs (default 2000)\n"
    "  --log-level info|debug      (default info)\n";

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop = true;
}

std::string Env(const char* n) {
  const char* v = std::getenv(n);
  return v ? v : "";
}

std::string Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::mutex g_log_mu;
void Log(const std::string& m) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::fprintf(stderr, "%s eddy-operator: %s\n", Now().c_str(), m.c_str());
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

/// Kubernetes request metrics, by verb.
struct RequestMetrics {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<eddy::metrics::AtomicHistogram>> latency;
  std::map<std::pair<std::string, std::string>, uint64_t> count;  // (verb, code)
  void Observe(std::string_view verb, int code, double seconds) {
    std::lock_guard<std::mutex> lock(mu);
    auto& h = latency[std::string(verb)];
    if (!h)
      h = std::make_unique<eddy::metrics::AtomicHistogram>(
          eddy::metrics::HistogramBuckets::DefaultSeconds());
    h->Observe(seconds);
    count[{std::string(verb), code == 0 ? "error" : std::to_string(code)}]++;
  }
};

/// Labels this pod eddy.dev/leader=true (or removes the label): the chart's Service selects the
/// leader by it. Needs POD_NAME and POD_NAMESPACE (downward API); a no-op outside a pod.
void SetLeaderLabel(eddy::k8s::KubeClient& client, bool leader) {
  std::string pod = Env("POD_NAME"), ns = Env("POD_NAMESPACE");
  if (pod.empty() || ns.empty()) return;
  nlohmann::json value = leader ? nlohmann::json("true") : nlohmann::json(nullptr);
  auto r = client.MergePatch("/api/v1/namespaces/" + ns + "/pods/" + pod,
                             {{"metadata", {{"labels", {{"eddy.dev/leader", value}}}}}});
  if (!r.ok())
    Log("cannot " + std::string(leader ? "set" : "clear") +
        " the leader label: " + r.status().message());
}

/// Replies and observes the reply's task: a client gone before the answer leaves an exception
/// in it, and pplx aborts the process on exceptions nobody observed.
void Reply(web::http::http_request& req, web::http::status_code code, const std::string& body) {
  try {
    req.reply(code, body).then([](const pplx::task<void>& t) {
      try {
        t.get();
      } catch (...) {
      }
    });
  } catch (...) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string kubeconfig, namespaces, lease_name = "eddy-operator", lease_ns;
  std::string bind = "0.0.0.0", advertise, worker_image = "eddy-worker:latest", worker_sa;
  bool leader_elect = false, savepoint_on_deletion = false, debug = false;
  long health_port = 8085, metrics_port = 9249, rest_port = 8081, status_interval = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (a != "--leader-elect" && a != "--savepoint-on-deletion" && a != "--help" &&
               a != "-h") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "eddy-operator: %s needs a value\n\n%s", a.c_str(), kUsage);
        return 2;
      }
      v = argv[++i];
    }
    auto num = [&](long& out, long lo, long hi) {
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < lo || n > hi) {
        std::fprintf(stderr, "eddy-operator: %s wants a number in [%ld, %ld], got '%s'\n",
                     a.c_str(), lo, hi, v.c_str());
        std::exit(2);
      }
      out = n;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--leader-elect") {
      leader_elect = v.empty() || v == "true";
    } else if (a == "--savepoint-on-deletion") {
      savepoint_on_deletion = v.empty() || v == "true";
    } else if (a == "--kubeconfig") {
      kubeconfig = v;
    } else if (a == "--watch-namespaces") {
      namespaces = v;
    } else if (a == "--lease-name") {
      lease_name = v;
    } else if (a == "--lease-namespace") {
      lease_ns = v;
    } else if (a == "--health-port") {
      num(health_port, 0, 65535);
    } else if (a == "--metrics-port") {
      num(metrics_port, 0, 65535);
    } else if (a == "--rest-port") {
      num(rest_port, 1, 65535);
    } else if (a == "--status-interval") {
      num(status_interval, 100, 600000);
    } else if (a == "--bind-address") {
      bind = v;
    } else if (a == "--advertise-address") {
      advertise = v;
    } else if (a == "--worker-image") {
      worker_image = v;
    } else if (a == "--worker-service-account") {
      worker_sa = v;
    } else if (a == "--log-level") {
      if (v != "info" && v != "debug") {
        std::fprintf(stderr, "eddy-operator: --log-level is info or debug, got '%s'\n", v.c_str());
        return 2;
      }
      debug = v == "debug";
    } else {
      std::fprintf(stderr, "eddy-operator: unknown option %s\n\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (advertise.empty()) advertise = Env("POD_IP");
  if (advertise.empty()) advertise = bind != "0.0.0.0" ? bind : "127.0.0.1";

  auto config = eddy::k8s::LoadDefaultConfig(kubeconfig);
  if (!config.ok()) {
    std::fprintf(stderr, "eddy-operator: %s\n", config.status().message().c_str());
    return 1;
  }
  if (lease_ns.empty()) lease_ns = Env("POD_NAMESPACE");
  if (lease_ns.empty()) lease_ns = config->default_namespace;

  auto requests = std::make_shared<RequestMetrics>();
  eddy::k8s::KubeClientOptions ko;
  ko.observer = [requests](std::string_view verb, int code, double s) {
    requests->Observe(verb, code, s);
  };
  auto client = eddy::k8s::KubeClient::Make(*config, ko);
  if (!client.ok()) {
    std::fprintf(stderr, "eddy-operator: %s\n", client.status().message().c_str());
    return 1;
  }
  Log("API server " + config->server + " (" + config->source + "), watching " +
      (namespaces.empty() ? std::string("all namespaces") : namespaces));

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  // ---- state the endpoints read
  std::atomic<bool> leading{!leader_elect};
  std::atomic<eddy::control::FlinkJobOperator*> op_ptr{nullptr};
  eddy::metrics::AtomicHistogram reconcile_seconds(
      eddy::metrics::HistogramBuckets::DefaultSeconds());
  std::atomic<uint64_t> reconciles{0}, reconcile_errors{0};

  // ---- metrics
  auto metrics = eddy::metrics::MetricsServer::Start(bind + ":" + std::to_string(metrics_port));
  if (!metrics.ok()) {
    std::fprintf(stderr, "eddy-operator: metrics port: %s\n", metrics.status().message().c_str());
    return 1;
  }
  (*metrics)->Add(std::make_shared<eddy::metrics::ProcessCollectable>());
  using eddy::metrics::FamilyBuilder;
  auto collect = eddy::metrics::CallbackCollectable::Make([&] {
    std::vector<prometheus::MetricFamily> out;
    out.push_back(
        FamilyBuilder::Counter("eddy_operator_reconcile_total",
                               "FlinkJob reconciles run (Flink operator: reconcile count).")
            .Add({}, static_cast<double>(reconciles.load()))
            .Build());
    out.push_back(FamilyBuilder::Counter("eddy_operator_reconcile_errors_total",
                                         "Reconciles that ended with an error and were requeued.")
                      .Add({}, static_cast<double>(reconcile_errors.load()))
                      .Build());
    out.push_back(FamilyBuilder::Histogram("eddy_operator_reconcile_duration_seconds",
                                           "Time one reconcile of a FlinkJob took.")
                      .Add({}, reconcile_seconds.Snapshot())
                      .Build());
    out.push_back(
        FamilyBuilder::Gauge("eddy_operator_leader", "1 while this replica is the leader.")
            .Add({}, leading.load() ? 1 : 0)
            .Build());
    auto jobs = FamilyBuilder::Gauge("eddy_operator_flinkjobs",
                                     "FlinkJobs watched, by status.lifecycleState.");
    std::map<std::string, int> by_state;
    for (const char* s :
         {"CREATED", "DEPLOYED", "STABLE", "UPGRADING", "SUSPENDED", "FAILED", "DELETING"})
      by_state[s] = 0;
    if (auto* op = op_ptr.load()) {
      for (const auto& [s, n] : op->JobsByLifecycle()) by_state[s] = n;
    }
    for (const auto& [s, n] : by_state) jobs.Add({{"lifecycle_state", s}}, n);
    out.push_back(jobs.Build());
    auto lat = FamilyBuilder::Histogram("eddy_operator_kubernetes_request_duration_seconds",
                                        "Kubernetes API request latency, by verb (WATCH: until "
                                        "the response headers).");
    auto cnt = FamilyBuilder::Counter("eddy_operator_kubernetes_requests_total",
                                      "Kubernetes API requests, by verb and HTTP status "
                                      "(error: no answer).");
    {
      std::lock_guard<std::mutex> lock(requests->mu);
      for (const auto& [verb, h] : requests->latency) lat.Add({{"verb", verb}}, h->Snapshot());
      for (const auto& [k, n] : requests->count)
        cnt.Add({{"verb", k.first}, {"code", k.second}}, static_cast<double>(n));
    }
    out.push_back(lat.Build());
    out.push_back(cnt.Build());
    if (auto* op = op_ptr.load()) {
      for (auto& f : op->CollectJobMetrics()) out.push_back(std::move(f));
    }
    return out;
  });
  (*metrics)->Add(collect);

  // ---- health
  using web::http::experimental::listener::http_listener;
  std::unique_ptr<http_listener> health;
  try {
    health = std::make_unique<http_listener>(
        web::uri("http://" + bind + ":" + std::to_string(health_port)));
    health->support(web::http::methods::GET, [&](web::http::http_request req) {
      std::string path = req.relative_uri().path();
      if (path == "/healthz") {
        Reply(req, web::http::status_codes::OK, "ok\n");
      } else if (path == "/readyz") {
        // A standby is ready too (as controller-runtime's readyz): readiness gates rollouts,
        // and a Deployment whose standbys never became ready could not roll. Traffic goes to
        // the leader through the Service's eddy.dev/leader selector.
        auto* op = op_ptr.load();
        if (!leading.load()) {
          Reply(req, web::http::status_codes::OK, "ok (standby)\n");
        } else if (!op || !op->Ready()) {
          Reply(req, web::http::status_codes::ServiceUnavailable, "FlinkJob caches not synced\n");
        } else {
          Reply(req, web::http::status_codes::OK, "ok\n");
        }
      } else {
        Reply(req, web::http::status_codes::NotFound, "not found\n");
      }
    });
    health->open().wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eddy-operator: health port %s:%ld: %s\n", bind.c_str(), health_port,
                 e.what());
    return 1;
  }

  // ---- leader election: the elector exists before anything reads it. Lease requests get one
  // attempt bounded by the renew deadline (a renewal must not outlive it in retries).
  std::unique_ptr<eddy::k8s::LeaderElector> elector;
  if (leader_elect) {
    eddy::k8s::LeaderElectionOptions lo;
    lo.lease_namespace = lease_ns;
    lo.lease_name = lease_name;
    std::string host = Env("POD_NAME");
    if (host.empty()) {
      char h[256] = {};
      ::gethostname(h, sizeof h - 1);
      host = h;
    }
    std::mt19937 rng(std::random_device{}());
    lo.identity = host + "_" + std::to_string(rng() % 1000000);
    eddy::k8s::KubeClientOptions lko = ko;
    lko.max_attempts = 1;
    lko.request_timeout_ms = 5000;
    auto lease_client = eddy::k8s::KubeClient::Make(*config, lko);
    if (!lease_client.ok()) {
      std::fprintf(stderr, "eddy-operator: %s\n", lease_client.status().message().c_str());
      return 1;
    }
    elector = std::make_unique<eddy::k8s::LeaderElector>(*lease_client, lo);
  }

  // ---- REST: the jobs of the leader; a standby answers 503 naming the leader
  auto rest = eddy::control::RestServer::Start(
      [&](const eddy::control::RestRequest& r) -> eddy::control::RestResponse {
        auto* op = op_ptr.load();
        if (leading.load() && !op) return {503, R"({"errors":["starting"]})"};
        if (!leading.load() || !op) {
          nlohmann::json body = {
              {"errors",
               {"this eddy-operator replica is a standby" +
                (elector && !elector->holder().empty() ? "; the leader is " + elector->holder()
                                                       : std::string())}}};
          return {503, body.dump()};
        }
        return op->HandleRest(r);
      },
      "http://" + bind + ":" + std::to_string(rest_port));
  if (!rest.ok()) {
    std::fprintf(stderr, "eddy-operator: %s\n", rest.status().message().c_str());
    return 1;
  }

  // ---- leader election
  if (leader_elect) {
    // A container restarted in the same pod may still carry the label of its previous life.
    SetLeaderLabel(**client, false);
    Log("waiting to lead (Lease " + lease_ns + "/" + lease_name + ", identity " +
        elector->identity() + ")");
    if (!elector->Acquire(g_stop)) {
      health->close().wait();
      return 0;
    }
    leading = true;
    Log("leading (Lease " + lease_ns + "/" + lease_name + ")");
    SetLeaderLabel(**client, true);
  }

  // ---- the controller
  eddy::control::FlinkJobOperatorOptions oo;
  oo.namespaces = SplitList(namespaces);
  oo.rpc_bind_host = bind;
  oo.advertise_address = advertise;
  oo.worker_image = worker_image;
  oo.worker_service_account = worker_sa;
  oo.savepoint_on_deletion = savepoint_on_deletion;
  oo.status_interval_ms = status_interval;
  oo.log = Log;
  oo.debug = debug;
  oo.on_reconcile = [&](double s, bool ok) {
    reconcile_seconds.Observe(s);
    reconciles.fetch_add(1);
    if (!ok) reconcile_errors.fetch_add(1);
  };
  auto op = eddy::control::FlinkJobOperator::Start(*client, oo);
  if (!op.ok()) {
    std::fprintf(stderr, "eddy-operator: %s\n", op.status().message().c_str());
    return 1;
  }
  op_ptr = op->get();
  int rc = 0;
  int64_t next_renew = eddy::SteadyMillis();
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (elector && eddy::SteadyMillis() >= next_renew) {
      next_renew = eddy::SteadyMillis() + 2000;
      if (!elector->Renew()) {
        // Exit at once: the next leader restarts the jobs, and two JobMasters of one job must
        // not run side by side while this one winds down.
        Log("lost the leadership (Lease held by '" + elector->holder() + "'): exiting");
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
  }
  Log(rc == 0 ? "stopping (signal)" : "stopping");
  op_ptr = nullptr;
  rest->reset();
  (*op)->Stop(/*stop_jobs=*/false);
  if (elector && rc == 0) elector->Release();
  collect->Detach();
  health->close().wait();
  std::fflush(stderr);
  // JobMasters left for the next leader still own threads and sockets: end without unwinding.
  std::_Exit(rc);
}
