#include "eddy/metrics/histogram.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace eddy::metrics {

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<double>::is_always_lock_free);

Result<HistogramBuckets> HistogramBuckets::Make(std::vector<double> upper_bounds) {
  if (upper_bounds.empty()) {
    return Status::InvalidArgument("histogram needs at least one finite bucket upper bound");
  }
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    double b = upper_bounds[i];
    if (!std::isfinite(b)) {
      return Status::InvalidArgument("histogram bucket upper bound #" + std::to_string(i) + " is " +
                                     std::to_string(b) +
                                     "; bounds must be finite (the +Inf bucket is implicit)");
    }
    if (i > 0 && !(upper_bounds[i - 1] < b)) {
      return Status::InvalidArgument(
          "histogram bucket upper bounds must be strictly increasing: #" + std::to_string(i - 1) +
          " = " + std::to_string(upper_bounds[i - 1]) + ", #" + std::to_string(i) + " = " +
          std::to_string(b));
    }
  }
  return HistogramBuckets(std::make_shared<const std::vector<double>>(std::move(upper_bounds)));
}

Result<HistogramBuckets> HistogramBuckets::Exponential(double start, double factor, size_t count) {
  if (!(start > 0) || !(factor > 1) || count == 0) {
    return Status::InvalidArgument(
        "exponential histogram buckets need start > 0, factor > 1 and count >= 1");
  }
  std::vector<double> bounds;
  bounds.reserve(count);
  for (size_t i = 0; i < count; ++i) bounds.push_back(start * std::pow(factor, i));
  return Make(std::move(bounds));
}

Result<HistogramBuckets> HistogramBuckets::Linear(double start, double width, size_t count) {
  if (!(width > 0) || count == 0) {
    return Status::InvalidArgument("linear histogram buckets need width > 0 and count >= 1");
  }
  std::vector<double> bounds;
  bounds.reserve(count);
  for (size_t i = 0; i < count; ++i) bounds.push_back(start + width * static_cast<double>(i));
  return Make(std::move(bounds));
}

HistogramBuckets HistogramBuckets::DefaultSeconds() {
  static const HistogramBuckets kDefault(
      std::make_shared<const std::vector<double>>(std::vector<double>{
          0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}));
  return kDefault;
}

AtomicHistogram::AtomicHistogram(HistogramBuckets buckets)
    : buckets_(std::move(buckets)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(buckets_.size() + 1)) {}

void AtomicHistogram::Observe(double value) noexcept {
  if (std::isnan(value)) return;
  const std::vector<double>& bounds = buckets_.upper_bounds();
  // First bound >= value: `le` is inclusive.
  size_t index = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

HistogramSnapshot AtomicHistogram::Snapshot() const {
  HistogramSnapshot snapshot;
  snapshot.upper_bounds = buckets_.upper_bounds();
  snapshot.cumulative_counts.resize(buckets_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= buckets_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts[i] = running;
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

}  // namespace eddy::metrics
