#include "eddy/spec/formats.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <system_error>
#include <utility>

namespace eddy {

namespace {

// Values quoted in error messages are cut to this many bytes.
constexpr size_t kMaxSnippet = 64;
// Nesting limit of JSON values below the top-level object; bounds the recursion of SkipValue.
constexpr int kMaxJsonDepth = 64;

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

char ToLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != b[i]) return false;
  }
  return true;
}

std::string Snippet(std::string_view text) {
  std::string s = "'";
  if (text.size() > kMaxSnippet) {
    s.append(text.substr(0, kMaxSnippet));
    s += "...";
  } else {
    s.append(text);
  }
  s += '\'';
  return s;
}

Status FieldError(const Field& field, std::string_view problem) {
  std::string m = "field '";
  m += field.name;
  m += "' (";
  m += DataTypeName(field.type);
  m += "): ";
  m += problem;
  return Status::ParseError(std::move(m));
}

bool IsTextType(DataType t) {
  return t == DataType::kString || t == DataType::kBytes;
}

// Null for a nullable field; otherwise an error saying what was found instead (`what`).
Status SetNullOrError(const Field& field, Value& v, std::string_view what) {
  if (!field.nullable) {
    std::string m(what);
    m += " for a non-nullable field";
    return FieldError(field, m);
  }
  v.SetNull();
  return Status::Ok();
}

enum class NumParse : uint8_t { kOk, kSyntax, kRange };

NumParse ParseInt64(std::string_view s, int64_t& v) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') {
    ++b;
    if (b != e && *b == '-') return NumParse::kSyntax;
  }
  auto [p, ec] = std::from_chars(b, e, v);
  if (p != e || b == e) return NumParse::kSyntax;
  if (ec == std::errc::result_out_of_range) return NumParse::kRange;
  return ec == std::errc() ? NumParse::kOk : NumParse::kSyntax;
}

NumParse ParseDouble(std::string_view s, double& v) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') {
    ++b;
    if (b != e && *b == '-') return NumParse::kSyntax;
  }
  auto [p, ec] = std::from_chars(b, e, v, std::chars_format::general);
  if (p != e || b == e) return NumParse::kSyntax;
  if (ec == std::errc::result_out_of_range) return NumParse::kRange;
  return ec == std::errc() ? NumParse::kOk : NumParse::kSyntax;
}

bool IsIntegerText(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}

Status CannotParse(const Field& field, std::string_view text, std::string_view hint = {}) {
  std::string m = "cannot parse " + Snippet(text);
  if (!hint.empty()) {
    m += " (";
    m += hint;
    m += ')';
  }
  return FieldError(field, m);
}

Status OutOfRange(const Field& field, std::string_view text) {
  return FieldError(field, Snippet(text) + " is out of range");
}

// Converts non-null text to the field's type. Handling of empty text is the caller's business.
Status SetFromText(std::string_view text, const Field& field, Value& v) {
  switch (field.type) {
    case DataType::kString:
      v.SetString(text);
      return Status::Ok();
    case DataType::kBytes:
      v.SetBytes(text);
      return Status::Ok();
    case DataType::kInt64: {
      int64_t i = 0;
      switch (ParseInt64(text, i)) {
        case NumParse::kOk:
          v.SetInt(i);
          return Status::Ok();
        case NumParse::kRange:
          return OutOfRange(field, text);
        case NumParse::kSyntax:
          return CannotParse(field, text);
      }
      break;
    }
    case DataType::kDouble: {
      double d = 0;
      switch (ParseDouble(text, d)) {
        case NumParse::kOk:
          v.SetDouble(d);
          return Status::Ok();
        case NumParse::kRange:
          return OutOfRange(field, text);
        case NumParse::kSyntax:
          return CannotParse(field, text);
      }
      break;
    }
    case DataType::kBool:
      if (EqualsIgnoreCase(text, "true") || text == "1") {
        v.SetBool(true);
        return Status::Ok();
      }
      if (EqualsIgnoreCase(text, "false") || text == "0") {
        v.SetBool(false);
        return Status::Ok();
      }
      return CannotParse(field, text, "expected true, false, 1 or 0");
    case DataType::kTimestamp: {
      int64_t ms = 0;
      if (IsIntegerText(text)) {
        if (ParseInt64(text, ms) != NumParse::kOk) return OutOfRange(field, text);
      } else if (!ParseTimestampText(text, ms)) {
        return CannotParse(field, text,
                           "expected epoch milliseconds or a time like 2019-01-17T09:43:19Z");
      }
      v.SetTimestamp(ms);
      return Status::Ok();
    }
    case DataType::kNull:
      break;
  }
  return FieldError(field, "unsupported field type");
}

// Appends the plain text of a value: nothing for null, epoch ms for timestamps.
void AppendPlainText(const Value& v, std::string& out) {
  switch (v.type()) {
    case DataType::kNull:
      break;
    case DataType::kBool:
      out += v.bool_value() ? "true" : "false";
      break;
    case DataType::kInt64:
    case DataType::kTimestamp: {
      char buf[24];
      auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v.int_value());
      out.append(buf, static_cast<size_t>(p - buf));
      break;
    }
    case DataType::kDouble:
      AppendDouble(out, v.double_value());
      break;
    case DataType::kString:
    case DataType::kBytes:
      out += v.string_value();
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// csv

// One field of a csv line, pointing into the line.
struct CsvSlice {
  std::string_view text;  // without the surrounding quotes; doubled quotes still doubled
  bool quoted = false;
  bool escaped = false;  // text contains doubled quotes
};

// Splits csv lines; stateless apart from the options.
class CsvSplitter {
 public:
  explicit CsvSplitter(const FormatOptions& o)
      : delimiter_(o.delimiter), quote_(o.quote), quoting_(o.quote != '\0'), trim_(o.trim) {}

  bool IsBlank(char c) const { return (c == ' ' || c == '\t') && c != delimiter_; }

  Status Split(std::string_view line, std::vector<CsvSlice>& slices) const {
    slices.clear();
    size_t n = line.size();
    size_t i = 0;
    while (true) {
      if (trim_) {
        while (i < n && IsBlank(line[i])) ++i;
      }
      CsvSlice s;
      if (quoting_ && i < n && line[i] == quote_) {
        size_t start = ++i;
        bool closed = false;
        while (i < n) {
          if (line[i] == quote_) {
            if (i + 1 < n && line[i + 1] == quote_) {
              s.escaped = true;
              i += 2;
              continue;
            }
            closed = true;
            break;
          }
          ++i;
        }
        if (!closed) {
          return Status::ParseError("csv field " + std::to_string(slices.size() + 1) +
                                    ": unterminated quoted field");
        }
        s.text = line.substr(start, i - start);
        s.quoted = true;
        ++i;  // the closing quote
        if (trim_) {
          while (i < n && IsBlank(line[i])) ++i;
        }
        if (i < n && line[i] != delimiter_) {
          return Status::ParseError("csv field " + std::to_string(slices.size() + 1) +
                                    ": unexpected text after the closing quote");
        }
      } else {
        size_t start = i;
        const void* hit = i < n ? std::memchr(line.data() + i, delimiter_, n - i) : nullptr;
        i = hit ? static_cast<size_t>(static_cast<const char*>(hit) - line.data()) : n;
        size_t end = i;
        if (trim_) {
          while (end > start && IsBlank(line[end - 1])) --end;
        }
        s.text = line.substr(start, end - start);
      }
      slices.push_back(s);
      if (i >= n) break;
      ++i;  // the delimiter
    }
    return Status::Ok();
  }

  // Appends the slice's text with doubled quotes collapsed.
  void Unescape(const CsvSlice& s, std::string& out) const {
    std::string_view t = s.text;
    size_t i = 0;
    while (i < t.size()) {
      size_t q = t.find(quote_, i);
      if (q == std::string_view::npos) {
        out.append(t.substr(i));
        break;
      }
      out.append(t.substr(i, q + 1 - i));
      i = q + 2;  // skip the second quote of the pair
    }
  }

 private:
  char delimiter_;
  char quote_;
  bool quoting_;
  bool trim_;
};

class CsvRowParser final : public RowParser {
 public:
  CsvRowParser(const FormatOptions& options, SchemaPtr schema)
      : splitter_(options), schema_(std::move(schema)) {
    slices_.reserve(schema_->size() + 1);
  }

  Status Parse(std::string_view line, Row& out) override {
    EDDY_RETURN_NOT_OK(splitter_.Split(StripCr(line), slices_));
    size_t n = schema_->size();
    if (slices_.size() != n) {
      return Status::ParseError("expected " + std::to_string(n) + " csv fields, got " +
                                std::to_string(slices_.size()));
    }
    if (out.size() != n) out.Resize(n);
    for (size_t i = 0; i < n; ++i) {
      EDDY_RETURN_NOT_OK(Convert(slices_[i], schema_->field(i), out.Mutable(i)));
    }
    return Status::Ok();
  }

 private:
  Status Convert(const CsvSlice& s, const Field& field, Value& v) {
    if (s.text.empty()) {
      if (!s.quoted) return SetNullOrError(field, v, "empty value");
      if (!IsTextType(field.type)) return SetNullOrError(field, v, "empty value");
    }
    if (!s.escaped) return SetFromText(s.text, field, v);
    if (field.type == DataType::kString) {
      std::string& str = v.MutableString();
      str.clear();
      splitter_.Unescape(s, str);
      return Status::Ok();
    }
    scratch_.clear();
    splitter_.Unescape(s, scratch_);
    return SetFromText(scratch_, field, v);
  }

  CsvSplitter splitter_;
  SchemaPtr schema_;
  std::vector<CsvSlice> slices_;
  std::string scratch_;
};

class CsvRowFormatter final : public RowFormatter {
 public:
  explicit CsvRowFormatter(const FormatOptions& o)
      : delimiter_(o.delimiter), quote_(o.quote), trim_(o.trim) {}

  void Append(const Row& row, std::string& out) override {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) out.push_back(delimiter_);
      const Value& v = row.Get(i);
      switch (v.type()) {
        case DataType::kNull:
          break;
        case DataType::kString:
        case DataType::kBytes:
          AppendField(v.string_value(), true, out);
          break;
        default:
          scratch_.clear();
          AppendPlainText(v, scratch_);
          AppendField(scratch_, false, out);
          break;
      }
    }
  }

 private:
  bool NeedsQuotes(std::string_view s, bool is_text) const {
    if (s.empty()) return is_text;  // "" is the empty string, an empty field is null
    if (trim_ && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t')) {
      return true;
    }
    for (char c : s) {
      if (c == delimiter_ || c == quote_ || c == '\n' || c == '\r') return true;
    }
    return false;
  }

  void AppendField(std::string_view s, bool is_text, std::string& out) const {
    if (quote_ == '\0' || !NeedsQuotes(s, is_text)) {
      out.append(s);
      return;
    }
    out.push_back(quote_);
    for (char c : s) {
      if (c == quote_) out.push_back(quote_);
      out.push_back(c);
    }
    out.push_back(quote_);
  }

  char delimiter_;
  char quote_;
  bool trim_;
  std::string scratch_;
};

// ---------------------------------------------------------------------------------------------
// json

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A JSON Lines parser: a hand-rolled scanner over one line, no DOM. Every read is bounds-checked
// through Peek(); nested values recurse at most kMaxJsonDepth levels.
class JsonRowParser final : public RowParser {
 public:
  explicit JsonRowParser(SchemaPtr schema) : schema_(std::move(schema)) {
    size_t n = schema_->size();
    names_.reserve(n);
    sorted_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      names_.emplace_back(schema_->field(i).name);
      sorted_.emplace_back(names_.back(), static_cast<int>(i));
    }
    std::sort(sorted_.begin(), sorted_.end());
    seen_.resize(n);
  }

  Status Parse(std::string_view line, Row& out) override {
    in_ = line;
    pos_ = 0;
    size_t n = schema_->size();
    if (out.size() != n) out.Resize(n);
    std::fill(seen_.begin(), seen_.end(), uint8_t{0});
    SkipWs();
    if (Peek() != '{') {
      return Status::ParseError(pos_ >= in_.size() ? "expected a JSON object, got an empty line"
                                                   : "expected a JSON object");
    }
    ++pos_;
    SkipWs();
    if (Peek() == '}') {
      ++pos_;
    } else {
      size_t hint = 0;
      while (true) {
        SkipWs();
        if (Peek() != '"') return Syntax("expected a string key");
        std::string_view key;
        EDDY_RETURN_NOT_OK(ScanString(&key_scratch_, key));
        SkipWs();
        if (Peek() != ':') return Syntax("expected ':' after a key");
        ++pos_;
        SkipWs();
        int idx = Lookup(key, hint);
        if (idx < 0) {
          EDDY_RETURN_NOT_OK(SkipValue(1));
        } else {
          auto i = static_cast<size_t>(idx);
          EDDY_RETURN_NOT_OK(ParseFieldValue(schema_->field(i), out.Mutable(i)));
          seen_[i] = 1;
          hint = i + 1;
        }
        SkipWs();
        char c = Peek();
        if (c == ',') {
          ++pos_;
          continue;
        }
        if (c == '}') {
          ++pos_;
          break;
        }
        return Syntax("expected ',' or '}'");
      }
    }
    SkipWs();
    if (pos_ < in_.size()) return Syntax("unexpected text after the JSON object");
    for (size_t i = 0; i < n; ++i) {
      if (!seen_[i]) {
        EDDY_RETURN_NOT_OK(SetNullOrError(schema_->field(i), out.Mutable(i), "missing key"));
      }
    }
    return Status::Ok();
  }

 private:
  char Peek() const { return pos_ < in_.size() ? in_[pos_] : '\0'; }

  void SkipWs() {
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  Status Syntax(std::string_view what) const {
    std::string m = "invalid JSON at column " + std::to_string(pos_ + 1) + ": ";
    m += what;
    return Status::ParseError(std::move(m));
  }

  int Lookup(std::string_view key, size_t hint) const {
    // Keys usually come in schema order: try the field after the previous one first.
    if (hint < names_.size() && names_[hint] == key) return static_cast<int>(hint);
    auto it = std::lower_bound(sorted_.begin(), sorted_.end(), key,
                               [](const auto& e, std::string_view k) { return e.first < k; });
    return (it != sorted_.end() && it->first == key) ? it->second : -1;
  }

  // Reads the four hex digits at pos_ (just after "\u").
  bool ReadHex4(uint32_t& cp) {
    if (in_.size() - pos_ < 4) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      int d = HexDigit(in_[pos_ + static_cast<size_t>(k)]);
      if (d < 0) return false;
      cp = (cp << 4) | static_cast<uint32_t>(d);
    }
    pos_ += 4;
    return true;
  }

  // Scans the string starting at pos_ (a '"'). Without escapes, `view` points into the line.
  // Otherwise the decoded text goes to *buf and `view` points at it; with a null `buf` the
  // escapes are only validated (and `view` is left empty).
  Status ScanString(std::string* buf, std::string_view& view) {
    ++pos_;  // the opening quote
    size_t start = pos_;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c == '"') {
        view = in_.substr(start, pos_ - start);
        ++pos_;
        return Status::Ok();
      }
      if (c == '\\') break;
      ++pos_;
    }
    if (pos_ >= in_.size()) return Syntax("unterminated string");
    if (buf) buf->assign(in_.data() + start, pos_ - start);
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c == '"') {
        ++pos_;
        view = buf ? std::string_view(*buf) : std::string_view();
        return Status::Ok();
      }
      if (c != '\\') {
        if (buf) buf->push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= in_.size()) break;
      char e = in_[pos_++];
      char plain = 0;
      switch (e) {
        case '"':
          plain = '"';
          break;
        case '\\':
          plain = '\\';
          break;
        case '/':
          plain = '/';
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ReadHex4(cp)) return Syntax("invalid \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            // A high surrogate: combine with a following low one; alone it becomes U+FFFD.
            uint32_t lo = 0;
            size_t save = pos_;
            if (in_.size() - pos_ >= 6 && in_[pos_] == '\\' && in_[pos_ + 1] == 'u') {
              pos_ += 2;
              if (ReadHex4(lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              } else {
                pos_ = save;
                cp = 0xFFFD;
              }
            } else {
              cp = 0xFFFD;
            }
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD;
          }
          if (buf) AppendUtf8(*buf, cp);
          continue;
        }
        default:
          --pos_;
          return Syntax("invalid escape in string");
      }
      if (buf) buf->push_back(plain);
    }
    return Syntax("unterminated string");
  }

  // Scans a JSON number at pos_ into `text`.
  Status ScanNumber(std::string_view& text) {
    size_t start = pos_;
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (IsDigit(Peek())) {
      while (IsDigit(Peek())) ++pos_;
    } else {
      return Syntax("invalid number");
    }
    if (Peek() == '.') {
      ++pos_;
      if (!IsDigit(Peek())) return Syntax("invalid number");
      while (IsDigit(Peek())) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!IsDigit(Peek())) return Syntax("invalid number");
      while (IsDigit(Peek())) ++pos_;
    }
    text = in_.substr(start, pos_ - start);
    return Status::Ok();
  }

  // Consumes `word` (true, false, null) at pos_.
  Status ScanLiteral(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return Syntax("invalid value");
    pos_ += word.size();
    return Status::Ok();
  }

  // Validates and skips one value at pos_; `depth` counts the enclosing objects and arrays.
  Status SkipValue(int depth) {
    if (depth > kMaxJsonDepth) return Syntax("values nested too deeply");
    std::string_view ignored;
    switch (Peek()) {
      case '"':
        return ScanString(nullptr, ignored);
      case 't':
        return ScanLiteral("true");
      case 'f':
        return ScanLiteral("false");
      case 'n':
        return ScanLiteral("null");
      case '{': {
        ++pos_;
        SkipWs();
        if (Peek() == '}') {
          ++pos_;
          return Status::Ok();
        }
        while (true) {
          SkipWs();
          if (Peek() != '"') return Syntax("expected a string key");
          EDDY_RETURN_NOT_OK(ScanString(nullptr, ignored));
          SkipWs();
          if (Peek() != ':') return Syntax("expected ':' after a key");
          ++pos_;
          SkipWs();
          EDDY_RETURN_NOT_OK(SkipValue(depth + 1));
          SkipWs();
          char c = Peek();
          ++pos_;
          if (c == '}') return Status::Ok();
          if (c != ',') {
            --pos_;
            return Syntax("expected ',' or '}'");
          }
        }
      }
      case '[': {
        ++pos_;
        SkipWs();
        if (Peek() == ']') {
          ++pos_;
          return Status::Ok();
        }
        while (true) {
          SkipWs();
          EDDY_RETURN_NOT_OK(SkipValue(depth + 1));
          SkipWs();
          char c = Peek();
          ++pos_;
          if (c == ']') return Status::Ok();
          if (c != ',') {
            --pos_;
            return Syntax("expected ',' or ']'");
          }
        }
      }
      default:
        if (Peek() == '-' || IsDigit(Peek())) return ScanNumber(ignored);
        return Syntax(pos_ >= in_.size() ? "unexpected end of line" : "invalid value");
    }
  }

  Status ParseFieldValue(const Field& field, Value& v) {
    std::string_view text;
    switch (Peek()) {
      case '"':
        EDDY_RETURN_NOT_OK(ScanString(&scratch_, text));
        if (text.empty() && !IsTextType(field.type)) {
          return SetNullOrError(field, v, "empty string");
        }
        return SetFromText(text, field, v);
      case '{':
      case '[': {
        size_t start = pos_;
        bool is_object = Peek() == '{';
        EDDY_RETURN_NOT_OK(SkipValue(1));
        if (!IsTextType(field.type)) {
          return FieldError(field, is_object ? "expected a scalar, got a JSON object"
                                             : "expected a scalar, got a JSON array");
        }
        return SetFromText(in_.substr(start, pos_ - start), field, v);
      }
      case 'n':
        EDDY_RETURN_NOT_OK(ScanLiteral("null"));
        return SetNullOrError(field, v, "null");
      case 't':
        EDDY_RETURN_NOT_OK(ScanLiteral("true"));
        return SetFromText("true", field, v);
      case 'f':
        EDDY_RETURN_NOT_OK(ScanLiteral("false"));
        return SetFromText("false", field, v);
      default:
        if (Peek() == '-' || IsDigit(Peek())) {
          EDDY_RETURN_NOT_OK(ScanNumber(text));
          return SetFromText(text, field, v);
        }
        return Syntax(pos_ >= in_.size() ? "unexpected end of line" : "invalid value");
    }
  }

  SchemaPtr schema_;
  std::vector<std::string_view> names_;                   // into schema_, by field index
  std::vector<std::pair<std::string_view, int>> sorted_;  // (name, index) by name
  std::vector<uint8_t> seen_;                             // per field: key present in this line
  std::string key_scratch_;
  std::string scratch_;
  // The line being parsed; valid during Parse() only.
  std::string_view in_;
  size_t pos_ = 0;
};

class JsonRowFormatter final : public RowFormatter {
 public:
  explicit JsonRowFormatter(SchemaPtr schema) : schema_(std::move(schema)) {
    prefixes_.reserve(schema_->size());
    for (size_t i = 0; i < schema_->size(); ++i) {
      std::string p = i ? "," : "";
      AppendJsonString(p, schema_->field(i).name);
      p += ':';
      prefixes_.push_back(std::move(p));
    }
  }

  void Append(const Row& row, std::string& out) override {
    out.push_back('{');
    for (size_t i = 0; i < row.size(); ++i) {
      if (i < prefixes_.size()) {
        out += prefixes_[i];
      } else {
        // A row wider than its schema: positional names, as Row::AppendJson.
        if (i) out.push_back(',');
        AppendJsonString(out, "f" + std::to_string(i));
        out.push_back(':');
      }
      row.Get(i).AppendJson(out);
    }
    out.push_back('}');
  }

 private:
  SchemaPtr schema_;
  std::vector<std::string> prefixes_;  // `,"name":` per field (no comma for the first)
};

// ---------------------------------------------------------------------------------------------
// text

class TextRowParser final : public RowParser {
 public:
  explicit TextRowParser(SchemaPtr schema) : schema_(std::move(schema)) {}

  Status Parse(std::string_view line, Row& out) override {
    line = StripCr(line);
    if (out.size() != 1) out.Resize(1);
    const Field& field = schema_->field(0);
    if (line.empty() && !IsTextType(field.type)) {
      return SetNullOrError(field, out.Mutable(0), "empty line");
    }
    return SetFromText(line, field, out.Mutable(0));
  }

 private:
  SchemaPtr schema_;
};

class TextRowFormatter final : public RowFormatter {
 public:
  void Append(const Row& row, std::string& out) override {
    if (row.size() > 0) AppendPlainText(row.Get(0), out);
  }
};

Status CheckSchema(const SchemaPtr& schema) {
  if (!schema) return Status::InvalidArgument("record format needs a schema");
  if (schema->size() == 0) return Status::InvalidArgument("record format needs at least one field");
  return Status::Ok();
}

}  // namespace

std::string_view RecordFormatName(RecordFormat format) {
  switch (format) {
    case RecordFormat::kCsv:
      return "csv";
    case RecordFormat::kJson:
      return "json";
    case RecordFormat::kText:
      return "text";
  }
  return "unknown";
}

Result<RecordFormat> ParseRecordFormat(std::string_view name) {
  if (EqualsIgnoreCase(name, "csv")) return RecordFormat::kCsv;
  if (EqualsIgnoreCase(name, "json") || EqualsIgnoreCase(name, "jsonl") ||
      EqualsIgnoreCase(name, "json-lines") || EqualsIgnoreCase(name, "ndjson")) {
    return RecordFormat::kJson;
  }
  if (EqualsIgnoreCase(name, "text")) return RecordFormat::kText;
  return Status::InvalidArgument("unknown record format '" + std::string(name) +
                                 "' (expected csv, json or text)");
}

Status ValidateFormatOptions(const FormatOptions& o) {
  if (o.format != RecordFormat::kCsv) return Status::Ok();
  auto show = [](char c) {
    if (c == '\n') return std::string("'\\n'");
    if (c == '\r') return std::string("'\\r'");
    return "'" + std::string(1, c) + "'";
  };
  if (o.delimiter == '\n' || o.delimiter == '\r' || o.delimiter == '\0') {
    return Status::InvalidArgument("csv delimiter " + show(o.delimiter) + " is not allowed");
  }
  if (o.quote == '\n' || o.quote == '\r') {
    return Status::InvalidArgument("csv quote " + show(o.quote) + " is not allowed");
  }
  if (o.quote == o.delimiter) {
    return Status::InvalidArgument("csv quote and delimiter must differ (both " +
                                   show(o.delimiter) + ")");
  }
  return Status::Ok();
}

bool HasHeaderLine(const FormatOptions& options) {
  return options.format == RecordFormat::kCsv && options.header;
}

Result<std::vector<std::string>> ParseCsvHeader(std::string_view line,
                                                const FormatOptions& options) {
  EDDY_RETURN_NOT_OK(ValidateFormatOptions(options));
  CsvSplitter splitter(options);
  std::vector<CsvSlice> slices;
  EDDY_RETURN_NOT_OK(splitter.Split(StripCr(line), slices).WithContext("csv header"));
  std::vector<std::string> names;
  names.reserve(slices.size());
  for (const CsvSlice& s : slices) {
    std::string name;
    if (s.escaped) {
      splitter.Unescape(s, name);
    } else {
      name.assign(s.text);
    }
    names.push_back(std::move(name));
  }
  return names;
}

Result<std::unique_ptr<RowParser>> RowParser::Make(const FormatOptions& options, SchemaPtr schema) {
  EDDY_RETURN_NOT_OK(CheckSchema(schema));
  EDDY_RETURN_NOT_OK(ValidateFormatOptions(options));
  std::unique_ptr<RowParser> parser;
  switch (options.format) {
    case RecordFormat::kCsv:
      parser = std::make_unique<CsvRowParser>(options, std::move(schema));
      break;
    case RecordFormat::kJson:
      parser = std::make_unique<JsonRowParser>(std::move(schema));
      break;
    case RecordFormat::kText:
      if (schema->size() != 1) {
        return Status::InvalidArgument("text format needs a schema with exactly one field, got " +
                                       schema->ToString());
      }
      parser = std::make_unique<TextRowParser>(std::move(schema));
      break;
  }
  if (!parser) return Status::InvalidArgument("unknown record format");
  return parser;
}

Result<std::unique_ptr<RowFormatter>> RowFormatter::Make(const FormatOptions& options,
                                                         SchemaPtr schema) {
  EDDY_RETURN_NOT_OK(CheckSchema(schema));
  EDDY_RETURN_NOT_OK(ValidateFormatOptions(options));
  std::unique_ptr<RowFormatter> formatter;
  switch (options.format) {
    case RecordFormat::kCsv:
      formatter = std::make_unique<CsvRowFormatter>(options);
      break;
    case RecordFormat::kJson:
      formatter = std::make_unique<JsonRowFormatter>(std::move(schema));
      break;
    case RecordFormat::kText:
      formatter = std::make_unique<TextRowFormatter>();
      break;
  }
  if (!formatter) return Status::InvalidArgument("unknown record format");
  return formatter;
}

// ---------------------------------------------------------------------------------------------
// timestamps

namespace {

bool IsLeapYear(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && IsLeapYear(y)) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

bool ParseTimestampText(std::string_view s, int64_t& epoch_ms) {
  size_t i = 0;
  auto digits = [&](int count, int& v) {
    if (s.size() - i < static_cast<size_t>(count)) return false;
    v = 0;
    for (int k = 0; k < count; ++k) {
      char c = s[i + static_cast<size_t>(k)];
      if (!IsDigit(c)) return false;
      v = v * 10 + (c - '0');
    }
    i += static_cast<size_t>(count);
    return true;
  };
  auto accept = [&](char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  };

  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!digits(4, year) || !accept('-') || !digits(2, month) || !accept('-') || !digits(2, day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return false;
  int64_t offset_ms = 0;
  if (i < s.size()) {
    char sep = s[i++];
    if (sep != 'T' && sep != 't' && sep != ' ') return false;
    if (!digits(2, hour) || !accept(':') || !digits(2, minute)) return false;
    if (accept(':')) {
      if (!digits(2, second)) return false;
      if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
        ++i;
        int n = 0;
        while (i < s.size() && IsDigit(s[i])) {
          if (n < 3) millis = millis * 10 + (s[i] - '0');
          ++n;
          ++i;
        }
        if (n == 0) return false;
        for (; n < 3; ++n) millis *= 10;
      }
    }
    if (hour > 23 || minute > 59 || second > 59) return false;
    if (i < s.size()) {
      char z = s[i++];
      if (z == '+' || z == '-') {
        int oh = 0, om = 0;
        if (!digits(2, oh)) return false;
        if (accept(':')) {
          if (!digits(2, om)) return false;
        } else if (i < s.size() && !digits(2, om)) {
          return false;
        }
        if (oh > 23 || om > 59) return false;
        offset_ms = (static_cast<int64_t>(oh) * 60 + om) * 60'000 * (z == '-' ? -1 : 1);
      } else if (z != 'Z' && z != 'z') {
        return false;
      }
    }
    if (i != s.size()) return false;
  }
  int64_t days = DaysFromCivil(year, month, day);
  epoch_ms =
      ((days * 24 + hour) * 60 + minute) * 60'000 + int64_t{second} * 1000 + millis - offset_ms;
  return true;
}

}  // namespace eddy
