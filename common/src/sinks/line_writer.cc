#include "eddy/sinks.h"

#include <unistd.h>

#include <cerrno>
#include <climits>

namespace eddy {

LineWriter& LineWriter::Stdout() {
  static LineWriter w(stdout);
  return w;
}

void LineWriter::Write(std::string_view lines) {
  std::lock_guard lock(mu_);
  // Whole lines, at most PIPE_BUF bytes per write where possible: writes of that size to a pipe
  // are atomic and O_APPEND writes to a file are too, so lines of sink subtasks in other
  // processes sharing the same stdout or output file never interleave.
  std::fflush(f_);
  int fd = ::fileno(f_);
  while (!lines.empty()) {
    size_t n = lines.size();
    if (n > PIPE_BUF) {
      size_t cut = lines.rfind('\n', PIPE_BUF - 1);
      if (cut != std::string_view::npos) {
        n = cut + 1;
      } else {  // one line longer than PIPE_BUF: written whole
        size_t nl = lines.find('\n');
        n = nl == std::string_view::npos ? lines.size() : nl + 1;
      }
    }
    std::string_view chunk = lines.substr(0, n);
    while (!chunk.empty()) {
      ssize_t w = ::write(fd, chunk.data(), chunk.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return;  // a closed stdout or a full disk: the sink cannot do better than drop
      }
      chunk.remove_prefix(static_cast<size_t>(w));
    }
    lines.remove_prefix(n);
  }
}

}  // namespace eddy
