// Triggers and evictors driven through the WindowOperator with the one-input harness; session
// merging with a count trigger; allowed lateness on sliding windows; the late side output.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "eddy/windowed_stream.h"
#include "tests/backend_test.h"
#include "tests/operator_harness.h"

namespace eddy::trig_test {
struct Reading {
  std::string key;
  int64_t ts = 0;
  int64_t v = 0;
};
}  // namespace eddy::trig_test
EDDY_SERIALIZABLE(eddy::trig_test::Reading, key, ts, v);

namespace eddy {
namespace {

// Run once per keyed state backend (heap, RocksDB).
EDDY_BACKEND_TEST_SUITE(TriggerTest);
EDDY_BACKEND_TEST_SUITE(EvictorTest);
EDDY_BACKEND_TEST_SUITE(LatenessTest);
EDDY_BACKEND_TEST_SUITE(SessionMergeTest);

using testing::OneInputHarness;
using trig_test::Reading;

using Out = std::vector<std::string>;

struct KeyOf {
  std::string operator()(const Reading& r) const { return r.key; }
};

/// "key@start:end:v1,v2,..." with the element values in window-content order.
class Describe final : public ProcessWindowFunction<Reading, std::string> {
 public:
  void Process(WindowContext& ctx, const std::vector<Reading>& els,
               Collector<std::string>& out) override {
    std::string s = ctx.CurrentKey<std::string>() + "@";
    if (ctx.window() == Window::Global()) {
      s += "global:";
    } else {
      s += std::to_string(ctx.window().start) + ":" + std::to_string(ctx.window().end) + ":";
    }
    for (size_t i = 0; i < els.size(); ++i) s += (i ? "," : "") + std::to_string(els[i].v);
    out.Collect(s);
  }
};

using Harness = OneInputHarness<Reading, std::string>;

struct Setup {
  std::shared_ptr<const WindowAssigner<Reading>> assigner = nullptr;
  std::function<std::unique_ptr<Trigger<Reading>>()> trigger = nullptr;  // nullptr = default
  std::shared_ptr<Evictor<Reading>> evictor = nullptr;
  Duration lateness = Duration();
  int late_tag = 0;
};

std::unique_ptr<Harness> Make(Setup s) {
  WindowSpec<Reading, std::string> spec;
  spec.assigner = s.assigner;
  spec.trigger = s.trigger;
  auto ev = s.evictor;
  spec.contents = [ev] {
    return std::make_unique<ListContents<Reading, std::string>>(std::make_shared<Describe>(), ev);
  };
  spec.allowed_lateness = s.lateness;
  spec.late_tag = s.late_tag;
  auto op = std::make_unique<WindowOperator<Reading, std::string>>(spec);
  op->SetKeySelector(std::make_shared<LambdaKeySelector<Reading, std::string, KeyOf>>(KeyOf{}));
  auto h = std::make_unique<Harness>(std::move(op));
  EXPECT_TRUE(h->Open().ok());
  return h;
}

void Add(Harness& h, const std::string& key, int64_t ts, int64_t v) {
  h.Element({key, ts, v}, ts);
}

template <class TR, class... A>
std::function<std::unique_ptr<Trigger<Reading>>()> T(A... args) {
  return [=] { return std::unique_ptr<Trigger<Reading>>(std::make_unique<TR>(args...)); };
}

// ---------------------------------------------------------------------------------------------
// Window assigners
// ---------------------------------------------------------------------------------------------

std::vector<Window> Assign(const WindowAssigner<Reading>& a, int64_t ts, int64_t now = 0) {
  std::vector<Window> w;
  a.AssignWindows({}, Timestamp(ts), Timestamp(now), w);
  std::sort(w.begin(), w.end());
  return w;
}

TEST(WindowAssignerUnitTest, TumblingUsesEventOrProcessingTime) {
  TumblingWindows<Reading> ev(Duration::Seconds(5), Duration(), true);
  TumblingWindows<Reading> pt(Duration::Seconds(5), Duration(), false);
  EXPECT_EQ(Assign(ev, 7000, 123), (std::vector<Window>{{5000, 10000}}));
  EXPECT_EQ(Assign(pt, 7000, 123), (std::vector<Window>{{0, 5000}})) << "processing time: now";
  EXPECT_EQ(Assign(ev, -1), (std::vector<Window>{{-5000, 0}}));
  EXPECT_TRUE(ev.is_event_time());
  EXPECT_FALSE(pt.is_event_time());
  EXPECT_FALSE(ev.is_merging());
  EXPECT_EQ(ev.name(), "TumblingEventTimeWindows(5s)");
  EXPECT_EQ(pt.name(), "TumblingProcessingTimeWindows(5s)");
  EXPECT_EQ(ev.DefaultTrigger()->name(), "EventTimeTrigger");
  EXPECT_EQ(pt.DefaultTrigger()->name(), "ProcessingTimeTrigger");
}

TEST(WindowAssignerUnitTest, SlidingAssignsSizeOverSlideWindowsWithOffset) {
  SlidingWindows<Reading> s(Duration::Seconds(10), Duration::Seconds(5), Duration(), true);
  EXPECT_EQ(Assign(s, 7000), (std::vector<Window>{{0, 10000}, {5000, 15000}}));
  EXPECT_EQ(Assign(s, 5000), (std::vector<Window>{{0, 10000}, {5000, 15000}}));
  EXPECT_EQ(Assign(s, 4999), (std::vector<Window>{{-5000, 5000}, {0, 10000}}));
  SlidingWindows<Reading> off(Duration::Seconds(10), Duration::Seconds(5), Duration::Seconds(1),
                              true);
  EXPECT_EQ(Assign(off, 7000), (std::vector<Window>{{1000, 11000}, {6000, 16000}}));
  SlidingWindows<Reading> thirds(Duration::Millis(300), Duration::Millis(100), Duration(), true);
  EXPECT_EQ(Assign(thirds, 250).size(), 3u);
  for (const auto& w : Assign(thirds, 250)) {
    EXPECT_LE(w.start, 250);
    EXPECT_GT(w.end, 250);
  }
  EXPECT_EQ(s.name(), "SlidingEventTimeWindows(10s, 5s)");
}

TEST(WindowAssignerUnitTest, SessionWindowsMergeOverlappingAndTouchingWindows) {
  SessionWindows<Reading> s(Duration::Millis(10), true);
  EXPECT_TRUE(s.is_merging());
  EXPECT_EQ(Assign(s, 42), (std::vector<Window>{{42, 52}}));
  std::vector<std::pair<Window, std::vector<Window>>> merges;
  s.MergeWindows({{50, 60}, {5, 15}, {20, 30}, {0, 10}, {30, 40}}, merges);
  ASSERT_EQ(merges.size(), 2u) << "[50, 60) overlaps nothing and is not reported";
  EXPECT_EQ(merges[0].first, (Window{0, 15}));
  EXPECT_EQ(merges[0].second, (std::vector<Window>{{0, 10}, {5, 15}}));
  EXPECT_EQ(merges[1].first, (Window{20, 40}));
  EXPECT_EQ(merges[1].second, (std::vector<Window>{{20, 30}, {30, 40}}));
  EXPECT_EQ(SessionWindows<Reading>(Duration::Minutes(1), false).name(),
            "ProcessingTimeSessionWindows(1m)");
}

TEST(WindowAssignerUnitTest, GlobalWindowAndWindowHelpers) {
  GlobalWindows<Reading> g;
  EXPECT_EQ(Assign(g, 5), std::vector<Window>{Window::Global()});
  EXPECT_EQ(g.DefaultTrigger()->name(), "NeverTrigger");
  EXPECT_EQ(Window::Global().max_timestamp(), Timestamp::Max());
  EXPECT_EQ((Window{0, 10}).max_timestamp(), Timestamp(9));
  EXPECT_TRUE((Window{0, 10}).Intersects({10, 20})) << "touching windows intersect (Flink)";
  EXPECT_FALSE((Window{0, 10}).Intersects({11, 20}));
  EXPECT_EQ((Window{0, 10}).Cover({5, 20}), (Window{0, 20}));
  EXPECT_EQ(Window::FromNamespace((Window{3, 4}).ns()), (Window{3, 4}));
}

// ---------------------------------------------------------------------------------------------
// Triggers
// ---------------------------------------------------------------------------------------------

TEST_P(TriggerTest, EventTimeTriggerFiresOnceWhenTheWatermarkReachesTheWindowEnd) {
  auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)),
                 .trigger = T<EventTimeTrigger<Reading>>()});
  Add(*h, "a", 1000, 1);
  Add(*h, "a", 9999, 2);
  Add(*h, "a", 10000, 3);
  h->Watermark(9998);
  EXPECT_TRUE(h->output().TakeRecords().empty());
  h->Watermark(9999);
  EXPECT_EQ(h->output().TakeRecords(), Out{"a@0:10000:1,2"});
  h->Watermark(15000);
  EXPECT_TRUE(h->output().TakeRecords().empty()) << "a window fires once";
  h->Watermark(19999);
  EXPECT_EQ(h->output().TakeRecords(), Out{"a@10000:20000:3"});
  EXPECT_EQ(h->backend()->NumEntries(), 0u);
  // The result carries the window's max timestamp and the watermark follows it.
  Add(*h, "b", 25000, 4);
  h->Watermark(30000);
  auto& ev = h->output().events;
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev[ev.size() - 2].kind, testing::CapturingOutput<std::string>::Event::kRecord);
  EXPECT_EQ(ev[ev.size() - 2].ts, Timestamp(29999));
  EXPECT_EQ(ev.back().kind, testing::CapturingOutput<std::string>::Event::kWatermark);
}

TEST_P(TriggerTest, ProcessingTimeTriggerOnEventTimeWindowsFiresOnTheClock) {
  auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)),
                 .trigger = T<ProcessingTimeTrigger<Reading>>()});
  Add(*h, "a", 1000, 1);
  Add(*h, "a", 2000, 2);
  h->Watermark(5000);
  h->AdvanceProcessingTime(9998);
  EXPECT_TRUE(h->output().TakeRecords().empty());
  h->AdvanceProcessingTime(9999);
  EXPECT_EQ(h->output().TakeRecords(), Out{"a@0:10000:1,2"});
  h->Watermark(20000);  // event-time cleanup; the processing-time trigger does not fire on it
  EXPECT_TRUE(h->output().TakeRecords().empty());
  EXPECT_EQ(h->backend()->NumEntries(), 0u);
}

TEST_P(TriggerTest, CountTriggerFiresEveryNElementsWithoutPurging) {
  auto h = Make({.assigner = std::make_shared<GlobalWindows<Reading>>(),
                 .trigger = T<CountTrigger<Reading>>(int64_t{3})});
  for (int i = 1; i <= 7; ++i) Add(*h, "c", i, i);
  Add(*h, "d", 1, 100);
  EXPECT_EQ(h->output().TakeRecords(), (Out{"c@global:1,2,3", "c@global:1,2,3,4,5,6"}));
  Add(*h, "d", 2, 200);
  Add(*h, "d", 3, 300);
  EXPECT_EQ(h->output().TakeRecords(), Out{"d@global:100,200,300"}) << "counts are per key";
  h->Watermark(INT64_MAX);
  EXPECT_TRUE(h->output().TakeRecords().empty()) << "global windows never fire on time";
}

TEST_P(TriggerTest, CountTriggerOnTimeWindowsCountsPerWindowAndIsCleanedUp) {
  auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)),
                 .trigger = T<CountTrigger<Reading>>(int64_t{2})});
  Add(*h, "a", 1000, 1);
  Add(*h, "a", 11000, 2);  // another window: its own count
  EXPECT_TRUE(h->output().TakeRecords().empty());
  Add(*h, "a", 2000, 3);
  EXPECT_EQ(h->output().TakeRecords(), Out{"a@0:10000:1,3"});
  Add(*h, "a", 3000, 4);
  h->Watermark(30000);
  EXPECT_TRUE(h->output().TakeRecords().empty())
      << "a count trigger does not fire at the window end";
  EXPECT_EQ(h->backend()->NumEntries(), 0u) << "contents and trigger counts are cleaned up";
}

TEST_P(TriggerTest, PurgingTriggerDropsContentsAfterEachFiring) {
  {
    auto h = Make({.assigner = std::make_shared<GlobalWindows<Reading>>(), .trigger = [] {
                     return std::make_unique<PurgingTrigger<Reading>>(
                         std::make_unique<CountTrigger<Reading>>(2));
                   }});
    for (int i = 1; i <= 5; ++i) Add(*h, "p", i, i);
    EXPECT_EQ(h->output().TakeRecords(), (Out{"p@global:1,2", "p@global:3,4"}));
  }
  {
    // Purging event-time trigger + lateness: a late element re-fires with only itself.
    auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)),
                   .trigger =
                       [] {
                         return std::make_unique<PurgingTrigger<Reading>>(
                             std::make_unique<EventTimeTrigger<Reading>>());
                       },
                   .lateness = Duration::Seconds(5)});
    Add(*h, "p", 1000, 1);
    Add(*h, "p", 2000, 2);
    h->Watermark(9999);
    EXPECT_EQ(h->output().TakeRecords(), Out{"p@0:10000:1,2"});
    Add(*h, "p", 3000, 3);
    EXPECT_EQ(h->output().TakeRecords(), Out{"p@0:10000:3"});
    EXPECT_EQ(PurgingTrigger<Reading>(std::make_unique<CountTrigger<Reading>>(2)).name(),
              "PurgingTrigger(CountTrigger(2))");
  }
}

TEST_P(TriggerTest, ContinuousEventTimeTriggerFiresEveryIntervalOfWatermarkProgress) {
  auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)),
                 .trigger = T<ContinuousEventTimeTrigger<Reading>>(Duration::Seconds(2))});
  Add(*h, "e", 500, 1);
  h->Watermark(1999);
  EXPECT_TRUE(h->output().TakeRecords().empty());
  h->Watermark(2000);
  EXPECT_EQ(h->output().TakeRecords(), Out{"e@0:10000:1"});
  Add(*h, "e", 2500, 2);
  h->Watermark(4000);
  EXPECT_EQ(h->output().TakeRecords(), Out{"e@0:10000:1,2"});
  // A jump over several intervals fires at each of them (6000, 8000) and at the window end.
  h->Watermark(9999);
  EXPECT_EQ(h->output().TakeRecords(), (Out{"e@0:10000:1,2", "e@0:10000:1,2", "e@0:10000:1,2"}));
  h->Watermark(INT64_MAX);
  EXPECT_TRUE(h->output().TakeRecords().empty());
  EXPECT_EQ(h->backend()->NumEntries(), 0u);
}

TEST_P(TriggerTest, ContinuousProcessingTimeTriggerFiresPeriodicallyUntilTheWindowEnds) {
  auto h = Make({.assigner = TumblingProcessingTimeWindows<Reading>(Duration::Seconds(10)),
                 .trigger = T<ContinuousProcessingTimeTrigger<Reading>>(Duration::Seconds(3))});
  h->AdvanceProcessingTime(1000);
  Add(*h, "q", 0, 1);
  h->AdvanceProcessingTime(2999);
  EXPECT_TRUE(h->output().TakeRecords().empty());
  h->AdvanceProcessingTime(3000);
  EXPECT_EQ(h->output().TakeRecords(), Out{"q@0:10000:1"});
  h->AdvanceProcessingTime(4000);
  Add(*h, "q", 0, 2);
  h->AdvanceProcessingTime(20000);  // fires at 6000, 9000 and at the window end 9999
  EXPECT_EQ(h->output().TakeRecords(), (Out{"q@0:10000:1,2", "q@0:10000:1,2", "q@0:10000:1,2"}));
  EXPECT_EQ(h->backend()->NumEntries(), 0u);
  Add(*h, "q", 0, 3);  // processing time 20000: window [20000, 30000)
  h->AdvanceProcessingTime(23000);
  EXPECT_EQ(h->output().TakeRecords(), Out{"q@20000:30000:3"});
}

TEST_P(TriggerTest, NeverTriggerNeverFiresButTimeWindowsAreStillCleanedUp) {
  {
    auto h = Make({.assigner = std::make_shared<GlobalWindows<Reading>>()});  // default: never
    for (int i = 0; i < 100; ++i) Add(*h, "n", i, i);
    h->Watermark(INT64_MAX);
    h->AdvanceProcessingTime(INT64_MAX / 2);
    EXPECT_TRUE(h->output().Records().empty());
  }
  {
    auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)),
                   .trigger = T<NeverTrigger<Reading>>()});
    Add(*h, "n", 1000, 1);
    EXPECT_GT(h->backend()->NumEntries(), 0u);
    h->Watermark(INT64_MAX);
    EXPECT_TRUE(h->output().Records().empty());
    EXPECT_EQ(h->backend()->NumEntries(), 0u);
  }
}

// ---------------------------------------------------------------------------------------------
// Evictors
// ---------------------------------------------------------------------------------------------

TEST_P(EvictorTest, CountEvictorBeforeAndAfterTheFunction) {
  auto run = [](bool after) {
    auto h = Make({.assigner = std::make_shared<GlobalWindows<Reading>>(),
                   .trigger = T<CountTrigger<Reading>>(int64_t{3}),
                   .evictor = std::make_shared<CountEvictor<Reading>>(2, after)});
    for (int i = 1; i <= 6; ++i) Add(*h, "k", i, i);
    return h->output().TakeRecords();
  };
  // Before: the function sees the newest 2; the state keeps only those.
  EXPECT_EQ(run(false), (Out{"k@global:2,3", "k@global:5,6"}));
  // After: the function sees everything; the newest 2 are kept for the next firing.
  EXPECT_EQ(run(true), (Out{"k@global:1,2,3", "k@global:2,3,4,5,6"}));
  EXPECT_EQ(CountEvictor<Reading>(2).name(), "CountEvictor(2)");
}

TEST_P(EvictorTest, TimeEvictorBeforeAndAfterTheFunction) {
  auto run = [](bool after) {
    auto h = Make({.assigner = std::make_shared<GlobalWindows<Reading>>(),
                   .trigger = T<CountTrigger<Reading>>(int64_t{3}),
                   .evictor = std::make_shared<TimeEvictor<Reading>>(Duration::Seconds(3), after)});
    // Timestamps 1 s, 2 s, 5 s | 6 s, 9 s, 20 s.
    int64_t ts[] = {1000, 2000, 5000, 6000, 9000, 20000};
    for (int i = 0; i < 6; ++i) Add(*h, "k", ts[i], i + 1);
    return h->output().TakeRecords();
  };
  // Keep elements newer than (newest - 3 s): cutoff 2000 -> {5000}; then cutoff 17000 -> {20000}.
  EXPECT_EQ(run(false), (Out{"k@global:3", "k@global:6"}));
  // After: sees all; keeps {5000}; next firing sees 5000, 6000, 9000, 20000.
  EXPECT_EQ(run(true), (Out{"k@global:1,2,3", "k@global:3,4,5,6"}));
}

TEST_P(EvictorTest, DeltaEvictorKeepsElementsCloseToTheLastOne) {
  auto delta = [](const Reading& a, const Reading& b) {
    return std::abs(static_cast<double>(a.v - b.v));
  };
  auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)),
                 .evictor = std::make_shared<DeltaEvictor<Reading>>(5.0, delta)});
  for (int64_t v : {1, 10, 12, 9, 14}) Add(*h, "d", v * 100, v);
  h->Watermark(9999);
  // Deltas to the last (14): 13, 4, 2, 5, 0 -> kept when < 5.
  EXPECT_EQ(h->output().TakeRecords(), Out{"d@0:10000:10,12,14"});
  {
    auto after = Make({.assigner = std::make_shared<GlobalWindows<Reading>>(),
                       .trigger = T<CountTrigger<Reading>>(int64_t{3}),
                       .evictor = std::make_shared<DeltaEvictor<Reading>>(5.0, delta, true)});
    for (int64_t v : {1, 10, 12, 13, 30, 31}) Add(*after, "d", v, v);
    // First firing sees 1,10,12 and keeps 10,12; second sees 10,12,13,30,31.
    EXPECT_EQ(after->output().TakeRecords(), (Out{"d@global:1,10,12", "d@global:10,12,13,30,31"}));
  }
}

// ---------------------------------------------------------------------------------------------
// Session merging, lateness, late output
// ---------------------------------------------------------------------------------------------

TEST_P(SessionMergeTest, CountTriggerCountsAreSummedWhenSessionsMerge) {
  auto h = Make({.assigner = EventTimeSessionWindows<Reading>(Duration::Seconds(10)),
                 .trigger = T<CountTrigger<Reading>>(int64_t{3})});
  Add(*h, "s", 0, 1);      // [0, 10000): count 1
  Add(*h, "s", 20000, 2);  // [20000, 30000): count 1
  EXPECT_TRUE(h->output().TakeRecords().empty());
  Add(*h, "s", 10000, 3);  // bridges both: one session [0, 30000) with 3 elements
  EXPECT_EQ(h->output().TakeRecords(), Out{"s@0:30000:1,2,3"});
  Add(*h, "s", 5000, 4);
  Add(*h, "s", 6000, 5);
  EXPECT_TRUE(h->output().TakeRecords().empty()) << "the count restarted after the firing";
  Add(*h, "s", 7000, 6);
  EXPECT_EQ(h->output().TakeRecords(), Out{"s@0:30000:1,2,3,4,5,6"});
}

TEST_P(SessionMergeTest, MergedSessionCountIncludesElementsOfEveryMergedWindow) {
  auto h = Make({.assigner = EventTimeSessionWindows<Reading>(Duration::Seconds(10)),
                 .trigger = T<CountTrigger<Reading>>(int64_t{4})});
  Add(*h, "s", 0, 1);
  Add(*h, "s", 1000, 2);   // same session: count 2
  Add(*h, "s", 15000, 3);  // separate: count 1
  Add(*h, "s", 9000, 4);   // [9000, 19000) merges both: 2 + 1 + 1 = 4
  EXPECT_EQ(h->output().TakeRecords(), Out{"s@0:25000:1,2,3,4"});
}

TEST_P(SessionMergeTest, EventTimeSessionsFireOnceAtTheMergedEnd) {
  auto h = Make({.assigner = EventTimeSessionWindows<Reading>(Duration::Seconds(10))});
  Add(*h, "s", 0, 1);
  Add(*h, "s", 20000, 2);
  h->Watermark(9998);
  Add(*h, "s", 9000, 3);  // extends [0,10000) to [0,19000); the old timer at 9999 must not fire
  h->Watermark(18998);
  EXPECT_TRUE(h->output().TakeRecords().empty());
  h->Watermark(18999);  // [0, 19000) ends before [20000, 30000) starts: two sessions
  EXPECT_EQ(h->output().TakeRecords(), Out{"s@0:19000:1,3"});
  h->Watermark(INT64_MAX);
  EXPECT_EQ(h->output().TakeRecords(), Out{"s@20000:30000:2"});
  EXPECT_EQ(h->backend()->NumEntries(), 0u);
}

TEST_P(LatenessTest, SlidingWindowsRefireWithinTheAllowedLatenessThenDrop) {
  const int kLate = 91;
  auto h = Make(
      {.assigner = SlidingEventTimeWindows<Reading>(Duration::Seconds(10), Duration::Seconds(5)),
       .lateness = Duration::Seconds(5),
       .late_tag = kLate});
  Add(*h, "w", 7000, 1);  // [0,10000) and [5000,15000)
  h->Watermark(9999);
  EXPECT_EQ(h->output().TakeRecords(), Out{"w@0:10000:1"});
  Add(*h, "w", 8000, 2);  // late for [0,10000) (re-fires at once), on time for [5000,15000)
  EXPECT_EQ(h->output().TakeRecords(), Out{"w@0:10000:1,2"});
  h->Watermark(14999);  // [0,10000) is cleaned up (9999 + 5000); [5000,15000) fires
  EXPECT_EQ(h->output().TakeRecords(), Out{"w@5000:15000:1,2"});
  Add(*h, "w", 9000, 3);  // too late for [0,10000), within the lateness of [5000,15000)
  EXPECT_EQ(h->output().TakeRecords(), Out{"w@5000:15000:1,2,3"});
  EXPECT_EQ(h->output().side_count[kLate], 0) << "an element with a live window is not late";
  Add(*h, "w", 4000, 4);  // [-5000,5000) and [0,10000): both past their cleanup time
  EXPECT_TRUE(h->output().TakeRecords().empty());
  EXPECT_EQ(h->output().side_count[kLate], 1);
  EXPECT_EQ(h->counters().late_records_dropped, 0u) << "sent to the side output, not dropped";
  h->Watermark(19999);
  Add(*h, "w", 9500, 5);
  EXPECT_EQ(h->output().side_count[kLate], 2);
  EXPECT_EQ(h->backend()->NumEntries(), 0u);
}

TEST_P(LatenessTest, LateElementsAreDroppedAndCountedWithoutASideOutput) {
  auto h = Make({.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10))});
  Add(*h, "x", 5000, 1);
  h->Watermark(9999);
  EXPECT_EQ(h->output().TakeRecords(), Out{"x@0:10000:1"});
  Add(*h, "x", 9999, 2);
  Add(*h, "x", 10000, 3);  // not late: the next window
  EXPECT_TRUE(h->output().TakeRecords().empty());
  EXPECT_EQ(h->counters().late_records_dropped, 1u);
  EXPECT_TRUE(h->output().side.empty());
}

TEST_P(LatenessTest, LateSideOutputCarriesTheElementAndItsTimestamp) {
  const int kTag = 17;
  auto h = Make(
      {.assigner = TumblingEventTimeWindows<Reading>(Duration::Seconds(10)), .late_tag = kTag});
  h->Watermark(20000);
  Add(*h, "y", 1234, 42);
  ASSERT_EQ(h->output().side.size(), 1u);
  EXPECT_EQ(h->output().side[0].tag, kTag);
  EXPECT_EQ(h->output().side[0].ts, Timestamp(1234));
  EXPECT_EQ(h->counters().late_records_dropped, 0u);
}

}  // namespace
}  // namespace eddy
