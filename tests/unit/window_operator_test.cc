#include <gtest/gtest.h>

#include "eddy/windowed_stream.h"
#include "tests/backend_test.h"
#include "tests/operator_harness.h"

namespace eddy::wtest {
struct Ev {
  std::string key;
  int64_t ts = 0;
  int64_t v = 0;
  bool operator==(const Ev&) const = default;
};
}  // namespace eddy::wtest
EDDY_SERIALIZABLE(eddy::wtest::Ev, key, ts, v);

namespace eddy {
namespace {

// Run once per keyed state backend (heap, RocksDB).
EDDY_BACKEND_TEST_SUITE(WindowOperatorTest);

using testing::OneInputHarness;
using wtest::Ev;

struct KeyOf {
  std::string operator()(const Ev& e) const { return e.key; }
};

/// Collects the timestamps of a window's elements, in arrival order, as "start:end:t1,t2,...".
class ListTs final : public ProcessWindowFunction<Ev, std::string> {
 public:
  void Process(WindowContext& ctx, const std::vector<Ev>& els,
               Collector<std::string>& out) override {
    std::string s = ctx.CurrentKey<std::string>() + "@" + std::to_string(ctx.window().start) + ":" +
                    std::to_string(ctx.window().end) + ":";
    for (size_t i = 0; i < els.size(); ++i) s += (i ? "," : "") + std::to_string(els[i].ts);
    out.Collect(s);
  }
};

class SumAgg final : public AggregateFunction<Ev, int64_t, int64_t> {
 public:
  int64_t CreateAccumulator() const override { return 0; }
  void Add(const Ev& e, int64_t& acc) const override { acc += e.v; }
  int64_t GetResult(const int64_t& acc) const override { return acc; }
  void Merge(int64_t& a, const int64_t& b) const override { a += b; }
};

template <class OUT>
std::unique_ptr<WindowOperator<Ev, OUT>> MakeOp(WindowSpec<Ev, OUT> spec) {
  auto op = std::make_unique<WindowOperator<Ev, OUT>>(std::move(spec));
  op->SetKeySelector(std::make_shared<LambdaKeySelector<Ev, std::string, KeyOf>>(KeyOf{}));
  return op;
}

WindowSpec<Ev, std::string> ListSpec(std::shared_ptr<const WindowAssigner<Ev>> a) {
  WindowSpec<Ev, std::string> s;
  s.assigner = std::move(a);
  s.contents = [] {
    return std::make_unique<ListContents<Ev, std::string>>(std::make_shared<ListTs>(), nullptr);
  };
  return s;
}

// The seed's walkthrough: 5 s tumbling windows, watermark = max ts - 3 s (- 1 ms, Flink's bound).
// Window [0,5) fires exactly when the element at 8 s arrives and holds 1, 4, 2, 3; 4.1 s is late.
TEST_P(WindowOperatorTest, SeedWalkthroughTumblingWithBoundedOutOfOrderness) {
  for (bool late_output : {false, true}) {
    auto spec = ListSpec(TumblingEventTimeWindows<Ev>(Duration::Seconds(5)));
    if (late_output) spec.late_tag = 77;
    OneInputHarness<Ev, std::string> h(MakeOp(spec));
    ASSERT_TRUE(h.Open().ok());
    int64_t max_ts = INT64_MIN;
    std::vector<std::pair<int64_t, std::vector<std::string>>> fired;
    for (int64_t ts : {1000, 4000, 5000, 2000, 3000, 6000, 7000, 5000, 8000, 4100}) {
      h.Element({"s", ts, 1}, ts);
      max_ts = std::max(max_ts, ts);
      h.Watermark(max_ts - 3000 - 1);
      auto out = h.output().TakeRecords();
      if (!out.empty()) fired.emplace_back(ts, out);
    }
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_EQ(fired[0].first, 8000);
    EXPECT_EQ(fired[0].second, std::vector<std::string>{"s@0:5000:1000,4000,2000,3000"});
    if (late_output) {
      EXPECT_EQ(h.output().side_count[77], 1);
      EXPECT_EQ(h.counters().late_records_dropped, 0u);
    } else {
      EXPECT_EQ(h.counters().late_records_dropped, 1u);
    }
    h.Watermark(INT64_MAX);
    EXPECT_EQ(h.output().TakeRecords(),
              std::vector<std::string>{"s@5000:10000:5000,6000,7000,5000,8000"});
  }
}

TEST_P(WindowOperatorTest, SlidingWindowsAssignEachElementToSizeOverSlideWindows) {
  OneInputHarness<Ev, std::string> h(
      MakeOp(ListSpec(SlidingEventTimeWindows<Ev>(Duration::Seconds(10), Duration::Seconds(5)))));
  ASSERT_TRUE(h.Open().ok());
  h.Element({"a", 7000, 1}, 7000);
  h.Element({"a", 12000, 1}, 12000);
  h.Watermark(INT64_MAX);
  EXPECT_EQ(h.output().Records(),
            (std::vector<std::string>{"a@0:10000:7000", "a@5000:15000:7000,12000",
                                      "a@10000:20000:12000"}));
}

TEST_P(WindowOperatorTest, SessionWindowsMergeAndKeepContents) {
  WindowSpec<Ev, int64_t> spec;
  spec.assigner = EventTimeSessionWindows<Ev>(Duration::Seconds(10));
  auto agg = std::make_shared<SumAgg>();
  spec.contents = [agg] {
    return std::make_unique<AggregatingContents<Ev, int64_t, int64_t, int64_t>>(agg, nullptr);
  };
  OneInputHarness<Ev, int64_t> h(MakeOp(spec));
  ASSERT_TRUE(h.Open().ok());
  // Two sessions for key a: {0, 5, 25 bridges nothing}: [0..15) + [5..] merge; 30 starts a new one;
  // an element at 20 bridges [5,15) and [30,40)? No: 20+10=30 touches 30 -> Flink merges on
  // intersects (start <= other.end && end >= other.start), so [20,30) and [30,40) merge.
  h.Element({"a", 0, 1}, 0);
  h.Element({"a", 5000, 2}, 5000);
  h.Element({"a", 30000, 4}, 30000);
  h.Element({"b", 1000, 100}, 1000);
  h.Watermark(16000);  // [0,15000) of a and [1000,11000) of b close
  auto first = h.output().TakeRecords();
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<int64_t>{3, 100}));
  h.Element({"a", 20000, 8}, 20000);  // bridges into the [30000,40000) session
  h.Watermark(INT64_MAX);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<int64_t>{12});
  EXPECT_EQ(h.backend()->NumEntries(), 0u) << "all window state is cleaned up";
}

TEST_P(WindowOperatorTest, AllowedLatenessRefiresAndThenDrops) {
  auto spec = ListSpec(TumblingEventTimeWindows<Ev>(Duration::Seconds(5)));
  spec.allowed_lateness = Duration::Seconds(2);
  OneInputHarness<Ev, std::string> h(MakeOp(spec));
  ASSERT_TRUE(h.Open().ok());
  h.Element({"k", 1000, 1}, 1000);
  h.Watermark(4999);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"k@0:5000:1000"});
  h.Element({"k", 2000, 1}, 2000);  // late but within lateness: fires again with both
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"k@0:5000:1000,2000"});
  h.Watermark(6999);                // cleanup time 4999 + 2000
  h.Element({"k", 3000, 1}, 3000);  // now too late
  EXPECT_TRUE(h.output().TakeRecords().empty());
  EXPECT_EQ(h.counters().late_records_dropped, 1u);
}

TEST_P(WindowOperatorTest, CountTumblingAndSlidingWindows) {
  {
    WindowSpec<Ev, std::string> s = ListSpec(std::make_shared<GlobalWindows<Ev>>());
    s.trigger = [] {
      return std::make_unique<PurgingTrigger<Ev>>(std::make_unique<CountTrigger<Ev>>(3));
    };
    OneInputHarness<Ev, std::string> h(MakeOp(s));
    ASSERT_TRUE(h.Open().ok());
    for (int i = 1; i <= 7; ++i) h.Element({"c", i, 1}, i);
    auto g = std::to_string(INT64_MIN) + ":" + std::to_string(INT64_MAX) + ":";
    EXPECT_EQ(h.output().Records(),
              (std::vector<std::string>{"c@" + g + "1,2,3", "c@" + g + "4,5,6"}));
  }
  {
    WindowSpec<Ev, std::string> s;
    s.assigner = std::make_shared<GlobalWindows<Ev>>();
    s.trigger = [] { return std::make_unique<CountTrigger<Ev>>(2); };
    s.contents = [] {
      return std::make_unique<ListContents<Ev, std::string>>(std::make_shared<ListTs>(),
                                                             std::make_shared<CountEvictor<Ev>>(3));
    };
    OneInputHarness<Ev, std::string> h(MakeOp(s));
    ASSERT_TRUE(h.Open().ok());
    for (int i = 1; i <= 6; ++i) h.Element({"c", i, 1}, i);
    auto g = std::to_string(INT64_MIN) + ":" + std::to_string(INT64_MAX) + ":";
    EXPECT_EQ(h.output().Records(),
              (std::vector<std::string>{"c@" + g + "1,2", "c@" + g + "2,3,4", "c@" + g + "4,5,6"}));
  }
}

TEST_P(WindowOperatorTest, TimeEvictorKeepsRecentElements) {
  WindowSpec<Ev, std::string> s;
  s.assigner = TumblingEventTimeWindows<Ev>(Duration::Seconds(10));
  s.contents = [] {
    return std::make_unique<ListContents<Ev, std::string>>(
        std::make_shared<ListTs>(), std::make_shared<TimeEvictor<Ev>>(Duration::Seconds(3)));
  };
  OneInputHarness<Ev, std::string> h(MakeOp(s));
  ASSERT_TRUE(h.Open().ok());
  for (int64_t t : {1000, 5000, 7000, 9000}) h.Element({"t", t, 1}, t);
  h.Watermark(INT64_MAX);
  EXPECT_EQ(h.output().Records(), std::vector<std::string>{"t@0:10000:7000,9000"});
}

TEST_P(WindowOperatorTest, ProcessingTimeTumblingFiresOnClock) {
  OneInputHarness<Ev, std::string> h(
      MakeOp(ListSpec(TumblingProcessingTimeWindows<Ev>(Duration::Seconds(5)))));
  ASSERT_TRUE(h.Open().ok());
  h.AdvanceProcessingTime(1000);
  h.Element({"p", 0, 1}, 0);
  h.AdvanceProcessingTime(3000);
  h.Element({"p", 0, 1}, 0);
  h.AdvanceProcessingTime(4998);
  EXPECT_TRUE(h.output().Records().empty());
  h.AdvanceProcessingTime(4999);
  EXPECT_EQ(h.output().Records(), std::vector<std::string>{"p@0:5000:0,0"});
}

TEST_P(WindowOperatorTest, ContinuousEventTimeTriggerFiresEarly) {
  auto s = ListSpec(TumblingEventTimeWindows<Ev>(Duration::Seconds(10)));
  s.trigger = [] { return std::make_unique<ContinuousEventTimeTrigger<Ev>>(Duration::Seconds(2)); };
  OneInputHarness<Ev, std::string> h(MakeOp(s));
  ASSERT_TRUE(h.Open().ok());
  h.Element({"e", 500, 1}, 500);
  h.Watermark(2000);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"e@0:10000:500"});
  h.Element({"e", 2500, 1}, 2500);
  h.Watermark(9999);
  auto r = h.output().TakeRecords();
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r.back(), "e@0:10000:500,2500");
}

TEST(WindowAssignerTest, WindowStartHandlesNegativeTimestampsAndOffsets) {
  EXPECT_EQ(WindowStart(-1, 0, 5000), -5000);
  EXPECT_EQ(WindowStart(4999, 0, 5000), 0);
  EXPECT_EQ(WindowStart(5000, 0, 5000), 5000);
  EXPECT_EQ(WindowStart(1500, 1000, 5000), 1000);
  TumblingWindows<Ev> hourly(Duration::Minutes(60), Duration::Minutes(15), true);
  std::vector<Window> w;
  hourly.AssignWindows({}, Timestamp(3600'000), Timestamp(0), w);
  EXPECT_EQ(w[0].start, 900'000);
}

}  // namespace
}  // namespace eddy
