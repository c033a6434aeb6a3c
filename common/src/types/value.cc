#include "eddy/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "eddy/serialization.h"

namespace eddy {

std::string_view DataTypeName(DataType t) {
  switch (t) {
    case DataType::kNull:
      return "null";
    case DataType::kBool:
      return "bool";
    case DataType::kInt64:
      return "int64";
    case DataType::kDouble:
      return "double";
    case DataType::kString:
      return "string";
    case DataType::kTimestamp:
      return "timestamp";
    case DataType::kBytes:
      return "bytes";
  }
  return "unknown";
}

Result<DataType> ParseDataType(std::string_view n) {
  if (n == "string" || n == "varchar" || n == "text") return DataType::kString;
  if (n == "int64" || n == "int" || n == "long" || n == "bigint" || n == "integer")
    return DataType::kInt64;
  if (n == "double" || n == "float" || n == "float64") return DataType::kDouble;
  if (n == "bool" || n == "boolean") return DataType::kBool;
  if (n == "timestamp") return DataType::kTimestamp;
  if (n == "bytes") return DataType::kBytes;
  return Status::InvalidArgument("unknown type '" + std::string(n) +
                                 "' (expected string, int64, double, bool, timestamp or bytes)");
}

double Value::AsDouble() const {
  switch (type_) {
    case DataType::kInt64:
    case DataType::kTimestamp:
      return static_cast<double>(i_);
    case DataType::kDouble:
      return d_;
    case DataType::kBool:
      return b_ ? 1.0 : 0.0;
    default:
      return 0.0;
  }
}

int64_t Value::AsInt() const {
  switch (type_) {
    case DataType::kInt64:
    case DataType::kTimestamp:
      return i_;
    case DataType::kDouble:
      if (std::isnan(d_)) return 0;
      if (d_ >= 9.2e18) return INT64_MAX;
      if (d_ <= -9.2e18) return INT64_MIN;
      return static_cast<int64_t>(d_);
    case DataType::kBool:
      return b_ ? 1 : 0;
    default:
      return 0;
  }
}

namespace {
int Rank(DataType t) {
  switch (t) {
    case DataType::kNull:
      return 0;
    case DataType::kBool:
      return 1;
    case DataType::kInt64:
    case DataType::kDouble:
    case DataType::kTimestamp:
      return 2;
    case DataType::kString:
      return 3;
    case DataType::kBytes:
      return 4;
  }
  return 5;
}
}  // namespace

int Value::Compare(const Value& o) const {
  int ra = Rank(type_), rb = Rank(o.type_);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return b_ == o.b_ ? 0 : (b_ ? 1 : -1);
    case 2:
      if (type_ != DataType::kDouble && o.type_ != DataType::kDouble) {
        return i_ == o.i_ ? 0 : (i_ < o.i_ ? -1 : 1);
      } else {
        double a = AsDouble(), b = o.AsDouble();
        return a == b ? 0 : (a < b ? -1 : 1);
      }
    default: {
      int c = s_.compare(o.s_);
      return c == 0 ? 0 : (c < 0 ? -1 : 1);
    }
  }
}

bool Value::operator==(const Value& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case DataType::kNull:
      return true;
    case DataType::kBool:
      return b_ == o.b_;
    case DataType::kInt64:
    case DataType::kTimestamp:
      return i_ == o.i_;
    case DataType::kDouble:
      return d_ == o.d_ || (std::isnan(d_) && std::isnan(o.d_));
    default:
      return s_ == o.s_;
  }
}

void AppendDouble(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (std::isinf(d)) {
    out += d > 0 ? "Infinity" : "-Infinity";
    return;
  }
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  std::string_view s(buf, static_cast<size_t>(p - buf));
  out.append(s);
  if (s.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

std::string Value::ToString() const {
  std::string s;
  switch (type_) {
    case DataType::kNull:
      return "null";
    case DataType::kBool:
      return b_ ? "true" : "false";
    case DataType::kInt64:
    case DataType::kTimestamp:
      return std::to_string(i_);
    case DataType::kDouble:
      AppendDouble(s, d_);
      return s;
    default:
      return s_;
  }
}

void Value::AppendJson(std::string& out) const {
  switch (type_) {
    case DataType::kNull:
      out += "null";
      break;
    case DataType::kBool:
      out += b_ ? "true" : "false";
      break;
    case DataType::kInt64:
    case DataType::kTimestamp: {
      char buf[24];
      auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), i_);
      out.append(buf, static_cast<size_t>(p - buf));
      break;
    }
    case DataType::kDouble:
      if (std::isfinite(d_))
        AppendDouble(out, d_);
      else
        out += "null";
      break;
    default:
      AppendJsonString(out, s_);
      break;
  }
}

void Serializer<Value>::Write(const Value& v, ByteWriter& w) {
  w.PutU8(static_cast<uint8_t>(v.type()));
  switch (v.type()) {
    case DataType::kNull:
      break;
    case DataType::kBool:
      w.PutU8(v.bool_value() ? 1 : 0);
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      w.PutVarI64(v.int_value());
      break;
    case DataType::kDouble:
      w.PutDouble(v.double_value());
      break;
    case DataType::kString:
    case DataType::kBytes:
      w.PutBytes(v.string_value());
      break;
  }
}

bool Serializer<Value>::Read(ByteReader& r, Value& v) {
  auto tag = static_cast<DataType>(r.GetU8());
  switch (tag) {
    case DataType::kNull:
      v.SetNull();
      break;
    case DataType::kBool:
      v.SetBool(r.GetU8() != 0);
      break;
    case DataType::kInt64:
      v.SetInt(r.GetVarI64());
      break;
    case DataType::kTimestamp:
      v.SetTimestamp(r.GetVarI64());
      break;
    case DataType::kDouble:
      v.SetDouble(r.GetDouble());
      break;
    case DataType::kString:
      v.SetString(r.GetBytes());
      break;
    case DataType::kBytes:
      v.SetBytes(r.GetBytes());
      break;
    default:
      return false;
  }
  return !r.failed();
}

}  // namespace eddy
