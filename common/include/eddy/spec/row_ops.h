#pragma once

#include <memory>
#include <string>
#include <vector>

#include "eddy/datastream.h"
#include "eddy/expr.h"
#include "eddy/row.h"

namespace eddy {

/// Serializes the listed fields of a Row as a key (a Row of those values, Serializer<Row> format),
/// so that CurrentKey<Row>() gives the key fields back.
class RowKeySelector final : public KeySelector<Row> {
 public:
  explicit RowKeySelector(std::vector<int> fields) : fields_(std::move(fields)) {}
  void KeyBytes(const Row& row, std::string& out) const override;
  const std::vector<int>& fields() const { return fields_; }

 private:
  std::vector<int> fields_;
};

/// Counts and reports bad records of one operator: skip (count + first errors logged), fail, or
/// send to a dead-letter side output {source, record, error}.
enum class BadRecordPolicy : uint8_t { kSkip, kFail, kDeadLetter };

/// Schema of dead-letter records.
SchemaPtr DeadLetterSchema();

/// filter: keeps rows for which the expression is true.
class RowFilterOperator final : public OneInputOperator<Row, Row> {
 public:
  explicit RowFilterOperator(std::unique_ptr<Expression> e) : e_(std::move(e)) {}

 protected:
  void Process(const Row& r, Timestamp ts) override {
    if (e_->EvalBool(r)) out_->Collect(r, ts);
  }

 private:
  std::unique_ptr<Expression> e_;
};

/// map/project: one expression per output field; the output Row is reused.
class RowMapOperator final : public OneInputOperator<Row, Row> {
 public:
  explicit RowMapOperator(std::vector<std::unique_ptr<Expression>> exprs)
      : exprs_(std::move(exprs)) {
    row_.Resize(exprs_.size());
  }

 protected:
  void Process(const Row& r, Timestamp ts) override;

 private:
  std::vector<std::unique_ptr<Expression>> exprs_;
  Row row_;
};

/// flatMap split: emits the input fields plus `as` = each piece of the string expression split by
/// the delimiter (Flink's flatMap split-by-comma example).
class RowSplitOperator final : public OneInputOperator<Row, Row> {
 public:
  RowSplitOperator(std::unique_ptr<Expression> e, std::string delimiter, int out_index,
                   size_t out_size)
      : e_(std::move(e)), delimiter_(std::move(delimiter)), out_index_(out_index) {
    row_.Resize(out_size);
  }

 protected:
  void Process(const Row& r, Timestamp ts) override;

 private:
  std::unique_ptr<Expression> e_;
  std::string delimiter_;
  int out_index_;
  Value text_;
  Row row_;
};

/// Parses text lines into Rows of a schema; bad lines are skipped (counted), fail the task, or
/// go to the dead-letter side output, per policy.
class LineParserBase;
class RowParseOperator final : public OneInputOperator<std::string, Row> {
 public:
  RowParseOperator(std::unique_ptr<LineParserBase> parser, std::string source_name,
                   BadRecordPolicy policy, int dead_letter_tag, bool skip_header);
  ~RowParseOperator() override;
  Status Open() override;

 protected:
  void Process(const std::string& line, Timestamp ts) override;

 private:
  std::unique_ptr<LineParserBase> parser_;
  std::string source_name_;
  BadRecordPolicy policy_;
  int dead_letter_tag_;
  bool skip_header_;
  bool first_ = true;
  Row row_;
  Row dead_;
  int logged_ = 0;
};

/// Adapter so that RowParseOperator does not depend on the formats library's types directly.
class LineParserBase {
 public:
  virtual ~LineParserBase() = default;
  virtual Status Parse(std::string_view line, Row& out) = 0;
};

/// One aggregate of the job spec (count, sum, min, max, avg, first, last, minBy, maxBy,
/// count distinct, listagg).
struct AggregateSpec {
  enum class Kind : uint8_t {
    kCount,
    kCountDistinct,
    kSum,
    kMin,
    kMax,
    kAvg,
    kFirst,
    kLast,
    kMinBy,
    kMaxBy,
    kListAgg
  };
  std::string output;
  Kind kind = Kind::kCount;
  /// Argument expressions (compiled against the input schema); shared prototypes, cloned per use.
  std::shared_ptr<const Expression> arg;
  std::shared_ptr<const Expression> arg2;  ///< minBy/maxBy: the value to return (default: arg)
  DataType result_type = DataType::kInt64;
};

/// Accumulator of a list of aggregates.
struct RowAcc {
  std::vector<Value> a;
  std::vector<Value> b;
  std::vector<int64_t> n;
  std::vector<std::vector<std::string>> distinct;  // sorted serialized values
};

/// The job spec's aggregates as one AggregateFunction<Row, RowAcc, Row> (result = one field per
/// aggregate). Not thread-safe (evaluates expressions with scratch state): one instance per
/// subtask.
class RowAggregateFunction final : public AggregateFunction<Row, RowAcc, Row> {
 public:
  explicit RowAggregateFunction(const std::vector<AggregateSpec>& specs);
  RowAcc CreateAccumulator() const override;
  void Add(const Row& v, RowAcc& acc) const override;
  Row GetResult(const RowAcc& acc) const override;
  void Merge(RowAcc& a, const RowAcc& b) const override;

 private:
  std::vector<AggregateSpec> specs_;
  mutable std::vector<std::unique_ptr<Expression>> args_;
  mutable std::vector<std::unique_ptr<Expression>> args2_;
  mutable Value x_, y_;
  mutable std::string scratch_;
};

/// Window results: key fields + aggregates + window_start + window_end.
class RowWindowResultFunction final : public ProcessWindowFunction<Row, Row> {
 public:
  explicit RowWindowResultFunction(bool keyed) : keyed_(keyed) {}
  void Process(WindowContext& ctx, const std::vector<Row>& results, Collector<Row>& out) override;

 private:
  bool keyed_;
  Row key_;
  Row row_;
};

/// Full-window evaluation of the aggregates over the elements (evicting windows).
class RowListWindowFunction final : public ProcessWindowFunction<Row, Row> {
 public:
  RowListWindowFunction(const std::vector<AggregateSpec>& specs, bool keyed)
      : agg_(specs), result_(keyed) {}
  void Process(WindowContext& ctx, const std::vector<Row>& elements, Collector<Row>& out) override;

 private:
  RowAggregateFunction agg_;
  RowWindowResultFunction result_;
  std::vector<Row> one_;
};

/// keyBy + aggregate without a window: the running aggregates per key, emitted for every element.
class RowRollingAggregateOperator final : public OneInputOperator<Row, Row> {
 public:
  explicit RowRollingAggregateOperator(const std::vector<AggregateSpec>& specs) : agg_(specs) {}
  Status Open() override;

 protected:
  void Process(const Row& r, Timestamp ts) override;

 private:
  RowAggregateFunction agg_;
  ValueState<RowAcc>* state_ = nullptr;
  Row key_;
  Row row_;
};

/// Flink's rolling sum/min/max/minBy/maxBy on one field of a keyed Row stream.
class RowRollingFieldOperator final : public OneInputOperator<Row, Row> {
 public:
  enum class Kind : uint8_t { kSum, kMin, kMax, kMinBy, kMaxBy };
  RowRollingFieldOperator(Kind kind, int field) : kind_(kind), field_(field) {}
  Status Open() override;

 protected:
  void Process(const Row& r, Timestamp ts) override;

 private:
  Kind kind_;
  int field_;
  ValueState<Row>* state_ = nullptr;
};

/// The seed's TempConsIncreWarning: alerts when a field keeps rising for `interval` (event or
/// processing time). Output: key fields + alert_time + message.
class RisingValueFunction final : public ProcessFunction<Row, Row> {
 public:
  RisingValueFunction(int field, std::string field_name, Duration interval, bool event_time)
      : field_(field),
        field_name_(std::move(field_name)),
        interval_(interval),
        event_time_(event_time) {}
  Status Open(RuntimeContext& rc) override;
  void ProcessElement(const Row& v, ProcessContext& ctx, Collector<Row>& out) override;
  void OnTimer(Timestamp t, OnTimerContext& ctx, Collector<Row>& out) override;

 private:
  int field_;
  std::string field_name_;
  Duration interval_;
  bool event_time_;
  ValueState<double>* last_ = nullptr;
  ValueState<int64_t>* timer_ = nullptr;
  Row row_;
};

/// Emits the first element per key (optionally forgetting keys after a TTL).
class DedupFunction final : public ProcessFunction<Row, Row> {
 public:
  explicit DedupFunction(Duration ttl) : ttl_(ttl) {}
  Status Open(RuntimeContext& rc) override;
  void ProcessElement(const Row& v, ProcessContext& ctx, Collector<Row>& out) override;

 private:
  Duration ttl_;
  ValueState<bool>* seen_ = nullptr;
};

}  // namespace eddy

template <>
struct eddy::Serializer<eddy::RowAcc> {
  static void Write(const eddy::RowAcc& v, eddy::ByteWriter& w);
  static bool Read(eddy::ByteReader& r, eddy::RowAcc& v);
};
