#pragma once

/// A lock-free histogram for hot paths, in Prometheus' model: fixed upper bounds chosen up front,
/// one counter per bucket, a sum and a count. Observing is a binary search and two relaxed atomic
/// adds, no lock and no allocation; a scrape reads a `HistogramSnapshot` and turns it into a
/// Prometheus family (`FamilyBuilder::Histogram` in "eddy/metrics/metrics.h"). This header does
/// not depend on prometheus-cpp, so task code can include it freely.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "eddy/status.h"

namespace eddy::metrics {

/// The upper bounds of a histogram's buckets: finite, strictly increasing, at least one. The
/// `+Inf` bucket is implicit and must not be listed. Immutable and cheap to copy (the bounds are
/// shared), so one set can serve every subtask's histogram.
class HistogramBuckets {
 public:
  /// InvalidArgument if `upper_bounds` is empty, not strictly increasing, or holds NaN or +-Inf.
  static Result<HistogramBuckets> Make(std::vector<double> upper_bounds);
  /// `count` bounds `start, start*factor, start*factor^2, ...`; needs start > 0, factor > 1,
  /// count >= 1.
  static Result<HistogramBuckets> Exponential(double start, double factor, size_t count);
  /// `count` bounds `start, start+width, ...`; needs width > 0, count >= 1.
  static Result<HistogramBuckets> Linear(double start, double width, size_t count);
  /// Durations in seconds, 0.5 ms to 60 s in steps of 2 to 3x (0.0005, 0.001, 0.0025, ... 10,
  /// 30, 60): latencies, checkpoint and restart durations.
  static HistogramBuckets DefaultSeconds();

  const std::vector<double>& upper_bounds() const { return *bounds_; }
  size_t size() const { return bounds_->size(); }

 private:
  explicit HistogramBuckets(std::shared_ptr<const std::vector<double>> bounds)
      : bounds_(std::move(bounds)) {}
  std::shared_ptr<const std::vector<double>> bounds_;  // never null
};

/// A consistent-enough copy of an AtomicHistogram, shaped the way Prometheus exposes it.
struct HistogramSnapshot {
  /// The finite upper bounds, as given to the histogram.
  std::vector<double> upper_bounds;
  /// `cumulative_counts[i]` = observations <= `upper_bounds[i]`; one entry more than
  /// `upper_bounds`, the last being the `+Inf` bucket, always equal to `count`.
  std::vector<uint64_t> cumulative_counts;
  /// Sum of all observed values.
  double sum = 0;
  /// Number of observations.
  uint64_t count = 0;
};

/// Counts observations into fixed buckets.
///
/// Lifecycle: constructed with its buckets, lives as long as whatever it measures (typically a
/// member of a module's probe). Not copyable or movable (it is a set of atomics).
/// Threading: `Observe` and `Snapshot` may be called from any number of threads at once.
/// Relaxed atomics: a snapshot taken while observations happen may see an observation in the
/// buckets but not yet in `sum` (or the reverse); `count` is derived from the buckets, so the
/// `+Inf` bucket and `count` always agree, and every value is monotonic across snapshots.
class AtomicHistogram {
 public:
  explicit AtomicHistogram(HistogramBuckets buckets);
  AtomicHistogram(const AtomicHistogram&) = delete;
  AtomicHistogram& operator=(const AtomicHistogram&) = delete;

  /// Counts `value` in the first bucket whose upper bound is >= `value` (Prometheus' `le`
  /// semantics), or in `+Inf`. NaN is ignored (it would poison the sum forever). Lock-free, no
  /// allocation.
  void Observe(double value) noexcept;

  /// Reads the counters (allocates; meant for scrape time).
  HistogramSnapshot Snapshot() const;

  const HistogramBuckets& buckets() const { return buckets_; }

 private:
  HistogramBuckets buckets_;
  // Non-cumulative count per bucket, buckets_.size() + 1 of them (the last is +Inf).
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace eddy::metrics
