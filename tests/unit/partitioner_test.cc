// Channel selectors of graph/partitioners.h, and how the local executor wires each partitioner
// (which consumer subtasks a producer subtask reaches).

#include <gtest/gtest.h>

#include <climits>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "eddy/graph/partitioners.h"
#include "tests/test_util.h"

namespace eddy::part_test {
/// A record with the subtasks it went through.
struct Tagged {
  int64_t v = 0;
  int32_t producer = -1;
  int32_t consumer = -1;
  bool operator<(const Tagged& o) const {
    return std::tie(v, producer, consumer) < std::tie(o.v, o.producer, o.consumer);
  }
};
/// Where a keyed record was processed.
struct KeyedSeen {
  std::string key;
  int32_t subtask = 0;
  int32_t max_parallelism = 0;
};
}  // namespace eddy::part_test
EDDY_SERIALIZABLE(eddy::part_test::Tagged, v, producer, consumer);
EDDY_SERIALIZABLE(eddy::part_test::KeyedSeen, key, subtask, max_parallelism);

namespace eddy {
namespace {

using part_test::KeyedSeen;
using part_test::Tagged;

std::string KeyBytesOf(const std::string& k) {
  std::string out;
  ByteWriter w(out);
  Serializer<std::string>::Write(k, w);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Selectors in isolation
// ---------------------------------------------------------------------------------------------

TEST(ChannelSelectorTest, ForwardAndGlobalAlwaysPickChannelZero) {
  ForwardSelector<int> f;
  GlobalSelector<int> g;
  f.Setup(1, 3);
  g.Setup(5, 3);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(f.SelectChannel(i), 0);
    EXPECT_EQ(g.SelectChannel(i), 0);
  }
  EXPECT_FALSE(f.is_broadcast());
  EXPECT_FALSE(g.is_broadcast());
}

TEST(ChannelSelectorTest, BroadcastIsMarkedBroadcast) {
  BroadcastSelector<int> b;
  b.Setup(4, 0);
  EXPECT_TRUE(b.is_broadcast());
}

TEST(ChannelSelectorTest, RoundRobinCyclesThroughEveryChannelFromASubtaskDependentStart) {
  for (int n : {1, 2, 3, 7}) {
    for (int subtask : {0, 1, 5}) {
      RoundRobinSelector<int> rr;
      rr.Setup(n, subtask);
      std::vector<int> counts(static_cast<size_t>(n), 0);
      int first = rr.SelectChannel(0);
      EXPECT_EQ(first, subtask % n) << "producers start at different channels";
      counts[static_cast<size_t>(first)]++;
      int prev = first;
      for (int i = 1; i < 10 * n; ++i) {
        int c = rr.SelectChannel(i);
        ASSERT_GE(c, 0);
        ASSERT_LT(c, n);
        EXPECT_EQ(c, (prev + 1) % n);
        prev = c;
        counts[static_cast<size_t>(c)]++;
      }
      for (int c : counts) EXPECT_EQ(c, 10) << "n " << n;
    }
  }
}

TEST(ChannelSelectorTest, ShuffleIsRoughlyUniformAndDeterministicPerSubtask) {
  constexpr int kN = 4, kRecords = 40'000;
  ShuffleSelector<int> a, b, other;
  a.Setup(kN, 0);
  b.Setup(kN, 0);
  other.Setup(kN, 1);
  std::vector<int> counts(kN, 0);
  int same_as_other = 0;
  for (int i = 0; i < kRecords; ++i) {
    int c = a.SelectChannel(i);
    ASSERT_GE(c, 0);
    ASSERT_LT(c, kN);
    EXPECT_EQ(b.SelectChannel(i), c) << "seeded by subtask: reproducible";
    same_as_other += other.SelectChannel(i) == c ? 1 : 0;
    counts[static_cast<size_t>(c)]++;
  }
  for (int c : counts) {
    EXPECT_GT(c, kRecords / kN * 9 / 10);
    EXPECT_LT(c, kRecords / kN * 11 / 10);
  }
  EXPECT_LT(same_as_other, kRecords / 2) << "different subtasks draw different sequences";
  // Not a round robin in disguise: some consecutive picks repeat a channel.
  ShuffleSelector<int> s;
  s.Setup(kN, 3);
  int repeats = 0, last = -1;
  for (int i = 0; i < 1000; ++i) {
    int c = s.SelectChannel(i);
    repeats += c == last ? 1 : 0;
    last = c;
  }
  EXPECT_GT(repeats, 100);
}

TEST(ChannelSelectorTest, KeyGroupSelectorAgreesWithTheSubtaskKeyGroupRanges) {
  struct ById {
    std::string operator()(const std::string& s) const { return s; }
  };
  auto key = std::make_shared<LambdaKeySelector<std::string, std::string, ById>>(ById{});
  for (int max_par : {1, 7, 128, 1000}) {
    for (int n : {1, 2, 3, 4, 7}) {
      if (n > max_par) continue;
      KeyGroupSelector<std::string> sel(key, max_par);
      sel.Setup(n, 0);
      std::set<int> used;
      for (int i = 0; i < 500; ++i) {
        std::string k = "key-" + std::to_string(i);
        int c = sel.SelectChannel(k);
        ASSERT_GE(c, 0);
        ASSERT_LT(c, n);
        KeyGroup kg = KeyGroupForKeyBytes(KeyBytesOf(k), max_par);
        EXPECT_TRUE(KeyGroupRangeForSubtask(max_par, n, c).Contains(kg))
            << "the channel's subtask owns the key's group (its state lives there)";
        EXPECT_EQ(sel.SelectChannel(k), c) << "stable";
        used.insert(c);
      }
      if (max_par >= n * 4) {
        EXPECT_EQ(used.size(), static_cast<size_t>(n)) << "every subtask gets keys";
      }
    }
  }
}

TEST(ChannelSelectorTest, CustomPartitionerResultsAreFoldedIntoRange) {
  auto key = [](const int& v) { return v; };
  auto part = [](int k, int) { return k; };  // deliberately out of range for most keys
  CustomSelector<int, int, decltype(key), decltype(part)> sel(key, part);
  sel.Setup(4, 0);
  EXPECT_EQ(sel.SelectChannel(0), 0);
  EXPECT_EQ(sel.SelectChannel(3), 3);
  EXPECT_EQ(sel.SelectChannel(4), 0);
  EXPECT_EQ(sel.SelectChannel(6), 2);
  EXPECT_EQ(sel.SelectChannel(-1), 3);
  EXPECT_EQ(sel.SelectChannel(-6), 2);
  for (int v : {INT_MIN, INT_MIN + 1, INT_MAX, -4, 100003}) {
    int c = sel.SelectChannel(v);
    EXPECT_GE(c, 0) << v;
    EXPECT_LT(c, 4) << v;
  }
  // The partitioner sees the number of channels.
  auto by_n = [](int k, int n) { return k % n; };
  CustomSelector<int, int, decltype(key), decltype(by_n)> s3(key, by_n);
  s3.Setup(3, 0);
  EXPECT_EQ(s3.SelectChannel(5), 2);
}

TEST(ChannelSelectorTest, PartitionerNames) {
  EXPECT_EQ(PartitionerName(PartitionerKind::kForward), "FORWARD");
  EXPECT_EQ(PartitionerName(PartitionerKind::kHash), "HASH");
  EXPECT_EQ(PartitionerName(PartitionerKind::kRebalance), "REBALANCE");
  EXPECT_EQ(PartitionerName(PartitionerKind::kRescale), "RESCALE");
  EXPECT_EQ(PartitionerName(PartitionerKind::kShuffle), "SHUFFLE");
  EXPECT_EQ(PartitionerName(PartitionerKind::kBroadcast), "BROADCAST");
  EXPECT_EQ(PartitionerName(PartitionerKind::kGlobal), "GLOBAL");
  EXPECT_EQ(PartitionerName(PartitionerKind::kCustom), "CUSTOM");
}

// ---------------------------------------------------------------------------------------------
// Through the executor: which consumer subtasks each producer subtask reaches
// ---------------------------------------------------------------------------------------------

/// Stamps the producing (or consuming) subtask into each record.
class Stamp final : public ProcessFunction<Tagged, Tagged> {
 public:
  explicit Stamp(bool producer) : producer_(producer) {}
  Status Open(RuntimeContext& rc) override {
    subtask_ = rc.subtask_index();
    return Status::Ok();
  }
  void ProcessElement(const Tagged& v, ProcessContext&, Collector<Tagged>& out) override {
    Tagged t = v;
    (producer_ ? t.producer : t.consumer) = subtask_;
    out.Collect(t);
  }

 private:
  bool producer_;
  int subtask_ = -1;
};

/// source (ps) -> stamp producer (ps) -> partition(kind) -> stamp consumer (pt) -> collect.
std::vector<Tagged> Route(int ps, int pt, int records,
                          const std::function<DataStream<Tagged>(DataStream<Tagged>)>& partition) {
  StreamExecutionEnvironment env;
  env.SetParallelism(ps);
  std::vector<Tagged> data;
  for (int i = 0; i < records; ++i) data.push_back({i, -1, -1});
  auto shared = std::make_shared<const std::vector<Tagged>>(std::move(data));
  auto src = env.FromSource<Tagged>(
      [shared] { return std::make_unique<CollectionReader<Tagged>>(shared); }, "Numbers",
      MakeTypeInfo<Tagged>(), ps);
  auto produced = src.Process<Tagged>([] { return std::make_shared<Stamp>(true); }, "Producer");
  env.SetParallelism(pt);
  auto consumed = partition(produced).Process<Tagged>([] { return std::make_shared<Stamp>(false); },
                                                      "Consumer");
  consumed.SetParallelism(pt);
  auto out = testing::CollectInto(consumed);
  auto r = testing::RunJob(env);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  return out->sorted();
}

/// producer -> set of consumers it reached.
std::map<int, std::set<int>> Reached(const std::vector<Tagged>& v) {
  std::map<int, std::set<int>> m;
  for (const auto& t : v) m[t.producer].insert(t.consumer);
  return m;
}

TEST(PartitionerWiringTest, RebalanceSpreadsEvenlyOverAllConsumers) {
  auto out = Route(1, 4, 400, [](DataStream<Tagged> s) { return s.Rebalance(); });
  ASSERT_EQ(out.size(), 400u);
  std::map<int, int> per_consumer;
  for (const auto& t : out) per_consumer[t.consumer]++;
  EXPECT_EQ(per_consumer, (std::map<int, int>{{0, 100}, {1, 100}, {2, 100}, {3, 100}}));
  auto many = Route(2, 3, 600, [](DataStream<Tagged> s) { return s.Rebalance(); });
  EXPECT_EQ(Reached(many), (std::map<int, std::set<int>>{{0, {0, 1, 2}}, {1, {0, 1, 2}}}));
}

TEST(PartitionerWiringTest, RescaleConnectsEachProducerToALocalSubsetOnly) {
  // 2 -> 4: producer 0 feeds consumers 0 and 1, producer 1 feeds 2 and 3.
  auto up = Route(2, 4, 400, [](DataStream<Tagged> s) { return s.Rescale(); });
  ASSERT_EQ(up.size(), 400u);
  EXPECT_EQ(Reached(up), (std::map<int, std::set<int>>{{0, {0, 1}}, {1, {2, 3}}}));
  std::map<int, int> per_consumer;
  for (const auto& t : up) per_consumer[t.consumer]++;
  EXPECT_EQ(per_consumer, (std::map<int, int>{{0, 100}, {1, 100}, {2, 100}, {3, 100}}));
  // 4 -> 2: producers 0, 1 feed consumer 0; producers 2, 3 feed consumer 1.
  auto down = Route(4, 2, 400, [](DataStream<Tagged> s) { return s.Rescale(); });
  ASSERT_EQ(down.size(), 400u);
  EXPECT_EQ(Reached(down), (std::map<int, std::set<int>>{{0, {0}}, {1, {0}}, {2, {1}}, {3, {1}}}));
  // 3 -> 3 (same parallelism): one to one.
  auto same = Route(3, 3, 90, [](DataStream<Tagged> s) { return s.Rescale(); });
  EXPECT_EQ(Reached(same), (std::map<int, std::set<int>>{{0, {0}}, {1, {1}}, {2, {2}}}));
}

TEST(PartitionerWiringTest, ShuffleReachesEveryConsumer) {
  auto out = Route(2, 4, 2000, [](DataStream<Tagged> s) { return s.Shuffle(); });
  ASSERT_EQ(out.size(), 2000u);
  EXPECT_EQ(Reached(out), (std::map<int, std::set<int>>{{0, {0, 1, 2, 3}}, {1, {0, 1, 2, 3}}}));
  std::map<int, int> per_consumer;
  for (const auto& t : out) per_consumer[t.consumer]++;
  for (const auto& [c, n] : per_consumer) {
    EXPECT_GT(n, 400) << c;
    EXPECT_LT(n, 600) << c;
  }
}

TEST(PartitionerWiringTest, BroadcastSendsEveryRecordToEveryConsumer) {
  auto out = Route(2, 3, 50, [](DataStream<Tagged> s) { return s.Broadcast(); });
  ASSERT_EQ(out.size(), 150u);
  std::map<int64_t, std::set<int>> consumers_of;
  for (const auto& t : out) consumers_of[t.v].insert(t.consumer);
  for (const auto& [v, cs] : consumers_of) EXPECT_EQ(cs, (std::set<int>{0, 1, 2})) << v;
}

TEST(PartitionerWiringTest, GlobalSendsEverythingToTheFirstConsumer) {
  auto out = Route(3, 4, 300, [](DataStream<Tagged> s) { return s.Global(); });
  ASSERT_EQ(out.size(), 300u);
  for (const auto& t : out) ASSERT_EQ(t.consumer, 0);
}

TEST(PartitionerWiringTest, ForwardKeepsRecordsInTheirSubtask) {
  auto out = Route(3, 3, 300, [](DataStream<Tagged> s) { return s.Forward(); });
  ASSERT_EQ(out.size(), 300u);
  for (const auto& t : out) ASSERT_EQ(t.consumer, t.producer);
}

TEST(PartitionerWiringTest, CustomPartitionerRoutesByTheUserFunction) {
  auto out = Route(2, 4, 400, [](DataStream<Tagged> s) {
    return s.PartitionCustom([](int64_t k, int n) { return static_cast<int>(k % 10) - n; },
                             [](const Tagged& t) { return t.v; });
  });
  ASSERT_EQ(out.size(), 400u);
  for (const auto& t : out) {
    int c = static_cast<int>(t.v % 10) - 4;
    int expected = c < 0 || c >= 4 ? ((c % 4) + 4) % 4 : c;
    ASSERT_EQ(t.consumer, expected) << t.v;
  }
}

// ---------------------------------------------------------------------------------------------
// keyBy end to end: equal keys meet in one subtask, the one owning their key group
// ---------------------------------------------------------------------------------------------

class WhereAmI final : public ProcessFunction<std::string, KeyedSeen> {
 public:
  Status Open(RuntimeContext& rc) override {
    subtask_ = rc.subtask_index();
    max_par_ = rc.max_parallelism();
    EXPECT_TRUE(rc.has_keyed_state());
    return Status::Ok();
  }
  void ProcessElement(const std::string& v, ProcessContext& ctx,
                      Collector<KeyedSeen>& out) override {
    EXPECT_EQ(ctx.CurrentKey<std::string>(), v);
    out.Collect({v, subtask_, max_par_});
  }

 private:
  int subtask_ = -1;
  int max_par_ = 0;
};

TEST(KeyByRoutingTest, EqualKeysGoToTheSubtaskOwningTheirKeyGroup) {
  for (int par : {1, 3, 4}) {
    SCOPED_TRACE(par);
    StreamExecutionEnvironment env;
    env.SetParallelism(par);
    std::vector<std::string> data;
    for (int i = 0; i < 2000; ++i) data.push_back("user-" + std::to_string(i % 97));
    auto shared = std::make_shared<const std::vector<std::string>>(std::move(data));
    auto src = env.FromSource<std::string>(
        [shared] { return std::make_unique<CollectionReader<std::string>>(shared); }, "Users",
        MakeTypeInfo<std::string>(), par);
    auto seen = testing::CollectInto(
        src.KeyBy([](const std::string& s) { return s; }).Process<KeyedSeen>([] {
          return std::make_shared<WhereAmI>();
        }));
    auto r = testing::RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    auto all = seen->values();
    ASSERT_EQ(all.size(), 2000u);
    std::map<std::string, std::set<int>> subtasks_of;
    std::set<int> used;
    for (const auto& s : all) {
      subtasks_of[s.key].insert(s.subtask);
      used.insert(s.subtask);
      ASSERT_EQ(s.max_parallelism, DefaultMaxParallelism(par));
    }
    ASSERT_EQ(subtasks_of.size(), 97u);
    for (const auto& [k, subs] : subtasks_of) {
      ASSERT_EQ(subs.size(), 1u) << k << " was processed by several subtasks";
      KeyGroup kg = KeyGroupForKeyBytes(KeyBytesOf(k), DefaultMaxParallelism(par));
      EXPECT_EQ(*subs.begin(), OperatorIndexForKeyGroup(kg, par, DefaultMaxParallelism(par))) << k;
    }
    EXPECT_EQ(used.size(), static_cast<size_t>(par)) << "97 keys spread over every subtask";
  }
}

}  // namespace
}  // namespace eddy
