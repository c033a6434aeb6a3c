#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "eddy/datastream.h"
#include "eddy/spec/job_spec.h"
#include "tests/backend_test.h"
#include "tests/operator_harness.h"
#include "tests/test_util.h"
#include "tests/two_input_harness.h"

namespace eddy::jtest {
struct Left {
  std::string key;
  int64_t ts = 0;
  int64_t v = 0;
  bool operator==(const Left&) const = default;
};
struct Right {
  std::string key;
  int64_t ts = 0;
  std::string tag;
  bool operator==(const Right&) const = default;
};
}  // namespace eddy::jtest
EDDY_SERIALIZABLE(eddy::jtest::Left, key, ts, v);
EDDY_SERIALIZABLE(eddy::jtest::Right, key, ts, tag);

namespace eddy {
namespace {

// Run once per keyed state backend (heap, RocksDB).
EDDY_BACKEND_TEST_SUITE(IntervalJoinOperatorTest);
EDDY_BACKEND_TEST_SUITE(WindowJoinOperatorTest);
EDDY_BACKEND_TEST_SUITE(IntervalJoinJobTest);
EDDY_BACKEND_TEST_SUITE(WindowJoinJobTest);
EDDY_BACKEND_TEST_SUITE(JoinSpecTest);

using jtest::Left;
using jtest::Right;
using testing::CollectInto;
using testing::OneInputHarness;
using testing::RunJob;
using testing::TwoInputHarness;
using Tagged = TaggedUnion<Left, Right>;

std::string Pair(const Left& l, const Right& r) {
  return l.key + "|" + std::to_string(l.ts) + "|" + std::to_string(r.ts);
}

/// "key|left.ts|right.ts@result-timestamp": checks the timestamps the join gives its output.
class DescribeJoin final : public ProcessJoinFunction<Left, Right, std::string> {
 public:
  void ProcessElement(const Left& l, const Right& r, Context& ctx,
                      Collector<std::string>& out) override {
    EXPECT_EQ(ctx.left_timestamp(), Timestamp(l.ts));
    EXPECT_EQ(ctx.right_timestamp(), Timestamp(r.ts));
    out.Collect(Pair(l, r) + "@" + std::to_string(ctx.timestamp().millis()));
  }
};

std::unique_ptr<IntervalJoinOperator<Left, Right, std::string>> IntervalOp(IntervalJoinOptions o) {
  auto op = std::make_unique<IntervalJoinOperator<Left, Right, std::string>>(
      std::make_shared<DescribeJoin>(), o);
  auto kl = [](const Left& l) { return l.key; };
  auto kr = [](const Right& r) { return r.key; };
  op->SetKeySelectors(std::make_shared<LambdaKeySelector<Left, std::string, decltype(kl)>>(kl),
                      std::make_shared<LambdaKeySelector<Right, std::string, decltype(kr)>>(kr));
  return op;
}
IntervalJoinOptions Bounds(int64_t lower, int64_t upper, bool lower_inclusive = true,
                           bool upper_inclusive = true) {
  IntervalJoinOptions o;
  o.lower = Duration::Millis(lower);
  o.upper = Duration::Millis(upper);
  o.lower_inclusive = lower_inclusive;
  o.upper_inclusive = upper_inclusive;
  return o;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// Feeds one left element at 10 and rights around it; returns what joined.
std::vector<std::string> JoinAroundTen(IntervalJoinOptions o) {
  TwoInputHarness<Left, Right, std::string> h(IntervalOp(o));
  EXPECT_TRUE(h.Open().ok());
  for (int64_t t : {7, 8, 9, 12, 13}) h.Element2({"a", t, "r"}, t);
  h.Element2({"b", 10, "other key"}, 10);
  h.Element1({"a", 10, 1}, 10);
  return Sorted(h.output().Records());
}

TEST_P(IntervalJoinOperatorTest, InclusiveAndExclusiveBounds) {
  EXPECT_EQ(JoinAroundTen(Bounds(-2, 2)),
            (std::vector<std::string>{"a|10|12@12", "a|10|8@10", "a|10|9@10"}));
  EXPECT_EQ(JoinAroundTen(Bounds(-2, 2, false, true)),
            (std::vector<std::string>{"a|10|12@12", "a|10|9@10"}));
  EXPECT_EQ(JoinAroundTen(Bounds(-2, 2, true, false)),
            (std::vector<std::string>{"a|10|8@10", "a|10|9@10"}));
  EXPECT_EQ(JoinAroundTen(Bounds(-2, 2, false, false)), (std::vector<std::string>{"a|10|9@10"}));
  EXPECT_EQ(JoinAroundTen(Bounds(0, 3)), (std::vector<std::string>{"a|10|12@12", "a|10|13@13"}));
  EXPECT_EQ(JoinAroundTen(Bounds(-3, -1)),
            (std::vector<std::string>{"a|10|7@10", "a|10|8@10", "a|10|9@10"}));
  EXPECT_EQ(JoinAroundTen(Bounds(0, 0)), std::vector<std::string>{});
}

TEST_P(IntervalJoinOperatorTest, JoinsInBothArrivalOrders) {
  TwoInputHarness<Left, Right, std::string> h(IntervalOp(Bounds(-5, 5)));
  ASSERT_TRUE(h.Open().ok());
  h.Element1({"a", 100, 1}, 100);
  h.Element2({"a", 103, "x"}, 103);  // finds the buffered left
  h.Element2({"a", 96, "y"}, 96);
  h.Element1({"a", 101, 2}, 101);  // finds both buffered rights, in timestamp order
  EXPECT_EQ(h.output().Records(), (std::vector<std::string>{"a|100|103@103", "a|100|96@100",
                                                            "a|101|96@101", "a|101|103@103"}));
  const auto& ev = h.output().events;
  EXPECT_EQ(ev[0].ts, Timestamp(103));
  EXPECT_EQ(ev[1].ts, Timestamp(100));
}

TEST_P(IntervalJoinOperatorTest, WatermarkCleansUpBuffersAndLateElementsAreDropped) {
  auto o = Bounds(-2, 3);
  OutputTag<Right> late_right("late-right");
  o.right_late_tag = late_right.id();
  TwoInputHarness<Left, Right, std::string> h(IntervalOp(o));
  ASSERT_TRUE(h.Open().ok());
  h.Element1({"a", 10, 1}, 10);    // joinable with rights in [8, 13]: kept until watermark 13
  h.Element2({"a", 20, "r"}, 20);  // joinable with lefts in [17, 22]: kept until watermark 22
  h.Element1({"b", 11, 1}, 11);
  EXPECT_EQ(h.backend()->NumEntries(), 3u);
  h.Watermark(12);
  EXPECT_EQ(h.backend()->NumEntries(), 3u);
  h.Element2({"a", 13, "just in time"}, 13);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"a|10|13@13"});
  h.Watermark(13);  // left a@10 meets rights up to 13: gone; right a@13 meets lefts up to 15
  EXPECT_EQ(h.backend()->NumEntries(), 2u) << "left b, right a";
  h.Watermark(15);  // left b@11 (up to 14) and right a@13 are gone; right a@20 stays until 22
  EXPECT_EQ(h.backend()->NumEntries(), 1u);
  h.Watermark(14);                    // watermarks never go back
  h.Element2({"a", 15, "late"}, 15);  // ts <= watermark: late, to the side output
  h.Element1({"a", 15, 1}, 15);       // late too, dropped and counted
  EXPECT_TRUE(h.output().TakeRecords().empty());
  EXPECT_EQ(h.output().side_count[late_right.id()], 1);
  EXPECT_EQ(h.counters().late_records_dropped, 1u);
  h.Element1({"a", 18, 2}, 18);  // still joins the buffered right a@20
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"a|18|20@20"});
  h.Watermark(INT64_MAX);
  EXPECT_EQ(h.backend()->NumEntries(), 0u) << "the final watermark drops every buffer";
  EXPECT_TRUE(h.failure().ok());
}

TEST_P(IntervalJoinOperatorTest, NeedsTimestampsAndOrderedBounds) {
  TwoInputHarness<Left, Right, std::string> h(IntervalOp(Bounds(0, 1)));
  ASSERT_TRUE(h.Open().ok());
  h.Element1({"a", 1, 1}, Timestamp::None());
  EXPECT_EQ(h.failure().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(h.failure().message().find("timestamp"), std::string::npos) << h.failure().ToString();

  TwoInputHarness<Left, Right, std::string> bad(IntervalOp(Bounds(5, 1)));
  Status st = bad.Open();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("lower bound"), std::string::npos) << st.ToString();
}

TEST_P(WindowJoinOperatorTest, TaggedUnionWindowPairsEachWindowsElements) {
  WindowSpec<Tagged, std::string> spec;
  spec.assigner = TumblingEventTimeWindows<Tagged>(Duration::Millis(10));
  spec.contents = [] {
    auto join = [](const Left& l, const Right& r) { return Pair(l, r) + ":" + r.tag; };
    auto fn = std::make_shared<JoinCoGroupFunction<Left, Right, std::string, decltype(join)>>(join);
    return std::make_unique<ListContents<Tagged, std::string>>(
        std::make_shared<CoGroupWindowFunction<Left, Right, std::string>>(fn), nullptr);
  };
  auto op = std::make_unique<WindowOperator<Tagged, std::string>>(spec);
  auto kl = [](const Left& l) { return l.key; };
  auto kr = [](const Right& r) { return r.key; };
  op->SetKeySelector(std::make_shared<UnionKeySelector<Left, Right>>(
      std::make_shared<LambdaKeySelector<Left, std::string, decltype(kl)>>(kl),
      std::make_shared<LambdaKeySelector<Right, std::string, decltype(kr)>>(kr)));
  OneInputHarness<Tagged, std::string> h(std::move(op));
  ASSERT_TRUE(h.Open().ok());
  h.Element(Tagged(std::in_place_index<0>, Left{"a", 1, 0}), 1);
  h.Element(Tagged(std::in_place_index<1>, Right{"a", 2, "x"}), 2);
  h.Element(Tagged(std::in_place_index<0>, Left{"a", 3, 0}), 3);
  h.Element(Tagged(std::in_place_index<1>, Right{"a", 12, "next window"}), 12);
  h.Element(Tagged(std::in_place_index<1>, Right{"b", 4, "other key"}), 4);
  h.Watermark(9);
  const auto& ev = h.output().events;
  std::vector<std::string> recs;
  for (const auto& e : ev) {
    if (e.kind == testing::CapturingOutput<std::string>::Event::kRecord) {
      recs.push_back(e.value);
      EXPECT_EQ(e.ts, Timestamp(9)) << "results carry the window's max timestamp";
    }
  }
  EXPECT_EQ(Sorted(recs), (std::vector<std::string>{"a|1|2:x", "a|3|2:x"}));
  h.Watermark(INT64_MAX);
  EXPECT_EQ(h.output().Records().size(), 2u) << "a window with one side only joins nothing";
  EXPECT_EQ(h.backend()->NumEntries(), 0u);
}

TEST(TaggedUnionTest, SerializesByIndexEvenWithEqualTypes) {
  using U = std::variant<std::string, std::string>;
  std::string buf;
  ByteWriter w(buf);
  Serializer<U>::Write(U(std::in_place_index<1>, "right"), w);
  U back(std::in_place_index<0>, "stale");
  ByteReader r(buf);
  ASSERT_TRUE(Serializer<U>::Read(r, back));
  EXPECT_EQ(back.index(), 1u);
  EXPECT_EQ(std::get<1>(back), "right");
  ByteReader bad(std::string_view("\x05", 1));
  EXPECT_FALSE(Serializer<U>::Read(bad, back));
}

// ---- end-to-end through the local executor, checked against a brute-force reference ----

std::vector<Left> Lefts() {
  std::vector<Left> v;
  for (int i = 0; i < 40; ++i) v.push_back({"k" + std::to_string(i % 5), i * 700, i});
  return v;
}
std::vector<Right> Rights() {
  std::vector<Right> v;
  for (int j = 0; j < 35; ++j) v.push_back({"k" + std::to_string(j % 3), j * 900 + 100, "r"});
  return v;
}

/// Both inputs with ascending timestamps and a watermark after every element.
template <class T>
DataStream<T> WithTimestamps(DataStream<T> s) {
  return s.AssignTimestampsAndWatermarks(
      WatermarkStrategy<T>::ForMonotonousTimestamps()
          .WithTimestampAssigner([](const T& v) { return Timestamp(v.ts); })
          .WithInterval(Duration()));
}

/// Appends "@<timestamp>" to each element.
class StampTimestamp final : public ProcessFunction<std::string, std::string> {
 public:
  void ProcessElement(const std::string& v, ProcessContext& ctx,
                      Collector<std::string>& out) override {
    out.Collect(v + "@" + std::to_string(ctx.timestamp().millis()));
  }
};
DataStream<std::string> Stamped(DataStream<std::string> s) {
  return s.Process<std::string>([] { return std::make_shared<StampTimestamp>(); });
}

struct TimeWindowKind {
  std::string name;
  std::shared_ptr<const WindowAssigner<Tagged>> assigner;
  // Reference: the windows (start, end) of a timestamp (not for sessions).
  std::function<std::vector<std::pair<int64_t, int64_t>>(int64_t)> windows;
};

std::vector<std::string> ReferenceWindowJoin(const TimeWindowKind& k) {
  std::vector<std::string> e;
  for (const auto& l : Lefts()) {
    for (const auto& r : Rights()) {
      if (l.key != r.key) continue;
      for (auto wl : k.windows(l.ts)) {
        for (auto wr : k.windows(r.ts)) {
          if (wl == wr) e.push_back(Pair(l, r) + "@" + std::to_string(wl.second - 1));
        }
      }
    }
  }
  std::sort(e.begin(), e.end());
  return e;
}

/// Sessions per key over both sides' timestamps; elements within `gap` belong together.
std::vector<std::string> ReferenceSessionJoin(int64_t gap) {
  std::map<std::string, std::vector<int64_t>> ts;
  for (const auto& l : Lefts()) ts[l.key].push_back(l.ts);
  for (const auto& r : Rights()) ts[r.key].push_back(r.ts);
  std::map<std::pair<std::string, int64_t>, int64_t> session_end;  // (key, ts) -> session max ts
  for (auto& [key, v] : ts) {
    std::sort(v.begin(), v.end());
    size_t start = 0;
    for (size_t i = 1; i <= v.size(); ++i) {
      if (i == v.size() || v[i] > v[i - 1] + gap) {
        for (size_t j = start; j < i; ++j) session_end[{key, v[j]}] = v[i - 1];
        start = i;
      }
    }
  }
  std::vector<std::string> e;
  for (const auto& l : Lefts()) {
    for (const auto& r : Rights()) {
      if (l.key != r.key) continue;
      int64_t end_l = session_end[{l.key, l.ts}], end_r = session_end[{r.key, r.ts}];
      if (end_l == end_r) e.push_back(Pair(l, r) + "@" + std::to_string(end_l + gap - 1));
    }
  }
  std::sort(e.begin(), e.end());
  return e;
}

TEST_P(WindowJoinJobTest, TumblingSlidingAndSessionAtParallelism1And4) {
  std::vector<TimeWindowKind> kinds = {
      {"tumbling", TumblingEventTimeWindows<Tagged>(Duration::Seconds(5)),
       [](int64_t t) {
         int64_t s = WindowStart(t, 0, 5000);
         return std::vector<std::pair<int64_t, int64_t>>{{s, s + 5000}};
       }},
      {"sliding", SlidingEventTimeWindows<Tagged>(Duration::Seconds(6), Duration::Seconds(3)),
       [](int64_t t) {
         std::vector<std::pair<int64_t, int64_t>> w;
         for (int64_t s = WindowStart(t, 0, 3000); s > t - 6000; s -= 3000)
           w.push_back({s, s + 6000});
         return w;
       }},
  };
  for (int p : {1, 4}) {
    for (const auto& k : kinds) {
      StreamExecutionEnvironment env;
      env.SetParallelism(p);
      auto joined = WithTimestamps(env.FromCollection(Lefts()))
                        .Join(WithTimestamps(env.FromCollection(Rights())))
                        .Where([](const Left& l) { return l.key; })
                        .EqualTo([](const Right& r) { return r.key; })
                        .Window(k.assigner)
                        .Apply([](const Left& l, const Right& r) { return Pair(l, r); });
      auto got = CollectInto(Stamped(joined));
      auto r = RunJob(env);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      auto expected = ReferenceWindowJoin(k);
      EXPECT_FALSE(expected.empty());
      EXPECT_EQ(got->sorted(), expected) << k.name << " at parallelism " << p;
    }
    // Sessions: a gap no two timestamps are exactly apart, so that sessions never just touch.
    const int64_t gap = 1550;
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    auto joined =
        WithTimestamps(env.FromCollection(Lefts()))
            .Join(WithTimestamps(env.FromCollection(Rights())))
            .Where([](const Left& l) { return l.key; })
            .EqualTo([](const Right& r) { return r.key; })
            .Window(EventTimeSessionWindows<Tagged>(Duration::Millis(gap)))
            .Apply<std::string>([](const Left& l, const Right& r, Collector<std::string>& out) {
              out.Collect(Pair(l, r));
            });
    auto got = CollectInto(Stamped(joined));
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    auto expected = ReferenceSessionJoin(gap);
    EXPECT_FALSE(expected.empty());
    EXPECT_EQ(got->sorted(), expected) << "session at parallelism " << p;
  }
}

class PairJoin final : public JoinFunction<Left, Right, std::string> {
 public:
  std::string Join(const Left& l, const Right& r) override { return Pair(l, r); }
};

TEST_P(WindowJoinJobTest, JoinFunctionAndCoGroup) {
  for (int p : {1, 4}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    auto left = WithTimestamps(env.FromCollection(Lefts()));
    auto right = WithTimestamps(env.FromCollection(Rights()));
    auto joined = CollectInto(left.Join(right)
                                  .Where([](const Left& l) { return l.key; })
                                  .EqualTo([](const Right& r) { return r.key; })
                                  .Window(TumblingEventTimeWindows<Tagged>(Duration::Seconds(5)))
                                  .Apply(std::make_shared<PairJoin>()));
    auto grouped = CollectInto(
        left.CoGroup(right)
            .Where([](const Left& l) { return l.key; })
            .EqualTo([](const Right& r) { return r.key; })
            .Window(TumblingEventTimeWindows<Tagged>(Duration::Seconds(5)))
            .Apply<std::string>([](const std::vector<Left>& ls, const std::vector<Right>& rs,
                                   Collector<std::string>& out) {
              const std::string& key = ls.empty() ? rs.front().key : ls.front().key;
              int64_t ts = ls.empty() ? rs.front().ts : ls.front().ts;
              out.Collect(key + "@" + std::to_string(ts / 5000) + ":" + std::to_string(ls.size()) +
                          "x" + std::to_string(rs.size()));
            }));
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    std::vector<std::string> expected_join;
    std::map<std::string, std::pair<int, int>> groups;
    for (const auto& l : Lefts()) {
      groups[l.key + "@" + std::to_string(l.ts / 5000)].first++;
      for (const auto& rr : Rights()) {
        if (l.key == rr.key && l.ts / 5000 == rr.ts / 5000) expected_join.push_back(Pair(l, rr));
      }
    }
    for (const auto& rr : Rights()) groups[rr.key + "@" + std::to_string(rr.ts / 5000)].second++;
    std::vector<std::string> expected_groups;
    for (const auto& [g, n] : groups) {
      expected_groups.push_back(g + ":" + std::to_string(n.first) + "x" + std::to_string(n.second));
    }
    std::sort(expected_join.begin(), expected_join.end());
    std::sort(expected_groups.begin(), expected_groups.end());
    EXPECT_EQ(joined->sorted(), expected_join) << "parallelism " << p;
    EXPECT_EQ(grouped->sorted(), expected_groups) << "coGroup includes one-sided windows";
  }
}

std::vector<std::string> ReferenceIntervalJoin(int64_t lower, int64_t upper, bool lower_incl,
                                               bool upper_incl) {
  std::vector<std::string> e;
  for (const auto& l : Lefts()) {
    for (const auto& r : Rights()) {
      int64_t d = r.ts - l.ts;
      bool in = l.key == r.key && (lower_incl ? d >= lower : d > lower) &&
                (upper_incl ? d <= upper : d < upper);
      if (in) e.push_back(Pair(l, r) + "@" + std::to_string(std::max(l.ts, r.ts)));
    }
  }
  std::sort(e.begin(), e.end());
  return e;
}

TEST_P(IntervalJoinJobTest, BoundsAtParallelism1And4) {
  struct Case {
    int64_t lower, upper;
    bool lower_incl, upper_incl;
  };
  // Bounds that hit exact timestamp differences (lefts are 700 ms apart, rights 900 ms).
  std::vector<Case> cases = {{-1600, 1600, true, true},
                             {-1600, 1600, false, false},
                             {0, 2000, true, false},
                             {-2300, -100, false, true}};
  for (int p : {1, 4}) {
    for (const auto& c : cases) {
      StreamExecutionEnvironment env;
      env.SetParallelism(p);
      auto left =
          WithTimestamps(env.FromCollection(Lefts())).KeyBy([](const Left& l) { return l.key; });
      auto right =
          WithTimestamps(env.FromCollection(Rights())).KeyBy([](const Right& r) { return r.key; });
      auto joined =
          left.IntervalJoin(right).Between(Duration::Millis(c.lower), Duration::Millis(c.upper));
      if (!c.lower_incl) joined.LowerBoundExclusive();
      if (!c.upper_incl) joined.UpperBoundExclusive();
      auto got = CollectInto(joined.Process([] { return std::make_shared<DescribeJoin>(); }));
      auto r = RunJob(env);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      auto expected = ReferenceIntervalJoin(c.lower, c.upper, c.lower_incl, c.upper_incl);
      EXPECT_FALSE(expected.empty());
      EXPECT_EQ(got->sorted(), expected) << "[" << c.lower << ", " << c.upper << "] incl "
                                         << c.lower_incl << c.upper_incl << " at parallelism " << p;
    }
  }
}

TEST_P(IntervalJoinJobTest, MissingTimestampsFailTheJob) {
  StreamExecutionEnvironment env;
  auto left = env.FromCollection(Lefts()).KeyBy([](const Left& l) { return l.key; });
  auto right = env.FromCollection(Rights()).KeyBy([](const Right& r) { return r.key; });
  CollectInto(
      left.IntervalJoin(right).Between(Duration::Seconds(-1), Duration::Seconds(1)).Process([] {
        return std::make_shared<DescribeJoin>();
      }));
  auto r = RunJob(env);
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << r.status.ToString();
  EXPECT_NE(r.status.message().find("event timestamps"), std::string::npos) << r.status.ToString();
}

// ---- job spec: the join step ----

namespace fs = std::filesystem;

struct SpecDir {
  fs::path dir;
  SpecDir() {
    dir = fs::temp_directory_path() / ("eddy-join-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "orders.csv") << "o1,alice,10,1000\no2,bob,20,2000\no3,carol,30,12000\n"
                                         "o4,dave,40,13000\n";
    std::ofstream(dir / "payments.csv") << "o1,10,card,3000\no2,20,cash,11000\no3,30,card,12500\n"
                                           "o9,5,card,13000\no4,40,card,13000\n";
  }
  ~SpecDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

/// Sinks write to a fresh file per job: file sinks keep one writer per path per process.
std::string NextOutput() {
  static int n = 0;
  return "out-" + std::to_string(++n) + ".jsonl";
}

std::string SpecWith(const std::string& step, const std::string& time = "event") {
  const std::string out = "OUTPUT";
  return "name: j\ntime: " + time +
         "\nsources:\n"
         "  - name: orders\n"
         "    file: {path: orders.csv, format: csv}\n"
         "    schema: {order_id: string, customer: string, amount: int64, ts: int64}\n"
         "    timestamp: ts\n"
         "  - name: payments\n"
         "    file: {path: payments.csv, format: csv}\n"
         "    schema: {order_id: string, amount: double, method: string, ts: timestamp}\n"
         "    timestamp: ts\n"
         "steps:\n" +
         step +
         "sinks:\n"
         "  - {name: o, from: joined, file: {path: " +
         out + ", format: json}}\n";
}

Result<std::vector<std::string>> RunSpec(const SpecDir& d, std::string text, int p) {
  JobSpecOptions opts;
  opts.base_dir = d.dir.string();
  opts.parallelism = p;
  const std::string out = NextOutput();
  text.replace(text.find("OUTPUT"), 6, out);
  auto job = CompileJobSpec(text, "job.yaml", opts);
  if (!job.ok()) return job.status();
  auto r = RunJob(*job->env);
  if (!r.status.ok()) return r.status;
  std::ifstream in(d.dir / out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) lines.push_back(l);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

TEST_P(JoinSpecTest, WindowJoinRenamesClashingFields) {
  SpecDir d;
  const std::string step =
      "  - name: joined\n"
      "    from: orders\n"
      "    join:\n"
      "      with: payments\n"
      "      type: window\n"
      "      where: [order_id]\n"
      "      equalTo: [order_id]\n"
      "      window: {tumbling: 10s}\n";
  for (int p : {1, 4}) {
    auto lines = RunSpec(d, SpecWith(step), p);
    ASSERT_TRUE(lines.ok()) << lines.status().ToString();
    EXPECT_EQ(
        *lines,
        (std::vector<std::string>{
            R"({"order_id":"o1","customer":"alice","amount":10,"ts":1000,"payments_order_id":"o1","payments_amount":10.0,"method":"card","payments_ts":3000})",
            R"({"order_id":"o3","customer":"carol","amount":30,"ts":12000,"payments_order_id":"o3","payments_amount":30.0,"method":"card","payments_ts":12500})",
            R"({"order_id":"o4","customer":"dave","amount":40,"ts":13000,"payments_order_id":"o4","payments_amount":40.0,"method":"card","payments_ts":13000})"}))
        << "parallelism " << p;
  }
}

TEST_P(JoinSpecTest, IntervalJoinWithExclusiveBound) {
  SpecDir d;
  const std::string step =
      "  - name: joined\n"
      "    from: orders\n"
      "    join:\n"
      "      with: payments\n"
      "      type: interval\n"
      "      where: [order_id]\n"
      "      between: {lower: 0s, upper: 9s, upperInclusive: false}\n";
  for (int p : {1, 4}) {
    auto lines = RunSpec(d, SpecWith(step), p);
    ASSERT_TRUE(lines.ok()) << lines.status().ToString();
    ASSERT_EQ(lines->size(), 3u) << "o2 pays exactly 9 s later: excluded";
    for (const char* id : {"\"o1\"", "\"o3\"", "\"o4\""}) {
      EXPECT_TRUE(std::any_of(lines->begin(), lines->end(), [&](const std::string& l) {
        return l.find(id) != std::string::npos;
      })) << id;
    }
  }
  const std::string inclusive =
      "  - name: joined\n"
      "    from: orders\n"
      "    join: {with: payments, type: interval, where: [order_id], between: {lower: -1s, upper: "
      "9s}}\n";
  auto lines = RunSpec(d, SpecWith(inclusive), 2);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_EQ(lines->size(), 4u) << "o1, o2, o3, o4 (o9 has no order)";
}

TEST_P(JoinSpecTest, ErrorsNameTheFieldAndPosition) {
  SpecDir d;
  struct Case {
    std::string step, time, expect;
  };
  std::vector<Case> cases = {
      {"  - name: joined\n    from: orders\n    join: {with: payments, where: [order_id], window: "
       "{tumbling: 10s}}\n",
       "event", ""},  // type inferred from window: ok
      {"  - name: joined\n    from: orders\n    join: {with: paymentz, type: window, where: "
       "[order_id], window: {tumbling: 1s}}\n",
       "event", "job.yaml:15:18: steps[0] (joined).join.with: unknown stream 'paymentz'"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: window, where: "
       "[order_id, customer], equalTo: [order_id], window: {tumbling: 1s}}\n",
       "event", "steps[0] (joined).join.equalTo: where names 2 key fields and equalTo 1"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: window, where: "
       "[amount], equalTo: [method], window: {tumbling: 1s}}\n",
       "event",
       "steps[0] (joined).join.equalTo[0]: key field 'method' (string) cannot be compared with "
       "left key 'amount' (int64)"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: window, where: "
       "[nope], equalTo: [order_id], window: {tumbling: 1s}}\n",
       "event", "steps[0] (joined).join.where: unknown field 'nope'"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: interval, where: "
       "[order_id], between: {lower: -1s, upper: 1s}}\n",
       "processing", "steps[0] (joined).join.type: an interval join needs event time"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: interval, where: "
       "[order_id], between: {lower: 2s, upper: 1s}}\n",
       "event", "steps[0] (joined).join.between: lower (2s) must not be after upper (1s)"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: window, where: "
       "[order_id], window: {count: 3}}\n",
       "event",
       "steps[0] (joined).join.window: a window join needs a tumbling, sliding or session window"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: window, where: "
       "[order_id]}\n",
       "event", "steps[0] (joined).join: type window needs window"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: window, where: "
       "[order_id], window: {tumbling: 1s}, between: {lower: 0s, upper: 1s}}\n",
       "event", "steps[0] (joined).join.between: only applies to type interval"},
      {"  - name: joined\n    from: orders\n    join: {with: payments, type: outer, where: "
       "[order_id]}\n",
       "event", "steps[0] (joined).join.type: must be window or interval"},
      {"  - name: joined\n    from: orders\n    keyBy: [order_id]\n    join: {with: payments, "
       "type: window, where: [order_id], window: {tumbling: 1s}}\n",
       "event", "steps[0] (joined).keyBy: keyBy needs aggregate, rolling or process"},
      {"  - name: plain\n    from: orders\n    map: {order_id: order_id, payments_amount: amount, "
       "amount: amount}\n"
       "  - name: joined\n    from: plain\n    join: {with: payments, type: window, where: "
       "[order_id], window: {tumbling: 1s}}\n",
       "event",
       "steps[1] (joined).join.with: right field 'amount' would be renamed to 'payments_amount', "
       "which the left side already has"},
  };
  for (const auto& c : cases) {
    JobSpecOptions opts;
    opts.base_dir = d.dir.string();
    auto job = CompileJobSpec(SpecWith(c.step, c.time), "job.yaml", opts);
    if (c.expect.empty()) {
      EXPECT_TRUE(job.ok()) << job.status().ToString();
      continue;
    }
    ASSERT_FALSE(job.ok()) << c.step;
    EXPECT_NE(job.status().message().find(c.expect), std::string::npos)
        << job.status().ToString() << "\nexpected: " << c.expect;
    EXPECT_EQ(job.status().message().rfind("job.yaml:", 0), 0u) << job.status().ToString();
  }
}

TEST_P(JoinSpecTest, EventTimeJoinNeedsTimestampsOnBothSides) {
  SpecDir d;
  std::string text = SpecWith(
      "  - name: joined\n    from: orders\n"
      "    join: {with: payments, type: window, where: [order_id], window: {tumbling: 10s}}\n");
  // Drop the payments' timestamp.
  auto pos = text.find("    timestamp: ts\n", text.find("name: payments"));
  text.erase(pos, std::string("    timestamp: ts\n").size());
  JobSpecOptions opts;
  opts.base_dir = d.dir.string();
  auto job = CompileJobSpec(text, "job.yaml", opts);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("join.with: this step uses event time but its input has no "
                                        "timestamps"),
            std::string::npos)
      << job.status().ToString();
}

TEST_P(JoinSpecTest, ProcessingTimeWindowJoinRuns) {
  SpecDir d;
  const std::string step =
      "  - name: joined\n    from: orders\n"
      "    join: {with: payments, type: window, where: [order_id], window: {tumbling: 1h}}\n";
  auto lines = RunSpec(d, SpecWith(step, "processing"), 2);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  // Processing-time windows fire on the clock, which a short bounded job may not reach: only
  // check that whatever came out pairs equal keys.
  for (const auto& l : *lines) {
    auto id = l.substr(l.find("\"order_id\":") + 11, 4);
    EXPECT_NE(l.find("\"payments_order_id\":" + id), std::string::npos) << l;
  }
}

}  // namespace
}  // namespace eddy
