// CompileExpression and ParseAggregateCall: text -> tokens -> syntax tree -> typed evaluation
// tree, wrapped in the public Expression interface.

#include "common/src/expr/binder.h"
#include "common/src/expr/nodes.h"
#include "common/src/expr/parser.h"
#include "common/src/expr/value_ops.h"
#include "eddy/expr.h"

namespace eddy {
namespace {

/// The one Expression implementation: a typed node tree plus what was learnt while binding.
/// Threading as documented on Expression: one thread at a time; Clone() for another.
class CompiledExpression final : public Expression {
 public:
  CompiledExpression(std::string text, expr::NodePtr root, std::vector<std::string> fields)
      : text_(std::move(text)), root_(std::move(root)), fields_(std::move(fields)) {}

  DataType result_type() const override { return root_->type(); }
  const std::string& text() const override { return text_; }
  Status Eval(const Row& row, Value& out) override {
    expr::CopyValue(root_->Eval(row), out);
    return Status::Ok();
  }
  const Value& EvalRef(const Row& row) override { return root_->Eval(row); }
  std::unique_ptr<Expression> Clone() const override {
    return std::make_unique<CompiledExpression>(text_, root_->Clone(), fields_);
  }
  std::vector<std::string> referenced_fields() const override { return fields_; }
  int field_index() const override { return root_->field_index(); }

 private:
  std::string text_;
  expr::NodePtr root_;
  std::vector<std::string> fields_;
};

}  // namespace

Result<std::unique_ptr<Expression>> CompileExpression(std::string_view text, const Schema& schema) {
  EDDY_ASSIGN_OR_RETURN(expr::AstPtr ast, expr::ParseExpressionText(text));
  std::vector<std::string> fields;
  EDDY_ASSIGN_OR_RETURN(expr::NodePtr root, expr::Bind(text, schema, *ast, fields));
  return std::unique_ptr<Expression>(
      std::make_unique<CompiledExpression>(std::string(text), std::move(root), std::move(fields)));
}

Result<AggregateCall> ParseAggregateCall(std::string_view text, const Schema& schema) {
  EDDY_ASSIGN_OR_RETURN(expr::AggregateAst agg, expr::ParseAggregateText(text));
  AggregateCall call;
  call.name = std::move(agg.name);
  call.distinct = agg.distinct;
  for (const expr::AstPtr& arg : agg.args) {
    std::vector<std::string> fields;
    EDDY_ASSIGN_OR_RETURN(expr::NodePtr root, expr::Bind(text, schema, *arg, fields));
    std::string arg_text(text.substr(arg->begin, arg->end - arg->begin));
    call.args.push_back(std::make_unique<CompiledExpression>(std::move(arg_text), std::move(root),
                                                             std::move(fields)));
  }
  return call;
}

}  // namespace eddy
