// Engine-core throughput benchmarks: records/s per core and peak RSS for the targets of the
// engine-core issue, each engine case next to a hand-written single-threaded C++ baseline doing the
// same computation, so that numbers can be quoted as ratios against a run in the same invocation.
//
//   ./build/bench/engine_bench                 all cases, 3 runs each, median reported
//   ./build/bench/engine_bench tumble          cases whose name contains "tumble"
//   ./build/bench/engine_bench --help          options
//
// Every run happens in a forked child so that ru_maxrss is the peak of that run alone; CPU time is
// getrusage(RUSAGE_SELF) user+sys of the child around the job (all its threads), so multi-threaded
// jobs are normalized to records per CPU-second ("per core"). What each case computes and why:
// bench/README.md. Published numbers and the profile: docs/performance.md.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eddy/control/local_executor.h"
#include "eddy/datastream.h"
#include "eddy/spec/job_spec.h"

namespace bench {

// ---- record types ----

/// 76 opaque bytes, so that Record holds 100 bytes of data (8 + 8 + 8 + 76; sizeof 104 with
/// padding).
struct Payload {
  std::array<char, 76> bytes{};
};

/// The benchmark record: a key, an event timestamp (ms), a value and a payload.
struct Record {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t value = 0;
  Payload payload;
};
static_assert(sizeof(Record) == 104, "Record: 100 bytes of fields plus alignment padding");

/// Accumulator of the window cases: count and sum of `value`.
struct Acc {
  int64_t count = 0;
  int64_t sum = 0;
};

/// What a window case emits per (key, window).
struct WindowResult {
  int64_t key = 0;
  int64_t start = 0;
  int64_t end = 0;
  int64_t count = 0;
  int64_t sum = 0;
};

}  // namespace bench

/// The payload is written as a length-prefixed byte string (77 bytes; a whole Record is ~85).
template <>
struct eddy::Serializer<bench::Payload> {
  static void Write(const bench::Payload& v, eddy::ByteWriter& w) {
    w.PutBytes(std::string_view(v.bytes.data(), v.bytes.size()));
  }
  static bool Read(eddy::ByteReader& r, bench::Payload& v) {
    std::string_view s = r.GetBytes();
    if (r.failed() || s.size() != v.bytes.size()) return false;
    std::memcpy(v.bytes.data(), s.data(), s.size());
    return true;
  }
};
EDDY_SERIALIZABLE(bench::Record, key, ts, value, payload);
EDDY_SERIALIZABLE(bench::Acc, count, sum);
EDDY_SERIALIZABLE(bench::WindowResult, key, start, end, count, sum);

namespace bench {

using eddy::Duration;
using eddy::Row;
using eddy::Timestamp;

// ---- workload definition (shared by engine cases and baselines) ----

/// The same finalizer as the job spec's hash() (splitmix64's), so typed and spec cases generate
/// identical keys.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/// Generator parameters: key = uniform in [0, keys) from hash(n); ts = n * ts_num / ts_den (ms).
struct Workload {
  int64_t keys = 100'000;
  int64_t ts_num = 1;
  int64_t ts_den = 100;
};

inline void Generate(const Workload& w, int64_t n, Record& r) {
  auto h = static_cast<int64_t>(Mix64(static_cast<uint64_t>(n)));
  r.key = ((h % w.keys) + w.keys) % w.keys;
  r.ts = n * w.ts_num / w.ts_den;
  r.value = n % 1000;
  std::memset(r.payload.bytes.data(), 'x', r.payload.bytes.size());
}

// (a): map -> filter -> map.
inline Record Map1(const Record& r) {
  Record o = r;
  o.value = r.value * 3 + 1;
  return o;
}
inline bool Keep(const Record& r) {
  return r.value % 2 == 0;
}
inline Record Map2(const Record& r) {
  Record o = r;
  o.value = r.value + r.key;
  return o;
}
inline uint64_t ChainChecksum(int64_t key, int64_t value) {
  return static_cast<uint64_t>(value) * 1000003ULL + static_cast<uint64_t>(key);
}
inline uint64_t WindowChecksum(const WindowResult& w) {
  uint64_t h = Mix64(static_cast<uint64_t>(w.sum));
  h = Mix64(h ^ static_cast<uint64_t>(w.count));
  h = Mix64(h ^ static_cast<uint64_t>(w.end));
  h = Mix64(h ^ static_cast<uint64_t>(w.start));
  return Mix64(h ^ static_cast<uint64_t>(w.key));
}

constexpr Duration kOutOfOrderness = Duration::Seconds(1);
constexpr int64_t kPayloadChars = 72;  // Row payload string: ~100 bytes per serialized Row

/// What a run produced: inputs consumed, outputs seen by the sink and an order-independent
/// checksum of the outputs (engine and baseline must agree).
struct RunOutput {
  bool ok = true;
  std::string error;
  int64_t records = 0;
  int64_t outputs = 0;
  uint64_t checksum = 0;
};

// ---- sinks ----

/// Totals of all sink subtasks of one run.
struct Totals {
  std::mutex mu;
  int64_t outputs = 0;
  uint64_t checksum = 0;
  void Add(int64_t n, uint64_t c) {
    std::lock_guard lock(mu);
    outputs += n;
    checksum += c;
  }
};

/// Per-subtask sink: counts and checksums locally, publishes at Finish (no shared write per
/// record).
template <class T, class H>
class ChecksumSink final : public eddy::SinkFunction<T> {
 public:
  ChecksumSink(std::shared_ptr<Totals> totals, H h)
      : totals_(std::move(totals)), h_(std::move(h)) {}
  void Invoke(const T& v, Timestamp) override {
    ++n_;
    sum_ += h_(v);
  }
  void Finish() override { totals_->Add(n_, sum_); }

 private:
  std::shared_ptr<Totals> totals_;
  H h_;
  int64_t n_ = 0;
  uint64_t sum_ = 0;
};

template <class T, class H>
std::function<std::shared_ptr<eddy::SinkFunction<T>>()> MakeSink(std::shared_ptr<Totals> totals,
                                                                 H h) {
  return [totals, h] { return std::make_shared<ChecksumSink<T, H>>(totals, h); };
}

RunOutput Execute(eddy::StreamExecutionEnvironment& env, const std::shared_ptr<Totals>& totals,
                  int64_t records) {
  eddy::control::LocalExecutor ex;
  eddy::control::JobResult r = ex.Execute(env.graph());
  RunOutput out;
  out.records = records;
  if (!r.status.ok()) {
    out.ok = false;
    out.error = r.status.ToString();
    return out;
  }
  out.outputs = totals->outputs;
  out.checksum = totals->checksum;
  return out;
}

// ---- typed C++ API cases ----

eddy::DataStream<Record> TypedSource(eddy::StreamExecutionEnvironment& env, const Workload& w,
                                     int64_t n, bool event_time) {
  env.SetParallelism(1);
  auto src = env.Generate<Record>([w](int64_t i, Record& r) { Generate(w, i, r); }, n);
  if (!event_time) return src;
  auto ws = eddy::WatermarkStrategy<Record>::ForBoundedOutOfOrderness(kOutOfOrderness)
                .WithTimestampAssigner([](const Record& r) { return Timestamp(r.ts); });
  return src.AssignTimestampsAndWatermarks(ws);
}

RunOutput TypedChain(const Workload& w, int64_t n) {
  eddy::StreamExecutionEnvironment env;
  auto totals = std::make_shared<Totals>();
  TypedSource(env, w, n, false)
      .Map([](const Record& r) { return Map1(r); })
      .Filter([](const Record& r) { return Keep(r); })
      .Map([](const Record& r) { return Map2(r); })
      .Sink("Checksum", MakeSink<Record>(
                            totals, [](const Record& r) { return ChainChecksum(r.key, r.value); }));
  return Execute(env, totals, n);
}

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

/// Adds key and window to the pre-aggregated result (Flink's aggregate + ProcessWindowFunction).
class ToWindowResult final : public eddy::ProcessWindowFunction<Acc, WindowResult> {
 public:
  void Process(eddy::WindowContext& ctx, const std::vector<Acc>& in,
               eddy::Collector<WindowResult>& out) override {
    const eddy::Window& w = ctx.window();
    out.Collect(WindowResult{ctx.CurrentKey<int64_t>(), w.start, w.end, in[0].count, in[0].sum});
  }
};

RunOutput TypedWindow(const Workload& w, int64_t n,
                      std::shared_ptr<const eddy::WindowAssigner<Record>> assigner) {
  eddy::StreamExecutionEnvironment env;
  auto totals = std::make_shared<Totals>();
  std::shared_ptr<const eddy::AggregateFunction<Record, Acc, Acc>> agg =
      std::make_shared<CountSum>();
  TypedSource(env, w, n, true)
      .KeyBy([](const Record& r) { return r.key; })
      .Window(std::move(assigner))
      .Aggregate<Acc, Acc, WindowResult>(agg, [] { return std::make_shared<ToWindowResult>(); })
      .Sink("Checksum", MakeSink<WindowResult>(
                            totals, [](const WindowResult& r) { return WindowChecksum(r); }));
  return Execute(env, totals, n);
}

// ---- job-spec (Row + expressions) cases ----

std::string SpecSource(const Workload& w, int64_t n, bool event_time) {
  std::string s;
  s += "sources:\n";
  s += "  - name: gen\n";
  s += "    generator:\n";
  s += "      count: " + std::to_string(n) + "\n";
  s += "      fields:\n";
  s += "        key: \"(hash(n) % " + std::to_string(w.keys) + " + " + std::to_string(w.keys) +
       ") % " + std::to_string(w.keys) + "\"\n";
  s += "        ts: \"n * " + std::to_string(w.ts_num) + " / " + std::to_string(w.ts_den) + "\"\n";
  s += "        v: \"n % 1000\"\n";
  s += "        payload: \"'" + std::string(kPayloadChars, 'x') + "'\"\n";
  if (event_time) {
    s += "    timestamp: ts\n";
    s += "    watermark: {maxOutOfOrderness: " + std::to_string(kOutOfOrderness.millis()) + "ms}\n";
  }
  return s;
}

/// Sums the checksum of Row outputs; field positions are resolved from the sink's schema.
struct RowChecksum {
  int key = -1, v = -1, n = -1, s = -1, start = -1, end = -1;
  bool window = false;
  uint64_t operator()(const Row& r) const {
    auto i64 = [&](int i) { return i < 0 ? int64_t{0} : r.Get(static_cast<size_t>(i)).AsInt(); };
    if (!window) return ChainChecksum(i64(key), i64(v));
    return WindowChecksum(WindowResult{i64(key), i64(start), i64(end), i64(n), i64(s)});
  }
};

RunOutput SpecJob(const std::string& yaml, int64_t n, bool window) {
  auto compiled = eddy::CompileJobSpec(yaml, "engine_bench.yaml");
  RunOutput out;
  if (!compiled.ok()) {
    out.ok = false;
    out.error = compiled.status().ToString();
    return out;
  }
  auto totals = std::make_shared<Totals>();
  // The spec's print sink is swapped for the counting sink: formatting output is not measured.
  for (auto& node : compiled->env->graph().mutable_nodes()) {
    if (!node.is_sink) continue;
    const eddy::Schema& schema = *node.out_type->schema();
    RowChecksum h{schema.IndexOf("key"),
                  schema.IndexOf("v"),
                  schema.IndexOf("n"),
                  schema.IndexOf("s"),
                  schema.IndexOf("window_start"),
                  schema.IndexOf("window_end"),
                  window};
    auto make = MakeSink<Row>(totals, h);
    node.factory = [make] {
      return std::make_unique<eddy::SinkOperator<Row, std::shared_ptr<eddy::SinkFunction<Row>>>>(
          make());
    };
  }
  return Execute(*compiled->env, totals, n);
}

RunOutput SpecChain(const Workload& w, int64_t n) {
  std::string y = "name: bench-chain\nparallelism: 1\ntime: processing\n" + SpecSource(w, n, false);
  y += "steps:\n";
  y += "  - {name: m1, from: gen, map: {key: key, ts: ts, v: \"v * 3 + 1\", payload: payload}}\n";
  y += "  - {name: f, from: m1, filter: \"v % 2 = 0\"}\n";
  y += "  - {name: m2, from: f, map: {key: key, ts: ts, v: \"v + key\", payload: payload}}\n";
  y += "sinks:\n  - {name: out, from: m2, print: {}}\n";
  return SpecJob(y, n, false);
}

RunOutput SpecWindow(const Workload& w, int64_t n, const std::string& window) {
  std::string y = "name: bench-window\nparallelism: 1\n" + SpecSource(w, n, true);
  y += "steps:\n";
  y += "  - name: agg\n    from: gen\n    keyBy: [key]\n    window: " + window + "\n";
  y += "    aggregate: {n: \"count()\", s: \"sum(v)\"}\n";
  y += "sinks:\n  - {name: out, from: agg, print: {}}\n";
  return SpecJob(y, n, true);
}

// ---- hand-written baselines: one thread, no engine, same results ----

RunOutput BaselineChain(const Workload& w, int64_t n) {
  RunOutput out;
  out.records = n;
  Record r;
  for (int64_t i = 0; i < n; ++i) {
    Generate(w, i, r);
    Record a = Map1(r);
    if (!Keep(a)) continue;
    Record b = Map2(a);
    ++out.outputs;
    out.checksum += ChainChecksum(b.key, b.value);
  }
  return out;
}

/// Aligned windows (tumbling, sliding) with a std::unordered_map per window start, fired when the
/// bounded-out-of-orderness watermark passes the window end, as the engine does.
RunOutput BaselineAligned(const Workload& w, int64_t n, int64_t size, int64_t slide) {
  RunOutput out;
  out.records = n;
  using Table = std::unordered_map<int64_t, Acc>;
  std::map<int64_t, Table> windows;  // by start
  std::vector<Table*> current;       // the size/slide windows of the current slide
  int64_t current_last_start = INT64_MIN;
  int64_t max_ts = INT64_MIN;
  auto fire = [&](int64_t start, const Table& t) {
    for (const auto& [key, acc] : t) {
      ++out.outputs;
      out.checksum += WindowChecksum(WindowResult{key, start, start + size, acc.count, acc.sum});
    }
  };
  Record r;
  for (int64_t i = 0; i < n; ++i) {
    Generate(w, i, r);
    int64_t last_start = eddy::WindowStart(r.ts, 0, slide);
    if (last_start != current_last_start) {
      current.clear();
      for (int64_t s = last_start; s > r.ts - size; s -= slide) current.push_back(&windows[s]);
      current_last_start = last_start;
    }
    for (Table* t : current) {
      Acc& a = (*t)[r.key];
      ++a.count;
      a.sum += r.value;
    }
    max_ts = std::max(max_ts, r.ts);
    int64_t wm = max_ts - kOutOfOrderness.millis() - 1;
    while (!windows.empty() && windows.begin()->first + size - 1 <= wm) {
      fire(windows.begin()->first, windows.begin()->second);
      windows.erase(windows.begin());
      current_last_start = INT64_MIN;  // a cached pointer may have died
    }
  }
  for (const auto& [start, t] : windows) fire(start, t);
  return out;
}

/// Sliding windows by panes (slices): one update per record into the pane of width `slide`, and a
/// running per-key total over the last size/slide panes that is emitted when a window fires (add
/// the newest complete pane, emit, subtract the oldest). Same outputs as the per-window
/// computation; shows what a slicing window operator could reach.
RunOutput BaselinePanes(const Workload& w, int64_t n, int64_t size, int64_t slide) {
  RunOutput out;
  out.records = n;
  using Table = std::unordered_map<int64_t, Acc>;
  std::map<int64_t, Table> panes;  // by pane start
  Table running;                   // per key: sum of the panes of the next window to fire
  Table* current = nullptr;
  int64_t current_start = INT64_MIN;
  int64_t next_end = INT64_MIN;    // end of the next window to fire
  int64_t added_upto = INT64_MIN;  // panes starting before this are in `running`
  int64_t max_ts = INT64_MIN;
  auto fire_until = [&](int64_t wm) {
    while (next_end != INT64_MIN && next_end - 1 <= wm && (!panes.empty() || !running.empty())) {
      for (auto it = panes.lower_bound(added_upto); it != panes.end() && it->first < next_end;
           ++it) {
        for (const auto& [key, a] : it->second) {
          Acc& r = running[key];
          r.count += a.count;
          r.sum += a.sum;
        }
      }
      added_upto = next_end;
      for (const auto& [key, a] : running) {
        ++out.outputs;
        out.checksum +=
            WindowChecksum(WindowResult{key, next_end - size, next_end, a.count, a.sum});
      }
      if (auto old = panes.find(next_end - size); old != panes.end()) {
        for (const auto& [key, a] : old->second) {
          auto r = running.find(key);
          r->second.count -= a.count;
          r->second.sum -= a.sum;
          if (r->second.count == 0) running.erase(r);
        }
        if (current == &old->second) current_start = INT64_MIN;
        panes.erase(old);
      }
      next_end += slide;
    }
  };
  Record r;
  for (int64_t i = 0; i < n; ++i) {
    Generate(w, i, r);
    int64_t start = eddy::WindowStart(r.ts, 0, slide);
    if (start != current_start) {
      current = &panes[start];
      current_start = start;
      if (next_end == INT64_MIN) next_end = start + slide;
    }
    Acc& a = (*current)[r.key];
    ++a.count;
    a.sum += r.value;
    max_ts = std::max(max_ts, r.ts);
    fire_until(max_ts - kOutOfOrderness.millis() - 1);
  }
  fire_until(INT64_MAX);
  return out;
}

/// Sessions per key in a std::unordered_map; a FIFO of (end, key) closes them when the watermark
/// passes their end (timestamps are monotonic, so the FIFO is ordered).
RunOutput BaselineSessions(const Workload& w, int64_t n, int64_t gap) {
  RunOutput out;
  out.records = n;
  struct Session {
    int64_t start, end, count, sum;
  };
  std::unordered_map<int64_t, Session> open;
  std::deque<std::pair<int64_t, int64_t>> expiry;  // (end, key)
  int64_t max_ts = INT64_MIN;
  auto emit = [&](int64_t key, const Session& s) {
    ++out.outputs;
    out.checksum += WindowChecksum(WindowResult{key, s.start, s.end, s.count, s.sum});
  };
  Record r;
  for (int64_t i = 0; i < n; ++i) {
    Generate(w, i, r);
    auto [it, inserted] = open.try_emplace(r.key, Session{r.ts, r.ts + gap, 0, 0});
    Session& s = it->second;
    if (!inserted &&
        r.ts > s.end) {  // windows [a, a+gap) merge when they touch (engine: Intersects)
      emit(r.key, s);
      s = Session{r.ts, r.ts + gap, 0, 0};
    }
    s.end = std::max(s.end, r.ts + gap);
    ++s.count;
    s.sum += r.value;
    expiry.emplace_back(s.end, r.key);
    max_ts = std::max(max_ts, r.ts);
    int64_t wm = max_ts - kOutOfOrderness.millis() - 1;
    while (!expiry.empty() && expiry.front().first - 1 <= wm) {
      auto [end, key] = expiry.front();
      expiry.pop_front();
      auto f = open.find(key);
      if (f != open.end() && f->second.end == end) {
        emit(key, f->second);
        open.erase(f);
      }
    }
  }
  for (const auto& [key, s] : open) emit(key, s);
  return out;
}

// ---- case registry ----

/// kBaseline: the group's hand-written loop, the denominator of "vs baseline". kReference: another
/// hand-written loop shown for comparison only (e.g. a different algorithm).
enum class Kind : uint8_t { kEngine, kBaseline, kReference };

struct Case {
  std::string name;   // "<group>/<variant>"
  std::string group;  // a-chain, b-tumbling, ...
  Kind kind;
  double target_per_core;  // records/s per core; 0 = none
  int64_t records;         // default input records
  std::function<RunOutput(int64_t)> run;
};

constexpr int64_t kTumbleMs = 10'000;
constexpr int64_t kSlideSizeMs = 60'000;
constexpr int64_t kSlideMs = 1'000;
constexpr int64_t kGapMs = 10'000;

// (a) 100k keys (unused), 100 records per event-time ms.
const Workload kChainWl{100'000, 1, 100};
// (b) 100k keys, 100 records/ms: 1M records per 10 s window, ~10 per key and window.
const Workload kTumbleWl{100'000, 1, 100};
// (c) 1k keys, 1 record/ms: ~1 record per key per 1 s slide, 60 windows per record; the window
//     state reaches its steady size (1k keys x 61 windows) after ~61k records (61 s event time).
const Workload kSlideWl{1'000, 1, 1};
// (d) 100k keys, 10 records/ms: a key's mean gap is 10 s = the session gap, so ~37% of gaps close
//     a session (sessions of ~2.7 records, ~17 s); steady state after ~300k records.
const Workload kSessionWl{100'000, 1, 10};

std::vector<Case> AllCases() {
  std::vector<Case> c;
  auto tumbling = [] {
    return eddy::TumblingEventTimeWindows<Record>(Duration::Millis(kTumbleMs));
  };
  auto sliding = [] {
    return eddy::SlidingEventTimeWindows<Record>(Duration::Millis(kSlideSizeMs),
                                                 Duration::Millis(kSlideMs));
  };
  auto session = [] { return eddy::EventTimeSessionWindows<Record>(Duration::Millis(kGapMs)); };
  const std::string kTumbleSpec = "{tumbling: " + std::to_string(kTumbleMs) + "ms}";
  const std::string kSlideSpec = "{sliding: {size: " + std::to_string(kSlideSizeMs) +
                                 "ms, slide: " + std::to_string(kSlideMs) + "ms}}";
  const std::string kSessionSpec = "{session: {gap: " + std::to_string(kGapMs) + "ms}}";

  c.push_back({"a-chain/typed", "a-chain", Kind::kEngine, 20e6, 120'000'000,
               [](int64_t n) { return TypedChain(kChainWl, n); }});
  c.push_back({"a-chain/spec", "a-chain", Kind::kEngine, 20e6, 20'000'000,
               [](int64_t n) { return SpecChain(kChainWl, n); }});
  c.push_back({"a-chain/baseline", "a-chain", Kind::kBaseline, 0, 600'000'000,
               [](int64_t n) { return BaselineChain(kChainWl, n); }});

  c.push_back({"b-tumbling/typed", "b-tumbling", Kind::kEngine, 5e6, 2'000'000,
               [tumbling](int64_t n) { return TypedWindow(kTumbleWl, n, tumbling()); }});
  c.push_back({"b-tumbling/spec", "b-tumbling", Kind::kEngine, 5e6, 1'500'000,
               [kTumbleSpec](int64_t n) { return SpecWindow(kTumbleWl, n, kTumbleSpec); }});
  c.push_back({"b-tumbling/baseline", "b-tumbling", Kind::kBaseline, 0, 20'000'000,
               [](int64_t n) { return BaselineAligned(kTumbleWl, n, kTumbleMs, kTumbleMs); }});

  c.push_back({"c-sliding/typed", "c-sliding", Kind::kEngine, 2e6, 80'000,
               [sliding](int64_t n) { return TypedWindow(kSlideWl, n, sliding()); }});
  c.push_back({"c-sliding/spec", "c-sliding", Kind::kEngine, 2e6, 60'000,
               [kSlideSpec](int64_t n) { return SpecWindow(kSlideWl, n, kSlideSpec); }});
  c.push_back({"c-sliding/baseline", "c-sliding", Kind::kBaseline, 0, 2'000'000,
               [](int64_t n) { return BaselineAligned(kSlideWl, n, kSlideSizeMs, kSlideMs); }});
  c.push_back({"c-sliding/baseline-panes", "c-sliding", Kind::kReference, 0, 40'000'000,
               [](int64_t n) { return BaselinePanes(kSlideWl, n, kSlideSizeMs, kSlideMs); }});

  c.push_back({"d-session/typed", "d-session", Kind::kEngine, 0, 800'000,
               [session](int64_t n) { return TypedWindow(kSessionWl, n, session()); }});
  c.push_back({"d-session/spec", "d-session", Kind::kEngine, 0, 500'000,
               [kSessionSpec](int64_t n) { return SpecWindow(kSessionWl, n, kSessionSpec); }});
  c.push_back({"d-session/baseline", "d-session", Kind::kBaseline, 0, 12'000'000,
               [](int64_t n) { return BaselineSessions(kSessionWl, n, kGapMs); }});
  return c;
}

// ---- measurement ----

/// One run's measurements, passed from the child through a pipe (plain data only).
struct Measurement {
  int ok = 0;
  char error[512] = {};
  int64_t records = 0;
  int64_t outputs = 0;
  uint64_t checksum = 0;
  double wall_s = 0;
  double cpu_s = 0;
  double user_s = 0;
  double sys_s = 0;
  int64_t maxrss_kib = 0;
};

double CpuSeconds(const rusage& ru, double* user = nullptr, double* sys = nullptr) {
  double u =
      static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
  double s =
      static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  if (user) *user = u;
  if (sys) *sys = s;
  return u + s;
}

Measurement Measure(const Case& c, int64_t records) {
  Measurement m;
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  auto t0 = std::chrono::steady_clock::now();
  RunOutput out = c.run(records);
  auto t1 = std::chrono::steady_clock::now();
  getrusage(RUSAGE_SELF, &after);
  double u0, s0, u1, s1;
  CpuSeconds(before, &u0, &s0);
  CpuSeconds(after, &u1, &s1);
  m.ok = out.ok ? 1 : 0;
  std::snprintf(m.error, sizeof(m.error), "%s", out.error.c_str());
  m.records = out.records;
  m.outputs = out.outputs;
  m.checksum = out.checksum;
  m.wall_s = std::chrono::duration<double>(t1 - t0).count();
  m.user_s = u1 - u0;
  m.sys_s = s1 - s0;
  m.cpu_s = m.user_s + m.sys_s;
  m.maxrss_kib = after.ru_maxrss;
  return m;
}

/// Runs the case in a forked child so that ru_maxrss belongs to this run only.
Measurement MeasureInChild(const Case& c, int64_t records) {
  int fds[2];
  Measurement m;
  if (pipe(fds) != 0) {
    std::snprintf(m.error, sizeof(m.error), "pipe failed");
    return m;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    std::snprintf(m.error, sizeof(m.error), "fork failed");
    return m;
  }
  if (pid == 0) {
    close(fds[0]);
    Measurement r = Measure(c, records);
    const char* p = reinterpret_cast<const char*>(&r);
    size_t left = sizeof(r);
    while (left > 0) {
      ssize_t k = write(fds[1], p, left);
      if (k <= 0) _exit(2);
      p += k;
      left -= static_cast<size_t>(k);
    }
    _exit(0);
  }
  close(fds[1]);
  char* p = reinterpret_cast<char*>(&m);
  size_t got = 0;
  while (got < sizeof(m)) {
    ssize_t k = read(fds[0], p + got, sizeof(m) - got);
    if (k <= 0) break;
    got += static_cast<size_t>(k);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != sizeof(m)) {
    m = Measurement{};
    std::snprintf(m.error, sizeof(m.error), "child died (status %d)", status);
  }
  return m;
}

struct Options {
  std::vector<std::string> filters;
  int reps = 3;
  double scale = 1.0;
  int64_t records = 0;
  bool fork = true;
  bool check = true;
  bool list = false;
  bool csv = false;
};

void Usage() {
  std::printf(
      "usage: engine_bench [options] [filter...]\n"
      "  filter         run cases whose name contains any filter (e.g. tumble, typed, "
      "a-chain/spec)\n"
      "  --reps=N       runs per case, median reported (default 3)\n"
      "  --scale=X      multiply every case's record count by X (default 1)\n"
      "  --records=N    use N records for every selected case\n"
      "  --no-fork      run in this process (for profilers; peak RSS is then cumulative)\n"
      "  --no-check     skip the untimed baseline run that checks each engine case's outputs\n"
      "  --list         list cases and their default record counts\n"
      "  --csv          results as CSV on stdout instead of the Markdown table: one line per\n"
      "                 case, with the outputs' checksum (the banner goes to stderr)\n");
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage();
      return false;
    } else if (a.starts_with("--reps=")) {
      o.reps = std::max(1, std::atoi(argv[i] + 7));
    } else if (a.starts_with("--scale=")) {
      o.scale = std::atof(argv[i] + 8);
    } else if (a.starts_with("--records=")) {
      o.records = std::atoll(argv[i] + 10);
    } else if (a == "--no-fork") {
      o.fork = false;
    } else if (a == "--no-check") {
      o.check = false;
    } else if (a == "--list") {
      o.list = true;
    } else if (a == "--csv") {
      o.csv = true;
    } else if (a.starts_with("--")) {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      Usage();
      return false;
    } else {
      o.filters.emplace_back(a);
    }
  }
  return true;
}

std::string Rate(double r) {
  char b[32];
  if (r >= 1e6) {
    std::snprintf(b, sizeof(b), "%.2f M", r / 1e6);
  } else {
    std::snprintf(b, sizeof(b), "%.0f k", r / 1e3);
  }
  return b;
}

struct Summary {
  const Case* c = nullptr;
  std::vector<Measurement>
      in_order;  // runs in execution order (run r of every case ran back to back)
  Measurement median;
  double per_core_min = 0, per_core_max = 0;
  int runs = 0;
  bool consistent = true;  // every run produced the same outputs and checksum
};

}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  Options opt;
  if (!ParseArgs(argc, argv, opt)) return 1;
  std::vector<Case> cases = AllCases();
  if (opt.list) {
    for (const auto& c : cases)
      std::printf("%-22s %12" PRId64 " records\n", c.name.c_str(), c.records);
    return 0;
  }
  auto selected = [&](const Case& c) {
    if (opt.filters.empty()) return true;
    return std::any_of(opt.filters.begin(), opt.filters.end(),
                       [&](const std::string& f) { return c.name.find(f) != std::string::npos; });
  };

  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::fprintf(
      opt.csv ? stderr : stdout,
      "engine_bench: %d run(s) per case, median by records/s per core; %ld CPUs online; load "
      "average "
      "%.2f %.2f %.2f; g++ %s%s\n",
      opt.reps, sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2], __VERSION__,
#ifdef __OPTIMIZE__
      ", optimized"
#else
      ", NOT OPTIMIZED"
#endif
  );
  // Runs are interleaved (every case once, then every case again, ...) so that a change in the
  // machine's load hits engine cases and baselines alike instead of one case's runs.
  std::vector<const Case*> chosen;
  for (const auto& c : cases) {
    if (selected(c)) chosen.push_back(&c);
  }
  std::vector<std::vector<Measurement>> runs(chosen.size());
  for (int r = 0; r < opt.reps; ++r) {
    for (size_t i = 0; i < chosen.size(); ++i) {
      const Case& c = *chosen[i];
      int64_t n = opt.records > 0
                      ? opt.records
                      : static_cast<int64_t>(static_cast<double>(c.records) * opt.scale);
      Measurement m = opt.fork ? MeasureInChild(c, n) : Measure(c, n);
      std::fprintf(
          stderr,
          "  %-26s run %d: %s records, wall %.2f s, cpu %.2f s, %s/s per core, rss %.0f MiB%s%s\n",
          c.name.c_str(), r + 1, std::to_string(m.records).c_str(), m.wall_s, m.cpu_s,
          Rate(m.cpu_s > 0 ? static_cast<double>(m.records) / m.cpu_s : 0).c_str(),
          static_cast<double>(m.maxrss_kib) / 1024.0, m.ok ? "" : " FAILED: ", m.error);
      runs[i].push_back(m);
    }
  }
  std::vector<Summary> summaries;
  auto per_core = [](const Measurement& m) {
    return m.cpu_s > 0 ? static_cast<double>(m.records) / m.cpu_s : 0.0;
  };
  for (size_t i = 0; i < chosen.size(); ++i) {
    auto& rs = runs[i];
    Summary s;
    s.c = chosen[i];
    s.in_order = rs;
    s.runs = static_cast<int>(rs.size());
    for (const auto& m : rs) {
      if (!m.ok || m.outputs != rs[0].outputs || m.checksum != rs[0].checksum) s.consistent = false;
    }
    std::sort(rs.begin(), rs.end(),
              [&](const auto& a, const auto& b) { return per_core(a) < per_core(b); });
    s.median = rs[rs.size() / 2];
    s.per_core_min = per_core(rs.front());
    s.per_core_max = per_core(rs.back());
    summaries.push_back(s);
  }

  // Baseline per group, for ratios. Output check: the group's baseline is run once more (in a
  // child, untimed) with the engine case's record count, and must produce the same outputs.
  std::map<std::string, const Summary*> baseline;
  std::map<std::string, const Case*> baseline_case;
  for (const auto& s : summaries) {
    if (s.c->kind == Kind::kBaseline) baseline[s.c->group] = &s;
  }
  for (const auto& c : cases) {
    if (c.kind == Kind::kBaseline) baseline_case[c.group] = &c;
  }
  std::map<const Case*, Measurement> reference;
  for (const auto& s : summaries) {
    auto bc = baseline_case.find(s.c->group);
    if (!opt.check || s.c->kind == Kind::kBaseline || bc == baseline_case.end() || !s.median.ok)
      continue;
    reference[s.c] = opt.fork ? MeasureInChild(*bc->second, s.median.records)
                              : Measure(*bc->second, s.median.records);
  }
  if (opt.csv) {
    std::printf(
        "case,group,kind,records,wall_s,cpu_s,cores,records_per_s,records_per_core_s,"
        "best_per_core_s,spread_pct,peak_rss_kib,outputs,checksum,check\n");
  } else {
    std::printf(
        "\n| case | records | wall s | cpu s | cores | records/s | records/s/core | best/core | "
        "spread | peak RSS MiB | "
        "target/core | vs target | vs baseline | outputs |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  }
  int bad = 0;
  for (const auto& s : summaries) {
    const Measurement& m = s.median;
    double rate = m.wall_s > 0 ? static_cast<double>(m.records) / m.wall_s : 0;
    double pc = m.cpu_s > 0 ? static_cast<double>(m.records) / m.cpu_s : 0;
    double spread = pc > 0 ? (s.per_core_max - s.per_core_min) / pc * 100 : 0;
    std::string target = s.c->target_per_core > 0 ? Rate(s.c->target_per_core) : "-";
    char vs_target[32] = "-";
    if (s.c->target_per_core > 0)
      std::snprintf(vs_target, sizeof(vs_target), "%.3fx", pc / s.c->target_per_core);
    char vs_base[64] = "-";
    std::string check = s.consistent ? "ok" : "RUNS DIFFER";
    if (!m.ok) check = std::string("FAILED: ") + m.error;
    auto b = baseline.find(s.c->group);
    if (s.c->kind != Kind::kBaseline && b != baseline.end()) {
      // Paired: run r of this case against run r of the baseline (adjacent in time), median ratio
      // and range. Less sensitive to the machine's load drifting during the invocation.
      std::vector<double> ratios;
      const auto& br = b->second->in_order;
      for (size_t r = 0; r < s.in_order.size() && r < br.size(); ++r) {
        double e = per_core(s.in_order[r]), bb = per_core(br[r]);
        if (e > 0 && bb > 0) ratios.push_back(e / bb);
      }
      if (!ratios.empty()) {
        std::sort(ratios.begin(), ratios.end());
        std::snprintf(vs_base, sizeof(vs_base), "%.3fx (%.3f-%.3f)", ratios[ratios.size() / 2],
                      ratios.front(), ratios.back());
      }
    }
    if (auto ref = reference.find(s.c); ref != reference.end() && m.ok) {
      const Measurement& rm = ref->second;
      if (!rm.ok || rm.outputs != m.outputs || rm.checksum != m.checksum) {
        check = "MISMATCH vs baseline (" + std::to_string(rm.outputs) + " outputs)";
      } else if (s.consistent) {
        check = "= baseline";
      }
    }
    if (s.c->kind == Kind::kBaseline) std::snprintf(vs_base, sizeof(vs_base), "1x");
    if (check != "ok" && check != "= baseline") ++bad;
    if (opt.csv) {
      std::replace(check.begin(), check.end(), ',', ';');
      const char* kind = s.c->kind == Kind::kEngine     ? "engine"
                         : s.c->kind == Kind::kBaseline ? "baseline"
                                                        : "reference";
      std::printf("%s,%s,%s,%" PRId64 ",%.4f,%.4f,%.3f,%.1f,%.1f,%.1f,%.1f,%" PRId64 ",%" PRId64
                  ",%" PRIu64 ",%s\n",
                  s.c->name.c_str(), s.c->group.c_str(), kind, m.records, m.wall_s, m.cpu_s,
                  m.wall_s > 0 ? m.cpu_s / m.wall_s : 0, rate, pc, s.per_core_max, spread,
                  m.maxrss_kib, m.outputs, m.checksum, check.c_str());
      continue;
    }
    std::printf("| %s | %" PRId64
                " | %.2f | %.2f | %.2f | %s | %s | %s | %.0f%% | %.0f | %s | %s | %s | %" PRId64
                " %s |\n",
                s.c->name.c_str(), m.records, m.wall_s, m.cpu_s,
                m.wall_s > 0 ? m.cpu_s / m.wall_s : 0, Rate(rate).c_str(), Rate(pc).c_str(),
                Rate(s.per_core_max).c_str(), spread, static_cast<double>(m.maxrss_kib) / 1024.0,
                target.c_str(), vs_target, vs_base, m.outputs, check.c_str());
  }
  getloadavg(load, 3);
  if (opt.csv) {
    std::fprintf(stderr, "load average at the end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    return bad == 0 ? 0 : 2;
  }
  std::printf("\nload average at the end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  std::printf(
      "records/s/core = records / (user+sys CPU s of the process during the job), median run; "
      "best/core = the "
      "fastest run (interference only slows runs down); spread = (max-min)/median of the per-core "
      "rate over the "
      "runs; vs baseline = per-core rate / the group's hand-written loop's per-core rate, run r "
      "against run r, "
      "median (min-max) over the runs.\n");
  return bad == 0 ? 0 : 2;
}
