#include <gtest/gtest.h>

#include "eddy/serialization.h"

namespace eddy {
namespace {

TEST(ValueTest, RowRoundTripsThroughBinaryEncoding) {
  Row row({Value::String("sensor_1"), Value::Int(-1547718199), Value::Double(35.8), Value::Null(),
           Value::Bool(true), Value::Time(5)});
  std::string buf;
  ByteWriter w(buf);
  Serializer<Row>::Write(row, w);
  ByteReader r(buf);
  Row back;
  ASSERT_TRUE(Serializer<Row>::Read(r, back));
  EXPECT_TRUE(r.AtEnd());
  EXPECT_EQ(back, row);
}

TEST(ValueTest, TruncatedInputFailsInsteadOfCrashing) {
  Row row({Value::String("a long enough string"), Value::Int(7)});
  std::string buf;
  ByteWriter w(buf);
  Serializer<Row>::Write(row, w);
  for (size_t cut = 0; cut < buf.size(); ++cut) {
    ByteReader r(std::string_view(buf).substr(0, cut));
    Row back;
    EXPECT_FALSE(Serializer<Row>::Read(r, back)) << "cut at " << cut;
  }
}

TEST(ValueTest, JsonFormatting) {
  Schema schema({{"id", DataType::kString}, {"avg", DataType::kDouble}, {"n", DataType::kInt64}});
  Row row({Value::String("s\"1"), Value::Double(34.55), Value::Int(2)});
  EXPECT_EQ(row.ToJson(&schema), R"({"id": "s\"1", "avg": 34.55, "n": 2})");
  std::string s;
  AppendDouble(s, 1.0);
  EXPECT_EQ(s, "1.0");
}

TEST(ValueTest, CompareOrdersNumbersAcrossTypes) {
  EXPECT_LT(Value::Int(1).Compare(Value::Double(1.5)), 0);
  EXPECT_EQ(Value::Int(2).Compare(Value::Double(2.0)), 0);
  EXPECT_LT(Value::Null().Compare(Value::Int(0)), 0);
  EXPECT_GT(Value::String("b").Compare(Value::String("a")), 0);
}

struct Point {
  int64_t x = 0;
  std::string label;
  double w = 0;
};

}  // namespace
}  // namespace eddy

EDDY_SERIALIZABLE(eddy::Point, x, label, w);

namespace eddy {
namespace {
TEST(ValueTest, SerializableMacroRoundTrips) {
  Point p{-42, "abc", 2.5};
  std::string buf;
  ByteWriter w(buf);
  Serializer<Point>::Write(p, w);
  ByteReader r(buf);
  Point q;
  ASSERT_TRUE(Serializer<Point>::Read(r, q));
  EXPECT_EQ(q.x, -42);
  EXPECT_EQ(q.label, "abc");
  EXPECT_EQ(q.w, 2.5);
}
}  // namespace
}  // namespace eddy
