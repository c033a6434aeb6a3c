#pragma once

#include <chrono>
#include <cstdint>

namespace eddy {

/// Milliseconds of the monotonic clock: for timeouts, deadlines and intervals within a process.
inline int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Milliseconds since the Unix epoch (wall clock): for times shown to users and other processes.
inline int64_t EpochMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace eddy
