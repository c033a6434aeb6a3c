// Keyed state backends: what RocksDB costs against the heap backend, and what its checkpoints cost.
//
//   ./build/bench/state_bench                      both parts with the defaults (~1 min)
//   ./build/bench/state_bench --part=window        (a) only
//   ./build/bench/state_bench --part=checkpoint --state-mb=1024
//   ./build/bench/state_bench --help
//
// (a) window: a keyed 10 s tumbling event-time window counting and summing per key (engine_bench's
//     b-tumbling/typed job: 100-byte records, 100k keys, 100 records per ms) run through the local
//     executor with heap state and with RocksDB state, alternating, `--reps` times. Reports
//     records/s (wall), records per CPU-second (all threads of the process, RocksDB's background
//     threads included) and RocksDB / heap per CPU-second, run r against run r, median.
// (b) checkpoint: a RocksDB backend is filled with `--state-mb` MiB of ValueState<std::string>
//     (100-byte values that do not compress), compacted, and checkpointed to a file:// store in a
//     temporary folder: the first checkpoint uploads everything; then `--change` % of the keys get
//     new values and a second checkpoint, incremental on the first, uploads only new SST files;
//     for comparison a full (non-incremental) checkpoint of the same state and a canonical
//     savepoint. Reports the synchronous part (task thread: flush + hard-link checkpoint), the
//     upload (another thread in a job), uploaded and total bytes, and the restore of the
//     incremental checkpoint (download + open + checksum verification).
//
// Progress goes to stderr, the tables (Markdown) to stdout. Numbers: docs/performance.md.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "eddy/control/local_executor.h"
#include "eddy/datastream.h"
#include "eddy/proto/checkpoint.pb.h"
#include "eddy/state/keyed_state.h"
#include "eddy/storage/object_store.h"
#include "eddy/windowed_stream.h"

namespace bench {

struct Record {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t value = 0;
  std::array<char, 76> payload{};
};
struct Acc {
  int64_t count = 0;
  int64_t sum = 0;
};
struct WindowResult {
  int64_t key = 0;
  int64_t start = 0;
  int64_t count = 0;
  int64_t sum = 0;
};

}  // namespace bench

template <>
struct eddy::Serializer<std::array<char, 76>> {
  static void Write(const std::array<char, 76>& v, eddy::ByteWriter& w) {
    w.PutBytes(std::string_view(v.data(), v.size()));
  }
  static bool Read(eddy::ByteReader& r, std::array<char, 76>& v) {
    std::string_view s = r.GetBytes();
    if (r.failed() || s.size() != v.size()) return false;
    std::memcpy(v.data(), s.data(), s.size());
    return true;
  }
};
EDDY_SERIALIZABLE(bench::Record, key, ts, value, payload);
EDDY_SERIALIZABLE(bench::Acc, count, sum);
EDDY_SERIALIZABLE(bench::WindowResult, key, start, count, sum);

namespace bench {

namespace fs = std::filesystem;
using eddy::Duration;
using eddy::StateBackendKind;
using eddy::Timestamp;

struct Options {
  std::string part = "all";
  /// (a) only: run just this backend (for profilers); empty = both.
  std::string only;
  int reps = 3;
  int64_t records = 2'000'000;
  int64_t keys = 100'000;
  int64_t state_mb = 64;
  double change_pct = 1.0;
  std::string dir;
};

uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string Rate(double r) {
  char b[32];
  if (r >= 1e6) {
    std::snprintf(b, sizeof b, "%.2f M", r / 1e6);
  } else {
    std::snprintf(b, sizeof b, "%.0f k", r / 1e3);
  }
  return b;
}

std::string Bytes(uint64_t n) {
  char b[32];
  if (n >= (1ull << 30)) {
    std::snprintf(b, sizeof b, "%.2f GiB", static_cast<double>(n) / (1ull << 30));
  } else if (n >= (1ull << 20)) {
    std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(n) / (1ull << 20));
  } else {
    std::snprintf(b, sizeof b, "%.1f KiB", static_cast<double>(n) / 1024);
  }
  return b;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// ---- (a) window aggregation, heap vs RocksDB ----

class CountSum final : public eddy::AggregateFunction<Record, Acc, Acc> {
 public:
  Acc CreateAccumulator() const override { return {}; }
  void Add(const Record& v, Acc& acc) const override {
    ++acc.count;
    acc.sum += v.value;
  }
  Acc GetResult(const Acc& acc) const override { return acc; }
  void Merge(Acc& a, const Acc& b) const override {
    a.count += b.count;
    a.sum += b.sum;
  }
};

class ToResult final : public eddy::ProcessWindowFunction<Acc, WindowResult> {
 public:
  void Process(eddy::WindowContext& ctx, const std::vector<Acc>& in,
               eddy::Collector<WindowResult>& out) override {
    out.Collect(
        WindowResult{ctx.CurrentKey<int64_t>(), ctx.window().start, in[0].count, in[0].sum});
  }
};

struct WindowRun {
  bool ok = false;
  std::string error;
  double wall = 0;
  double cpu = 0;
  int64_t outputs = 0;
  uint64_t checksum = 0;
};

WindowRun RunWindow(const Options& o, StateBackendKind kind) {
  eddy::StreamExecutionEnvironment env;
  env.SetParallelism(1);
  struct Totals {
    std::mutex mu;
    int64_t n = 0;
    uint64_t sum = 0;
  };
  auto totals = std::make_shared<Totals>();
  const int64_t keys = o.keys;
  auto src = env.Generate<Record>(
      [keys](int64_t i, Record& r) {
        auto h = static_cast<int64_t>(Mix64(static_cast<uint64_t>(i)));
        r.key = ((h % keys) + keys) % keys;
        r.ts = i / 100;
        r.value = i % 1000;
        std::memset(r.payload.data(), 'x', r.payload.size());
      },
      o.records);
  auto ws = eddy::WatermarkStrategy<Record>::ForBoundedOutOfOrderness(Duration::Seconds(1))
                .WithTimestampAssigner([](const Record& r) { return Timestamp(r.ts); });
  std::shared_ptr<const eddy::AggregateFunction<Record, Acc, Acc>> agg =
      std::make_shared<CountSum>();
  src.AssignTimestampsAndWatermarks(ws)
      .KeyBy([](const Record& r) { return r.key; })
      .Window(eddy::TumblingEventTimeWindows<Record>(Duration::Seconds(10)))
      .Aggregate<Acc, Acc, WindowResult>(agg, [] { return std::make_shared<ToResult>(); })
      .AddSink(
          [totals](const WindowResult& r, Timestamp) {
            std::lock_guard lock(totals->mu);
            ++totals->n;
            totals->sum += Mix64(static_cast<uint64_t>(r.key) ^
                                 Mix64(static_cast<uint64_t>(r.start + r.count * 7 + r.sum)));
          },
          "Checksum");
  eddy::control::LocalExecutorOptions eo;
  eo.task.state_backend = kind;
  eo.task.local_state_dir = o.dir;
  eddy::control::LocalExecutor ex(eo);
  double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  auto r = ex.Execute(env.graph());
  auto t1 = std::chrono::steady_clock::now();
  WindowRun out;
  out.cpu = CpuSeconds() - cpu0;
  out.wall = Seconds(t0, t1);
  out.ok = r.status.ok();
  out.error = r.status.ToString();
  out.outputs = totals->n;
  out.checksum = totals->sum;
  return out;
}

bool WindowPart(const Options& o) {
  std::vector<WindowRun> heap, rocks;
  for (int i = 0; i < o.reps; ++i) {
    for (auto kind : {StateBackendKind::kHeap, StateBackendKind::kRocksDB}) {
      if (!o.only.empty() && eddy::StateBackendKindName(kind) != o.only) continue;
      std::fprintf(stderr, "window: %s run %d/%d ...\n",
                   std::string(eddy::StateBackendKindName(kind)).c_str(), i + 1, o.reps);
      WindowRun r = RunWindow(o, kind);
      if (!r.ok) {
        std::fprintf(stderr, "failed: %s\n", r.error.c_str());
        return false;
      }
      (kind == StateBackendKind::kHeap ? heap : rocks).push_back(r);
    }
  }
  if (!o.only.empty()) {
    const auto& runs = heap.empty() ? rocks : heap;
    std::printf("%s: %s records/s/core\n", o.only.c_str(),
                Rate(static_cast<double>(o.records) / runs[0].cpu).c_str());
    return true;
  }
  bool same = true;
  for (const auto& r : rocks) {
    same = same && r.outputs == heap[0].outputs && r.checksum == heap[0].checksum;
  }
  std::printf("\n### (a) keyed 10 s tumbling window, count + sum: %" PRId64 " records, %" PRId64
              " keys, %d runs each\n\n",
              o.records, o.keys, o.reps);
  std::printf("| state backend | records/s | records/s/core | cores | vs heap (per core) |\n");
  std::printf("|---|---:|---:|---:|---|\n");
  std::vector<double> ratios;
  for (size_t i = 0; i < rocks.size(); ++i) {
    ratios.push_back((static_cast<double>(o.records) / rocks[i].cpu) /
                     (static_cast<double>(o.records) / heap[i].cpu));
  }
  for (auto* runs : {&heap, &rocks}) {
    std::vector<double> wall, core, cores;
    for (const auto& r : *runs) {
      wall.push_back(static_cast<double>(o.records) / r.wall);
      core.push_back(static_cast<double>(o.records) / r.cpu);
      cores.push_back(r.cpu / r.wall);
    }
    char vs[64];
    if (runs == &heap) {
      std::snprintf(vs, sizeof vs, "1x");
    } else {
      auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
      std::snprintf(vs, sizeof vs, "%.3fx (%.3f-%.3f)", Median(ratios), *lo, *hi);
    }
    std::printf("| %s | %s | %s | %.2f | %s |\n", runs == &heap ? "heap" : "rocksdb",
                Rate(Median(wall)).c_str(), Rate(Median(core)).c_str(), Median(cores), vs);
  }
  std::printf("\noutputs: %" PRId64 " windows, %s\n", heap[0].outputs,
              same ? "RocksDB = heap (count and checksum)" : "RocksDB DIFFERS from heap");
  return same;
}

// ---- (b) checkpoints of N MiB of RocksDB state ----

std::string Key(int64_t i) {
  std::string out;
  eddy::ByteWriter w(out);
  eddy::Serializer<int64_t>::Write(i, w);
  return out;
}

/// 100 bytes that do not compress.
void Value(int64_t key, int version, std::string& s) {
  s.resize(100);
  uint64_t x = Mix64(static_cast<uint64_t>(key) * 31 + static_cast<uint64_t>(version));
  for (size_t i = 0; i < s.size(); i += 8) {
    x = Mix64(x + i);
    std::memcpy(s.data() + i, &x, std::min<size_t>(8, s.size() - i));
  }
}

struct SnapshotCost {
  double sync_s = 0;
  double upload_s = 0;
  uint64_t uploaded = 0;
  uint64_t full = 0;
  size_t files = 0;
  eddy::proto::KeyedStateHandle handle;
};

bool TakeSnapshot(eddy::KeyedStateBackend& b, eddy::storage::ObjectStore& store, int64_t id,
                  bool incremental, bool savepoint, SnapshotCost* cost) {
  eddy::SnapshotTarget t;
  t.store = &store;
  t.checkpoint_id = eddy::CheckpointId(id);
  t.exclusive_prefix = "chk-" + std::to_string(id) + "/op-0-";
  t.shared_prefix = incremental ? "shared/op/" : "";
  t.savepoint = savepoint;
  auto t0 = std::chrono::steady_clock::now();
  auto upload = b.SnapshotAsync(t);
  auto t1 = std::chrono::steady_clock::now();
  if (!upload.ok()) {
    std::fprintf(stderr, "snapshot %" PRId64 ": %s\n", id, upload.status().ToString().c_str());
    return false;
  }
  auto h = (*upload)();
  auto t2 = std::chrono::steady_clock::now();
  if (!h.ok()) {
    std::fprintf(stderr, "upload %" PRId64 ": %s\n", id, h.status().ToString().c_str());
    return false;
  }
  cost->sync_s = Seconds(t0, t1);
  cost->upload_s = Seconds(t1, t2);
  cost->uploaded = h->checkpointed_size();
  cost->full = h->full_size();
  cost->files = static_cast<size_t>(h->files_size());
  cost->handle = *h;
  return true;
}

bool CheckpointPart(const Options& o) {
  const fs::path root = fs::path(o.dir.empty() ? fs::temp_directory_path().string() : o.dir) /
                        ("eddy-state-bench-" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto store_or = eddy::storage::OpenObjectStore("file://" + (root / "store").string());
  if (!store_or.ok()) {
    std::fprintf(stderr, "%s\n", store_or.status().ToString().c_str());
    return false;
  }
  auto& store = **store_or;
  auto b_or = eddy::RocksDBKeyedStateBackend::Make(128, eddy::KeyGroupRange{0, 127}, nullptr,
                                                   (root / "local").string());
  if (!b_or.ok()) {
    std::fprintf(stderr, "%s\n", b_or.status().ToString().c_str());
    return false;
  }
  auto& b = **b_or;
  auto* state = b.GetValueState(eddy::ValueStateDescriptor<std::string>{{"value", {}}});
  const int64_t bytes = o.state_mb << 20;
  std::string v;
  Value(0, 0, v);
  const int64_t per_entry = static_cast<int64_t>(Key(0).size() + v.size());
  const int64_t keys = bytes / per_entry;
  std::fprintf(stderr, "checkpoint: writing %" PRId64 " keys (%" PRId64 " MiB of keys+values)...\n",
               keys, o.state_mb);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < keys; ++i) {
    b.SetCurrentKey(Key(i));
    Value(i, 0, v);
    state->Update(v);
  }
  auto t1 = std::chrono::steady_clock::now();
  if (!b.CompactAll().ok()) return false;
  auto t2 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "checkpoint: written in %.1f s, compacted in %.1f s\n", Seconds(t0, t1),
               Seconds(t1, t2));

  SnapshotCost first, incremental, full, savepoint;
  std::fprintf(stderr, "checkpoint: 1 (everything)...\n");
  if (!TakeSnapshot(b, store, 1, true, false, &first)) return false;
  b.NotifyCheckpointComplete(eddy::CheckpointId(1));
  const auto step = static_cast<int64_t>(std::max(1.0, 100.0 / o.change_pct));
  int64_t changed = 0;
  for (int64_t i = 0; i < keys; i += step) {
    b.SetCurrentKey(
        Key(static_cast<int64_t>(Mix64(static_cast<uint64_t>(i)) % static_cast<uint64_t>(keys))));
    Value(i, 1, v);
    state->Update(v);
    ++changed;
  }
  std::fprintf(stderr, "checkpoint: 2 (incremental, %" PRId64 " keys changed)...\n", changed);
  if (!TakeSnapshot(b, store, 2, true, false, &incremental)) return false;
  std::fprintf(stderr, "checkpoint: 3 (full, same state)...\n");
  if (!TakeSnapshot(b, store, 3, false, false, &full)) return false;
  std::fprintf(stderr, "checkpoint: savepoint (canonical)...\n");
  if (!TakeSnapshot(b, store, 4, false, true, &savepoint)) return false;

  std::fprintf(stderr, "checkpoint: restoring checkpoint 2...\n");
  auto r0 = std::chrono::steady_clock::now();
  double restore_s = 0;
  {
    auto r = eddy::RocksDBKeyedStateBackend::Make(128, eddy::KeyGroupRange{0, 127}, nullptr,
                                                  (root / "restored").string());
    if (!r.ok() || !(*r)->RestoreFromHandles({incremental.handle}, store).ok()) {
      std::fprintf(stderr, "restore failed\n");
      return false;
    }
    restore_s = Seconds(r0, std::chrono::steady_clock::now());
    auto* rs = (*r)->GetValueState(eddy::ValueStateDescriptor<std::string>{{"value", {}}});
    (*r)->SetCurrentKey(Key(keys - 1));
    const std::string* got = rs->Get();
    if (got == nullptr) {
      std::fprintf(stderr, "restored state is missing a key\n");
      return false;
    }
  }

  std::printf("\n### (b) RocksDB checkpoints: %" PRId64 " MiB of state (%" PRId64 " keys x %" PRId64
              " bytes), %.1f%% of the keys changed between 1 and 2\n\n",
              o.state_mb, keys, per_entry, o.change_pct);
  std::printf("| snapshot | sync part (task thread) | upload | uploaded | total | files |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  auto row = [](const char* name, const SnapshotCost& c) {
    std::printf("| %s | %.0f ms | %.2f s | %s | %s | %zu |\n", name, c.sync_s * 1e3, c.upload_s,
                Bytes(c.uploaded).c_str(), Bytes(c.full).c_str(), c.files);
  };
  row("checkpoint 1 (first: everything)", first);
  row("checkpoint 2 (incremental)", incremental);
  row("checkpoint 3 (full, same state)", full);
  row("savepoint (canonical)", savepoint);
  std::printf(
      "\nincremental / full uploaded bytes: %.4f; restore of checkpoint 2 (download + "
      "open + verify): %.2f s\n",
      static_cast<double>(incremental.uploaded) / static_cast<double>(full.uploaded), restore_s);
  fs::remove_all(root);
  return true;
}

void Usage() {
  std::printf(
      "state_bench: keyed state backends (see the comment at the top of bench/state_bench.cc)\n"
      "  --part=all|window|checkpoint   which measurements (default all)\n"
      "  --reps=N           (a) runs per backend, alternating (default 3)\n"
      "  --only=heap|rocksdb  (a) run one backend only (for profilers)\n"
      "  --records=N        (a) records (default 2000000)\n"
      "  --keys=K           (a) distinct keys (default 100000)\n"
      "  --state-mb=M       (b) MiB of state to checkpoint (default 64)\n"
      "  --change=P         (b) percent of keys changed before the incremental checkpoint (1)\n"
      "  --dir=PATH         working directories and the file:// store (default $TMPDIR)\n");
}

}  // namespace bench

int main(int argc, char** argv) {
  bench::Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&](const char* flag) -> const char* {
      size_t n = std::strlen(flag);
      return a.compare(0, n, flag) == 0 ? a.c_str() + n : nullptr;
    };
    if (a == "--help" || a == "-h") {
      bench::Usage();
      return 0;
    } else if (const char* v = val("--part=")) {
      o.part = v;
    } else if (const char* v = val("--only=")) {
      o.only = v;
    } else if (const char* v = val("--reps=")) {
      o.reps = std::max(1, std::atoi(v));
    } else if (const char* v = val("--records=")) {
      o.records = std::atoll(v);
    } else if (const char* v = val("--keys=")) {
      o.keys = std::max<int64_t>(1, std::atoll(v));
    } else if (const char* v = val("--state-mb=")) {
      o.state_mb = std::max<int64_t>(1, std::atoll(v));
    } else if (const char* v = val("--change=")) {
      o.change_pct = std::clamp(std::atof(v), 0.001, 100.0);
    } else if (const char* v = val("--dir=")) {
      o.dir = v;
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      bench::Usage();
      return 1;
    }
  }
  bool ok = true;
  if (o.part == "all" || o.part == "window") ok = bench::WindowPart(o) && ok;
  if (o.part == "all" || o.part == "checkpoint") ok = bench::CheckpointPart(o) && ok;
  return ok ? 0 : 2;
}
