#include "eddy/metrics/metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <exception>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <prometheus/check_names.h>
#include <prometheus/exposer.h>

namespace eddy::metrics {

namespace {

constexpr std::string_view kPrefix = "eddy_";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view TypeName(prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Histogram:
      return "histogram";
    case prometheus::MetricType::Summary:
      return "summary";
    case prometheus::MetricType::Untyped:
      return "untyped";
  }
  return "unknown";
}

Status Invalid(const prometheus::MetricFamily& family, const std::string& what) {
  return Status::InvalidArgument("metric family '" + family.name + "' (" +
                                 std::string(TypeName(family.type)) + "): " + what);
}

std::string LabelsToString(const std::vector<prometheus::ClientMetric::Label>& labels) {
  std::string out = "{";
  for (const auto& l : labels) {
    if (out.size() > 1) out += ",";
    out += l.name + "=\"" + l.value + "\"";
  }
  return out + "}";
}

Status ValidateFamily(const prometheus::MetricFamily& family) {
  const std::string& name = family.name;
  if (!prometheus::CheckMetricName(name)) return Invalid(family, "malformed metric name");
  if (!name.starts_with(kPrefix)) return Invalid(family, "name must start with 'eddy_'");
  bool counter = family.type == prometheus::MetricType::Counter;
  if (counter && !EndsWith(name, "_total")) {
    return Invalid(family, "a counter's name must end in '_total'");
  }
  if (!counter && EndsWith(name, "_total")) {
    return Invalid(family, "only counters' names end in '_total'");
  }
  if (family.type == prometheus::MetricType::Histogram &&
      (EndsWith(name, "_bucket") || EndsWith(name, "_count") || EndsWith(name, "_sum"))) {
    return Invalid(family, "a histogram's name must not end in _bucket, _count or _sum");
  }
  if (family.help.empty()) return Invalid(family, "help text is empty");
  // prometheus-cpp 1.0 writes HELP verbatim: a newline or backslash would corrupt the exposition.
  if (family.help.find_first_of("\n\\") != std::string::npos) {
    return Invalid(family, "help text must not contain a newline or a backslash");
  }
  std::set<std::vector<prometheus::ClientMetric::Label>> seen;
  for (const auto& metric : family.metric) {
    for (const auto& label : metric.label) {
      if (!prometheus::CheckLabelName(label.name)) {
        return Invalid(family, "malformed or reserved label name '" + label.name + "'");
      }
      if (family.type == prometheus::MetricType::Histogram && label.name == "le") {
        return Invalid(family, "label 'le' is reserved for histogram buckets");
      }
    }
    if (!seen.insert(metric.label).second) {
      return Invalid(family, "two samples with labels " + LabelsToString(metric.label));
    }
    if (counter && !(metric.counter.value >= 0)) {
      return Invalid(family, "counter " + LabelsToString(metric.label) + " is negative or NaN");
    }
  }
  return Status::Ok();
}

}  // namespace

// ---- FamilyBuilder ----------------------------------------------------------------------------

FamilyBuilder::FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
  family_.name = std::move(name);
  family_.help = std::move(help);
  family_.type = type;
}

FamilyBuilder FamilyBuilder::Counter(std::string name, std::string help) {
  return FamilyBuilder(std::move(name), std::move(help), prometheus::MetricType::Counter);
}

FamilyBuilder FamilyBuilder::Gauge(std::string name, std::string help) {
  return FamilyBuilder(std::move(name), std::move(help), prometheus::MetricType::Gauge);
}

FamilyBuilder FamilyBuilder::Histogram(std::string name, std::string help) {
  return FamilyBuilder(std::move(name), std::move(help), prometheus::MetricType::Histogram);
}

prometheus::ClientMetric::Label FamilyBuilder::Label(const std::string& name,
                                                     const std::string& value) {
  prometheus::ClientMetric::Label label;
  label.name = name;
  label.value = value;
  return label;
}

FamilyBuilder& FamilyBuilder::Add(const Labels& labels, double value) {
  prometheus::ClientMetric metric;
  switch (family_.type) {
    case prometheus::MetricType::Counter:
      metric.counter.value = value;
      break;
    case prometheus::MetricType::Gauge:
      metric.gauge.value = value;
      break;
    default:
      if (misuse_.empty()) misuse_ = "Add(labels, double) on a histogram family";
      return *this;
  }
  // Labels is an ordered map, so the label list comes out sorted by name.
  for (const auto& [name, label_value] : labels) metric.label.push_back(Label(name, label_value));
  family_.metric.push_back(std::move(metric));
  return *this;
}

FamilyBuilder& FamilyBuilder::Add(const Labels& labels, const HistogramSnapshot& snapshot) {
  if (family_.type != prometheus::MetricType::Histogram) {
    if (misuse_.empty()) misuse_ = "Add(labels, HistogramSnapshot) on a counter or gauge family";
    return *this;
  }
  if (snapshot.cumulative_counts.size() != snapshot.upper_bounds.size() + 1) {
    if (misuse_.empty()) misuse_ = "malformed HistogramSnapshot (bucket count mismatch)";
    return *this;
  }
  prometheus::ClientMetric metric;
  for (const auto& [name, label_value] : labels) metric.label.push_back(Label(name, label_value));
  metric.histogram.sample_count = snapshot.count;
  metric.histogram.sample_sum = snapshot.sum;
  metric.histogram.bucket.reserve(snapshot.cumulative_counts.size());
  for (size_t i = 0; i < snapshot.cumulative_counts.size(); ++i) {
    prometheus::ClientMetric::Bucket bucket;
    bucket.upper_bound = i < snapshot.upper_bounds.size() ? snapshot.upper_bounds[i]
                                                          : std::numeric_limits<double>::infinity();
    bucket.cumulative_count = snapshot.cumulative_counts[i];
    metric.histogram.bucket.push_back(bucket);
  }
  family_.metric.push_back(std::move(metric));
  return *this;
}

Status FamilyBuilder::Validate() const {
  if (!misuse_.empty()) return Invalid(family_, misuse_);
  return ValidateFamily(family_);
}

prometheus::MetricFamily FamilyBuilder::Build() {
  prometheus::MetricFamily out = std::move(family_);
  family_ = prometheus::MetricFamily{};
  family_.name = out.name;
  family_.help = out.help;
  family_.type = out.type;
  return out;
}

Status ValidateFamilies(const std::vector<prometheus::MetricFamily>& families) {
  std::set<std::string> names;
  for (const auto& family : families) {
    EDDY_RETURN_NOT_OK(ValidateFamily(family));
    if (!names.insert(family.name).second) {
      return Invalid(family, "two families with this name in one scrape");
    }
  }
  return Status::Ok();
}

// ---- CallbackCollectable ----------------------------------------------------------------------

std::shared_ptr<CallbackCollectable> CallbackCollectable::Make(Callback callback) {
  return std::make_shared<CallbackCollectable>(std::move(callback));
}

std::vector<prometheus::MetricFamily> CallbackCollectable::Collect() const {
  std::lock_guard lock(mu_);
  if (!callback_) return {};
  try {
    return callback_();
  } catch (const std::exception&) {
    // The scrape goes on without these families; the HTTP server's C code must not see it.
    return {};
  }
}

void CallbackCollectable::Detach() {
  Callback dead;
  {
    std::lock_guard lock(mu_);
    dead = std::move(callback_);
    callback_ = nullptr;
  }
  // `dead` (and whatever it captured) is destroyed outside the lock.
}

// ---- Process metrics --------------------------------------------------------------------------

Result<ProcessStats> ReadProcessStats() {
  ProcessStats stats;
  long page_size = sysconf(_SC_PAGESIZE);
  long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (page_size <= 0 || ticks_per_second <= 0) {
    return Status::IOError("sysconf(_SC_PAGESIZE/_SC_CLK_TCK) failed");
  }

  {
    std::ifstream statm("/proc/self/statm");
    uint64_t size_pages = 0;
    uint64_t resident_pages = 0;
    if (!(statm >> size_pages >> resident_pages)) {
      return Status::IOError("cannot read /proc/self/statm");
    }
    stats.resident_memory_bytes = resident_pages * static_cast<uint64_t>(page_size);
  }

  {
    std::ifstream stat_file("/proc/self/stat");
    std::string line;
    if (!std::getline(stat_file, line)) return Status::IOError("cannot read /proc/self/stat");
    // The command name (field 2) is in parentheses and may contain spaces and ')': fields are
    // counted from the last ')'. The next field is #3 (state); utime and stime are #14 and #15.
    size_t paren = line.rfind(')');
    if (paren == std::string::npos) return Status::IOError("malformed /proc/self/stat");
    std::istringstream fields(line.substr(paren + 1));
    std::string field;
    uint64_t utime = 0;
    uint64_t stime = 0;
    for (int i = 3; i <= 13; ++i) fields >> field;
    if (!(fields >> utime >> stime)) return Status::IOError("malformed /proc/self/stat");
    stats.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
  }

  {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return Status::IOError("cannot open /proc/self/fd");
    std::string own_fd = std::to_string(dirfd(dir));
    uint64_t count = 0;
    while (const dirent* entry = readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name == "." || name == ".." || name == own_fd) continue;
      ++count;
    }
    closedir(dir);
    stats.open_fds = count;
  }
  return stats;
}

std::vector<prometheus::MetricFamily> ProcessCollectable::Collect() const {
  Result<ProcessStats> stats = ReadProcessStats();
  if (!stats.ok()) return {};
  std::vector<prometheus::MetricFamily> families;
  families.push_back(
      FamilyBuilder::Gauge("eddy_process_resident_memory_bytes", "Resident set size in bytes.")
          .Add({}, static_cast<double>(stats->resident_memory_bytes))
          .Build());
  families.push_back(FamilyBuilder::Counter("eddy_process_cpu_seconds_total",
                                            "User and system CPU time spent, in seconds.")
                         .Add({}, stats->cpu_seconds)
                         .Build());
  families.push_back(
      FamilyBuilder::Gauge("eddy_process_open_fds", "Number of open file descriptors.")
          .Add({}, static_cast<double>(stats->open_fds))
          .Build());
  return families;
}

// ---- MetricsServer ----------------------------------------------------------------------------

namespace {

// Accepts what civetweb's `listening_ports` accepts for one plain-HTTP port: `port`,
// `a.b.c.d:port`, `[ipv6]:port`. Rejects lists (`,`), the `s`/`r` suffixes (TLS, redirect) and
// host names (civetweb does not resolve them).
Status CheckBindAddress(const std::string& address) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("bad metrics bind address '" + address + "': " + why +
                                   " (expected host:port such as 0.0.0.0:9249 or 127.0.0.1:0)");
  };
  std::string_view host;
  std::string_view port = address;
  if (size_t colon = address.rfind(':'); colon != std::string::npos) {
    host = std::string_view(address).substr(0, colon);
    port = std::string_view(address).substr(colon + 1);
    if (host.empty()) return bad("empty host");
    if (host.front() == '[') {
      if (host.size() < 3 || host.back() != ']') return bad("unterminated IPv6 address");
      for (char c : host.substr(1, host.size() - 2)) {
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
          return bad("malformed IPv6 address");
        }
      }
    } else {
      int dots = 0;
      for (char c : host) {
        if (c == '.') {
          ++dots;
        } else if (!std::isdigit(static_cast<unsigned char>(c))) {
          return bad("host must be an IPv4 address or a bracketed IPv6 address");
        }
      }
      if (dots != 3) return bad("malformed IPv4 address");
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad("port must be a number");
  }
  if (std::stoi(std::string(port)) > 65535) return bad("port out of range");
  return Status::Ok();
}

// Opens and at once closes a connection to the server's listening socket. civetweb's accept loop
// polls in 2 s quanta and looks at its stop flag only between polls; a connection ends the poll,
// so that stopping takes milliseconds instead of up to 2 s. Failures (the socket is already
// closed) are fine.
void PokeListener(const std::string& bind_address, int port) {
  std::string host;
  if (size_t colon = bind_address.rfind(':'); colon != std::string::npos) {
    host = bind_address.substr(0, colon);
  }
  bool v6 = host.starts_with('[');
  if (v6) host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";

  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  timeval timeout{0, 100'000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (v6) {
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &addr.sin6_addr) == 1) {
      (void)connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    }
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1) {
      (void)connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    }
  }
  close(fd);
}

}  // namespace

MetricsServer::MetricsServer(std::string bind_address, std::unique_ptr<prometheus::Exposer> exposer,
                             int port)
    : bind_address_(std::move(bind_address)), port_(port), exposer_(std::move(exposer)) {}

MetricsServer::~MetricsServer() {
  // Stop the HTTP threads (and wait for in-flight scrapes) before the collectables go. While the
  // exposer stops, a helper thread keeps poking the listener so that civetweb notices at once.
  std::atomic<bool> stopped{false};
  std::thread waker;
  try {
    waker = std::thread([this, &stopped] {
      while (!stopped.load(std::memory_order_relaxed)) {
        PokeListener(bind_address_, port_);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  } catch (const std::system_error&) {
    // No thread: stopping just takes up to 2 s longer.
  }
  exposer_.reset();
  stopped = true;
  if (waker.joinable()) waker.join();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& bind_address) {
  EDDY_RETURN_NOT_OK(CheckBindAddress(bind_address));
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(bind_address, /*num_threads=*/2);
  } catch (const std::exception& e) {
    // civetweb throws CivetException when it cannot bind (port taken, address not local).
    std::string hint = bind_address.starts_with('[')
                           ? " (is the port already in use? IPv6 also needs a civetweb built with "
                             "IPv6 support; Debian 12's is not: use an IPv4 address)"
                           : " (is the port already in use?)";
    return Status::Unavailable("cannot serve Prometheus /metrics on " + bind_address + ": " +
                               e.what() + hint);
  }
  std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty() || ports.front() <= 0) {
    return Status::Internal("Prometheus /metrics server on " + bind_address +
                            " reports no listening port");
  }
  int port = ports.front();
  // The exposer creates the /metrics handler with the first collectable; register an empty one so
  // that /metrics answers 200 even before anything is added.
  static const std::shared_ptr<prometheus::Collectable> kNoFamilies =
      CallbackCollectable::Make(nullptr);
  exposer->RegisterCollectable(kNoFamilies);
  return std::unique_ptr<MetricsServer>(new MetricsServer(bind_address, std::move(exposer), port));
}

void MetricsServer::Add(std::shared_ptr<prometheus::Collectable> collectable) {
  if (!collectable) return;
  std::lock_guard lock(mu_);
  exposer_->RegisterCollectable(collectable);
  collectables_.push_back(std::move(collectable));
}

void MetricsServer::Remove(const std::shared_ptr<prometheus::Collectable>& collectable) {
  if (!collectable) return;
  std::lock_guard lock(mu_);
  // Waits for a running scrape (the exposer collects under the same lock it removes under).
  exposer_->RemoveCollectable(collectable);
  std::erase(collectables_, collectable);
}

}  // namespace eddy::metrics
