#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "eddy/status.h"
#include "eddy/types.h"

namespace eddy::control {

/// How a job restarts after a failure (Flink's restart-strategy.*). Defaults are Flink's.
struct RestartStrategyConfig {
  enum class Kind : uint8_t { kNone, kFixedDelay, kFailureRate, kExponentialDelay };
  /// Default exponential-delay, as Flink since 1.19.
  Kind kind = Kind::kExponentialDelay;
  /// fixed-delay: restarts before the job fails for good.
  int attempts = 3;
  /// fixed-delay and failure-rate: wait before each restart.
  Duration delay = Duration::Millis(1000);
  /// failure-rate: at most this many failures within `interval`.
  int max_failures_per_interval = 1;
  Duration interval = Duration::Millis(60000);
  /// exponential-delay: first wait, cap, growth factor, jitter (fraction of the wait, +/-), and
  /// the failure-free time after which the wait starts over.
  Duration initial_delay = Duration::Millis(1000);
  Duration max_delay = Duration::Millis(60000);
  double multiplier = 1.5;
  double jitter = 0.1;
  Duration reset_threshold = Duration::Millis(3600000);
  /// exponential-delay: restarts before giving up; <0 = unlimited (Flink's default).
  int max_attempts = -1;
};

std::string_view RestartKindName(RestartStrategyConfig::Kind k);

/// Parses a job spec's / FlinkJob's `restartStrategy` mapping given as JSON text or YAML text:
/// `{type: none | fixed-delay | failure-rate | exponential-delay, attempts, delay,
/// maxFailuresPerInterval, failureRateInterval, initialDelay, maxDelay, multiplier, jitter,
/// resetThreshold, maxAttempts}`.
Result<RestartStrategyConfig> ParseRestartStrategy(std::string_view yaml_text);

/// The decision of a restart strategy. Lifecycle: one per job, fed every failure in order.
/// Threading: the JobMaster's thread.
class RestartStrategy {
 public:
  explicit RestartStrategy(RestartStrategyConfig c, uint64_t seed = 42) : c_(c), rng_(seed) {}
  /// A failure at `now_ms`: the delay before the restart, or nullopt when the job must fail.
  std::optional<Duration> OnFailure(int64_t now_ms);
  const RestartStrategyConfig& config() const { return c_; }
  /// One line for logs and the REST API, e.g. "exponential-delay (restart 3, next in 2250 ms)".
  std::string Describe() const;

 private:
  RestartStrategyConfig c_;
  uint64_t rng_;
  int restarts_ = 0;
  std::deque<int64_t> failures_;  // failure-rate: times within the interval
  double current_ms_ = 0;         // exponential-delay: last wait
  int64_t last_failure_ms_ = -1;
};

}  // namespace eddy::control
