#include "eddy/sinks.h"

namespace eddy {

LineWriter& LineWriter::Stdout() {
  static LineWriter w(stdout);
  return w;
}

void LineWriter::Write(std::string_view lines) {
  std::lock_guard lock(mu_);
  std::fwrite(lines.data(), 1, lines.size(), f_);
  std::fflush(f_);
}

}  // namespace eddy
