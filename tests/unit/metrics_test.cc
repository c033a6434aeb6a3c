// eddy/metrics: AtomicHistogram bucket math (also under concurrent observers), FamilyBuilder
// naming and validation, CallbackCollectable's detach guarantee, process metrics, and a real
// MetricsServer on an ephemeral port read over HTTP.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "eddy/metrics/histogram.h"
#include "eddy/metrics/metrics.h"

namespace eddy::metrics {
namespace {

// ---- helpers ----------------------------------------------------------------------------------

HistogramBuckets Buckets(std::vector<double> bounds) {
  auto buckets = HistogramBuckets::Make(std::move(bounds));
  EXPECT_TRUE(buckets.ok()) << buckets.status().ToString();
  return *buckets;
}

struct HttpResponse {
  int status = 0;  // 0 when the request failed; `error` says why
  std::string body;
  std::string error;
};

/// A minimal HTTP/1.0 GET against 127.0.0.1:`port`; the server closes the connection after the
/// response, so the body is everything after the headers.
HttpResponse HttpGet(int port, const std::string& path) {
  HttpResponse response;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    response.error = "socket() failed";
    return response;
  }
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    response.error = "connect() to port " + std::to_string(port) + " failed";
    return response;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    response.error = "send() failed";
    return response;
  }
  std::string raw;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) raw.append(buffer, n);
  close(fd);
  size_t header_end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.") || raw.size() < 12 || header_end == std::string::npos) {
    response.error = "malformed response: " + raw.substr(0, 200);
    return response;
  }
  response.status = std::stoi(raw.substr(9, 3));
  response.body = raw.substr(header_end + 4);
  return response;
}

/// A socket listening on an ephemeral port of 127.0.0.1, closed on destruction.
class OccupiedPort {
 public:
  OccupiedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd_, 1) != 0) {
      throw std::runtime_error("cannot occupy a port");
    }
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~OccupiedPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// ---- HistogramBuckets -------------------------------------------------------------------------

TEST(MetricsHistogramBucketsTest, RejectsMalformedBounds) {
  const double kInf = std::numeric_limits<double>::infinity();
  const double kNan = std::numeric_limits<double>::quiet_NaN();
  for (const std::vector<double>& bounds :
       std::vector<std::vector<double>>{{}, {1, 1}, {2, 1}, {1, kNan}, {1, kInf}, {-kInf, 1}}) {
    auto buckets = HistogramBuckets::Make(bounds);
    ASSERT_FALSE(buckets.ok()) << "accepted " << bounds.size() << " bounds";
    EXPECT_EQ(buckets.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(HistogramBuckets::Make({-1, 0, 0.5}).ok());
}

TEST(MetricsHistogramBucketsTest, ExponentialAndLinear) {
  auto exponential = HistogramBuckets::Exponential(0.001, 10, 4);
  ASSERT_TRUE(exponential.ok());
  ASSERT_EQ(exponential->size(), 4u);
  EXPECT_DOUBLE_EQ(exponential->upper_bounds()[0], 0.001);
  EXPECT_DOUBLE_EQ(exponential->upper_bounds()[3], 1.0);

  auto linear = HistogramBuckets::Linear(1, 2, 3);
  ASSERT_TRUE(linear.ok());
  EXPECT_EQ(linear->upper_bounds(), (std::vector<double>{1, 3, 5}));

  EXPECT_FALSE(HistogramBuckets::Exponential(0, 2, 3).ok());
  EXPECT_FALSE(HistogramBuckets::Exponential(1, 1, 3).ok());
  EXPECT_FALSE(HistogramBuckets::Exponential(1, 2, 0).ok());
  EXPECT_FALSE(HistogramBuckets::Linear(0, 0, 3).ok());
  EXPECT_FALSE(HistogramBuckets::Linear(0, 1, 0).ok());

  const auto& seconds = HistogramBuckets::DefaultSeconds().upper_bounds();
  EXPECT_DOUBLE_EQ(seconds.front(), 0.0005);
  EXPECT_DOUBLE_EQ(seconds.back(), 60);
  EXPECT_TRUE(HistogramBuckets::Make(seconds).ok());
}

// ---- AtomicHistogram --------------------------------------------------------------------------

TEST(MetricsAtomicHistogramTest, EmptySnapshot) {
  AtomicHistogram histogram(Buckets({1, 2}));
  HistogramSnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.upper_bounds, (std::vector<double>{1, 2}));
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<uint64_t>{0, 0, 0}));
  EXPECT_EQ(snapshot.count, 0u);
  EXPECT_EQ(snapshot.sum, 0.0);
}

TEST(MetricsAtomicHistogramTest, UpperBoundsAreInclusiveAndCountsCumulative) {
  AtomicHistogram histogram(Buckets({1, 2, 5}));
  for (double v : {0.5, 1.0, -3.0}) histogram.Observe(v);       // le=1
  for (double v : {1.5, 2.0}) histogram.Observe(v);             // le=2
  for (double v : {4.9, 5.0}) histogram.Observe(v);             // le=5
  for (double v : {5.1, 100.0}) histogram.Observe(v);           // +Inf
  histogram.Observe(std::numeric_limits<double>::quiet_NaN());  // ignored
  histogram.Observe(std::numeric_limits<double>::infinity());   // +Inf
  HistogramSnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<uint64_t>{3, 5, 7, 10}));
  EXPECT_EQ(snapshot.count, 10u);
  EXPECT_EQ(snapshot.sum, std::numeric_limits<double>::infinity());

  AtomicHistogram finite(Buckets({1, 2, 5}));
  for (double v : {0.5, 1.0, -3.0, 1.5, 2.0, 4.9, 5.0, 5.1, 100.0}) finite.Observe(v);
  HistogramSnapshot s = finite.Snapshot();
  EXPECT_EQ(s.cumulative_counts, (std::vector<uint64_t>{3, 5, 7, 9}));
  EXPECT_EQ(s.count, 9u);
  EXPECT_DOUBLE_EQ(s.sum, 117.0);
}

TEST(MetricsAtomicHistogramTest, ConcurrentObserversLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200'000;
  // Multiples of 1/4: every partial sum is exact, whatever the interleaving.
  constexpr double kValues[] = {0.25, 1.0, 3.0, 10.0};
  AtomicHistogram histogram(Buckets({0.5, 2, 5}));

  std::atomic<bool> done{false};
  std::atomic<int> bad_snapshots{0};
  std::thread reader([&] {
    uint64_t last_count = 0;
    while (!done.load()) {
      HistogramSnapshot s = histogram.Snapshot();
      bool cumulative = std::is_sorted(s.cumulative_counts.begin(), s.cumulative_counts.end());
      if (!cumulative || s.cumulative_counts.back() != s.count || s.count < last_count) {
        bad_snapshots.fetch_add(1);
      }
      last_count = s.count;
    }
  });
  std::vector<std::thread> writers;
  writers.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) histogram.Observe(kValues[(i + t) % 4]);
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  reader.join();

  constexpr uint64_t kEach = kThreads * kPerThread / 4;
  HistogramSnapshot s = histogram.Snapshot();
  EXPECT_EQ(s.cumulative_counts, (std::vector<uint64_t>{kEach, 2 * kEach, 3 * kEach, 4 * kEach}));
  EXPECT_EQ(s.count, 4 * kEach);
  EXPECT_EQ(s.sum, static_cast<double>(kEach) * (0.25 + 1.0 + 3.0 + 10.0));
  EXPECT_EQ(bad_snapshots.load(), 0);
}

// ---- FamilyBuilder ----------------------------------------------------------------------------

TEST(MetricsFamilyBuilderTest, BuildsTypedFamilies) {
  FamilyBuilder counter = FamilyBuilder::Counter("eddy_task_records_in_total", "Records read.");
  counter.Add({{"vertex", "map"}, {"job", "orders"}}, 42).Add({{"job", "other"}}, 7);
  EXPECT_TRUE(counter.Validate().ok()) << counter.Validate().ToString();
  prometheus::MetricFamily family = counter.Build();
  EXPECT_EQ(family.name, "eddy_task_records_in_total");
  EXPECT_EQ(family.help, "Records read.");
  EXPECT_EQ(family.type, prometheus::MetricType::Counter);
  ASSERT_EQ(family.metric.size(), 2u);
  ASSERT_EQ(family.metric[0].label.size(), 2u);
  EXPECT_EQ(family.metric[0].label[0].name, "job");  // sorted by name
  EXPECT_EQ(family.metric[0].label[0].value, "orders");
  EXPECT_EQ(family.metric[0].label[1].name, "vertex");
  EXPECT_EQ(family.metric[0].counter.value, 42);
  EXPECT_EQ(family.metric[1].counter.value, 7);
  // Build empties the builder but keeps name, help and type.
  prometheus::MetricFamily again = counter.Build();
  EXPECT_EQ(again.name, "eddy_task_records_in_total");
  EXPECT_TRUE(again.metric.empty());

  prometheus::MetricFamily gauge =
      FamilyBuilder::Gauge("eddy_worker_network_buffers_used", "Buffers in use.")
          .Add({}, 3.5)
          .Build();
  EXPECT_EQ(gauge.type, prometheus::MetricType::Gauge);
  ASSERT_EQ(gauge.metric.size(), 1u);
  EXPECT_EQ(gauge.metric[0].gauge.value, 3.5);
  EXPECT_TRUE(gauge.metric[0].label.empty());

  AtomicHistogram histogram(Buckets({0.1, 1}));
  histogram.Observe(0.05);
  histogram.Observe(0.5);
  histogram.Observe(7);
  FamilyBuilder h = FamilyBuilder::Histogram("eddy_checkpoint_duration_seconds", "Duration.");
  h.Add({{"job", "orders"}}, histogram.Snapshot());
  EXPECT_TRUE(h.Validate().ok()) << h.Validate().ToString();
  prometheus::MetricFamily hist = h.Build();
  EXPECT_EQ(hist.type, prometheus::MetricType::Histogram);
  ASSERT_EQ(hist.metric.size(), 1u);
  const auto& data = hist.metric[0].histogram;
  EXPECT_EQ(data.sample_count, 3u);
  EXPECT_DOUBLE_EQ(data.sample_sum, 7.55);
  ASSERT_EQ(data.bucket.size(), 3u);
  EXPECT_EQ(data.bucket[0].upper_bound, 0.1);
  EXPECT_EQ(data.bucket[0].cumulative_count, 1u);
  EXPECT_EQ(data.bucket[1].upper_bound, 1);
  EXPECT_EQ(data.bucket[1].cumulative_count, 2u);
  EXPECT_TRUE(std::isinf(data.bucket[2].upper_bound));
  EXPECT_EQ(data.bucket[2].cumulative_count, 3u);
}

TEST(MetricsFamilyBuilderTest, ValidateNamesTheMistake) {
  AtomicHistogram histogram(Buckets({1}));
  struct Case {
    const char* what;
    FamilyBuilder builder;
  };
  std::vector<Case> cases;
  cases.push_back({"counter without _total", FamilyBuilder::Counter("eddy_records", "h")});
  cases.push_back({"gauge with _total", FamilyBuilder::Gauge("eddy_records_total", "h")});
  cases.push_back({"no eddy_ prefix", FamilyBuilder::Counter("records_total", "h")});
  cases.push_back({"malformed name", FamilyBuilder::Gauge("eddy-records", "h")});
  cases.push_back({"empty help", FamilyBuilder::Gauge("eddy_records", "")});
  cases.push_back({"newline in help", FamilyBuilder::Gauge("eddy_records", "a\nb")});
  cases.push_back({"histogram _count", FamilyBuilder::Histogram("eddy_latency_count", "h")});
  cases.push_back({"reserved label", FamilyBuilder::Gauge("eddy_g", "h").Add({{"__x", "1"}}, 1)});
  cases.push_back({"malformed label", FamilyBuilder::Gauge("eddy_g", "h").Add({{"1a", "1"}}, 1)});
  cases.push_back({"duplicate labels",
                   FamilyBuilder::Gauge("eddy_g", "h").Add({{"a", "1"}}, 1).Add({{"a", "1"}}, 2)});
  cases.push_back({"negative counter", FamilyBuilder::Counter("eddy_c_total", "h").Add({}, -1)});
  cases.push_back({"NaN counter", FamilyBuilder::Counter("eddy_c_total", "h")
                                      .Add({}, std::numeric_limits<double>::quiet_NaN())});
  cases.push_back(
      {"le on histogram",
       FamilyBuilder::Histogram("eddy_h_seconds", "h").Add({{"le", "1"}}, histogram.Snapshot())});
  cases.push_back(
      {"value on histogram", FamilyBuilder::Histogram("eddy_h_seconds", "h").Add({}, 1)});
  cases.push_back({"snapshot on counter",
                   FamilyBuilder::Counter("eddy_c_total", "h").Add({}, histogram.Snapshot())});
  for (const Case& c : cases) {
    Status st = c.builder.Validate();
    EXPECT_FALSE(st.ok()) << c.what;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what;
  }
  // The message names the family.
  EXPECT_NE(FamilyBuilder::Counter("eddy_records", "h").Validate().message().find("eddy_records"),
            std::string::npos);
}

TEST(MetricsFamilyBuilderTest, ValidateFamiliesRejectsDuplicateNames) {
  std::vector<prometheus::MetricFamily> families;
  families.push_back(FamilyBuilder::Gauge("eddy_g", "h").Add({}, 1).Build());
  families.push_back(FamilyBuilder::Counter("eddy_c_total", "h").Add({}, 1).Build());
  EXPECT_TRUE(ValidateFamilies(families).ok());
  families.push_back(FamilyBuilder::Gauge("eddy_g", "h").Add({{"a", "b"}}, 1).Build());
  EXPECT_FALSE(ValidateFamilies(families).ok());
}

// ---- CallbackCollectable ----------------------------------------------------------------------

std::vector<prometheus::MetricFamily> OneGauge(double value) {
  std::vector<prometheus::MetricFamily> families;
  families.push_back(FamilyBuilder::Gauge("eddy_g", "h").Add({}, value).Build());
  return families;
}

TEST(MetricsCallbackCollectableTest, CallsTheCallbackAtEveryCollect) {
  int calls = 0;
  auto collectable = CallbackCollectable::Make([&] { return OneGauge(++calls); });
  EXPECT_EQ(collectable->Collect()[0].metric[0].gauge.value, 1);
  EXPECT_EQ(collectable->Collect()[0].metric[0].gauge.value, 2);
  collectable->Detach();
  EXPECT_TRUE(collectable->Collect().empty());
  EXPECT_EQ(calls, 2);
  collectable->Detach();  // idempotent
}

TEST(MetricsCallbackCollectableTest, DetachWaitsForARunningCallback) {
  std::promise<void> entered;
  std::atomic<bool> finished{false};
  auto collectable = CallbackCollectable::Make([&] {
    entered.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    finished = true;
    return OneGauge(1);
  });
  std::thread scrape([&] { collectable->Collect(); });
  entered.get_future().wait();
  collectable->Detach();
  EXPECT_TRUE(finished.load()) << "Detach returned while the callback was still running";
  scrape.join();
  EXPECT_TRUE(collectable->Collect().empty());
}

TEST(MetricsCallbackCollectableTest, ThrowingCallbackYieldsNoFamilies) {
  auto collectable = CallbackCollectable::Make(
      []() -> std::vector<prometheus::MetricFamily> { throw std::runtime_error("boom"); });
  EXPECT_TRUE(collectable->Collect().empty());
}

TEST(MetricsCallbackCollectableTest, ForOwnerStopsWhenTheOwnerIsGone) {
  struct Probe {
    double value = 5;
  };
  auto probe = std::make_shared<Probe>();
  auto collectable = CallbackCollectable::ForOwner(
      std::weak_ptr<Probe>(probe), [](const Probe& p) { return OneGauge(p.value); });
  ASSERT_EQ(collectable->Collect().size(), 1u);
  EXPECT_EQ(collectable->Collect()[0].metric[0].gauge.value, 5);
  probe.reset();
  EXPECT_TRUE(collectable->Collect().empty());
}

// ---- Process metrics --------------------------------------------------------------------------

TEST(MetricsProcessTest, ReadsProcSelf) {
  auto before = ReadProcessStats();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_GT(before->resident_memory_bytes, 1024u * 1024u);
  EXPECT_GE(before->cpu_seconds, 0);
  EXPECT_GE(before->open_fds, 3u);  // stdin, stdout, stderr

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  auto during = ReadProcessStats();
  close(fds[0]);
  close(fds[1]);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->open_fds, before->open_fds + 2);
  EXPECT_GE(during->cpu_seconds, before->cpu_seconds);
}

TEST(MetricsProcessTest, CollectableExposesTheThreeFamilies) {
  auto families = ProcessCollectable().Collect();
  EXPECT_TRUE(ValidateFamilies(families).ok()) << ValidateFamilies(families).ToString();
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(families[0].name, "eddy_process_resident_memory_bytes");
  EXPECT_EQ(families[0].type, prometheus::MetricType::Gauge);
  EXPECT_GT(families[0].metric.at(0).gauge.value, 0);
  EXPECT_EQ(families[1].name, "eddy_process_cpu_seconds_total");
  EXPECT_EQ(families[1].type, prometheus::MetricType::Counter);
  EXPECT_EQ(families[2].name, "eddy_process_open_fds");
  EXPECT_GE(families[2].metric.at(0).gauge.value, 3);
}

// ---- MetricsServer ----------------------------------------------------------------------------

TEST(MetricsServerTest, ServesCallbackFamiliesOnAnEphemeralPort) {
  auto server = MetricsServer::Start("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  int port = (*server)->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ((*server)->bind_address(), "127.0.0.1:0");

  std::atomic<uint64_t> records{42};
  auto histogram = std::make_shared<AtomicHistogram>(Buckets({0.1, 1}));
  histogram->Observe(0.5);
  auto task = CallbackCollectable::Make([&] {
    std::vector<prometheus::MetricFamily> families;
    families.push_back(FamilyBuilder::Counter("eddy_test_records_total", "Records.")
                           .Add({{"job", "j"}, {"vertex", "v"}},
                                static_cast<double>(records.load(std::memory_order_relaxed)))
                           .Build());
    families.push_back(FamilyBuilder::Histogram("eddy_test_latency_seconds", "Latency.")
                           .Add({{"job", "j"}}, histogram->Snapshot())
                           .Build());
    return families;
  });
  (*server)->Add(task);
  (*server)->Add(std::make_shared<ProcessCollectable>());

  HttpResponse r = HttpGet(port, "/metrics");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_NE(r.body.find("# HELP eddy_test_records_total Records.\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("# TYPE eddy_test_records_total counter\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\neddy_test_records_total{job=\"j\",vertex=\"v\"} 42\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("# TYPE eddy_test_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(r.body.find("\neddy_test_latency_seconds_bucket{job=\"j\",le=\"0.1\"} 0\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("\neddy_test_latency_seconds_bucket{job=\"j\",le=\"1\"} 1\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("\neddy_test_latency_seconds_bucket{job=\"j\",le=\"+Inf\"} 1\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("\neddy_test_latency_seconds_count{job=\"j\"} 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("\neddy_test_latency_seconds_sum{job=\"j\"} 0.5\n"), std::string::npos);
  EXPECT_NE(r.body.find("\neddy_process_open_fds "), std::string::npos) << r.body;

  // Values are read at scrape time.
  records = 43;
  r = HttpGet(port, "/metrics");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_NE(r.body.find("\neddy_test_records_total{job=\"j\",vertex=\"v\"} 43\n"),
            std::string::npos)
      << r.body;

  EXPECT_EQ(HttpGet(port, "/nothing-here").status, 404);

  // After Remove the families are gone, and the callback is no longer called.
  (*server)->Remove(task);
  r = HttpGet(port, "/metrics");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body.find("eddy_test_records_total"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("eddy_process_open_fds"), std::string::npos);
}

TEST(MetricsServerTest, OccupiedPortIsAnErrorNamingTheAddress) {
  OccupiedPort occupied;
  std::string address = "127.0.0.1:" + std::to_string(occupied.port());
  auto server = MetricsServer::Start(address);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(server.status().message().find(address), std::string::npos)
      << server.status().ToString();
}

TEST(MetricsServerTest, SecondServerOnTheSamePortFails) {
  auto first = MetricsServer::Start("127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = MetricsServer::Start("127.0.0.1:" + std::to_string((*first)->port()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  // The first one still serves.
  EXPECT_EQ(HttpGet((*first)->port(), "/metrics").status, 200);
}

TEST(MetricsServerTest, NonLocalAddressIsAnError) {
  // 192.0.2.0/24 is TEST-NET-1: never an address of this host.
  auto server = MetricsServer::Start("192.0.2.1:0");
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(server.status().message().find("192.0.2.1:0"), std::string::npos);
}

TEST(MetricsServerTest, MalformedAddressesAreRejected) {
  for (const char* address :
       {"", "abc", "127.0.0.1", ":9249", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:9249s",
        "127.0.0.1:1,127.0.0.1:2", "localhost:9249", "[::1:9249", "1.2.3:9249"}) {
    auto server = MetricsServer::Start(address);
    ASSERT_FALSE(server.ok()) << "accepted '" << address << "'";
    EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument) << address;
  }
}

}  // namespace
}  // namespace eddy::metrics
