#include "eddy/spec/formats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace eddy {
namespace {

SchemaPtr MakeSchema(std::vector<Field> fields) {
  return std::make_shared<const Schema>(std::move(fields));
}

SchemaPtr SensorSchema() {
  return MakeSchema(
      {{"id", DataType::kString}, {"ts", DataType::kInt64}, {"temperature", DataType::kDouble}});
}

std::unique_ptr<RowParser> MakeParser(const FormatOptions& options, SchemaPtr schema) {
  auto parser = RowParser::Make(options, std::move(schema));
  EXPECT_TRUE(parser.ok()) << parser.status().ToString();
  return parser.ok() ? std::move(parser).value() : nullptr;
}

std::unique_ptr<RowFormatter> MakeFormatter(const FormatOptions& options, SchemaPtr schema) {
  auto formatter = RowFormatter::Make(options, std::move(schema));
  EXPECT_TRUE(formatter.ok()) << formatter.status().ToString();
  return formatter.ok() ? std::move(formatter).value() : nullptr;
}

FormatOptions Csv() {
  return FormatOptions{};
}
FormatOptions Json() {
  FormatOptions o;
  o.format = RecordFormat::kJson;
  return o;
}
FormatOptions Text() {
  FormatOptions o;
  o.format = RecordFormat::kText;
  return o;
}

// Parses `text` as the single csv field of a schema with one field of `type`.
Status ParseOne(DataType type, std::string_view text, Value& out, bool nullable = true) {
  auto parser = MakeParser(Csv(), MakeSchema({{"f", type, nullable}}));
  Row row;
  Status st = parser->Parse(text, row);
  if (st.ok()) out = row.Get(0);
  return st;
}

// ---------------------------------------------------------------------------------------------
// Names and options

TEST(FormatsTest, ParsesFormatNames) {
  EXPECT_EQ(*ParseRecordFormat("csv"), RecordFormat::kCsv);
  EXPECT_EQ(*ParseRecordFormat("json"), RecordFormat::kJson);
  EXPECT_EQ(*ParseRecordFormat("jsonl"), RecordFormat::kJson);
  EXPECT_EQ(*ParseRecordFormat("json-lines"), RecordFormat::kJson);
  EXPECT_EQ(*ParseRecordFormat("CSV"), RecordFormat::kCsv);
  EXPECT_EQ(*ParseRecordFormat("text"), RecordFormat::kText);
  auto bad = ParseRecordFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "unknown record format 'xml' (expected csv, json or text)");
  EXPECT_EQ(RecordFormatName(RecordFormat::kJson), "json");
}

TEST(FormatsTest, RejectsBadOptionsAndSchemas) {
  FormatOptions o;
  o.delimiter = '"';
  EXPECT_EQ(RowParser::Make(o, SensorSchema()).status().code(), StatusCode::kInvalidArgument);
  o.delimiter = '\n';
  EXPECT_EQ(RowFormatter::Make(o, SensorSchema()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(RowParser::Make(Csv(), nullptr).ok());
  EXPECT_FALSE(RowParser::Make(Csv(), MakeSchema({})).ok());
  EXPECT_FALSE(RowFormatter::Make(Json(), nullptr).ok());
  auto text = RowParser::Make(Text(), SensorSchema());
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            "text format needs a schema with exactly one field, got (id string, ts int64, "
            "temperature double)");
}

// ---------------------------------------------------------------------------------------------
// csv

TEST(FormatsTest, CsvParsesSensorLine) {
  auto parser = MakeParser(Csv(), SensorSchema());
  Row row;
  ASSERT_TRUE(parser->Parse("sensor_1,1547718199,35.8", row).ok());
  EXPECT_EQ(row, Row({Value::String("sensor_1"), Value::Int(1547718199), Value::Double(35.8)}));
  // The same Row is reused line after line.
  ASSERT_TRUE(parser->Parse("sensor_7, 1547718202 ,15.4\r", row).ok());
  EXPECT_EQ(row, Row({Value::String("sensor_7"), Value::Int(1547718202), Value::Double(15.4)}));
}

TEST(FormatsTest, CsvReusesRowStorage) {
  auto parser = MakeParser(Csv(), SensorSchema());
  Row row;
  ASSERT_TRUE(parser->Parse("a_rather_long_sensor_name_beyond_sso,1,2.0", row).ok());
  const char* data = row.Get(0).string_value().data();
  ASSERT_TRUE(parser->Parse("short,2,3.0", row).ok());
  EXPECT_EQ(row.Get(0).string_value(), "short");
  EXPECT_EQ(row.Get(0).string_value().data(), data);
}

TEST(FormatsTest, CsvQuotedFields) {
  auto parser = MakeParser(Csv(), SensorSchema());
  Row row;
  ASSERT_TRUE(parser->Parse(R"("sensor, ""one""",1,"2.5")", row).ok());
  EXPECT_EQ(row.Get(0), Value::String(R"(sensor, "one")"));
  EXPECT_EQ(row.Get(2), Value::Double(2.5));
  // Blanks outside the quotes are trimmed, inside they are kept.
  ASSERT_TRUE(parser->Parse(R"(  " padded " ,2,3)", row).ok());
  EXPECT_EQ(row.Get(0), Value::String(" padded "));
  // A quoted empty field is the empty string, an unquoted one is null.
  ASSERT_TRUE(parser->Parse(R"("",3,4)", row).ok());
  EXPECT_EQ(row.Get(0), Value::String(""));
  ASSERT_TRUE(parser->Parse(",3,4", row).ok());
  EXPECT_TRUE(row.Get(0).is_null());
  // A quote inside an unquoted field is ordinary text.
  ASSERT_TRUE(parser->Parse(R"(a"b,3,4)", row).ok());
  EXPECT_EQ(row.Get(0), Value::String(R"(a"b)"));
  // Doubled quotes in a non-string field.
  EXPECT_EQ(parser->Parse(R"(x,"1""",4)", row).message(),
            R"(field 'ts' (int64): cannot parse '1"')");
}

TEST(FormatsTest, CsvQuotingErrors) {
  auto parser = MakeParser(Csv(), SensorSchema());
  Row row;
  Status st = parser->Parse(R"("open,1,2)", row);
  EXPECT_EQ(st.code(), StatusCode::kParseError);
  EXPECT_EQ(st.message(), "csv field 1: unterminated quoted field");
  st = parser->Parse(R"(a,"1"x,2)", row);
  EXPECT_EQ(st.message(), "csv field 2: unexpected text after the closing quote");
}

TEST(FormatsTest, CsvFieldCount) {
  auto parser = MakeParser(Csv(), SensorSchema());
  Row row;
  Status st = parser->Parse("sensor_1,1547718199", row);
  EXPECT_EQ(st.code(), StatusCode::kParseError);
  EXPECT_EQ(st.message(), "expected 3 csv fields, got 2");
  st = parser->Parse("sensor_1,1547718199,35.8,extra", row);
  EXPECT_EQ(st.message(), "expected 3 csv fields, got 4");
  st = parser->Parse("a,1,2,", row);
  EXPECT_EQ(st.message(), "expected 3 csv fields, got 4");
  st = parser->Parse("", row);
  EXPECT_EQ(st.message(), "expected 3 csv fields, got 1");
  // A delimiter inside quotes does not count.
  EXPECT_TRUE(parser->Parse(R"("a,b,c",1,2)", row).ok());
}

TEST(FormatsTest, CsvTrimAndDelimiterOptions) {
  FormatOptions o;
  o.trim = false;
  auto strict = MakeParser(o, SensorSchema());
  Row row;
  ASSERT_TRUE(strict->Parse(" a ,1,2", row).ok());
  EXPECT_EQ(row.Get(0), Value::String(" a "));
  EXPECT_EQ(strict->Parse("a, 1,2", row).message(), "field 'ts' (int64): cannot parse ' 1'");

  o = Csv();
  o.delimiter = '\t';
  auto tsv = MakeParser(o, SensorSchema());
  ASSERT_TRUE(tsv->Parse("a b\t 1 \t2.5", row).ok());
  EXPECT_EQ(row, Row({Value::String("a b"), Value::Int(1), Value::Double(2.5)}));
  ASSERT_TRUE(tsv->Parse("a\t\t2.5", row).ok());
  EXPECT_TRUE(row.Get(1).is_null());

  o = Csv();
  o.delimiter = ';';
  o.quote = '\'';
  auto semi = MakeParser(o, SensorSchema());
  ASSERT_TRUE(semi->Parse("'x;''y'''; 3; 1e2", row).ok());
  EXPECT_EQ(row, Row({Value::String("x;'y'"), Value::Int(3), Value::Double(100)}));

  o = Csv();
  o.quote = '\0';  // quoting off
  auto raw = MakeParser(o, SensorSchema());
  ASSERT_TRUE(raw->Parse(R"("a",1,2)", row).ok());
  EXPECT_EQ(row.Get(0), Value::String(R"("a")"));
}

TEST(FormatsTest, CsvHeaderHelper) {
  FormatOptions o;
  EXPECT_FALSE(HasHeaderLine(o));
  o.header = true;
  EXPECT_TRUE(HasHeaderLine(o));
  o.format = RecordFormat::kJson;
  EXPECT_FALSE(HasHeaderLine(o));

  auto names = ParseCsvHeader(R"(id, "time ""ms""",temperature)"
                              "\r",
                              Csv());
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(*names, (std::vector<std::string>{"id", R"(time "ms")", "temperature"}));
  auto bad = ParseCsvHeader(R"(id,"ts)", Csv());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "csv header: csv field 2: unterminated quoted field");
}

// ---------------------------------------------------------------------------------------------
// Conversions

TEST(FormatsTest, ConvertsInt64) {
  Value v;
  ASSERT_TRUE(ParseOne(DataType::kInt64, "42", v).ok());
  EXPECT_EQ(v, Value::Int(42));
  ASSERT_TRUE(ParseOne(DataType::kInt64, "+7", v).ok());
  EXPECT_EQ(v, Value::Int(7));
  ASSERT_TRUE(ParseOne(DataType::kInt64, "-9223372036854775808", v).ok());
  EXPECT_EQ(v, Value::Int(INT64_MIN));
  EXPECT_EQ(ParseOne(DataType::kInt64, "1.0", v).message(),
            "field 'f' (int64): cannot parse '1.0'");
  EXPECT_EQ(ParseOne(DataType::kInt64, "abc", v).message(),
            "field 'f' (int64): cannot parse 'abc'");
  EXPECT_EQ(ParseOne(DataType::kInt64, "+-1", v).message(),
            "field 'f' (int64): cannot parse '+-1'");
  EXPECT_EQ(ParseOne(DataType::kInt64, "-", v).message(), "field 'f' (int64): cannot parse '-'");
  EXPECT_EQ(ParseOne(DataType::kInt64, "12x", v).message(),
            "field 'f' (int64): cannot parse '12x'");
  EXPECT_EQ(ParseOne(DataType::kInt64, "9223372036854775808", v).message(),
            "field 'f' (int64): '9223372036854775808' is out of range");
  // Long values are cut in messages.
  std::string long_text(100, 'x');
  EXPECT_EQ(ParseOne(DataType::kInt64, long_text, v).message(),
            "field 'f' (int64): cannot parse '" + std::string(64, 'x') + "...'");
}

TEST(FormatsTest, ConvertsDouble) {
  Value v;
  ASSERT_TRUE(ParseOne(DataType::kDouble, "35.8", v).ok());
  EXPECT_EQ(v, Value::Double(35.8));
  ASSERT_TRUE(ParseOne(DataType::kDouble, "-1e3", v).ok());
  EXPECT_EQ(v, Value::Double(-1000));
  ASSERT_TRUE(ParseOne(DataType::kDouble, "+2.5", v).ok());
  EXPECT_EQ(v, Value::Double(2.5));
  ASSERT_TRUE(ParseOne(DataType::kDouble, "7", v).ok());
  EXPECT_EQ(v, Value::Double(7));
  ASSERT_TRUE(ParseOne(DataType::kDouble, "NaN", v).ok());
  EXPECT_TRUE(std::isnan(v.double_value()));
  ASSERT_TRUE(ParseOne(DataType::kDouble, "-Infinity", v).ok());
  EXPECT_EQ(v, Value::Double(-INFINITY));
  EXPECT_EQ(ParseOne(DataType::kDouble, "abc", v).message(),
            "field 'f' (double): cannot parse 'abc'");
  EXPECT_EQ(ParseOne(DataType::kDouble, "1.5.2", v).message(),
            "field 'f' (double): cannot parse '1.5.2'");
  EXPECT_EQ(ParseOne(DataType::kDouble, "1e999", v).message(),
            "field 'f' (double): '1e999' is out of range");
}

TEST(FormatsTest, ConvertsBool) {
  Value v;
  for (std::string_view t : {"true", "TRUE", "True", "1"}) {
    ASSERT_TRUE(ParseOne(DataType::kBool, t, v).ok()) << t;
    EXPECT_EQ(v, Value::Bool(true)) << t;
  }
  for (std::string_view t : {"false", "FaLsE", "0"}) {
    ASSERT_TRUE(ParseOne(DataType::kBool, t, v).ok()) << t;
    EXPECT_EQ(v, Value::Bool(false)) << t;
  }
  EXPECT_EQ(ParseOne(DataType::kBool, "yes", v).message(),
            "field 'f' (bool): cannot parse 'yes' (expected true, false, 1 or 0)");
  EXPECT_FALSE(ParseOne(DataType::kBool, "2", v).ok());
}

TEST(FormatsTest, ConvertsTimestamp) {
  Value v;
  ASSERT_TRUE(ParseOne(DataType::kTimestamp, "1547718199000", v).ok());
  EXPECT_EQ(v, Value::Time(1547718199000));
  ASSERT_TRUE(ParseOne(DataType::kTimestamp, "2019-01-17T09:43:19Z", v).ok());
  EXPECT_EQ(v, Value::Time(1547718199000));
  ASSERT_TRUE(ParseOne(DataType::kTimestamp, "2019-01-17T09:43:19.5Z", v).ok());
  EXPECT_EQ(v, Value::Time(1547718199500));
  ASSERT_TRUE(ParseOne(DataType::kTimestamp, "2019-01-17T17:43:19.123+08:00", v).ok());
  EXPECT_EQ(v, Value::Time(1547718199123));
  ASSERT_TRUE(ParseOne(DataType::kTimestamp, "2019-01-17 09:43:19", v).ok());
  EXPECT_EQ(v, Value::Time(1547718199000));
  EXPECT_EQ(ParseOne(DataType::kTimestamp, "yesterday", v).message(),
            "field 'f' (timestamp): cannot parse 'yesterday' (expected epoch milliseconds or a "
            "time like 2019-01-17T09:43:19Z)");
  EXPECT_EQ(ParseOne(DataType::kTimestamp, "99999999999999999999", v).message(),
            "field 'f' (timestamp): '99999999999999999999' is out of range");
}

TEST(FormatsTest, ParseTimestampTextForms) {
  struct Case {
    std::string_view text;
    int64_t ms;
  };
  const Case kCases[] = {
      {"1970-01-01", 0},
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T00:00Z", 0},
      {"1970-01-01 00:00:00.001", 1},
      {"1970-01-01T00:00:00.123456789Z", 123},
      {"1970-01-01T00:00:00,25Z", 250},
      {"1969-12-31T23:59:59.999Z", -1},
      {"1970-01-01T08:00:00+08:00", 0},
      {"1970-01-01T08:00:00+0800", 0},
      {"1970-01-01T08:00:00+08", 0},
      {"1969-12-31T19:00:00-05:00", 0},
      {"2000-02-29T00:00:00Z", 951782400000},
      {"2019-01-17t09:43:19z", 1547718199000},
      {"2019-01-17T09:43:19Z", 1547718199000},
      {"1600-03-01T00:00:00Z", -11670912000000},
  };
  for (const Case& c : kCases) {
    int64_t ms = 42;
    EXPECT_TRUE(ParseTimestampText(c.text, ms)) << c.text;
    EXPECT_EQ(ms, c.ms) << c.text;
  }
  for (std::string_view bad : {"",
                               "2019",
                               "2019-1-17",
                               "2019-13-01",
                               "2019-02-29",
                               "2019-01-32",
                               "2019-01-00",
                               "2019-01-17T",
                               "2019-01-17T24:00:00Z",
                               "2019-01-17T09:60:00Z",
                               "2019-01-17T09:43:60Z",
                               "2019-01-17T09:43:19.Z",
                               "2019-01-17T09:43:19+8",
                               "2019-01-17T09:43:19+08:0",
                               "2019-01-17T09:43:19+24:00",
                               "2019-01-17T09:43:19ZZ",
                               "2019-01-17X09:43:19",
                               "2019-01-17T09:43:19 ",
                               " 2019-01-17",
                               "abcd-ef-gh"}) {
    int64_t ms = 0;
    EXPECT_FALSE(ParseTimestampText(bad, ms)) << bad;
  }
}

TEST(FormatsTest, ConvertsStringAndBytes) {
  Value v;
  ASSERT_TRUE(ParseOne(DataType::kBytes, "\x01\xff raw", v).ok());
  EXPECT_EQ(v, Value::Bytes("\x01\xff raw"));
  ASSERT_TRUE(ParseOne(DataType::kString, "héllo", v).ok());
  EXPECT_EQ(v, Value::String("héllo"));
}

TEST(FormatsTest, NullableAndNonNullable) {
  auto schema = MakeSchema({{"id", DataType::kString, false},
                            {"ts", DataType::kInt64, true},
                            {"temperature", DataType::kDouble, false}});
  auto parser = MakeParser(Csv(), schema);
  Row row;
  ASSERT_TRUE(parser->Parse("a,,1.5", row).ok());
  EXPECT_TRUE(row.Get(1).is_null());
  ASSERT_TRUE(parser->Parse(R"(a,"",1.5)", row).ok());
  EXPECT_TRUE(row.Get(1).is_null());
  EXPECT_EQ(parser->Parse(",1,1.5", row).message(),
            "field 'id' (string): empty value for a non-nullable field");
  EXPECT_EQ(parser->Parse("a,1,  ", row).message(),
            "field 'temperature' (double): empty value for a non-nullable field");
  // The empty string is a value, not a null.
  EXPECT_TRUE(parser->Parse(R"("",1,1.5)", row).ok());

  auto json = MakeParser(Json(), schema);
  EXPECT_EQ(json->Parse(R"({"id":null,"temperature":1})", row).message(),
            "field 'id' (string): null for a non-nullable field");
  EXPECT_EQ(json->Parse(R"({"id":"x"})", row).message(),
            "field 'temperature' (double): missing key for a non-nullable field");
  EXPECT_EQ(json->Parse(R"({"id":"x","temperature":""})", row).message(),
            "field 'temperature' (double): empty string for a non-nullable field");
  ASSERT_TRUE(json->Parse(R"({"id":"","temperature":2,"ts":null})", row).ok());
  EXPECT_EQ(row, Row({Value::String(""), Value::Null(), Value::Double(2)}));
}

// ---------------------------------------------------------------------------------------------
// json

TEST(FormatsTest, JsonParsesObjects) {
  auto parser = MakeParser(Json(), SensorSchema());
  Row row;
  ASSERT_TRUE(parser->Parse(R"({"id":"sensor_1","ts":1547718199,"temperature":35.8})", row).ok());
  EXPECT_EQ(row, Row({Value::String("sensor_1"), Value::Int(1547718199), Value::Double(35.8)}));
  // Reordered keys, blanks everywhere, unknown keys of every kind.
  ASSERT_TRUE(parser
                  ->Parse(R"( { "temperature" : -1.5e1 , "extra": {"a":[1,{"b":null}],"c":"}"},)"
                          R"( "more": [true, false, "x\"y"], "ts": 7 , "id" : "s" } )"
                          "\r",
                          row)
                  .ok());
  EXPECT_EQ(row, Row({Value::String("s"), Value::Int(7), Value::Double(-15)}));
  // Missing keys are null.
  ASSERT_TRUE(parser->Parse(R"({"ts":3})", row).ok());
  EXPECT_EQ(row, Row({Value::Null(), Value::Int(3), Value::Null()}));
  ASSERT_TRUE(parser->Parse("{}", row).ok());
  EXPECT_EQ(row, Row({Value::Null(), Value::Null(), Value::Null()}));
  // Duplicate keys: the last wins.
  ASSERT_TRUE(parser->Parse(R"({"ts":1,"ts":2})", row).ok());
  EXPECT_EQ(row.Get(1), Value::Int(2));
}

TEST(FormatsTest, JsonStringEscapes) {
  auto parser = MakeParser(Json(), MakeSchema({{"s", DataType::kString}}));
  Row row;
  ASSERT_TRUE(parser->Parse(R"({"s":"a\"b\\c\/d\n\t\r\b\f"})", row).ok());
  EXPECT_EQ(row.Get(0), Value::String("a\"b\\c/d\n\t\r\b\f"));
  ASSERT_TRUE(parser->Parse(R"({"s":"caf\u00e9 \u20AC \ud83d\ude00 \u0041"})", row).ok());
  EXPECT_EQ(row.Get(0), Value::String("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 A"));
  // Unpaired surrogates become U+FFFD.
  ASSERT_TRUE(parser->Parse(R"({"s":"\ud83dx\ude00\ud83d\u0041"})", row).ok());
  EXPECT_EQ(row.Get(0), Value::String("\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd"
                                      "A"));
  // Escaped keys match field names.
  ASSERT_TRUE(parser->Parse(R"({"\u0073":"k"})", row).ok());
  EXPECT_EQ(row.Get(0), Value::String("k"));
  // Raw UTF-8 passes through.
  ASSERT_TRUE(parser->Parse("{\"s\":\"\xe6\x97\xa5\xe6\x9c\xac\"}", row).ok());
  EXPECT_EQ(row.Get(0), Value::String("\xe6\x97\xa5\xe6\x9c\xac"));

  EXPECT_EQ(parser->Parse(R"({"s":"\x"})", row).message(),
            "invalid JSON at column 8: invalid escape in string");
  EXPECT_EQ(parser->Parse(R"({"s":"\u12g4"})", row).message(),
            "invalid JSON at column 9: invalid \\u escape");
  EXPECT_EQ(parser->Parse(R"({"s":"abc)", row).message(),
            "invalid JSON at column 10: unterminated string");
}

TEST(FormatsTest, JsonValueConversions) {
  auto schema = MakeSchema({{"s", DataType::kString},
                            {"i", DataType::kInt64},
                            {"d", DataType::kDouble},
                            {"b", DataType::kBool},
                            {"t", DataType::kTimestamp}});
  auto parser = MakeParser(Json(), schema);
  Row row;
  // Strings are converted like csv text; scalars keep their JSON spelling for string fields.
  ASSERT_TRUE(
      parser->Parse(R"({"s":12.50,"i":"-3","d":"2.5","b":"TRUE","t":"2019-01-17T09:43:19Z"})", row)
          .ok());
  EXPECT_EQ(row, Row({Value::String("12.50"), Value::Int(-3), Value::Double(2.5), Value::Bool(true),
                      Value::Time(1547718199000)}));
  ASSERT_TRUE(parser->Parse(R"({"s":true,"i":0,"d":1e2,"b":false,"t":1547718199000})", row).ok());
  EXPECT_EQ(row, Row({Value::String("true"), Value::Int(0), Value::Double(100), Value::Bool(false),
                      Value::Time(1547718199000)}));
  ASSERT_TRUE(parser->Parse(R"({"b":1})", row).ok());
  EXPECT_EQ(row.Get(3), Value::Bool(true));

  EXPECT_EQ(parser->Parse(R"({"i":1.0})", row).message(), "field 'i' (int64): cannot parse '1.0'");
  EXPECT_EQ(parser->Parse(R"({"i":"abc"})", row).message(),
            "field 'i' (int64): cannot parse 'abc'");
  EXPECT_EQ(parser->Parse(R"({"i":true})", row).message(),
            "field 'i' (int64): cannot parse 'true'");
  EXPECT_EQ(parser->Parse(R"({"d":{"x":1}})", row).message(),
            "field 'd' (double): expected a scalar, got a JSON object");
  EXPECT_EQ(parser->Parse(R"({"b":[1]})", row).message(),
            "field 'b' (bool): expected a scalar, got a JSON array");
}

TEST(FormatsTest, JsonNestedValueIntoStringField) {
  auto parser = MakeParser(Json(), MakeSchema({{"id", DataType::kString},
                                               {"payload", DataType::kString},
                                               {"tags", DataType::kBytes}}));
  Row row;
  ASSERT_TRUE(
      parser->Parse(R"({"payload": {"a": [1, 2], "b": "x}"} ,"tags":[ "p","q" ],"id":"s"})", row)
          .ok());
  EXPECT_EQ(row.Get(0), Value::String("s"));
  EXPECT_EQ(row.Get(1), Value::String(R"({"a": [1, 2], "b": "x}"})"));
  EXPECT_EQ(row.Get(2), Value::Bytes(R"([ "p","q" ])"));
}

TEST(FormatsTest, JsonSyntaxErrors) {
  auto parser = MakeParser(Json(), SensorSchema());
  Row row;
  struct Case {
    std::string_view line;
    std::string_view message;
  };
  const Case kCases[] = {
      {"", "expected a JSON object, got an empty line"},
      {"   ", "expected a JSON object, got an empty line"},
      {"[1,2]", "expected a JSON object"},
      {"42", "expected a JSON object"},
      {R"("str")", "expected a JSON object"},
      {"sensor_1,1,2", "expected a JSON object"},
      {"{", "invalid JSON at column 2: expected a string key"},
      {R"({"id")", "invalid JSON at column 6: expected ':' after a key"},
      {R"({"id":)", "invalid JSON at column 7: unexpected end of line"},
      {R"({"id":"a")", "invalid JSON at column 10: expected ',' or '}'"},
      {R"({"id":"a",})", "invalid JSON at column 11: expected a string key"},
      {R"({"id":"a"} x)", "invalid JSON at column 12: unexpected text after the JSON object"},
      {R"({"id":tru})", "invalid JSON at column 7: invalid value"},
      {R"({"ts":01})", "invalid JSON at column 8: expected ',' or '}'"},
      {R"({"ts":1.})", "invalid JSON at column 9: invalid number"},
      {R"({"ts":-})", "invalid JSON at column 8: invalid number"},
      {R"({"ts":+1})", "invalid JSON at column 7: invalid value"},
      {R"({"x":[1,]})", "invalid JSON at column 9: invalid value"},
      {R"({"x":{"a":1,}})", "invalid JSON at column 13: expected a string key"},
      {R"({"x":[1 2]})", "invalid JSON at column 9: expected ',' or ']'"},
      {R"({id:1})", "invalid JSON at column 2: expected a string key"},
  };
  for (const Case& c : kCases) {
    Status st = parser->Parse(c.line, row);
    EXPECT_EQ(st.code(), StatusCode::kParseError) << c.line;
    EXPECT_EQ(st.message(), c.message) << c.line;
  }
  // Deep nesting is refused instead of overflowing the stack.
  std::string deep = R"({"x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(parser->Parse(deep, row).message(),
            "invalid JSON at column 70: values nested too deeply");
  std::string ok_depth = R"({"x":)" + std::string(60, '[') + std::string(60, ']') + "}";
  EXPECT_TRUE(parser->Parse(ok_depth, row).ok());
}

// ---------------------------------------------------------------------------------------------
// text

TEST(FormatsTest, TextFormat) {
  auto parser = MakeParser(Text(), MakeSchema({{"line", DataType::kString}}));
  Row row;
  ASSERT_TRUE(parser->Parse(R"(  a, "b" {c}  )", row).ok());
  EXPECT_EQ(row, Row({Value::String(R"(  a, "b" {c}  )")}));
  ASSERT_TRUE(parser->Parse("x\r", row).ok());
  EXPECT_EQ(row.Get(0), Value::String("x"));
  ASSERT_TRUE(parser->Parse("", row).ok());
  EXPECT_EQ(row.Get(0), Value::String(""));

  auto ints = MakeParser(Text(), MakeSchema({{"n", DataType::kInt64, false}}));
  ASSERT_TRUE(ints->Parse("17", row).ok());
  EXPECT_EQ(row.Get(0), Value::Int(17));
  EXPECT_EQ(ints->Parse("", row).message(),
            "field 'n' (int64): empty line for a non-nullable field");
  EXPECT_EQ(ints->Parse("x", row).message(), "field 'n' (int64): cannot parse 'x'");

  auto formatter = MakeFormatter(Text(), MakeSchema({{"line", DataType::kString}}));
  std::string out;
  formatter->Append(Row({Value::String("hello, world")}), out);
  EXPECT_EQ(out, "hello, world");
  out.clear();
  formatter->Append(Row({Value::Double(1)}), out);
  EXPECT_EQ(out, "1.0");
  out.clear();
  formatter->Append(Row({Value::Null()}), out);
  EXPECT_EQ(out, "");
}

// ---------------------------------------------------------------------------------------------
// Formatting and round trips

TEST(FormatsTest, CsvFormatting) {
  auto formatter = MakeFormatter(Csv(), SensorSchema());
  std::string out;
  formatter->Append(Row({Value::String("sensor_1"), Value::Int(1547718199), Value::Double(35.8)}),
                    out);
  EXPECT_EQ(out, "sensor_1,1547718199,35.8");
  out.clear();
  formatter->Append(Row({Value::String(R"(a,"b")"), Value::Null(), Value::Double(1)}), out);
  EXPECT_EQ(out, R"("a,""b""",,1.0)");
  out.clear();
  formatter->Append(Row({Value::String(""), Value::Bool(true), Value::Time(5)}), out);
  EXPECT_EQ(out, R"("",true,5)");
  out.clear();
  formatter->Append(Row({Value::String(" x"), Value::String("l1\nl2"), Value::String("y\r")}), out);
  EXPECT_EQ(out, "\" x\",\"l1\nl2\",\"y\r\"");
}

TEST(FormatsTest, JsonFormatting) {
  auto schema = MakeSchema({{"a", DataType::kInt64}, {"b", DataType::kString}});
  auto formatter = MakeFormatter(Json(), schema);
  std::string out;
  formatter->Append(Row({Value::Int(1), Value::String("x")}), out);
  EXPECT_EQ(out, R"({"a":1,"b":"x"})");
  out.clear();
  formatter->Append(Row({Value::Null(), Value::String("q\"\n")}), out);
  EXPECT_EQ(out, R"({"a":null,"b":"q\"\n"})");
  out.clear();
  formatter->Append(Row({Value::Int(1), Value::String("x"), Value::Bool(false)}), out);
  EXPECT_EQ(out, R"({"a":1,"b":"x","f2":false})");
}

Row RandomRow(std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  auto random_string = [&] {
    static constexpr std::string_view kAlphabet = "ab ,\"'\t\\;{}[]:\n\r\x01\xc3\xa9";
    std::string s;
    int n = pick(8);
    for (int i = 0; i < n; ++i) s.push_back(kAlphabet[static_cast<size_t>(pick(kAlphabet.size()))]);
    return s;
  };
  Row row(6);
  if (pick(5)) row.Set(0, Value::String(random_string()));
  if (pick(5)) row.Set(1, Value::Int(static_cast<int64_t>(rng())));
  if (pick(5)) {
    double d = std::ldexp(static_cast<double>(static_cast<int64_t>(rng())), pick(200) - 100);
    row.Set(2, Value::Double(d));
  }
  if (pick(5)) row.Set(3, Value::Bool(pick(2) == 1));
  if (pick(5))
    row.Set(4, Value::Time(static_cast<int64_t>(rng() % 4'000'000'000'000) - 1'000'000'000'000));
  if (pick(5)) row.Set(5, Value::Bytes(random_string()));
  return row;
}

SchemaPtr AllTypesSchema() {
  return MakeSchema({{"s", DataType::kString},
                     {"i", DataType::kInt64},
                     {"d", DataType::kDouble},
                     {"b", DataType::kBool},
                     {"t", DataType::kTimestamp},
                     {"y", DataType::kBytes}});
}

void ExpectRoundTrips(const FormatOptions& options) {
  auto schema = AllTypesSchema();
  auto parser = MakeParser(options, schema);
  auto formatter = MakeFormatter(options, schema);
  std::mt19937_64 rng(42);
  std::string line;
  Row back;
  for (int n = 0; n < 5000; ++n) {
    Row row = RandomRow(rng);
    line.clear();
    formatter->Append(row, line);
    Status st = parser->Parse(line, back);
    ASSERT_TRUE(st.ok()) << st.ToString() << " in " << line;
    ASSERT_EQ(back, row) << line << " -> " << back.ToString();
  }
  // Special doubles in csv (json writes them as null).
  if (options.format == RecordFormat::kCsv) {
    for (double d : std::initializer_list<double>{NAN, INFINITY, -INFINITY, -0.0, 5e-324,
                                                  1.7976931348623157e308}) {
      Row row({Value::Null(), Value::Null(), Value::Double(d), Value::Null(), Value::Null(),
               Value::Null()});
      line.clear();
      formatter->Append(row, line);
      ASSERT_TRUE(parser->Parse(line, back).ok()) << line;
      EXPECT_EQ(back, row) << line;
      EXPECT_EQ(std::signbit(back.Get(2).double_value()), std::signbit(d)) << line;
    }
  }
}

TEST(FormatsTest, CsvRoundTrips) {
  ExpectRoundTrips(Csv());
}

TEST(FormatsTest, CsvRoundTripsWithOtherOptions) {
  FormatOptions o;
  o.delimiter = '\t';
  o.quote = '\'';
  o.trim = false;
  ExpectRoundTrips(o);
}

TEST(FormatsTest, JsonRoundTrips) {
  ExpectRoundTrips(Json());
}

// ---------------------------------------------------------------------------------------------
// Robustness: no input may crash a parser or read out of bounds (run under ASan/UBSan).

void ExpectParseErrorOrOk(RowParser& parser, std::string_view line, Row& row) {
  // Copy into an exactly-sized heap buffer so that ASan sees any read past the end.
  std::unique_ptr<char[]> buf(new char[line.size() + 1]);
  std::copy(line.begin(), line.end(), buf.get());
  Status st = parser.Parse(std::string_view(buf.get(), line.size()), row);
  if (!st.ok()) {
    ASSERT_EQ(st.code(), StatusCode::kParseError) << st.ToString();
    ASSERT_FALSE(st.message().empty());
  }
}

TEST(FormatsTest, FuzzedInputNeverCrashes) {
  auto schema = AllTypesSchema();
  std::vector<std::unique_ptr<RowParser>> parsers;
  for (const FormatOptions& o : {Csv(), Json()}) parsers.push_back(MakeParser(o, schema));
  parsers.push_back(MakeParser(Text(), MakeSchema({{"t", DataType::kTimestamp}})));
  auto formatter = MakeFormatter(Json(), schema);

  const std::vector<std::string> kSeeds = {
      R"({"s":"a\u00e9\ud83d\ude00","i":-12,"d":1.5e-3,"b":true,"t":"2019-01-17T09:43:19.123+08:00","y":{"k":[1,null,"x"]}})",
      R"("q,""x""",1,2.5,true,2019-01-17 09:43:19,"")",
      "sensor_1,1547718199,35.8,0,1,2",
      R"({"s":[[[{"a":"\"\\"}]]],"x":{"y":[true,false,null,-0.0e+1]}})",
  };
  std::mt19937_64 rng(7);
  static constexpr char kAlphabet[] = "{}[]\":,\\u0123456789abcdefABCDEF-+.eE tfnrl\t\r\n\x80\xff";
  // Every byte of the alphabet including the terminating NUL.
  static constexpr std::string_view kBytes(kAlphabet, sizeof(kAlphabet));
  Row row;
  for (const std::string& seed : kSeeds) {
    // Every truncation.
    for (size_t cut = 0; cut <= seed.size(); ++cut) {
      for (auto& p : parsers) ExpectParseErrorOrOk(*p, std::string_view(seed).substr(0, cut), row);
    }
    // Random mutations: overwrite, insert and delete bytes.
    for (int n = 0; n < 3000; ++n) {
      std::string s = seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        size_t at = rng() % s.size();
        char c = kBytes[rng() % kBytes.size()];
        switch (rng() % 3) {
          case 0:
            s[at] = c;
            break;
          case 1:
            s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c);
            break;
          default:
            s.erase(at, 1);
            break;
        }
      }
      for (auto& p : parsers) ExpectParseErrorOrOk(*p, s, row);
    }
  }
  // Random bytes, from the interesting alphabet and from all 256 values.
  for (int n = 0; n < 20000; ++n) {
    std::string s(rng() % 40, '\0');
    bool any_byte = n % 2 == 0;
    for (char& c : s) {
      c = any_byte ? static_cast<char>(rng()) : kBytes[rng() % kBytes.size()];
    }
    if (n % 4 == 1) s.insert(0, "{");
    for (auto& p : parsers) ExpectParseErrorOrOk(*p, s, row);
  }
  // Whatever parsed can be formatted again.
  std::string out;
  formatter->Append(row, out);
  EXPECT_FALSE(out.empty());
}

}  // namespace
}  // namespace eddy
