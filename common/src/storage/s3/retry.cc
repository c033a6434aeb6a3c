#include "common/src/storage/s3/retry.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>

namespace eddy::storage::s3 {

std::chrono::milliseconds RetryPolicy::BackoffCap(int retry) const {
  int64_t cap = std::max(base_ms, 0);
  int64_t max = std::max(max_ms, 0);
  for (int i = 1; i < retry && cap < max; ++i) cap *= 2;
  return std::chrono::milliseconds(std::min(cap, max));
}

std::chrono::milliseconds RetryPolicy::Backoff(int retry, double u) const {
  u = std::clamp(u, 0.0, 1.0);
  auto cap = BackoffCap(retry).count();
  auto ms = static_cast<int64_t>(u * static_cast<double>(cap + 1));
  return std::chrono::milliseconds(std::min<int64_t>(ms, cap));
}

double JitterSample() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

bool IsRetryableHttp(int http_status, std::string_view s3_code) {
  static constexpr std::array<std::string_view, 10> kRetryableCodes = {"SlowDown",
                                                                       "RequestTimeout",
                                                                       "InternalError",
                                                                       "ServiceUnavailable",
                                                                       "Throttling",
                                                                       "ThrottlingException",
                                                                       "RequestThrottled",
                                                                       "TooManyRequestsException",
                                                                       "RequestTimeoutException",
                                                                       "OperationAborted"};
  if (std::find(kRetryableCodes.begin(), kRetryableCodes.end(), s3_code) != kRetryableCodes.end()) {
    return true;
  }
  if (http_status == 501) return false;
  return http_status == 429 || http_status >= 500;
}

}  // namespace eddy::storage::s3
