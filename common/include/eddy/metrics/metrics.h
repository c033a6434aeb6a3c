#pragma once

/// Prometheus exposition for every Eddy process (see docs/metrics.md).
///
/// The hot path only bumps atomics (plain counters, `AtomicHistogram`). At scrape time a
/// `CallbackCollectable` reads them and builds `prometheus::MetricFamily` values with
/// `FamilyBuilder`; a `MetricsServer` serves the families of every registered collectable on
/// `/metrics` (port 9249 by default). `ProcessCollectable` adds the process metrics every Eddy
/// process exposes.
///
///   auto server = MetricsServer::Start("0.0.0.0:9249");            // Result<unique_ptr<...>>
///   auto probe = CallbackCollectable::Make([&] {
///     return std::vector{FamilyBuilder::Counter("eddy_task_records_in_total", "Records read.")
///                            .Add({{"job", job}, {"vertex", v}}, records_in.load())
///                            .Build()};
///   });
///   (*server)->Add(probe);
///   ...
///   (*server)->Remove(probe);  // or just probe->Detach() before what it reads goes away

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>

#include "eddy/metrics/histogram.h"
#include "eddy/status.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace eddy::metrics {

/// Label name -> value, e.g. `{{"job", "orders"}, {"vertex", "map"}, {"subtask", "0"}}`.
using Labels = prometheus::Labels;

/// Builds one `prometheus::MetricFamily` (a metric name, its help and type, and one sample per
/// label set) at scrape time.
///
/// Names follow Prometheus practice and docs/metrics.md: prefix `eddy_`, counters end in
/// `_total`, base units in the name (`_seconds`, `_bytes`). The builder does not reject a bad
/// name on the scrape path; `Validate()` (and `ValidateFamilies`) say what is wrong, and unit
/// tests of each probe call them.
///
/// Lifecycle: made by `Counter`/`Gauge`/`Histogram`, filled by `Add`, emptied by `Build`.
/// Threading: a plain value, used by one thread.
class FamilyBuilder {
 public:
  static FamilyBuilder Counter(std::string name, std::string help);
  static FamilyBuilder Gauge(std::string name, std::string help);
  static FamilyBuilder Histogram(std::string name, std::string help);

  /// Adds a sample to a counter or gauge family. On a histogram family this is a misuse that
  /// `Validate()` reports; the sample is dropped.
  FamilyBuilder& Add(const Labels& labels, double value);
  /// Adds a histogram sample. On a counter or gauge family this is a misuse that `Validate()`
  /// reports; the sample is dropped.
  FamilyBuilder& Add(const Labels& labels, const HistogramSnapshot& snapshot);

  /// OK, or InvalidArgument naming the first problem: a malformed or un-prefixed name, a counter
  /// not ending in `_total` (or another type ending in it), empty help, a malformed or reserved
  /// label name (`__*`, `le` on a histogram), two samples with the same labels, a negative or
  /// NaN counter, or an `Add` of the wrong kind.
  Status Validate() const;

  /// The family built so far; the builder is left empty.
  prometheus::MetricFamily Build();

 private:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type);
  static prometheus::ClientMetric::Label Label(const std::string& name, const std::string& value);

  prometheus::MetricFamily family_;
  std::string misuse_;  // the first wrong-kind Add, reported by Validate()
};

/// Validates each family as `FamilyBuilder::Validate` does and also rejects two families with
/// the same name (Prometheus drops the whole scrape then).
Status ValidateFamilies(const std::vector<prometheus::MetricFamily>& families);

/// A `prometheus::Collectable` whose families come from a callback run at every scrape.
///
/// Lifecycle and ownership: shared (the server holds a reference while registered). The callback
/// usually reads objects it does not own, so the owner of those objects calls `Detach()` (or
/// removes the collectable from the server) before they go away. After `Detach()` returns, the
/// callback is not running and never runs again; later scrapes see no families from it.
/// Threading: `Collect` runs on the server's HTTP threads; scrapes of one collectable are
/// serialized. `Detach` may be called from any thread except from inside the callback (it would
/// wait for itself).
class CallbackCollectable final : public prometheus::Collectable {
 public:
  using Callback = std::function<std::vector<prometheus::MetricFamily>()>;

  static std::shared_ptr<CallbackCollectable> Make(Callback callback);

  /// Calls `callback(const T& owner)` while `owner` is alive and nothing once it has expired.
  /// The scrape holds a strong reference for the duration of the callback.
  template <class T, class F>
  static std::shared_ptr<CallbackCollectable> ForOwner(std::weak_ptr<T> owner, F callback) {
    return Make([owner = std::move(owner),
                 callback = std::move(callback)]() -> std::vector<prometheus::MetricFamily> {
      std::shared_ptr<T> locked = owner.lock();
      if (!locked) return {};
      return callback(static_cast<const T&>(*locked));
    });
  }

  explicit CallbackCollectable(Callback callback) : callback_(std::move(callback)) {}

  /// The callback's families; none once detached or if the callback throws (an exception must
  /// not reach the HTTP server's C code).
  std::vector<prometheus::MetricFamily> Collect() const override;

  /// Stops calling the callback, waiting for a running call to return. Idempotent.
  void Detach();

 private:
  mutable std::mutex mu_;
  Callback callback_;  // guarded by mu_; empty once detached
};

/// What /proc/self says about this process (Linux).
struct ProcessStats {
  /// Resident set size (RSS), bytes.
  uint64_t resident_memory_bytes = 0;
  /// User + system CPU time, seconds.
  double cpu_seconds = 0;
  /// Open file descriptors.
  uint64_t open_fds = 0;
};

/// Reads `/proc/self/statm`, `/proc/self/stat` and `/proc/self/fd`. IOError if one is missing
/// or malformed.
Result<ProcessStats> ReadProcessStats();

/// The process metrics every Eddy process exposes: `eddy_process_resident_memory_bytes`,
/// `eddy_process_cpu_seconds_total`, `eddy_process_open_fds`. Stateless; `Collect` may run on any
/// thread. When /proc cannot be read the families are left out of the scrape.
class ProcessCollectable final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

/// An HTTP server exposing the registered collectables on `/metrics` in Prometheus' text format.
///
/// Lifecycle: `Start` binds and starts serving (two HTTP threads); destruction stops the server,
/// waiting for in-flight scrapes, then releases the collectables.
/// Ownership: holds a strong reference to every collectable between `Add` and `Remove`.
/// Threading: `Add`, `Remove` and `port` may be called from any thread. `Remove` waits for an
/// in-flight scrape, so after it returns the collectable is no longer being collected by this
/// server; it must not be called from inside a `Collect`.
class MetricsServer {
 public:
  /// `bind_address` is `ipv4:port` (`0.0.0.0:9249`, `127.0.0.1:0`) or just a port (all
  /// interfaces); port 0 picks a free ephemeral port, see `port()`. `[ipv6]:port` is accepted but
  /// only binds if civetweb was built with IPv6 (Debian 12's is not). Host names are not resolved.
  /// InvalidArgument for a malformed address, Unavailable (naming the address) if it cannot be
  /// bound, e.g. because the port is taken or the address is not local.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& bind_address);

  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The port actually bound (the ephemeral one when 0 was asked for).
  int port() const { return port_; }
  /// The address as given to `Start`.
  const std::string& bind_address() const { return bind_address_; }

  /// Serves `collectable`'s families from the next scrape on. Adding it twice serves it twice.
  void Add(std::shared_ptr<prometheus::Collectable> collectable);
  /// Stops serving `collectable` (every registration of it) and drops the server's reference.
  void Remove(const std::shared_ptr<prometheus::Collectable>& collectable);

 private:
  MetricsServer(std::string bind_address, std::unique_ptr<prometheus::Exposer> exposer, int port);

  std::string bind_address_;
  int port_;
  std::mutex mu_;  // guards collectables_
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  // Declared last so that it is destroyed first: no scrape runs once collectables_ goes.
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace eddy::metrics
