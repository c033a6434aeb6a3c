#include "common/src/expr/functions.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/src/expr/value_ops.h"

namespace eddy::expr {
namespace {

using Args = const Value* const*;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void SetDoubleOrNull(Value& out, double d) {
  if (std::isnan(d)) {
    out.SetNull();
  } else {
    out.SetDouble(d);
  }
}

// ---- strings ----

void FnLower(Args a, size_t, Value& out) {
  std::string& r = out.MutableString();
  r.assign(a[0]->string_value());
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

void FnUpper(Args a, size_t, Value& out) {
  std::string& r = out.MutableString();
  r.assign(a[0]->string_value());
  for (char& c : r) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
}

void FnLength(Args a, size_t, Value& out) {
  const std::string& s = a[0]->string_value();
  out.SetInt(static_cast<int64_t>(a[0]->type() == DataType::kBytes ? s.size() : Utf8Length(s)));
}

/// substr(s, start[, len]): 1-based characters; start < 0 counts from the end (-1 is the last
/// character); start 0 acts as 1; len < 0 gives ''.
void FnSubstr(Args a, size_t n, Value& out) {
  std::string_view s = a[0]->string_value();
  auto chars = static_cast<int64_t>(Utf8Length(s));
  int64_t start = a[1]->int_value();
  int64_t begin = 0;  // 0-based character index
  if (start > 0) {
    begin = std::min(start - 1, chars);
  } else if (start < 0) {
    begin = start < -chars ? chars : chars + start;
  }
  int64_t count = chars - begin;
  if (n > 2) count = std::clamp<int64_t>(a[2]->int_value(), 0, count);
  size_t b = Utf8Offset(s, static_cast<size_t>(begin));
  std::string_view rest = s.substr(b);
  out.SetString(rest.substr(0, Utf8Offset(rest, static_cast<size_t>(count))));
}

void FnTrim(Args a, size_t, Value& out) {
  std::string_view s = a[0]->string_value();
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  out.SetString(s);
}

void FnLtrim(Args a, size_t, Value& out) {
  std::string_view s = a[0]->string_value();
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  out.SetString(s);
}

void FnRtrim(Args a, size_t, Value& out) {
  std::string_view s = a[0]->string_value();
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  out.SetString(s);
}

void FnConcat(Args a, size_t n, Value& out) {
  std::string& r = out.MutableString();
  r.clear();
  for (size_t i = 0; i < n; ++i) AppendText(*a[i], r);
}

void FnStartsWith(Args a, size_t, Value& out) {
  out.SetBool(std::string_view(a[0]->string_value()).starts_with(a[1]->string_value()));
}

void FnEndsWith(Args a, size_t, Value& out) {
  out.SetBool(std::string_view(a[0]->string_value()).ends_with(a[1]->string_value()));
}

void FnContains(Args a, size_t, Value& out) {
  out.SetBool(a[0]->string_value().find(a[1]->string_value()) != std::string::npos);
}

void FnReplace(Args a, size_t, Value& out) {
  std::string_view s = a[0]->string_value();
  std::string_view from = a[1]->string_value();
  std::string_view to = a[2]->string_value();
  std::string& r = out.MutableString();
  r.clear();
  if (from.empty()) {
    r.append(s);
    return;
  }
  size_t i = 0;
  while (true) {
    size_t j = s.find(from, i);
    if (j == std::string_view::npos) break;
    r.append(s.substr(i, j - i));
    r.append(to);
    i = j + from.size();
  }
  r.append(s.substr(i));
}

/// split_part(s, delim, n): the n-th (1-based) part; n < 0 counts from the end; out of range
/// gives ''; n = 0 gives null; an empty delimiter makes the whole string the only part.
void FnSplitPart(Args a, size_t, Value& out) {
  std::string_view s = a[0]->string_value();
  std::string_view d = a[1]->string_value();
  int64_t n = a[2]->int_value();
  if (n == 0) {
    out.SetNull();
    return;
  }
  if (n < 0) {
    int64_t parts = 1;
    if (!d.empty()) {
      for (size_t i = s.find(d); i != std::string_view::npos; i = s.find(d, i + d.size())) ++parts;
    }
    n = parts + n + 1;  // -1 is the last part
    if (n <= 0) {
      out.SetString("");
      return;
    }
  }
  if (d.empty()) {
    out.SetString(n == 1 ? s : std::string_view());
    return;
  }
  size_t begin = 0;
  for (int64_t k = 1; k < n; ++k) {
    size_t j = s.find(d, begin);
    if (j == std::string_view::npos) {
      out.SetString("");
      return;
    }
    begin = j + d.size();
  }
  size_t end = s.find(d, begin);
  out.SetString(
      s.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
}

// ---- numbers ----

void FnAbs(Args a, size_t, Value& out) {
  if (a[0]->type() == DataType::kDouble) {
    out.SetDouble(std::fabs(a[0]->double_value()));
    return;
  }
  int64_t x = a[0]->int_value();
  if (x < 0) (void)__builtin_sub_overflow(int64_t{0}, x, &x);  // abs(MIN) wraps to MIN
  out.SetInt(x);
}

void FnFloor(Args a, size_t, Value& out) {
  if (a[0]->type() == DataType::kDouble) {
    out.SetDouble(std::floor(a[0]->double_value()));
  } else {
    out.SetInt(a[0]->int_value());
  }
}

void FnCeil(Args a, size_t, Value& out) {
  if (a[0]->type() == DataType::kDouble) {
    out.SetDouble(std::ceil(a[0]->double_value()));
  } else {
    out.SetInt(a[0]->int_value());
  }
}

/// round(x[, digits]): half away from zero; digits may be negative (round(1234, -2) = 1200).
void FnRound(Args a, size_t n, Value& out) {
  int64_t digits = n > 1 ? a[1]->int_value() : 0;
  if (a[0]->type() == DataType::kDouble) {
    double x = a[0]->double_value();
    if (!std::isfinite(x)) {
      out.SetDouble(x);
      return;
    }
    if (digits == 0) {
      out.SetDouble(std::round(x));
      return;
    }
    if (digits > 300) {
      out.SetDouble(x);
      return;
    }
    if (digits < -300) {
      out.SetDouble(0.0);
      return;
    }
    double f = std::pow(10.0, static_cast<double>(digits));
    double r = std::round(x * f) / f;
    out.SetDouble(std::isfinite(r) ? r : x);
    return;
  }
  int64_t x = a[0]->int_value();
  if (digits >= 0) {
    out.SetInt(x);
    return;
  }
  if (digits < -18) {
    out.SetInt(0);
    return;
  }
  int64_t p = 1;
  for (int64_t k = 0; k < -digits; ++k) p *= 10;
  int64_t rem = x % p;
  int64_t r = x - rem;  // toward zero, cannot overflow
  if (rem >= 0 ? rem >= p - rem : -rem >= p + rem) {
    (void)__builtin_add_overflow(r, rem >= 0 ? p : -p, &r);  // wraps like the other int ops
  }
  out.SetInt(r);
}

void FnSqrt(Args a, size_t, Value& out) {
  double x = a[0]->AsDouble();
  if (x < 0) {
    out.SetNull();
  } else {
    SetDoubleOrNull(out, std::sqrt(x));
  }
}

void FnPower(Args a, size_t, Value& out) {
  SetDoubleOrNull(out, std::pow(a[0]->AsDouble(), a[1]->AsDouble()));
}

void FnLn(Args a, size_t, Value& out) {
  double x = a[0]->AsDouble();
  if (x <= 0) {
    out.SetNull();
  } else {
    SetDoubleOrNull(out, std::log(x));
  }
}

void FnExp(Args a, size_t, Value& out) {
  SetDoubleOrNull(out, std::exp(a[0]->AsDouble()));
}

void FnLeast(Args a, size_t n, Value& out) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (a[i]->Compare(*a[best]) < 0) best = i;
  }
  CopyValue(*a[best], out);
}

void FnGreatest(Args a, size_t n, Value& out) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (a[i]->Compare(*a[best]) > 0) best = i;
  }
  CopyValue(*a[best], out);
}

// ---- conversions ----

void FnToString(Args a, size_t, Value& out) {
  CastValue(*a[0], DataType::kString, out);
}

void FnToTimestamp(Args a, size_t, Value& out) {
  CastValue(*a[0], DataType::kTimestamp, out);
}

void FnHash(Args a, size_t, Value& out) {
  out.SetInt(HashValue(*a[0]));
}

constexpr ParamKind kS = ParamKind::kString;
constexpr ParamKind kT = ParamKind::kText;
constexpr ParamKind kN = ParamKind::kNumeric;
constexpr ParamKind kI = ParamKind::kInteger;
constexpr ParamKind kA = ParamKind::kAny;
constexpr ParamKind kSN = ParamKind::kStringOrNumeric;

// Sorted by name for lookup.
constexpr FunctionDef kFunctions[] = {
    {"abs", 1, 1, {kN, kN, kN}, ReturnKind::kSameNumeric, true, FnAbs, "abs(number)"},
    {"ceil", 1, 1, {kN, kN, kN}, ReturnKind::kSameNumeric, true, FnCeil, "ceil(number)"},
    {"char_length", 1, 1, {kT, kT, kT}, ReturnKind::kInt64, true, FnLength, "char_length(string)"},
    {"concat", 1, -1, {kA, kA, kA}, ReturnKind::kString, true, FnConcat, "concat(value, ...)"},
    {"contains",
     2,
     2,
     {kS, kS, kS},
     ReturnKind::kBool,
     true,
     FnContains,
     "contains(string, string)"},
    {"ends_with",
     2,
     2,
     {kS, kS, kS},
     ReturnKind::kBool,
     true,
     FnEndsWith,
     "ends_with(string, string)"},
    {"exp", 1, 1, {kN, kN, kN}, ReturnKind::kDouble, true, FnExp, "exp(number)"},
    {"floor", 1, 1, {kN, kN, kN}, ReturnKind::kSameNumeric, true, FnFloor, "floor(number)"},
    {"greatest",
     1,
     -1,
     {kA, kA, kA},
     ReturnKind::kUnifyOrdered,
     true,
     FnGreatest,
     "greatest(value, ...)"},
    {"hash", 1, 1, {kA, kA, kA}, ReturnKind::kInt64, false, FnHash, "hash(value)"},
    {"least", 1, -1, {kA, kA, kA}, ReturnKind::kUnifyOrdered, true, FnLeast, "least(value, ...)"},
    {"length", 1, 1, {kT, kT, kT}, ReturnKind::kInt64, true, FnLength, "length(string)"},
    {"ln", 1, 1, {kN, kN, kN}, ReturnKind::kDouble, true, FnLn, "ln(number)"},
    {"lower", 1, 1, {kS, kS, kS}, ReturnKind::kString, true, FnLower, "lower(string)"},
    {"ltrim", 1, 1, {kS, kS, kS}, ReturnKind::kString, true, FnLtrim, "ltrim(string)"},
    {"pow", 2, 2, {kN, kN, kN}, ReturnKind::kDouble, true, FnPower, "pow(number, number)"},
    {"power", 2, 2, {kN, kN, kN}, ReturnKind::kDouble, true, FnPower, "power(number, number)"},
    {"replace",
     3,
     3,
     {kS, kS, kS},
     ReturnKind::kString,
     true,
     FnReplace,
     "replace(string, from, to)"},
    {"round",
     1,
     2,
     {kN, kI, kI},
     ReturnKind::kSameNumeric,
     true,
     FnRound,
     "round(number[, digits int64])"},
    {"rtrim", 1, 1, {kS, kS, kS}, ReturnKind::kString, true, FnRtrim, "rtrim(string)"},
    {"split_part",
     3,
     3,
     {kS, kS, kI},
     ReturnKind::kString,
     true,
     FnSplitPart,
     "split_part(string, delimiter, n int64)"},
    {"sqrt", 1, 1, {kN, kN, kN}, ReturnKind::kDouble, true, FnSqrt, "sqrt(number)"},
    {"starts_with",
     2,
     2,
     {kS, kS, kS},
     ReturnKind::kBool,
     true,
     FnStartsWith,
     "starts_with(string, string)"},
    {"substr",
     2,
     3,
     {kS, kI, kI},
     ReturnKind::kString,
     true,
     FnSubstr,
     "substr(string, start int64[, length int64])"},
    {"substring",
     2,
     3,
     {kS, kI, kI},
     ReturnKind::kString,
     true,
     FnSubstr,
     "substring(string, start int64[, length int64])"},
    {"to_string", 1, 1, {kA, kA, kA}, ReturnKind::kString, true, FnToString, "to_string(value)"},
    {"to_timestamp",
     1,
     1,
     {kSN, kSN, kSN},
     ReturnKind::kTimestamp,
     true,
     FnToTimestamp,
     "to_timestamp(string or epoch milliseconds)"},
    {"trim", 1, 1, {kS, kS, kS}, ReturnKind::kString, true, FnTrim, "trim(string)"},
    {"upper", 1, 1, {kS, kS, kS}, ReturnKind::kString, true, FnUpper, "upper(string)"},
};

static_assert(std::is_sorted(std::begin(kFunctions), std::end(kFunctions),
                             [](const FunctionDef& a, const FunctionDef& b) {
                               return a.name < b.name;
                             }),
              "kFunctions must be sorted by name");

constexpr std::string_view kSpecialForms[] = {"coalesce", "if", "mod", "nullif"};

}  // namespace

const FunctionDef* FindFunction(std::string_view name) {
  const auto* it =
      std::lower_bound(std::begin(kFunctions), std::end(kFunctions), name,
                       [](const FunctionDef& f, std::string_view n) { return f.name < n; });
  if (it != std::end(kFunctions) && it->name == name) return it;
  return nullptr;
}

std::vector<std::string_view> AllFunctionNames() {
  std::vector<std::string_view> names;
  for (const FunctionDef& f : kFunctions) names.push_back(f.name);
  for (std::string_view s : kSpecialForms) names.push_back(s);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace eddy::expr
