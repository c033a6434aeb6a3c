#pragma once

// Value-level helpers shared by the expression evaluator and its function library: conversions
// (CAST semantics), text rendering, timestamps, LIKE matching and hashing. Stateless and
// thread-safe; none of them allocates except by growing an output string.

#include <cstdint>
#include <string>
#include <string_view>

#include "eddy/value.h"

namespace eddy::expr {

inline bool IsNumeric(DataType t) {
  return t == DataType::kInt64 || t == DataType::kDouble || t == DataType::kTimestamp;
}
/// int64 and timestamp: both stored as an int64 in a Value.
inline bool IsIntLike(DataType t) {
  return t == DataType::kInt64 || t == DataType::kTimestamp;
}

/// Copies `in` into `out` without touching out's string unless `in` is a string or bytes (whose
/// capacity it reuses).
inline void CopyValue(const Value& in, Value& out) {
  switch (in.type()) {
    case DataType::kNull:
      out.SetNull();
      break;
    case DataType::kBool:
      out.SetBool(in.bool_value());
      break;
    case DataType::kInt64:
      out.SetInt(in.int_value());
      break;
    case DataType::kDouble:
      out.SetDouble(in.double_value());
      break;
    case DataType::kTimestamp:
      out.SetTimestamp(in.int_value());
      break;
    case DataType::kString:
      out.SetString(in.string_value());
      break;
    case DataType::kBytes:
      out.SetBytes(in.string_value());
      break;
  }
}

/// Appends the text form used by CAST AS string, to_string, concat and `+` with a string:
/// 42, 35.8, 1.0, true, 2019-01-17T09:43:19Z, the raw characters of strings and bytes; "null".
void AppendText(const Value& v, std::string& out);

/// Appends epoch milliseconds as ISO-8601 UTC: 2019-01-17T09:43:19Z or 2019-01-17T09:43:19.120Z.
void AppendTimestamp(int64_t ms, std::string& out);

/// Parses "2019-01-17T09:43:19Z", "...T09:43:19.123+01:00", "...T09:43:19+0100",
/// "2019-01-17 09:43:19" (UTC), "2019-01-17T09:43" and "2019-01-17" (midnight UTC), with optional
/// surrounding whitespace. Fractions of a millisecond are truncated.
bool ParseTimestamp(std::string_view s, int64_t& ms);

/// Whether CAST(from AS to) is allowed. Anything converts to and from string; numbers and bools
/// convert among themselves except bool <-> timestamp; bytes converts only to and from string.
bool CanCast(DataType from, DataType to);

/// CAST semantics at run time. Sets `out` to the converted value, or to null and returns false
/// when the value does not convert (bad number text, NaN or out-of-range double to int64).
/// `in` and `out` must be different objects.
bool CastValue(const Value& in, DataType to, Value& out);

/// SQL LIKE: '%' matches any run of characters, '_' exactly one (UTF-8) character, '\' makes the
/// next pattern character literal. Case-sensitive; matches the whole string.
bool LikeMatch(std::string_view s, std::string_view pattern);

/// Stable 64-bit hash (same on every machine, run and version): null -> 0; integers, timestamps,
/// bools (as 0/1) and integral doubles hash alike when numerically equal; strings and bytes by
/// FNV-1a; each finished with the SplitMix64 finalizer.
int64_t HashValue(const Value& v);

/// Number of UTF-8 code points (bytes that are not continuation bytes).
size_t Utf8Length(std::string_view s);

/// Byte offset of the `n`-th (0-based) code point of `s`, or s.size() when there are fewer.
size_t Utf8Offset(std::string_view s, size_t n);

}  // namespace eddy::expr
