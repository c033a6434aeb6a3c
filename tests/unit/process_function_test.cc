// ProcessFunction / KeyedProcessFunction (timers, context, side outputs, state), rolling
// aggregations on keyed streams, and the RichFunction lifecycle with its RuntimeContext.

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "eddy/spec/row_ops.h"
#include "tests/backend_test.h"
#include "tests/operator_harness.h"
#include "tests/test_util.h"

namespace eddy::pf_test {
struct Ev {
  std::string key;
  int64_t v = 0;
};
struct Reading {
  std::string id;
  int64_t ts = 0;
  double temp = 0;
  bool operator==(const Reading&) const = default;
};
}  // namespace eddy::pf_test
EDDY_SERIALIZABLE(eddy::pf_test::Ev, key, v);
EDDY_SERIALIZABLE(eddy::pf_test::Reading, id, ts, temp);

namespace eddy {
namespace {

// Run once per keyed state backend (heap, RocksDB).
EDDY_BACKEND_TEST_SUITE(KeyedProcessFunctionTest);
EDDY_BACKEND_TEST_SUITE(RollingTest);
EDDY_BACKEND_TEST_SUITE(RichFunctionTest);

using pf_test::Ev;
using pf_test::Reading;
using testing::OneInputHarness;
using Out = std::vector<std::string>;

struct KeyOf {
  std::string operator()(const Ev& e) const { return e.key; }
};

std::string Ts(Timestamp t) {
  return t.IsNone() ? "none" : std::to_string(t.millis());
}

/// v > 0: register an event timer at v; v < 0: delete the event timer at -v; v == 0: register a
/// processing timer 100 ms from now. Reports elements and timers with their context.
class TimerFn final : public KeyedProcessFunction<std::string, Ev, std::string> {
 public:
  void ProcessElement(const Ev& e, ProcessContext& ctx, Collector<std::string>& out) override {
    TimerService* ts = ctx.timer_service();
    EXPECT_NE(ts, nullptr);
    if (e.v > 0) ts->RegisterEventTimeTimer(Timestamp(e.v));
    if (e.v < 0) ts->DeleteEventTimeTimer(Timestamp(-e.v));
    if (e.v == 0)
      ts->RegisterProcessingTimeTimer(ts->CurrentProcessingTime() + Duration::Millis(100));
    out.Collect("el " + ctx.CurrentKey<std::string>() + " ts=" + Ts(ctx.timestamp()) +
                " wm=" + Ts(ctx.current_watermark()));
  }
  void OnTimer(Timestamp t, OnTimerContext& ctx, Collector<std::string>& out) override {
    out.Collect(std::string(ctx.time_domain() == TimeDomain::kEventTime ? "event " : "proc ") +
                ctx.CurrentKey<std::string>() + "@" + std::to_string(t.millis()) +
                " ts=" + Ts(ctx.timestamp()) + " wm=" + Ts(ctx.current_watermark()));
  }
};

template <class OUT>
std::unique_ptr<OneInputHarness<Ev, OUT>> Keyed(std::shared_ptr<ProcessFunction<Ev, OUT>> f) {
  auto op = std::make_unique<ProcessOperator<Ev, OUT>>(std::move(f));
  op->SetKeySelector(std::make_shared<LambdaKeySelector<Ev, std::string, KeyOf>>(KeyOf{}));
  auto h = std::make_unique<OneInputHarness<Ev, OUT>>(std::move(op));
  EXPECT_TRUE(h->Open().ok());
  return h;
}

// ---------------------------------------------------------------------------------------------
// Keyed process functions through the harness
// ---------------------------------------------------------------------------------------------

TEST_P(KeyedProcessFunctionTest, EventTimersFirePerKeyWithTheirContext) {
  auto h = Keyed<std::string>(std::make_shared<TimerFn>());
  h->Element({"a", 15}, 5);
  h->Element({"b", 17}, 7);
  h->Element({"a", 15}, 6);  // same timer again: deduplicated
  h->Watermark(10);
  h->Element({"b", 30}, 12);
  EXPECT_EQ(h->output().TakeRecords(),
            (Out{"el a ts=5 wm=" + Ts(Watermark::Min()), "el b ts=7 wm=" + Ts(Watermark::Min()),
                 "el a ts=6 wm=" + Ts(Watermark::Min()), "el b ts=12 wm=10"}));
  h->Watermark(16);
  EXPECT_EQ(h->output().TakeRecords(), Out{"event a@15 ts=15 wm=16"});
  h->Watermark(100);
  EXPECT_EQ(h->output().TakeRecords(), (Out{"event b@17 ts=17 wm=100", "event b@30 ts=30 wm=100"}));
  // The timer's output carries the timer's time as its timestamp, before the watermark.
  const auto& ev = h->output().events;
  ASSERT_GE(ev.size(), 1u);
  EXPECT_EQ(ev.back().kind, testing::CapturingOutput<std::string>::Event::kWatermark);
}

TEST_P(KeyedProcessFunctionTest, DeletedTimersDoNotFireAndDeletionIsPerKey) {
  auto h = Keyed<std::string>(std::make_shared<TimerFn>());
  h->Element({"a", 20}, 1);
  h->Element({"b", 20}, 1);
  h->Element({"a", -20}, 2);  // deletes a's timer only
  h->Element({"a", -99}, 2);  // deleting a timer that does not exist is harmless
  h->output().TakeRecords();
  h->Watermark(50);
  EXPECT_EQ(h->output().TakeRecords(), Out{"event b@20 ts=20 wm=50"});
}

TEST_P(KeyedProcessFunctionTest, ProcessingTimersFireOnTheClockWithoutATimestamp) {
  auto h = Keyed<std::string>(std::make_shared<TimerFn>());
  h->AdvanceProcessingTime(1000);
  h->Element({"p", 0}, 42);
  h->output().TakeRecords();
  h->AdvanceProcessingTime(1099);
  EXPECT_TRUE(h->output().TakeRecords().empty());
  h->AdvanceProcessingTime(1100);
  const auto& ev = h->output().events;
  ASSERT_FALSE(ev.empty());
  EXPECT_TRUE(ev.back().ts.IsNone()) << "processing-time timer output has no timestamp";
  EXPECT_EQ(h->output().TakeRecords(), Out{"proc p@1100 ts=none wm=" + Ts(Watermark::Min())});
}

/// Counts elements per key in keyed state and sends odd counts to a side output.
class CountPerKey final : public KeyedProcessFunction<std::string, Ev, int64_t> {
 public:
  explicit CountPerKey(OutputTag<std::string> odd) : odd_(std::move(odd)) {}
  Status Open(RuntimeContext& rc) override {
    EXPECT_TRUE(rc.has_keyed_state());
    count_ = rc.GetState(ValueStateDescriptor<int64_t>{{"count", {}}});
    return Status::Ok();
  }
  void ProcessElement(const Ev& e, ProcessContext& ctx, Collector<int64_t>& out) override {
    int64_t& n = count_->GetOrCreate();
    ++n;
    out.Collect(n);
    if (n % 2 == 1) ctx.Output(odd_, e.key + "#" + std::to_string(n));
  }

 private:
  OutputTag<std::string> odd_;
  ValueState<int64_t>* count_ = nullptr;
};

TEST_P(KeyedProcessFunctionTest, KeyedStateAndSideOutputs) {
  OutputTag<std::string> odd("odd");
  auto h = Keyed<int64_t>(std::make_shared<CountPerKey>(odd));
  for (const char* k : {"a", "b", "a", "a", "b"}) h->Element({k, 0}, 1);
  EXPECT_EQ(h->output().Records(), (std::vector<int64_t>{1, 1, 2, 3, 2}));
  EXPECT_EQ(h->output().side_count[odd.id()], 3);
  ASSERT_EQ(h->output().side.size(), 3u);
  EXPECT_EQ(h->output().side[0].ts, Timestamp(1)) << "side records keep the element's timestamp";
  EXPECT_EQ(h->backend()->NumEntries(), 2u);
}

/// Non-keyed: no timers, no key.
class Plain final : public ProcessFunction<Ev, std::string> {
 public:
  void ProcessElement(const Ev& e, ProcessContext& ctx, Collector<std::string>& out) override {
    EXPECT_EQ(ctx.timer_service(), nullptr);
    EXPECT_TRUE(ctx.current_key_bytes().empty());
    out.Collect(e.key + ":" + Ts(ctx.timestamp()));
    out.Collect(e.key + ":again");
  }
};

TEST(ProcessFunctionTest, NonKeyedFunctionsHaveNoTimersAndEmitMany) {
  OneInputHarness<Ev, std::string> h(
      std::make_unique<ProcessOperator<Ev, std::string>>(std::make_shared<Plain>()));
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.backend(), nullptr);
  h.Element({"x", 0}, 9);
  EXPECT_EQ(h.output().Records(), (Out{"x:9", "x:again"}));
  EXPECT_EQ(h.output().events[1].ts, Timestamp(9))
      << "collected records keep the element's timestamp";
}

TEST(ProcessFunctionTest, SideOutputsThroughAJob) {
  OutputTag<std::string> odd("odd");
  for (int par : {1, 3}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(par);
    std::vector<Ev> data;
    for (int i = 0; i < 30; ++i) data.push_back({"k" + std::to_string(i % 3), i});
    auto counts =
        env.FromCollection(data).KeyBy([](const Ev& e) { return e.key; }).Process<int64_t>([odd] {
          return std::make_shared<CountPerKey>(odd);
        });
    auto main = testing::CollectInto(counts);
    auto side = testing::CollectInto(counts.GetSideOutput(odd));
    auto r = testing::RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(main->values().size(), 30u);
    auto s = side->sorted();
    ASSERT_EQ(s.size(), 15u);  // counts 1, 3, 5, 7, 9 for each of 3 keys
    EXPECT_EQ(std::count(s.begin(), s.end(), "k1#9"), 1);
    EXPECT_EQ(std::count(s.begin(), s.end(), "k1#10"), 0);
  }
}

TEST_P(KeyedProcessFunctionTest, DedupForgetsKeysAfterItsTtl) {
  auto op = std::make_unique<ProcessOperator<Row, Row>>(
      std::make_shared<DedupFunction>(Duration::Millis(100)));
  op->SetKeySelector(std::make_shared<RowKeySelector>(std::vector<int>{0}));
  OneInputHarness<Row, Row> h(std::move(op));
  ASSERT_TRUE(h.Open().ok());
  auto row = [](const char* k, int64_t v) { return Row({Value::String(k), Value::Int(v)}); };
  h.Element(row("a", 1), 0);
  h.Element(row("b", 2), 0);
  h.AdvanceProcessingTime(50);
  h.Element(row("a", 3), 0);  // a duplicate within the TTL
  h.AdvanceProcessingTime(100);
  h.Element(row("a", 4), 0);  // a's TTL (from its first write at 0) has passed
  h.Element(row("b", 5), 0);
  std::vector<int64_t> kept;
  for (const auto& r : h.output().Records()) kept.push_back(r.Get(1).int_value());
  EXPECT_EQ(kept, (std::vector<int64_t>{1, 2, 4, 5}));
}

// ---------------------------------------------------------------------------------------------
// Rolling aggregations (Flink semantics)
// ---------------------------------------------------------------------------------------------

const std::vector<Reading> kReadings = {{"s1", 1, 30}, {"s2", 2, 10}, {"s1", 3, 35},
                                        {"s1", 4, 20}, {"s2", 5, 15}, {"s1", 6, 35}};

/// Runs f(keyed stream) at parallelism 2 and returns the outputs per key, in order.
template <class F>
std::map<std::string, std::vector<std::pair<int64_t, double>>> Rolling(F f) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  auto keyed = env.FromCollection(kReadings).KeyBy([](const Reading& r) { return r.id; });
  auto out = testing::CollectInto(f(keyed));
  auto r = testing::RunJob(env);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  std::map<std::string, std::vector<std::pair<int64_t, double>>> per_key;
  for (const auto& v : out->values()) per_key[v.id].emplace_back(v.ts, v.temp);
  return per_key;
}

using Series = std::vector<std::pair<int64_t, double>>;
using KS = KeyedStream<Reading, std::string>;

TEST_P(RollingTest, SumKeepsTheFirstElementsOtherFields) {
  auto r = Rolling([](const KS& k) { return k.Sum(&Reading::temp); });
  EXPECT_EQ(r["s1"], (Series{{1, 30}, {1, 65}, {1, 85}, {1, 120}}));
  EXPECT_EQ(r["s2"], (Series{{2, 10}, {2, 25}}));
}

TEST_P(RollingTest, MinAndMaxUpdateOnlyTheField) {
  auto mx = Rolling([](const KS& k) { return k.Max(&Reading::temp); });
  EXPECT_EQ(mx["s1"], (Series{{1, 30}, {1, 35}, {1, 35}, {1, 35}}));
  EXPECT_EQ(mx["s2"], (Series{{2, 10}, {2, 15}}));
  auto mn = Rolling([](const KS& k) { return k.Min(&Reading::temp); });
  EXPECT_EQ(mn["s1"], (Series{{1, 30}, {1, 30}, {1, 20}, {1, 20}}));
  EXPECT_EQ(mn["s2"], (Series{{2, 10}, {2, 10}}));
}

TEST_P(RollingTest, MinByAndMaxByReturnTheWholeElementFirstOnTies) {
  auto mx = Rolling([](const KS& k) { return k.MaxBy(&Reading::temp); });
  EXPECT_EQ(mx["s1"], (Series{{1, 30}, {3, 35}, {3, 35}, {3, 35}})) << "ts 6 ties with ts 3";
  EXPECT_EQ(mx["s2"], (Series{{2, 10}, {5, 15}}));
  auto mn = Rolling([](const KS& k) { return k.MinBy(&Reading::temp); });
  EXPECT_EQ(mn["s1"], (Series{{1, 30}, {1, 30}, {4, 20}, {4, 20}}));
  EXPECT_EQ(mn["s2"], (Series{{2, 10}, {2, 10}}));
}

TEST_P(RollingTest, ReduceEmitsTheRunningResultPerKey) {
  auto r = Rolling([](const KS& k) {
    return k.Reduce([](const Reading& a, const Reading& b) {
      return Reading{a.id, b.ts, a.temp + b.temp};
    });
  });
  EXPECT_EQ(r["s1"], (Series{{1, 30}, {3, 65}, {4, 85}, {6, 120}}));
  EXPECT_EQ(r["s2"], (Series{{2, 10}, {5, 25}}));
}

TEST_P(RollingTest, GroupedReduceOperatorKeepsOneValuePerKey) {
  auto rf = std::make_shared<LambdaReduceFunction<Ev, std::function<Ev(const Ev&, const Ev&)>>>(
      [](const Ev& a, const Ev& b) {
        return Ev{a.key, a.v + b.v};
      });
  auto op = std::make_unique<GroupedReduceOperator<Ev>>(rf);
  op->SetKeySelector(std::make_shared<LambdaKeySelector<Ev, std::string, KeyOf>>(KeyOf{}));
  OneInputHarness<Ev, Ev> h(std::move(op));
  ASSERT_TRUE(h.Open().ok());
  for (int i = 1; i <= 4; ++i) h.Element({i % 2 ? "odd" : "even", i}, i);
  std::vector<int64_t> got;
  for (const auto& e : h.output().Records()) got.push_back(e.v);
  EXPECT_EQ(got, (std::vector<int64_t>{1, 2, 4, 6}));
  EXPECT_EQ(h.backend()->NumEntries(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Rich functions: lifecycle and RuntimeContext
// ---------------------------------------------------------------------------------------------

struct Lifecycle {
  std::mutex mu;
  std::set<int> subtasks;
  std::set<std::string> task_names;
  std::atomic<int> opens{0}, closes{0}, finishes{0}, records{0};
  int parallelism = 0, max_parallelism = 0;
  bool keyed = true;
};

class RichMap final : public MapFunction<int64_t, int64_t> {
 public:
  explicit RichMap(std::shared_ptr<Lifecycle> l) : l_(std::move(l)) {}
  Status Open(RuntimeContext& rc) override {
    std::lock_guard lock(l_->mu);
    l_->opens++;
    l_->subtasks.insert(rc.subtask_index());
    l_->task_names.insert(rc.task_name());
    l_->parallelism = rc.parallelism();
    l_->max_parallelism = rc.max_parallelism();
    l_->keyed = rc.has_keyed_state();
    EXPECT_EQ(rc.attempt_number(), 0);
    return Status::Ok();
  }
  void Close() override { l_->closes++; }
  int64_t Map(const int64_t& v) override {
    EXPECT_GT(l_->opens.load(), 0) << "opened before the first element";
    return v * 2;
  }

 private:
  std::shared_ptr<Lifecycle> l_;
};

class RichSink final : public SinkFunction<int64_t> {
 public:
  explicit RichSink(std::shared_ptr<Lifecycle> l) : l_(std::move(l)) {}
  Status Open(RuntimeContext&) override {
    l_->opens++;
    return Status::Ok();
  }
  void Invoke(const int64_t&, Timestamp) override {
    EXPECT_FALSE(finished_) << "Finish comes after the last record";
    l_->records++;
  }
  void Finish() override {
    finished_ = true;
    l_->finishes++;
  }
  void Close() override {
    EXPECT_TRUE(finished_) << "Finish before Close";
    l_->closes++;
  }

 private:
  std::shared_ptr<Lifecycle> l_;
  bool finished_ = false;
};

TEST_P(RichFunctionTest, OpenAndCloseOncePerSubtaskWithTheRuntimeContext) {
  auto map_l = std::make_shared<Lifecycle>();
  auto sink_l = std::make_shared<Lifecycle>();
  StreamExecutionEnvironment env;
  env.SetParallelism(3);
  std::vector<int64_t> data(100);
  for (int i = 0; i < 100; ++i) data[static_cast<size_t>(i)] = i;
  env.FromCollection(data)
      .Rebalance()
      .Map(std::shared_ptr<MapFunction<int64_t, int64_t>>(std::make_shared<RichMap>(map_l)))
      .Sink("RichSink", [sink_l] { return std::make_shared<RichSink>(sink_l); });
  auto r = testing::RunJob(env);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(map_l->opens.load(), 3);
  EXPECT_EQ(map_l->closes.load(), 3);
  EXPECT_EQ(map_l->subtasks, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(map_l->parallelism, 3);
  EXPECT_EQ(map_l->max_parallelism, 128);
  EXPECT_FALSE(map_l->keyed);
  EXPECT_EQ(map_l->task_names,
            (std::set<std::string>{"Map -> RichSink (1/3)", "Map -> RichSink (2/3)",
                                   "Map -> RichSink (3/3)"}));
  EXPECT_EQ(sink_l->opens.load(), 3);
  EXPECT_EQ(sink_l->finishes.load(), 3);
  EXPECT_EQ(sink_l->closes.load(), 3);
  EXPECT_EQ(sink_l->records.load(), 100);
}

class FailingOpen final : public FilterFunction<int64_t> {
 public:
  Status Open(RuntimeContext&) override {
    return Status::InvalidArgument("no config for the filter");
  }
  bool Filter(const int64_t&) override { return true; }
};

TEST_P(RichFunctionTest, AnOpenErrorFailsTheJobWithContext) {
  StreamExecutionEnvironment env;
  env.FromCollection<int64_t>({1, 2, 3})
      .Filter(std::shared_ptr<FilterFunction<int64_t>>(std::make_shared<FailingOpen>()), "Picky")
      .AddSink([](const int64_t&, Timestamp) {});
  auto r = testing::RunJob(env);
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("no config for the filter"), std::string::npos)
      << r.status.message();
  EXPECT_NE(r.status.message().find("Picky"), std::string::npos) << r.status.message();
}

class Splitter final : public FlatMapFunction<std::string, std::string> {
 public:
  Status Open(RuntimeContext& rc) override {
    prefix_ = std::to_string(rc.subtask_index());
    return Status::Ok();
  }
  void FlatMap(const std::string& s, Collector<std::string>& out) override {
    for (char c : s) out.Collect(prefix_ + std::string(1, c));
  }

 private:
  std::string prefix_;
};

TEST_P(RichFunctionTest, RichFlatMapPerSubtaskInstances) {
  StreamExecutionEnvironment env;
  auto out = testing::CollectInto(
      env.FromCollection<std::string>({"ab", "c"})
          .FlatMap<std::string>(std::shared_ptr<FlatMapFunction<std::string, std::string>>(
              std::make_shared<Splitter>())));
  auto r = testing::RunJob(env);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(out->sorted(), (std::vector<std::string>{"0a", "0b", "0c"}));
}

}  // namespace
}  // namespace eddy
