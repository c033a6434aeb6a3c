#include <chrono>

#include "eddy/types.h"

namespace eddy {

std::string Duration::ToString() const {
  int64_t ms = ms_;
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Timestamp NowProcessingTime() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return Timestamp(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

}  // namespace eddy
