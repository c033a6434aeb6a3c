#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "eddy/status.h"

namespace eddy {

/// The types a dynamic Row field can have (job spec and SQL). Typed C++ streams use C++ types.
enum class DataType : uint8_t {
  kNull = 0,
  kBool = 1,
  kInt64 = 2,
  kDouble = 3,
  kString = 4,
  kTimestamp = 5,  ///< epoch milliseconds
  kBytes = 6,
};

std::string_view DataTypeName(DataType t);
/// Accepts the job spec's spellings: string, int64 (int, long, bigint), double (float), bool
/// (boolean), timestamp, bytes.
Result<DataType> ParseDataType(std::string_view name);

/// One nullable field value. Strings keep their capacity across assignments so that a Value reused
/// for record after record stops allocating once it has seen the longest string.
class Value {
 public:
  Value() : i_(0) {}
  static Value Null() { return Value(); }
  static Value Bool(bool b) {
    Value v;
    v.SetBool(b);
    return v;
  }
  static Value Int(int64_t i) {
    Value v;
    v.SetInt(i);
    return v;
  }
  static Value Double(double d) {
    Value v;
    v.SetDouble(d);
    return v;
  }
  static Value String(std::string_view s) {
    Value v;
    v.SetString(s);
    return v;
  }
  static Value Time(int64_t ms) {
    Value v;
    v.SetTimestamp(ms);
    return v;
  }
  static Value Bytes(std::string_view s) {
    Value v;
    v.SetBytes(s);
    return v;
  }

  DataType type() const { return type_; }
  bool is_null() const { return type_ == DataType::kNull; }
  bool is_numeric() const {
    return type_ == DataType::kInt64 || type_ == DataType::kDouble || type_ == DataType::kTimestamp;
  }

  bool bool_value() const { return b_; }
  int64_t int_value() const { return i_; }
  double double_value() const { return d_; }
  const std::string& string_value() const { return s_; }
  /// int64, timestamp and double as double; 0 otherwise.
  double AsDouble() const;
  /// int64, timestamp and double (truncated) as int64; 0 otherwise.
  int64_t AsInt() const;

  void SetNull() { type_ = DataType::kNull; }
  void SetBool(bool b) {
    type_ = DataType::kBool;
    b_ = b;
  }
  void SetInt(int64_t i) {
    type_ = DataType::kInt64;
    i_ = i;
  }
  void SetDouble(double d) {
    type_ = DataType::kDouble;
    d_ = d;
  }
  void SetTimestamp(int64_t ms) {
    type_ = DataType::kTimestamp;
    i_ = ms;
  }
  void SetString(std::string_view s) {
    type_ = DataType::kString;
    s_.assign(s.data(), s.size());
  }
  void SetBytes(std::string_view s) {
    type_ = DataType::kBytes;
    s_.assign(s.data(), s.size());
  }
  std::string& MutableString() {
    type_ = DataType::kString;
    return s_;
  }

  /// Total order used by min/max/sort: null < bool < numbers (compared as numbers) < strings.
  int Compare(const Value& other) const;
  bool operator==(const Value& other) const;
  /// Plain text: 42, 3.5, true, abc, null.
  std::string ToString() const;
  /// JSON text: 42, 3.5, true, "abc", null.
  void AppendJson(std::string& out) const;

 private:
  DataType type_ = DataType::kNull;
  union {
    bool b_;
    int64_t i_;
    double d_;
  };
  std::string s_;
};

/// Formats a double the way Flink/Java prints it for common values: 34.55, 35.8, 1.0E10 avoided;
/// shortest round-trip representation, always with a '.' or exponent.
void AppendDouble(std::string& out, double d);
/// Appends `s` as a quoted JSON string.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace eddy
