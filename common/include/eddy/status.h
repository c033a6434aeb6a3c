#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace eddy {

/// What went wrong, and whether trying again can help. The JobMaster's restart policy
/// reads `IsRetryable()`; users read `message()`.
enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,  ///< bad job spec, bad option, bad expression: fatal
  kParseError,       ///< malformed input record or document: fatal for documents, skip for records
  kNotFound,         ///< fatal
  kAlreadyExists,    ///< fatal
  kOutOfRange,       ///< fatal
  kUnimplemented,    ///< fatal
  kInternal,         ///< a bug: fatal
  kIOError,          ///< retryable
  kUnavailable,      ///< retryable: a peer or store cannot be reached now
  kTimeout,          ///< retryable
  kCancelled,        ///< the job or task was cancelled
};

std::string_view StatusCodeName(StatusCode code);

/// A cheap-to-pass error value. `Status::Ok()` carries no allocation.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status ParseError(std::string m) { return {StatusCode::kParseError, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsRetryable() const {
    return code_ == StatusCode::kIOError || code_ == StatusCode::kUnavailable ||
           code_ == StatusCode::kTimeout;
  }
  /// "InvalidArgument: message".
  std::string ToString() const;
  /// Prefixes context to the message: `WithContext("job.yaml:3")`.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T ValueOr(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace eddy

#define EDDY_CONCAT_INNER(a, b) a##b
#define EDDY_CONCAT(a, b) EDDY_CONCAT_INNER(a, b)

/// Returns the Status from the enclosing function if `expr` is not ok.
#define EDDY_RETURN_NOT_OK(expr) \
  do {                           \
    ::eddy::Status _st = (expr); \
    if (!_st.ok()) return _st;   \
  } while (false)

#define EDDY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                               \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

/// `EDDY_ASSIGN_OR_RETURN(auto x, MakeX());`
#define EDDY_ASSIGN_OR_RETURN(lhs, rexpr) \
  EDDY_ASSIGN_OR_RETURN_IMPL(EDDY_CONCAT(_res_, __LINE__), lhs, rexpr)
