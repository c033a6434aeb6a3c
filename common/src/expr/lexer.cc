#include "common/src/expr/lexer.h"

#include <charconv>
#include <cstdio>

namespace eddy::expr {
namespace {

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsIdentChar(char c) {
  return IsIdentStart(c) || IsDigit(c);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string DescribeChar(char c) {
  if (c >= 0x20 && c < 0x7F) return std::string("'") + c + "'";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "byte 0x%02X",
                static_cast<unsigned>(static_cast<unsigned char>(c)));
  return buf;
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Result<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (true) {
      while (i_ < text_.size() &&
             (text_[i_] == ' ' || text_[i_] == '\t' || text_[i_] == '\n' || text_[i_] == '\r')) {
        ++i_;
      }
      Token t;
      t.pos = i_;
      if (i_ >= text_.size()) {
        tokens.push_back(std::move(t));
        return tokens;
      }
      char c = text_[i_];
      Status st;
      if (IsDigit(c) || (c == '.' && i_ + 1 < text_.size() && IsDigit(text_[i_ + 1]))) {
        st = LexNumber(t);
      } else if (IsIdentStart(c)) {
        while (i_ < text_.size() && IsIdentChar(text_[i_])) ++i_;
        t.kind = TokenKind::kIdent;
        t.text = std::string(text_.substr(t.pos, i_ - t.pos));
      } else if (c == '\'' || c == '"') {
        st = LexQuoted(t, c, TokenKind::kString);
      } else if (c == '`') {
        st = LexQuoted(t, c, TokenKind::kQuotedIdent);
      } else {
        st = LexOperator(t);
      }
      if (!st.ok()) return st;
      t.len = i_ - t.pos;
      tokens.push_back(std::move(t));
    }
  }

 private:
  Status LexNumber(Token& t) {
    bool is_double = false;
    while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
    if (i_ + 1 < text_.size() && text_[i_] == '.' && IsDigit(text_[i_ + 1])) {
      is_double = true;
      ++i_;
      while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
    }
    if (i_ < text_.size() && (text_[i_] == 'e' || text_[i_] == 'E')) {
      size_t j = i_ + 1;
      if (j < text_.size() && (text_[j] == '+' || text_[j] == '-')) ++j;
      if (j < text_.size() && IsDigit(text_[j])) {
        is_double = true;
        i_ = j;
        while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
      }
    }
    if (i_ < text_.size() && (IsIdentChar(text_[i_]) || text_[i_] == '.')) {
      while (i_ < text_.size() && (IsIdentChar(text_[i_]) || text_[i_] == '.')) ++i_;
      return CompileError(text_, t.pos,
                          "invalid number '" + std::string(text_.substr(t.pos, i_ - t.pos)) + "'");
    }
    const char* begin = text_.data() + t.pos;
    const char* end = text_.data() + i_;
    if (is_double) {
      t.kind = TokenKind::kDouble;
      auto [p, ec] = std::from_chars(begin, end, t.double_value);
      if (ec != std::errc() || p != end) {
        return CompileError(text_, t.pos,
                            "number '" + std::string(begin, end) + "' is out of range for double");
      }
    } else {
      t.kind = TokenKind::kInt;
      auto [p, ec] = std::from_chars(begin, end, t.int_value);
      if (ec != std::errc() || p != end || t.int_value > (uint64_t{1} << 63)) {
        return CompileError(text_, t.pos,
                            "integer '" + std::string(begin, end) +
                                "' is out of range for int64 (write it as a double, e.g. 1e20)");
      }
    }
    return Status::Ok();
  }

  Status LexQuoted(Token& t, char quote, TokenKind kind) {
    t.kind = kind;
    ++i_;
    while (true) {
      if (i_ >= text_.size()) {
        return CompileError(text_, t.pos,
                            kind == TokenKind::kString ? "unterminated string literal"
                                                       : "unterminated `quoted` field name");
      }
      char c = text_[i_];
      if (c == quote) {
        if (i_ + 1 < text_.size() && text_[i_ + 1] == quote) {  // '' or `` stands for one quote
          t.text.push_back(quote);
          i_ += 2;
          continue;
        }
        ++i_;
        break;
      }
      if (c == '\\' && kind == TokenKind::kString && i_ + 1 < text_.size()) {
        EDDY_RETURN_NOT_OK(LexEscape(t.text));
        continue;
      }
      t.text.push_back(c);
      ++i_;
    }
    if (kind == TokenKind::kQuotedIdent && t.text.empty()) {
      return CompileError(text_, t.pos, "empty `quoted` field name");
    }
    return Status::Ok();
  }

  /// At a backslash inside a string literal with at least one more character.
  Status LexEscape(std::string& out) {
    size_t at = i_;
    char e = text_[i_ + 1];
    i_ += 2;
    switch (e) {
      case 'n':
        out.push_back('\n');
        return Status::Ok();
      case 't':
        out.push_back('\t');
        return Status::Ok();
      case 'r':
        out.push_back('\r');
        return Status::Ok();
      case '0':
        out.push_back('\0');
        return Status::Ok();
      case '\\':
        out.push_back('\\');
        return Status::Ok();
      case '\'':
      case '"':
      case '`':
        out.push_back(e);
        return Status::Ok();
      case 'u': {
        uint32_t cp = 0;
        for (int k = 0; k < 4; ++k) {
          int h = i_ < text_.size() ? HexDigit(text_[i_]) : -1;
          if (h < 0) return CompileError(text_, at, "\\u must be followed by 4 hex digits");
          cp = cp * 16 + static_cast<uint32_t>(h);
          ++i_;
        }
        AppendUtf8(cp, out);
        return Status::Ok();
      }
      default:
        // Unknown escapes keep the backslash, so that LIKE patterns such as '100\%' work.
        out.push_back('\\');
        out.push_back(e);
        return Status::Ok();
    }
  }

  Status LexOperator(Token& t) {
    char c = text_[i_];
    char n = i_ + 1 < text_.size() ? text_[i_ + 1] : '\0';
    auto one = [&](TokenKind k) {
      t.kind = k;
      i_ += 1;
      return Status::Ok();
    };
    auto two = [&](TokenKind k) {
      t.kind = k;
      i_ += 2;
      return Status::Ok();
    };
    switch (c) {
      case '(':
        return one(TokenKind::kLParen);
      case ')':
        return one(TokenKind::kRParen);
      case ',':
        return one(TokenKind::kComma);
      case '+':
        return one(TokenKind::kPlus);
      case '-':
        return one(TokenKind::kMinus);
      case '*':
        return one(TokenKind::kStar);
      case '/':
        return one(TokenKind::kSlash);
      case '%':
        return one(TokenKind::kPercent);
      case '=':
        return n == '=' ? two(TokenKind::kEq) : one(TokenKind::kEq);
      case '!':
        return n == '=' ? two(TokenKind::kNe) : one(TokenKind::kBang);
      case '<':
        if (n == '=') return two(TokenKind::kLe);
        if (n == '>') return two(TokenKind::kNe);
        return one(TokenKind::kLt);
      case '>':
        return n == '=' ? two(TokenKind::kGe) : one(TokenKind::kGt);
      case '&':
        if (n == '&') return two(TokenKind::kAndAnd);
        return CompileError(text_, i_, "unexpected character '&' (use AND or &&)");
      case '|':
        if (n == '|') return two(TokenKind::kOrOr);
        return CompileError(text_, i_, "unexpected character '|' (use OR or ||)");
      default:
        return CompileError(text_, i_, "unexpected character " + DescribeChar(c));
    }
  }

  std::string_view text_;
  size_t i_ = 0;
};

}  // namespace

Status CompileError(std::string_view text, size_t pos, std::string_view what) {
  std::string m = "expression '";
  m += text;
  m += "', column ";
  m += std::to_string(pos + 1);
  m += ": ";
  m += what;
  return Status::InvalidArgument(std::move(m));
}

Result<std::vector<Token>> Tokenize(std::string_view text) {
  return Lexer(text).Run();
}

}  // namespace eddy::expr
