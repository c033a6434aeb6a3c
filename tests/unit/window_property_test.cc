// Property test: random out-of-order input whose disorder is bounded by D, windowed with a
// watermark strategy of bounded out-of-orderness D, gives exactly the windows a plain batch
// computation gives (as multisets), at parallelism 1 and 4. Because the bound holds, no element
// can be late, so the batch answer is exact.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "tests/test_util.h"

namespace eddy::prop_test {
struct PEv {
  int32_t key = 0;
  int64_t ts = 0;
  int64_t v = 0;
};
}  // namespace eddy::prop_test
EDDY_SERIALIZABLE(eddy::prop_test::PEv, key, ts, v);

namespace eddy {
namespace {

using prop_test::PEv;
using CountSum = std::pair<int64_t, int64_t>;

struct Params {
  uint32_t seed;
  int64_t disorder;  // D: every element is at most D older than the newest one before it
  int keys;
  int events;
  Duration interval = Duration();  // watermark interval (0 = after every event)
};

void PrintTo(const Params& p, std::ostream* os) {
  *os << "seed " << p.seed << ", D " << p.disorder << ", " << p.keys << " keys, " << p.events
      << " events, interval " << p.interval.ToString();
}

/// Increasing base times with random gaps; each element goes back by up to D from its base.
std::vector<PEv> Generate(const Params& p) {
  std::mt19937_64 rng(p.seed);
  std::uniform_int_distribution<int64_t> gap(0, 40), back(0, p.disorder), value(-1000, 1000);
  std::uniform_int_distribution<int> key(0, p.keys - 1);
  std::vector<PEv> out;
  int64_t base = -5000;  // negative timestamps too
  for (int i = 0; i < p.events; ++i) {
    base += gap(rng);
    out.push_back({key(rng), base - back(rng), value(rng)});
  }
  return out;
}

/// Subtask i of n emits elements i, i + n, ... (CollectionReader); the bound must hold for each
/// such subsequence, since each has its own watermark generator.
void CheckBoundedDisorder(const std::vector<PEv>& evs, int parallelism, int64_t d) {
  for (int s = 0; s < parallelism; ++s) {
    int64_t max_ts = INT64_MIN;
    for (size_t i = static_cast<size_t>(s); i < evs.size(); i += static_cast<size_t>(parallelism)) {
      if (max_ts != INT64_MIN) {
        ASSERT_GE(evs[i].ts, max_ts - d) << "generator broke the bound";
      }
      max_ts = std::max(max_ts, evs[i].ts);
    }
  }
}

std::string Line(int key, int64_t start, int64_t end, int64_t count, int64_t sum) {
  return std::to_string(key) + "|" + std::to_string(start) + "|" + std::to_string(end) + "|" +
         std::to_string(count) + "|" + std::to_string(sum);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/// Batch computation of sliding (size, slide) windows; tumbling is slide == size.
std::vector<std::string> BatchSliding(const std::vector<PEv>& evs, int64_t size, int64_t slide) {
  std::map<std::tuple<int, int64_t>, CountSum> acc;
  for (const auto& e : evs) {
    int64_t last_start = FloorDiv(e.ts, slide) * slide;
    for (int64_t s = last_start; s > e.ts - size; s -= slide) {
      auto& cs = acc[{e.key, s}];
      cs.first++;
      cs.second += e.v;
    }
  }
  std::vector<std::string> r;
  for (const auto& [k, cs] : acc) {
    r.push_back(Line(std::get<0>(k), std::get<1>(k), std::get<1>(k) + size, cs.first, cs.second));
  }
  std::sort(r.begin(), r.end());
  return r;
}

/// Batch computation of session windows: a new session when an element starts after the end.
std::vector<std::string> BatchSessions(const std::vector<PEv>& evs, int64_t gap) {
  std::map<int, std::vector<const PEv*>> per_key;
  for (const auto& e : evs) per_key[e.key].push_back(&e);
  std::vector<std::string> r;
  for (auto& [key, list] : per_key) {
    std::sort(list.begin(), list.end(), [](const PEv* a, const PEv* b) { return a->ts < b->ts; });
    int64_t start = list[0]->ts, end = start + gap, count = 0, sum = 0;
    for (const PEv* e : list) {
      if (e->ts > end) {
        r.push_back(Line(key, start, end, count, sum));
        start = e->ts;
        end = e->ts + gap;
        count = sum = 0;
      }
      end = std::max(end, e->ts + gap);
      count++;
      sum += e->v;
    }
    r.push_back(Line(key, start, end, count, sum));
  }
  std::sort(r.begin(), r.end());
  return r;
}

class CountSumAgg final : public AggregateFunction<PEv, CountSum, CountSum> {
 public:
  CountSum CreateAccumulator() const override { return {0, 0}; }
  void Add(const PEv& e, CountSum& acc) const override {
    acc.first++;
    acc.second += e.v;
  }
  CountSum GetResult(const CountSum& acc) const override { return acc; }
  void Merge(CountSum& a, const CountSum& b) const override {
    a.first += b.first;
    a.second += b.second;
  }
};

/// Counts windows evaluated before the final watermark, so that the comparison is about windows
/// fired by watermarks and not only about the end of input (when everything fires at once).
using EarlyCounter = std::shared_ptr<std::atomic<int>>;
void CountEarly(const EarlyCounter& early, const WindowContext& ctx) {
  if (ctx.current_watermark() != Watermark::Max()) early->fetch_add(1);
}

/// Incremental aggregation result -> line with the window.
class AggLine final : public ProcessWindowFunction<CountSum, std::string> {
 public:
  explicit AggLine(EarlyCounter early) : early_(std::move(early)) {}
  void Process(WindowContext& ctx, const std::vector<CountSum>& r,
               Collector<std::string>& out) override {
    CountEarly(early_, ctx);
    out.Collect(
        Line(ctx.CurrentKey<int>(), ctx.window().start, ctx.window().end, r[0].first, r[0].second));
  }

 private:
  EarlyCounter early_;
};

/// Full-window evaluation -> line.
class ListLine final : public ProcessWindowFunction<PEv, std::string> {
 public:
  explicit ListLine(EarlyCounter early) : early_(std::move(early)) {}
  void Process(WindowContext& ctx, const std::vector<PEv>& els,
               Collector<std::string>& out) override {
    CountEarly(early_, ctx);
    int64_t sum = 0;
    for (const auto& e : els) sum += e.v;
    out.Collect(Line(ctx.CurrentKey<int>(), ctx.window().start, ctx.window().end,
                     static_cast<int64_t>(els.size()), sum));
  }

 private:
  EarlyCounter early_;
};

enum class Kind { kTumbling, kSliding, kSession };

struct StreamingResult {
  std::vector<std::string> lines;
  int early = 0;  // windows evaluated before the final watermark
};

/// `bound` < 0: the watermark bound that keeps every element on time.
StreamingResult RunStreaming(const std::vector<PEv>& evs, int parallelism, const Params& p,
                             Kind kind, int64_t bound = -1) {
  auto early = std::make_shared<std::atomic<int>>(0);
  StreamExecutionEnvironment env;
  env.SetParallelism(parallelism);
  auto data = std::make_shared<const std::vector<PEv>>(evs);
  auto src = env.FromSource<PEv>([data] { return std::make_unique<CollectionReader<PEv>>(data); },
                                 "Events", MakeTypeInfo<PEv>(), parallelism);
  // Sessions merge windows that touch, so an element exactly at a fired session's end would join
  // it in the batch answer: one more millisecond of bound keeps every element strictly on time.
  if (bound < 0) bound = kind == Kind::kSession ? p.disorder + 1 : p.disorder;
  auto stamped = src.AssignTimestampsAndWatermarks(
      WatermarkStrategy<PEv>::ForBoundedOutOfOrderness(Duration::Millis(bound))
          .WithTimestampAssigner([](const PEv& e) { return Timestamp(e.ts); })
          .WithInterval(p.interval));
  auto keyed = stamped.KeyBy([](const PEv& e) { return e.key; });
  auto agg_line = [early] { return std::make_shared<AggLine>(early); };
  DataStream<std::string> out;
  switch (kind) {
    case Kind::kTumbling:
      out = keyed.Window(TumblingEventTimeWindows<PEv>(Duration::Millis(500)))
                .Aggregate<CountSum, CountSum, std::string>(std::make_shared<CountSumAgg>(),
                                                            agg_line);
      break;
    case Kind::kSliding:
      out = keyed.Window(SlidingEventTimeWindows<PEv>(Duration::Millis(600), Duration::Millis(200)))
                .Process<std::string>([early] { return std::make_shared<ListLine>(early); });
      break;
    case Kind::kSession:
      out = keyed.Window(EventTimeSessionWindows<PEv>(Duration::Millis(60)))
                .Aggregate<CountSum, CountSum, std::string>(std::make_shared<CountSumAgg>(),
                                                            agg_line);
      break;
  }
  auto collected = testing::CollectInto(out);
  auto r = testing::RunJob(env);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  return {collected->sorted(), early->load()};
}

void ExpectBatchAnswer(const std::vector<PEv>& evs, const Params& p, Kind kind,
                       const std::vector<std::string>& expected) {
  for (int par : {1, 4}) {
    SCOPED_TRACE("parallelism " + std::to_string(par));
    CheckBoundedDisorder(evs, par, p.disorder);
    auto got = RunStreaming(evs, par, p, kind);
    EXPECT_EQ(got.lines, expected);
    if (p.interval.millis() == 0) {  // periodic watermarks depend on timing: not checked
      EXPECT_GT(got.early, 0) << "windows fired on watermarks, not only at the end of input";
    }
  }
}

class WindowPropertyTest : public ::testing::TestWithParam<Params> {};

TEST_P(WindowPropertyTest, TumblingWindowsEqualTheBatchAnswer) {
  auto evs = Generate(GetParam());
  auto expected = BatchSliding(evs, 500, 500);
  ASSERT_GT(expected.size(), 10u);
  ExpectBatchAnswer(evs, GetParam(), Kind::kTumbling, expected);
}

TEST_P(WindowPropertyTest, SlidingWindowsEqualTheBatchAnswer) {
  auto evs = Generate(GetParam());
  ExpectBatchAnswer(evs, GetParam(), Kind::kSliding, BatchSliding(evs, 600, 200));
}

TEST_P(WindowPropertyTest, SessionWindowsEqualTheBatchAnswer) {
  auto evs = Generate(GetParam());
  ExpectBatchAnswer(evs, GetParam(), Kind::kSession, BatchSessions(evs, 60));
}

// The comparison is sensitive: with a watermark bound below the real disorder, elements are late
// and dropped, and the results differ from the batch answer.
TEST(WindowPropertyControlTest, ABoundBelowTheDisorderLosesElements) {
  Params p{3, 300, 7, 2000};
  auto evs = Generate(p);
  for (int par : {1, 4}) {
    SCOPED_TRACE("parallelism " + std::to_string(par));
    EXPECT_NE(RunStreaming(evs, par, p, Kind::kTumbling, 20).lines, BatchSliding(evs, 500, 500));
    EXPECT_NE(RunStreaming(evs, par, p, Kind::kSession, 20).lines, BatchSessions(evs, 60));
  }
}

// The batch side itself, on a hand-checked example (so that the comparison is not vacuous).
TEST(WindowPropertyBatchTest, BatchWindowsByHand) {
  std::vector<PEv> evs = {{1, -1, 5}, {1, 0, 1}, {1, 499, 2}, {1, 500, 3}, {2, 250, 7}};
  EXPECT_EQ(
      BatchSliding(evs, 500, 500),
      (std::vector<std::string>{"1|-500|0|1|5", "1|0|500|2|3", "1|500|1000|1|3", "2|0|500|1|7"}));
  EXPECT_EQ(BatchSliding({{1, 250, 1}}, 600, 200),
            (std::vector<std::string>{"1|-200|400|1|1", "1|0|600|1|1", "1|200|800|1|1"}));
  EXPECT_EQ(BatchSessions({{1, 0, 1}, {1, 60, 2}, {1, 121, 4}, {2, 5, 8}}, 60),
            (std::vector<std::string>{"1|0|120|2|3", "1|121|181|1|4", "2|5|65|1|8"}));
}

INSTANTIATE_TEST_SUITE_P(Seeds, WindowPropertyTest,
                         ::testing::Values(Params{1, 0, 3, 1500}, Params{2, 50, 5, 2000},
                                           Params{3, 300, 7, 2000}, Params{4, 1000, 4, 2000},
                                           Params{5, 120, 16, 3000},
                                           Params{6, 200, 5, 1500, Duration::Millis(1)}),
                         [](const ::testing::TestParamInfo<Params>& i) {
                           return "seed" + std::to_string(i.param.seed) + "_D" +
                                  std::to_string(i.param.disorder);
                         });

}  // namespace
}  // namespace eddy
