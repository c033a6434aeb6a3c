#include "common/src/expr/parser.h"

#include <algorithm>
#include <array>

namespace eddy::expr {
namespace {

constexpr std::array<std::string_view, 17> kReservedWords = {
    "and",  "or",   "not",  "is",  "null", "in", "between", "like", "case",
    "when", "then", "else", "end", "cast", "as", "true",    "false"};

char ToLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = ToLower(c);
  return r;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

bool IsReserved(const Token& t) {
  if (t.kind != TokenKind::kIdent) return false;
  return std::any_of(kReservedWords.begin(), kReservedWords.end(),
                     [&](std::string_view w) { return EqualsIgnoreCase(t.text, w); });
}

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens)
      : text_(text), tokens_(std::move(tokens)) {}

  Result<AstPtr> ParseWhole() {
    if (Peek().kind == TokenKind::kEnd) return Error(0, "empty expression");
    AstPtr root = ParseOr();
    if (root && Peek().kind != TokenKind::kEnd) {
      Fail(Peek().pos, "unexpected " + Describe(Peek()) + " after a complete expression");
    }
    if (!error_.ok()) return error_;
    if (!root) return Error(0, "internal error: parser returned no tree");
    return root;
  }

  Result<AggregateAst> ParseAggregate() {
    AggregateAst agg;
    const Token& name = Peek();
    if (name.kind != TokenKind::kIdent || IsReserved(name) || Peek(1).kind != TokenKind::kLParen) {
      return Error(name.pos,
                   "expected an aggregate call such as count(), avg(temperature) or "
                   "count(distinct id), found " +
                       Describe(name));
    }
    agg.name = Lower(name.text);
    agg.name_pos = name.pos;
    Next();
    Next();
    if (IsKeyword(Peek(), "distinct") && Peek(1).kind != TokenKind::kRParen &&
        Peek(1).kind != TokenKind::kComma) {
      agg.distinct = true;
      Next();
    }
    if (Peek().kind == TokenKind::kStar) {
      if (agg.distinct) return Error(Peek().pos, "DISTINCT cannot be combined with '*'");
      agg.star = true;
      Next();
    } else if (Peek().kind != TokenKind::kRParen) {
      while (true) {
        AstPtr arg = ParseOr();
        if (!arg) return error_;
        agg.args.push_back(std::move(arg));
        if (!Accept(TokenKind::kComma)) break;
      }
    }
    if (!Expect(TokenKind::kRParen, "')' to close the aggregate call")) return error_;
    if (Peek().kind != TokenKind::kEnd) {
      return Error(Peek().pos, "unexpected " + Describe(Peek()) + " after the aggregate call");
    }
    if (agg.star && agg.name != "count") {
      return Error(agg.name_pos, "'*' is only allowed in count(*), not in " + agg.name + "(*)");
    }
    return agg;
  }

 private:
  // ---- token access ----
  const Token& Peek(size_t k = 0) const { return tokens_[std::min(cur_ + k, tokens_.size() - 1)]; }
  const Token& Next() {
    const Token& t = Peek();
    if (cur_ < tokens_.size() - 1) ++cur_;
    last_end_ = t.pos + t.len;
    return t;
  }
  bool Accept(TokenKind k) {
    if (Peek().kind != k) return false;
    Next();
    return true;
  }
  static bool IsKeyword(const Token& t, std::string_view kw) {
    return t.kind == TokenKind::kIdent && EqualsIgnoreCase(t.text, kw);
  }
  bool AcceptKeyword(std::string_view kw) {
    if (!IsKeyword(Peek(), kw)) return false;
    Next();
    return true;
  }
  bool Expect(TokenKind k, std::string_view what) {
    if (Accept(k)) return true;
    Fail(Peek().pos, "expected " + std::string(what) + ", found " + Describe(Peek()));
    return false;
  }
  bool ExpectKeyword(std::string_view kw, std::string_view context) {
    if (AcceptKeyword(kw)) return true;
    Fail(Peek().pos,
         "expected " + Upper(kw) + std::string(context) + ", found " + Describe(Peek()));
    return false;
  }

  static std::string Upper(std::string_view s) {
    std::string r(s);
    for (char& c : r) c = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    return r;
  }

  std::string Describe(const Token& t) const {
    if (t.kind == TokenKind::kEnd) return "end of expression";
    std::string src(text_.substr(t.pos, t.len));
    if (src.size() > 40) src = src.substr(0, 37) + "...";
    switch (t.kind) {
      case TokenKind::kInt:
      case TokenKind::kDouble:
        return "number " + src;
      case TokenKind::kString:
        return "string " + src;
      case TokenKind::kIdent:
        return (IsReserved(t) ? "keyword " : "name ") + src;
      default:
        return "'" + src + "'";
    }
  }

  // ---- errors and node construction ----
  Status Error(size_t pos, std::string_view what) const { return CompileError(text_, pos, what); }
  std::nullptr_t Fail(size_t pos, std::string_view what) {
    if (error_.ok()) error_ = Error(pos, what);
    return nullptr;
  }

  AstPtr Make(AstKind kind, size_t pos, size_t begin) {
    auto a = std::make_unique<Ast>();
    a->kind = kind;
    a->pos = pos;
    a->begin = begin;
    a->end = last_end_;
    return a;
  }
  /// Adds `child` (may be null after an error) and enforces the depth limit.
  bool Adopt(Ast& parent, AstPtr child) {
    if (!child) return false;
    parent.depth = std::max(parent.depth, child->depth + 1);
    parent.children.push_back(std::move(child));
    parent.end = last_end_;
    if (parent.depth > kMaxDepth) {
      Fail(parent.pos, "expression is nested too deeply (limit " + std::to_string(kMaxDepth) +
                           " levels; operators chained left to right count as nesting)");
      return false;
    }
    return true;
  }
  AstPtr MakeBinary(BinaryOp op, const Token& op_token, AstPtr lhs, AstPtr rhs) {
    AstPtr a = Make(AstKind::kBinary, op_token.pos, lhs->begin);
    a->op = op;
    a->name = std::string(text_.substr(op_token.pos, op_token.len));
    if (!Adopt(*a, std::move(lhs)) || !Adopt(*a, std::move(rhs))) return nullptr;
    return a;
  }

  /// Guards recursion (parentheses, prefix operators) separately from tree depth.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser& p) : p_(p) { ++p_.recursion_; }
    ~DepthGuard() { --p_.recursion_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
    bool WithinLimit() const { return p_.recursion_ <= kMaxDepth; }

   private:
    Parser& p_;
  };

  // ---- grammar ----
  AstPtr ParseOr() {
    DepthGuard guard(*this);
    if (!guard.WithinLimit()) {
      return Fail(Peek().pos, "expression is nested too deeply (limit " +
                                  std::to_string(kMaxDepth) + " levels)");
    }
    AstPtr lhs = ParseAnd();
    while (lhs && (IsKeyword(Peek(), "or") || Peek().kind == TokenKind::kOrOr)) {
      const Token& op = Next();
      AstPtr rhs = ParseAnd();
      if (!rhs) return nullptr;
      lhs = MakeBinary(BinaryOp::kOr, op, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  AstPtr ParseAnd() {
    AstPtr lhs = ParseNot();
    while (lhs && (IsKeyword(Peek(), "and") || Peek().kind == TokenKind::kAndAnd)) {
      const Token& op = Next();
      AstPtr rhs = ParseNot();
      if (!rhs) return nullptr;
      lhs = MakeBinary(BinaryOp::kAnd, op, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  AstPtr ParseNot() {
    if (IsKeyword(Peek(), "not") || Peek().kind == TokenKind::kBang) {
      DepthGuard guard(*this);
      if (!guard.WithinLimit()) return Fail(Peek().pos, "expression is nested too deeply");
      const Token& op = Next();
      AstPtr a = Make(AstKind::kNot, op.pos, op.pos);
      a->name = std::string(text_.substr(op.pos, op.len));
      if (!Adopt(*a, ParseNot())) return nullptr;
      return a;
    }
    return ParsePredicate();
  }

  static bool ComparisonOp(TokenKind k, BinaryOp& op) {
    switch (k) {
      case TokenKind::kEq:
        op = BinaryOp::kEq;
        return true;
      case TokenKind::kNe:
        op = BinaryOp::kNe;
        return true;
      case TokenKind::kLt:
        op = BinaryOp::kLt;
        return true;
      case TokenKind::kLe:
        op = BinaryOp::kLe;
        return true;
      case TokenKind::kGt:
        op = BinaryOp::kGt;
        return true;
      case TokenKind::kGe:
        op = BinaryOp::kGe;
        return true;
      default:
        return false;
    }
  }

  AstPtr ParsePredicate() {
    AstPtr lhs = ParseAdditive();
    while (lhs) {
      BinaryOp op{};
      if (ComparisonOp(Peek().kind, op)) {
        const Token& t = Next();
        AstPtr rhs = ParseAdditive();
        if (!rhs) return nullptr;
        lhs = MakeBinary(op, t, std::move(lhs), std::move(rhs));
        continue;
      }
      if (IsKeyword(Peek(), "is")) {
        const Token& t = Next();
        AstPtr a = Make(AstKind::kIsNull, t.pos, lhs->begin);
        a->negated = AcceptKeyword("not");
        if (!ExpectKeyword("null", " after IS [NOT]")) return nullptr;
        if (!Adopt(*a, std::move(lhs))) return nullptr;
        lhs = std::move(a);
        continue;
      }
      bool negated =
          IsKeyword(Peek(), "not") &&
          (IsKeyword(Peek(1), "in") || IsKeyword(Peek(1), "between") || IsKeyword(Peek(1), "like"));
      if (negated) Next();
      if (IsKeyword(Peek(), "in")) {
        lhs = ParseIn(std::move(lhs), negated);
      } else if (IsKeyword(Peek(), "between")) {
        lhs = ParseBetween(std::move(lhs), negated);
      } else if (IsKeyword(Peek(), "like")) {
        const Token& t = Next();
        AstPtr a = Make(AstKind::kLike, t.pos, lhs->begin);
        a->negated = negated;
        if (!Adopt(*a, std::move(lhs)) || !Adopt(*a, ParseAdditive())) return nullptr;
        lhs = std::move(a);
      } else {
        break;
      }
    }
    return lhs;
  }

  AstPtr ParseIn(AstPtr lhs, bool negated) {
    const Token& t = Next();
    AstPtr a = Make(AstKind::kIn, t.pos, lhs->begin);
    a->negated = negated;
    if (!Adopt(*a, std::move(lhs))) return nullptr;
    if (!Expect(TokenKind::kLParen, "'(' after IN")) return nullptr;
    if (Peek().kind == TokenKind::kRParen) return Fail(Peek().pos, "the IN list is empty");
    do {
      if (!Adopt(*a, ParseOr())) return nullptr;
    } while (Accept(TokenKind::kComma));
    if (!Expect(TokenKind::kRParen, "',' or ')' in the IN list")) return nullptr;
    a->end = last_end_;
    return a;
  }

  AstPtr ParseBetween(AstPtr lhs, bool negated) {
    const Token& t = Next();
    AstPtr a = Make(AstKind::kBetween, t.pos, lhs->begin);
    a->negated = negated;
    if (!Adopt(*a, std::move(lhs)) || !Adopt(*a, ParseAdditive())) return nullptr;
    if (!ExpectKeyword("and", " in BETWEEN ... AND ...")) return nullptr;
    if (!Adopt(*a, ParseAdditive())) return nullptr;
    return a;
  }

  AstPtr ParseAdditive() {
    AstPtr lhs = ParseMultiplicative();
    while (lhs && (Peek().kind == TokenKind::kPlus || Peek().kind == TokenKind::kMinus)) {
      const Token& op = Next();
      AstPtr rhs = ParseMultiplicative();
      if (!rhs) return nullptr;
      lhs = MakeBinary(op.kind == TokenKind::kPlus ? BinaryOp::kAdd : BinaryOp::kSub, op,
                       std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  AstPtr ParseMultiplicative() {
    AstPtr lhs = ParseUnary();
    while (lhs && (Peek().kind == TokenKind::kStar || Peek().kind == TokenKind::kSlash ||
                   Peek().kind == TokenKind::kPercent)) {
      const Token& op = Next();
      BinaryOp bop = op.kind == TokenKind::kStar    ? BinaryOp::kMul
                     : op.kind == TokenKind::kSlash ? BinaryOp::kDiv
                                                    : BinaryOp::kMod;
      AstPtr rhs = ParseUnary();
      if (!rhs) return nullptr;
      lhs = MakeBinary(bop, op, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  AstPtr ParseUnary() {
    const TokenKind k = Peek().kind;
    if (k != TokenKind::kMinus && k != TokenKind::kPlus) return ParsePrimary();
    DepthGuard guard(*this);
    if (!guard.WithinLimit()) return Fail(Peek().pos, "expression is nested too deeply");
    const Token& op = Next();
    const Token& operand = Peek();
    if (k == TokenKind::kMinus && operand.kind == TokenKind::kInt) {
      // Folded here so that -9223372036854775808 is representable.
      Next();
      AstPtr a = Make(AstKind::kLiteral, op.pos, op.pos);
      a->literal.SetInt(static_cast<int64_t>(uint64_t{0} - operand.int_value));
      return a;
    }
    if (k == TokenKind::kMinus && operand.kind == TokenKind::kDouble) {
      Next();
      AstPtr a = Make(AstKind::kLiteral, op.pos, op.pos);
      a->literal.SetDouble(-operand.double_value);
      return a;
    }
    AstPtr child = ParseUnary();
    if (!child) return nullptr;
    // Unary plus is a kNegate named "+": the Binder checks that the operand is a number and
    // returns it unchanged.
    AstPtr a = Make(AstKind::kNegate, op.pos, op.pos);
    a->name = k == TokenKind::kMinus ? "-" : "+";
    if (!Adopt(*a, std::move(child))) return nullptr;
    return a;
  }

  AstPtr ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case TokenKind::kInt: {
        if (t.int_value > static_cast<uint64_t>(INT64_MAX)) {
          return Fail(t.pos, "integer " + std::string(text_.substr(t.pos, t.len)) +
                                 " is out of range for int64");
        }
        Next();
        AstPtr a = Make(AstKind::kLiteral, t.pos, t.pos);
        a->literal.SetInt(static_cast<int64_t>(t.int_value));
        return a;
      }
      case TokenKind::kDouble: {
        Next();
        AstPtr a = Make(AstKind::kLiteral, t.pos, t.pos);
        a->literal.SetDouble(t.double_value);
        return a;
      }
      case TokenKind::kString: {
        Next();
        AstPtr a = Make(AstKind::kLiteral, t.pos, t.pos);
        a->literal.SetString(t.text);
        return a;
      }
      case TokenKind::kQuotedIdent: {
        Next();
        AstPtr a = Make(AstKind::kField, t.pos, t.pos);
        a->name = t.text;
        return a;
      }
      case TokenKind::kLParen: {
        Next();
        size_t open = t.pos;
        AstPtr inner = ParseOr();
        if (!inner) return nullptr;
        if (!Expect(TokenKind::kRParen,
                    "')' to close the '(' at column " + std::to_string(open + 1))) {
          return nullptr;
        }
        inner->begin = open;
        inner->end = last_end_;
        return inner;
      }
      case TokenKind::kIdent:
        return ParseName();
      case TokenKind::kEnd:
        return Fail(t.pos, "unexpected end of expression, expected a value");
      default:
        return Fail(t.pos, "unexpected " + Describe(t) + ", expected a value");
    }
  }

  AstPtr ParseName() {
    const Token& t = Peek();
    if (IsKeyword(t, "null") || IsKeyword(t, "true") || IsKeyword(t, "false")) {
      Next();
      AstPtr a = Make(AstKind::kLiteral, t.pos, t.pos);
      if (!IsKeyword(t, "null")) a->literal.SetBool(IsKeyword(t, "true"));
      return a;
    }
    if (IsKeyword(t, "case")) return ParseCase();
    if (IsKeyword(t, "cast")) return ParseCast();
    if (IsReserved(t)) {
      std::string m = "unexpected " + Describe(t) + ", expected a value";
      if (!IsKeyword(t, "and") && !IsKeyword(t, "or") && !IsKeyword(t, "not")) {
        m += " (write a field with this name as `" + t.text + "`)";
      }
      return Fail(t.pos, m);
    }
    Next();
    if (Peek().kind != TokenKind::kLParen) {
      AstPtr a = Make(AstKind::kField, t.pos, t.pos);
      a->name = t.text;
      return a;
    }
    AstPtr a = Make(AstKind::kCall, t.pos, t.pos);
    a->name = Lower(t.text);
    Next();  // (
    if (Peek().kind == TokenKind::kStar) {
      return Fail(Peek().pos, "'*' is only allowed in the aggregate count(*)");
    }
    if (!Accept(TokenKind::kRParen)) {
      do {
        if (!Adopt(*a, ParseOr())) return nullptr;
      } while (Accept(TokenKind::kComma));
      if (!Expect(TokenKind::kRParen, "',' or ')' in the argument list of " + a->name + "()")) {
        return nullptr;
      }
    }
    a->end = last_end_;
    return a;
  }

  AstPtr ParseCase() {
    const Token& t = Next();
    AstPtr a = Make(AstKind::kCase, t.pos, t.pos);
    if (!IsKeyword(Peek(), "when")) {
      a->has_operand = true;
      if (!Adopt(*a, ParseOr())) return nullptr;
    }
    int whens = 0;
    while (AcceptKeyword("when")) {
      ++whens;
      if (!Adopt(*a, ParseOr())) return nullptr;
      if (!ExpectKeyword("then", " after CASE ... WHEN condition")) return nullptr;
      if (!Adopt(*a, ParseOr())) return nullptr;
    }
    if (whens == 0) {
      return Fail(Peek().pos, "expected WHEN in CASE, found " + Describe(Peek()));
    }
    if (AcceptKeyword("else")) {
      a->has_else = true;
      if (!Adopt(*a, ParseOr())) return nullptr;
    }
    if (!ExpectKeyword("end", " to close the CASE at column " + std::to_string(t.pos + 1))) {
      return nullptr;
    }
    a->end = last_end_;
    return a;
  }

  AstPtr ParseCast() {
    const Token& t = Next();
    AstPtr a = Make(AstKind::kCast, t.pos, t.pos);
    if (!Expect(TokenKind::kLParen, "'(' after CAST")) return nullptr;
    if (!Adopt(*a, ParseOr())) return nullptr;
    if (!ExpectKeyword("as", " in CAST(value AS type)")) return nullptr;
    const Token& type = Peek();
    if (type.kind != TokenKind::kIdent) {
      return Fail(type.pos,
                  "expected a type name (string, int64, double, bool, timestamp), "
                  "found " +
                      Describe(type));
    }
    Next();
    a->name = Lower(type.text);
    a->pos = type.pos;  // type errors point at the type name
    if (!Expect(TokenKind::kRParen, "')' to close CAST")) return nullptr;
    a->end = last_end_;
    return a;
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t cur_ = 0;
  size_t last_end_ = 0;
  int recursion_ = 0;
  Status error_;
};

}  // namespace

Result<AstPtr> ParseExpressionText(std::string_view text) {
  EDDY_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(text));
  return Parser(text, std::move(tokens)).ParseWhole();
}

Result<AggregateAst> ParseAggregateText(std::string_view text) {
  EDDY_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(text));
  return Parser(text, std::move(tokens)).ParseAggregate();
}

}  // namespace eddy::expr
