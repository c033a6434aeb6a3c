#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "eddy/row.h"

namespace eddy {

/// Appends the compact binary encoding used by channels and state to a caller-owned string.
/// Reusing the string across records makes encoding allocation-free once it has grown.
class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  void PutU8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void PutVarU64(uint64_t v) {
    char buf[10];
    int n = 0;
    while (v >= 0x80) {
      buf[n++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out_.append(buf, n);
  }
  /// Zig-zag varint: small magnitudes take few bytes whatever the sign.
  void PutVarI64(int64_t v) {
    PutVarU64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void PutFixed64(uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), 8); }
  void PutDouble(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    PutFixed64(bits);
  }
  void PutBytes(std::string_view s) {
    PutVarU64(s.size());
    out_.append(s.data(), s.size());
  }
  std::string& buffer() { return out_; }

 private:
  std::string& out_;
};

/// Reads what ByteWriter wrote. Never reads past the end: a short or corrupt input sets `failed()`
/// and yields zeros, so that a malformed record cannot crash a task.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool failed() const { return failed_; }
  bool AtEnd() const { return p_ == end_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  /// The next unread byte (the end once everything was read or reading failed).
  const char* position() const { return p_; }
  uint8_t GetU8() {
    if (p_ >= end_) return Fail<uint8_t>();
    return static_cast<uint8_t>(*p_++);
  }
  uint64_t GetVarU64() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return Fail<uint64_t>();
      auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Fail<uint64_t>();
  }
  int64_t GetVarI64() {
    uint64_t u = GetVarU64();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  uint64_t GetFixed64() {
    if (remaining() < 8) return Fail<uint64_t>();
    uint64_t v;
    std::memcpy(&v, p_, 8);
    p_ += 8;
    return v;
  }
  double GetDouble() {
    uint64_t bits = GetFixed64();
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  std::string_view GetBytes() {
    uint64_t n = GetVarU64();
    if (failed_ || n > remaining()) return Fail<std::string_view>();
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }

 private:
  template <class T>
  T Fail() {
    failed_ = true;
    p_ = end_;
    return T{};
  }
  const char* p_;
  const char* end_;
  bool failed_ = false;
};

/// How a type is encoded on channels and in state. Specialize for your own types, or use
/// EDDY_SERIALIZABLE(Type, field...) for aggregates. `Read` returns false on malformed input.
template <class T, class Enable = void>
struct Serializer;

template <class T>
struct Serializer<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static void Write(const T& v, ByteWriter& w) { w.PutVarI64(static_cast<int64_t>(v)); }
  static bool Read(ByteReader& r, T& v) {
    v = static_cast<T>(r.GetVarI64());
    return !r.failed();
  }
};
template <>
struct Serializer<bool> {
  static void Write(const bool& v, ByteWriter& w) { w.PutU8(v ? 1 : 0); }
  static bool Read(ByteReader& r, bool& v) {
    v = r.GetU8() != 0;
    return !r.failed();
  }
};
template <class T>
struct Serializer<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static void Write(const T& v, ByteWriter& w) { w.PutDouble(static_cast<double>(v)); }
  static bool Read(ByteReader& r, T& v) {
    v = static_cast<T>(r.GetDouble());
    return !r.failed();
  }
};
template <>
struct Serializer<std::string> {
  static void Write(const std::string& v, ByteWriter& w) { w.PutBytes(v); }
  static bool Read(ByteReader& r, std::string& v) {
    auto s = r.GetBytes();
    v.assign(s.data(), s.size());
    return !r.failed();
  }
};
template <>
struct Serializer<Value> {
  static void Write(const Value& v, ByteWriter& w);
  static bool Read(ByteReader& r, Value& v);
};
template <>
struct Serializer<Row> {
  static void Write(const Row& v, ByteWriter& w);
  static bool Read(ByteReader& r, Row& v);
};
template <class A, class B>
struct Serializer<std::pair<A, B>> {
  static void Write(const std::pair<A, B>& v, ByteWriter& w) {
    Serializer<A>::Write(v.first, w);
    Serializer<B>::Write(v.second, w);
  }
  static bool Read(ByteReader& r, std::pair<A, B>& v) {
    return Serializer<A>::Read(r, v.first) && Serializer<B>::Read(r, v.second);
  }
};
template <class... Ts>
struct Serializer<std::tuple<Ts...>> {
  static void Write(const std::tuple<Ts...>& v, ByteWriter& w) {
    std::apply([&](const auto&... e) { (Serializer<std::decay_t<decltype(e)>>::Write(e, w), ...); },
               v);
  }
  static bool Read(ByteReader& r, std::tuple<Ts...>& v) {
    return std::apply(
        [&](auto&... e) { return (Serializer<std::decay_t<decltype(e)>>::Read(r, e) && ...); }, v);
  }
};
template <class T>
struct Serializer<std::vector<T>> {
  static void Write(const std::vector<T>& v, ByteWriter& w) {
    w.PutVarU64(v.size());
    for (const auto& e : v) Serializer<T>::Write(e, w);
  }
  static bool Read(ByteReader& r, std::vector<T>& v) {
    uint64_t n = r.GetVarU64();
    if (r.failed() || n > r.remaining()) return false;  // each element takes >= 1 byte
    v.resize(n);
    for (auto& e : v) {
      if (!Serializer<T>::Read(r, e)) return false;
    }
    return true;
  }
};
template <class T>
struct Serializer<std::optional<T>> {
  static void Write(const std::optional<T>& v, ByteWriter& w) {
    w.PutU8(v.has_value() ? 1 : 0);
    if (v) Serializer<T>::Write(*v, w);
  }
  static bool Read(ByteReader& r, std::optional<T>& v) {
    if (r.GetU8() == 0) {
      v.reset();
      return !r.failed();
    }
    if (!v) v.emplace();
    return Serializer<T>::Read(r, *v);
  }
};

/// A variant is its alternative's index then the alternative (joins tag their two inputs so).
template <class... Ts>
struct Serializer<std::variant<Ts...>> {
  static void Write(const std::variant<Ts...>& v, ByteWriter& w) {
    w.PutVarU64(v.index());
    WriteAt(v, w, std::index_sequence_for<Ts...>{});
  }
  static bool Read(ByteReader& r, std::variant<Ts...>& v) {
    uint64_t i = r.GetVarU64();
    if (r.failed() || i >= sizeof...(Ts)) return false;
    return ReadAt(r, v, i, std::index_sequence_for<Ts...>{});
  }

 private:
  // By index, not by type: the alternatives may repeat a type (std::variant<Row, Row>).
  template <size_t... Is>
  static void WriteAt(const std::variant<Ts...>& v, ByteWriter& w, std::index_sequence<Is...>) {
    ((v.index() == Is ? (Serializer<std::variant_alternative_t<Is, std::variant<Ts...>>>::Write(
                             std::get<Is>(v), w),
                         true)
                      : false) ||
     ...);
  }
  template <size_t... Is>
  static bool ReadAt(ByteReader& r, std::variant<Ts...>& v, uint64_t i,
                     std::index_sequence<Is...>) {
    bool ok = false;
    ((i == Is ? (ok = ReadOne<Is>(r, v), true) : false) || ...);
    return ok;
  }
  template <size_t I>
  static bool ReadOne(ByteReader& r, std::variant<Ts...>& v) {
    if (v.index() != I) v.template emplace<I>();  // keep the old value (and its buffers) if same
    return Serializer<std::variant_alternative_t<I, std::variant<Ts...>>>::Read(r, std::get<I>(v));
  }
};

/// Human-readable text for print sinks and plans. Uses operator<< when the type has one.
template <class T>
std::string FormatValue(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (std::is_same_v<T, Row>) {
    return v.ToString();
  } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
    std::string s;
    AppendDouble(s, v);
    return s;
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (requires(std::ostream & os) { os << v; }) {
    std::ostringstream os;
    os << v;
    return os.str();
  } else {
    return "<value>";
  }
}

}  // namespace eddy

#define EDDY_SER_WRITE_FIELD(f) ::eddy::Serializer<std::decay_t<decltype(v.f)>>::Write(v.f, w);
#define EDDY_SER_READ_FIELD(f) \
  ok = ok && ::eddy::Serializer<std::decay_t<decltype(v.f)>>::Read(r, v.f);
#define EDDY_FOR_EACH_1(m, a) m(a)
#define EDDY_FOR_EACH_2(m, a, ...) m(a) EDDY_FOR_EACH_1(m, __VA_ARGS__)
#define EDDY_FOR_EACH_3(m, a, ...) m(a) EDDY_FOR_EACH_2(m, __VA_ARGS__)
#define EDDY_FOR_EACH_4(m, a, ...) m(a) EDDY_FOR_EACH_3(m, __VA_ARGS__)
#define EDDY_FOR_EACH_5(m, a, ...) m(a) EDDY_FOR_EACH_4(m, __VA_ARGS__)
#define EDDY_FOR_EACH_6(m, a, ...) m(a) EDDY_FOR_EACH_5(m, __VA_ARGS__)
#define EDDY_FOR_EACH_7(m, a, ...) m(a) EDDY_FOR_EACH_6(m, __VA_ARGS__)
#define EDDY_FOR_EACH_8(m, a, ...) m(a) EDDY_FOR_EACH_7(m, __VA_ARGS__)
#define EDDY_GET_MACRO(_1, _2, _3, _4, _5, _6, _7, _8, NAME, ...) NAME
#define EDDY_FOR_EACH(m, ...)                                                                     \
  EDDY_GET_MACRO(__VA_ARGS__, EDDY_FOR_EACH_8, EDDY_FOR_EACH_7, EDDY_FOR_EACH_6, EDDY_FOR_EACH_5, \
                 EDDY_FOR_EACH_4, EDDY_FOR_EACH_3, EDDY_FOR_EACH_2, EDDY_FOR_EACH_1)              \
  (m, __VA_ARGS__)

/// Declares a field-by-field Serializer for an aggregate type (up to 8 fields), at global scope:
/// `EDDY_SERIALIZABLE(SensorReading, id, timestamp, temperature)`.
#define EDDY_SERIALIZABLE(Type, ...)                          \
  template <>                                                 \
  struct eddy::Serializer<Type> {                             \
    static void Write(const Type& v, ::eddy::ByteWriter& w) { \
      EDDY_FOR_EACH(EDDY_SER_WRITE_FIELD, __VA_ARGS__)        \
    }                                                         \
    static bool Read(::eddy::ByteReader& r, Type& v) {        \
      bool ok = true;                                         \
      EDDY_FOR_EACH(EDDY_SER_READ_FIELD, __VA_ARGS__)         \
      return ok;                                              \
    }                                                         \
  }
