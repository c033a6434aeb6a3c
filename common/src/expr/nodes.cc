#include "common/src/expr/nodes.h"

#include <cmath>
#include <string>
#include <string_view>
#include <utility>

#include "common/src/expr/value_ops.h"

namespace eddy::expr {

Node::Node(const Node& other) : type_(other.type_), result_(other.result_) {
  children_.reserve(other.children_.size());
  for (const NodePtr& c : other.children_) children_.push_back(c->Clone());
}

namespace {

template <class... P>
std::vector<NodePtr> Vec(P&&... p) {
  std::vector<NodePtr> v;
  v.reserve(sizeof...(p));
  (v.push_back(std::forward<P>(p)), ...);
  return v;
}

/// Gives every concrete node a Clone() through its (deep-copying) copy constructor.
template <class Derived>
class NodeImpl : public Node {
 public:
  using Node::Node;
  NodePtr Clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
};

/// Reads field `index` of `row`, converting a value whose type disagrees with the schema like
/// CAST (into `scratch`); a missing field reads as null.
inline const Value& ReadField(const Row& row, size_t index, DataType type, Value& scratch) {
  if (index < row.size()) [[likely]] {
    const Value& v = row.Get(index);
    if (v.type() == type || v.is_null()) [[likely]] {
      return v;
    }
    CastValue(v, type, scratch);
    return scratch;
  }
  scratch.SetNull();
  return scratch;
}

/// Where a binary node reads an operand: by evaluating its child, straight from the Row (the
/// child is a field reference) or from a copy of a constant (the child is a literal). The last
/// two save a virtual call per operand on the hot path.
enum class Src : uint8_t { kNode, kField, kConst };

/// Per-operand state for Src::kField and Src::kConst.
struct Operand {
  size_t field_index = 0;
  DataType type = DataType::kNull;
  Value value;  ///< the constant, or scratch for converting a mistyped field
};

/// Base of nodes with two operands read through Src policies. The children stay in children_
/// (for Clone, folding and inspection) even when they are bypassed.
template <class Derived, Src kL, Src kR>
class BinaryNode : public NodeImpl<Derived> {
 public:
  BinaryNode(DataType type, std::vector<NodePtr> children)
      : NodeImpl<Derived>(type, std::move(children)) {
    Init<kL>(0);
    Init<kR>(1);
  }

 protected:
  const Value& Left(const Row& row) { return Read<kL>(0, row); }
  const Value& Right(const Row& row) { return Read<kR>(1, row); }

 private:
  template <Src kSrc>
  void Init(size_t i) {
    Node& c = *this->children_[i];
    if constexpr (kSrc == Src::kField) {
      ops_[i].field_index = static_cast<size_t>(c.field_index());
      ops_[i].type = c.type();
    } else if constexpr (kSrc == Src::kConst) {
      CopyValue(c.Eval(Row()), ops_[i].value);
    }
  }
  template <Src kSrc>
  const Value& Read(size_t i, const Row& row) {
    if constexpr (kSrc == Src::kConst) {
      return ops_[i].value;
    } else if constexpr (kSrc == Src::kField) {
      return ReadField(row, ops_[i].field_index, ops_[i].type, ops_[i].value);
    } else {
      return this->children_[i]->Eval(row);
    }
  }

  Operand ops_[2];
};

/// Calls `f.template operator()<kL, kR>()` with the operand sources that suit `a` and `b`.
template <class F>
NodePtr DispatchSources(const NodePtr& a, const NodePtr& b, F&& f) {
  bool left_field = a->field_index() >= 0;
  bool right_const = b->is_literal();
  if (left_field && right_const) return f.template operator()<Src::kField, Src::kConst>();
  if (left_field) return f.template operator()<Src::kField, Src::kNode>();
  if (right_const) return f.template operator()<Src::kNode, Src::kConst>();
  return f.template operator()<Src::kNode, Src::kNode>();
}

// ---------------------------------------------------------------------------------------------
// Leaves and conversions

class LiteralNode final : public NodeImpl<LiteralNode> {
 public:
  LiteralNode(const Value& v, DataType type) : NodeImpl(type, {}) { CopyValue(v, result_); }
  const Value& Eval(const Row&) override { return result_; }
  bool is_literal() const override { return true; }
};

class FieldNode final : public NodeImpl<FieldNode> {
 public:
  FieldNode(int index, DataType type) : NodeImpl(type, {}), index_(static_cast<size_t>(index)) {}
  const Value& Eval(const Row& row) override { return ReadField(row, index_, type_, result_); }
  int field_index() const override { return static_cast<int>(index_); }

 private:
  size_t index_;
};

class CastNode final : public NodeImpl<CastNode> {
 public:
  using NodeImpl::NodeImpl;
  const Value& Eval(const Row& row) override {
    const Value& v = children_[0]->Eval(row);
    if (v.is_null()) return ResultNull();
    CastValue(v, type_, result_);
    return result_;
  }
};

// ---------------------------------------------------------------------------------------------
// Arithmetic

template <bool kDouble>
class NegateNode final : public NodeImpl<NegateNode<kDouble>> {
 public:
  using NodeImpl<NegateNode<kDouble>>::NodeImpl;
  const Value& Eval(const Row& row) override {
    const Value& v = this->children_[0]->Eval(row);
    if (v.is_null()) return this->ResultNull();
    if constexpr (kDouble) {
      this->result_.SetDouble(-v.double_value());
    } else {
      int64_t r = 0;
      (void)__builtin_sub_overflow(int64_t{0}, v.int_value(), &r);  // wraps like Java
      this->result_.SetInt(r);
    }
    return this->result_;
  }
};

/// Java semantics: +, -, * wrap around; / truncates; MIN / -1 == MIN; x % -1 == 0.
/// Returns false (null result) for division or modulo by zero.
template <ArithOp kOp>
bool IntArith(int64_t a, int64_t b, int64_t& r) {
  if constexpr (kOp == ArithOp::kAdd) {
    (void)__builtin_add_overflow(a, b, &r);
  } else if constexpr (kOp == ArithOp::kSub) {
    (void)__builtin_sub_overflow(a, b, &r);
  } else if constexpr (kOp == ArithOp::kMul) {
    (void)__builtin_mul_overflow(a, b, &r);
  } else if constexpr (kOp == ArithOp::kDiv) {
    if (b == 0) return false;
    if (b == -1) {
      (void)__builtin_sub_overflow(int64_t{0}, a, &r);
    } else {
      r = a / b;
    }
  } else {
    if (b == 0) return false;
    r = b == -1 ? 0 : a % b;
  }
  return true;
}

template <ArithOp kOp>
bool DoubleArith(double a, double b, double& r) {
  if constexpr (kOp == ArithOp::kAdd) {
    r = a + b;
  } else if constexpr (kOp == ArithOp::kSub) {
    r = a - b;
  } else if constexpr (kOp == ArithOp::kMul) {
    r = a * b;
  } else if constexpr (kOp == ArithOp::kDiv) {
    if (b == 0.0) return false;
    r = a / b;
  } else {
    if (b == 0.0) return false;
    r = std::fmod(a, b);
  }
  return true;
}

template <ArithOp kOp, bool kDouble, Src kL, Src kR>
class ArithNode final : public BinaryNode<ArithNode<kOp, kDouble, kL, kR>, kL, kR> {
 public:
  using BinaryNode<ArithNode<kOp, kDouble, kL, kR>, kL, kR>::BinaryNode;
  const Value& Eval(const Row& row) override {
    const Value& a = this->Left(row);
    if (a.is_null()) return this->ResultNull();
    const Value& b = this->Right(row);
    if (b.is_null()) return this->ResultNull();
    if constexpr (kDouble) {
      double r = 0;
      if (!DoubleArith<kOp>(a.double_value(), b.double_value(), r)) return this->ResultNull();
      this->result_.SetDouble(r);
    } else {
      int64_t r = 0;
      if (!IntArith<kOp>(a.int_value(), b.int_value(), r)) return this->ResultNull();
      if (this->type_ == DataType::kTimestamp) {
        this->result_.SetTimestamp(r);
      } else {
        this->result_.SetInt(r);
      }
    }
    return this->result_;
  }
};

template <ArithOp kOp>
NodePtr MakeArithFor(DataType type, NodePtr a, NodePtr b) {
  if constexpr (kOp == ArithOp::kAdd || kOp == ArithOp::kMul) {
    if (a->is_literal() && !b->is_literal()) std::swap(a, b);  // commutative: constant right
  }
  return DispatchSources(a, b, [&]<Src kL, Src kR>() -> NodePtr {
    if (type == DataType::kDouble) {
      return std::make_unique<ArithNode<kOp, true, kL, kR>>(type, Vec(std::move(a), std::move(b)));
    }
    return std::make_unique<ArithNode<kOp, false, kL, kR>>(type, Vec(std::move(a), std::move(b)));
  });
}

class ConcatNode final : public NodeImpl<ConcatNode> {
 public:
  using NodeImpl::NodeImpl;
  const Value& Eval(const Row& row) override {
    const Value& a = children_[0]->Eval(row);
    if (a.is_null()) return ResultNull();
    const Value& b = children_[1]->Eval(row);
    if (b.is_null()) return ResultNull();
    std::string& s = result_.MutableString();
    s.clear();
    AppendText(a, s);
    AppendText(b, s);
    return result_;
  }
};

// ---------------------------------------------------------------------------------------------
// Comparisons

template <CmpClass kCls>
auto Get(const Value& v) {
  if constexpr (kCls == CmpClass::kInt) {
    return v.int_value();
  } else if constexpr (kCls == CmpClass::kDouble) {
    return v.double_value();
  } else if constexpr (kCls == CmpClass::kText) {
    return std::string_view(v.string_value());
  } else {
    return v.bool_value();
  }
}

template <CmpOp kOp, class T>
bool Apply(const T& a, const T& b) {
  if constexpr (kOp == CmpOp::kEq) return a == b;
  if constexpr (kOp == CmpOp::kNe) return a != b;
  if constexpr (kOp == CmpOp::kLt) return a < b;
  if constexpr (kOp == CmpOp::kLe) return a <= b;
  if constexpr (kOp == CmpOp::kGt) return a > b;
  if constexpr (kOp == CmpOp::kGe) return a >= b;
}

/// -1, 0 or 1; 2 when unordered (a NaN is involved).
int Compare3(CmpClass cls, const Value& a, const Value& b) {
  switch (cls) {
    case CmpClass::kInt: {
      int64_t x = a.int_value(), y = b.int_value();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case CmpClass::kDouble: {
      double x = a.double_value(), y = b.double_value();
      if (x < y) return -1;
      if (x > y) return 1;
      return x == y ? 0 : 2;
    }
    case CmpClass::kText: {
      int c = a.string_value().compare(b.string_value());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case CmpClass::kBool:
      return static_cast<int>(a.bool_value()) - static_cast<int>(b.bool_value());
  }
  return 2;
}

template <CmpOp kOp, CmpClass kCls, Src kL, Src kR>
class CompareNode final : public BinaryNode<CompareNode<kOp, kCls, kL, kR>, kL, kR> {
 public:
  using BinaryNode<CompareNode<kOp, kCls, kL, kR>, kL, kR>::BinaryNode;
  const Value& Eval(const Row& row) override {
    const Value& a = this->Left(row);
    if (a.is_null()) return this->ResultNull();
    const Value& b = this->Right(row);
    if (b.is_null()) return this->ResultNull();
    return this->ResultBool(Apply<kOp>(Get<kCls>(a), Get<kCls>(b)));
  }
};

template <CmpOp kOp, CmpClass kCls>
NodePtr MakeCompareNode(NodePtr a, NodePtr b) {
  return DispatchSources(a, b, [&]<Src kL, Src kR>() -> NodePtr {
    return std::make_unique<CompareNode<kOp, kCls, kL, kR>>(DataType::kBool,
                                                            Vec(std::move(a), std::move(b)));
  });
}

/// The operator that gives the same result with the operands swapped.
CmpOp Mirror(CmpOp op) {
  switch (op) {
    case CmpOp::kLt:
      return CmpOp::kGt;
    case CmpOp::kLe:
      return CmpOp::kGe;
    case CmpOp::kGt:
      return CmpOp::kLt;
    case CmpOp::kGe:
      return CmpOp::kLe;
    default:
      return op;
  }
}

template <CmpClass kCls>
NodePtr MakeCompareFor(CmpOp op, NodePtr a, NodePtr b) {
  if (a->is_literal() && !b->is_literal()) {  // 30 < x  ==>  x > 30: constant on the right
    std::swap(a, b);
    op = Mirror(op);
  }
  switch (op) {
    case CmpOp::kEq:
      return MakeCompareNode<CmpOp::kEq, kCls>(std::move(a), std::move(b));
    case CmpOp::kNe:
      return MakeCompareNode<CmpOp::kNe, kCls>(std::move(a), std::move(b));
    case CmpOp::kLt:
      return MakeCompareNode<CmpOp::kLt, kCls>(std::move(a), std::move(b));
    case CmpOp::kLe:
      return MakeCompareNode<CmpOp::kLe, kCls>(std::move(a), std::move(b));
    case CmpOp::kGt:
      return MakeCompareNode<CmpOp::kGt, kCls>(std::move(a), std::move(b));
    case CmpOp::kGe:
      return MakeCompareNode<CmpOp::kGe, kCls>(std::move(a), std::move(b));
  }
  return nullptr;
}

class InNode final : public NodeImpl<InNode> {
 public:
  InNode(CmpClass cls, std::vector<NodePtr> children, bool negated)
      : NodeImpl(DataType::kBool, std::move(children)), cls_(cls), negated_(negated) {}
  const Value& Eval(const Row& row) override {
    const Value& x = children_[0]->Eval(row);
    if (x.is_null()) return ResultNull();
    bool saw_null = false;
    for (size_t i = 1; i < children_.size(); ++i) {
      const Value& v = children_[i]->Eval(row);
      if (v.is_null()) {
        saw_null = true;
      } else if (Compare3(cls_, x, v) == 0) {
        return ResultBool(!negated_);
      }
    }
    if (saw_null) return ResultNull();  // x might equal the unknown value
    return ResultBool(negated_);
  }

 private:
  CmpClass cls_;
  bool negated_;
};

class BetweenNode final : public NodeImpl<BetweenNode> {
 public:
  BetweenNode(CmpClass cls, std::vector<NodePtr> children, bool negated)
      : NodeImpl(DataType::kBool, std::move(children)), cls_(cls), negated_(negated) {}
  const Value& Eval(const Row& row) override {
    const Value& x = children_[0]->Eval(row);
    if (x.is_null()) return ResultNull();
    const Value& lo = children_[1]->Eval(row);
    const Value& hi = children_[2]->Eval(row);
    // Three-valued: 0 false, 1 true, 2 unknown.
    int ge = 2, le = 2;
    if (!lo.is_null()) {
      int c = Compare3(cls_, x, lo);
      ge = c == 0 || c == 1 ? 1 : 0;
    }
    if (!hi.is_null()) {
      int c = Compare3(cls_, x, hi);
      le = c == 0 || c == -1 ? 1 : 0;
    }
    if (ge == 0 || le == 0) return ResultBool(negated_);
    if (ge == 2 || le == 2) return ResultNull();
    return ResultBool(!negated_);
  }

 private:
  CmpClass cls_;
  bool negated_;
};

class LikeNode final : public NodeImpl<LikeNode> {
 public:
  LikeNode(std::vector<NodePtr> children, bool negated)
      : NodeImpl(DataType::kBool, std::move(children)), negated_(negated) {
    if (children_[1]->is_literal()) Analyze(children_[1]->Eval(Row()));
  }
  const Value& Eval(const Row& row) override {
    const Value& s = children_[0]->Eval(row);
    if (s.is_null()) return ResultNull();
    std::string_view str = s.string_value();
    bool match = false;
    switch (shape_) {
      case Shape::kExact:
        match = str == core_;
        break;
      case Shape::kPrefix:
        match = str.starts_with(core_);
        break;
      case Shape::kSuffix:
        match = str.ends_with(core_);
        break;
      case Shape::kContains:
        match = str.find(core_) != std::string_view::npos;
        break;
      case Shape::kGeneral: {
        const Value& p = children_[1]->Eval(row);
        if (p.is_null()) return ResultNull();
        match = LikeMatch(str, p.string_value());
        break;
      }
    }
    return ResultBool(match != negated_);
  }

 private:
  /// Constant patterns without '_' or '\' and with '%' only at the ends need no matcher.
  enum class Shape : uint8_t { kGeneral, kExact, kPrefix, kSuffix, kContains };

  void Analyze(const Value& pattern) {
    if (pattern.type() != DataType::kString) return;
    std::string_view p = pattern.string_value();
    if (p.find_first_of("_\\") != std::string_view::npos) return;
    bool lead = p.starts_with('%');
    while (p.starts_with('%')) p.remove_prefix(1);
    bool trail = p.ends_with('%');
    while (p.ends_with('%')) p.remove_suffix(1);
    if (p.find('%') != std::string_view::npos) return;
    core_ = std::string(p);
    shape_ = lead ? (trail ? Shape::kContains : Shape::kSuffix)
                  : (trail ? Shape::kPrefix : Shape::kExact);
  }

  bool negated_;
  Shape shape_ = Shape::kGeneral;
  std::string core_;
};

// ---------------------------------------------------------------------------------------------
// Logic (SQL three-valued)

class NotNode final : public NodeImpl<NotNode> {
 public:
  using NodeImpl::NodeImpl;
  const Value& Eval(const Row& row) override {
    const Value& v = children_[0]->Eval(row);
    if (v.is_null()) return ResultNull();
    return ResultBool(!v.bool_value());
  }
};

class AndNode final : public NodeImpl<AndNode> {
 public:
  using NodeImpl::NodeImpl;
  const Value& Eval(const Row& row) override {
    const Value& a = children_[0]->Eval(row);
    bool a_null = a.is_null();
    if (!a_null && !a.bool_value()) return ResultBool(false);
    const Value& b = children_[1]->Eval(row);
    if (!b.is_null() && !b.bool_value()) return ResultBool(false);
    if (a_null || b.is_null()) return ResultNull();
    return ResultBool(true);
  }
};

class OrNode final : public NodeImpl<OrNode> {
 public:
  using NodeImpl::NodeImpl;
  const Value& Eval(const Row& row) override {
    const Value& a = children_[0]->Eval(row);
    bool a_null = a.is_null();
    if (!a_null && a.bool_value()) return ResultBool(true);
    const Value& b = children_[1]->Eval(row);
    if (!b.is_null() && b.bool_value()) return ResultBool(true);
    if (a_null || b.is_null()) return ResultNull();
    return ResultBool(false);
  }
};

class IsNullNode final : public NodeImpl<IsNullNode> {
 public:
  IsNullNode(std::vector<NodePtr> children, bool negated)
      : NodeImpl(DataType::kBool, std::move(children)), negated_(negated) {}
  const Value& Eval(const Row& row) override {
    return ResultBool(children_[0]->Eval(row).is_null() != negated_);
  }

 private:
  bool negated_;
};

// ---------------------------------------------------------------------------------------------
// Conditionals and calls

class CaseNode final : public NodeImpl<CaseNode> {
 public:
  CaseNode(DataType type, std::vector<NodePtr> children, bool has_else)
      : NodeImpl(type, std::move(children)), has_else_(has_else) {}
  const Value& Eval(const Row& row) override {
    size_t pairs_end = children_.size() - (has_else_ ? 1 : 0);
    for (size_t i = 0; i + 1 < pairs_end; i += 2) {
      const Value& c = children_[i]->Eval(row);
      if (c.type() == DataType::kBool && c.bool_value()) return children_[i + 1]->Eval(row);
    }
    if (has_else_) return children_.back()->Eval(row);
    return ResultNull();
  }

 private:
  bool has_else_;
};

class SimpleCaseNode final : public NodeImpl<SimpleCaseNode> {
 public:
  SimpleCaseNode(DataType type, CmpClass cls, std::vector<NodePtr> children, bool has_else)
      : NodeImpl(type, std::move(children)), cls_(cls), has_else_(has_else) {}
  const Value& Eval(const Row& row) override {
    size_t pairs_end = children_.size() - (has_else_ ? 1 : 0);
    const Value& x = children_[0]->Eval(row);
    if (!x.is_null()) {
      for (size_t i = 1; i + 1 < pairs_end; i += 2) {
        const Value& w = children_[i]->Eval(row);
        if (!w.is_null() && Compare3(cls_, x, w) == 0) return children_[i + 1]->Eval(row);
      }
    }
    if (has_else_) return children_.back()->Eval(row);
    return ResultNull();
  }

 private:
  CmpClass cls_;
  bool has_else_;
};

class CoalesceNode final : public NodeImpl<CoalesceNode> {
 public:
  using NodeImpl::NodeImpl;
  const Value& Eval(const Row& row) override {
    for (const NodePtr& c : children_) {
      const Value& v = c->Eval(row);
      if (!v.is_null()) return v;
    }
    return ResultNull();
  }
};

class CallNode final : public NodeImpl<CallNode> {
 public:
  CallNode(DataType type, ScalarFn fn, bool null_propagating, std::vector<NodePtr> args)
      : NodeImpl(type, std::move(args)),
        fn_(fn),
        null_propagating_(null_propagating),
        args_(children_.size(), nullptr) {}
  const Value& Eval(const Row& row) override {
    for (size_t i = 0; i < children_.size(); ++i) {
      const Value& v = children_[i]->Eval(row);
      if (null_propagating_ && v.is_null()) return ResultNull();
      args_[i] = &v;
    }
    fn_(args_.data(), args_.size(), result_);
    return result_;
  }

 private:
  ScalarFn fn_;
  bool null_propagating_;
  std::vector<const Value*> args_;  ///< scratch: the current argument values
};

}  // namespace

NodePtr MakeLiteral(const Value& v, DataType type) {
  return std::make_unique<LiteralNode>(v, type);
}

NodePtr MakeField(int index, DataType type) {
  return std::make_unique<FieldNode>(index, type);
}

NodePtr MakeCast(NodePtr child, DataType to) {
  return std::make_unique<CastNode>(to, Vec(std::move(child)));
}

NodePtr MakeNegate(NodePtr child) {
  if (child->type() == DataType::kDouble) {
    return std::make_unique<NegateNode<true>>(DataType::kDouble, Vec(std::move(child)));
  }
  return std::make_unique<NegateNode<false>>(DataType::kInt64, Vec(std::move(child)));
}

NodePtr MakeArith(ArithOp op, DataType type, NodePtr a, NodePtr b) {
  switch (op) {
    case ArithOp::kAdd:
      return MakeArithFor<ArithOp::kAdd>(type, std::move(a), std::move(b));
    case ArithOp::kSub:
      return MakeArithFor<ArithOp::kSub>(type, std::move(a), std::move(b));
    case ArithOp::kMul:
      return MakeArithFor<ArithOp::kMul>(type, std::move(a), std::move(b));
    case ArithOp::kDiv:
      return MakeArithFor<ArithOp::kDiv>(type, std::move(a), std::move(b));
    case ArithOp::kMod:
      return MakeArithFor<ArithOp::kMod>(type, std::move(a), std::move(b));
  }
  return nullptr;
}

NodePtr MakeConcat(NodePtr a, NodePtr b) {
  return std::make_unique<ConcatNode>(DataType::kString, Vec(std::move(a), std::move(b)));
}

NodePtr MakeCompare(CmpOp op, CmpClass cls, NodePtr a, NodePtr b) {
  switch (cls) {
    case CmpClass::kInt:
      return MakeCompareFor<CmpClass::kInt>(op, std::move(a), std::move(b));
    case CmpClass::kDouble:
      return MakeCompareFor<CmpClass::kDouble>(op, std::move(a), std::move(b));
    case CmpClass::kText:
      return MakeCompareFor<CmpClass::kText>(op, std::move(a), std::move(b));
    case CmpClass::kBool:
      return MakeCompareFor<CmpClass::kBool>(op, std::move(a), std::move(b));
  }
  return nullptr;
}

NodePtr MakeNot(NodePtr child) {
  return std::make_unique<NotNode>(DataType::kBool, Vec(std::move(child)));
}

NodePtr MakeAnd(NodePtr a, NodePtr b) {
  return std::make_unique<AndNode>(DataType::kBool, Vec(std::move(a), std::move(b)));
}

NodePtr MakeOr(NodePtr a, NodePtr b) {
  return std::make_unique<OrNode>(DataType::kBool, Vec(std::move(a), std::move(b)));
}

NodePtr MakeIsNull(NodePtr child, bool negated) {
  return std::make_unique<IsNullNode>(Vec(std::move(child)), negated);
}

NodePtr MakeIn(CmpClass cls, std::vector<NodePtr> children, bool negated) {
  return std::make_unique<InNode>(cls, std::move(children), negated);
}

NodePtr MakeBetween(CmpClass cls, NodePtr x, NodePtr lo, NodePtr hi, bool negated) {
  return std::make_unique<BetweenNode>(cls, Vec(std::move(x), std::move(lo), std::move(hi)),
                                       negated);
}

NodePtr MakeLike(NodePtr s, NodePtr pattern, bool negated) {
  return std::make_unique<LikeNode>(Vec(std::move(s), std::move(pattern)), negated);
}

NodePtr MakeCase(DataType type, std::vector<NodePtr> children, bool has_else) {
  return std::make_unique<CaseNode>(type, std::move(children), has_else);
}

NodePtr MakeSimpleCase(DataType type, CmpClass cls, std::vector<NodePtr> children, bool has_else) {
  return std::make_unique<SimpleCaseNode>(type, cls, std::move(children), has_else);
}

NodePtr MakeCoalesce(DataType type, std::vector<NodePtr> children) {
  return std::make_unique<CoalesceNode>(type, std::move(children));
}

NodePtr MakeCall(DataType type, ScalarFn fn, bool null_propagating, std::vector<NodePtr> args) {
  return std::make_unique<CallNode>(type, fn, null_propagating, std::move(args));
}

NodePtr FoldConstants(NodePtr node) {
  if (node->is_literal() || node->children().empty()) return node;
  for (const NodePtr& c : node->children()) {
    if (!c->is_literal()) return node;
  }
  Row empty;
  const Value& v = node->Eval(empty);
  return MakeLiteral(v, node->type());
}

}  // namespace eddy::expr
