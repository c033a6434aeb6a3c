#pragma once

// The evaluation tree. Each node evaluates into its own scratch Value (or returns a reference to
// a child's result or to the Row's value), so evaluating numeric and boolean expressions does not
// allocate. Invariant kept by the Binder: a node's result is null or exactly of its type(); nodes
// of type kNull only produce null.

#include <cstdint>
#include <memory>
#include <vector>

#include "eddy/row.h"
#include "eddy/value.h"

namespace eddy::expr {

class Node;
using NodePtr = std::unique_ptr<Node>;

/// One operator, function call, field or literal. Built once by the Binder, then evaluated many
/// times by one thread at a time; Clone() deep-copies for another thread.
class Node {
 public:
  Node(DataType type, std::vector<NodePtr> children)
      : type_(type), children_(std::move(children)) {}
  virtual ~Node() = default;
  Node& operator=(const Node&) = delete;

  /// The result stays valid until the next Eval of this node (or until `row` changes).
  virtual const Value& Eval(const Row& row) = 0;
  virtual NodePtr Clone() const = 0;
  virtual bool is_literal() const { return false; }
  /// For a field reference, its index; else -1.
  virtual int field_index() const { return -1; }

  DataType type() const { return type_; }
  const std::vector<NodePtr>& children() const { return children_; }

 protected:
  /// Deep copy, for Clone().
  Node(const Node& other);

  const Value& ResultNull() {
    result_.SetNull();
    return result_;
  }
  const Value& ResultBool(bool b) {
    result_.SetBool(b);
    return result_;
  }

  DataType type_;
  std::vector<NodePtr> children_;
  Value result_;  ///< scratch; also the literal's value
};

enum class ArithOp : uint8_t { kAdd, kSub, kMul, kDiv, kMod };
enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
/// How two values of a comparable pair of types are compared: int64/timestamp as int64, double,
/// string/bytes as bytes, bool.
enum class CmpClass : uint8_t { kInt, kDouble, kText, kBool };

/// A scalar function implementation: `args` holds `n` non-null values (when the function
/// propagates nulls) of the types the Binder coerced them to. Writes its result into `out`.
using ScalarFn = void (*)(const Value* const* args, size_t n, Value& out);

NodePtr MakeLiteral(const Value& v, DataType type);
NodePtr MakeField(int index, DataType type);
/// CAST semantics (see CastValue); unconvertible values become null.
NodePtr MakeCast(NodePtr child, DataType to);
/// child is int64/timestamp (result int64) or double.
NodePtr MakeNegate(NodePtr child);
/// `type` is int64 or timestamp (operands int64/timestamp) or double (operands double).
NodePtr MakeArith(ArithOp op, DataType type, NodePtr a, NodePtr b);
/// String concatenation of the text forms of a and b.
NodePtr MakeConcat(NodePtr a, NodePtr b);
NodePtr MakeCompare(CmpOp op, CmpClass cls, NodePtr a, NodePtr b);
NodePtr MakeNot(NodePtr child);
NodePtr MakeAnd(NodePtr a, NodePtr b);
NodePtr MakeOr(NodePtr a, NodePtr b);
NodePtr MakeIsNull(NodePtr child, bool negated);
/// children: x, then the list.
NodePtr MakeIn(CmpClass cls, std::vector<NodePtr> children, bool negated);
NodePtr MakeBetween(CmpClass cls, NodePtr x, NodePtr lo, NodePtr hi, bool negated);
NodePtr MakeLike(NodePtr s, NodePtr pattern, bool negated);
/// children: cond1, value1, cond2, value2, ... [else].
NodePtr MakeCase(DataType type, std::vector<NodePtr> children, bool has_else);
/// children: x, when1, value1, when2, value2, ... [else]; x and the whens compare by `cls`.
NodePtr MakeSimpleCase(DataType type, CmpClass cls, std::vector<NodePtr> children, bool has_else);
NodePtr MakeCoalesce(DataType type, std::vector<NodePtr> children);
NodePtr MakeCall(DataType type, ScalarFn fn, bool null_propagating, std::vector<NodePtr> args);

/// When every child of `node` is a literal, evaluates it once and returns the literal result.
NodePtr FoldConstants(NodePtr node);

}  // namespace eddy::expr
