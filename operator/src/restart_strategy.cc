#include "eddy/control/restart_strategy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "eddy/spec/job_spec.h"

namespace eddy::control {

std::string_view RestartKindName(RestartStrategyConfig::Kind k) {
  switch (k) {
    case RestartStrategyConfig::Kind::kNone:
      return "none";
    case RestartStrategyConfig::Kind::kFixedDelay:
      return "fixed-delay";
    case RestartStrategyConfig::Kind::kFailureRate:
      return "failure-rate";
    case RestartStrategyConfig::Kind::kExponentialDelay:
      return "exponential-delay";
  }
  return "?";
}

Result<RestartStrategyConfig> ParseRestartStrategy(std::string_view yaml_text) {
  RestartStrategyConfig c;
  YAML::Node n;
  try {
    n = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("restartStrategy: " + e.msg);
  }
  if (!n || n.IsNull()) return c;
  if (!n.IsMap()) return Status::InvalidArgument("restartStrategy: must be a mapping with a type");
  try {
    if (!n["type"]) return Status::InvalidArgument("restartStrategy.type: is required");
    std::string type = n["type"].as<std::string>();
    if (type == "none" || type == "disable") {
      c.kind = RestartStrategyConfig::Kind::kNone;
    } else if (type == "fixed-delay") {
      c.kind = RestartStrategyConfig::Kind::kFixedDelay;
    } else if (type == "failure-rate") {
      c.kind = RestartStrategyConfig::Kind::kFailureRate;
    } else if (type == "exponential-delay") {
      c.kind = RestartStrategyConfig::Kind::kExponentialDelay;
    } else {
      return Status::InvalidArgument("restartStrategy.type: '" + type +
                                     "' is not one of none, fixed-delay, failure-rate, "
                                     "exponential-delay");
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.as<std::string>();
      const YAML::Node v = it->second;
      auto dur = [&](Duration& out) -> Status {
        auto d = ParseDuration(v.as<std::string>());
        if (!d.ok())
          return Status::InvalidArgument("restartStrategy." + key + ": " + d.status().message());
        out = *d;
        return Status::Ok();
      };
      auto num = [&](int& out, int lo) -> Status {
        int x = v.as<int>();
        if (x < lo)
          return Status::InvalidArgument("restartStrategy." + key + ": must be at least " +
                                         std::to_string(lo));
        out = x;
        return Status::Ok();
      };
      if (key == "type") continue;
      if (key == "attempts") {
        EDDY_RETURN_NOT_OK(num(c.attempts, 0));
      } else if (key == "delay") {
        EDDY_RETURN_NOT_OK(dur(c.delay));
      } else if (key == "maxFailuresPerInterval") {
        EDDY_RETURN_NOT_OK(num(c.max_failures_per_interval, 1));
      } else if (key == "failureRateInterval") {
        EDDY_RETURN_NOT_OK(dur(c.interval));
      } else if (key == "initialDelay") {
        EDDY_RETURN_NOT_OK(dur(c.initial_delay));
      } else if (key == "maxDelay") {
        EDDY_RETURN_NOT_OK(dur(c.max_delay));
      } else if (key == "multiplier") {
        c.multiplier = v.as<double>();
        if (c.multiplier < 1.0)
          return Status::InvalidArgument("restartStrategy.multiplier: must be at least 1");
      } else if (key == "jitter") {
        c.jitter = v.as<double>();
        if (c.jitter < 0 || c.jitter > 1)
          return Status::InvalidArgument("restartStrategy.jitter: must be within 0..1");
      } else if (key == "resetThreshold") {
        EDDY_RETURN_NOT_OK(dur(c.reset_threshold));
      } else if (key == "maxAttempts") {
        EDDY_RETURN_NOT_OK(num(c.max_attempts, 0));
      } else {
        return Status::InvalidArgument("restartStrategy: unknown field '" + key + "'");
      }
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("restartStrategy: " + e.msg);
  }
  return c;
}

std::optional<Duration> RestartStrategy::OnFailure(int64_t now_ms) {
  using Kind = RestartStrategyConfig::Kind;
  switch (c_.kind) {
    case Kind::kNone:
      return std::nullopt;
    case Kind::kFixedDelay:
      if (restarts_ >= c_.attempts) return std::nullopt;
      ++restarts_;
      return c_.delay;
    case Kind::kFailureRate: {
      failures_.push_back(now_ms);
      while (!failures_.empty() && failures_.front() <= now_ms - c_.interval.millis())
        failures_.pop_front();
      if (static_cast<int>(failures_.size()) > c_.max_failures_per_interval) return std::nullopt;
      ++restarts_;
      return c_.delay;
    }
    case Kind::kExponentialDelay: {
      if (last_failure_ms_ >= 0 && now_ms - last_failure_ms_ >= c_.reset_threshold.millis()) {
        current_ms_ = 0;
        restarts_ = 0;
      }
      last_failure_ms_ = now_ms;
      if (c_.max_attempts >= 0 && restarts_ >= c_.max_attempts) return std::nullopt;
      current_ms_ = current_ms_ == 0 ? static_cast<double>(c_.initial_delay.millis())
                                     : std::min(current_ms_ * c_.multiplier,
                                                static_cast<double>(c_.max_delay.millis()));
      ++restarts_;
      // Jitter spreads restarts of many jobs; deterministic per strategy (seeded).
      rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
      double u = static_cast<double>(rng_ >> 11) / 9007199254740992.0;  // [0,1)
      double wait = current_ms_ * (1.0 + c_.jitter * (2 * u - 1));
      wait = std::clamp(wait, 0.0, static_cast<double>(c_.max_delay.millis()));
      return Duration::Millis(static_cast<int64_t>(wait));
    }
  }
  return std::nullopt;
}

std::string RestartStrategy::Describe() const {
  return std::string(RestartKindName(c_.kind)) + " (restart " + std::to_string(restarts_) + ")";
}

}  // namespace eddy::control
