#pragma once

// Tokenizer for the expression language (see eddy/expr.h for the grammar).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/status.h"

namespace eddy::expr {

enum class TokenKind : uint8_t {
  kEnd,          ///< after the last token
  kInt,          ///< 42; int_value holds it (up to 2^63, negated by the parser)
  kDouble,       ///< 3.5, 1e3; double_value holds it
  kString,       ///< 'x' or "x"; text holds the unescaped contents
  kIdent,        ///< names and keywords; text holds the name as written
  kQuotedIdent,  ///< `name`; text holds the unquoted name
  kLParen,
  kRParen,
  kComma,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
  kEq,  ///< = or ==
  kNe,  ///< != or <>
  kLt,
  kLe,
  kGt,
  kGe,
  kBang,    ///< !
  kAndAnd,  ///< &&
  kOrOr,    ///< ||
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t pos = 0;  ///< byte offset in the source
  size_t len = 0;  ///< length in the source
  std::string text;
  uint64_t int_value = 0;
  double double_value = 0;
};

/// Builds the message every compile error uses: "expression '<text>', column <pos+1>: <what>".
Status CompileError(std::string_view text, size_t pos, std::string_view what);

/// Splits `text` into tokens ending with one kEnd token. Errors (unterminated string, bad number,
/// unexpected character) are Status::InvalidArgument built by CompileError.
Result<std::vector<Token>> Tokenize(std::string_view text);

}  // namespace eddy::expr
