#pragma once

// Recursive-descent parser: tokens -> untyped syntax tree (Ast). Types are checked later by the
// Binder. Nesting is limited to kMaxDepth so that parsing, binding and evaluating a hostile input
// cannot overflow the stack.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/src/expr/lexer.h"
#include "eddy/status.h"
#include "eddy/value.h"

namespace eddy::expr {

inline constexpr int kMaxDepth = 256;

enum class AstKind : uint8_t {
  kLiteral,  ///< literal
  kField,    ///< name
  kNegate,   ///< -children[0]
  kNot,      ///< NOT children[0]
  kBinary,   ///< children[0] op children[1]
  kIsNull,   ///< children[0] IS [NOT] NULL
  kIn,       ///< children[0] [NOT] IN (children[1..])
  kBetween,  ///< children[0] [NOT] BETWEEN children[1] AND children[2]
  kLike,     ///< children[0] [NOT] LIKE children[1]
  kCase,     ///< [operand] (when, then)+ [else]
  kCast,     ///< CAST(children[0] AS name)
  kCall,     ///< name(children...)
};

enum class BinaryOp : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kAnd,
  kOr,
};

struct Ast;
using AstPtr = std::unique_ptr<Ast>;

struct Ast {
  AstKind kind = AstKind::kLiteral;
  size_t pos = 0;    ///< where errors about this node point: operator, function or field name
  size_t begin = 0;  ///< source span [begin, end)
  size_t end = 0;
  int depth = 1;  ///< 1 + the deepest child
  BinaryOp op = BinaryOp::kAdd;
  bool negated = false;      ///< IS NOT NULL, NOT IN, NOT BETWEEN, NOT LIKE
  bool has_operand = false;  ///< simple CASE x WHEN ...
  bool has_else = false;     ///< CASE ... ELSE
  Value literal;
  /// kField: the field name; kCall: the lower-cased function name; kCast: the lower-cased type
  /// name; kBinary/kNot/kNegate: the operator as written (for messages).
  std::string name;
  std::vector<AstPtr> children;
};

/// `name([DISTINCT] [* | expr, ...])` as in a job spec's aggregate list.
struct AggregateAst {
  std::string name;  ///< lower-cased
  size_t name_pos = 0;
  bool distinct = false;
  bool star = false;
  std::vector<AstPtr> args;
};

/// Parses a whole expression; errors name `text` and a column.
Result<AstPtr> ParseExpressionText(std::string_view text);
/// Parses a whole aggregate call.
Result<AggregateAst> ParseAggregateText(std::string_view text);

}  // namespace eddy::expr
