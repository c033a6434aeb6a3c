#include "eddy/row.h"

#include "eddy/serialization.h"

namespace eddy {

Schema::Schema(std::vector<Field> fields) : fields_(std::move(fields)) {
  for (size_t i = 0; i < fields_.size(); ++i) index_.emplace(fields_[i].name, static_cast<int>(i));
}

int Schema::IndexOf(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? -1 : it->second;
}

std::string Schema::ToString() const {
  std::string s = "(";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) s += ", ";
    s += fields_[i].name;
    s += ' ';
    s += DataTypeName(fields_[i].type);
  }
  return s + ")";
}

void Row::AppendJson(const Schema* schema, std::string& out) const {
  out.push_back('{');
  for (size_t i = 0; i < values_.size(); ++i) {
    if (i) out += ", ";
    if (schema && i < schema->size()) {
      AppendJsonString(out, schema->field(i).name);
    } else {
      AppendJsonString(out, "f" + std::to_string(i));
    }
    out += ": ";
    values_[i].AppendJson(out);
  }
  out.push_back('}');
}

std::string Row::ToJson(const Schema* schema) const {
  std::string s;
  AppendJson(schema, s);
  return s;
}

std::string Row::ToString() const {
  std::string s;
  for (size_t i = 0; i < values_.size(); ++i) {
    if (i) s += ',';
    s += values_[i].ToString();
  }
  return s;
}

void Serializer<Row>::Write(const Row& v, ByteWriter& w) {
  w.PutVarU64(v.size());
  for (const auto& x : v.values()) Serializer<Value>::Write(x, w);
}

bool Serializer<Row>::Read(ByteReader& r, Row& v) {
  uint64_t n = r.GetVarU64();
  if (r.failed() || n > r.remaining()) return false;
  v.Resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (!Serializer<Value>::Read(r, v.Mutable(i))) return false;
  }
  return true;
}

}  // namespace eddy
