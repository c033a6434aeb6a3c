// Keyed state on both backends (heap and RocksDB: the suites declared with
// EDDY_BACKEND_TEST_SUITE run once per backend), TTL, snapshots and rescaling, key groups and the
// internal timer service. RocksDB-only behaviour (native checkpoints, incremental uploads,
// compaction-filter TTL): rocksdb_state_test.cc.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "eddy/state/heap_backend.h"
#include "eddy/state/key_groups.h"
#include "eddy/state/timers.h"
#include "tests/backend_test.h"
#include "tests/operator_harness.h"

namespace eddy {
namespace {

using testing::ManualTimeService;

/// Serialized key bytes of a string key, as LambdaKeySelector<T, std::string> produces them.
std::string Key(const std::string& k) {
  std::string out;
  ByteWriter w(out);
  Serializer<std::string>::Write(k, w);
  return out;
}

std::string KeyName(int i) {
  return "key-" + std::to_string(i);
}

KeyGroup GroupOf(const std::string& key, int max_parallelism) {
  return KeyGroupForKeyBytes(Key(key), max_parallelism);
}

using testing::FakeClock;
using testing::SumReduce;

/// Average of int64 values: accumulator (sum, count).
class AvgAgg final : public AggregateFunction<int64_t, std::pair<int64_t, int64_t>, double> {
 public:
  std::pair<int64_t, int64_t> CreateAccumulator() const override { return {0, 0}; }
  void Add(const int64_t& v, std::pair<int64_t, int64_t>& acc) const override {
    acc.first += v;
    acc.second += 1;
  }
  double GetResult(const std::pair<int64_t, int64_t>& acc) const override {
    return acc.second == 0 ? 0.0 : static_cast<double>(acc.first) / static_cast<double>(acc.second);
  }
  void Merge(std::pair<int64_t, int64_t>& a, const std::pair<int64_t, int64_t>& b) const override {
    a.first += b.first;
    a.second += b.second;
  }
};

ValueStateDescriptor<int64_t> ValueDesc(StateTtlConfig ttl = {}) {
  return {{"value", ttl}};
}
ListStateDescriptor<std::string> ListDesc(StateTtlConfig ttl = {}) {
  return {{"list", ttl}};
}
MapStateDescriptor<std::string, int64_t> MapDesc(StateTtlConfig ttl = {}) {
  return {{"map", ttl}};
}
ReducingStateDescriptor<int64_t> ReduceDesc(StateTtlConfig ttl = {}) {
  ReducingStateDescriptor<int64_t> d;
  d.name = "reducing";
  d.ttl = ttl;
  d.reduce = std::make_shared<SumReduce>();
  return d;
}
AggregatingStateDescriptor<int64_t, std::pair<int64_t, int64_t>, double> AggDesc(
    StateTtlConfig ttl = {}) {
  AggregatingStateDescriptor<int64_t, std::pair<int64_t, int64_t>, double> d;
  d.name = "aggregating";
  d.ttl = ttl;
  d.aggregate = std::make_shared<AvgAgg>();
  return d;
}

StateTtlConfig Ttl(int64_t ms,
                   StateTtlConfig::UpdateType u = StateTtlConfig::UpdateType::kOnCreateAndWrite,
                   StateTtlConfig::Visibility v = StateTtlConfig::Visibility::kNeverReturnExpired) {
  StateTtlConfig c;
  c.ttl = Duration::Millis(ms);
  c.update_type = u;
  c.visibility = v;
  return c;
}

constexpr int kMaxPar = 128;
const KeyGroupRange kAll{0, kMaxPar - 1};

using testing::MakeTestBackend;
EDDY_BACKEND_TEST_SUITE(KeyedStateTest);
EDDY_BACKEND_TEST_SUITE(StateTtlTest);
EDDY_BACKEND_TEST_SUITE(StateSnapshotTest);

// ---------------------------------------------------------------------------------------------
// State types per key and per namespace
// ---------------------------------------------------------------------------------------------

TEST_P(KeyedStateTest, ValueStateIsScopedByKeyAndNamespace) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetValueState(ValueDesc());
  EXPECT_EQ(b.GetValueState(ValueDesc()), s) << "one handle per name";
  b.SetCurrentKey(Key("a"));
  EXPECT_EQ(s->Get(), nullptr);
  EXPECT_FALSE(s->Value().has_value());
  s->Update(1);
  s->SetNamespace({0, 10});
  EXPECT_EQ(s->Get(), nullptr) << "a different namespace of the same key is empty";
  s->Update(2);
  b.SetCurrentKey(Key("b"));
  s->SetNamespace(Namespace::Void());
  EXPECT_EQ(s->Get(), nullptr) << "a different key is empty";
  s->GetOrCreate() += 40;
  EXPECT_EQ(s->Value(), 40);

  b.SetCurrentKey(Key("a"));
  EXPECT_EQ(s->Value(), 1);
  s->SetNamespace({0, 10});
  EXPECT_EQ(s->Value(), 2);
  EXPECT_EQ(b.NumEntries(), 3u);
  s->Clear();
  EXPECT_EQ(s->Get(), nullptr);
  s->SetNamespace(Namespace::Void());
  EXPECT_EQ(s->Value(), 1) << "Clear only removes the current namespace";
  EXPECT_EQ(b.NumEntries(), 2u);
}

TEST_P(KeyedStateTest, ListStateAddUpdateAndClear) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetListState(ListDesc());
  b.SetCurrentKey(Key("a"));
  EXPECT_EQ(s->Get(), nullptr);
  s->Add("x");
  s->Add("y");
  b.SetCurrentKey(Key("b"));
  s->Add("z");
  b.SetCurrentKey(Key("a"));
  ASSERT_NE(s->Get(), nullptr);
  EXPECT_EQ(*s->Get(), (std::vector<std::string>{"x", "y"}));
  s->SetNamespace({5, 6});
  EXPECT_EQ(s->Get(), nullptr);
  s->Update({"p", "q", "r"});
  EXPECT_EQ(*s->Get(), (std::vector<std::string>{"p", "q", "r"}));
  s->GetMutable()->push_back("s");
  EXPECT_EQ(s->Get()->size(), 4u);
  s->Update({});
  EXPECT_EQ(s->Get(), nullptr) << "updating with an empty list clears";
  s->SetNamespace(Namespace::Void());
  EXPECT_EQ(*s->Get(), (std::vector<std::string>{"x", "y"}));
  b.SetCurrentKey(Key("b"));
  EXPECT_EQ(*s->Get(), (std::vector<std::string>{"z"}));
  s->Clear();
  EXPECT_EQ(s->Get(), nullptr);
}

TEST_P(KeyedStateTest, MapStatePutGetRemoveIterate) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetMapState(MapDesc());
  b.SetCurrentKey(Key("a"));
  EXPECT_TRUE(s->IsEmpty());
  s->Put("one", 1);
  s->Put("two", 2);
  s->Put("one", 11);
  EXPECT_FALSE(s->IsEmpty());
  EXPECT_TRUE(s->Contains("two"));
  EXPECT_FALSE(s->Contains("three"));
  EXPECT_EQ(*s->Get("one"), 11);
  EXPECT_EQ(s->Get("three"), nullptr);
  std::map<std::string, int64_t> seen;
  s->ForEach([&](const std::string& k, const int64_t& v) { seen[k] = v; });
  EXPECT_EQ(seen, (std::map<std::string, int64_t>{{"one", 11}, {"two", 2}}));

  s->SetNamespace({1, 2});
  EXPECT_TRUE(s->IsEmpty());
  s->Put("ns", 5);
  b.SetCurrentKey(Key("b"));
  EXPECT_TRUE(s->IsEmpty());
  s->SetNamespace(Namespace::Void());
  EXPECT_TRUE(s->IsEmpty());

  b.SetCurrentKey(Key("a"));
  s->Remove("one");
  s->Remove("missing");
  EXPECT_FALSE(s->Contains("one"));
  s->Remove("two");
  EXPECT_TRUE(s->IsEmpty());
  EXPECT_EQ(b.NumEntries(), 1u) << "removing the last entry drops the (key, namespace)";
}

TEST_P(KeyedStateTest, ReducingStateFoldsPerKeyAndNamespace) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetReducingState(ReduceDesc());
  b.SetCurrentKey(Key("a"));
  EXPECT_EQ(s->Get(), nullptr);
  for (int64_t v : {1, 2, 3}) s->Add(v);
  s->SetNamespace({0, 1});
  s->Add(100);
  b.SetCurrentKey(Key("b"));
  s->SetNamespace(Namespace::Void());
  s->Add(7);
  b.SetCurrentKey(Key("a"));
  EXPECT_EQ(*s->Get(), 6);
  s->SetNamespace({0, 1});
  EXPECT_EQ(*s->Get(), 100);
  b.SetCurrentKey(Key("b"));
  s->SetNamespace(Namespace::Void());
  EXPECT_EQ(*s->Get(), 7);
  s->Clear();
  EXPECT_EQ(s->Get(), nullptr);
  s->Add(1);
  EXPECT_EQ(*s->Get(), 1) << "after Clear the first value starts a new fold";
}

TEST_P(KeyedStateTest, AggregatingStateUsesTheAccumulator) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetAggregatingState(AggDesc());
  b.SetCurrentKey(Key("a"));
  EXPECT_FALSE(s->Get().has_value());
  s->Add(1);
  s->Add(2);
  s->SetNamespace({10, 20});
  s->Add(10);
  b.SetCurrentKey(Key("b"));
  s->SetNamespace(Namespace::Void());
  s->Add(5);
  b.SetCurrentKey(Key("a"));
  EXPECT_DOUBLE_EQ(*s->Get(), 1.5);
  s->SetNamespace({10, 20});
  EXPECT_DOUBLE_EQ(*s->Get(), 10.0);
  b.SetCurrentKey(Key("b"));
  s->SetNamespace(Namespace::Void());
  EXPECT_DOUBLE_EQ(*s->Get(), 5.0);
  s->Clear();
  EXPECT_FALSE(s->Get().has_value());
}

TEST_P(KeyedStateTest, DifferentStatesWithTheSameKeyAreIndependent) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  auto* v1 = b.GetValueState(ValueStateDescriptor<int64_t>{{"one", {}}});
  auto* v2 = b.GetValueState(ValueStateDescriptor<int64_t>{{"two", {}}});
  ASSERT_NE(v1, v2);
  b.SetCurrentKey(Key("k"));
  v1->Update(1);
  EXPECT_EQ(v2->Get(), nullptr);
  v2->Update(2);
  EXPECT_EQ(v1->Value(), 1);
  EXPECT_EQ(v2->Value(), 2);
}

// ---------------------------------------------------------------------------------------------
// TTL
// ---------------------------------------------------------------------------------------------

TEST_P(StateTtlTest, OnCreateAndWriteExpiresRegardlessOfReads) {
  FakeClock clock;
  auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetValueState(ValueDesc(Ttl(100)));
  b.SetCurrentKey(Key("a"));
  s->Update(1);
  clock.now = 50;
  EXPECT_EQ(s->Value(), 1);
  clock.now = 99;
  EXPECT_EQ(s->Value(), 1) << "reads do not extend the TTL";
  clock.now = 100;
  EXPECT_EQ(s->Get(), nullptr) << "expired exactly ttl after the write";
  EXPECT_EQ(b.NumEntries(), 0u) << "NeverReturnExpired drops the entry on access";
  s->Update(2);
  clock.now = 150;
  s->Update(3);  // a write restarts the TTL
  clock.now = 249;
  EXPECT_EQ(s->Value(), 3);
  clock.now = 250;
  EXPECT_EQ(s->Get(), nullptr);
}

TEST_P(StateTtlTest, OnReadAndWriteExtendsOnEveryRead) {
  FakeClock clock;
  auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetValueState(ValueDesc(Ttl(100, StateTtlConfig::UpdateType::kOnReadAndWrite)));
  b.SetCurrentKey(Key("a"));
  s->Update(1);
  clock.now = 60;
  EXPECT_EQ(s->Value(), 1);
  clock.now = 159;
  EXPECT_EQ(s->Value(), 1) << "the read at 60 moved the expiry to 160";
  clock.now = 258;
  EXPECT_EQ(s->Value(), 1);
  clock.now = 358;
  EXPECT_EQ(s->Get(), nullptr);
}

TEST_P(StateTtlTest, ReturnExpiredIfNotCleanedUpShowsStaleValues) {
  FakeClock clock;
  auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
  KeyedStateBackend& b = *b_owner;
  auto* never = b.GetValueState(ValueStateDescriptor<int64_t>{{"never", Ttl(100)}});
  auto* stale = b.GetValueState(ValueStateDescriptor<int64_t>{
      {"stale", Ttl(100, StateTtlConfig::UpdateType::kOnCreateAndWrite,
                    StateTtlConfig::Visibility::kReturnExpiredIfNotCleanedUp)}});
  b.SetCurrentKey(Key("a"));
  never->Update(1);
  stale->Update(2);
  clock.now = 500;
  EXPECT_EQ(never->Get(), nullptr);
  EXPECT_EQ(stale->Value(), 2);
}

TEST_P(StateTtlTest, WritesAfterExpiryDoNotResurrectExpiredData) {
  // Flink's TtlReduceFunction / TtlAggregateFunction: an expired accumulator is never folded into
  // a new write, whatever the visibility (visibility is about reads only).
  for (auto vis : {StateTtlConfig::Visibility::kNeverReturnExpired,
                   StateTtlConfig::Visibility::kReturnExpiredIfNotCleanedUp}) {
    SCOPED_TRACE(static_cast<int>(vis));
    FakeClock clock;
    auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
    KeyedStateBackend& b = *b_owner;
    auto ttl = Ttl(100, StateTtlConfig::UpdateType::kOnCreateAndWrite, vis);
    auto* red = b.GetReducingState(ReduceDesc(ttl));
    auto* agg = b.GetAggregatingState(AggDesc(ttl));
    b.SetCurrentKey(Key("a"));
    red->Add(10);
    agg->Add(10);
    clock.now = 1000;
    red->Add(1);
    agg->Add(1);
    EXPECT_EQ(*red->Get(), 1);
    EXPECT_DOUBLE_EQ(*agg->Get(), 1.0);
    clock.now = 1050;
    red->Add(2);
    agg->Add(2);
    EXPECT_EQ(*red->Get(), 3) << "live values still fold";
    EXPECT_DOUBLE_EQ(*agg->Get(), 1.5);
  }
  // With NeverReturnExpired no state type sees expired data on a write.
  FakeClock clock;
  auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
  KeyedStateBackend& b = *b_owner;
  auto ttl = Ttl(100);
  auto* list = b.GetListState(ListDesc(ttl));
  auto* map = b.GetMapState(MapDesc(ttl));
  auto* val = b.GetValueState(ValueDesc(ttl));
  b.SetCurrentKey(Key("a"));
  list->Add("old");
  map->Put("old", 1);
  val->Update(10);
  clock.now = 1000;
  list->Add("new");
  map->Put("new", 2);
  val->GetOrCreate() += 1;
  EXPECT_EQ(*list->Get(), std::vector<std::string>{"new"});
  EXPECT_FALSE(map->Contains("old"));
  EXPECT_TRUE(map->Contains("new"));
  EXPECT_EQ(val->Value(), 1);
}

TEST_P(StateTtlTest, TtlAppliesToEveryStateType) {
  FakeClock clock;
  auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
  KeyedStateBackend& b = *b_owner;
  auto ttl = Ttl(10);
  auto* list = b.GetListState(ListDesc(ttl));
  auto* map = b.GetMapState(MapDesc(ttl));
  auto* red = b.GetReducingState(ReduceDesc(ttl));
  auto* agg = b.GetAggregatingState(AggDesc(ttl));
  b.SetCurrentKey(Key("a"));
  list->Add("x");
  map->Put("m", 1);
  red->Add(1);
  agg->Add(1);
  clock.now = 9;
  EXPECT_NE(list->Get(), nullptr);
  EXPECT_TRUE(map->Contains("m"));
  EXPECT_NE(red->Get(), nullptr);
  EXPECT_TRUE(agg->Get().has_value());
  clock.now = 10;
  EXPECT_EQ(list->Get(), nullptr);
  EXPECT_FALSE(map->Contains("m"));
  EXPECT_TRUE(map->IsEmpty());
  EXPECT_EQ(red->Get(), nullptr);
  EXPECT_FALSE(agg->Get().has_value());
  EXPECT_EQ(b.NumEntries(), 0u);
}

TEST_P(StateTtlTest, FullSnapshotCleanupDropsExpiredEntries) {
  for (bool cleanup : {true, false}) {
    SCOPED_TRACE(cleanup);
    FakeClock clock;
    auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
    KeyedStateBackend& b = *b_owner;
    auto ttl = Ttl(100, StateTtlConfig::UpdateType::kOnCreateAndWrite,
                   StateTtlConfig::Visibility::kReturnExpiredIfNotCleanedUp);
    ttl.cleanup_full_snapshot = cleanup;
    auto* s = b.GetValueState(ValueDesc(ttl));
    for (int i = 0; i < 10; ++i) {
      b.SetCurrentKey(Key(KeyName(i)));
      s->Update(i);
    }
    clock.now = 150;
    for (int i = 10; i < 13; ++i) {
      b.SetCurrentKey(Key(KeyName(i)));
      s->Update(i);
    }
    std::string snap;
    ASSERT_TRUE(b.Snapshot(snap).ok());
    EXPECT_EQ(b.NumEntries(), 13u) << "a snapshot does not modify the live state";

    auto r_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
    KeyedStateBackend& r = *r_owner;
    ASSERT_TRUE(r.Restore(snap).ok());
    auto* rs = r.GetValueState(ValueDesc(ttl));
    EXPECT_EQ(r.NumEntries(), cleanup ? 3u : 13u);
    r.SetCurrentKey(Key(KeyName(11)));
    EXPECT_EQ(rs->Value(), 11);
    r.SetCurrentKey(Key(KeyName(0)));
    if (cleanup) {
      EXPECT_EQ(rs->Get(), nullptr);
    } else {
      EXPECT_EQ(rs->Value(), 0) << "not cleaned up: still visible with ReturnExpiredIfNotCleanedUp";
    }
  }
}

TEST_P(StateTtlTest, RestoredEntriesKeepTheirTimestamps) {
  FakeClock clock;
  auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
  KeyedStateBackend& b = *b_owner;
  auto* s = b.GetValueState(ValueDesc(Ttl(100)));
  b.SetCurrentKey(Key("a"));
  s->Update(1);
  clock.now = 50;
  std::string snap;
  ASSERT_TRUE(b.Snapshot(snap).ok());
  auto r_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
  KeyedStateBackend& r = *r_owner;
  ASSERT_TRUE(r.Restore(snap).ok());
  auto* rs = r.GetValueState(ValueDesc(Ttl(100)));
  r.SetCurrentKey(Key("a"));
  clock.now = 99;
  EXPECT_EQ(rs->Value(), 1);
  clock.now = 100;
  EXPECT_EQ(rs->Get(), nullptr) << "a restore does not restart the TTL";
}

TEST(HeapStateTtlTest, IncrementalCleanupRemovesExpiredEntriesWithoutAccessToThem) {
  for (int budget : {0, 1000}) {
    SCOPED_TRACE(budget);
    FakeClock clock;
    auto b_owner = MakeTestBackend(kMaxPar, kAll, clock.AsClock());
    KeyedStateBackend& b = *b_owner;
    auto ttl = Ttl(100);
    ttl.cleanup_incremental = budget;
    auto* s = b.GetValueState(ValueDesc(ttl));
    for (int i = 0; i < 300; ++i) {
      b.SetCurrentKey(Key(KeyName(i)));
      s->Update(i);
    }
    EXPECT_EQ(b.NumEntries(), 300u);
    clock.now = 1000;
    // Other keys keep being written; the old ones are never touched again.
    for (int i = 1000; i < 1000 + 2 * kMaxPar; ++i) {
      b.SetCurrentKey(Key(KeyName(i)));
      s->Update(i);
    }
    if (budget == 0) {
      EXPECT_EQ(b.NumEntries(), 300u + 2 * kMaxPar) << "without cleanup expired entries stay";
    } else {
      EXPECT_EQ(b.NumEntries(), 2u * kMaxPar) << "every key group was visited";
    }
  }
}

TEST(HeapStateTtlTest, IncrementalCleanupRespectsTheBudget) {
  FakeClock clock;
  // One key group: every cleanup step looks at the same group.
  auto b_owner = MakeTestBackend(1, KeyGroupRange{0, 0}, clock.AsClock());
  KeyedStateBackend& b = *b_owner;
  auto ttl = Ttl(100);
  ttl.cleanup_incremental = 2;
  auto* s = b.GetValueState(ValueDesc(ttl));
  for (int i = 0; i < 10; ++i) {
    b.SetCurrentKey(Key(KeyName(i)));
    s->Update(i);
  }
  clock.now = 1000;
  b.SetCurrentKey(Key("fresh"));
  s->Update(1);
  // The new entry is live; at most 2 of the 10 expired ones were examined (and dropped).
  EXPECT_GE(b.NumEntries(), 9u);
  EXPECT_LE(b.NumEntries(), 10u) << "at least one expired entry was dropped";
}

// ---------------------------------------------------------------------------------------------
// Snapshot / restore / rescaling
// ---------------------------------------------------------------------------------------------

struct AllStates {
  ValueState<int64_t>* value;
  ListState<std::string>* list;
  MapState<std::string, int64_t>* map;
  ReducingState<int64_t>* reducing;
  AggregatingState<int64_t, double>* aggregating;
};

AllStates Register(KeyedStateBackend& b) {
  return {b.GetValueState(ValueDesc()), b.GetListState(ListDesc()), b.GetMapState(MapDesc()),
          b.GetReducingState(ReduceDesc()), b.GetAggregatingState(AggDesc())};
}

void SetNs(AllStates& s, Namespace ns) {
  s.value->SetNamespace(ns);
  s.list->SetNamespace(ns);
  s.map->SetNamespace(ns);
  s.reducing->SetNamespace(ns);
  s.aggregating->SetNamespace(ns);
}

/// Writes deterministic contents for key i into namespaces Void and {i, i+1}.
void Fill(KeyedStateBackend& b, AllStates& s, int i) {
  b.SetCurrentKey(Key(KeyName(i)));
  for (Namespace ns : {Namespace::Void(), Namespace{i, i + 1}}) {
    SetNs(s, ns);
    int64_t base = ns == Namespace::Void() ? i : 1000 + i;
    s.value->Update(base);
    s.list->Add("l" + std::to_string(base));
    s.list->Add("m" + std::to_string(base));
    s.map->Put("k" + std::to_string(base), base);
    s.reducing->Add(base);
    s.reducing->Add(1);
    s.aggregating->Add(base);
    s.aggregating->Add(base + 2);
  }
}

/// Checks what Fill wrote for key i (the backend's range must contain the key).
void Check(KeyedStateBackend& b, AllStates& s, int i) {
  b.SetCurrentKey(Key(KeyName(i)));
  for (Namespace ns : {Namespace::Void(), Namespace{i, i + 1}}) {
    SetNs(s, ns);
    int64_t base = ns == Namespace::Void() ? i : 1000 + i;
    ASSERT_EQ(s.value->Value(), base) << KeyName(i);
    ASSERT_NE(s.list->Get(), nullptr) << KeyName(i);
    EXPECT_EQ(*s.list->Get(),
              (std::vector<std::string>{"l" + std::to_string(base), "m" + std::to_string(base)}));
    ASSERT_NE(s.map->Get("k" + std::to_string(base)), nullptr);
    EXPECT_EQ(*s.map->Get("k" + std::to_string(base)), base);
    EXPECT_EQ(*s.reducing->Get(), base + 1);
    EXPECT_DOUBLE_EQ(*s.aggregating->Get(), static_cast<double>(base) + 1.0);
  }
}

bool Absent(KeyedStateBackend& b, AllStates& s, int i) {
  b.SetCurrentKey(Key(KeyName(i)));
  SetNs(s, Namespace::Void());
  return s.value->Get() == nullptr && s.list->Get() == nullptr && s.map->IsEmpty() &&
         s.reducing->Get() == nullptr && !s.aggregating->Get().has_value();
}

TEST_P(StateSnapshotTest, RoundTripOfEveryStateType) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  AllStates s = Register(b);
  for (int i = 0; i < 50; ++i) Fill(b, s, i);
  const size_t entries = b.NumEntries();
  EXPECT_EQ(entries, 50u * 2 * 5);
  std::string snap;
  ASSERT_TRUE(b.Snapshot(snap).ok());

  // Restore after the states are registered (eager) ...
  auto eager_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& eager = *eager_owner;
  AllStates es = Register(eager);
  ASSERT_TRUE(eager.Restore(snap).ok());
  EXPECT_EQ(eager.NumEntries(), entries);
  for (int i = 0; i < 50; ++i) Check(eager, es, i);
  EXPECT_TRUE(Absent(eager, es, 50));

  // ... and before (lazy: applied when the operator asks for the state).
  auto lazy_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& lazy = *lazy_owner;
  ASSERT_TRUE(lazy.Restore(snap).ok());
  EXPECT_EQ(lazy.NumEntries(), 0u);
  AllStates ls = Register(lazy);
  EXPECT_TRUE(lazy.restore_error().ok());
  EXPECT_EQ(lazy.NumEntries(), entries);
  for (int i = 0; i < 50; ++i) Check(lazy, ls, i);

  // A snapshot of the restored state equals the original content.
  std::string again;
  ASSERT_TRUE(lazy.Snapshot(again).ok());
  auto third_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& third = *third_owner;
  ASSERT_TRUE(third.Restore(again).ok());
  AllStates ts = Register(third);
  EXPECT_EQ(third.NumEntries(), entries);
  for (int i = 0; i < 50; ++i) Check(third, ts, i);
}

TEST_P(StateSnapshotTest, StateNotRegisteredAfterRestoreIsCarriedIntoTheNextSnapshot) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  AllStates s = Register(b);
  for (int i = 0; i < 10; ++i) Fill(b, s, i);
  std::string snap;
  ASSERT_TRUE(b.Snapshot(snap).ok());

  auto mid_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& mid = *mid_owner;
  ASSERT_TRUE(mid.Restore(snap).ok());
  auto* v = mid.GetValueState(ValueDesc());  // only one of the five states is used
  mid.SetCurrentKey(Key(KeyName(3)));
  v->Update(333);
  std::string snap2;
  ASSERT_TRUE(mid.Snapshot(snap2).ok());

  auto last_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& last = *last_owner;
  ASSERT_TRUE(last.Restore(snap2).ok());
  AllStates ls = Register(last);
  for (int i = 0; i < 10; ++i) {
    if (i == 3) continue;
    Check(last, ls, i);
  }
  last.SetCurrentKey(Key(KeyName(3)));
  SetNs(ls, Namespace::Void());
  EXPECT_EQ(ls.value->Value(), 333);
  ASSERT_NE(ls.list->Get(), nullptr);
  EXPECT_EQ(ls.list->Get()->size(), 2u) << "the untouched list state survived two restores";
}

TEST_P(StateSnapshotTest, RescalingSplitsKeyGroupsSoEveryKeyLandsExactlyOnce) {
  constexpr int kKeys = 400;
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  AllStates s = Register(b);
  for (int i = 0; i < kKeys; ++i) Fill(b, s, i);
  std::string snap;
  ASSERT_TRUE(b.Snapshot(snap).ok());

  for (int par : {2, 3}) {
    SCOPED_TRACE(par);
    std::vector<std::unique_ptr<KeyedStateBackend>> backends;
    std::vector<AllStates> states;
    size_t total = 0;
    for (int i = 0; i < par; ++i) {
      auto range = KeyGroupRangeForSubtask(kMaxPar, par, i);
      backends.push_back(MakeTestBackend(kMaxPar, range));
      ASSERT_TRUE(backends.back()->Restore(snap).ok());
      states.push_back(Register(*backends.back()));
      total += backends.back()->NumEntries();
    }
    EXPECT_EQ(total, b.NumEntries()) << "no entry lost or duplicated";
    for (int k = 0; k < kKeys; ++k) {
      KeyGroup kg = GroupOf(KeyName(k), kMaxPar);
      int owner = OperatorIndexForKeyGroup(kg, par, kMaxPar);
      for (int i = 0; i < par; ++i) {
        if (i == owner) {
          ASSERT_TRUE(backends[i]->range().Contains(kg));
          Check(*backends[i], states[i], k);
        } else {
          EXPECT_FALSE(backends[i]->range().Contains(kg));
        }
      }
    }

    // Scale back to one subtask from the `par` snapshots (several snapshots restored into one
    // backend, before and after registration).
    for (bool register_first : {false, true}) {
      auto merged_owner = MakeTestBackend(kMaxPar, kAll);
      KeyedStateBackend& merged = *merged_owner;
      AllStates ms;
      if (register_first) ms = Register(merged);
      for (auto& sub : backends) {
        std::string part;
        ASSERT_TRUE(sub->Snapshot(part).ok());
        ASSERT_TRUE(merged.Restore(part).ok());
      }
      if (!register_first) ms = Register(merged);
      EXPECT_EQ(merged.NumEntries(), b.NumEntries());
      for (int k = 0; k < kKeys; ++k) Check(merged, ms, k);
    }
  }
}

TEST_P(StateSnapshotTest, RescaleThreeToTwo) {
  constexpr int kKeys = 300;
  std::vector<std::string> parts;
  size_t total = 0;
  for (int i = 0; i < 3; ++i) {
    auto b_owner = MakeTestBackend(kMaxPar, KeyGroupRangeForSubtask(kMaxPar, 3, i));
    KeyedStateBackend& b = *b_owner;
    AllStates s = Register(b);
    for (int k = 0; k < kKeys; ++k) {
      if (b.range().Contains(GroupOf(KeyName(k), kMaxPar))) Fill(b, s, k);
    }
    total += b.NumEntries();
    parts.emplace_back();
    ASSERT_TRUE(b.Snapshot(parts.back()).ok());
  }
  EXPECT_EQ(total, kKeys * 10u);
  size_t restored = 0;
  for (int i = 0; i < 2; ++i) {
    auto b_owner = MakeTestBackend(kMaxPar, KeyGroupRangeForSubtask(kMaxPar, 2, i));
    KeyedStateBackend& b = *b_owner;
    for (const auto& p : parts) ASSERT_TRUE(b.Restore(p).ok());
    AllStates s = Register(b);
    restored += b.NumEntries();
    for (int k = 0; k < kKeys; ++k) {
      if (b.range().Contains(GroupOf(KeyName(k), kMaxPar))) Check(b, s, k);
    }
  }
  EXPECT_EQ(restored, total);
}

TEST_P(StateSnapshotTest, CorruptOrTruncatedSnapshotsFailCleanly) {
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  AllStates s = Register(b);
  for (int i = 0; i < 5; ++i) Fill(b, s, i);
  std::string snap;
  ASSERT_TRUE(b.Snapshot(snap).ok());

  {
    auto r_owner = MakeTestBackend(kMaxPar, kAll);
    KeyedStateBackend& r = *r_owner;
    EXPECT_FALSE(r.Restore("").ok());
    Status st = r.Restore(std::string("\x07") + snap.substr(1));
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(st.code(), StatusCode::kParseError);
    EXPECT_NE(st.message().find("version"), std::string::npos) << st.message();
  }
  // Opening a RocksDB backend takes tens of milliseconds: it checks about 40 cuts and bytes
  // spread over the snapshot plus the last 3, the heap backend every one.
  const size_t stride =
      backend_kind() == StateBackendKind::kHeap ? 1 : std::max<size_t>(1, snap.size() / 40);
  auto next = [&](size_t i) {
    return i + 3 >= snap.size() ? i + 1 : std::min(i + stride, snap.size() - 3);
  };
  // Every strict prefix is detected as truncated, whether the states are registered or not.
  for (size_t len = 0; len < snap.size(); len = next(len)) {
    for (bool register_first : {true, false}) {
      auto r_owner = MakeTestBackend(kMaxPar, kAll);
      KeyedStateBackend& r = *r_owner;
      if (register_first) Register(r);
      Status st = r.Restore(std::string_view(snap).substr(0, len));
      if (!register_first && st.ok()) {
        Register(r);
        st = r.restore_error();
      }
      EXPECT_FALSE(st.ok()) << "prefix of " << len << " of " << snap.size() << " bytes";
    }
  }
  // Flipped bytes: no crash; either an error or a restore that can still be read.
  int errors = 0;
  for (size_t pos = 0; pos < snap.size(); pos = next(pos)) {
    std::string bad = snap;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x5a);
    auto r_owner = MakeTestBackend(kMaxPar, kAll);
    KeyedStateBackend& r = *r_owner;
    AllStates rs = Register(r);
    Status st = r.Restore(bad);
    if (!st.ok()) {
      ++errors;
      continue;
    }
    for (int i = 0; i < 5; ++i) {
      r.SetCurrentKey(Key(KeyName(i)));
      (void)rs.value->Get();
      (void)rs.list->Get();
    }
  }
  EXPECT_GT(errors, 0);
}

// ---------------------------------------------------------------------------------------------
// Key groups
// ---------------------------------------------------------------------------------------------

TEST(KeyGroupTest, Murmur3MatchesTheReferenceVectors) {
  // MurmurHash3_x86_32 reference results (SMHasher).
  EXPECT_EQ(Murmur3("", 0), 0u);
  EXPECT_EQ(Murmur3("", 1), 0x514E28B7u);
  EXPECT_EQ(Murmur3("", 0xffffffffu), 0x81F16F39u);
  EXPECT_EQ(Murmur3(std::string_view("\0\0\0\0", 4), 0), 0x2362F9DEu);
  EXPECT_EQ(Murmur3("\xff\xff\xff\xff", 0), 0x76293B50u);
  EXPECT_EQ(Murmur3("\x21\x43\x65\x87", 0), 0xF55B516Bu);
  EXPECT_EQ(Murmur3("\x21\x43\x65\x87", 0x5082EDEEu), 0x2362F9DEu);
  EXPECT_EQ(Murmur3("\x21\x43\x65", 0), 0x7E4A8634u);
  EXPECT_EQ(Murmur3("\x21\x43", 0), 0xA0F7B07Au);
  EXPECT_EQ(Murmur3("\x21", 0), 0x72661CF4u);
  EXPECT_EQ(Murmur3(std::string_view("\0\0\0", 3), 0), 0x85F0B427u);
  EXPECT_EQ(Murmur3(std::string_view("\0\0", 2), 0), 0x30F4C306u);
  EXPECT_EQ(Murmur3(std::string_view("\0", 1), 0), 0x514E28B7u);
  EXPECT_EQ(Murmur3("aaaa", 0x9747b28cu), 0x5A97808Au);
  EXPECT_EQ(Murmur3("aaa", 0x9747b28cu), 0x283E0130u);
  EXPECT_EQ(Murmur3("aa", 0x9747b28cu), 0x5D211726u);
  EXPECT_EQ(Murmur3("a", 0x9747b28cu), 0x7FA09EA6u);
  EXPECT_EQ(Murmur3("abcd", 0x9747b28cu), 0xF0478627u);
  EXPECT_EQ(Murmur3("abc", 0x9747b28cu), 0xC84A62DDu);
  EXPECT_EQ(Murmur3("ab", 0x9747b28cu), 0x74875592u);
  EXPECT_EQ(Murmur3("Hello, world!", 0x9747b28cu), 0x24884CBAu);
  EXPECT_EQ(Murmur3("The quick brown fox jumps over the lazy dog", 0x9747b28cu), 0x2FA826CDu);
}

TEST(KeyGroupTest, KeyGroupsAreStableAndInRange) {
  // Key groups are part of the checkpoint format: they must not change between builds.
  EXPECT_EQ(KeyGroupForKeyBytes("abc", 128).value(), static_cast<int32_t>(0xB3DD93FAu % 128));
  EXPECT_EQ(KeyGroupForHash(0xB3DD93FAu, 1000).value(), static_cast<int32_t>(0xB3DD93FAu % 1000));
  for (int mp : {1, 7, 128, 32768}) {
    for (int i = 0; i < 200; ++i) {
      auto kg = KeyGroupForKeyBytes(Key(KeyName(i)), mp).value();
      EXPECT_GE(kg, 0);
      EXPECT_LT(kg, mp);
    }
  }
  auto b_owner = MakeTestBackend(kMaxPar, kAll);
  KeyedStateBackend& b = *b_owner;
  b.SetCurrentKey("abc");
  EXPECT_EQ(b.current_hash(), 0xB3DD93FAu);
  EXPECT_EQ(b.current_key_group(), KeyGroupForKeyBytes("abc", kMaxPar));
}

TEST(KeyGroupTest, DefaultMaxParallelismFollowsFlink) {
  EXPECT_EQ(DefaultMaxParallelism(1), 128);
  EXPECT_EQ(DefaultMaxParallelism(4), 128);
  EXPECT_EQ(DefaultMaxParallelism(85), 128);  // 85 * 1.5 = 127
  EXPECT_EQ(DefaultMaxParallelism(86), 256);  // 129 -> 256
  EXPECT_EQ(DefaultMaxParallelism(100), 256);
  EXPECT_EQ(DefaultMaxParallelism(171), 256);  // 171 + 85 = 256
  EXPECT_EQ(DefaultMaxParallelism(172), 512);  // 172 + 86 = 258 -> 512
  EXPECT_EQ(DefaultMaxParallelism(10000), 16384);
  EXPECT_EQ(DefaultMaxParallelism(30000), 32768);
}

TEST(KeyGroupTest, SubtaskRangesPartitionAllKeyGroups) {
  for (int mp : {1, 2, 3, 7, 10, 128, 129, 1000, 32768}) {
    for (int par = 1; par <= std::min(mp, 40); ++par) {
      std::vector<int> owner(static_cast<size_t>(mp), -1);
      int32_t expected_start = 0;
      for (int i = 0; i < par; ++i) {
        KeyGroupRange r = KeyGroupRangeForSubtask(mp, par, i);
        ASSERT_EQ(r.start, expected_start) << "mp " << mp << " par " << par << " subtask " << i;
        ASSERT_GE(r.size(), 1) << "every subtask owns at least one key group";
        EXPECT_LE(r.size(), (mp + par - 1) / par);
        EXPECT_GE(r.size(), mp / par);
        for (int32_t kg = r.start; kg <= r.end; ++kg) {
          ASSERT_EQ(owner[static_cast<size_t>(kg)], -1) << "overlap at " << kg;
          owner[static_cast<size_t>(kg)] = i;
          ASSERT_EQ(OperatorIndexForKeyGroup(KeyGroup(kg), par, mp), i)
              << "mp " << mp << " par " << par << " kg " << kg;
        }
        expected_start = r.end + 1;
      }
      ASSERT_EQ(expected_start, mp) << "all key groups covered";
    }
  }
}

TEST(KeyGroupTest, RangeBasics) {
  KeyGroupRange empty;
  EXPECT_EQ(empty.size(), 0);
  EXPECT_FALSE(empty.Contains(KeyGroup(0)));
  KeyGroupRange r{3, 5};
  EXPECT_EQ(r.size(), 3);
  EXPECT_TRUE(r.Contains(KeyGroup(3)));
  EXPECT_TRUE(r.Contains(KeyGroup(5)));
  EXPECT_FALSE(r.Contains(KeyGroup(6)));
  EXPECT_FALSE(r.Contains(KeyGroup(2)));
}

// ---------------------------------------------------------------------------------------------
// InternalTimerService
// ---------------------------------------------------------------------------------------------

/// Records fired timers as "key@time" (and checks the backend's current key is the timer's).
class RecordingTarget final : public TimerTarget {
 public:
  explicit RecordingTarget(KeyedStateBackend* b) : backend_(b) {}
  void OnEventTime(const Timer& t) override { Record("e", t); }
  void OnProcessingTime(const Timer& t) override { Record("p", t); }
  std::vector<std::string> fired;
  std::function<void(const Timer&)> on_fire;

 private:
  void Record(const char* kind, const Timer& t) {
    EXPECT_EQ(backend_->current_key(), t.key) << "the timer's key is current while it fires";
    ByteReader r(t.key);
    std::string k;
    Serializer<std::string>::Read(r, k);
    std::string s = std::string(kind) + ":" + k + "@" + std::to_string(t.time.millis());
    if (t.ns != Namespace::Void()) s += "/" + std::to_string(t.ns.a);
    fired.push_back(s);
    if (on_fire) on_fire(t);
  }
  KeyedStateBackend* backend_;
};

struct TimerFixture {
  explicit TimerFixture(KeyGroupRange range = kAll)
      : backend(kMaxPar, range, [this] { return pts.Now(); }),
        target(&backend),
        timers(&backend, &pts, &target) {}
  void At(const std::string& key) { backend.SetCurrentKey(Key(key)); }
  ManualTimeService pts;
  HeapKeyedStateBackend backend;
  RecordingTarget target;
  InternalTimerService timers;
};

TEST(TimerServiceTest, EventTimersFireInTimeOrderUpToTheWatermark) {
  TimerFixture f;
  f.At("a");
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(30));
  f.At("b");
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(10));
  f.At("c");
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(20));
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(40));
  EXPECT_EQ(f.timers.num_event_timers(), 4u);
  EXPECT_EQ(f.timers.current_watermark(), Watermark::Min());
  f.timers.AdvanceWatermark(Watermark(9));
  EXPECT_TRUE(f.target.fired.empty());
  f.timers.AdvanceWatermark(Watermark(30));
  EXPECT_EQ(f.target.fired, (std::vector<std::string>{"e:b@10", "e:c@20", "e:a@30"}));
  EXPECT_EQ(f.timers.current_watermark(), Watermark(30));
  EXPECT_EQ(f.timers.num_event_timers(), 1u);
  f.timers.AdvanceWatermark(Watermark(20));  // a watermark never goes back
  EXPECT_EQ(f.timers.current_watermark(), Watermark(30));
  f.timers.AdvanceWatermark(Watermark::Max());
  EXPECT_EQ(f.target.fired.back(), "e:c@40");
  EXPECT_EQ(f.timers.num_event_timers(), 0u);
}

TEST(TimerServiceTest, TimersAreDeduplicatedPerKeyNamespaceAndTime) {
  TimerFixture f;
  f.At("a");
  for (int i = 0; i < 3; ++i) f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(10));
  f.timers.RegisterEventTimeTimer(Namespace{1, 2}, Timestamp(10));
  f.At("b");
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(10));
  EXPECT_EQ(f.timers.num_event_timers(), 3u);
  f.timers.AdvanceWatermark(Watermark(10));
  std::multiset<std::string> fired(f.target.fired.begin(), f.target.fired.end());
  EXPECT_EQ(fired, (std::multiset<std::string>{"e:a@10", "e:a@10/1", "e:b@10"}));
}

TEST(TimerServiceTest, DeletedTimersDoNotFire) {
  TimerFixture f;
  f.At("a");
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(10));
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(20));
  f.timers.RegisterProcessingTimeTimer(Namespace::Void(), Timestamp(100));
  f.timers.RegisterProcessingTimeTimer(Namespace::Void(), Timestamp(200));
  f.At("b");
  f.timers.DeleteEventTimeTimer(Namespace::Void(), Timestamp(20));  // other key: no effect
  f.At("a");
  f.timers.DeleteEventTimeTimer(Namespace::Void(), Timestamp(10));
  f.timers.DeleteEventTimeTimer(Namespace{0, 1}, Timestamp(20));  // other namespace: no effect
  f.timers.DeleteProcessingTimeTimer(Namespace::Void(), Timestamp(100));
  f.timers.AdvanceWatermark(Watermark(50));
  f.pts.Advance(Timestamp(300));
  EXPECT_EQ(f.target.fired, (std::vector<std::string>{"e:a@20", "p:a@200"}));
}

TEST(TimerServiceTest, TimersRegisteredWhileFiringFireInTheSameAdvanceWhenDue) {
  TimerFixture f;
  f.At("a");
  f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(10));
  f.target.on_fire = [&](const Timer& t) {
    if (t.time == Timestamp(10)) {
      f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(15));   // due now
      f.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(500));  // later
    }
  };
  f.timers.AdvanceWatermark(Watermark(20));
  EXPECT_EQ(f.target.fired, (std::vector<std::string>{"e:a@10", "e:a@15"}));
  EXPECT_EQ(f.timers.num_event_timers(), 1u);
}

TEST(TimerServiceTest, ProcessingTimersFireWhenTheClockPasses) {
  TimerFixture f;
  f.At("a");
  f.timers.RegisterProcessingTimeTimer(Namespace::Void(), Timestamp(200));
  f.At("b");
  f.timers.RegisterProcessingTimeTimer(Namespace::Void(), Timestamp(100));
  f.timers.RegisterProcessingTimeTimer(Namespace::Void(), Timestamp(100));
  EXPECT_EQ(f.timers.num_processing_timers(), 2u);
  f.pts.Advance(Timestamp(99));
  EXPECT_TRUE(f.target.fired.empty());
  f.pts.Advance(Timestamp(100));
  EXPECT_EQ(f.target.fired, (std::vector<std::string>{"p:b@100"}));
  f.target.on_fire = [&](const Timer& t) {
    if (t.time == Timestamp(200))
      f.timers.RegisterProcessingTimeTimer(Namespace::Void(), Timestamp(250));
  };
  f.pts.Advance(Timestamp(240));
  EXPECT_EQ(f.target.fired, (std::vector<std::string>{"p:b@100", "p:a@200"}));
  f.pts.Advance(Timestamp(250));
  EXPECT_EQ(f.target.fired.back(), "p:a@250");
  EXPECT_EQ(f.timers.CurrentProcessingTime(), Timestamp(250));
}

TEST(TimerServiceTest, SnapshotRestoreKeepsOnlyTheKeyGroupsInRange) {
  TimerFixture src;
  constexpr int kKeys = 200;
  for (int i = 0; i < kKeys; ++i) {
    src.At(KeyName(i));
    src.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(1000 + i));
    src.timers.RegisterProcessingTimeTimer(Namespace{i, i}, Timestamp(5000 + i));
  }
  std::string snap;
  src.timers.Snapshot(snap);

  std::multiset<std::string> all_fired;
  size_t event_total = 0, processing_total = 0;
  for (int i = 0; i < 3; ++i) {
    TimerFixture dst(KeyGroupRangeForSubtask(kMaxPar, 3, i));
    ASSERT_TRUE(dst.timers.Restore(snap).ok());
    size_t expected = 0;
    for (int k = 0; k < kKeys; ++k) {
      expected += dst.backend.range().Contains(GroupOf(KeyName(k), kMaxPar)) ? 1 : 0;
    }
    EXPECT_EQ(dst.timers.num_event_timers(), expected);
    EXPECT_EQ(dst.timers.num_processing_timers(), expected);
    event_total += dst.timers.num_event_timers();
    processing_total += dst.timers.num_processing_timers();
    dst.timers.AdvanceWatermark(Watermark::Max());
    dst.pts.Advance(Timestamp(10'000));  // restored processing timers are scheduled
    for (const auto& s : dst.target.fired) {
      all_fired.insert(s);
      std::string key = s.substr(2, s.find('@') - 2);
      EXPECT_TRUE(dst.backend.range().Contains(GroupOf(key, kMaxPar))) << s;
    }
  }
  EXPECT_EQ(event_total, static_cast<size_t>(kKeys));
  EXPECT_EQ(processing_total, static_cast<size_t>(kKeys));
  EXPECT_EQ(all_fired.size(), 2u * kKeys);
  EXPECT_EQ(all_fired.count("e:" + KeyName(7) + "@1007"), 1u);
  EXPECT_EQ(all_fired.count("p:" + KeyName(7) + "@5007/7"), 1u);
}

TEST(TimerServiceTest, CorruptTimerSnapshotIsAnError) {
  TimerFixture src;
  src.At("a");
  src.timers.RegisterEventTimeTimer(Namespace::Void(), Timestamp(10));
  std::string snap;
  src.timers.Snapshot(snap);
  for (size_t len = 0; len < snap.size(); ++len) {
    TimerFixture dst;
    EXPECT_FALSE(dst.timers.Restore(std::string_view(snap).substr(0, len)).ok()) << len;
  }
  TimerFixture dst;
  EXPECT_FALSE(dst.timers.Restore("\x02" + snap.substr(1)).ok());
}

}  // namespace
}  // namespace eddy
