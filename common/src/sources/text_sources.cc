#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "eddy/sources.h"

namespace eddy {

TextFileReader::~TextFileReader() {
  Close();
}

Status TextFileReader::Open(OperatorContext& ctx) {
  subtask_ = ctx.subtask_index;
  parallelism_ = ctx.parallelism;
  file_ = std::fopen(path_.c_str(), "rb");
  if (!file_) {
    return Status::NotFound("file source: cannot open '" + path_ + "': " + std::strerror(errno));
  }
  EDDY_RETURN_NOT_OK(position_.Load(ctx.operator_state, "_file_source.position",
                                    "file source '" + path_ + "'", subtask_, parallelism_));
  if (position_.restored()) {
    // Every line below the floor was emitted: continue from there, skipping lines a restored
    // level emitted.
    auto [line, offset] = position_.Floor();
    if (offset >= 0 && std::fseek(file_, offset, SEEK_SET) == 0) line_no_ = line;
  }
  return Status::Ok();
}

bool TextFileReader::ReadLine() {
  line_.clear();
  int c;
  bool any = false;
  while ((c = std::fgetc(file_)) != EOF) {
    any = true;
    if (c == '\n') break;
    line_.push_back(static_cast<char>(c));
  }
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return any;
}

InputStatus TextFileReader::PollNext(Output<std::string>& out) {
  if (!file_) return InputStatus::kEndOfInput;
  for (int i = 0; i < 256; ++i) {
    if (!ReadLine()) return InputStatus::kEndOfInput;
    int64_t n = line_no_++;
    if (n % parallelism_ != subtask_) continue;
    if (position_.restored() && position_.EmittedBefore(n)) continue;
    out.Collect(line_, Timestamp::None());
  }
  return InputStatus::kMoreAvailable;
}

void TextFileReader::Close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

void TextFileReader::SnapshotPosition(std::string& out) {
  (void)out;  // all in the union list state: it survives rescaling
  position_.Snapshot(line_no_, file_ ? std::ftell(file_) : -1);
}

// Positions written as the operator's own state by earlier versions ("offset:line"); only at the
// same parallelism.
Status TextFileReader::RestorePosition(std::string_view in) {
  auto colon = in.find(':');
  if (colon == std::string_view::npos || !file_) {
    return Status::ParseError("file source: bad position '" + std::string(in) + "'");
  }
  long off = std::stol(std::string(in.substr(0, colon)));
  line_no_ = std::stoll(std::string(in.substr(colon + 1)));
  std::fseek(file_, off, SEEK_SET);
  return Status::Ok();
}

SocketTextReader::~SocketTextReader() {
  Close();
}

Status SocketTextReader::Open(OperatorContext& ctx) {
  active_ = ctx.subtask_index == 0;
  pts_ = ctx.processing_time;
  return Status::Ok();
}

bool SocketTextReader::Connect() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res) != 0) return false;
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      fd_ = fd;
      break;
    }
    ::close(fd);
  }
  freeaddrinfo(res);
  return fd_ >= 0;
}

InputStatus SocketTextReader::PollNext(Output<std::string>& out) {
  if (!active_) return InputStatus::kEndOfInput;
  if (fd_ < 0) {
    Timestamp now = pts_ ? pts_->Now() : NowProcessingTime();
    if (now < next_attempt_) return InputStatus::kNothingAvailable;
    if (!Connect()) {
      ++attempts_;
      next_attempt_ =
          now + Duration::Millis(std::min<int64_t>(5000, 100LL << std::min(attempts_, 6)));
      return InputStatus::kNothingAvailable;
    }
  }
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 5) <= 0) return InputStatus::kNothingAvailable;
  char chunk[8192];
  ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n == 0) {
    if (!buf_.empty()) out.Collect(buf_, Timestamp::None());
    buf_.clear();
    Close();
    active_ = false;
    return InputStatus::kEndOfInput;
  }
  if (n < 0) return InputStatus::kNothingAvailable;
  size_t start = 0;
  for (ssize_t i = 0; i < n; ++i) {
    if (chunk[i] == '\n') {
      buf_.append(chunk + start, static_cast<size_t>(i) - start);
      if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
      out.Collect(buf_, Timestamp::None());
      buf_.clear();
      start = static_cast<size_t>(i) + 1;
    }
  }
  buf_.append(chunk + start, static_cast<size_t>(n) - start);
  return InputStatus::kMoreAvailable;
}

void SocketTextReader::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status StdinReader::Open(OperatorContext& ctx) {
  active_ = ctx.subtask_index == 0;
  return Status::Ok();
}

InputStatus StdinReader::PollNext(Output<std::string>& out) {
  if (!active_) return InputStatus::kEndOfInput;
  pollfd p{0, POLLIN, 0};
  int r = ::poll(&p, 1, 5);
  if (r <= 0) return InputStatus::kNothingAvailable;
  char chunk[8192];
  ssize_t n = ::read(0, chunk, sizeof(chunk));
  if (n <= 0) {
    if (!buf_.empty()) out.Collect(buf_, Timestamp::None());
    active_ = false;
    return InputStatus::kEndOfInput;
  }
  size_t start = 0;
  for (ssize_t i = 0; i < n; ++i) {
    if (chunk[i] == '\n') {
      buf_.append(chunk + start, static_cast<size_t>(i) - start);
      out.Collect(buf_, Timestamp::None());
      buf_.clear();
      start = static_cast<size_t>(i) + 1;
    }
  }
  buf_.append(chunk + start, static_cast<size_t>(n) - start);
  return InputStatus::kMoreAvailable;
}

}  // namespace eddy
