#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

namespace eddy {

/// A value of T that cannot be mixed up with another id of the same representation.
template <class T, class Tag>
class NamedType {
 public:
  using ValueType = T;
  constexpr NamedType() = default;
  constexpr explicit NamedType(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  constexpr auto operator<=>(const NamedType&) const = default;

 private:
  T v_{};
};

using JobId = NamedType<std::string, struct JobIdTag>;
using VertexId = NamedType<int32_t, struct VertexIdTag>;
using NodeId = NamedType<int32_t, struct NodeIdTag>;
using SubtaskIndex = NamedType<int32_t, struct SubtaskIndexTag>;
using KeyGroup = NamedType<int32_t, struct KeyGroupTag>;
using CheckpointId = NamedType<int64_t, struct CheckpointIdTag>;

/// Milliseconds. Durations and points in time share arithmetic with each other only.
class Duration {
 public:
  constexpr Duration() = default;
  static constexpr Duration Millis(int64_t ms) { return Duration(ms); }
  static constexpr Duration Seconds(int64_t s) { return Duration(s * 1000); }
  static constexpr Duration Minutes(int64_t m) { return Duration(m * 60'000); }
  constexpr int64_t millis() const { return ms_; }
  constexpr auto operator<=>(const Duration&) const = default;
  constexpr Duration operator+(Duration o) const { return Duration(ms_ + o.ms_); }
  constexpr Duration operator-(Duration o) const { return Duration(ms_ - o.ms_); }
  constexpr Duration operator*(int64_t k) const { return Duration(ms_ * k); }
  std::string ToString() const;

 private:
  constexpr explicit Duration(int64_t ms) : ms_(ms) {}
  int64_t ms_ = 0;
};

/// A point in time: milliseconds since the Unix epoch (event time or processing time).
class Timestamp {
 public:
  constexpr Timestamp() = default;
  constexpr explicit Timestamp(int64_t ms) : ms_(ms) {}
  static constexpr Timestamp Min() { return Timestamp(std::numeric_limits<int64_t>::min()); }
  static constexpr Timestamp Max() { return Timestamp(std::numeric_limits<int64_t>::max()); }
  /// Marker for "this record carries no timestamp".
  static constexpr Timestamp None() { return Min(); }
  constexpr int64_t millis() const { return ms_; }
  constexpr bool IsNone() const { return ms_ == std::numeric_limits<int64_t>::min(); }
  constexpr auto operator<=>(const Timestamp&) const = default;
  /// Saturating: never overflows past Min/Max.
  constexpr Timestamp operator+(Duration d) const { return Timestamp(SatAdd(ms_, d.millis())); }
  constexpr Timestamp operator-(Duration d) const { return Timestamp(SatAdd(ms_, -d.millis())); }
  constexpr Duration operator-(Timestamp o) const { return Duration::Millis(ms_ - o.ms_); }

 private:
  static constexpr int64_t SatAdd(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) {
      return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    }
    return r;
  }
  int64_t ms_ = 0;
};

/// A watermark is a Timestamp with a promise: no element with a smaller or equal timestamp follows.
using Watermark = Timestamp;

/// Wall-clock milliseconds since the epoch.
Timestamp NowProcessingTime();

}  // namespace eddy

template <class T, class Tag>
struct std::hash<eddy::NamedType<T, Tag>> {
  size_t operator()(const eddy::NamedType<T, Tag>& v) const noexcept {
    return std::hash<T>{}(v.value());
  }
};
