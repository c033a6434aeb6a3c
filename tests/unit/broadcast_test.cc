#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "eddy/datastream.h"
#include "tests/backend_test.h"
#include "tests/test_util.h"
#include "tests/two_input_harness.h"

namespace eddy::btest {
struct Item {
  std::string key;
  std::string color;
  int64_t value = 0;
  bool operator==(const Item&) const = default;
};
struct Rule {
  std::string color;
  int64_t threshold = 0;  // < 0 removes the rule
  bool operator==(const Rule&) const = default;
};
}  // namespace eddy::btest
EDDY_SERIALIZABLE(eddy::btest::Item, key, color, value);
EDDY_SERIALIZABLE(eddy::btest::Rule, color, threshold);

namespace eddy {
namespace {

// Run once per keyed state backend (heap, RocksDB).
EDDY_BACKEND_TEST_SUITE(KeyedBroadcastProcessOperatorTest);
EDDY_BACKEND_TEST_SUITE(BroadcastJobTest);

using btest::Item;
using btest::Rule;
using testing::CollectInto;
using testing::RunJob;
using testing::TwoInputHarness;

const MapStateDescriptor<std::string, int64_t> kRules{{"rules", {}}};
const ListStateDescriptor<Item> kPending{{"pending", {}}};

std::string Verdict(const std::string& key, const Item& item, int64_t threshold) {
  return key + ":" + item.color + ":" + std::to_string(item.value) +
         (item.value >= threshold ? ":alert" : ":ok");
}

/// Non-keyed: checks items against the rule of their color; no rule -> "unruled".
class CheckThreshold final : public BroadcastProcessFunction<Item, Rule, std::string> {
 public:
  void ProcessElement(const Item& item, ReadOnlyContext& ctx,
                      Collector<std::string>& out) override {
    const ReadOnlyBroadcastState<std::string, int64_t>* rules = ctx.GetBroadcastState(kRules);
    if (const int64_t* th = rules->Get(item.color)) {
      out.Collect(Verdict(item.key, item, *th));
    } else {
      out.Collect(item.key + ":" + item.color + ":unruled");
    }
  }
  void ProcessBroadcastElement(const Rule& rule, Context& ctx,
                               Collector<std::string>& out) override {
    BroadcastState<std::string, int64_t>* rules = ctx.GetBroadcastState(kRules);
    if (rule.threshold < 0) {
      rules->Remove(rule.color);
    } else {
      rules->Put(rule.color, rule.threshold);
    }
    out.Collect("rules=" + std::to_string(rules->size()) +
                (ctx.timer_service() ? " timers" : " no-timers"));
  }
};

/// Keyed: items whose color has no rule yet wait in keyed state; a new rule releases the waiting
/// items of every key (ApplyToKeyedState). With `expire_after` > 0, waiting items expire in event
/// time (timers).
class ApplyRules final
    : public KeyedBroadcastProcessFunction<std::string, Item, Rule, std::string> {
 public:
  explicit ApplyRules(Duration expire_after = Duration()) : expire_after_(expire_after) {}
  Status Open(RuntimeContext& rc) override {
    pending_ = rc.GetListState(kPending);
    return Status::Ok();
  }
  void ProcessElement(const Item& item, ReadOnlyContext& ctx,
                      Collector<std::string>& out) override {
    const std::string key = ctx.CurrentKey<std::string>();
    if (const int64_t* th = ctx.GetBroadcastState(kRules)->Get(item.color)) {
      out.Collect(Verdict(key, item, *th));
      return;
    }
    pending_->Add(item);
    if (expire_after_.millis() > 0) {
      ctx.timer_service()->RegisterEventTimeTimer(ctx.timestamp() + expire_after_);
    }
  }
  void ProcessBroadcastElement(const Rule& rule, Context& ctx,
                               Collector<std::string>& out) override {
    ctx.GetBroadcastState(kRules)->Put(rule.color, rule.threshold);
    ctx.ApplyToKeyedState(kPending, [&](const std::string& key, ListState<Item>& state) {
      const std::vector<Item>* items = state.Get();
      if (!items) return;
      std::vector<Item> keep;
      for (const Item& item : *items) {
        if (item.color == rule.color) {
          out.Collect(Verdict(key, item, rule.threshold));
        } else {
          keep.push_back(item);
        }
      }
      state.Update(std::move(keep));
    });
  }
  void OnTimer(Timestamp t, OnTimerContext& ctx, Collector<std::string>& out) override {
    const std::vector<Item>* items = pending_->Get();
    if (!items) return;
    out.Collect("expired:" + ctx.CurrentKey<std::string>() + ":" + std::to_string(items->size()) +
                "@" + std::to_string(t.millis()) +
                " rules=" + std::to_string(ctx.GetBroadcastState(kRules)->size()));
    pending_->Clear();
  }

 private:
  Duration expire_after_;
  ListState<Item>* pending_ = nullptr;
};

std::unique_ptr<KeyedBroadcastProcessOperator<std::string, Item, Rule, std::string>> KeyedOp(
    Duration expire_after = Duration()) {
  auto op = std::make_unique<KeyedBroadcastProcessOperator<std::string, Item, Rule, std::string>>(
      std::make_shared<ApplyRules>(expire_after),
      std::vector<BroadcastStateDeclaration>{DeclareBroadcastState(kRules)});
  auto key = [](const Item& i) { return i.key; };
  op->SetKeySelectors(std::make_shared<LambdaKeySelector<Item, std::string, decltype(key)>>(key),
                      nullptr);
  return op;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(BroadcastProcessOperatorTest, RulesAreReadOnlyOnTheMainInput) {
  TwoInputHarness<Item, Rule, std::string> h(
      std::make_unique<BroadcastProcessOperator<Item, Rule, std::string>>(
          std::make_shared<CheckThreshold>(),
          std::vector<BroadcastStateDeclaration>{DeclareBroadcastState(kRules)}));
  ASSERT_TRUE(h.Open().ok());
  h.Element1({"a", "red", 5}, 1);  // before any rule
  h.Element2({"red", 3}, 2);
  h.Element1({"b", "red", 2}, 3);
  h.Element1({"c", "red", 3}, 4);
  h.Element2({"red", -1}, 5);  // removes it
  h.Element1({"d", "red", 9}, 6);
  EXPECT_EQ(h.output().Records(),
            (std::vector<std::string>{"a:red:unruled", "rules=1 no-timers", "b:red:2:ok",
                                      "c:red:3:alert", "rules=0 no-timers", "d:red:unruled"}));
  EXPECT_FALSE(h.op().is_keyed());
}

TEST(BroadcastProcessOperatorTest, StateIsSnapshotToOperatorStateAndRestored) {
  TwoInputHarness<Item, Rule, std::string> h(
      std::make_unique<BroadcastProcessOperator<Item, Rule, std::string>>(
          std::make_shared<CheckThreshold>(),
          std::vector<BroadcastStateDeclaration>{DeclareBroadcastState(kRules)}));
  ASSERT_TRUE(h.Open().ok());
  h.Element2({"red", 3}, 1);
  h.Element2({"blue", 7}, 2);
  EXPECT_TRUE(h.Snapshot().empty()) << "broadcast state goes to the operator state store";
  auto& entries = h.operator_state().entries();
  ASSERT_EQ(entries.count("broadcast/rules"), 1u);
  EXPECT_EQ(entries.at("broadcast/rules").mode, OperatorStateStore::Mode::kBroadcast);
  EXPECT_EQ(entries.at("broadcast/rules").items.size(), 2u);

  TwoInputHarness<Item, Rule, std::string> restored(
      std::make_unique<BroadcastProcessOperator<Item, Rule, std::string>>(
          std::make_shared<CheckThreshold>(),
          std::vector<BroadcastStateDeclaration>{DeclareBroadcastState(kRules)}),
      128, h.operator_state());
  ASSERT_TRUE(restored.Open().ok());
  restored.Element1({"x", "blue", 8}, 3);
  restored.Element1({"y", "red", 1}, 4);
  EXPECT_EQ(restored.output().Records(),
            (std::vector<std::string>{"x:blue:8:alert", "y:red:1:ok"}));
  EXPECT_TRUE(restored.failure().ok());
}

TEST(BroadcastProcessOperatorTest, CorruptSnapshotAndTypeMismatchFailTheTask) {
  OperatorStateStore corrupt;
  corrupt.Get("broadcast/rules", OperatorStateStore::Mode::kBroadcast).items.push_back("\xff");
  TwoInputHarness<Item, Rule, std::string> h(
      std::make_unique<BroadcastProcessOperator<Item, Rule, std::string>>(
          std::make_shared<CheckThreshold>(),
          std::vector<BroadcastStateDeclaration>{DeclareBroadcastState(kRules)}),
      128, corrupt);
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.failure().code(), StatusCode::kParseError) << h.failure().ToString();

  BroadcastStateStore store;
  OperatorContext ctx;
  Status failure;
  ctx.task_failure = &failure;
  store.Init(&ctx);
  store.Get(kRules)->Put("a", 1);
  auto* other = store.Get(MapStateDescriptor<std::string, std::string>{{"rules", {}}});
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(failure.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(failure.message().find("'rules'"), std::string::npos) << failure.ToString();
}

TEST_P(KeyedBroadcastProcessOperatorTest, RuleBeforeAndAfterElements) {
  TwoInputHarness<Item, Rule, std::string> h(KeyedOp());
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(h.op().is_keyed());
  h.Element2({"red", 10}, 1);  // rule before elements
  h.Element1({"k1", "red", 12}, 2);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"k1:red:12:alert"});
  h.Element1({"k2", "blue", 5}, 3);  // no rule yet: waits in keyed state
  h.Element1({"k1", "blue", 7}, 4);
  h.Element1({"k1", "green", 1}, 5);
  EXPECT_TRUE(h.output().TakeRecords().empty());
  EXPECT_EQ(h.backend()->NumEntries(), 2u);
  h.Element2({"blue", 6}, 6);  // rule after elements: releases them for every key
  EXPECT_EQ(Sorted(h.output().TakeRecords()),
            (std::vector<std::string>{"k1:blue:7:alert", "k2:blue:5:ok"}));
  EXPECT_EQ(h.backend()->NumEntries(), 1u) << "k1 still waits for green";
  h.Element2({"green", 1}, 7);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"k1:green:1:alert"});
  EXPECT_EQ(h.backend()->NumEntries(), 0u);
  h.Element1({"k3", "blue", 100}, 8);  // rules are there now
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"k3:blue:100:alert"});
}

TEST_P(KeyedBroadcastProcessOperatorTest, TimersSeeBroadcastStateAndKey) {
  TwoInputHarness<Item, Rule, std::string> h(KeyedOp(Duration::Seconds(5)));
  ASSERT_TRUE(h.Open().ok());
  h.Element2({"red", 10}, 0);
  h.Element1({"k3", "green", 1}, 1000);
  h.Element1({"k3", "green", 2}, 2000);
  h.Element1({"k4", "green", 3}, 3000);
  h.Watermark1(10000);
  EXPECT_TRUE(h.output().Records().empty()) << "the broadcast input holds the watermark";
  h.Watermark2(6000);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"expired:k3:2@6000 rules=1"});
  h.Watermark2(20000);
  EXPECT_EQ(h.output().TakeRecords(), std::vector<std::string>{"expired:k4:1@8000 rules=1"});
  EXPECT_EQ(h.backend()->NumEntries(), 0u);
}

// ---- end-to-end through the local executor ----

std::vector<Item> MakeItems() {
  std::vector<Item> items;
  const char* colors[] = {"red", "green", "blue"};
  for (int i = 0; i < 60; ++i) {
    items.push_back({"k" + std::to_string(i % 7), colors[i % 3], (i * 37) % 100});
  }
  return items;
}
const std::vector<Rule> kRuleList = {{"red", 50}, {"green", 20}, {"blue", 80}};

std::vector<std::string> ExpectedVerdicts() {
  std::map<std::string, int64_t> th;
  for (const auto& r : kRuleList) th[r.color] = r.threshold;
  std::vector<std::string> e;
  for (const auto& i : MakeItems()) e.push_back(Verdict(i.key, i, th[i.color]));
  std::sort(e.begin(), e.end());
  return e;
}

TEST_P(BroadcastJobTest, KeyedBroadcastRulesAtParallelism1And4) {
  const auto expected = ExpectedVerdicts();
  for (int p : {1, 4}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    auto items = env.FromCollection(MakeItems());
    auto rules = env.FromCollection(kRuleList).Broadcast(kRules);
    auto out = items.KeyBy([](const Item& i) { return i.key; }).Connect(rules).Process([] {
      return std::make_shared<ApplyRules>();
    });
    EXPECT_EQ(out.node().name, "KeyedBroadcastProcess");
    auto got = CollectInto(out);
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(got->sorted(), expected) << "parallelism " << p;
  }
}

/// Non-keyed enrichment: items wait (per subtask, in the function) until the rule of their color
/// arrives. Every subtask gets every rule: Close reports the size of its broadcast state.
class Enrich final : public BroadcastProcessFunction<Item, Rule, std::string> {
 public:
  explicit Enrich(std::shared_ptr<std::atomic<int>> rules_seen)
      : rules_seen_(std::move(rules_seen)) {}
  void ProcessElement(const Item& item, ReadOnlyContext& ctx,
                      Collector<std::string>& out) override {
    state_ = ctx.GetBroadcastState(kRules);
    if (const int64_t* th = state_->Get(item.color)) {
      out.Collect(Verdict(item.key, item, *th));
    } else {
      waiting_.push_back(item);
    }
  }
  void ProcessBroadcastElement(const Rule& rule, Context& ctx,
                               Collector<std::string>& out) override {
    auto* rules = ctx.GetBroadcastState(kRules);
    rules->Put(rule.color, rule.threshold);
    state_ = rules;
    std::erase_if(waiting_, [&](const Item& item) {
      if (item.color != rule.color) return false;
      out.Collect(Verdict(item.key, item, rule.threshold));
      return true;
    });
  }
  void Close() override {
    if (state_) *rules_seen_ += static_cast<int>(state_->size());
  }

 private:
  std::shared_ptr<std::atomic<int>> rules_seen_;
  const ReadOnlyBroadcastState<std::string, int64_t>* state_ = nullptr;
  std::vector<Item> waiting_;
};

TEST_P(BroadcastJobTest, NonKeyedBroadcastReachesEverySubtask) {
  const auto expected = ExpectedVerdicts();
  for (int p : {1, 4}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    auto seen = std::make_shared<std::atomic<int>>(0);
    auto items = env.FromCollection(MakeItems()).Rebalance().Map([](const Item& i) { return i; });
    auto out = items.Connect(env.FromCollection(kRuleList).Broadcast(kRules)).Process([seen] {
      return std::make_shared<Enrich>(seen);
    });
    auto got = CollectInto(out);
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(got->sorted(), expected) << "parallelism " << p;
    EXPECT_EQ(seen->load(), 3 * p) << "each subtask holds all 3 rules";
  }
}

}  // namespace
}  // namespace eddy
