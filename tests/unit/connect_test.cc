#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "eddy/datastream.h"
#include "tests/backend_test.h"
#include "tests/test_util.h"
#include "tests/two_input_harness.h"

namespace eddy::ctest {
struct Order {
  std::string id;
  int64_t ts = 0;
  int64_t amount = 0;
  bool operator==(const Order&) const = default;
};
struct Payment {
  std::string order_id;
  int64_t ts = 0;
  bool operator==(const Payment&) const = default;
};
}  // namespace eddy::ctest
EDDY_SERIALIZABLE(eddy::ctest::Order, id, ts, amount);
EDDY_SERIALIZABLE(eddy::ctest::Payment, order_id, ts);

namespace eddy {
namespace {

// Run once per keyed state backend (heap, RocksDB).
EDDY_BACKEND_TEST_SUITE(CoProcessOperatorTest);
EDDY_BACKEND_TEST_SUITE(ConnectJobTest);

using ctest::Order;
using ctest::Payment;
using testing::CollectInto;
using testing::RunJob;
using testing::TwoInputHarness;

class Describe final : public CoMapFunction<int64_t, std::string, std::string> {
 public:
  std::string Map1(const int64_t& v) override { return "int:" + std::to_string(v); }
  std::string Map2(const std::string& v) override { return "str:" + v; }
};

class SplitWords final : public CoFlatMapFunction<std::string, int64_t, std::string> {
 public:
  void FlatMap1(const std::string& v, Collector<std::string>& out) override {
    size_t start = 0;
    while (start <= v.size()) {
      size_t sp = v.find(' ', start);
      if (sp == std::string::npos) sp = v.size();
      if (sp > start) out.Collect(v.substr(start, sp - start));
      start = sp + 1;
    }
  }
  void FlatMap2(const int64_t& n, Collector<std::string>& out) override {
    for (int64_t i = 0; i < n; ++i) out.Collect("#" + std::to_string(i));
  }
};

/// Matches orders with payments per order id: an order waits 10 s (event time) for its payment
/// and times out otherwise; payments may come first. State: the pending order / early payment.
class MatchPayments final
    : public KeyedCoProcessFunction<std::string, Order, Payment, std::string> {
 public:
  Status Open(RuntimeContext& rc) override {
    order_ = rc.GetState(ValueStateDescriptor<Order>{{"order", {}}});
    paid_ = rc.GetState(ValueStateDescriptor<bool>{{"paid", {}}});
    return Status::Ok();
  }
  void ProcessElement1(const Order& o, ProcessContext& ctx, Collector<std::string>& out) override {
    if (paid_->Get()) {
      paid_->Clear();
      out.Collect("matched:" + o.id);
      return;
    }
    order_->Update(o);
    ctx.timer_service()->RegisterEventTimeTimer(ctx.timestamp() + Duration::Seconds(10));
  }
  void ProcessElement2(const Payment&, ProcessContext& ctx, Collector<std::string>& out) override {
    if (const Order* o = order_->Get()) {
      out.Collect("matched:" + o->id);
      ctx.timer_service()->DeleteEventTimeTimer(Timestamp(o->ts) + Duration::Seconds(10));
      order_->Clear();
      return;
    }
    paid_->Update(true);
  }
  void OnTimer(Timestamp t, OnTimerContext& ctx, Collector<std::string>& out) override {
    if (order_->Get()) {
      out.Collect("timeout:" + ctx.CurrentKey<std::string>() + "@" + std::to_string(t.millis()));
      order_->Clear();
    }
  }

 private:
  ValueState<Order>* order_ = nullptr;
  ValueState<bool>* paid_ = nullptr;
};

std::unique_ptr<CoProcessOperator<Order, Payment, std::string>> MatchOperator() {
  auto op = std::make_unique<CoProcessOperator<Order, Payment, std::string>>(
      std::make_shared<MatchPayments>());
  auto k1 = [](const Order& o) { return o.id; };
  auto k2 = [](const Payment& p) { return p.order_id; };
  op->SetKeySelectors(std::make_shared<LambdaKeySelector<Order, std::string, decltype(k1)>>(k1),
                      std::make_shared<LambdaKeySelector<Payment, std::string, decltype(k2)>>(k2));
  return op;
}

template <class T>
std::vector<T> Sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(CoMapOperatorTest, MapsEachInputAndKeepsTimestamps) {
  TwoInputHarness<int64_t, std::string, std::string> h(
      std::make_unique<CoMapOperator<int64_t, std::string, std::string>>(
          std::make_shared<Describe>()));
  ASSERT_TRUE(h.Open().ok());
  h.Element1(7, 100);
  h.Element2("x", 200);
  h.Element1(8, Timestamp::None());
  const auto& ev = h.output().events;
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].value, "int:7");
  EXPECT_EQ(ev[0].ts, Timestamp(100));
  EXPECT_EQ(ev[1].value, "str:x");
  EXPECT_EQ(ev[1].ts, Timestamp(200));
  EXPECT_EQ(ev[2].value, "int:8");
  EXPECT_TRUE(ev[2].ts.IsNone());
}

TEST(CoMapOperatorTest, WatermarkIsTheMinimumOfBothInputs) {
  TwoInputHarness<int64_t, std::string, std::string> h(
      std::make_unique<CoMapOperator<int64_t, std::string, std::string>>(
          std::make_shared<Describe>()));
  ASSERT_TRUE(h.Open().ok());
  auto watermarks = [&] {
    std::vector<int64_t> w;
    for (const auto& e : h.output().events) {
      if (e.kind == testing::CapturingOutput<std::string>::Event::kWatermark) {
        w.push_back(e.ts.millis());
      }
    }
    return w;
  };
  h.Watermark1(1000);
  EXPECT_TRUE(watermarks().empty()) << "input 2 has no watermark yet";
  h.Watermark2(500);
  EXPECT_EQ(watermarks(), std::vector<int64_t>{500});
  h.Watermark2(3000);
  EXPECT_EQ(watermarks(), (std::vector<int64_t>{500, 1000}));
  h.Watermark1(2000);
  EXPECT_EQ(watermarks(), (std::vector<int64_t>{500, 1000, 2000}));
}

TEST(CoFlatMapOperatorTest, EmitsZeroOrMorePerElement) {
  TwoInputHarness<std::string, int64_t, std::string> h(
      std::make_unique<CoFlatMapOperator<std::string, int64_t, std::string>>(
          std::make_shared<SplitWords>()));
  ASSERT_TRUE(h.Open().ok());
  h.Element1("to be  or", 5);
  h.Element2(0, 6);
  h.Element2(2, 7);
  EXPECT_EQ(h.output().Records(), (std::vector<std::string>{"to", "be", "or", "#0", "#1"}));
  EXPECT_EQ(h.output().events[3].ts, Timestamp(7));
}

TEST_P(CoProcessOperatorTest, KeyedStateAndTimersOnBothInputs) {
  TwoInputHarness<Order, Payment, std::string> h(MatchOperator());
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(h.op().is_keyed());
  h.Element1({"a", 1000, 5}, 1000);  // waits until 11000
  h.Element1({"b", 2000, 7}, 2000);  // waits until 12000
  h.Element2({"c", 2500}, 2500);     // payment before its order
  h.Element2({"a", 3000}, 3000);     // pays a: its timer is deleted
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"matched:a"});
  h.Element1({"c", 4000, 1}, 4000);  // finds the early payment
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"matched:c"});
  h.Watermark1(20000);
  EXPECT_TRUE(h.output().TakeRecords().empty()) << "input 2 holds the watermark back";
  h.Watermark2(11999);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{});
  h.Watermark2(12000);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"timeout:b@12000"});
  EXPECT_EQ(h.backend()->NumEntries(), 0u);
}

TEST_P(CoProcessOperatorTest, NonKeyedHasNoTimerService) {
  class Probe final : public CoProcessFunction<int64_t, int64_t, std::string> {
   public:
    void ProcessElement1(const int64_t& v, ProcessContext& ctx,
                         Collector<std::string>& out) override {
      out.Collect(std::to_string(v) + (ctx.timer_service() ? " timers" : " no-timers"));
    }
    void ProcessElement2(const int64_t& v, ProcessContext& ctx,
                         Collector<std::string>& out) override {
      out.Collect(std::to_string(-v) + "@" + std::to_string(ctx.timestamp().millis()));
    }
  };
  TwoInputHarness<int64_t, int64_t, std::string> h(
      std::make_unique<CoProcessOperator<int64_t, int64_t, std::string>>(
          std::make_shared<Probe>()));
  ASSERT_TRUE(h.Open().ok());
  EXPECT_FALSE(h.op().is_keyed());
  h.Element1(1, 10);
  h.Element2(2, 20);
  EXPECT_EQ(h.output().Records(), (std::vector<std::string>{"1 no-timers", "-2@20"}));
}

// ---- end-to-end through the local executor ----

TEST_P(ConnectJobTest, CoMapWithFunctionAndWithLambdas) {
  for (int p : {1, 4}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    auto ints = env.FromCollection<int64_t>({1, 2, 3});
    auto strs = env.FromCollection<std::string>({"a", "b"});
    auto described = CollectInto(ints.Connect(strs).Map(std::make_shared<Describe>()));
    auto lengths = CollectInto(
        strs.Connect(ints).Map([](const std::string& s) { return static_cast<int64_t>(s.size()); },
                               [](const int64_t& v) { return v * 100; }));
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(described->sorted(),
              (std::vector<std::string>{"int:1", "int:2", "int:3", "str:a", "str:b"}))
        << "parallelism " << p;
    EXPECT_EQ(lengths->sorted(), (std::vector<int64_t>{1, 1, 100, 200, 300}));
  }
}

TEST_P(ConnectJobTest, CoFlatMapWithFunctionAndWithLambdas) {
  for (int p : {1, 4}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    auto lines = env.FromCollection<std::string>({"a b", "c"});
    auto counts = env.FromCollection<int64_t>({2});
    auto words = CollectInto(lines.Connect(counts).FlatMap(std::make_shared<SplitWords>()));
    auto echoed = CollectInto(counts.Connect(lines).FlatMap<std::string>(
        [](const int64_t& n, Collector<std::string>& out) { out.Collect(std::to_string(n)); },
        [](const std::string& s, Collector<std::string>& out) {
          out.Collect(s);
          out.Collect(s);
        }));
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(words->sorted(), (std::vector<std::string>{"#0", "#1", "a", "b", "c"}));
    EXPECT_EQ(echoed->sorted(), (std::vector<std::string>{"2", "a b", "a b", "c", "c"}));
  }
}

struct Shop {
  std::vector<Order> orders;
  std::vector<Payment> payments;
  std::vector<std::string> expected;
};

/// 40 orders; every third unpaid (times out 10 s later), every fifth paid before it is placed.
Shop MakeShop() {
  Shop s;
  for (int i = 0; i < 40; ++i) {
    std::string id = "o" + std::to_string(i);
    int64_t ts = 1000 * (i + 1);
    s.orders.push_back({id, ts, i});
    if (i % 3 == 0) {
      s.expected.push_back("timeout:" + id + "@" + std::to_string(ts + 10000));
      continue;
    }
    s.payments.push_back({id, i % 5 == 0 ? ts - 500 : ts + 2000});
    s.expected.push_back("matched:" + id);
  }
  std::sort(s.expected.begin(), s.expected.end());
  return s;
}

TEST_P(ConnectJobTest, KeyedCoProcessWithTimersAtParallelism1And4) {
  Shop shop = MakeShop();
  for (int p : {1, 4}) {
    for (bool keyed_connect : {false, true}) {
      StreamExecutionEnvironment env;
      env.SetParallelism(p);
      auto orders =
          env.FromCollection(shop.orders)
              .AssignTimestampsAndWatermarks(
                  WatermarkStrategy<Order>::ForMonotonousTimestamps()
                      .WithTimestampAssigner([](const Order& o) { return Timestamp(o.ts); })
                      .WithInterval(Duration()));
      auto payments =
          env.FromCollection(shop.payments)
              .AssignTimestampsAndWatermarks(
                  WatermarkStrategy<Payment>::ForBoundedOutOfOrderness(Duration::Seconds(1))
                      .WithTimestampAssigner([](const Payment& x) { return Timestamp(x.ts); })
                      .WithInterval(Duration()));
      auto make = [] { return std::make_shared<MatchPayments>(); };
      DataStream<std::string> out;
      if (keyed_connect) {
        out = orders.KeyBy([](const Order& o) { return o.id; })
                  .Connect(payments.KeyBy([](const Payment& x) { return x.order_id; }))
                  .Process(make);
      } else {
        out = orders.Connect(payments)
                  .KeyBy([](const Order& o) { return o.id; },
                         [](const Payment& x) { return x.order_id; })
                  .Process(make);
      }
      auto got = CollectInto(out);
      auto r = RunJob(env);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      EXPECT_EQ(got->sorted(), shop.expected) << "parallelism " << p << " keyed " << keyed_connect;
    }
  }
}

TEST_P(ConnectJobTest, KeyedCoProcessNodeIsOneTwoInputOperator) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  auto a = env.FromCollection<Order>({});
  auto b = env.FromCollection<Payment>({});
  auto out =
      a.Connect(b)
          .KeyBy([](const Order& o) { return o.id; }, [](const Payment& x) { return x.order_id; })
          .Process([] { return std::make_shared<MatchPayments>(); });
  EXPECT_EQ(out.node().name, "KeyedCoProcess");
  auto in = env.graph().InEdges(out.node().id);
  ASSERT_EQ(in.size(), 2u);
  for (const auto* e : in) EXPECT_EQ(e->partitioner, PartitionerKind::kHash);
  EXPECT_EQ(in[0]->target_input + in[1]->target_input, 1);
  EXPECT_TRUE(out.node().factory()->is_keyed());
}

}  // namespace
}  // namespace eddy
