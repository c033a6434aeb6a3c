#include "eddy/expr.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace eddy {

// Readable failure messages for Value (internal linkage: no clash with other test files).
[[maybe_unused]] static void PrintTo(const Value& v, std::ostream* os) {
  *os << DataTypeName(v.type()) << " " << v.ToString();
}

namespace {

constexpr int64_t kTs = 1547718199000;  // 2019-01-17T09:43:19Z

Schema TestSchema() {
  return Schema({{"id", DataType::kString},
                 {"ts", DataType::kTimestamp},
                 {"temperature", DataType::kDouble},
                 {"n", DataType::kInt64},
                 {"flag", DataType::kBool},
                 {"name", DataType::kString},
                 {"nul", DataType::kInt64},
                 {"raw", DataType::kBytes},
                 {"odd name", DataType::kInt64},
                 {"end", DataType::kString}});
}

Row TestRow() {
  return Row({Value::String("sensor_1"), Value::Time(kTs), Value::Double(35.5), Value::Int(7),
              Value::Bool(true), Value::String("  Hello World  "), Value::Null(),
              Value::Bytes("ab"), Value::Int(3), Value::String("fin")});
}

class ExprTest : public ::testing::Test {
 protected:
  Value Eval(std::string_view text) {
    auto e = CompileExpression(text, schema_);
    if (!e.ok()) {
      ADD_FAILURE() << "compiling '" << text << "': " << e.status().ToString();
      return Value::String("<compile error>");
    }
    Value v;
    Status st = (*e)->Eval(row_, v);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return v;
  }
  DataType TypeOf(std::string_view text) {
    auto e = CompileExpression(text, schema_);
    if (!e.ok()) {
      ADD_FAILURE() << "compiling '" << text << "': " << e.status().ToString();
      return DataType::kNull;
    }
    return (*e)->result_type();
  }
  std::string Error(std::string_view text) {
    auto e = CompileExpression(text, schema_);
    if (e.ok()) {
      ADD_FAILURE() << "'" << text << "' compiled but should not";
      return "";
    }
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    return e.status().message();
  }
  bool IsNull(std::string_view text) { return Eval(text).is_null(); }

  Schema schema_ = TestSchema();
  Row row_ = TestRow();
};

// ---- the job-spec examples ----

TEST_F(ExprTest, JobSpecExamples) {
  EXPECT_DOUBLE_EQ(Eval("temperature * 9 / 5 + 32").double_value(), 95.9);
  EXPECT_EQ(TypeOf("temperature * 9 / 5 + 32"), DataType::kDouble);
  EXPECT_EQ(Eval("ts * 1000"), Value::Int(kTs * 1000));
  EXPECT_EQ(TypeOf("ts * 1000"), DataType::kInt64);
  EXPECT_EQ(Eval("temperature > 30"), Value::Bool(true));
  EXPECT_EQ(Eval("id = 'sensor_1'"), Value::Bool(true));
  EXPECT_EQ(Eval("id = 'sensor_2'"), Value::Bool(false));

  auto e = CompileExpression("temperature > 30", schema_);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE((*e)->EvalBool(row_));
  Row cold = TestRow();
  cold.Set(2, Value::Double(12.0));
  EXPECT_FALSE((*e)->EvalBool(cold));
  cold.Set(2, Value::Null());
  EXPECT_FALSE((*e)->EvalBool(cold));
  EXPECT_EQ((*e)->text(), "temperature > 30");
}

// ---- literals and fields ----

TEST_F(ExprTest, Literals) {
  EXPECT_EQ(Eval("42"), Value::Int(42));
  EXPECT_EQ(Eval("-42"), Value::Int(-42));
  EXPECT_EQ(Eval("9223372036854775807"), Value::Int(INT64_MAX));
  EXPECT_EQ(Eval("-9223372036854775808"), Value::Int(INT64_MIN));
  EXPECT_EQ(Eval("3.5"), Value::Double(3.5));
  EXPECT_EQ(Eval(".5"), Value::Double(0.5));
  EXPECT_EQ(Eval("1e3"), Value::Double(1000.0));
  EXPECT_EQ(Eval("2.5E-1"), Value::Double(0.25));
  EXPECT_EQ(Eval("'it''s'"), Value::String("it's"));
  EXPECT_EQ(Eval("\"double \\\"quoted\\\"\""), Value::String("double \"quoted\""));
  EXPECT_EQ(Eval("'a\\nb\\tc\\\\'"), Value::String("a\nb\tc\\"));
  EXPECT_EQ(Eval("'\\u00e9'"), Value::String("\xC3\xA9"));
  EXPECT_EQ(Eval("'100\\%'"), Value::String("100\\%"));  // unknown escapes keep the backslash
  EXPECT_EQ(Eval("''"), Value::String(""));
  EXPECT_EQ(Eval("true"), Value::Bool(true));
  EXPECT_EQ(Eval("FALSE"), Value::Bool(false));
  EXPECT_TRUE(IsNull("null"));
  EXPECT_TRUE(IsNull("NULL"));
  EXPECT_EQ(TypeOf("null"), DataType::kNull);
  EXPECT_EQ(TypeOf("42"), DataType::kInt64);
  EXPECT_EQ(TypeOf("4.2"), DataType::kDouble);
  EXPECT_EQ(TypeOf("'x'"), DataType::kString);
  EXPECT_EQ(TypeOf("true"), DataType::kBool);
}

TEST_F(ExprTest, FieldReferences) {
  EXPECT_EQ(Eval("id"), Value::String("sensor_1"));
  EXPECT_EQ(Eval("ts"), Value::Time(kTs));
  EXPECT_EQ(Eval("`odd name` + 1"), Value::Int(4));
  EXPECT_EQ(Eval("`end`"), Value::String("fin"));
  EXPECT_EQ(TypeOf("ts"), DataType::kTimestamp);
  EXPECT_EQ(TypeOf("raw"), DataType::kBytes);

  auto e = CompileExpression("temperature", schema_);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->field_index(), 2);
  EXPECT_EQ((*e)->referenced_fields(), std::vector<std::string>{"temperature"});

  auto e2 = CompileExpression("(temperature)", schema_);
  ASSERT_TRUE(e2.ok());
  EXPECT_EQ((*e2)->field_index(), 2);

  auto e3 = CompileExpression("n + temperature * n - `odd name`", schema_);
  ASSERT_TRUE(e3.ok());
  EXPECT_EQ((*e3)->field_index(), -1);
  EXPECT_EQ((*e3)->referenced_fields(), (std::vector<std::string>{"n", "temperature", "odd name"}));

  EXPECT_NE(Error("Temperature > 1").find("unknown field 'Temperature'"), std::string::npos);
}

// ---- arithmetic ----

TEST_F(ExprTest, IntegerArithmetic) {
  EXPECT_EQ(Eval("n + 3"), Value::Int(10));
  EXPECT_EQ(Eval("n - 10"), Value::Int(-3));
  EXPECT_EQ(Eval("n * 6"), Value::Int(42));
  EXPECT_EQ(Eval("n / 2"), Value::Int(3));
  EXPECT_EQ(Eval("-7 / 2"), Value::Int(-3));  // truncates toward zero
  EXPECT_EQ(Eval("n % 4"), Value::Int(3));
  EXPECT_EQ(Eval("-7 % 2"), Value::Int(-1));
  EXPECT_EQ(Eval("7 % -2"), Value::Int(1));
  EXPECT_EQ(Eval("-n"), Value::Int(-7));
  EXPECT_EQ(Eval("+n"), Value::Int(7));
  EXPECT_EQ(Eval("- -n"), Value::Int(7));
  EXPECT_EQ(TypeOf("n / 2"), DataType::kInt64);
}

TEST_F(ExprTest, DoubleArithmetic) {
  EXPECT_EQ(Eval("temperature + 1"), Value::Double(36.5));
  EXPECT_EQ(Eval("n / 2.0"), Value::Double(3.5));
  EXPECT_EQ(Eval("7.5 % 2"), Value::Double(1.5));
  EXPECT_EQ(Eval("-temperature"), Value::Double(-35.5));
  EXPECT_EQ(TypeOf("n * 1.0"), DataType::kDouble);
  EXPECT_EQ(TypeOf("ts + 0.5"), DataType::kDouble);
}

TEST_F(ExprTest, DivisionByZeroIsNull) {
  EXPECT_TRUE(IsNull("n / 0"));
  EXPECT_TRUE(IsNull("n % 0"));
  EXPECT_TRUE(IsNull("temperature / 0"));
  EXPECT_TRUE(IsNull("temperature / 0.0"));
  EXPECT_TRUE(IsNull("temperature % 0"));
  EXPECT_TRUE(IsNull("mod(n, 0)"));
  EXPECT_TRUE(IsNull("1 / (n - 7)"));
}

TEST_F(ExprTest, IntegerOverflowWrapsLikeJava) {
  EXPECT_EQ(Eval("9223372036854775807 + 1"), Value::Int(INT64_MIN));
  EXPECT_EQ(Eval("-9223372036854775808 - 1"), Value::Int(INT64_MAX));
  EXPECT_EQ(Eval("9223372036854775807 * 2"), Value::Int(-2));
  EXPECT_EQ(Eval("-9223372036854775808 / -1"), Value::Int(INT64_MIN));
  EXPECT_EQ(Eval("-9223372036854775808 % -1"), Value::Int(0));
  EXPECT_EQ(Eval("-(-9223372036854775808)"), Value::Int(INT64_MIN));
  EXPECT_EQ(Eval("abs(-9223372036854775808)"), Value::Int(INT64_MIN));
  Row r = TestRow();
  r.Set(3, Value::Int(INT64_MAX));
  auto e = CompileExpression("n * n + n", schema_);
  ASSERT_TRUE(e.ok());
  Value v;
  ASSERT_TRUE((*e)->Eval(r, v).ok());
  EXPECT_EQ(v, Value::Int(static_cast<int64_t>(static_cast<uint64_t>(INT64_MAX) *
                                                   static_cast<uint64_t>(INT64_MAX) +
                                               static_cast<uint64_t>(INT64_MAX))));
}

TEST_F(ExprTest, TimestampArithmetic) {
  EXPECT_EQ(Eval("ts + 1000"), Value::Time(kTs + 1000));
  EXPECT_EQ(Eval("1000 + ts"), Value::Time(kTs + 1000));
  EXPECT_EQ(Eval("ts - 60000"), Value::Time(kTs - 60000));
  EXPECT_EQ(Eval("ts - ts"), Value::Int(0));
  EXPECT_EQ(Eval("ts / 1000"), Value::Int(kTs / 1000));
  EXPECT_EQ(Eval("ts % 1000"), Value::Int(0));
  EXPECT_EQ(TypeOf("ts + 1"), DataType::kTimestamp);
  EXPECT_EQ(TypeOf("ts - ts"), DataType::kInt64);
  EXPECT_EQ(TypeOf("-ts"), DataType::kInt64);
}

TEST_F(ExprTest, PlusWithStringConcatenates) {
  EXPECT_EQ(Eval("'a' + 'b'"), Value::String("ab"));
  EXPECT_EQ(Eval("id + '-' + n"), Value::String("sensor_1-7"));
  EXPECT_EQ(Eval("'t=' + temperature"), Value::String("t=35.5"));
  EXPECT_EQ(Eval("'x' + 1.0"), Value::String("x1.0"));
  EXPECT_EQ(Eval("flag + '!'"), Value::String("true!"));
  EXPECT_EQ(Eval("'at ' + ts"), Value::String("at 2019-01-17T09:43:19Z"));
  EXPECT_EQ(Eval("1 + 2 + 'x'"), Value::String("3x"));  // left to right
  EXPECT_EQ(Eval("'x' + 1 + 2"), Value::String("x12"));
  EXPECT_TRUE(IsNull("'x' + nul"));
  EXPECT_EQ(TypeOf("'x' + n"), DataType::kString);
}

// ---- precedence ----

TEST_F(ExprTest, Precedence) {
  EXPECT_EQ(Eval("1 + 2 * 3"), Value::Int(7));
  EXPECT_EQ(Eval("(1 + 2) * 3"), Value::Int(9));
  EXPECT_EQ(Eval("10 - 4 - 3"), Value::Int(3));
  EXPECT_EQ(Eval("100 / 10 / 5"), Value::Int(2));
  EXPECT_EQ(Eval("2 * 3 % 4"), Value::Int(2));
  EXPECT_EQ(Eval("-2 * 3"), Value::Int(-6));
  EXPECT_EQ(Eval("-(2 + 3) * 2"), Value::Int(-10));
  EXPECT_EQ(Eval("1 + 2 = 3"), Value::Bool(true));
  EXPECT_EQ(Eval("1 < 2 = true"), Value::Bool(true));
  EXPECT_EQ(Eval("true or false and false"), Value::Bool(true));
  EXPECT_EQ(Eval("(true or false) and false"), Value::Bool(false));
  EXPECT_EQ(Eval("true || false && false"), Value::Bool(true));
  EXPECT_EQ(Eval("not false and false"), Value::Bool(false));
  EXPECT_EQ(Eval("not 1 = 2"), Value::Bool(true));  // NOT (1 = 2)
  EXPECT_EQ(Eval("!flag or n > 5"), Value::Bool(true));
  EXPECT_EQ(Eval("n > 5 and temperature < 40 or id = 'x'"), Value::Bool(true));
  EXPECT_EQ(Eval("n between 1 and 10 and flag"), Value::Bool(true));
  EXPECT_EQ(Eval("n + 1 in (8, 9)"), Value::Bool(true));
  EXPECT_EQ(Eval("not n in (1, 2)"), Value::Bool(true));
  EXPECT_EQ(Eval("nul is null and n is not null"), Value::Bool(true));
}

TEST_F(ExprTest, KeywordsAreCaseInsensitive) {
  EXPECT_NE(Error("N > 1 AND flag").find("unknown field 'N'"),
            std::string::npos);  // fields are not
  EXPECT_EQ(Eval("n > 1 AnD flag Or FALSE"), Value::Bool(true));
  EXPECT_EQ(Eval("n NOT BETWEEN 1 AND 5"), Value::Bool(true));
  EXPECT_EQ(Eval("Case When n > 1 Then 'big' Else 'small' END"), Value::String("big"));
  EXPECT_EQ(Eval("LOWER(id) = Lower('SENSOR_1')"), Value::Bool(true));
}

// ---- comparisons ----

TEST_F(ExprTest, Comparisons) {
  EXPECT_EQ(Eval("n = 7"), Value::Bool(true));
  EXPECT_EQ(Eval("n == 7"), Value::Bool(true));
  EXPECT_EQ(Eval("n != 7"), Value::Bool(false));
  EXPECT_EQ(Eval("n <> 7"), Value::Bool(false));
  EXPECT_EQ(Eval("n < 8"), Value::Bool(true));
  EXPECT_EQ(Eval("n <= 7"), Value::Bool(true));
  EXPECT_EQ(Eval("n > 7"), Value::Bool(false));
  EXPECT_EQ(Eval("n >= 7"), Value::Bool(true));
  EXPECT_EQ(Eval("n = 7.0"), Value::Bool(true));
  EXPECT_EQ(Eval("n < 7.5"), Value::Bool(true));
  EXPECT_EQ(Eval("temperature >= 35.5"), Value::Bool(true));
  EXPECT_EQ(Eval("'abc' < 'abd'"), Value::Bool(true));
  EXPECT_EQ(Eval("'b' > 'abc'"), Value::Bool(true));
  EXPECT_EQ(Eval("flag = true"), Value::Bool(true));
  EXPECT_EQ(Eval("false < true"), Value::Bool(true));
  EXPECT_EQ(Eval("ts = 1547718199000"), Value::Bool(true));
  EXPECT_EQ(Eval("ts > '2019-01-01T00:00:00Z'"), Value::Bool(true));
  EXPECT_EQ(Eval("ts = '2019-01-17 09:43:19'"), Value::Bool(true));
  EXPECT_EQ(Eval("'1547718199000' = ts"), Value::Bool(true));
  EXPECT_EQ(Eval("to_timestamp('1547718199000') = ts"), Value::Bool(true));
  EXPECT_EQ(Eval("ts < to_timestamp('2019-01-17T10:43:19+01:00')"), Value::Bool(false));
  EXPECT_EQ(Eval("raw = raw"), Value::Bool(true));
  EXPECT_EQ(Eval("sqrt(-1.0) = 1"), Value::Null());
}

// ---- nulls ----

TEST_F(ExprTest, NullPropagation) {
  EXPECT_TRUE(IsNull("nul + 1"));
  EXPECT_TRUE(IsNull("null + 1"));
  EXPECT_TRUE(IsNull("1 - nul"));
  EXPECT_TRUE(IsNull("nul * temperature"));
  EXPECT_TRUE(IsNull("-nul"));
  EXPECT_TRUE(IsNull("nul = 1"));
  EXPECT_TRUE(IsNull("nul <> 1"));
  EXPECT_TRUE(IsNull("n = null"));
  EXPECT_TRUE(IsNull("null = null"));
  EXPECT_TRUE(IsNull("lower(null)"));
  EXPECT_TRUE(IsNull("upper(id + nul)"));
  EXPECT_EQ(TypeOf("nul + 1"), DataType::kInt64);
  EXPECT_EQ(TypeOf("nul + 1.5"), DataType::kDouble);
  auto e = CompileExpression("nul > 1", schema_);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE((*e)->EvalBool(row_));
}

TEST_F(ExprTest, ThreeValuedLogic) {
  Value t = Value::Bool(true), f = Value::Bool(false), u = Value::Null();
  EXPECT_EQ(Eval("true and nul = 1"), u);
  EXPECT_EQ(Eval("false and nul = 1"), f);
  EXPECT_EQ(Eval("nul = 1 and false"), f);
  EXPECT_EQ(Eval("nul = 1 and true"), u);
  EXPECT_EQ(Eval("nul = 1 and nul = 1"), u);
  EXPECT_EQ(Eval("true or nul = 1"), t);
  EXPECT_EQ(Eval("nul = 1 or true"), t);
  EXPECT_EQ(Eval("false or nul = 1"), u);
  EXPECT_EQ(Eval("nul = 1 or false"), u);
  EXPECT_EQ(Eval("not (nul = 1)"), u);
  EXPECT_EQ(Eval("not null"), u);
  EXPECT_EQ(Eval("null and false"), f);
  EXPECT_EQ(Eval("null or true"), t);
  EXPECT_EQ(Eval("flag and n > 3"), t);
  EXPECT_EQ(Eval("flag && !flag"), f);
}

TEST_F(ExprTest, IsNull) {
  EXPECT_EQ(Eval("nul is null"), Value::Bool(true));
  EXPECT_EQ(Eval("nul IS NOT NULL"), Value::Bool(false));
  EXPECT_EQ(Eval("id is null"), Value::Bool(false));
  EXPECT_EQ(Eval("id is not null"), Value::Bool(true));
  EXPECT_EQ(Eval("null is null"), Value::Bool(true));
  EXPECT_EQ(Eval("n / 0 is null"), Value::Bool(true));
  EXPECT_EQ(TypeOf("nul is null"), DataType::kBool);
}

TEST_F(ExprTest, In) {
  EXPECT_EQ(Eval("n in (1, 7, 9)"), Value::Bool(true));
  EXPECT_EQ(Eval("n in (1, 2)"), Value::Bool(false));
  EXPECT_EQ(Eval("n not in (1, 2)"), Value::Bool(true));
  EXPECT_EQ(Eval("n not in (7)"), Value::Bool(false));
  EXPECT_EQ(Eval("n in (7.0, 8.5)"), Value::Bool(true));
  EXPECT_EQ(Eval("id in ('a', 'sensor_1')"), Value::Bool(true));
  EXPECT_EQ(Eval("id IN ('a', lower('SENSOR_1'))"), Value::Bool(true));
  EXPECT_EQ(Eval("ts in ('2019-01-17T09:43:19Z')"), Value::Bool(true));
  // SQL: no match with a null in the list is unknown; a match is true regardless.
  EXPECT_EQ(Eval("n in (1, null)"), Value::Null());
  EXPECT_EQ(Eval("n in (7, null)"), Value::Bool(true));
  EXPECT_EQ(Eval("n not in (1, null)"), Value::Null());
  EXPECT_EQ(Eval("nul in (1, 2)"), Value::Null());
  EXPECT_EQ(Eval("null in (1, 2)"), Value::Null());
}

TEST_F(ExprTest, Between) {
  EXPECT_EQ(Eval("n between 7 and 7"), Value::Bool(true));
  EXPECT_EQ(Eval("n between 1 and 6"), Value::Bool(false));
  EXPECT_EQ(Eval("n between 8 and 1"), Value::Bool(false));  // not symmetric
  EXPECT_EQ(Eval("n not between 1 and 6"), Value::Bool(true));
  EXPECT_EQ(Eval("temperature between 30 and 40"), Value::Bool(true));
  EXPECT_EQ(Eval("n between 6.5 and 7.5"), Value::Bool(true));
  EXPECT_EQ(Eval("'b' between 'a' and 'c'"), Value::Bool(true));
  EXPECT_EQ(Eval("n between 1 + 1 and 3 * 3"), Value::Bool(true));
  EXPECT_EQ(Eval("nul between 1 and 2"), Value::Null());
  EXPECT_EQ(Eval("n between null and 2"), Value::Bool(false));  // 7 <= 2 is false
  EXPECT_EQ(Eval("n between null and 10"), Value::Null());
  EXPECT_EQ(Eval("ts between '2019-01-17' and '2019-01-18'"), Value::Bool(true));
}

TEST_F(ExprTest, Like) {
  EXPECT_EQ(Eval("id like 'sensor%'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like 'sensor_'"), Value::Bool(false));
  EXPECT_EQ(Eval("id like 'sensor__'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like '%_1'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like '%sor%'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like 'Sensor%'"), Value::Bool(false));  // case-sensitive
  EXPECT_EQ(Eval("id not like '%2'"), Value::Bool(true));
  EXPECT_EQ(Eval("'' like '%'"), Value::Bool(true));
  EXPECT_EQ(Eval("'' like '_'"), Value::Bool(false));
  EXPECT_EQ(Eval("'abc' like 'abc'"), Value::Bool(true));
  EXPECT_EQ(Eval("'abc' like 'ab'"), Value::Bool(false));
  EXPECT_EQ(Eval("'aXbXc' like 'a%b%c'"), Value::Bool(true));
  EXPECT_EQ(Eval("'mississippi' like '%iss%ppi'"), Value::Bool(true));
  EXPECT_EQ(Eval("'100%' like '100\\%'"), Value::Bool(true));
  EXPECT_EQ(Eval("'1000' like '100\\%'"), Value::Bool(false));
  EXPECT_EQ(Eval("'a_c' like 'a\\_c'"), Value::Bool(true));
  EXPECT_EQ(Eval("'abc' like 'a\\_c'"), Value::Bool(false));
  EXPECT_EQ(Eval("'\\u00e9t\\u00e9' like '_t_'"), Value::Bool(true));  // UTF-8 characters
  EXPECT_EQ(Eval("id like nul + ''"), Value::Null());
  EXPECT_EQ(Eval("id like null"), Value::Null());
  EXPECT_EQ(Eval("id like id"), Value::Bool(true));
  EXPECT_EQ(Eval("id like '%1'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like '%2'"), Value::Bool(false));
  EXPECT_EQ(Eval("id like '%%'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like 'sensor_1'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like 'sensor'"), Value::Bool(false));
  EXPECT_EQ(Eval("id like 'sensor%%'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like '%nso%'"), Value::Bool(true));
  EXPECT_EQ(Eval("id like '%nsx%'"), Value::Bool(false));
  EXPECT_EQ(Eval("id not like 'x%'"), Value::Bool(true));
  EXPECT_EQ(Eval("nul + '' like '%'"), Value::Null());
}

// ---- CASE and CAST ----

TEST_F(ExprTest, SearchedCase) {
  EXPECT_EQ(Eval("case when n > 5 then 'big' when n > 2 then 'mid' else 'small' end"),
            Value::String("big"));
  EXPECT_EQ(Eval("case when n > 50 then 'big' when n > 2 then 'mid' else 'small' end"),
            Value::String("mid"));
  EXPECT_EQ(Eval("case when n > 50 then 'big' else 'small' end"), Value::String("small"));
  EXPECT_TRUE(IsNull("case when n > 50 then 'big' end"));
  EXPECT_EQ(Eval("case when nul > 1 then 1 else 2 end"), Value::Int(2));  // null is not true
  EXPECT_EQ(Eval("case when flag then 1 else 2.5 end"), Value::Double(1.0));
  EXPECT_EQ(TypeOf("case when flag then 1 else 2.5 end"), DataType::kDouble);
  EXPECT_EQ(TypeOf("case when flag then null else 'x' end"), DataType::kString);
  EXPECT_EQ(Eval("case when flag then ts else 0 end"), Value::Time(kTs));
  EXPECT_EQ(Eval("case when 1 = 1 then 'folded' end"), Value::String("folded"));
}

TEST_F(ExprTest, SimpleCase) {
  EXPECT_EQ(Eval("case n when 1 then 'one' when 7 then 'seven' else 'many' end"),
            Value::String("seven"));
  EXPECT_EQ(Eval("case n when 1 then 'one' else 'many' end"), Value::String("many"));
  EXPECT_TRUE(IsNull("case n when 1 then 'one' end"));
  EXPECT_EQ(Eval("case nul when null then 'null matched' else 'no' end"), Value::String("no"));
  EXPECT_EQ(Eval("case id when 'sensor_1' then 1 else 0 end"), Value::Int(1));
  EXPECT_EQ(Eval("case n when 7.0 then 'seven' end"), Value::String("seven"));
  EXPECT_EQ(Eval("CASE temperature WHEN 35.5 THEN n * 2 ELSE 0.5 END"), Value::Double(14.0));
}

TEST_F(ExprTest, Cast) {
  EXPECT_EQ(Eval("cast(n as string)"), Value::String("7"));
  EXPECT_EQ(Eval("CAST(temperature AS STRING)"), Value::String("35.5"));
  EXPECT_EQ(Eval("cast(ts as string)"), Value::String("2019-01-17T09:43:19Z"));
  EXPECT_EQ(Eval("cast(flag as string)"), Value::String("true"));
  EXPECT_EQ(Eval("cast('42' as int64)"), Value::Int(42));
  EXPECT_EQ(Eval("cast(' -42 ' as int)"), Value::Int(-42));
  EXPECT_EQ(Eval("cast('+42' as bigint)"), Value::Int(42));
  EXPECT_EQ(Eval("cast('42' as long)"), Value::Int(42));
  EXPECT_TRUE(IsNull("cast('abc' as int)"));
  EXPECT_TRUE(IsNull("cast('4.5' as int)"));
  EXPECT_TRUE(IsNull("cast('99999999999999999999' as int)"));
  EXPECT_EQ(Eval("cast('4.5' as double)"), Value::Double(4.5));
  EXPECT_EQ(Eval("cast('1e2' as float)"), Value::Double(100.0));
  EXPECT_TRUE(IsNull("cast('x1' as double)"));
  EXPECT_EQ(Eval("cast(temperature as int)"), Value::Int(35));
  EXPECT_EQ(Eval("cast(-3.9 as int)"), Value::Int(-3));
  EXPECT_TRUE(IsNull("cast(1e300 as int)"));
  EXPECT_EQ(Eval("cast(n as double)"), Value::Double(7.0));
  EXPECT_EQ(Eval("cast(flag as int)"), Value::Int(1));
  EXPECT_EQ(Eval("cast(0 as bool)"), Value::Bool(false));
  EXPECT_EQ(Eval("cast(2.5 as boolean)"), Value::Bool(true));
  EXPECT_EQ(Eval("cast('TRUE' as bool)"), Value::Bool(true));
  EXPECT_EQ(Eval("cast('0' as bool)"), Value::Bool(false));
  EXPECT_TRUE(IsNull("cast('maybe' as bool)"));
  EXPECT_EQ(Eval("cast('2019-01-17T09:43:19Z' as timestamp)"), Value::Time(kTs));
  EXPECT_EQ(Eval("cast('1547718199000' as timestamp)"), Value::Time(kTs));
  EXPECT_EQ(Eval("cast(1547718199000 as timestamp)"), Value::Time(kTs));
  EXPECT_EQ(Eval("cast(ts as int64)"), Value::Int(kTs));
  EXPECT_TRUE(IsNull("cast('yesterday' as timestamp)"));
  EXPECT_TRUE(IsNull("cast(null as int)"));
  EXPECT_EQ(TypeOf("cast(null as int)"), DataType::kInt64);
  EXPECT_EQ(Eval("cast(raw as string)"), Value::String("ab"));
  EXPECT_EQ(Eval("cast('ab' as bytes)"), Value::Bytes("ab"));
  EXPECT_EQ(TypeOf("cast(n as varchar)"), DataType::kString);
}

// ---- functions ----

TEST_F(ExprTest, StringFunctions) {
  EXPECT_EQ(Eval("lower('AbC')"), Value::String("abc"));
  EXPECT_EQ(Eval("upper(id)"), Value::String("SENSOR_1"));
  EXPECT_EQ(Eval("length(id)"), Value::Int(8));
  EXPECT_EQ(Eval("char_length('\\u00e9t\\u00e9')"), Value::Int(3));
  EXPECT_EQ(Eval("length(raw)"), Value::Int(2));
  EXPECT_EQ(Eval("length('')"), Value::Int(0));
  EXPECT_EQ(Eval("substr('hello', 2)"), Value::String("ello"));
  EXPECT_EQ(Eval("substr('hello', 2, 3)"), Value::String("ell"));
  EXPECT_EQ(Eval("substring('hello', 1, 100)"), Value::String("hello"));
  EXPECT_EQ(Eval("substr('hello', 0, 2)"), Value::String("he"));
  EXPECT_EQ(Eval("substr('hello', -3)"), Value::String("llo"));
  EXPECT_EQ(Eval("substr('hello', -3, 2)"), Value::String("ll"));
  EXPECT_EQ(Eval("substr('hello', -10)"), Value::String(""));
  EXPECT_EQ(Eval("substr('hello', 10)"), Value::String(""));
  EXPECT_EQ(Eval("substr('hello', 2, -1)"), Value::String(""));
  EXPECT_EQ(Eval("substr('h\\u00e9llo', 2, 2)"), Value::String("\xC3\xA9l"));
  EXPECT_EQ(Eval("substr('hello', -9223372036854775808, 9223372036854775807)"), Value::String(""));
  EXPECT_EQ(Eval("trim(name)"), Value::String("Hello World"));
  EXPECT_EQ(Eval("ltrim(name)"), Value::String("Hello World  "));
  EXPECT_EQ(Eval("rtrim(name)"), Value::String("  Hello World"));
  EXPECT_EQ(Eval("trim('   ')"), Value::String(""));
  EXPECT_EQ(Eval("concat(id, '/', n, '/', temperature, '/', flag)"),
            Value::String("sensor_1/7/35.5/true"));
  EXPECT_EQ(Eval("concat('x')"), Value::String("x"));
  EXPECT_TRUE(IsNull("concat('x', nul)"));
  EXPECT_EQ(Eval("starts_with(id, 'sen')"), Value::Bool(true));
  EXPECT_EQ(Eval("starts_with(id, 'x')"), Value::Bool(false));
  EXPECT_EQ(Eval("ends_with(id, '_1')"), Value::Bool(true));
  EXPECT_EQ(Eval("contains(id, 'sor')"), Value::Bool(true));
  EXPECT_EQ(Eval("contains(id, '')"), Value::Bool(true));
  EXPECT_EQ(Eval("contains(id, 'xyz')"), Value::Bool(false));
  EXPECT_EQ(Eval("replace('a-b-c', '-', '+')"), Value::String("a+b+c"));
  EXPECT_EQ(Eval("replace('aaa', 'a', 'aa')"), Value::String("aaaaaa"));
  EXPECT_EQ(Eval("replace('abc', '', 'x')"), Value::String("abc"));
  EXPECT_EQ(Eval("replace(id, 'sensor', 's')"), Value::String("s_1"));
  EXPECT_EQ(Eval("split_part('a,b,c', ',', 2)"), Value::String("b"));
  EXPECT_EQ(Eval("split_part('a,b,c', ',', 1)"), Value::String("a"));
  EXPECT_EQ(Eval("split_part('a,b,c', ',', 3)"), Value::String("c"));
  EXPECT_EQ(Eval("split_part('a,b,c', ',', 4)"), Value::String(""));
  EXPECT_EQ(Eval("split_part('a,b,c', ',', -1)"), Value::String("c"));
  EXPECT_EQ(Eval("split_part('a,b,c', ',', -3)"), Value::String("a"));
  EXPECT_EQ(Eval("split_part('a,b,c', ',', -4)"), Value::String(""));
  EXPECT_EQ(Eval("split_part('a::b', '::', 2)"), Value::String("b"));
  EXPECT_EQ(Eval("split_part('abc', '', 1)"), Value::String("abc"));
  EXPECT_TRUE(IsNull("split_part('a,b', ',', 0)"));
  EXPECT_EQ(Eval("split_part(id, '_', 2)"), Value::String("1"));
}

TEST_F(ExprTest, MathFunctions) {
  EXPECT_EQ(Eval("abs(-5)"), Value::Int(5));
  EXPECT_EQ(Eval("abs(n)"), Value::Int(7));
  EXPECT_EQ(Eval("abs(-2.5)"), Value::Double(2.5));
  EXPECT_EQ(Eval("floor(2.7)"), Value::Double(2.0));
  EXPECT_EQ(Eval("floor(-2.5)"), Value::Double(-3.0));
  EXPECT_EQ(Eval("floor(n)"), Value::Int(7));
  EXPECT_EQ(Eval("ceil(2.1)"), Value::Double(3.0));
  EXPECT_EQ(Eval("ceil(n)"), Value::Int(7));
  EXPECT_EQ(Eval("round(2.5)"), Value::Double(3.0));
  EXPECT_EQ(Eval("round(-2.5)"), Value::Double(-3.0));
  EXPECT_EQ(Eval("round(3.14159, 2)"), Value::Double(3.14));
  EXPECT_EQ(Eval("round(1234.5, -2)"), Value::Double(1200.0));
  EXPECT_EQ(Eval("round(n)"), Value::Int(7));
  EXPECT_EQ(Eval("round(1250, -2)"), Value::Int(1300));
  EXPECT_EQ(Eval("round(-1250, -2)"), Value::Int(-1300));
  EXPECT_EQ(Eval("round(1249, -2)"), Value::Int(1200));
  EXPECT_EQ(Eval("round(1249, -30)"), Value::Int(0));
  EXPECT_EQ(Eval("round(2.5, 400)"), Value::Double(2.5));
  EXPECT_EQ(Eval("sqrt(16)"), Value::Double(4.0));
  EXPECT_TRUE(IsNull("sqrt(-1)"));
  EXPECT_EQ(Eval("power(2, 10)"), Value::Double(1024.0));
  EXPECT_EQ(Eval("pow(9, 0.5)"), Value::Double(3.0));
  EXPECT_TRUE(IsNull("pow(-8, 0.5)"));
  EXPECT_DOUBLE_EQ(Eval("ln(exp(2))").double_value(), 2.0);
  EXPECT_TRUE(IsNull("ln(0)"));
  EXPECT_EQ(Eval("exp(0)"), Value::Double(1.0));
  EXPECT_EQ(Eval("mod(7, 3)"), Value::Int(1));
  EXPECT_EQ(Eval("mod(-7, 3)"), Value::Int(-1));
  EXPECT_EQ(Eval("mod(7.5, 2)"), Value::Double(1.5));
  EXPECT_EQ(TypeOf("sqrt(n)"), DataType::kDouble);
  EXPECT_EQ(TypeOf("abs(n)"), DataType::kInt64);
}

TEST_F(ExprTest, ConditionalFunctions) {
  EXPECT_EQ(Eval("least(3, 1, 2)"), Value::Int(1));
  EXPECT_EQ(Eval("greatest(3, 1, 2)"), Value::Int(3));
  EXPECT_EQ(Eval("least(n, 2.5)"), Value::Double(2.5));
  EXPECT_EQ(Eval("greatest(n, 2.5)"), Value::Double(7.0));
  EXPECT_EQ(TypeOf("greatest(n, 2.5)"), DataType::kDouble);
  EXPECT_EQ(Eval("greatest('a', 'c', 'b')"), Value::String("c"));
  EXPECT_TRUE(IsNull("least(1, nul)"));
  EXPECT_EQ(Eval("coalesce(nul, n, 3)"), Value::Int(7));
  EXPECT_EQ(Eval("coalesce(nul, 2.5)"), Value::Double(2.5));
  EXPECT_TRUE(IsNull("coalesce(nul, null)"));
  EXPECT_EQ(Eval("coalesce(id, 'none')"), Value::String("sensor_1"));
  EXPECT_EQ(Eval("if(n > 5, 'big', 'small')"), Value::String("big"));
  EXPECT_EQ(Eval("if(n > 50, 'big', 'small')"), Value::String("small"));
  EXPECT_EQ(Eval("if(nul > 5, 1, 2)"), Value::Int(2));
  EXPECT_EQ(Eval("if(flag, 1, 2.5)"), Value::Double(1.0));
  EXPECT_TRUE(IsNull("nullif(n, 7)"));
  EXPECT_EQ(Eval("nullif(n, 8)"), Value::Int(7));
  EXPECT_EQ(Eval("nullif(n, 7.5)"), Value::Int(7));
  EXPECT_EQ(TypeOf("nullif(n, 7.5)"), DataType::kInt64);
  EXPECT_TRUE(IsNull("nullif(nul, 1)"));
  EXPECT_EQ(Eval("nullif(id, 'x')"), Value::String("sensor_1"));
}

TEST_F(ExprTest, ConversionFunctions) {
  EXPECT_EQ(Eval("to_string(n)"), Value::String("7"));
  EXPECT_EQ(Eval("to_string(temperature)"), Value::String("35.5"));
  EXPECT_EQ(Eval("to_string(1.0)"), Value::String("1.0"));
  EXPECT_EQ(Eval("to_string(ts)"), Value::String("2019-01-17T09:43:19Z"));
  EXPECT_EQ(Eval("to_string(ts + 120)"), Value::String("2019-01-17T09:43:19.120Z"));
  EXPECT_EQ(Eval("to_string(flag)"), Value::String("true"));
  EXPECT_TRUE(IsNull("to_string(nul)"));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17T09:43:19Z')"), Value::Time(kTs));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17T09:43:19.5Z')"), Value::Time(kTs + 500));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17T09:43:19.123456789Z')"), Value::Time(kTs + 123));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17T10:43:19+01:00')"), Value::Time(kTs));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17T04:13:19-0530')"), Value::Time(kTs));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17 09:43:19')"), Value::Time(kTs));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17t09:43:19z')"), Value::Time(kTs));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17T09:43')"), Value::Time(kTs - 19000));
  EXPECT_EQ(Eval("to_timestamp('2019-01-17')"),
            Value::Time(kTs - int64_t{9 * 3600 + 43 * 60 + 19} * 1000));
  EXPECT_EQ(Eval("to_timestamp('1970-01-01T00:00:00Z')"), Value::Time(0));
  EXPECT_EQ(Eval("to_timestamp('1969-12-31T23:59:59.999Z')"), Value::Time(-1));
  EXPECT_EQ(Eval("to_timestamp('2000-02-29T00:00:00Z')"), Value::Time(951782400000));
  EXPECT_EQ(Eval("to_timestamp(1547718199000)"), Value::Time(kTs));
  EXPECT_TRUE(IsNull("to_timestamp('2019-02-29T00:00:00Z')"));
  EXPECT_TRUE(IsNull("to_timestamp('2019-01-17T25:00:00Z')"));
  EXPECT_TRUE(IsNull("to_timestamp('2019-01-17T09:43:19 Z')"));
  EXPECT_TRUE(IsNull("to_timestamp('17/01/2019')"));
  EXPECT_TRUE(IsNull("to_timestamp('')"));
  EXPECT_EQ(Eval("to_string(to_timestamp('1969-12-31T23:59:59.999Z'))"),
            Value::String("1969-12-31T23:59:59.999Z"));
  EXPECT_EQ(Eval("to_string(cast(-9223372036854775808 as timestamp)) is not null"),
            Value::Bool(true));
}

TEST_F(ExprTest, HashIsStable) {
  // Pinned values: the hash is part of the contract (partitioning, persisted state).
  EXPECT_EQ(Eval("hash('sensor_1')"), Eval("hash(id)"));
  EXPECT_EQ(Eval("hash(1)"), Eval("hash(1.0)"));
  EXPECT_EQ(Eval("hash(7)"), Eval("hash(n)"));
  EXPECT_EQ(Eval("hash(7)"), Eval("hash(cast(7 as timestamp))"));
  EXPECT_NE(Eval("hash(1)"), Eval("hash(2)"));
  EXPECT_NE(Eval("hash('a')"), Eval("hash('b')"));
  EXPECT_EQ(Eval("hash(nul)"), Value::Int(0));
  EXPECT_EQ(Eval("hash(null)"), Value::Int(0));
  EXPECT_EQ(Eval("hash(0)"), Value::Int(0));  // SplitMix64's finalizer maps 0 to 0
  EXPECT_EQ(Eval("hash(1)"), Value::Int(static_cast<int64_t>(0x5692161d100b05e5ULL)));
  EXPECT_EQ(Eval("hash('')"), Value::Int(static_cast<int64_t>(0xf52a15e9a9b5e89bULL)));
  EXPECT_EQ(Eval("hash('sensor_1')"), Value::Int(static_cast<int64_t>(0xe801d579ef945c1aULL)));
  EXPECT_EQ(TypeOf("hash(id)"), DataType::kInt64);
}

// ---- compile errors ----

TEST(ExprErrorTest, UnknownFieldNamesExpressionColumnAndFields) {
  Schema schema({{"id", DataType::kString},
                 {"ts", DataType::kTimestamp},
                 {"temperature", DataType::kDouble}});
  auto e = CompileExpression("temprature > 30", schema);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(),
            "expression 'temprature > 30', column 1: unknown field 'temprature' (fields: id, ts, "
            "temperature)");
  auto e2 = CompileExpression("id = 'x' and  tmp > 1", schema);
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.status().message().find("column 15: unknown field 'tmp'"), std::string::npos)
      << e2.status().message();
  auto e3 = CompileExpression("x", Schema());
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.status().message().find("the input has no fields"), std::string::npos);
}

TEST_F(ExprTest, TypeErrors) {
  std::string m = Error("id > 30");
  EXPECT_NE(m.find("expression 'id > 30', column 4: cannot compare string with int64"),
            std::string::npos)
      << m;
  m = Error("not n");
  EXPECT_NE(m.find("column 1: 'not' expects a bool operand, got int64"), std::string::npos) << m;
  m = Error("!temperature");
  EXPECT_NE(m.find("got double"), std::string::npos) << m;
  m = Error("n and flag");
  EXPECT_NE(m.find("column 3: operator 'and' expects bool operands, got int64 on the left"),
            std::string::npos)
      << m;
  m = Error("flag || 1");
  EXPECT_NE(m.find("got int64 on the right"), std::string::npos) << m;
  m = Error("id - 1");
  EXPECT_NE(m.find("column 4: operator '-' expects numbers, got string and int64"),
            std::string::npos)
      << m;
  m = Error("flag * 2");
  EXPECT_NE(m.find("expects numbers, got bool and int64"), std::string::npos) << m;
  m = Error("-id");
  EXPECT_NE(m.find("unary '-' expects a number, got string"), std::string::npos) << m;
  m = Error("flag = 1");
  EXPECT_NE(m.find("cannot compare bool with int64"), std::string::npos) << m;
  m = Error("n in (1, 'a')");
  EXPECT_NE(m.find("cannot compare int64 with string"), std::string::npos) << m;
  m = Error("n between 'a' and 3");
  EXPECT_NE(m.find("cannot compare"), std::string::npos) << m;
  m = Error("n like 'a%'");
  EXPECT_NE(m.find("LIKE expects strings, got int64 LIKE string"), std::string::npos) << m;
  m = Error("ts > 'yesterday'");
  EXPECT_NE(m.find("column 6: 'yesterday' is not a timestamp"), std::string::npos) << m;
  m = Error("case when n then 1 end");
  EXPECT_NE(m.find("column 11: CASE WHEN condition must be bool, got int64"), std::string::npos)
      << m;
  m = Error("case when flag then 1 else 'x' end");
  EXPECT_NE(m.find("CASE mixes int64 and string"), std::string::npos) << m;
  m = Error("case n when 'a' then 1 end");
  EXPECT_NE(m.find("cannot compare int64 with string"), std::string::npos) << m;
  m = Error("cast(n as widget)");
  EXPECT_NE(m.find("column 11: unknown type 'widget' in CAST"), std::string::npos) << m;
  m = Error("cast(flag as timestamp)");
  EXPECT_NE(m.find("cannot CAST bool to timestamp"), std::string::npos) << m;
  m = Error("cast(n as bytes)");
  EXPECT_NE(m.find("cannot CAST int64 to bytes"), std::string::npos) << m;
  m = Error("coalesce(n, 'x')");
  EXPECT_NE(m.find("coalesce() mixes int64 and string"), std::string::npos) << m;
  m = Error("if(n, 1, 2)");
  EXPECT_NE(m.find("the condition of if() must be bool"), std::string::npos) << m;
  m = Error("nullif(n, 'x')");
  EXPECT_NE(m.find("cannot compare int64 with string"), std::string::npos) << m;
  m = Error("least(1, 'a')");
  EXPECT_NE(m.find("least() mixes int64 and string"), std::string::npos) << m;
}

TEST_F(ExprTest, FunctionErrors) {
  std::string m = Error("lenght(id)");
  EXPECT_NE(m.find("column 1: unknown function 'lenght' (did you mean: length?)"),
            std::string::npos)
      << m;
  m = Error("substrng(id, 1)");
  EXPECT_NE(m.find("did you mean: substr, substring?"), std::string::npos) << m;
  m = Error("frobnicate(id)");
  EXPECT_NE(m.find("unknown function 'frobnicate' (known functions: abs, ceil"), std::string::npos)
      << m;
  m = Error("avg(temperature)");
  EXPECT_NE(m.find("aggregate function 'avg' is not allowed in a scalar expression"),
            std::string::npos)
      << m;
  m = Error("max(n, 3)");
  EXPECT_NE(m.find("use least() or greatest()"), std::string::npos) << m;
  m = Error("lower()");
  EXPECT_NE(m.find("lower() takes 1 argument, got 0; usage: lower(string)"), std::string::npos)
      << m;
  m = Error("substr('a')");
  EXPECT_NE(m.find("substr() takes 2 to 3 arguments, got 1"), std::string::npos) << m;
  m = Error("lower(n)");
  EXPECT_NE(m.find("column 7: argument 1 of lower() must be string, got int64"), std::string::npos)
      << m;
  m = Error("substr(id, 1.5)");
  EXPECT_NE(m.find("argument 2 of substr() must be int64, got double"), std::string::npos) << m;
  m = Error("sqrt('4')");
  EXPECT_NE(m.find("argument 1 of sqrt() must be a number, got string"), std::string::npos) << m;
  m = Error("coalesce()");
  EXPECT_NE(m.find("coalesce() takes at least 1 arguments, got 0"), std::string::npos) << m;
  m = Error("mod(id, 2)");
  EXPECT_NE(m.find("mod() expects numbers"), std::string::npos) << m;
  m = Error("count(*)");
  EXPECT_NE(m.find("'*' is only allowed in the aggregate count(*)"), std::string::npos) << m;
}

TEST_F(ExprTest, SyntaxErrors) {
  std::string m = Error("");
  EXPECT_NE(m.find("column 1: empty expression"), std::string::npos) << m;
  m = Error("   ");
  EXPECT_NE(m.find("empty expression"), std::string::npos) << m;
  m = Error("temperature >");
  EXPECT_NE(m.find("column 14: unexpected end of expression"), std::string::npos) << m;
  m = Error("(n + 1");
  EXPECT_NE(m.find("column 7: expected ')' to close the '(' at column 1"), std::string::npos) << m;
  m = Error("n + 1)");
  EXPECT_NE(m.find("column 6: unexpected ')' after a complete expression"), std::string::npos) << m;
  m = Error("id = 'abc");
  EXPECT_NE(m.find("column 6: unterminated string literal"), std::string::npos) << m;
  m = Error("n # 2");
  EXPECT_NE(m.find("column 3: unexpected character '#'"), std::string::npos) << m;
  m = Error("n & 2");
  EXPECT_NE(m.find("use AND or &&"), std::string::npos) << m;
  m = Error("3abc");
  EXPECT_NE(m.find("invalid number '3abc'"), std::string::npos) << m;
  m = Error("99999999999999999999");
  EXPECT_NE(m.find("out of range for int64"), std::string::npos) << m;
  m = Error("9223372036854775808");
  EXPECT_NE(m.find("out of range for int64"), std::string::npos) << m;
  m = Error("1e999");
  EXPECT_NE(m.find("out of range for double"), std::string::npos) << m;
  m = Error("n is 1");
  EXPECT_NE(m.find("expected NULL after IS [NOT], found number 1"), std::string::npos) << m;
  m = Error("n in ()");
  EXPECT_NE(m.find("the IN list is empty"), std::string::npos) << m;
  m = Error("n between 1 or 2");
  EXPECT_NE(m.find("expected AND in BETWEEN"), std::string::npos) << m;
  m = Error("case n end");
  EXPECT_NE(m.find("expected WHEN in CASE"), std::string::npos) << m;
  m = Error("case when flag then 1");
  EXPECT_NE(m.find("expected END to close the CASE at column 1"), std::string::npos) << m;
  m = Error("cast(n, string)");
  EXPECT_NE(m.find("expected AS in CAST(value AS type)"), std::string::npos) << m;
  m = Error("and = 1");
  EXPECT_NE(m.find("unexpected keyword and"), std::string::npos) << m;
  m = Error("``");
  EXPECT_NE(m.find("empty `quoted` field name"), std::string::npos) << m;
  m = Error("`abc");
  EXPECT_NE(m.find("unterminated `quoted` field name"), std::string::npos) << m;
  m = Error("'\\u12'");
  EXPECT_NE(m.find("\\u must be followed by 4 hex digits"), std::string::npos) << m;
  m = Error("n = = 1");
  EXPECT_NE(m.find("column 5: unexpected '=', expected a value"), std::string::npos) << m;
  m = Error("lower(id,)");
  EXPECT_NE(m.find("column 10: unexpected ')'"), std::string::npos) << m;
}

TEST_F(ExprTest, NestingIsLimited) {
  std::string ok(200, '(');
  ok += "1";
  ok += std::string(200, ')');
  EXPECT_EQ(Eval(ok), Value::Int(1));

  std::string deep(100000, '(');
  deep += "1";
  deep += std::string(100000, ')');
  EXPECT_NE(Error(deep).find("nested too deeply"), std::string::npos);

  std::string nots;
  for (int i = 0; i < 100000; ++i) nots += "not ";
  nots += "true";
  EXPECT_NE(Error(nots).find("nested too deeply"), std::string::npos);

  std::string minus(100000, '-');
  minus += "n";
  EXPECT_NE(Error(minus).find("nested too deeply"), std::string::npos);

  std::string chain = "1";
  for (int i = 0; i < 100000; ++i) chain += "+1";
  EXPECT_NE(Error(chain).find("nested too deeply"), std::string::npos);

  std::string short_chain = "n";
  for (int i = 0; i < 200; ++i) short_chain += " + 1";
  EXPECT_EQ(Eval(short_chain), Value::Int(207));

  std::string wide = "concat(1";
  for (int i = 0; i < 10000; ++i) wide += ", 1";
  wide += ")";
  EXPECT_EQ(Eval(wide).string_value().size(), 10001u);
}

// ---- aggregate calls ----

TEST_F(ExprTest, AggregateCalls) {
  auto count = ParseAggregateCall("count()", schema_);
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->name, "count");
  EXPECT_FALSE(count->distinct);
  EXPECT_TRUE(count->args.empty());

  auto star = ParseAggregateCall("COUNT( * )", schema_);
  ASSERT_TRUE(star.ok()) << star.status().ToString();
  EXPECT_EQ(star->name, "count");
  EXPECT_TRUE(star->args.empty());

  auto avg = ParseAggregateCall("avg(temperature)", schema_);
  ASSERT_TRUE(avg.ok());
  EXPECT_EQ(avg->name, "avg");
  ASSERT_EQ(avg->args.size(), 1u);
  EXPECT_EQ(avg->args[0]->text(), "temperature");
  EXPECT_EQ(avg->args[0]->field_index(), 2);
  EXPECT_EQ(avg->args[0]->result_type(), DataType::kDouble);

  auto distinct = ParseAggregateCall("count(DISTINCT id)", schema_);
  ASSERT_TRUE(distinct.ok());
  EXPECT_EQ(distinct->name, "count");
  EXPECT_TRUE(distinct->distinct);
  ASSERT_EQ(distinct->args.size(), 1u);
  EXPECT_EQ(distinct->args[0]->referenced_fields(), std::vector<std::string>{"id"});

  auto max = ParseAggregateCall("max(temperature * 2)", schema_);
  ASSERT_TRUE(max.ok());
  ASSERT_EQ(max->args.size(), 1u);
  EXPECT_EQ(max->args[0]->text(), "temperature * 2");
  EXPECT_EQ(max->args[0]->field_index(), -1);
  Value v;
  ASSERT_TRUE(max->args[0]->Eval(row_, v).ok());
  EXPECT_EQ(v, Value::Double(71.0));

  auto listagg = ParseAggregateCall("listagg(ts)", schema_);
  ASSERT_TRUE(listagg.ok());
  EXPECT_EQ(listagg->args[0]->result_type(), DataType::kTimestamp);

  auto min_by = ParseAggregateCall("minBy(temperature)", schema_);
  ASSERT_TRUE(min_by.ok());
  EXPECT_EQ(min_by->name, "minby");

  auto two = ParseAggregateCall("listagg(id, ';')", schema_);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->args.size(), 2u);
  EXPECT_EQ(two->args[1]->text(), "';'");

  auto paren = ParseAggregateCall("sum((n + 1) * 2)", schema_);
  ASSERT_TRUE(paren.ok());
  EXPECT_EQ(paren->args[0]->text(), "(n + 1) * 2");

  auto field_named_distinct = ParseAggregateCall("count(distinct)", schema_);
  ASSERT_FALSE(field_named_distinct.ok());
  EXPECT_NE(field_named_distinct.status().message().find("unknown field 'distinct'"),
            std::string::npos);
}

TEST_F(ExprTest, AggregateCallErrors) {
  auto bad_field = ParseAggregateCall("avg(temprature)", schema_);
  ASSERT_FALSE(bad_field.ok());
  EXPECT_NE(bad_field.status().message().find(
                "expression 'avg(temprature)', column 5: unknown field 'temprature'"),
            std::string::npos)
      << bad_field.status().message();
  auto star = ParseAggregateCall("sum(*)", schema_);
  ASSERT_FALSE(star.ok());
  EXPECT_NE(star.status().message().find("'*' is only allowed in count(*)"), std::string::npos);
  EXPECT_FALSE(ParseAggregateCall("avg(temperature", schema_).ok());
  EXPECT_FALSE(ParseAggregateCall("avg(temperature) + 1", schema_).ok());
  EXPECT_FALSE(ParseAggregateCall("temperature", schema_).ok());
  EXPECT_FALSE(ParseAggregateCall("", schema_).ok());
  EXPECT_FALSE(ParseAggregateCall("count(distinct *)", schema_).ok());
  EXPECT_FALSE(ParseAggregateCall("avg(id > 1)", schema_).ok());
  auto not_call = ParseAggregateCall("42", schema_);
  ASSERT_FALSE(not_call.ok());
  EXPECT_NE(not_call.status().message().find("expected an aggregate call"), std::string::npos);
}

// ---- evaluation robustness ----

TEST_F(ExprTest, RowsThatDisagreeWithTheSchemaDoNotCrash) {
  auto e = CompileExpression("temperature * 2 + n", schema_);
  ASSERT_TRUE(e.ok());
  Value v;
  ASSERT_TRUE((*e)->Eval(Row(), v).ok());  // too short: fields read as null
  EXPECT_TRUE(v.is_null());

  Row wrong = TestRow();
  wrong.Set(2, Value::Int(10));  // int where the schema says double: converted
  ASSERT_TRUE((*e)->Eval(wrong, v).ok());
  EXPECT_EQ(v, Value::Double(27.0));
  wrong.Set(2, Value::String("1.5"));  // numeric text: converted like CAST
  ASSERT_TRUE((*e)->Eval(wrong, v).ok());
  EXPECT_EQ(v, Value::Double(10.0));
  wrong.Set(2, Value::String("hot"));  // not a number: null
  ASSERT_TRUE((*e)->Eval(wrong, v).ok());
  EXPECT_TRUE(v.is_null());
  wrong.Set(2, Value::Bool(true));
  ASSERT_TRUE((*e)->Eval(wrong, v).ok());
  EXPECT_EQ(v, Value::Double(9.0));

  auto s = CompileExpression("upper(id) + '!'", schema_);
  ASSERT_TRUE(s.ok());
  wrong.Set(0, Value::Int(5));  // int where a string is expected: its text
  ASSERT_TRUE((*s)->Eval(wrong, v).ok());
  EXPECT_EQ(v, Value::String("5!"));
  Row longer = TestRow();
  longer.mutable_values().push_back(Value::Int(1));  // extra fields are ignored
  ASSERT_TRUE((*s)->Eval(longer, v).ok());
  EXPECT_EQ(v, Value::String("SENSOR_1!"));
}

TEST_F(ExprTest, CloneIsIndependent) {
  auto e = CompileExpression("upper(id) + n", schema_);
  ASSERT_TRUE(e.ok());
  std::unique_ptr<Expression> c = (*e)->Clone();
  EXPECT_EQ(c->text(), (*e)->text());
  EXPECT_EQ(c->result_type(), DataType::kString);
  EXPECT_EQ(c->referenced_fields(), (*e)->referenced_fields());
  const Value& a = (*e)->EvalRef(row_);
  Row other = TestRow();
  other.Set(0, Value::String("zz"));
  const Value& b = c->EvalRef(other);
  EXPECT_EQ(a, Value::String("SENSOR_17"));
  EXPECT_EQ(b, Value::String("ZZ7"));
  e->reset();
  EXPECT_EQ(c->EvalRef(row_), Value::String("SENSOR_17"));
}

TEST_F(ExprTest, EvalReusesOutput) {
  auto e = CompileExpression("if(flag, id, 'none')", schema_);
  ASSERT_TRUE(e.ok());
  Value out = Value::Int(3);
  ASSERT_TRUE((*e)->Eval(row_, out).ok());
  EXPECT_EQ(out, Value::String("sensor_1"));
  auto n = CompileExpression("n + 1", schema_);
  ASSERT_TRUE(n.ok());
  ASSERT_TRUE((*n)->Eval(row_, out).ok());
  EXPECT_EQ(out, Value::Int(8));
}

TEST_F(ExprTest, ConstantsAreFolded) {
  auto e = CompileExpression("2 * 3 + length('abc')", schema_);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->EvalRef(Row()), Value::Int(9));  // no fields needed
  EXPECT_TRUE((*e)->referenced_fields().empty());
}

// ---- parser robustness ----

TEST(ExprFuzzTest, RandomAndTruncatedInputsNeverCrash) {
  Schema schema = TestSchema();
  Row row = TestRow();
  std::vector<std::string> pieces = {"n",           "id",      "ts",         "temperature",
                                     "flag",        "nul",     "`odd name`", "raw",
                                     "1",           "0",       "-3",         "2.5",
                                     "1e3",         "'s'",     "\"q\"",      "'",
                                     "\"",          "`",       "(",          ")",
                                     ",",           "+",       "-",          "*",
                                     "/",           "%",       "=",          "==",
                                     "!=",          "<>",      "<",          "<=",
                                     ">",           ">=",      "!",          "&&",
                                     "||",          "and",     "or",         "not",
                                     "is",          "null",    "in",         "between",
                                     "like",        "case",    "when",       "then",
                                     "else",        "end",     "cast",       "as",
                                     "int",         "string",  "true",       "false",
                                     "lower(",      "substr(", "coalesce(",  "if(",
                                     "concat(",     "round(",  "hash(",      "to_timestamp(",
                                     "split_part(", "least(",  "nullif(",    "count(",
                                     "*",           "\\",      "#",          " ",
                                     "distinct"};
  std::mt19937 rng(12345);
  Value out;
  int compiled = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    int n = static_cast<int>(rng() % 12) + 1;
    for (int i = 0; i < n; ++i) {
      text += pieces[rng() % pieces.size()];
      if (rng() % 2) text += ' ';
    }
    auto e = CompileExpression(text, schema);
    if (e.ok()) {
      ++compiled;
      EXPECT_TRUE((*e)->Eval(row, out).ok());
      EXPECT_TRUE((*e)->Eval(Row(), out).ok());
      (void)(*e)->Clone()->EvalBool(row);
    } else {
      EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << text;
      EXPECT_NE(e.status().message().find("column "), std::string::npos) << text;
    }
    auto agg = ParseAggregateCall(text, schema);
    if (agg.ok()) {
      for (auto& arg : agg->args) EXPECT_TRUE(arg->Eval(row, out).ok());
    }
  }
  EXPECT_GT(compiled, 100);  // the generator does produce valid expressions too

  // Random bytes.
  for (int iter = 0; iter < 5000; ++iter) {
    std::string text(rng() % 40, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 256);
    auto e = CompileExpression(text, schema);
    if (e.ok()) {
      EXPECT_TRUE((*e)->Eval(row, out).ok());
    }
    (void)ParseAggregateCall(text, schema);
  }

  // Every prefix of valid expressions.
  std::vector<std::string> valid = {
      std::string("case when temperature > 30 and id like 'sensor%' then upper(id) else ") +
          "concat(id, '-', cast(n as string)) end",
      "coalesce(nul, n * 2 + 1, 0) between -1 and 100 or not flag",
      "ts > '2019-01-01T00:00:00Z' and n not in (1, 2, 3) and `odd name` is not null",
      "round(temperature * 9 / 5 + 32, 1) >= 95.9 && !(hash(id) % 2 = 0)",
      "count(distinct lower(id))"};
  for (const std::string& t : valid) {
    for (size_t cut = 0; cut <= t.size(); ++cut) {
      auto e = CompileExpression(std::string_view(t).substr(0, cut), schema);
      if (e.ok()) {
        EXPECT_TRUE((*e)->Eval(row, out).ok());
      }
      (void)ParseAggregateCall(std::string_view(t).substr(0, cut), schema);
    }
  }
}

}  // namespace
}  // namespace eddy
