#include "common/src/expr/value_ops.h"
#include "eddy/spec/formats.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace eddy::expr {
namespace {

constexpr int64_t kMillisPerDay = 86'400'000;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool ParseInt64(std::string_view s, int64_t& out) {
  s = TrimSpace(s);
  if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ParseDouble(std::string_view s, double& out) {
  s = TrimSpace(s);
  if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

/// Truncates toward zero; false for NaN and values outside int64.
bool DoubleToInt64(double d, int64_t& out) {
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
  out = static_cast<int64_t>(d);
  return true;
}

// Howard Hinnant's civil_from_days (proleptic Gregorian calendar).
void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = static_cast<unsigned>(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/// Index of the character after the one starting at s[i]: the next byte that is not a UTF-8
/// continuation byte (so invalid sequences count the way Utf8Length counts them).
size_t Utf8Next(std::string_view s, size_t i) {
  ++i;
  while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  return i;
}

}  // namespace

void AppendTimestamp(int64_t ms, std::string& out) {
  int64_t days = ms / kMillisPerDay;
  int64_t rem = ms % kMillisPerDay;
  if (rem < 0) {
    rem += kMillisPerDay;
    --days;
  }
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(days, y, m, d);
  auto millis = static_cast<int>(rem % 1000);
  auto secs = static_cast<int>(rem / 1000);
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02d",
                        static_cast<long long>(y), m, d, secs / 3600, secs / 60 % 60, secs % 60);
  if (n > 0) out.append(buf, static_cast<size_t>(n));
  if (millis != 0) {
    n = std::snprintf(buf, sizeof(buf), ".%03d", millis);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  out.push_back('Z');
}

bool ParseTimestamp(std::string_view s, int64_t& ms) {
  // One timestamp grammar for the whole project: the record formats' parser.
  return ParseTimestampText(TrimSpace(s), ms);
}

void AppendText(const Value& v, std::string& out) {
  switch (v.type()) {
    case DataType::kNull:
      out += "null";
      break;
    case DataType::kBool:
      out += v.bool_value() ? "true" : "false";
      break;
    case DataType::kInt64: {
      char buf[24];
      auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v.int_value());
      out.append(buf, static_cast<size_t>(p - buf));
      break;
    }
    case DataType::kDouble:
      AppendDouble(out, v.double_value());
      break;
    case DataType::kTimestamp:
      AppendTimestamp(v.int_value(), out);
      break;
    case DataType::kString:
    case DataType::kBytes:
      out += v.string_value();
      break;
  }
}

bool CanCast(DataType from, DataType to) {
  if (from == to || from == DataType::kNull || from == DataType::kString ||
      to == DataType::kString) {
    return true;
  }
  if (from == DataType::kBytes || to == DataType::kBytes || to == DataType::kNull) return false;
  bool from_bool = from == DataType::kBool, to_bool = to == DataType::kBool;
  return !((from_bool && to == DataType::kTimestamp) || (to_bool && from == DataType::kTimestamp));
}

bool CastValue(const Value& in, DataType to, Value& out) {
  if (in.is_null()) {
    out.SetNull();
    return true;
  }
  DataType from = in.type();
  bool from_text = from == DataType::kString || from == DataType::kBytes;
  switch (to) {
    case DataType::kNull:
      break;
    case DataType::kString: {
      std::string& s = out.MutableString();
      s.clear();
      AppendText(in, s);
      return true;
    }
    case DataType::kBytes:
      if (!from_text) break;
      out.SetBytes(in.string_value());
      return true;
    case DataType::kInt64:
    case DataType::kTimestamp: {
      int64_t i = 0;
      bool ok = true;
      if (IsIntLike(from)) {
        i = in.int_value();
      } else if (from == DataType::kDouble) {
        ok = DoubleToInt64(in.double_value(), i);
      } else if (from == DataType::kBool) {
        i = in.bool_value() ? 1 : 0;
      } else if (from_text) {
        ok = (to == DataType::kTimestamp && ParseTimestamp(in.string_value(), i)) ||
             ParseInt64(in.string_value(), i);
      } else {
        ok = false;
      }
      if (!ok) break;
      if (to == DataType::kInt64) {
        out.SetInt(i);
      } else {
        out.SetTimestamp(i);
      }
      return true;
    }
    case DataType::kDouble: {
      double d = 0;
      if (IsNumeric(from)) {
        d = in.AsDouble();
      } else if (from == DataType::kBool) {
        d = in.bool_value() ? 1.0 : 0.0;
      } else if (!from_text || !ParseDouble(in.string_value(), d)) {
        break;
      }
      out.SetDouble(d);
      return true;
    }
    case DataType::kBool: {
      if (from == DataType::kBool) {
        out.SetBool(in.bool_value());
        return true;
      }
      if (from == DataType::kInt64) {
        out.SetBool(in.int_value() != 0);
        return true;
      }
      if (from == DataType::kDouble) {
        if (std::isnan(in.double_value())) break;
        out.SetBool(in.double_value() != 0.0);
        return true;
      }
      if (from_text) {
        std::string_view s = TrimSpace(in.string_value());
        if (EqualsIgnoreCase(s, "true") || s == "1") {
          out.SetBool(true);
          return true;
        }
        if (EqualsIgnoreCase(s, "false") || s == "0") {
          out.SetBool(false);
          return true;
        }
      }
      break;
    }
  }
  out.SetNull();
  return false;
}

bool LikeMatch(std::string_view s, std::string_view p) {
  // Greedy matching with backtracking to the most recent '%': O(|s| * |p|) worst case, no
  // allocation, no recursion.
  size_t si = 0, pi = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char c = p[pi];
      if (c == '%') {
        star_p = ++pi;
        star_s = si;
        continue;
      }
      if (c == '_') {
        si = Utf8Next(s, si);
        ++pi;
        continue;
      }
      bool escaped = c == '\\' && pi + 1 < p.size();
      char literal = escaped ? p[pi + 1] : c;
      if (s[si] == literal) {
        ++si;
        pi += escaped ? 2 : 1;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    star_s = Utf8Next(s, star_s);
    si = star_s;
  }
  while (pi < p.size() && p[pi] == '%') ++pi;
  return pi == p.size();
}

int64_t HashValue(const Value& v) {
  uint64_t h = 0;
  switch (v.type()) {
    case DataType::kNull:
      return 0;
    case DataType::kBool:
      h = Mix64(v.bool_value() ? 1 : 0);
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      h = Mix64(static_cast<uint64_t>(v.int_value()));
      break;
    case DataType::kDouble: {
      double d = v.double_value();
      int64_t i = 0;
      if (std::isnan(d)) {
        h = Mix64(0x7ff8000000000000ULL);
      } else if (d == std::trunc(d) && DoubleToInt64(d, i)) {
        h = Mix64(static_cast<uint64_t>(i));
      } else {
        h = Mix64(std::bit_cast<uint64_t>(d));
      }
      break;
    }
    case DataType::kString:
    case DataType::kBytes: {
      uint64_t f = 14695981039346656037ULL;
      for (char c : v.string_value()) {
        f ^= static_cast<unsigned char>(c);
        f *= 1099511628211ULL;
      }
      h = Mix64(f);
      break;
    }
  }
  return static_cast<int64_t>(h);
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

size_t Utf8Offset(std::string_view s, size_t n) {
  size_t i = 0;
  while (n > 0 && i < s.size()) {
    i = Utf8Next(s, i);
    --n;
  }
  return i;
}

}  // namespace eddy::expr
