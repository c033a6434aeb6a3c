#include "eddy/spec/row_ops.h"

#include <algorithm>
#include <cstdio>

namespace eddy {

void RowKeySelector::KeyBytes(const Row& row, std::string& out) const {
  out.clear();
  ByteWriter w(out);
  w.PutVarU64(fields_.size());
  static const Value kNull;
  for (int f : fields_) {
    Serializer<Value>::Write(
        static_cast<size_t>(f) < row.size() ? row.Get(static_cast<size_t>(f)) : kNull, w);
  }
}

SchemaPtr DeadLetterSchema() {
  static const SchemaPtr schema =
      std::make_shared<Schema>(std::vector<Field>{{"source", DataType::kString, false},
                                                  {"record", DataType::kString, false},
                                                  {"error", DataType::kString, false}});
  return schema;
}

void RowMapOperator::Process(const Row& r, Timestamp ts) {
  for (size_t i = 0; i < exprs_.size(); ++i) {
    if (!exprs_[i]->Eval(r, row_.Mutable(i)).ok()) row_.Mutable(i).SetNull();
  }
  out_->Collect(row_, ts);
}

void RowSplitOperator::Process(const Row& r, Timestamp ts) {
  if (!e_->Eval(r, text_).ok() || text_.is_null()) return;
  const std::string& s = text_.string_value();
  for (size_t i = 0, n = std::min(r.size(), row_.size()); i < n; ++i) {
    if (static_cast<int>(i) != out_index_) row_.Mutable(i) = r.Get(i);
  }
  size_t start = 0;
  while (true) {
    size_t c = delimiter_.empty() ? std::string::npos : s.find(delimiter_, start);
    std::string_view piece =
        std::string_view(s).substr(start, c == std::string::npos ? std::string::npos : c - start);
    row_.Mutable(static_cast<size_t>(out_index_)).SetString(piece);
    out_->Collect(row_, ts);
    if (c == std::string::npos) break;
    start = c + delimiter_.size();
  }
}

RowParseOperator::RowParseOperator(std::unique_ptr<LineParserBase> parser, std::string source_name,
                                   BadRecordPolicy policy, int dead_letter_tag, bool skip_header)
    : parser_(std::move(parser)),
      source_name_(std::move(source_name)),
      policy_(policy),
      dead_letter_tag_(dead_letter_tag),
      skip_header_(skip_header) {}

RowParseOperator::~RowParseOperator() = default;

Status RowParseOperator::Open() {
  dead_.Resize(3);
  dead_.Mutable(0).SetString(source_name_);
  // Only the subtask that reads the first line of the file sees the header.
  if (ctx_->subtask_index != 0) first_ = false;
  return Status::Ok();
}

void RowParseOperator::Process(const std::string& line, Timestamp ts) {
  if (first_) {
    first_ = false;
    if (skip_header_) return;
  }
  if (line.empty()) return;
  Status st = parser_->Parse(line, row_);
  if (st.ok()) {
    out_->Collect(row_, ts);
    return;
  }
  ++ctx_->counters->bad_records;
  switch (policy_) {
    case BadRecordPolicy::kFail:
      ctx_->Fail(Status::ParseError("source '" + source_name_ + "': bad record '" +
                                    line.substr(0, 200) + "': " + st.message() +
                                    " (onError: fail)"));
      break;
    case BadRecordPolicy::kDeadLetter:
      dead_.Mutable(1).SetString(line);
      dead_.Mutable(2).SetString(st.message());
      out_->EmitSide(dead_letter_tag_, &dead_, ts);
      break;
    case BadRecordPolicy::kSkip:
      if (logged_ < 5) {
        ++logged_;
        std::fprintf(stderr, "warning: source '%s' (subtask %d): skipped bad record '%.200s': %s\n",
                     source_name_.c_str(), ctx_->subtask_index, line.c_str(), st.message().c_str());
      }
      break;
  }
}

// ---- aggregates ----

RowAggregateFunction::RowAggregateFunction(const std::vector<AggregateSpec>& specs)
    : specs_(specs) {
  for (const auto& s : specs_) {
    args_.push_back(s.arg ? s.arg->Clone() : nullptr);
    args2_.push_back(s.arg2 ? s.arg2->Clone() : nullptr);
  }
}

RowAcc RowAggregateFunction::CreateAccumulator() const {
  RowAcc acc;
  acc.a.resize(specs_.size());
  acc.b.resize(specs_.size());
  acc.n.assign(specs_.size(), 0);
  acc.distinct.resize(specs_.size());
  return acc;
}

void RowAggregateFunction::Add(const Row& v, RowAcc& acc) const {
  using K = AggregateSpec::Kind;
  for (size_t i = 0; i < specs_.size(); ++i) {
    const auto& s = specs_[i];
    if (s.kind == K::kCount && !args_[i]) {
      acc.n[i]++;
      continue;
    }
    if (!args_[i]->Eval(v, x_).ok()) continue;
    if (x_.is_null()) continue;  // SQL: aggregates ignore nulls
    switch (s.kind) {
      case K::kCount:
        acc.n[i]++;
        break;
      case K::kCountDistinct: {
        scratch_.clear();
        ByteWriter w(scratch_);
        Serializer<Value>::Write(x_, w);
        auto& d = acc.distinct[i];
        auto it = std::lower_bound(d.begin(), d.end(), scratch_);
        if (it == d.end() || *it != scratch_) d.insert(it, scratch_);
        break;
      }
      case K::kSum:
        if (acc.n[i]++ == 0) {
          acc.a[i] = x_;
        } else if (acc.a[i].type() == DataType::kDouble || x_.type() == DataType::kDouble) {
          acc.a[i].SetDouble(acc.a[i].AsDouble() + x_.AsDouble());
        } else {
          acc.a[i].SetInt(static_cast<int64_t>(static_cast<uint64_t>(acc.a[i].int_value()) +
                                               static_cast<uint64_t>(x_.int_value())));
        }
        break;
      case K::kAvg:
        acc.a[i].SetDouble((acc.n[i] == 0 ? 0.0 : acc.a[i].AsDouble()) + x_.AsDouble());
        acc.n[i]++;
        break;
      case K::kMin:
        if (acc.n[i]++ == 0 || x_.Compare(acc.a[i]) < 0) acc.a[i] = x_;
        break;
      case K::kMax:
        if (acc.n[i]++ == 0 || x_.Compare(acc.a[i]) > 0) acc.a[i] = x_;
        break;
      case K::kFirst:
        if (acc.n[i]++ == 0) acc.a[i] = x_;
        break;
      case K::kLast:
        acc.n[i]++;
        acc.a[i] = x_;
        break;
      case K::kMinBy:
      case K::kMaxBy: {
        bool better = acc.n[i]++ == 0 ||
                      (s.kind == K::kMinBy ? x_.Compare(acc.a[i]) < 0 : x_.Compare(acc.a[i]) > 0);
        if (better) {
          acc.a[i] = x_;
          if (args2_[i]) {
            if (!args2_[i]->Eval(v, acc.b[i]).ok()) acc.b[i].SetNull();
          } else {
            acc.b[i] = x_;
          }
        }
        break;
      }
      case K::kListAgg: {
        std::string& out = acc.a[i].type() == DataType::kString ? acc.a[i].MutableString()
                                                                : acc.a[i].MutableString();
        if (acc.n[i]++ > 0) out.push_back(',');
        out += x_.ToString();
        break;
      }
    }
  }
}

Row RowAggregateFunction::GetResult(const RowAcc& acc) const {
  using K = AggregateSpec::Kind;
  Row r(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    Value& out = r.Mutable(i);
    switch (specs_[i].kind) {
      case K::kCount:
        out.SetInt(acc.n[i]);
        break;
      case K::kCountDistinct:
        out.SetInt(static_cast<int64_t>(acc.distinct[i].size()));
        break;
      case K::kAvg:
        if (acc.n[i] > 0) out.SetDouble(acc.a[i].AsDouble() / static_cast<double>(acc.n[i]));
        break;
      case K::kMinBy:
      case K::kMaxBy:
        if (acc.n[i] > 0) out = acc.b[i];
        break;
      default:
        if (acc.n[i] > 0) out = acc.a[i];
        break;
    }
  }
  return r;
}

void RowAggregateFunction::Merge(RowAcc& a, const RowAcc& b) const {
  using K = AggregateSpec::Kind;
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (b.n[i] == 0 && b.distinct[i].empty()) continue;
    switch (specs_[i].kind) {
      case K::kCount:
        a.n[i] += b.n[i];
        break;
      case K::kCountDistinct: {
        std::vector<std::string> m;
        std::set_union(a.distinct[i].begin(), a.distinct[i].end(), b.distinct[i].begin(),
                       b.distinct[i].end(), std::back_inserter(m));
        a.distinct[i] = std::move(m);
        break;
      }
      case K::kSum:
        if (a.n[i] == 0) {
          a.a[i] = b.a[i];
        } else if (a.a[i].type() == DataType::kDouble || b.a[i].type() == DataType::kDouble) {
          a.a[i].SetDouble(a.a[i].AsDouble() + b.a[i].AsDouble());
        } else {
          a.a[i].SetInt(static_cast<int64_t>(static_cast<uint64_t>(a.a[i].int_value()) +
                                             static_cast<uint64_t>(b.a[i].int_value())));
        }
        a.n[i] += b.n[i];
        break;
      case K::kAvg:
        a.a[i].SetDouble((a.n[i] ? a.a[i].AsDouble() : 0.0) + b.a[i].AsDouble());
        a.n[i] += b.n[i];
        break;
      case K::kMin:
        if (a.n[i] == 0 || b.a[i].Compare(a.a[i]) < 0) a.a[i] = b.a[i];
        a.n[i] += b.n[i];
        break;
      case K::kMax:
        if (a.n[i] == 0 || b.a[i].Compare(a.a[i]) > 0) a.a[i] = b.a[i];
        a.n[i] += b.n[i];
        break;
      case K::kFirst:
        if (a.n[i] == 0) a.a[i] = b.a[i];
        a.n[i] += b.n[i];
        break;
      case K::kLast:
        a.a[i] = b.a[i];
        a.n[i] += b.n[i];
        break;
      case K::kMinBy:
      case K::kMaxBy: {
        bool better = a.n[i] == 0 || (specs_[i].kind == K::kMinBy ? b.a[i].Compare(a.a[i]) < 0
                                                                  : b.a[i].Compare(a.a[i]) > 0);
        if (better) {
          a.a[i] = b.a[i];
          a.b[i] = b.b[i];
        }
        a.n[i] += b.n[i];
        break;
      }
      case K::kListAgg:
        if (a.n[i] > 0) a.a[i].MutableString().push_back(',');
        a.a[i].MutableString() += b.a[i].string_value();
        a.n[i] += b.n[i];
        break;
    }
  }
}

void RowWindowResultFunction::Process(WindowContext& ctx, const std::vector<Row>& results,
                                      Collector<Row>& out) {
  size_t k = 0;
  if (keyed_) {
    ByteReader r(ctx.current_key_bytes());
    Serializer<Row>::Read(r, key_);
    k = key_.size();
  }
  for (const Row& res : results) {
    row_.Resize(k + res.size() + 2);
    for (size_t i = 0; i < k; ++i) row_.Mutable(i) = key_.Get(i);
    for (size_t i = 0; i < res.size(); ++i) row_.Mutable(k + i) = res.Get(i);
    row_.Mutable(k + res.size()).SetTimestamp(ctx.window().start);
    row_.Mutable(k + res.size() + 1).SetTimestamp(ctx.window().end);
    out.Collect(row_);
  }
}

void RowListWindowFunction::Process(WindowContext& ctx, const std::vector<Row>& elements,
                                    Collector<Row>& out) {
  RowAcc acc = agg_.CreateAccumulator();
  for (const Row& e : elements) agg_.Add(e, acc);
  one_.assign(1, agg_.GetResult(acc));
  result_.Process(ctx, one_, out);
}

Status RowRollingAggregateOperator::Open() {
  state_ = Backend()->GetValueState(ValueStateDescriptor<RowAcc>{{"rolling-aggregate", {}}});
  return Status::Ok();
}

void RowRollingAggregateOperator::Process(const Row& r, Timestamp ts) {
  // GetOrCreate, not a cast of Get(): a mutation must go through the state (RocksDB writes the
  // accumulator back).
  const bool fresh = state_->Get() == nullptr;
  RowAcc& acc = state_->GetOrCreate();
  if (fresh) acc = agg_.CreateAccumulator();
  agg_.Add(r, acc);
  Row res = agg_.GetResult(acc);
  ByteReader kr(ctx_->keyed_backend->current_key());
  Serializer<Row>::Read(kr, key_);
  row_.Resize(key_.size() + res.size());
  for (size_t i = 0; i < key_.size(); ++i) row_.Mutable(i) = key_.Get(i);
  for (size_t i = 0; i < res.size(); ++i) row_.Mutable(key_.size() + i) = res.Get(i);
  out_->Collect(row_, ts);
}

Status RowRollingFieldOperator::Open() {
  state_ = Backend()->GetValueState(
      ValueStateDescriptor<Row>{{"rolling-" + std::to_string(field_), {}}});
  return Status::Ok();
}

void RowRollingFieldOperator::Process(const Row& r, Timestamp ts) {
  const Row* cur = state_->Get();
  if (!cur) {
    state_->Update(r);
    out_->Collect(r, ts);
    return;
  }
  Row& acc = state_->GetOrCreate();
  const auto f = static_cast<size_t>(field_);
  const Value& v = r.Get(f);
  Value& a = acc.Mutable(f);
  switch (kind_) {
    case Kind::kSum:
      if (a.is_null()) {
        a = v;
      } else if (!v.is_null()) {
        if (a.type() == DataType::kDouble || v.type() == DataType::kDouble) {
          a.SetDouble(a.AsDouble() + v.AsDouble());
        } else {
          a.SetInt(static_cast<int64_t>(static_cast<uint64_t>(a.int_value()) +
                                        static_cast<uint64_t>(v.int_value())));
        }
      }
      break;
    case Kind::kMin:
      if (!v.is_null() && (a.is_null() || v.Compare(a) < 0)) a = v;
      break;
    case Kind::kMax:
      if (!v.is_null() && (a.is_null() || v.Compare(a) > 0)) a = v;
      break;
    case Kind::kMinBy:
      if (!v.is_null() && (a.is_null() || v.Compare(a) < 0)) acc = r;
      break;
    case Kind::kMaxBy:
      if (!v.is_null() && (a.is_null() || v.Compare(a) > 0)) acc = r;
      break;
  }
  out_->Collect(acc, ts);
}

Status RisingValueFunction::Open(RuntimeContext& rc) {
  last_ = rc.GetState(ValueStateDescriptor<double>{{"last-value", {}}});
  timer_ = rc.GetState(ValueStateDescriptor<int64_t>{{"timer-ts", {}}});
  return Status::Ok();
}

void RisingValueFunction::ProcessElement(const Row& v, ProcessContext& ctx, Collector<Row>&) {
  const Value& x = v.Get(static_cast<size_t>(field_));
  if (x.is_null()) return;
  double value = x.AsDouble();
  // The seed initialises the last value with Double.MIN_VALUE (the smallest positive double).
  const double* last_ptr = last_->Get();
  double last = last_ptr ? *last_ptr : 4.9e-324;
  const int64_t* timer = timer_->Get();
  TimerService* ts = ctx.timer_service();
  if (value > last && !timer) {
    Timestamp base = event_time_ ? ctx.timestamp() : ts->CurrentProcessingTime();
    Timestamp t = base + interval_;
    if (event_time_) {
      ts->RegisterEventTimeTimer(t);
    } else {
      ts->RegisterProcessingTimeTimer(t);
    }
    timer_->Update(t.millis());
  } else if (value < last && timer) {
    if (event_time_) {
      ts->DeleteEventTimeTimer(Timestamp(*timer));
    } else {
      ts->DeleteProcessingTimeTimer(Timestamp(*timer));
    }
    timer_->Clear();
  }
  last_->Update(value);
}

void RisingValueFunction::OnTimer(Timestamp t, OnTimerContext& ctx, Collector<Row>& out) {
  Row key;
  ByteReader r(ctx.current_key_bytes());
  Serializer<Row>::Read(r, key);
  row_.Resize(key.size() + 2);
  std::string key_text;
  for (size_t i = 0; i < key.size(); ++i) {
    row_.Mutable(i) = key.Get(i);
    if (i) key_text += ",";
    key_text += key.Get(i).ToString();
  }
  row_.Mutable(key.size()).SetTimestamp(t.millis());
  row_.Mutable(key.size() + 1)
      .SetString(key_text + ": " + field_name_ + " rose continuously for " + interval_.ToString());
  out.Collect(row_);
  timer_->Clear();
}

Status DedupFunction::Open(RuntimeContext& rc) {
  ValueStateDescriptor<bool> d{{"seen", {}}};
  d.ttl.ttl = ttl_;
  seen_ = rc.GetState(d);
  return Status::Ok();
}

void DedupFunction::ProcessElement(const Row& v, ProcessContext&, Collector<Row>& out) {
  if (seen_->Get()) return;
  seen_->Update(true);
  out.Collect(v);
}

}  // namespace eddy

void eddy::Serializer<eddy::RowAcc>::Write(const eddy::RowAcc& v, eddy::ByteWriter& w) {
  Serializer<std::vector<Value>>::Write(v.a, w);
  Serializer<std::vector<Value>>::Write(v.b, w);
  Serializer<std::vector<int64_t>>::Write(v.n, w);
  Serializer<std::vector<std::vector<std::string>>>::Write(v.distinct, w);
}

bool eddy::Serializer<eddy::RowAcc>::Read(eddy::ByteReader& r, eddy::RowAcc& v) {
  return Serializer<std::vector<Value>>::Read(r, v.a) &&
         Serializer<std::vector<Value>>::Read(r, v.b) &&
         Serializer<std::vector<int64_t>>::Read(r, v.n) &&
         Serializer<std::vector<std::vector<std::string>>>::Read(r, v.distinct);
}
