#include "common/src/expr/binder.h"

#include <algorithm>
#include <array>
#include <optional>

#include "common/src/expr/functions.h"
#include "common/src/expr/value_ops.h"

namespace eddy::expr {
namespace {

constexpr std::array<std::string_view, 16> kAggregateNames = {
    "avg",     "collect", "count",  "count_distinct", "first", "first_value", "last",  "last_value",
    "listagg", "max",     "max_by", "maxby",          "min",   "min_by",      "minby", "sum"};

std::string TypeName(DataType t) {
  return std::string(DataTypeName(t));
}

/// The common type of two branch values (CASE, if, coalesce, least/greatest).
std::optional<DataType> UnifyTypes(DataType a, DataType b) {
  if (a == b) return a;
  if (a == DataType::kNull) return b;
  if (b == DataType::kNull) return a;
  if (IsNumeric(a) && IsNumeric(b)) {
    if (a == DataType::kDouble || b == DataType::kDouble) return DataType::kDouble;
    return DataType::kTimestamp;  // int64 with timestamp: the int64 is epoch milliseconds
  }
  return std::nullopt;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

CmpOp ToCmpOp(BinaryOp op) {
  switch (op) {
    case BinaryOp::kEq:
      return CmpOp::kEq;
    case BinaryOp::kNe:
      return CmpOp::kNe;
    case BinaryOp::kLt:
      return CmpOp::kLt;
    case BinaryOp::kLe:
      return CmpOp::kLe;
    case BinaryOp::kGt:
      return CmpOp::kGt;
    default:
      return CmpOp::kGe;
  }
}

ArithOp ToArithOp(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return ArithOp::kAdd;
    case BinaryOp::kSub:
      return ArithOp::kSub;
    case BinaryOp::kMul:
      return ArithOp::kMul;
    case BinaryOp::kDiv:
      return ArithOp::kDiv;
    default:
      return ArithOp::kMod;
  }
}

bool IsBoolOrNull(DataType t) {
  return t == DataType::kBool || t == DataType::kNull;
}

class Binder {
 public:
  Binder(std::string_view text, const Schema& schema, std::vector<std::string>& fields)
      : text_(text), schema_(schema), fields_(fields) {}

  Result<NodePtr> Run(const Ast& ast) {
    NodePtr root = Bind(ast);
    if (!error_.ok()) return error_;
    if (!root) return CompileError(text_, ast.pos, "internal error: binder produced no tree");
    return root;
  }

 private:
  std::nullptr_t Fail(size_t pos, std::string_view what) {
    if (error_.ok()) error_ = CompileError(text_, pos, what);
    return nullptr;
  }

  /// Converts `n` to `to` (folding constants); null-typed nodes are left alone.
  static NodePtr Coerce(NodePtr n, DataType to) {
    if (n->type() == to || n->type() == DataType::kNull) return n;
    return FoldConstants(MakeCast(std::move(n), to));
  }

  NodePtr Bind(const Ast& a) {
    switch (a.kind) {
      case AstKind::kLiteral:
        return MakeLiteral(a.literal, a.literal.type());
      case AstKind::kField:
        return BindField(a);
      case AstKind::kNegate:
        return BindNegate(a);
      case AstKind::kNot:
        return BindNot(a);
      case AstKind::kBinary:
        return BindBinary(a);
      case AstKind::kIsNull: {
        NodePtr c = Bind(*a.children[0]);
        if (!c) return nullptr;
        return FoldConstants(MakeIsNull(std::move(c), a.negated));
      }
      case AstKind::kIn:
        return BindIn(a);
      case AstKind::kBetween:
        return BindBetween(a);
      case AstKind::kLike:
        return BindLike(a);
      case AstKind::kCase:
        return BindCase(a);
      case AstKind::kCast:
        return BindCast(a);
      case AstKind::kCall:
        return BindCall(a);
    }
    return Fail(a.pos, "internal error: unknown syntax node");
  }

  bool BindAll(const std::vector<AstPtr>& asts, size_t from, std::vector<NodePtr>& out,
               std::vector<size_t>& positions) {
    for (size_t i = from; i < asts.size(); ++i) {
      NodePtr n = Bind(*asts[i]);
      if (!n) return false;
      out.push_back(std::move(n));
      positions.push_back(asts[i]->begin);
    }
    return true;
  }

  NodePtr BindField(const Ast& a) {
    int index = schema_.IndexOf(a.name);
    if (index < 0) {
      std::string m = "unknown field '" + a.name + "' (";
      if (schema_.size() == 0) {
        m += "the input has no fields";
      } else {
        m += "fields: ";
        for (size_t i = 0; i < schema_.size(); ++i) {
          if (i) m += ", ";
          m += schema_.field(i).name;
        }
      }
      m += ")";
      return Fail(a.pos, m);
    }
    if (std::find(fields_.begin(), fields_.end(), a.name) == fields_.end()) {
      fields_.push_back(a.name);
    }
    return MakeField(index, schema_.field(static_cast<size_t>(index)).type);
  }

  NodePtr BindNegate(const Ast& a) {
    NodePtr c = Bind(*a.children[0]);
    if (!c) return nullptr;
    DataType t = c->type();
    if (!IsNumeric(t) && t != DataType::kNull) {
      return Fail(a.pos, "unary '" + a.name + "' expects a number, got " + TypeName(t));
    }
    if (a.name == "+" || t == DataType::kNull) return c;
    return FoldConstants(MakeNegate(std::move(c)));
  }

  NodePtr BindNot(const Ast& a) {
    NodePtr c = Bind(*a.children[0]);
    if (!c) return nullptr;
    if (!IsBoolOrNull(c->type())) {
      return Fail(a.pos, "'" + a.name + "' expects a bool operand, got " + TypeName(c->type()) +
                             " (compare it first, e.g. NOT (x > 0))");
    }
    return FoldConstants(MakeNot(std::move(c)));
  }

  NodePtr BindBinary(const Ast& a) {
    NodePtr l = Bind(*a.children[0]);
    if (!l) return nullptr;
    NodePtr r = Bind(*a.children[1]);
    if (!r) return nullptr;
    switch (a.op) {
      case BinaryOp::kAnd:
      case BinaryOp::kOr: {
        if (!IsBoolOrNull(l->type()) || !IsBoolOrNull(r->type())) {
          bool left_bad = !IsBoolOrNull(l->type());
          return Fail(a.pos, "operator '" + a.name + "' expects bool operands, got " +
                                 TypeName(left_bad ? l->type() : r->type()) + " on the " +
                                 (left_bad ? "left" : "right"));
        }
        NodePtr n = a.op == BinaryOp::kAnd ? MakeAnd(std::move(l), std::move(r))
                                           : MakeOr(std::move(l), std::move(r));
        return FoldConstants(std::move(n));
      }
      case BinaryOp::kAdd:
      case BinaryOp::kSub:
      case BinaryOp::kMul:
      case BinaryOp::kDiv:
      case BinaryOp::kMod:
        return BindArith(ToArithOp(a.op), "operator '" + a.name + "'", a.pos, std::move(l),
                         std::move(r));
      default:
        return BindCompare(ToCmpOp(a.op), "operator '" + a.name + "'", a.pos, std::move(l),
                           std::move(r), {a.children[0]->begin, a.children[1]->begin});
    }
  }

  NodePtr BindArith(ArithOp op, const std::string& what, size_t pos, NodePtr l, NodePtr r) {
    DataType lt = l->type(), rt = r->type();
    if (op == ArithOp::kAdd && (lt == DataType::kString || rt == DataType::kString)) {
      return FoldConstants(MakeConcat(std::move(l), std::move(r)));
    }
    bool l_ok = IsNumeric(lt) || lt == DataType::kNull;
    bool r_ok = IsNumeric(rt) || rt == DataType::kNull;
    if (!l_ok || !r_ok) {
      return Fail(pos, what + " expects numbers, got " + TypeName(lt) + " and " + TypeName(rt));
    }
    if (lt == DataType::kNull && rt == DataType::kNull) {
      return MakeLiteral(Value::Null(), DataType::kNull);
    }
    DataType type = DataType::kInt64;
    if (lt == DataType::kDouble || rt == DataType::kDouble) {
      type = DataType::kDouble;
      l = Coerce(std::move(l), DataType::kDouble);
      r = Coerce(std::move(r), DataType::kDouble);
    } else {
      bool l_ts = lt == DataType::kTimestamp, r_ts = rt == DataType::kTimestamp;
      if ((op == ArithOp::kAdd && l_ts != r_ts) || (op == ArithOp::kSub && l_ts && !r_ts)) {
        type = DataType::kTimestamp;
      }
    }
    return FoldConstants(MakeArith(op, type, std::move(l), std::move(r)));
  }

  /// Makes `nodes` mutually comparable: string literals compared with timestamps are parsed,
  /// int64/timestamp compared with double become double. Sets `cls`; `all_null` when every node
  /// is null-typed (the comparison is then always null).
  bool UnifyCompare(std::vector<NodePtr>& nodes, const std::vector<size_t>& positions, size_t pos,
                    const std::string& what, CmpClass& cls, bool& all_null) {
    bool has_ts = std::any_of(nodes.begin(), nodes.end(),
                              [](const NodePtr& n) { return n->type() == DataType::kTimestamp; });
    if (has_ts) {
      for (size_t i = 0; i < nodes.size(); ++i) {
        NodePtr& n = nodes[i];
        if (n->type() != DataType::kString || !n->is_literal()) continue;
        // Same rules as to_timestamp() and CAST(... AS timestamp).
        const Value& v = n->Eval(Row());
        Value ts;
        if (!CastValue(v, DataType::kTimestamp, ts)) {
          Fail(positions[i], "'" + v.string_value() +
                                 "' is not a timestamp (expected ISO-8601 such as "
                                 "2019-01-17T09:43:19Z or '2019-01-17 09:43:19')");
          return false;
        }
        n = MakeLiteral(ts, DataType::kTimestamp);
      }
    }
    all_null = true;
    DataType first = DataType::kNull;
    bool any_double = false;
    auto group = [](DataType t) { return IsNumeric(t) ? DataType::kInt64 : t; };
    for (const NodePtr& n : nodes) {
      DataType t = n->type();
      if (t == DataType::kNull) continue;
      any_double |= t == DataType::kDouble;
      if (all_null) {
        first = t;
        all_null = false;
      } else if (group(t) != group(first)) {
        std::string m =
            "cannot compare " + TypeName(first) + " with " + TypeName(t) + " (" + what + ")";
        if (group(first) == DataType::kString || group(t) == DataType::kString) {
          m += "; convert one side with CAST(... AS ...)";
        }
        Fail(pos, m);
        return false;
      }
    }
    if (all_null) return true;
    switch (group(first)) {
      case DataType::kInt64:
        cls = any_double ? CmpClass::kDouble : CmpClass::kInt;
        if (any_double) {
          for (NodePtr& n : nodes) n = Coerce(std::move(n), DataType::kDouble);
        }
        return true;
      case DataType::kBool:
        cls = CmpClass::kBool;
        return true;
      default:
        cls = CmpClass::kText;
        return true;
    }
  }

  /// Converts `nodes` to their common type (see UnifyTypes), returned in `type`.
  bool UnifyValues(std::vector<NodePtr*> nodes, const std::vector<size_t>& positions,
                   const std::string& what, DataType& type) {
    type = DataType::kNull;
    for (size_t i = 0; i < nodes.size(); ++i) {
      DataType t = (*nodes[i])->type();
      std::optional<DataType> u = UnifyTypes(type, t);
      if (!u) {
        Fail(positions[i], what + " mixes " + TypeName(type) + " and " + TypeName(t) +
                               "; convert with CAST(... AS ...)");
        return false;
      }
      type = *u;
    }
    for (NodePtr* n : nodes) *n = Coerce(std::move(*n), type);
    return true;
  }

  /// `positions`: where the operands start, for errors about one of them.
  NodePtr BindCompare(CmpOp op, const std::string& what, size_t pos, NodePtr l, NodePtr r,
                      const std::vector<size_t>& positions) {
    std::vector<NodePtr> v;
    v.push_back(std::move(l));
    v.push_back(std::move(r));
    CmpClass cls = CmpClass::kInt;
    bool all_null = false;
    if (!UnifyCompare(v, positions, pos, what, cls, all_null)) return nullptr;
    if (v[0]->type() == DataType::kNull || v[1]->type() == DataType::kNull) {
      return MakeLiteral(Value::Null(), DataType::kBool);  // comparing with null is never true
    }
    return FoldConstants(MakeCompare(op, cls, std::move(v[0]), std::move(v[1])));
  }

  NodePtr BindIn(const Ast& a) {
    std::vector<NodePtr> v;
    std::vector<size_t> positions;
    if (!BindAll(a.children, 0, v, positions)) return nullptr;
    CmpClass cls = CmpClass::kInt;
    bool all_null = false;
    if (!UnifyCompare(v, positions, a.pos, "in the IN list", cls, all_null)) return nullptr;
    if (v[0]->type() == DataType::kNull) return MakeLiteral(Value::Null(), DataType::kBool);
    return FoldConstants(MakeIn(cls, std::move(v), a.negated));
  }

  NodePtr BindBetween(const Ast& a) {
    std::vector<NodePtr> v;
    std::vector<size_t> positions;
    if (!BindAll(a.children, 0, v, positions)) return nullptr;
    CmpClass cls = CmpClass::kInt;
    bool all_null = false;
    if (!UnifyCompare(v, positions, a.pos, "in BETWEEN", cls, all_null)) return nullptr;
    if (v[0]->type() == DataType::kNull) return MakeLiteral(Value::Null(), DataType::kBool);
    return FoldConstants(
        MakeBetween(cls, std::move(v[0]), std::move(v[1]), std::move(v[2]), a.negated));
  }

  NodePtr BindLike(const Ast& a) {
    NodePtr s = Bind(*a.children[0]);
    if (!s) return nullptr;
    NodePtr p = Bind(*a.children[1]);
    if (!p) return nullptr;
    for (const NodePtr* n : {&s, &p}) {
      DataType t = (*n)->type();
      if (t != DataType::kString && t != DataType::kNull) {
        return Fail(a.pos, "LIKE expects strings, got " + TypeName(s->type()) + " LIKE " +
                               TypeName(p->type()));
      }
    }
    if (s->type() == DataType::kNull || p->type() == DataType::kNull) {
      return MakeLiteral(Value::Null(), DataType::kBool);
    }
    return FoldConstants(MakeLike(std::move(s), std::move(p), a.negated));
  }

  NodePtr BindCase(const Ast& a) {
    std::vector<NodePtr> v;
    std::vector<size_t> positions;
    if (!BindAll(a.children, 0, v, positions)) return nullptr;
    size_t first_pair = a.has_operand ? 1 : 0;
    size_t pairs_end = v.size() - (a.has_else ? 1 : 0);
    std::vector<NodePtr*> values;
    std::vector<size_t> value_positions;
    for (size_t i = first_pair; i + 1 < pairs_end; i += 2) {
      values.push_back(&v[i + 1]);
      value_positions.push_back(positions[i + 1]);
    }
    if (a.has_else) {
      values.push_back(&v.back());
      value_positions.push_back(positions.back());
    }
    DataType type = DataType::kNull;
    if (!a.has_operand) {
      for (size_t i = 0; i + 1 < pairs_end; i += 2) {
        if (!IsBoolOrNull(v[i]->type())) {
          return Fail(positions[i], "CASE WHEN condition must be bool, got " +
                                        TypeName(v[i]->type()) +
                                        " (for CASE x WHEN value ... write the x after CASE)");
        }
      }
      if (!UnifyValues(values, value_positions, "CASE", type)) return nullptr;
      return FoldConstants(MakeCase(type, std::move(v), a.has_else));
    }
    // Simple CASE: compare the operand with each WHEN value.
    std::vector<NodePtr> cmp;
    std::vector<size_t> cmp_positions;
    cmp.push_back(std::move(v[0]));
    cmp_positions.push_back(positions[0]);
    for (size_t i = 1; i + 1 < pairs_end; i += 2) {
      cmp.push_back(std::move(v[i]));
      cmp_positions.push_back(positions[i]);
    }
    CmpClass cls = CmpClass::kInt;
    bool all_null = false;
    if (!UnifyCompare(cmp, cmp_positions, a.pos, "in CASE ... WHEN", cls, all_null)) {
      return nullptr;
    }
    v[0] = std::move(cmp[0]);
    for (size_t i = 1, k = 1; i + 1 < pairs_end; i += 2, ++k) v[i] = std::move(cmp[k]);
    if (!UnifyValues(values, value_positions, "CASE", type)) return nullptr;
    return FoldConstants(MakeSimpleCase(type, cls, std::move(v), a.has_else));
  }

  NodePtr BindCast(const Ast& a) {
    NodePtr c = Bind(*a.children[0]);
    if (!c) return nullptr;
    Result<DataType> to = ParseDataType(a.name);
    if (!to.ok()) {
      return Fail(a.pos, "unknown type '" + a.name +
                             "' in CAST (expected string, int64, double, bool, timestamp or "
                             "bytes)");
    }
    DataType from = c->type();
    if (!CanCast(from, *to)) {
      return Fail(a.pos, "cannot CAST " + TypeName(from) + " to " + TypeName(*to));
    }
    if (from == *to) return c;
    if (from == DataType::kNull) return MakeLiteral(Value::Null(), *to);
    return FoldConstants(MakeCast(std::move(c), *to));
  }

  bool CheckArity(const Ast& a, size_t min, size_t max, std::string_view usage) {
    size_t n = a.children.size();
    if (n >= min && n <= max) return true;
    std::string m = a.name + "() takes ";
    if (min == max) {
      m += std::to_string(min);
    } else if (max == SIZE_MAX) {
      m += "at least " + std::to_string(min);
    } else {
      m += std::to_string(min) + " to " + std::to_string(max);
    }
    m += min == 1 && max == 1 ? " argument" : " arguments";
    m += ", got " + std::to_string(n) + "; usage: " + std::string(usage);
    Fail(a.pos, m);
    return false;
  }

  NodePtr UnknownFunction(const Ast& a) {
    if (std::find(kAggregateNames.begin(), kAggregateNames.end(), a.name) !=
        kAggregateNames.end()) {
      std::string m = "aggregate function '" + a.name +
                      "' is not allowed in a scalar expression (aggregates belong in the job "
                      "spec's aggregation)";
      if (a.name == "min" || a.name == "max") {
        m += "; for the smaller or larger of several values use least() or greatest()";
      }
      return Fail(a.pos, m);
    }
    std::vector<std::string_view> names = AllFunctionNames();
    std::vector<std::string_view> close;
    for (std::string_view n : names) {
      size_t d = EditDistance(a.name, n);
      bool prefix = a.name.size() >= 3 && (n.starts_with(a.name) || a.name.starts_with(n));
      if ((d <= 2 && d < a.name.size()) || prefix) close.push_back(n);
    }
    std::string m = "unknown function '" + a.name + "' (";
    m += close.empty() ? "known functions: " : "did you mean: ";
    const std::vector<std::string_view>& list = close.empty() ? names : close;
    for (size_t i = 0; i < list.size(); ++i) {
      if (i) m += ", ";
      m += list[i];
    }
    m += close.empty() ? ")" : "?)";
    return Fail(a.pos, m);
  }

  static bool Accepts(ParamKind k, DataType t) {
    if (t == DataType::kNull) return true;
    switch (k) {
      case ParamKind::kString:
        return t == DataType::kString;
      case ParamKind::kText:
        return t == DataType::kString || t == DataType::kBytes;
      case ParamKind::kNumeric:
        return IsNumeric(t);
      case ParamKind::kInteger:
        return t == DataType::kInt64;
      case ParamKind::kStringOrNumeric:
        return t == DataType::kString || IsNumeric(t);
      case ParamKind::kAny:
        return true;
    }
    return false;
  }

  static std::string_view ParamName(ParamKind k) {
    switch (k) {
      case ParamKind::kString:
        return "string";
      case ParamKind::kText:
        return "string or bytes";
      case ParamKind::kNumeric:
        return "a number";
      case ParamKind::kInteger:
        return "int64";
      case ParamKind::kStringOrNumeric:
        return "string or a number";
      case ParamKind::kAny:
        return "any value";
    }
    return "?";
  }

  NodePtr BindCall(const Ast& a) {
    if (a.name == "if") return BindIf(a);
    if (a.name == "nullif") return BindNullIf(a);
    if (a.name == "coalesce") return BindCoalesce(a);
    if (a.name == "mod") {
      if (!CheckArity(a, 2, 2, "mod(number, number)")) return nullptr;
      NodePtr l = Bind(*a.children[0]);
      if (!l) return nullptr;
      NodePtr r = Bind(*a.children[1]);
      if (!r) return nullptr;
      return BindArith(ArithOp::kMod, "mod()", a.pos, std::move(l), std::move(r));
    }
    const FunctionDef* f = FindFunction(a.name);
    if (!f) return UnknownFunction(a);
    size_t max = f->max_args < 0 ? SIZE_MAX : static_cast<size_t>(f->max_args);
    if (!CheckArity(a, static_cast<size_t>(f->min_args), max, f->signature)) return nullptr;
    std::vector<NodePtr> args;
    std::vector<size_t> positions;
    if (!BindAll(a.children, 0, args, positions)) return nullptr;
    for (size_t i = 0; i < args.size(); ++i) {
      const ParamKind k = f->params[std::min<size_t>(i, 2)];
      if (!Accepts(k, args[i]->type())) {
        return Fail(positions[i], "argument " + std::to_string(i + 1) + " of " + a.name +
                                      "() must be " + std::string(ParamName(k)) + ", got " +
                                      TypeName(args[i]->type()) +
                                      "; usage: " + std::string(f->signature));
      }
    }
    DataType type = DataType::kString;
    switch (f->ret) {
      case ReturnKind::kString:
        type = DataType::kString;
        break;
      case ReturnKind::kInt64:
        type = DataType::kInt64;
        break;
      case ReturnKind::kDouble:
        type = DataType::kDouble;
        break;
      case ReturnKind::kBool:
        type = DataType::kBool;
        break;
      case ReturnKind::kTimestamp:
        type = DataType::kTimestamp;
        break;
      case ReturnKind::kSameNumeric:
        type = args[0]->type() == DataType::kDouble ? DataType::kDouble : DataType::kInt64;
        break;
      case ReturnKind::kUnifyOrdered: {
        std::vector<NodePtr*> ptrs;
        ptrs.reserve(args.size());
        for (NodePtr& n : args) ptrs.push_back(&n);
        if (!UnifyValues(ptrs, positions, a.name + "()", type)) return nullptr;
        break;
      }
    }
    return FoldConstants(MakeCall(type, f->fn, f->null_propagating, std::move(args)));
  }

  NodePtr BindIf(const Ast& a) {
    if (!CheckArity(a, 3, 3, "if(condition, value if true, value otherwise)")) return nullptr;
    std::vector<NodePtr> v;
    std::vector<size_t> positions;
    if (!BindAll(a.children, 0, v, positions)) return nullptr;
    if (!IsBoolOrNull(v[0]->type())) {
      return Fail(positions[0],
                  "the condition of if() must be bool, got " + TypeName(v[0]->type()));
    }
    DataType type = DataType::kNull;
    if (!UnifyValues({&v[1], &v[2]}, {positions[1], positions[2]}, "if()", type)) {
      return nullptr;
    }
    return FoldConstants(MakeCase(type, std::move(v), /*has_else=*/true));
  }

  NodePtr BindNullIf(const Ast& a) {
    if (!CheckArity(a, 2, 2, "nullif(value, value)")) return nullptr;
    NodePtr x = Bind(*a.children[0]);
    if (!x) return nullptr;
    NodePtr y = Bind(*a.children[1]);
    if (!y) return nullptr;
    DataType type = x->type();
    if (type == DataType::kNull) return MakeLiteral(Value::Null(), DataType::kNull);
    NodePtr eq = BindCompare(CmpOp::kEq, "nullif()", a.pos, x->Clone(), std::move(y),
                             {a.children[0]->begin, a.children[1]->begin});
    if (!eq) return nullptr;
    std::vector<NodePtr> v;
    v.push_back(std::move(eq));
    v.push_back(MakeLiteral(Value::Null(), type));
    v.push_back(std::move(x));
    return FoldConstants(MakeCase(type, std::move(v), /*has_else=*/true));
  }

  NodePtr BindCoalesce(const Ast& a) {
    if (!CheckArity(a, 1, SIZE_MAX, "coalesce(value, ...)")) return nullptr;
    std::vector<NodePtr> v;
    std::vector<size_t> positions;
    if (!BindAll(a.children, 0, v, positions)) return nullptr;
    std::vector<NodePtr*> ptrs;
    ptrs.reserve(v.size());
    for (NodePtr& n : v) ptrs.push_back(&n);
    DataType type = DataType::kNull;
    if (!UnifyValues(ptrs, positions, "coalesce()", type)) return nullptr;
    return FoldConstants(MakeCoalesce(type, std::move(v)));
  }

  std::string_view text_;
  const Schema& schema_;
  std::vector<std::string>& fields_;
  Status error_;
};

}  // namespace

Result<NodePtr> Bind(std::string_view text, const Schema& schema, const Ast& ast,
                     std::vector<std::string>& referenced_fields) {
  return Binder(text, schema, referenced_fields).Run(ast);
}

}  // namespace eddy::expr
