// eddy_metrics_demo: a test-only process that serves a fixed set of Eddy-style metrics on
// /metrics so that tests can scrape them with real tools (promtool, Prometheus). See
// tests/python/test_metrics_scrape.py.
//
//   eddy_metrics_demo [--listen HOST:PORT] [--records N]
//
// Serves on --listen (default 127.0.0.1:0, an ephemeral port), prints `port=<bound port>` on
// stdout once it is serving, and runs until SIGTERM or SIGINT, then exits 0. The values are
// deterministic so that tests can query them back:
//   eddy_demo_records_total{job="demo",vertex="source",subtask="0"}  N  (default 12345)
//   eddy_demo_records_total{job="demo",vertex="source",subtask="1"}  2N
//   eddy_demo_buffer_fill_ratio{job="demo",vertex="source"}          0.25
//   eddy_demo_latency_seconds{job="demo"}  histogram of 0.003, 0.02, 0.02, 0.7 and 120 seconds
//   eddy_demo_collections_total                                      callback runs so far
// plus the process metrics (eddy_process_*).

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/metrics/metrics.h"

namespace {

using eddy::metrics::AtomicHistogram;
using eddy::metrics::CallbackCollectable;
using eddy::metrics::FamilyBuilder;
using eddy::metrics::HistogramBuckets;
using eddy::metrics::MetricsServer;
using eddy::metrics::ProcessCollectable;

int Usage() {
  std::fprintf(stderr, "usage: eddy_metrics_demo [--listen HOST:PORT] [--records N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  uint64_t records = 12345;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (arg == "--records" && i + 1 < argc) {
      char* end = nullptr;
      records = std::strtoull(argv[++i], &end, 10);
      if (end == nullptr || *end != '\0') return Usage();
    } else {
      return Usage();
    }
  }

  // Block the stop signals before the server starts its threads, so that they inherit the mask
  // and only sigwait below sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto latency = std::make_shared<AtomicHistogram>(HistogramBuckets::DefaultSeconds());
  for (double seconds : {0.003, 0.02, 0.02, 0.7, 120.0}) latency->Observe(seconds);
  auto collections = std::make_shared<std::atomic<uint64_t>>(0);

  auto demo = CallbackCollectable::Make([=] {
    uint64_t n = collections->fetch_add(1, std::memory_order_relaxed) + 1;
    std::vector<prometheus::MetricFamily> families;
    families.push_back(
        FamilyBuilder::Counter("eddy_demo_records_total", "Records emitted by the demo source.")
            .Add({{"job", "demo"}, {"vertex", "source"}, {"subtask", "0"}},
                 static_cast<double>(records))
            .Add({{"job", "demo"}, {"vertex", "source"}, {"subtask", "1"}},
                 static_cast<double>(2 * records))
            .Build());
    families.push_back(
        FamilyBuilder::Gauge("eddy_demo_buffer_fill_ratio", "Fraction of the buffer in use.")
            .Add({{"job", "demo"}, {"vertex", "source"}}, 0.25)
            .Build());
    families.push_back(
        FamilyBuilder::Histogram("eddy_demo_latency_seconds", "Demo record latency in seconds.")
            .Add({{"job", "demo"}}, latency->Snapshot())
            .Build());
    families.push_back(FamilyBuilder::Counter("eddy_demo_collections_total",
                                              "Times the demo callback has been collected.")
                           .Add({}, static_cast<double>(n))
                           .Build());
    return families;
  });

  auto server = MetricsServer::Start(listen);
  if (!server.ok()) {
    std::fprintf(stderr, "eddy_metrics_demo: %s\n", server.status().ToString().c_str());
    return 1;
  }
  (*server)->Add(demo);
  (*server)->Add(std::make_shared<ProcessCollectable>());
  std::printf("port=%d\n", (*server)->port());
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  demo->Detach();
  return 0;
}
