#pragma once

// The job spec's expression language: filters, projections, key selectors and aggregate arguments.
// User reference with examples: docs/expressions.md. Summary:
//
// Literals      42 (int64), 3.5 / 1e-3 (double), 'text' or "text" (backslash escapes \n \t \r \0
//               \\ \' \" \` \uXXXX; other escapes keep the backslash; '' inside '...' is a quote),
//               true, false, null. Durations are not literals (write milliseconds: ts + 60000).
// Fields        temperature, sensor_id: [A-Za-z_][A-Za-z0-9_]*, case-sensitive; `odd name` in
//               backticks for any other name or a reserved word (`` is a backtick inside).
// Precedence    (highest first)
//                 unary - +
//                 * / %
//                 + -                    (+ with a string operand concatenates text)
//                 = == != <> < <= > >=, IS [NOT] NULL, [NOT] IN (a, ...), [NOT] BETWEEN a AND b,
//                 [NOT] LIKE 'pat'       (% any run, _ one character, \ escapes the next one)
//                 NOT !                  (SQL placement: NOT a = b means NOT (a = b))
//                 AND &&
//                 OR ||
//               Keywords and function names are case-insensitive.
// Conditional   CASE WHEN c THEN v [WHEN ...] [ELSE v] END, CASE x WHEN a THEN v ... END,
//               if(c, a, b), coalesce(...), nullif(a, b)
// Conversions   CAST(x AS string|int64|int|bigint|long|double|float|bool|boolean|timestamp|bytes);
//               an unconvertible value (CAST('abc' AS int)) yields null.
// Functions     lower upper length char_length substr substring trim ltrim rtrim concat starts_with
//               ends_with contains replace split_part abs floor ceil round sqrt power pow ln exp
//               mod least greatest coalesce if nullif to_string to_timestamp hash
//
// Semantics
// - Static typing: every expression has a type fixed at compile time from the Schema; type errors
//   (comparing a string with a number, NOT of a number, unknown field or function) are compile
//   errors that name the 1-based column.
// - int64 op int64 -> int64; division truncates toward zero (Java/SQL); integer overflow wraps
//   around in two's complement like Java's long (never undefined behaviour). Any double operand
//   makes the result double. Timestamps are epoch milliseconds: timestamp +/- int64 -> timestamp,
//   every other arithmetic on a timestamp -> int64. x / 0 and x % 0 yield null (also for doubles).
// - Null propagates through arithmetic, comparisons and functions (except coalesce, if, nullif,
//   hash and IS NULL); AND/OR/NOT follow SQL three-valued logic; a filter keeps only true.
// - Text conversion (concatenation, CAST AS string, to_string): doubles print like Java (35.8,
//   1.0), timestamps as ISO-8601 UTC (2019-01-17T09:43:19Z, with .SSS when not whole seconds).
// - Row values whose type differs from the Schema are converted like CAST; a field missing from
//   a short Row reads as null. Evaluation never fails and never throws.
// - Nesting is limited to 256 levels (operators chained left to right count as nesting).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/row.h"
#include "eddy/status.h"
#include "eddy/value.h"

namespace eddy {

/// A compiled expression bound to one input Schema.
///
/// Lifecycle: built by CompileExpression (or ParseAggregateCall), immutable afterwards except for
/// per-node scratch Values. Threading: one thread at a time per instance; Clone() gives an
/// independent copy for another thread. Evaluation of numeric and boolean expressions does not
/// allocate; string results reuse the capacity of the scratch Values.
class Expression {
 public:
  virtual ~Expression() = default;

  /// The static result type; kNull only for the literal null (and expressions folded to it).
  virtual DataType result_type() const = 0;
  /// The source text it was compiled from.
  virtual const std::string& text() const = 0;
  /// Evaluates against `row` into `out` (reusing out's string capacity). Always returns Ok: rows
  /// of the wrong arity or with wrongly typed values evaluate (to null where nothing else makes
  /// sense) instead of failing.
  virtual Status Eval(const Row& row, Value& out) = 0;
  /// Evaluates without copying: the reference stays valid until the next evaluation of this
  /// instance or until `row` changes (it may point into `row`).
  virtual const Value& EvalRef(const Row& row) = 0;
  /// Eval then truthiness: true only for boolean true (null and false are false).
  bool EvalBool(const Row& row) {
    const Value& v = EvalRef(row);
    return v.type() == DataType::kBool && v.bool_value();
  }
  virtual std::unique_ptr<Expression> Clone() const = 0;
  /// Names of the input fields referenced, in order of first appearance, without duplicates.
  virtual std::vector<std::string> referenced_fields() const = 0;
  /// If the whole expression is just a field reference, its index in the Schema; else -1.
  virtual int field_index() const = 0;
};

/// Compiles `text` against `schema`. Errors are Status::InvalidArgument with a message naming the
/// expression, the 1-based column and what is wrong, e.g.
///   "expression 'temprature > 30', column 1: unknown field 'temprature' (fields: id, ts,
///   temperature)".
Result<std::unique_ptr<Expression>> CompileExpression(std::string_view text, const Schema& schema);

/// An aggregate call as written in the job spec: "count()", "avg(temperature)",
/// "count(distinct id)", "max(temperature * 2)", "listagg(ts)", "minBy(temperature)".
/// `name` is lower-cased; `args` are compiled against the schema (each arg's text() is its own
/// source text); `count(*)` and `count()` have no args. Whether the name is a known aggregate and
/// takes that many arguments is for the aggregation operator to check.
struct AggregateCall {
  std::string name;
  bool distinct = false;
  std::vector<std::unique_ptr<Expression>> args;
};

/// Parses `name([distinct] [* | arg, ...])`. `*` is accepted only as count(*). Errors as for
/// CompileExpression, with columns counted in `text`.
Result<AggregateCall> ParseAggregateCall(std::string_view text, const Schema& schema);

}  // namespace eddy
