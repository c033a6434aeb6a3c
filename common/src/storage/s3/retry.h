#pragma once

// When an S3 request is tried again, and how long to wait first. Pure policy: the store's request
// loop (s3_store.cc) does the waiting.

#include <chrono>
#include <string_view>

namespace eddy::storage::s3 {

/// Exponential backoff with full jitter: before retry `n` (1 = the first retry) wait a uniformly
/// random time in [0, min(max_ms, base_ms * 2^(n-1))].
struct RetryPolicy {
  int max_attempts = 5;  ///< attempts per request, including the first (at least 1)
  int base_ms = 100;
  int max_ms = 5000;

  /// The wait before retry `retry` (>= 1) for a uniform random `u` in [0, 1).
  std::chrono::milliseconds Backoff(int retry, double u) const;
  /// The cap of that wait: min(max_ms, base_ms * 2^(retry-1)).
  std::chrono::milliseconds BackoffCap(int retry) const;
};

/// A uniform random number in [0, 1) from a per-thread generator.
double JitterSample();

/// Whether an HTTP answer is transient: 5xx except 501 Not Implemented, 429, and the S3 error
/// codes that mean "try again" whatever the status (SlowDown, RequestTimeout, InternalError,
/// ServiceUnavailable, Throttling...). `s3_code` may be empty (no or unreadable error body).
bool IsRetryableHttp(int http_status, std::string_view s3_code);

}  // namespace eddy::storage::s3
