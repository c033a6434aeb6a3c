// Watermark generation (TimestampsAndWatermarksOperator), the watermark combiner of multi-input
// operators, and end-to-end jobs where the slowest or an idle input decides when windows fire.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/operator_harness.h"
#include "tests/test_util.h"

namespace eddy::wm_test {
struct Ev {
  std::string key;
  int64_t ts = 0;
};
}  // namespace eddy::wm_test
EDDY_SERIALIZABLE(eddy::wm_test::Ev, key, ts);

namespace eddy {
namespace {

using testing::CapturingOutput;
using testing::OneInputHarness;
using wm_test::Ev;
using Event = CapturingOutput<Ev>::Event;

using WmHarness = OneInputHarness<Ev, Ev>;

std::unique_ptr<WmHarness> MakeHarness(WatermarkStrategy<Ev> s) {
  auto h = std::make_unique<WmHarness>(
      std::make_unique<TimestampsAndWatermarksOperator<Ev>>(std::move(s)));
  EXPECT_TRUE(h->Open().ok());
  return h;
}

WatermarkStrategy<Ev> Bounded(int64_t ms) {
  return WatermarkStrategy<Ev>::ForBoundedOutOfOrderness(Duration::Millis(ms))
      .WithTimestampAssigner([](const Ev& e) { return Timestamp(e.ts); });
}

std::vector<int64_t> Watermarks(const CapturingOutput<Ev>& out) {
  std::vector<int64_t> r;
  for (const auto& e : out.events) {
    if (e.kind == Event::kWatermark) r.push_back(e.ts.millis());
  }
  return r;
}

/// The event stream as text: "r<ts>" records, "w<wm>" watermarks, "idle"/"active".
std::vector<std::string> Trace(const CapturingOutput<Ev>& out) {
  std::vector<std::string> r;
  for (const auto& e : out.events) {
    switch (e.kind) {
      case Event::kRecord:
        r.push_back("r" + std::to_string(e.ts.millis()));
        break;
      case Event::kWatermark:
        r.push_back("w" + std::to_string(e.ts.millis()));
        break;
      case Event::kIdle:
        r.push_back(e.ts.millis() ? "idle" : "active");
        break;
      case Event::kSide:
        break;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// TimestampsAndWatermarksOperator
// ---------------------------------------------------------------------------------------------

TEST(WatermarkGeneratorTest, BoundedOutOfOrdernessPerEvent) {
  auto h = MakeHarness(Bounded(3000).WithInterval(Duration()));
  for (int64_t ts : {1000, 4000, 2000, 8000, 7999}) h->Element({"a", ts}, 0);
  // Flink: max timestamp - bound - 1; never repeated, never going back.
  EXPECT_EQ(Trace(h->output()), (std::vector<std::string>{"r1000", "w-2001", "r4000", "w999",
                                                          "r2000", "r8000", "w4999", "r7999"}));
}

TEST(WatermarkGeneratorTest, TimestampAssignerSetsTheRecordTimestamp) {
  auto h = MakeHarness(Bounded(0).WithInterval(Duration()));
  h->Element({"a", 1234}, 99);
  ASSERT_EQ(h->output().events.size(), 2u);
  EXPECT_EQ(h->output().events[0].ts, Timestamp(1234));
  // Without an assigner the record keeps its timestamp.
  WatermarkStrategy<Ev> keep =
      WatermarkStrategy<Ev>::ForMonotonousTimestamps().WithInterval(Duration());
  auto k = MakeHarness(keep);
  k->Element({"a", 1234}, 77);
  EXPECT_EQ(Trace(k->output()), (std::vector<std::string>{"r77", "w76"}));
}

TEST(WatermarkGeneratorTest, PeriodicEmissionFollowsProcessingTime) {
  auto h = MakeHarness(Bounded(100));  // default interval 200 ms
  h->AdvanceProcessingTime(200);
  EXPECT_TRUE(Watermarks(h->output()).empty()) << "no watermark before the first event";
  h->Element({"a", 5000}, 0);
  h->Element({"a", 6000}, 0);
  EXPECT_TRUE(Watermarks(h->output()).empty()) << "periodic: nothing per event";
  h->AdvanceProcessingTime(399);
  EXPECT_TRUE(Watermarks(h->output()).empty());
  h->AdvanceProcessingTime(400);
  EXPECT_EQ(Watermarks(h->output()), std::vector<int64_t>{5899});
  h->AdvanceProcessingTime(600);
  EXPECT_EQ(Watermarks(h->output()), std::vector<int64_t>{5899}) << "unchanged: not re-emitted";
  h->Element({"a", 7000}, 0);
  h->AdvanceProcessingTime(800);
  EXPECT_EQ(Watermarks(h->output()), (std::vector<int64_t>{5899, 6899}));
}

TEST(WatermarkGeneratorTest, MonotonousTimestamps) {
  auto h = MakeHarness(WatermarkStrategy<Ev>::ForMonotonousTimestamps()
                           .WithTimestampAssigner([](const Ev& e) { return Timestamp(e.ts); })
                           .WithInterval(Duration()));
  for (int64_t ts : {10, 20, 15, 30}) h->Element({"a", ts}, 0);
  EXPECT_EQ(Watermarks(h->output()), (std::vector<int64_t>{9, 19, 29}));
}

TEST(WatermarkGeneratorTest, UpstreamWatermarksAreIgnoredExceptTheFinalOne) {
  auto h = MakeHarness(Bounded(0).WithInterval(Duration()));
  h->Element({"a", 100}, 0);
  h->Watermark(5000);
  EXPECT_EQ(Watermarks(h->output()), std::vector<int64_t>{99});
  h->Watermark(INT64_MAX);
  EXPECT_EQ(Watermarks(h->output()), (std::vector<int64_t>{99, INT64_MAX}));
  h->Element({"a", 200}, 0);  // nothing can follow Max
  EXPECT_EQ(Watermarks(h->output()).back(), INT64_MAX);
  EXPECT_EQ(Watermarks(h->output()).size(), 2u);

  auto none = MakeHarness(WatermarkStrategy<Ev>::NoWatermarks());
  none->Element({"a", 100}, 100);
  none->AdvanceProcessingTime(10'000);
  EXPECT_TRUE(Watermarks(none->output()).empty());
  none->Watermark(INT64_MAX);
  EXPECT_EQ(Watermarks(none->output()), std::vector<int64_t>{INT64_MAX});
}

TEST(WatermarkGeneratorTest, IdlenessMarksTheStreamIdleAndActiveAgain) {
  auto h = MakeHarness(Bounded(0).WithInterval(Duration()).WithIdleness(Duration::Millis(1000)));
  h->Element({"a", 10}, 0);
  h->AdvanceProcessingTime(999);
  EXPECT_EQ(Trace(h->output()), (std::vector<std::string>{"r10", "w9"}));
  h->AdvanceProcessingTime(1000);
  EXPECT_EQ(Trace(h->output()).back(), "idle");
  h->AdvanceProcessingTime(3000);
  auto trace = Trace(h->output());
  EXPECT_EQ(std::count(trace.begin(), trace.end(), std::string("idle")), 1) << "marked idle once";
  h->Element({"a", 20}, 0);
  EXPECT_EQ(Trace(h->output()),
            (std::vector<std::string>{"r10", "w9", "idle", "active", "r20", "w19"}));
  // Active again: idle only after another full idleness period without events (checked every
  // idleness / 4: at 3250, 3900 + 250 = 4150).
  h->AdvanceProcessingTime(3900);
  EXPECT_EQ(Trace(h->output()).back(), "w19");
  h->AdvanceProcessingTime(4150);
  EXPECT_EQ(Trace(h->output()).back(), "idle");
}

TEST(WatermarkGeneratorTest, IdleStreamsStopPeriodicEmission) {
  auto h = MakeHarness(
      Bounded(0).WithInterval(Duration::Millis(100)).WithIdleness(Duration::Millis(500)));
  h->Element({"a", 10}, 0);
  h->AdvanceProcessingTime(100);
  EXPECT_EQ(Trace(h->output()), (std::vector<std::string>{"r10", "w9"}));
  h->AdvanceProcessingTime(500);
  EXPECT_EQ(Trace(h->output()).back(), "idle");
  const size_t n = h->output().events.size();
  h->AdvanceProcessingTime(1000);
  EXPECT_EQ(h->output().events.size(), n);
}

// ---------------------------------------------------------------------------------------------
// WatermarkCombiner
// ---------------------------------------------------------------------------------------------

TEST(WatermarkCombinerTest, MinimumOverInputsOnlyAdvancing) {
  WatermarkCombiner c(3);
  EXPECT_EQ(c.current(), Watermark::Min());
  EXPECT_FALSE(c.Update(0, Watermark(10)));
  EXPECT_FALSE(c.Update(1, Watermark(20)));
  EXPECT_TRUE(c.Update(2, Watermark(5)));
  EXPECT_EQ(c.current(), Watermark(5));
  EXPECT_FALSE(c.Update(2, Watermark(3))) << "an input's watermark never goes back";
  EXPECT_TRUE(c.Update(2, Watermark(30)));
  EXPECT_EQ(c.current(), Watermark(10));
  EXPECT_TRUE(c.Update(0, Watermark(25)));
  EXPECT_EQ(c.current(), Watermark(20));
  EXPECT_FALSE(c.all_idle());
}

TEST(WatermarkCombinerTest, IdleInputsAreIgnored) {
  WatermarkCombiner c(2);
  EXPECT_FALSE(c.Update(0, Watermark(100)));  // input 1 holds it back
  EXPECT_TRUE(c.SetIdle(1, true));
  EXPECT_EQ(c.current(), Watermark(100));
  EXPECT_TRUE(c.Update(0, Watermark(200)));
  EXPECT_EQ(c.current(), Watermark(200));
  // Back to active with an old watermark: the combined watermark does not go back.
  EXPECT_FALSE(c.SetIdle(1, false));
  EXPECT_EQ(c.current(), Watermark(200));
  EXPECT_FALSE(c.Update(0, Watermark(300)));
  EXPECT_TRUE(c.Update(1, Watermark(250)));
  EXPECT_EQ(c.current(), Watermark(250));
  EXPECT_FALSE(c.all_idle());
}

// Flink's StatusWatermarkValve: when the last active input becomes idle, the highest watermark
// over all inputs is emitted (no input can hold it back any more).
TEST(WatermarkCombinerTest, AllInputsIdleFlushesTheMaximumWatermark) {
  WatermarkCombiner c(2);
  EXPECT_FALSE(c.Update(0, Watermark(100)));
  EXPECT_FALSE(c.SetIdle(0, true));  // input 1 (at Min) is still active
  EXPECT_FALSE(c.all_idle());
  EXPECT_TRUE(c.SetIdle(1, true));
  EXPECT_TRUE(c.all_idle());
  EXPECT_EQ(c.current(), Watermark(100));
  EXPECT_FALSE(c.SetIdle(0, false)) << "becoming active again never moves the watermark back";
  EXPECT_EQ(c.current(), Watermark(100));
}

// ---------------------------------------------------------------------------------------------
// End to end: the slowest input decides; idle inputs don't hold windows back
// ---------------------------------------------------------------------------------------------

struct SlowFastControl {
  std::atomic<int64_t> slow_max_emitted{INT64_MIN};
  std::atomic<bool> slow_done{false};
  std::atomic<int> early_fires{0};  // windows that fired before the slow input reached their end
};

/// Subtask 0 emits everything at once; subtask 1 emits one record every 2 ms.
class SlowFastReader final : public SourceReader<Ev> {
 public:
  explicit SlowFastReader(std::shared_ptr<SlowFastControl> c) : c_(std::move(c)) {}
  Status Open(OperatorContext& ctx) override {
    slow_ = ctx.subtask_index == 1;
    return Status::Ok();
  }
  InputStatus PollNext(Output<Ev>& out) override {
    if (!slow_) {
      for (int64_t ts = 0; ts <= 100'000; ts += 100)
        out.Collect({"k" + std::to_string(ts % 3), ts}, Timestamp::None());
      return InputStatus::kEndOfInput;
    }
    auto now = std::chrono::steady_clock::now();
    if (now < next_) return InputStatus::kNothingAvailable;
    next_ = now + std::chrono::milliseconds(2);
    c_->slow_max_emitted.store(next_ts_);
    out.Collect({"k" + std::to_string(next_ts_ % 3), next_ts_}, Timestamp::None());
    next_ts_ += 5000;
    if (next_ts_ > 100'000) {
      c_->slow_done.store(true);
      return InputStatus::kEndOfInput;
    }
    return InputStatus::kMoreAvailable;
  }

 private:
  std::shared_ptr<SlowFastControl> c_;
  bool slow_ = false;
  int64_t next_ts_ = 0;
  std::chrono::steady_clock::time_point next_{};
};

/// "key@start:count"; counts windows that fired before the slow input reached their end.
class CountAndCheck final : public ProcessWindowFunction<Ev, std::string> {
 public:
  explicit CountAndCheck(std::shared_ptr<SlowFastControl> c) : c_(std::move(c)) {}
  void Process(WindowContext& ctx, const std::vector<Ev>& els,
               Collector<std::string>& out) override {
    if (!c_->slow_done.load() && c_->slow_max_emitted.load() < ctx.window().end) c_->early_fires++;
    out.Collect(ctx.CurrentKey<std::string>() + "@" + std::to_string(ctx.window().start) + ":" +
                std::to_string(els.size()));
  }

 private:
  std::shared_ptr<SlowFastControl> c_;
};

TEST(WatermarkEndToEndTest, WindowsWaitForTheSlowestParallelSource) {
  for (int window_par : {1, 2}) {
    SCOPED_TRACE(window_par);
    auto control = std::make_shared<SlowFastControl>();
    StreamExecutionEnvironment env;
    env.SetParallelism(2);
    auto src = env.FromSource<Ev>([control] { return std::make_unique<SlowFastReader>(control); },
                                  "SlowFast", MakeTypeInfo<Ev>(), 2);
    auto stamped = src.AssignTimestampsAndWatermarks(
        WatermarkStrategy<Ev>::ForBoundedOutOfOrderness(Duration())
            .WithTimestampAssigner([](const Ev& e) { return Timestamp(e.ts); })
            .WithInterval(Duration()));
    auto windows =
        stamped.KeyBy([](const Ev& e) { return e.key; })
            .Window(TumblingEventTimeWindows<Ev>(Duration::Seconds(10)))
            .Process<std::string>([control] { return std::make_shared<CountAndCheck>(control); });
    windows.SetParallelism(window_par);
    auto out = testing::CollectInto(windows);
    auto r = testing::RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    // The batch answer: fast ts 0, 100, ..., 100000 and slow ts 0, 5000, ..., 100000.
    std::map<std::string, int> expected;
    for (int64_t ts = 0; ts <= 100'000; ts += 100) {
      expected["k" + std::to_string(ts % 3) + "@" + std::to_string(ts / 10'000 * 10'000)]++;
    }
    for (int64_t ts = 0; ts <= 100'000; ts += 5000) {
      expected["k" + std::to_string(ts % 3) + "@" + std::to_string(ts / 10'000 * 10'000)]++;
    }
    std::vector<std::string> want;
    for (const auto& [k, n] : expected) want.push_back(k + ":" + std::to_string(n));
    std::sort(want.begin(), want.end());
    EXPECT_EQ(out->sorted(), want) << "no slow element was late";
    EXPECT_EQ(control->early_fires.load(), 0);
  }
}

struct IdleControl {
  std::atomic<bool> released{false};
  std::atomic<bool> timed_out{false};
  std::atomic<int> results_while_running{0};
  std::chrono::steady_clock::time_point deadline;
};

/// Emits `data` (may be empty), then stays open until released or the deadline passes.
class HoldingReader final : public SourceReader<Ev> {
 public:
  HoldingReader(std::shared_ptr<IdleControl> c, std::vector<Ev> data)
      : c_(std::move(c)), data_(std::move(data)) {}
  InputStatus PollNext(Output<Ev>& out) override {
    for (const auto& e : data_) out.Collect(e, Timestamp::None());
    data_.clear();
    if (c_->released.load()) return InputStatus::kEndOfInput;
    if (std::chrono::steady_clock::now() >= c_->deadline) {
      c_->timed_out.store(true);
      return InputStatus::kEndOfInput;
    }
    return InputStatus::kNothingAvailable;
  }

 private:
  std::shared_ptr<IdleControl> c_;
  std::vector<Ev> data_;
};

/// Two sources, one of them empty (with `idleness` on its watermarks); returns the window results.
std::vector<std::string> RunWithEmptySource(const std::shared_ptr<IdleControl>& control,
                                            Duration idleness) {
  StreamExecutionEnvironment env;
  env.SetParallelism(1);
  std::vector<Ev> data;
  for (int64_t ts = 0; ts <= 50'000; ts += 1000) data.push_back({"k", ts});
  auto strategy = WatermarkStrategy<Ev>::ForBoundedOutOfOrderness(Duration())
                      .WithTimestampAssigner([](const Ev& e) { return Timestamp(e.ts); })
                      .WithInterval(Duration());
  auto full =
      env.FromSource<Ev>([control, data] { return std::make_unique<HoldingReader>(control, data); },
                         "Full")
          .AssignTimestampsAndWatermarks(strategy);
  auto empty =
      env.FromSource<Ev>(
             [control] { return std::make_unique<HoldingReader>(control, std::vector<Ev>{}); },
             "Empty")
          .AssignTimestampsAndWatermarks(strategy.WithIdleness(idleness));
  auto windows =
      full.Union({empty})
          .KeyBy([](const Ev& e) { return e.key; })
          .Window(TumblingEventTimeWindows<Ev>(Duration::Seconds(10)))
          .Process<std::string>([] {
            class Count final : public ProcessWindowFunction<Ev, std::string> {
             public:
              void Process(WindowContext& ctx, const std::vector<Ev>& els,
                           Collector<std::string>& out) override {
                out.Collect(std::to_string(ctx.window().start) + ":" + std::to_string(els.size()));
              }
            };
            return std::make_shared<Count>();
          });
  auto results = std::make_shared<testing::Collected<std::string>>();
  windows.AddSink(
      [control, results](const std::string& v, Timestamp ts) {
        if (!control->timed_out.load()) control->results_while_running++;
        control->released.store(true);
        results->Add(v, ts);
      },
      "Collect");
  auto r = testing::RunJob(env);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  return results->sorted();
}

const std::vector<std::string> kSixWindows = {"0:10",     "10000:10", "20000:10",
                                              "30000:10", "40000:10", "50000:1"};

TEST(WatermarkEndToEndTest, AnIdleSourceDoesNotHoldWindowsBack) {
  auto control = std::make_shared<IdleControl>();
  control->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto results = RunWithEmptySource(control, Duration::Millis(20));
  EXPECT_FALSE(control->timed_out.load()) << "windows fired while both sources were running";
  EXPECT_GE(control->results_while_running.load(), 1);
  EXPECT_EQ(results, kSixWindows);
}

TEST(WatermarkEndToEndTest, WithoutIdlenessAnEmptySourceHoldsWindowsBack) {
  auto control = std::make_shared<IdleControl>();
  control->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  auto results = RunWithEmptySource(control, Duration());
  EXPECT_TRUE(control->timed_out.load());
  EXPECT_EQ(control->results_while_running.load(), 0) << "nothing fired before the sources ended";
  EXPECT_EQ(results, kSixWindows) << "the final watermark fires everything";
}

}  // namespace
}  // namespace eddy
