#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eddy/status.h"
#include "eddy/value.h"

namespace eddy {

struct Field {
  std::string name;
  DataType type = DataType::kString;
  bool nullable = true;
};

/// Field names and types of a Row stream. Immutable once built; shared by pointer.
class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields);

  const std::vector<Field>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  const Field& field(size_t i) const { return fields_[i]; }
  /// -1 when absent.
  int IndexOf(std::string_view name) const;
  std::string ToString() const;

 private:
  std::vector<Field> fields_;
  std::unordered_map<std::string, int> index_;
};
using SchemaPtr = std::shared_ptr<const Schema>;

/// A dynamic record: one Value per schema field, positionally. Rows do not carry their schema;
/// the stream does. Reuse a Row across records to avoid allocation.
class Row {
 public:
  Row() = default;
  explicit Row(size_t n) : values_(n) {}
  explicit Row(std::vector<Value> values) : values_(std::move(values)) {}

  size_t size() const { return values_.size(); }
  void Resize(size_t n) { values_.resize(n); }
  const Value& Get(size_t i) const { return values_[i]; }
  Value& Mutable(size_t i) { return values_[i]; }
  void Set(size_t i, Value v) { values_[i] = std::move(v); }
  const std::vector<Value>& values() const { return values_; }
  std::vector<Value>& mutable_values() { return values_; }

  bool operator==(const Row& other) const { return values_ == other.values_; }
  /// {"name": value, ...} in schema order; positional names f0.. when schema is null.
  void AppendJson(const Schema* schema, std::string& out) const;
  std::string ToJson(const Schema* schema) const;
  /// "v0,v1,..." (Flink's Row.toString style).
  std::string ToString() const;

 private:
  std::vector<Value> values_;
};

}  // namespace eddy
