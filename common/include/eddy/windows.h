#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "eddy/state/heap_backend.h"
#include "eddy/state/state.h"
#include "eddy/types.h"

namespace eddy {

/// A window [start, end). The global window is [Min, Max). Windows are also the namespace of the
/// keyed state that holds their contents.
struct Window {
  int64_t start = 0;
  int64_t end = 0;
  static constexpr Window Global() {
    return {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  }
  /// The largest timestamp that still belongs to the window (end - 1).
  Timestamp max_timestamp() const {
    return Timestamp(end == std::numeric_limits<int64_t>::max() ? end : end - 1);
  }
  Namespace ns() const { return {start, end}; }
  static Window FromNamespace(Namespace n) { return {n.a, n.b}; }
  bool Intersects(const Window& o) const { return start <= o.end && end >= o.start; }
  Window Cover(const Window& o) const { return {std::min(start, o.start), std::max(end, o.end)}; }
  bool operator==(const Window&) const = default;
  auto operator<=>(const Window&) const = default;
};

/// Flink's TimeWindow.getWindowStartWithOffset: the start of the size-aligned window containing ts.
inline int64_t WindowStart(int64_t ts, int64_t offset, int64_t size) {
  int64_t r = (ts - offset) % size;
  if (r < 0) r += size;
  return ts - r;
}

enum class TriggerResult : uint8_t { kContinue, kFire, kPurge, kFireAndPurge };
inline bool IsFire(TriggerResult r) {
  return r == TriggerResult::kFire || r == TriggerResult::kFireAndPurge;
}
inline bool IsPurge(TriggerResult r) {
  return r == TriggerResult::kPurge || r == TriggerResult::kFireAndPurge;
}

/// What a trigger may do: look at time, set timers and keep per-window state.
class TriggerContext {
 public:
  virtual ~TriggerContext() = default;
  virtual Watermark current_watermark() = 0;
  virtual Timestamp current_processing_time() = 0;
  virtual void RegisterEventTimeTimer(Timestamp t) = 0;
  virtual void DeleteEventTimeTimer(Timestamp t) = 0;
  virtual void RegisterProcessingTimeTimer(Timestamp t) = 0;
  virtual void DeleteProcessingTimeTimer(Timestamp t) = 0;
  /// A counter-like int64 state scoped to the current key and window (created on first use).
  virtual ValueState<int64_t>* GetLongState(const std::string& name) = 0;
  /// During OnMerge: the windows being merged into the current one.
  virtual const std::vector<Window>& merged_windows() = 0;
};

/// Decides when a window is evaluated (fired) and when its contents are dropped (purged).
/// Instances are per operator subtask; per-window data belongs in TriggerContext state.
template <class T>
class Trigger {
 public:
  virtual ~Trigger() = default;
  virtual TriggerResult OnElement(const T& v, Timestamp ts, const Window& w,
                                  TriggerContext& ctx) = 0;
  virtual TriggerResult OnEventTime(Timestamp time, const Window& w, TriggerContext& ctx) = 0;
  virtual TriggerResult OnProcessingTime(Timestamp time, const Window& w, TriggerContext& ctx) = 0;
  virtual bool CanMerge() const { return false; }
  virtual void OnMerge(const Window& w, TriggerContext& ctx) { (void)w, (void)ctx; }
  /// Removes timers and state the trigger holds for `w`.
  virtual void Clear(const Window& w, TriggerContext& ctx) = 0;
  virtual std::string name() const = 0;
};

/// Fires once the watermark passes the window's end (the default of event-time windows).
template <class T>
class EventTimeTrigger final : public Trigger<T> {
 public:
  TriggerResult OnElement(const T&, Timestamp, const Window& w, TriggerContext& ctx) override {
    if (w.max_timestamp() <= ctx.current_watermark()) return TriggerResult::kFire;  // late firing
    ctx.RegisterEventTimeTimer(w.max_timestamp());
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const Window& w, TriggerContext&) override {
    return time == w.max_timestamp() ? TriggerResult::kFire : TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  bool CanMerge() const override { return true; }
  void OnMerge(const Window& w, TriggerContext& ctx) override {
    if (w.max_timestamp() > ctx.current_watermark()) ctx.RegisterEventTimeTimer(w.max_timestamp());
  }
  void Clear(const Window& w, TriggerContext& ctx) override {
    ctx.DeleteEventTimeTimer(w.max_timestamp());
  }
  std::string name() const override { return "EventTimeTrigger"; }
};

/// Fires when processing time passes the window's end.
template <class T>
class ProcessingTimeTrigger final : public Trigger<T> {
 public:
  TriggerResult OnElement(const T&, Timestamp, const Window& w, TriggerContext& ctx) override {
    ctx.RegisterProcessingTimeTimer(w.max_timestamp());
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kFire;
  }
  bool CanMerge() const override { return true; }
  void OnMerge(const Window& w, TriggerContext& ctx) override {
    if (w.max_timestamp() > ctx.current_processing_time())
      ctx.RegisterProcessingTimeTimer(w.max_timestamp());
  }
  void Clear(const Window& w, TriggerContext& ctx) override {
    ctx.DeleteProcessingTimeTimer(w.max_timestamp());
  }
  std::string name() const override { return "ProcessingTimeTrigger"; }
};

/// Fires every `count` elements of a window.
template <class T>
class CountTrigger final : public Trigger<T> {
 public:
  explicit CountTrigger(int64_t count) : count_(count) {}
  TriggerResult OnElement(const T&, Timestamp, const Window&, TriggerContext& ctx) override {
    auto* s = ctx.GetLongState("count");
    int64_t& n = s->GetOrCreate();
    if (++n >= count_) {
      s->Clear();
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  bool CanMerge() const override { return true; }
  void OnMerge(const Window&, TriggerContext& ctx) override;
  void Clear(const Window&, TriggerContext& ctx) override { ctx.GetLongState("count")->Clear(); }
  std::string name() const override { return "CountTrigger(" + std::to_string(count_) + ")"; }

 private:
  int64_t count_;
};

/// Turns every FIRE of the inner trigger into FIRE_AND_PURGE.
template <class T>
class PurgingTrigger final : public Trigger<T> {
 public:
  explicit PurgingTrigger(std::unique_ptr<Trigger<T>> inner) : inner_(std::move(inner)) {}
  TriggerResult OnElement(const T& v, Timestamp ts, const Window& w, TriggerContext& ctx) override {
    return Purge(inner_->OnElement(v, ts, w, ctx));
  }
  TriggerResult OnEventTime(Timestamp t, const Window& w, TriggerContext& ctx) override {
    return Purge(inner_->OnEventTime(t, w, ctx));
  }
  TriggerResult OnProcessingTime(Timestamp t, const Window& w, TriggerContext& ctx) override {
    return Purge(inner_->OnProcessingTime(t, w, ctx));
  }
  bool CanMerge() const override { return inner_->CanMerge(); }
  void OnMerge(const Window& w, TriggerContext& ctx) override { inner_->OnMerge(w, ctx); }
  void Clear(const Window& w, TriggerContext& ctx) override { inner_->Clear(w, ctx); }
  std::string name() const override { return "PurgingTrigger(" + inner_->name() + ")"; }

 private:
  static TriggerResult Purge(TriggerResult r) {
    return IsFire(r) ? TriggerResult::kFireAndPurge : r;
  }
  std::unique_ptr<Trigger<T>> inner_;
};

/// Fires periodically in event time (every `interval` of watermark progress) and at window end.
template <class T>
class ContinuousEventTimeTrigger final : public Trigger<T> {
 public:
  explicit ContinuousEventTimeTrigger(Duration interval) : interval_(interval.millis()) {}
  TriggerResult OnElement(const T&, Timestamp ts, const Window& w, TriggerContext& ctx) override {
    if (w.max_timestamp() <= ctx.current_watermark()) return TriggerResult::kFire;
    ctx.RegisterEventTimeTimer(w.max_timestamp());
    auto* next = ctx.GetLongState("next-fire");
    if (!next->Get()) {
      int64_t start = ts.millis() - (((ts.millis() % interval_) + interval_) % interval_);
      int64_t t = std::min(start + interval_, w.max_timestamp().millis());
      next->Update(t);
      ctx.RegisterEventTimeTimer(Timestamp(t));
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const Window& w, TriggerContext& ctx) override {
    if (time == w.max_timestamp()) return TriggerResult::kFire;
    auto* next = ctx.GetLongState("next-fire");
    const int64_t* n = next->Get();
    if (n && *n == time.millis()) {
      int64_t t = std::min(time.millis() + interval_, w.max_timestamp().millis());
      next->Update(t);
      ctx.RegisterEventTimeTimer(Timestamp(t));
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  void Clear(const Window& w, TriggerContext& ctx) override {
    auto* next = ctx.GetLongState("next-fire");
    if (const int64_t* n = next->Get()) ctx.DeleteEventTimeTimer(Timestamp(*n));
    next->Clear();
    ctx.DeleteEventTimeTimer(w.max_timestamp());
  }
  std::string name() const override {
    return "ContinuousEventTimeTrigger(" + std::to_string(interval_) + "ms)";
  }

 private:
  int64_t interval_;
};

/// Fires periodically in processing time while the window has elements.
template <class T>
class ContinuousProcessingTimeTrigger final : public Trigger<T> {
 public:
  explicit ContinuousProcessingTimeTrigger(Duration interval) : interval_(interval.millis()) {}
  TriggerResult OnElement(const T&, Timestamp, const Window& w, TriggerContext& ctx) override {
    auto* next = ctx.GetLongState("next-fire");
    if (!next->Get()) {
      int64_t now = ctx.current_processing_time().millis();
      int64_t t = std::min(now - (now % interval_) + interval_, w.max_timestamp().millis());
      next->Update(t);
      ctx.RegisterProcessingTimeTimer(Timestamp(t));
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp time, const Window& w, TriggerContext& ctx) override {
    auto* next = ctx.GetLongState("next-fire");
    const int64_t* n = next->Get();
    if (n && *n == time.millis()) {
      next->Clear();
      if (time < w.max_timestamp()) {
        int64_t t = std::min(time.millis() + interval_, w.max_timestamp().millis());
        next->Update(t);
        ctx.RegisterProcessingTimeTimer(Timestamp(t));
      }
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  void Clear(const Window&, TriggerContext& ctx) override {
    auto* next = ctx.GetLongState("next-fire");
    if (const int64_t* n = next->Get()) ctx.DeleteProcessingTimeTimer(Timestamp(*n));
    next->Clear();
  }
  std::string name() const override {
    return "ContinuousProcessingTimeTrigger(" + std::to_string(interval_) + "ms)";
  }

 private:
  int64_t interval_;
};

/// Never fires (the default of global windows: a custom trigger must be set).
template <class T>
class NeverTrigger final : public Trigger<T> {
 public:
  TriggerResult OnElement(const T&, Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const Window&, TriggerContext&) override {
    return TriggerResult::kContinue;
  }
  void Clear(const Window&, TriggerContext&) override {}
  std::string name() const override { return "NeverTrigger"; }
};

template <class T>
void CountTrigger<T>::OnMerge(const Window&, TriggerContext& ctx) {
  // The merged windows' counts were summed by the operator (long state is merged by addition).
  (void)ctx;
}

/// Puts each element into zero or more windows.
template <class T>
class WindowAssigner {
 public:
  virtual ~WindowAssigner() = default;
  /// Appends the windows of an element with timestamp `ts` (processing time `now`) to `out`.
  virtual void AssignWindows(const T& v, Timestamp ts, Timestamp now,
                             std::vector<Window>& out) const = 0;
  virtual std::unique_ptr<Trigger<T>> DefaultTrigger() const = 0;
  virtual bool is_event_time() const = 0;
  virtual bool is_merging() const { return false; }
  /// Merging assigners: groups of overlapping windows, each with its covering window.
  virtual void MergeWindows(std::vector<Window> windows,
                            std::vector<std::pair<Window, std::vector<Window>>>& merges) const {
    (void)windows, (void)merges;
  }
  virtual std::string name() const = 0;
};

template <class T>
class TumblingWindows final : public WindowAssigner<T> {
 public:
  TumblingWindows(Duration size, Duration offset, bool event_time)
      : size_(size.millis()), offset_(offset.millis()), event_time_(event_time) {}
  void AssignWindows(const T&, Timestamp ts, Timestamp now,
                     std::vector<Window>& out) const override {
    int64_t t = event_time_ ? ts.millis() : now.millis();
    int64_t start = WindowStart(t, offset_, size_);
    out.push_back({start, start + size_});
  }
  std::unique_ptr<Trigger<T>> DefaultTrigger() const override {
    if (event_time_) return std::make_unique<EventTimeTrigger<T>>();
    return std::make_unique<ProcessingTimeTrigger<T>>();
  }
  bool is_event_time() const override { return event_time_; }
  std::string name() const override {
    return std::string(event_time_ ? "TumblingEventTimeWindows("
                                   : "TumblingProcessingTimeWindows(") +
           Duration::Millis(size_).ToString() + ")";
  }

 private:
  int64_t size_, offset_;
  bool event_time_;
};

template <class T>
class SlidingWindows final : public WindowAssigner<T> {
 public:
  SlidingWindows(Duration size, Duration slide, Duration offset, bool event_time)
      : size_(size.millis()),
        slide_(slide.millis()),
        offset_(offset.millis()),
        event_time_(event_time) {}
  void AssignWindows(const T&, Timestamp ts, Timestamp now,
                     std::vector<Window>& out) const override {
    int64_t t = event_time_ ? ts.millis() : now.millis();
    int64_t last_start = WindowStart(t, offset_, slide_);
    for (int64_t start = last_start; start > t - size_; start -= slide_)
      out.push_back({start, start + size_});
  }
  std::unique_ptr<Trigger<T>> DefaultTrigger() const override {
    if (event_time_) return std::make_unique<EventTimeTrigger<T>>();
    return std::make_unique<ProcessingTimeTrigger<T>>();
  }
  bool is_event_time() const override { return event_time_; }
  std::string name() const override {
    return std::string(event_time_ ? "SlidingEventTimeWindows(" : "SlidingProcessingTimeWindows(") +
           Duration::Millis(size_).ToString() + ", " + Duration::Millis(slide_).ToString() + ")";
  }

 private:
  int64_t size_, slide_, offset_;
  bool event_time_;
};

template <class T>
class SessionWindows final : public WindowAssigner<T> {
 public:
  SessionWindows(Duration gap, bool event_time) : gap_(gap.millis()), event_time_(event_time) {}
  void AssignWindows(const T&, Timestamp ts, Timestamp now,
                     std::vector<Window>& out) const override {
    int64_t t = event_time_ ? ts.millis() : now.millis();
    out.push_back({t, t + gap_});
  }
  std::unique_ptr<Trigger<T>> DefaultTrigger() const override {
    if (event_time_) return std::make_unique<EventTimeTrigger<T>>();
    return std::make_unique<ProcessingTimeTrigger<T>>();
  }
  bool is_event_time() const override { return event_time_; }
  bool is_merging() const override { return true; }
  void MergeWindows(std::vector<Window> windows,
                    std::vector<std::pair<Window, std::vector<Window>>>& merges) const override {
    std::sort(windows.begin(), windows.end());
    std::pair<Window, std::vector<Window>> cur;
    bool have = false;
    for (const auto& w : windows) {
      if (!have) {
        cur = {w, {w}};
        have = true;
      } else if (cur.first.Intersects(w)) {
        cur.first = cur.first.Cover(w);
        cur.second.push_back(w);
      } else {
        if (cur.second.size() > 1) merges.push_back(cur);
        cur = {w, {w}};
      }
    }
    if (have && cur.second.size() > 1) merges.push_back(cur);
  }
  std::string name() const override {
    return std::string(event_time_ ? "EventTimeSessionWindows(" : "ProcessingTimeSessionWindows(") +
           Duration::Millis(gap_).ToString() + ")";
  }

 private:
  int64_t gap_;
  bool event_time_;
};

template <class T>
class GlobalWindows final : public WindowAssigner<T> {
 public:
  void AssignWindows(const T&, Timestamp, Timestamp, std::vector<Window>& out) const override {
    out.push_back(Window::Global());
  }
  std::unique_ptr<Trigger<T>> DefaultTrigger() const override {
    return std::make_unique<NeverTrigger<T>>();
  }
  bool is_event_time() const override { return false; }
  std::string name() const override { return "GlobalWindows"; }
};

/// An element with its timestamp, as evictors see window contents.
template <class T>
struct TimestampedValue {
  int64_t ts = 0;
  T value{};
};

/// Removes elements from a window's contents before and/or after the window function runs.
template <class T>
class Evictor {
 public:
  virtual ~Evictor() = default;
  virtual void EvictBefore(std::vector<TimestampedValue<T>>& elements, const Window& w) {
    (void)elements, (void)w;
  }
  virtual void EvictAfter(std::vector<TimestampedValue<T>>& elements, const Window& w) {
    (void)elements, (void)w;
  }
  virtual std::string name() const = 0;
};

/// Keeps at most `max` elements (the newest).
template <class T>
class CountEvictor final : public Evictor<T> {
 public:
  explicit CountEvictor(size_t max, bool after = false) : max_(max), after_(after) {}
  void EvictBefore(std::vector<TimestampedValue<T>>& e, const Window&) override {
    if (!after_) Evict(e);
  }
  void EvictAfter(std::vector<TimestampedValue<T>>& e, const Window&) override {
    if (after_) Evict(e);
  }
  std::string name() const override { return "CountEvictor(" + std::to_string(max_) + ")"; }

 private:
  void Evict(std::vector<TimestampedValue<T>>& e) {
    if (e.size() > max_) e.erase(e.begin(), e.begin() + static_cast<ptrdiff_t>(e.size() - max_));
  }
  size_t max_;
  bool after_;
};

/// Keeps elements whose timestamp is within `keep` of the newest element.
template <class T>
class TimeEvictor final : public Evictor<T> {
 public:
  explicit TimeEvictor(Duration keep, bool after = false) : keep_(keep.millis()), after_(after) {}
  void EvictBefore(std::vector<TimestampedValue<T>>& e, const Window&) override {
    if (!after_) Evict(e);
  }
  void EvictAfter(std::vector<TimestampedValue<T>>& e, const Window&) override {
    if (after_) Evict(e);
  }
  std::string name() const override { return "TimeEvictor(" + std::to_string(keep_) + "ms)"; }

 private:
  void Evict(std::vector<TimestampedValue<T>>& e) {
    if (e.empty()) return;
    int64_t max_ts = e.front().ts;
    for (const auto& x : e) max_ts = std::max(max_ts, x.ts);
    int64_t cutoff = max_ts - keep_;
    std::erase_if(e, [&](const TimestampedValue<T>& x) { return x.ts <= cutoff; });
  }
  int64_t keep_;
  bool after_;
};

/// Keeps elements whose delta to the last element is below `threshold`.
template <class T>
class DeltaEvictor final : public Evictor<T> {
 public:
  DeltaEvictor(double threshold, std::function<double(const T&, const T&)> delta,
               bool after = false)
      : threshold_(threshold), delta_(std::move(delta)), after_(after) {}
  void EvictBefore(std::vector<TimestampedValue<T>>& e, const Window&) override {
    if (!after_) Evict(e);
  }
  void EvictAfter(std::vector<TimestampedValue<T>>& e, const Window&) override {
    if (after_) Evict(e);
  }
  std::string name() const override { return "DeltaEvictor"; }

 private:
  void Evict(std::vector<TimestampedValue<T>>& e) {
    if (e.empty()) return;
    T last = e.back().value;
    std::erase_if(
        e, [&](const TimestampedValue<T>& x) { return delta_(x.value, last) >= threshold_; });
  }
  double threshold_;
  std::function<double(const T&, const T&)> delta_;
  bool after_;
};

}  // namespace eddy

template <class T>
struct eddy::Serializer<eddy::TimestampedValue<T>> {
  static void Write(const eddy::TimestampedValue<T>& v, eddy::ByteWriter& w) {
    w.PutVarI64(v.ts);
    eddy::Serializer<T>::Write(v.value, w);
  }
  static bool Read(eddy::ByteReader& r, eddy::TimestampedValue<T>& v) {
    v.ts = r.GetVarI64();
    return eddy::Serializer<T>::Read(r, v.value);
  }
};
template <>
struct eddy::Serializer<eddy::Window> {
  static void Write(const eddy::Window& v, eddy::ByteWriter& w) {
    w.PutVarI64(v.start);
    w.PutVarI64(v.end);
  }
  static bool Read(eddy::ByteReader& r, eddy::Window& v) {
    v.start = r.GetVarI64();
    v.end = r.GetVarI64();
    return !r.failed();
  }
};
