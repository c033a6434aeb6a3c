// The RocksDB keyed state backend beyond what the per-backend suites of state_test.cc cover: the
// working directory, the write-back slot cache, TTL by compaction filter, native checkpoints
// (incremental uploads, restore chains, rescaling 2 -> 3 -> 1), canonical savepoints across
// backends (heap <-> RocksDB), and corrupt or missing checkpoint files.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "eddy/control/local_executor.h"
#include "eddy/datastream.h"
#include "eddy/proto/checkpoint.pb.h"
#include "eddy/state/keyed_state.h"
#include "eddy/storage/object_store.h"
#include "tests/backend_test.h"
#include "tests/test_util.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;
using testing::MakeTestBackend;

constexpr int kMaxPar = 128;
const KeyGroupRange kAll{0, kMaxPar - 1};

std::string Key(const std::string& k) {
  std::string out;
  ByteWriter w(out);
  Serializer<std::string>::Write(k, w);
  return out;
}
std::string KeyName(int i) {
  return "key-" + std::to_string(i);
}
bool Owns(const KeyedStateBackend& b, int i) {
  return b.range().Contains(KeyGroupForKeyBytes(Key(KeyName(i)), kMaxPar));
}

/// ~100 bytes that do not compress away, different per key and version.
std::string Payload(int key, int version) {
  std::string s;
  uint64_t x = static_cast<uint64_t>(key) * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(version);
  for (int i = 0; i < 100; ++i) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    s.push_back(static_cast<char>('!' + x % 90));
  }
  return s;
}

using testing::FakeClock;
using testing::SumReduce;
class CountAgg final : public AggregateFunction<int64_t, std::pair<int64_t, int64_t>, int64_t> {
 public:
  std::pair<int64_t, int64_t> CreateAccumulator() const override { return {0, 0}; }
  void Add(const int64_t& v, std::pair<int64_t, int64_t>& acc) const override {
    acc.first += v;
    acc.second += 1;
  }
  int64_t GetResult(const std::pair<int64_t, int64_t>& acc) const override {
    return acc.first * 1000 + acc.second;
  }
  void Merge(std::pair<int64_t, int64_t>& a, const std::pair<int64_t, int64_t>& b) const override {
    a.first += b.first;
    a.second += b.second;
  }
};

/// One state of every kind (the value state with a TTL of one hour).
struct States {
  ValueState<std::string>* value;
  ListState<int64_t>* list;
  MapState<std::string, int64_t>* map;
  ReducingState<int64_t>* reducing;
  AggregatingState<int64_t, int64_t>* aggregating;
};

States Register(KeyedStateBackend& b) {
  StateTtlConfig hour;
  hour.ttl = Duration::Minutes(60);
  ReducingStateDescriptor<int64_t> rd;
  rd.name = "reducing";
  rd.reduce = std::make_shared<SumReduce>();
  AggregatingStateDescriptor<int64_t, std::pair<int64_t, int64_t>, int64_t> ad;
  ad.name = "aggregating";
  ad.aggregate = std::make_shared<CountAgg>();
  return {b.GetValueState(ValueStateDescriptor<std::string>{{"value", hour}}),
          b.GetListState(ListStateDescriptor<int64_t>{{"list", {}}}),
          b.GetMapState(MapStateDescriptor<std::string, int64_t>{{"map", {}}}),
          b.GetReducingState(rd), b.GetAggregatingState(ad)};
}

/// Writes key i's entries (version v) in namespaces Void and {i + 1, i}.
void Fill(KeyedStateBackend& b, States& s, int i, int v = 0) {
  b.SetCurrentKey(Key(KeyName(i)));
  for (Namespace ns : {Namespace::Void(), Namespace{i + 1, i}}) {
    s.value->SetNamespace(ns);
    s.list->SetNamespace(ns);
    s.map->SetNamespace(ns);
    s.reducing->SetNamespace(ns);
    s.aggregating->SetNamespace(ns);
    s.value->Update(Payload(i, v));
    s.list->Clear();
    for (int64_t e : {int64_t{i}, int64_t{v}, int64_t{-i}}) s.list->Add(e);
    s.map->Clear();
    s.map->Put("a" + std::to_string(i), i + v);
    s.map->Put("b", v);
    s.reducing->Clear();
    s.reducing->Add(i);
    s.reducing->Add(v);
    s.aggregating->Clear();
    s.aggregating->Add(i);
    s.aggregating->Add(v + 1);
  }
}

/// Checks what Fill(i, v) wrote; returns false (with failures recorded) if anything differs.
void Check(KeyedStateBackend& b, States& s, int i, int v = 0) {
  b.SetCurrentKey(Key(KeyName(i)));
  for (Namespace ns : {Namespace::Void(), Namespace{i + 1, i}}) {
    SCOPED_TRACE(KeyName(i) + " ns " + std::to_string(ns.a));
    s.value->SetNamespace(ns);
    s.list->SetNamespace(ns);
    s.map->SetNamespace(ns);
    s.reducing->SetNamespace(ns);
    s.aggregating->SetNamespace(ns);
    ASSERT_NE(s.value->Get(), nullptr);
    EXPECT_EQ(*s.value->Get(), Payload(i, v));
    ASSERT_NE(s.list->Get(), nullptr);
    EXPECT_EQ(*s.list->Get(), (std::vector<int64_t>{i, v, -i}));
    ASSERT_NE(s.map->Get("a" + std::to_string(i)), nullptr);
    EXPECT_EQ(*s.map->Get("a" + std::to_string(i)), i + v);
    ASSERT_NE(s.map->Get("b"), nullptr);
    EXPECT_EQ(*s.map->Get("b"), v);
    std::map<std::string, int64_t> all;
    s.map->ForEach([&](const std::string& k, const int64_t& x) { all[k] = x; });
    EXPECT_EQ(all.size(), 2u);
    ASSERT_NE(s.reducing->Get(), nullptr);
    EXPECT_EQ(*s.reducing->Get(), i + v);
    EXPECT_EQ(s.aggregating->Get(), std::optional<int64_t>((i + v + 1) * 1000 + 2));
  }
}

/// Entries per key written by Fill: 5 states x 2 namespaces.
constexpr size_t kEntriesPerKey = 10;

std::unique_ptr<RocksDBKeyedStateBackend> MakeRocks(KeyGroupRange range = kAll,
                                                    Clock clock = nullptr,
                                                    RocksDBStateOptions options = {}) {
  auto b = RocksDBKeyedStateBackend::Make(kMaxPar, range, std::move(clock),
                                          UniqueLocalStateDir("", "rocksdb-test"), options);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(*b) : nullptr;
}

class RocksDBStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("eddy-rocksdb-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto s = storage::OpenObjectStore("file://" + dir_.string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s.value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Takes checkpoint (or savepoint) `id` of `b` as subtask `tag` and runs the upload.
  proto::KeyedStateHandle Snapshot(KeyedStateBackend& b, int64_t id, const std::string& tag = "0",
                                   bool savepoint = false) {
    SnapshotTarget t;
    t.store = store_.get();
    t.checkpoint_id = CheckpointId(id);
    t.exclusive_prefix = (savepoint ? "sp-" : "chk-") + std::to_string(id) + "/op-" + tag + "-";
    t.shared_prefix = savepoint ? "" : "shared/op/";
    t.savepoint = savepoint;
    auto upload = b.SnapshotAsync(t);
    EXPECT_TRUE(upload.ok()) << upload.status().ToString();
    if (!upload.ok()) return {};
    auto h = (*upload)();
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : proto::KeyedStateHandle{};
  }
  static std::set<std::string> SharedKeys(const proto::KeyedStateHandle& h) {
    std::set<std::string> keys;
    for (const auto& f : h.files()) {
      if (f.shared()) keys.insert(f.key());
    }
    return keys;
  }
  fs::path PathOf(const std::string& key) const { return dir_ / key; }

  fs::path dir_;
  std::unique_ptr<storage::ObjectStore> store_;
};

// ---------------------------------------------------------------------------------------------
// Working directory, key layout, write-back cache
// ---------------------------------------------------------------------------------------------

TEST_F(RocksDBStateTest, OwnsItsLocalDirectory) {
  std::string dir = UniqueLocalStateDir((dir_ / "local").string(), "job/op 1");
  EXPECT_EQ(fs::path(dir).parent_path(), dir_ / "local");
  EXPECT_EQ(fs::path(dir).filename().string().find("job_op_1-"), 0u) << dir;
  EXPECT_NE(UniqueLocalStateDir((dir_ / "local").string(), "job/op 1"), dir) << "unique per call";
  {
    auto b = MakeKeyedStateBackend(StateBackendKind::kRocksDB, kMaxPar, kAll, nullptr, dir);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ((*b)->kind(), StateBackendKind::kRocksDB);
    EXPECT_TRUE(fs::exists(fs::path(dir) / "db" / "CURRENT"));
  }
  EXPECT_FALSE(fs::exists(dir)) << "removed with the backend";
  auto bad = MakeKeyedStateBackend(StateBackendKind::kRocksDB, kMaxPar, kAll, nullptr, "");
  EXPECT_FALSE(bad.ok());
}

TEST_F(RocksDBStateTest, DirectoriesOfDeadProcessesAreRemoved) {
  const fs::path base = dir_ / "sweep";
  // A pid that surely is not running: a child that has exited and been reaped.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  const std::string dead = std::to_string(child), self = std::to_string(::getpid());
  for (const std::string& name :
       {"job-op-" + dead + "-0", "job-op-" + dead + "-17", "job-op-" + self + "-3",
        std::string("job-op-1-0"), std::string("not-a-pid-x-0"), std::string("plain")}) {
    fs::create_directories(base / name / "db");
  }
  std::ofstream(base / ("job-op-" + dead + "-9")) << "a file, not a directory";
  EXPECT_EQ(RemoveStaleLocalStateDirs(base.string()), 2u);
  EXPECT_FALSE(fs::exists(base / ("job-op-" + dead + "-0")));
  EXPECT_FALSE(fs::exists(base / ("job-op-" + dead + "-17")));
  EXPECT_TRUE(fs::exists(base / ("job-op-" + self + "-3"))) << "this process";
  EXPECT_TRUE(fs::exists(base / "job-op-1-0")) << "pid 1 is alive";
  EXPECT_TRUE(fs::exists(base / "not-a-pid-x-0"));
  EXPECT_TRUE(fs::exists(base / "plain"));
  EXPECT_TRUE(fs::exists(base / ("job-op-" + dead + "-9")));
  EXPECT_EQ(RemoveStaleLocalStateDirs((dir_ / "missing").string()), 0u);
}

TEST_F(RocksDBStateTest, KeysStartWithTheKeyGroupAndSortNamespacesNumerically) {
  std::string a, b, c;
  RocksDBKeyedStateBackend::AppendStateKeyOf(KeyGroup(2), "k", Namespace{-5, 0}, a);
  RocksDBKeyedStateBackend::AppendStateKeyOf(KeyGroup(2), "k", Namespace{3, 0}, b);
  RocksDBKeyedStateBackend::AppendStateKeyOf(KeyGroup(258), "", Namespace{0, 0}, c);
  EXPECT_EQ(a.substr(0, 4), std::string("\x00\x02\x01k", 4));
  EXPECT_EQ(a.size(), 2u + 1 + 1 + 16);
  EXPECT_LT(a, b) << "namespace -5 sorts before 3";
  EXPECT_EQ(c.substr(0, 3), std::string("\x01\x02\x00", 3));
  EXPECT_LT(b, c) << "key group 2 before key group 258";
}

TEST_F(RocksDBStateTest, MutableReferencesAreWrittenBack) {
  auto b = MakeRocks();
  auto* v = b->GetValueState(ValueStateDescriptor<int64_t>{{"v", {}}});
  auto* l = b->GetListState(ListStateDescriptor<std::string>{{"l", {}}});
  b->SetCurrentKey(Key("a"));
  v->GetOrCreate() += 5;
  l->GetMutable()->push_back("x");
  b->SetCurrentKey(Key("b"));
  v->GetOrCreate() += 7;
  l->Add("y");
  b->SetCurrentKey(Key("a"));
  EXPECT_EQ(v->Value(), 5);
  EXPECT_EQ(*l->Get(), std::vector<std::string>{"x"});
  // Mutate, then snapshot without touching the state again: the snapshot sees the mutation.
  v->GetOrCreate() = 42;
  l->GetMutable()->push_back("z");
  std::string snap;
  ASSERT_TRUE(b->Snapshot(snap).ok());
  auto heap = MakeTestBackend(kMaxPar, kAll, nullptr, StateBackendKind::kHeap);
  ASSERT_TRUE(heap->Restore(snap).ok());
  auto* hv = heap->GetValueState(ValueStateDescriptor<int64_t>{{"v", {}}});
  auto* hl = heap->GetListState(ListStateDescriptor<std::string>{{"l", {}}});
  heap->SetCurrentKey(Key("a"));
  EXPECT_EQ(hv->Value(), 42);
  EXPECT_EQ(*hl->Get(), (std::vector<std::string>{"x", "z"}));
  heap->SetCurrentKey(Key("b"));
  EXPECT_EQ(hv->Value(), 7);
  EXPECT_EQ(*hl->Get(), std::vector<std::string>{"y"});
  EXPECT_EQ(b->NumEntries(), 4u);
  EXPECT_TRUE(b->error().ok()) << b->error().ToString();
}

TEST_F(RocksDBStateTest, ListAppendsAreMergedAcrossFlushes) {
  auto b = MakeRocks();
  auto* l = b->GetListState(ListStateDescriptor<int64_t>{{"l", {}}});
  std::vector<int64_t> expected;
  for (int round = 0; round < 3; ++round) {
    for (int64_t i = 0; i < 50; ++i) {
      // Alternate keys so that every Add is a blind merge, not a cached append.
      b->SetCurrentKey(Key("other"));
      l->Add(-1);
      b->SetCurrentKey(Key("k"));
      l->Add(round * 100 + i);
      expected.push_back(round * 100 + i);
    }
    ASSERT_TRUE(b->CompactAll().ok());
  }
  b->SetCurrentKey(Key("k"));
  ASSERT_NE(l->Get(), nullptr);
  EXPECT_EQ(*l->Get(), expected);
  b->SetCurrentKey(Key("other"));
  EXPECT_EQ(l->Get()->size(), 150u);
}

TEST_F(RocksDBStateTest, ForEachKeyVisitsEveryKeyOnceAndMayClear) {
  auto b = MakeRocks();
  auto* m = b->GetMapState(MapStateDescriptor<int64_t, int64_t>{{"m", {}}});
  for (int i = 0; i < 100; ++i) {
    b->SetCurrentKey(Key(KeyName(i)));
    for (int64_t k = 0; k < 3; ++k) m->Put(k, i);
    m->SetNamespace({1, 1});
    m->Put(0, 0);
    m->SetNamespace(Namespace::Void());
  }
  EXPECT_EQ(b->NumEntries(), 200u) << "map state counts (key, namespace) pairs";
  b->SetCurrentKey(Key("current"));
  std::set<std::string> seen;
  b->ForEachKey("m", Namespace::Void(), [&] {
    EXPECT_TRUE(seen.insert(b->current_key()).second) << "each key once";
    m->Clear();
  });
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(b->current_key(), Key("current")) << "the current key is restored";
  EXPECT_EQ(b->NumEntries(), 100u) << "only namespace {1, 1} is left";
}

/// Counts per key in keyed state and, in Open, records the RocksDB working directories it sees.
class CountingProbe final : public KeyedProcessFunction<int64_t, int64_t, int64_t> {
 public:
  explicit CountingProbe(fs::path local) : local_(std::move(local)) {}
  Status Open(RuntimeContext& rc) override {
    count_ = rc.GetState(ValueStateDescriptor<int64_t>{{"count", {}}});
    std::lock_guard lock(Mu());
    for (const auto& e : fs::directory_iterator(local_)) {
      if (fs::exists(e.path() / "db" / "CURRENT")) Dirs().insert(e.path().filename().string());
    }
    return Status::Ok();
  }
  void ProcessElement(const int64_t&, ProcessContext&, Collector<int64_t>& out) override {
    out.Collect(++count_->GetOrCreate());
  }
  static std::mutex& Mu() {
    static std::mutex mu;
    return mu;
  }
  static std::set<std::string>& Dirs() {
    static std::set<std::string> dirs;
    return dirs;
  }

 private:
  fs::path local_;
  ValueState<int64_t>* count_ = nullptr;
};

TEST_F(RocksDBStateTest, TasksKeepTheirDatabasesUnderTheLocalStateDir) {
  const fs::path local = dir_ / "local-state";
  fs::create_directories(local);
  StreamExecutionEnvironment env;
  env.SetJobName("dirs");
  env.SetParallelism(2);
  std::vector<int64_t> data;
  for (int64_t i = 0; i < 100; ++i) data.push_back(i);
  auto counts = env.FromCollection(data)
                    .KeyBy([](const int64_t& v) { return v % 10; })
                    .Process<int64_t>([local] { return std::make_shared<CountingProbe>(local); });
  auto out = testing::CollectInto(counts);
  control::LocalExecutorOptions options;
  options.task.state_backend = StateBackendKind::kRocksDB;
  options.task.local_state_dir = local.string();
  control::LocalExecutor ex(options);
  auto r = ex.Execute(env.graph());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  auto got = out->sorted();
  EXPECT_EQ(got.size(), 100u);
  EXPECT_EQ(std::count(got.begin(), got.end(), 10), 10) << "every key counted to 10";
  std::lock_guard lock(CountingProbe::Mu());
  EXPECT_FALSE(CountingProbe::Dirs().empty());
  for (const auto& d : CountingProbe::Dirs()) EXPECT_TRUE(d.starts_with("dirs-")) << d;
  EXPECT_TRUE(fs::is_empty(local)) << "every task removed its working directory";
}

// ---------------------------------------------------------------------------------------------
// TTL
// ---------------------------------------------------------------------------------------------

TEST_F(RocksDBStateTest, CompactionFilterDropsExpiredEntriesWithoutAccess) {
  FakeClock clock;
  auto b = MakeRocks(kAll, clock.AsClock());
  StateTtlConfig ttl;
  ttl.ttl = Duration::Millis(100);
  auto* s = b->GetValueState(ValueStateDescriptor<int64_t>{{"v", ttl}});
  auto* keep = b->GetValueState(ValueStateDescriptor<int64_t>{{"keep", {}}});
  for (int i = 0; i < 500; ++i) {
    b->SetCurrentKey(Key(KeyName(i)));
    s->Update(i);
    keep->Update(i);
  }
  ASSERT_TRUE(b->CompactAll().ok());
  EXPECT_EQ(b->NumEntries(), 1000u);
  clock.now = 99;
  ASSERT_TRUE(b->CompactAll().ok());
  EXPECT_EQ(b->NumEntries(), 1000u) << "not expired yet";
  clock.now = 100;
  ASSERT_TRUE(b->CompactAll().ok());
  EXPECT_EQ(b->NumEntries(), 500u) << "the compaction filter dropped every expired entry";
}

TEST_F(RocksDBStateTest, MapStateExpiresPerEntry) {
  FakeClock clock;
  auto b = MakeRocks(kAll, clock.AsClock());
  StateTtlConfig ttl;
  ttl.ttl = Duration::Millis(100);
  auto* m = b->GetMapState(MapStateDescriptor<std::string, int64_t>{{"m", ttl}});
  b->SetCurrentKey(Key("a"));
  m->Put("old", 1);
  clock.now = 50;
  m->Put("new", 2);
  clock.now = 100;
  EXPECT_FALSE(m->Contains("old"));
  EXPECT_TRUE(m->Contains("new"));
  EXPECT_FALSE(m->IsEmpty());
  clock.now = 150;
  EXPECT_TRUE(m->IsEmpty());
  EXPECT_EQ(b->NumEntries(), 0u) << "reads delete what they find expired";
}

// ---------------------------------------------------------------------------------------------
// Native checkpoints
// ---------------------------------------------------------------------------------------------

TEST_F(RocksDBStateTest, CheckpointRoundTripOfEveryStateType) {
  auto b = MakeRocks();
  States s = Register(*b);
  for (int i = 0; i < 300; ++i) Fill(*b, s, i);
  auto h = Snapshot(*b, 1);
  EXPECT_EQ(h.format(), proto::KeyedStateHandle::ROCKSDB_NATIVE);
  EXPECT_EQ(h.key_group_start(), 0);
  EXPECT_EQ(h.key_group_end(), kMaxPar - 1);
  EXPECT_EQ(h.checkpointed_size(), h.full_size()) << "the first checkpoint uploads everything";
  bool manifest = false, sst = false;
  for (const auto& f : h.files()) {
    auto info = store_->Stat(f.key());
    ASSERT_TRUE(info.ok() && info->has_value()) << f.key();
    EXPECT_EQ((*info)->size, f.size());
    if (f.local_name().starts_with("MANIFEST")) {
      manifest = true;
      EXPECT_FALSE(f.shared());
      EXPECT_TRUE(f.key().starts_with("chk-1/op-0-")) << f.key();
    }
    if (f.local_name().ends_with(".sst")) {
      sst = true;
      EXPECT_TRUE(f.shared());
      EXPECT_TRUE(f.key().starts_with("shared/op/")) << f.key();
    }
  }
  EXPECT_TRUE(manifest && sst);
  for (const auto& e : fs::directory_iterator(b->local_dir())) {
    EXPECT_FALSE(e.path().filename().string().starts_with("chk-"))
        << "the local checkpoint directory is removed after the upload";
  }

  for (bool register_first : {false, true}) {
    SCOPED_TRACE(register_first);
    auto r = MakeRocks();
    States rs;
    if (register_first) rs = Register(*r);
    ASSERT_TRUE(r->RestoreFromHandles({h}, *store_).ok());
    if (!register_first) rs = Register(*r);
    EXPECT_EQ(r->NumEntries(), 300 * kEntriesPerKey);
    for (int i = 0; i < 300; ++i) Check(*r, rs, i);
    EXPECT_TRUE(r->error().ok()) << r->error().ToString();
  }
}

TEST_F(RocksDBStateTest, IncrementalCheckpointsUploadOnlyNewFilesAndRestoreAsAChain) {
  constexpr int kKeys = 20000;
  auto b = MakeRocks();
  auto* s = b->GetValueState(ValueStateDescriptor<std::string>{{"v", {}}});
  for (int i = 0; i < kKeys; ++i) {
    b->SetCurrentKey(Key(KeyName(i)));
    s->Update(Payload(i, 0));
  }
  ASSERT_TRUE(b->CompactAll().ok());  // one sorted run: the next flush adds a file next to it
  auto h1 = Snapshot(*b, 1);
  EXPECT_EQ(h1.checkpointed_size(), h1.full_size());
  EXPECT_GT(h1.full_size(), 1u << 20);
  b->NotifyCheckpointComplete(CheckpointId(1));

  // ~1% of the keys change.
  auto change = [&](int version, int offset) {
    for (int i = offset; i < kKeys; i += 100) {
      b->SetCurrentKey(Key(KeyName(i)));
      s->Update(Payload(i, version));
    }
  };
  change(2, 0);
  auto h2 = Snapshot(*b, 2);
  std::set<std::string> k1 = SharedKeys(h1), k2 = SharedKeys(h2);
  EXPECT_LT(h2.checkpointed_size() * 10, h2.full_size())
      << "uploaded " << h2.checkpointed_size() << " of " << h2.full_size() << " bytes";
  for (const auto& k : k1) EXPECT_TRUE(k2.count(k)) << k << " of checkpoint 1 is referenced again";
  size_t fresh = 0;
  uint64_t fresh_bytes = 0;
  for (const auto& f : h2.files()) {
    if (f.shared() && !k1.count(f.key())) {
      ++fresh;
      fresh_bytes += f.size();
    }
  }
  EXPECT_GE(fresh, 1u) << "the changed keys are in a new SST file";
  EXPECT_LE(fresh_bytes, h2.checkpointed_size());
  b->NotifyCheckpointComplete(CheckpointId(2));

  // A checkpoint that is aborted is not a base: checkpoint 4 uploads what 3 uploaded again.
  change(3, 1);
  auto h3 = Snapshot(*b, 3);
  b->NotifyCheckpointAborted(CheckpointId(3));
  change(4, 2);
  auto h4 = Snapshot(*b, 4);
  std::set<std::string> k3 = SharedKeys(h3), k4 = SharedKeys(h4);
  for (const auto& k : k2) EXPECT_TRUE(k4.count(k)) << "checkpoint 2's files are reused";
  for (const auto& k : k3) {
    if (!k2.count(k)) {
      EXPECT_FALSE(k4.count(k)) << "aborted checkpoint 3's new file " << k;
    }
  }
  EXPECT_LT(h4.checkpointed_size() * 10, h4.full_size());
  b->NotifyCheckpointComplete(CheckpointId(4));

  // Restore the chain ends: checkpoint 2 (files of 1 and 2) and 4 (files of 1, 2 and 4).
  for (auto [h, versions] : {std::pair{&h2, 2}, std::pair{&h4, 4}}) {
    SCOPED_TRACE(versions);
    auto r = MakeRocks();
    ASSERT_TRUE(r->RestoreFromHandles({*h}, *store_).ok());
    auto* rs = r->GetValueState(ValueStateDescriptor<std::string>{{"v", {}}});
    for (int i = 0; i < kKeys; ++i) {
      int v = 0;
      if (i % 100 == 0) v = 2;
      if (versions >= 4 && i % 100 == 1) v = 3;
      if (versions >= 4 && i % 100 == 2) v = 4;
      r->SetCurrentKey(Key(KeyName(i)));
      ASSERT_NE(rs->Get(), nullptr) << i;
      ASSERT_EQ(*rs->Get(), Payload(i, v)) << i;
    }
    // A restored backend's first checkpoint references the restored files.
    auto next = Snapshot(*r, 10, "restored");
    std::set<std::string> restored = SharedKeys(*h);
    for (const auto& k : restored) EXPECT_TRUE(SharedKeys(next).count(k)) << k;
    EXPECT_LT(next.checkpointed_size() * 10, next.full_size());
  }
}

TEST_F(RocksDBStateTest, RescaleTwoToThreeToOne) {
  constexpr int kKeys = 2000;
  std::vector<proto::KeyedStateHandle> two;
  size_t total = 0;
  for (int i = 0; i < 2; ++i) {
    auto b = MakeRocks(KeyGroupRangeForSubtask(kMaxPar, 2, i));
    States s = Register(*b);
    for (int k = 0; k < kKeys; ++k) {
      if (Owns(*b, k)) Fill(*b, s, k);
    }
    total += b->NumEntries();
    two.push_back(Snapshot(*b, 1, "two-" + std::to_string(i)));
  }
  EXPECT_EQ(total, kKeys * kEntriesPerKey);

  std::vector<proto::KeyedStateHandle> three;
  size_t restored = 0;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    auto b = MakeRocks(KeyGroupRangeForSubtask(kMaxPar, 3, i));
    ASSERT_TRUE(b->RestoreFromHandles(two, *store_).ok());
    States s = Register(*b);
    size_t mine = 0;
    for (int k = 0; k < kKeys; ++k) {
      if (!Owns(*b, k)) continue;
      ++mine;
      Check(*b, s, k);
    }
    EXPECT_EQ(b->NumEntries(), mine * kEntriesPerKey) << "only the key groups of its range";
    restored += b->NumEntries();
    // Change the keys of this subtask so the next step restores new data.
    for (int k = 0; k < kKeys; ++k) {
      if (Owns(*b, k)) Fill(*b, s, k, 1);
    }
    three.push_back(Snapshot(*b, 2, "three-" + std::to_string(i)));
  }
  EXPECT_EQ(restored, total) << "the union is the original, no entry twice";

  auto one = MakeRocks();
  ASSERT_TRUE(one->RestoreFromHandles(three, *store_).ok());
  States s = Register(*one);
  EXPECT_EQ(one->NumEntries(), total);
  for (int k = 0; k < kKeys; ++k) Check(*one, s, k, 1);
  EXPECT_TRUE(one->error().ok()) << one->error().ToString();
}

// ---------------------------------------------------------------------------------------------
// Canonical savepoints across backends
// ---------------------------------------------------------------------------------------------

TEST_F(RocksDBStateTest, HeapSnapshotRestoresIntoRocksDBAndBack) {
  FakeClock clock;
  clock.now = 1000;
  auto heap = MakeTestBackend(kMaxPar, kAll, clock.AsClock(), StateBackendKind::kHeap);
  States hs = Register(*heap);
  for (int i = 0; i < 200; ++i) Fill(*heap, hs, i);
  std::string heap_snap;
  ASSERT_TRUE(heap->Snapshot(heap_snap).ok());

  // heap -> RocksDB, registering before and after the restore.
  for (bool register_first : {false, true}) {
    SCOPED_TRACE(register_first);
    auto r = MakeRocks(kAll, clock.AsClock());
    States rs;
    if (register_first) rs = Register(*r);
    ASSERT_TRUE(r->Restore(heap_snap).ok());
    if (!register_first) rs = Register(*r);
    EXPECT_TRUE(r->restore_error().ok()) << r->restore_error().ToString();
    EXPECT_EQ(r->NumEntries(), heap->NumEntries());
    for (int i = 0; i < 200; ++i) Check(*r, rs, i);
  }

  // RocksDB savepoint (canonical, written on the upload thread) -> heap.
  auto r = MakeRocks(kAll, clock.AsClock());
  ASSERT_TRUE(r->Restore(heap_snap).ok());
  Register(*r);
  auto sp = Snapshot(*r, 7, "0", /*savepoint=*/true);
  EXPECT_EQ(sp.format(), proto::KeyedStateHandle::CANONICAL);
  for (const auto& f : sp.files()) EXPECT_FALSE(f.shared());
  auto heap2 = MakeTestBackend(kMaxPar, kAll, clock.AsClock(), StateBackendKind::kHeap);
  ASSERT_TRUE(heap2->RestoreFromHandles({sp}, *store_).ok());
  States h2 = Register(*heap2);
  EXPECT_EQ(heap2->NumEntries(), heap->NumEntries());
  for (int i = 0; i < 200; ++i) Check(*heap2, h2, i);

  // The TTL timestamps travel too: the value state (1 h TTL) written at 1000 expires at 3601000.
  clock.now = 1000 + 3600 * 1000 - 1;
  heap2->SetCurrentKey(Key(KeyName(5)));
  h2.value->SetNamespace(Namespace::Void());
  EXPECT_NE(h2.value->Get(), nullptr);
  clock.now += 1;
  EXPECT_EQ(h2.value->Get(), nullptr);

  // The canonical bytes of the RocksDB backend are deterministic (key order), whoever wrote them.
  std::string a, b;
  ASSERT_TRUE(r->Snapshot(a).ok());
  auto r2 = MakeRocks(kAll, clock.AsClock());
  ASSERT_TRUE(r2->Restore(a).ok());
  Register(*r2);
  ASSERT_TRUE(r2->Snapshot(b).ok());
  EXPECT_EQ(a, b);
}

TEST_F(RocksDBStateTest, RestoredStateThatIsNeverRegisteredSurvivesACheckpoint) {
  auto heap = MakeTestBackend(kMaxPar, kAll, nullptr, StateBackendKind::kHeap);
  States hs = Register(*heap);
  for (int i = 0; i < 50; ++i) Fill(*heap, hs, i);
  std::string snap;
  ASSERT_TRUE(heap->Snapshot(snap).ok());
  auto r = MakeRocks();
  ASSERT_TRUE(r->Restore(snap).ok());  // nothing registered: kept as canonical sections
  auto h = Snapshot(*r, 1);            // native checkpoint carries them
  auto r2 = MakeRocks(KeyGroupRangeForSubtask(kMaxPar, 2, 0));
  ASSERT_TRUE(r2->RestoreFromHandles({h}, *store_).ok());
  States s = Register(*r2);
  for (int i = 0; i < 50; ++i) {
    if (Owns(*r2, i)) Check(*r2, s, i);
  }
  EXPECT_TRUE(r2->restore_error().ok()) << r2->restore_error().ToString();
}

// ---------------------------------------------------------------------------------------------
// Corrupt and missing files
// ---------------------------------------------------------------------------------------------

TEST_F(RocksDBStateTest, MissingOrCorruptFilesFailTheRestoreCleanly) {
  auto b = MakeRocks();
  States s = Register(*b);
  for (int i = 0; i < 500; ++i) Fill(*b, s, i);
  auto h = Snapshot(*b, 1);
  const proto::StateFile* sst = nullptr;
  const proto::StateFile* manifest = nullptr;
  for (const auto& f : h.files()) {
    if (f.local_name().ends_with(".sst") && (!sst || f.size() > sst->size())) sst = &f;
    if (f.local_name().starts_with("MANIFEST")) manifest = &f;
  }
  ASSERT_TRUE(sst && manifest);
  auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto write = [](const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
  };
  const std::string sst_bytes = read(PathOf(sst->key()));
  const std::string manifest_bytes = read(PathOf(manifest->key()));

  // single: the downloaded checkpoint becomes the database; otherwise (a state is registered
  // already) its key groups are copied from a temporary download.
  auto restore = [&](bool single) {
    auto r = MakeRocks();
    if (!single) r->GetValueState(ValueStateDescriptor<int64_t>{{"before", {}}});
    Status st = r->RestoreFromHandles({h}, *store_);
    // Whatever happened, the backend is still usable.
    auto* v = r->GetValueState(ValueStateDescriptor<int64_t>{{"after", {}}});
    r->SetCurrentKey(Key("x"));
    v->Update(1);
    EXPECT_EQ(v->Value(), 1);
    return st;
  };
  for (bool single : {true, false}) {
    SCOPED_TRACE(single ? "direct open" : "copy of key groups");
    // Missing.
    fs::remove(PathOf(sst->key()));
    Status st = restore(single);
    EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
    EXPECT_NE(st.message().find(store_->Uri(sst->key())), std::string::npos) << st.ToString();
    // Truncated.
    write(PathOf(sst->key()), sst_bytes.substr(0, sst_bytes.size() / 2));
    st = restore(single);
    EXPECT_EQ(st.code(), StatusCode::kParseError) << st.ToString();
    EXPECT_NE(st.message().find(store_->Uri(sst->key())), std::string::npos) << st.ToString();
    // Same size, flipped bytes in the middle (a data block).
    std::string bad = sst_bytes;
    for (size_t i = bad.size() / 3; i < bad.size() / 3 + 64; ++i)
      bad[i] = static_cast<char>(~bad[i]);
    write(PathOf(sst->key()), bad);
    st = restore(single);
    EXPECT_EQ(st.code(), StatusCode::kParseError) << st.ToString();
    EXPECT_NE(st.message().find(sst->local_name()), std::string::npos) << st.ToString();
    write(PathOf(sst->key()), sst_bytes);
    // A MANIFEST of zeros.
    write(PathOf(manifest->key()), std::string(manifest_bytes.size(), '\0'));
    st = restore(single);
    EXPECT_EQ(st.code(), StatusCode::kParseError) << st.ToString();
    write(PathOf(manifest->key()), manifest_bytes);
    // Intact again: restores.
    EXPECT_TRUE(restore(single).ok());
  }
}

}  // namespace
}  // namespace eddy
