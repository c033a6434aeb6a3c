#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eddy/functions.h"
#include "eddy/operators/basic.h"
#include "eddy/windows.h"

namespace eddy {

/// What the window function sees besides the contents.
class WindowContext {
 public:
  virtual ~WindowContext() = default;
  virtual const Window& window() const = 0;
  virtual Watermark current_watermark() const = 0;
  virtual Timestamp current_processing_time() const = 0;
  virtual const std::string& current_key_bytes() const = 0;
  template <class K>
  K CurrentKey() const {
    ByteReader r(current_key_bytes());
    K k{};
    Serializer<K>::Read(r, k);
    return k;
  }
  template <class T>
  void Output(const OutputTag<T>& tag, const T& value) {
    EmitSide(tag.id(), &value);
  }

 protected:
  virtual void EmitSide(int tag, const void* value) = 0;
};

/// Full-window function (Flink's ProcessWindowFunction / ProcessAllWindowFunction): gets all
/// elements of a window (after eviction) or the single pre-aggregated result.
template <class IN, class OUT>
class ProcessWindowFunction : public RichFunction {
 public:
  virtual void Process(WindowContext& ctx, const std::vector<IN>& elements,
                       Collector<OUT>& out) = 0;
  /// Called when a window is purged by its cleanup (allowed lateness passed).
  virtual void Clear(WindowContext& ctx) { (void)ctx; }
};

/// windowAll's full-window function: the same interface (the key is the constant all-key).
template <class IN, class OUT>
using ProcessAllWindowFunction = ProcessWindowFunction<IN, OUT>;

/// How a window's contents are kept and evaluated. Two kinds: incremental aggregation
/// (AggregateFunction, one accumulator per window) and element lists (evictors, full-window
/// functions). Threading: the operator's task thread.
template <class IN, class OUT>
class WindowContents {
 public:
  virtual ~WindowContents() = default;
  virtual void Open(KeyedStateBackend* backend, RuntimeContext& rc) = 0;
  virtual void Close() {}
  virtual void SetNamespace(const Window& state_window) = 0;
  virtual void Add(const IN& v, Timestamp ts) = 0;
  virtual bool IsEmpty() = 0;
  virtual void Clear() = 0;
  /// Folds the contents of `sources` into `target` (session windows).
  virtual void Merge(const Window& target, const std::vector<Window>& sources) = 0;
  /// Evaluates the contents of the current namespace for `ctx.window()`.
  virtual void Emit(WindowContext& ctx, Collector<OUT>& out) = 0;
  virtual std::string description() const = 0;
};

/// Incremental: contents = ACC; at fire, agg.GetResult -> MID -> process function (or MID == OUT).
template <class IN, class ACC, class MID, class OUT>
class AggregatingContents final : public WindowContents<IN, OUT> {
 public:
  AggregatingContents(std::shared_ptr<const AggregateFunction<IN, ACC, MID>> agg,
                      std::shared_ptr<ProcessWindowFunction<MID, OUT>> fn)
      : agg_(std::move(agg)), fn_(std::move(fn)) {}
  void Open(KeyedStateBackend* backend, RuntimeContext& rc) override {
    AggregatingStateDescriptor<IN, ACC, MID> d;
    d.name = "window-contents";
    d.aggregate = agg_;
    state_ = backend->GetAggregatingState(d);
    if (fn_) (void)fn_->Open(rc);
  }
  void Close() override {
    if (fn_) fn_->Close();
  }
  void SetNamespace(const Window& w) override { state_->SetNamespace(w.ns()); }
  void Add(const IN& v, Timestamp) override { state_->Add(v); }
  bool IsEmpty() override { return state_->GetAccumulator() == nullptr; }
  void Clear() override { state_->Clear(); }
  void Merge(const Window& target, const std::vector<Window>& sources) override {
    std::optional<ACC> merged;
    for (const auto& w : sources) {
      state_->SetNamespace(w.ns());
      if (const ACC* a = state_->GetAccumulator()) {
        if (!merged) {
          merged = *a;
        } else {
          agg_->Merge(*merged, *a);
        }
        state_->Clear();
      }
    }
    state_->SetNamespace(target.ns());
    if (merged) {
      if (const ACC* t = state_->GetAccumulator()) {
        ACC target_acc = *t;
        agg_->Merge(target_acc, *merged);
        state_->SetAccumulator(std::move(target_acc));
      } else {
        state_->SetAccumulator(std::move(*merged));
      }
    }
  }
  void Emit(WindowContext& ctx, Collector<OUT>& out) override {
    const ACC* acc = state_->GetAccumulator();
    if (!acc) return;
    if constexpr (std::is_same_v<MID, OUT>) {
      if (!fn_) {
        out.Collect(agg_->GetResult(*acc));
        return;
      }
    }
    one_.clear();
    one_.push_back(agg_->GetResult(*acc));
    fn_->Process(ctx, one_, out);
  }
  std::string description() const override { return fn_ ? "aggregate+process" : "aggregate"; }

 private:
  std::shared_ptr<const AggregateFunction<IN, ACC, MID>> agg_;
  std::shared_ptr<ProcessWindowFunction<MID, OUT>> fn_;
  InternalAggregatingState<IN, ACC, MID>* state_ = nullptr;
  std::vector<MID> one_;
};

/// Element lists: contents = all elements with timestamps; evictors apply around the function.
template <class IN, class OUT>
class ListContents final : public WindowContents<IN, OUT> {
 public:
  ListContents(std::shared_ptr<ProcessWindowFunction<IN, OUT>> fn,
               std::shared_ptr<Evictor<IN>> evictor)
      : fn_(std::move(fn)), evictor_(std::move(evictor)) {}
  void Open(KeyedStateBackend* backend, RuntimeContext& rc) override {
    state_ =
        backend->GetListState(ListStateDescriptor<TimestampedValue<IN>>{{"window-contents", {}}});
    (void)fn_->Open(rc);
  }
  void Close() override { fn_->Close(); }
  void SetNamespace(const Window& w) override { state_->SetNamespace(w.ns()); }
  void Add(const IN& v, Timestamp ts) override {
    state_->Add(TimestampedValue<IN>{ts.millis(), v});
  }
  bool IsEmpty() override { return state_->Get() == nullptr; }
  void Clear() override { state_->Clear(); }
  void Merge(const Window& target, const std::vector<Window>& sources) override {
    std::vector<TimestampedValue<IN>> all;
    for (const auto& w : sources) {
      state_->SetNamespace(w.ns());
      if (const auto* l = state_->Get()) all.insert(all.end(), l->begin(), l->end());
      state_->Clear();
    }
    state_->SetNamespace(target.ns());
    auto* t = state_->GetMutable();
    t->insert(t->end(), all.begin(), all.end());
  }
  void Emit(WindowContext& ctx, Collector<OUT>& out) override {
    const auto* l = state_->Get();
    if (!l) return;
    if (evictor_) {
      auto* m = state_->GetMutable();
      evictor_->EvictBefore(*m, ctx.window());
      l = m;
    }
    values_.clear();
    for (const auto& tv : *l) values_.push_back(tv.value);
    fn_->Process(ctx, values_, out);
    if (evictor_) {
      auto* m = state_->GetMutable();
      evictor_->EvictAfter(*m, ctx.window());
      if (m->empty()) state_->Clear();
    }
  }
  std::string description() const override {
    return evictor_ ? "process, " + evictor_->name() : "process";
  }

 private:
  std::shared_ptr<ProcessWindowFunction<IN, OUT>> fn_;
  std::shared_ptr<Evictor<IN>> evictor_;
  ListState<TimestampedValue<IN>>* state_ = nullptr;
  std::vector<IN> values_;
};

/// Everything a window operator is built from.
template <class IN, class OUT>
struct WindowSpec {
  std::shared_ptr<const WindowAssigner<IN>> assigner;
  /// Creates the trigger (one per subtask); nullptr = the assigner's default.
  std::function<std::unique_ptr<Trigger<IN>>()> trigger;
  std::function<std::unique_ptr<WindowContents<IN, OUT>>()> contents;
  Duration allowed_lateness;
  int late_tag = 0;  ///< side output for late elements; 0 = drop (counted)
};

/// The window operator (Flink's WindowOperator / EvictingWindowOperator): assigns elements to
/// windows per key, consults the trigger, evaluates and purges windows, cleans up after the
/// allowed lateness, merges session windows. Keyed; timers on (key, window).
template <class IN, class OUT>
class WindowOperator final : public OneInputOperator<IN, OUT> {
 public:
  explicit WindowOperator(WindowSpec<IN, OUT> spec) : spec_(std::move(spec)) {}

  Status Open() override {
    trigger_ = spec_.trigger ? spec_.trigger() : spec_.assigner->DefaultTrigger();
    contents_ = spec_.contents();
    rc_ = std::make_unique<RuntimeContext>(this->ctx_);
    contents_->Open(this->Backend(), *rc_);
    timers_ = this->Timers();
    collector_.Reset(this->out_);
    tctx_.op = this;
    wctx_.op = this;
    if (spec_.assigner->is_merging()) {
      merging_ = this->Backend()->GetValueState(
          ValueStateDescriptor<std::vector<std::pair<Window, Window>>>{{"merging-windows", {}}});
    }
    return Status::Ok();
  }
  void Close() override { contents_->Close(); }

  void OnEventTime(const Timer& t) override { OnTimer(t, true); }
  void OnProcessingTime(const Timer& t) override { OnTimer(t, false); }

 protected:
  void Process(const IN& v, Timestamp ts) override {
    windows_.clear();
    Timestamp now = timers_->CurrentProcessingTime();
    spec_.assigner->AssignWindows(v, ts, now, windows_);
    bool skipped = true;
    if (merging_) {
      for (const Window& w : windows_) {
        Window actual = AddToMergingSet(w);
        if (IsWindowLate(actual)) {
          RemoveFromMergingSet(actual);
          continue;
        }
        skipped = false;
        Window state_window = StateWindowOf(actual);
        contents_->SetNamespace(state_window);
        contents_->Add(v, ts);
        HandleTrigger(trigger_->OnElement(v, ts, actual, tctx_.At(actual)), actual, state_window);
        RegisterCleanupTimer(actual);
      }
    } else {
      for (const Window& w : windows_) {
        if (IsWindowLate(w)) continue;
        skipped = false;
        contents_->SetNamespace(w);
        contents_->Add(v, ts);
        HandleTrigger(trigger_->OnElement(v, ts, w, tctx_.At(w)), w, w);
        RegisterCleanupTimer(w);
      }
    }
    if (skipped && IsElementLate(ts)) {
      if (spec_.late_tag != 0) {
        this->out_->EmitSide(spec_.late_tag, &v, ts);
      } else {
        ++this->ctx_->counters->late_records_dropped;
      }
    }
  }

 private:
  struct TriggerCtx final : TriggerContext {
    WindowOperator* op = nullptr;
    Window w;
    std::vector<Window> merged;
    std::map<std::string, ValueState<int64_t>*> longs;
    TriggerCtx& At(const Window& win) {
      w = win;
      return *this;
    }
    Watermark current_watermark() override { return op->timers_->current_watermark(); }
    Timestamp current_processing_time() override { return op->timers_->CurrentProcessingTime(); }
    void RegisterEventTimeTimer(Timestamp t) override {
      op->timers_->RegisterEventTimeTimer(w.ns(), t);
    }
    void DeleteEventTimeTimer(Timestamp t) override {
      op->timers_->DeleteEventTimeTimer(w.ns(), t);
    }
    void RegisterProcessingTimeTimer(Timestamp t) override {
      op->timers_->RegisterProcessingTimeTimer(w.ns(), t);
    }
    void DeleteProcessingTimeTimer(Timestamp t) override {
      op->timers_->DeleteProcessingTimeTimer(w.ns(), t);
    }
    ValueState<int64_t>* GetLongState(const std::string& name) override {
      auto it = longs.find(name);
      if (it == longs.end()) {
        auto* s =
            op->Backend()->GetValueState(ValueStateDescriptor<int64_t>{{"trigger-" + name, {}}});
        it = longs.emplace(name, s).first;
      }
      it->second->SetNamespace(w.ns());
      return it->second;
    }
    const std::vector<Window>& merged_windows() override { return merged; }
    /// Sums the long states of the merged windows into the current window (CountTrigger merge).
    void MergeLongs() {
      for (auto& [name, s] : longs) {
        int64_t sum = 0;
        for (const auto& m : merged) {
          s->SetNamespace(m.ns());
          if (const int64_t* v = s->Get()) sum += *v;
          s->Clear();
        }
        s->SetNamespace(w.ns());
        if (sum != 0) s->GetOrCreate() += sum;
      }
    }
  };
  struct WinCtx final : WindowContext {
    WindowOperator* op = nullptr;
    Window w;
    const Window& window() const override { return w; }
    Watermark current_watermark() const override { return op->timers_->current_watermark(); }
    Timestamp current_processing_time() const override {
      return op->timers_->CurrentProcessingTime();
    }
    const std::string& current_key_bytes() const override {
      return op->ctx_->keyed_backend->current_key();
    }

   protected:
    void EmitSide(int tag, const void* value) override {
      op->out_->EmitSide(tag, value, w.max_timestamp());
    }
  };

  void HandleTrigger(TriggerResult r, const Window& actual, const Window& state_window) {
    if (IsFire(r)) Fire(actual, state_window);
    if (IsPurge(r)) {
      contents_->SetNamespace(state_window);
      contents_->Clear();
    }
  }
  void Fire(const Window& actual, const Window& state_window) {
    contents_->SetNamespace(state_window);
    wctx_.w = actual;
    collector_.set_timestamp(actual.max_timestamp());
    contents_->Emit(wctx_, collector_);
  }
  void OnTimer(const Timer& t, bool event_time) {
    Window w = Window::FromNamespace(t.ns);
    Window state_window = w;
    if (merging_) {
      auto sw = FindStateWindow(w);
      if (!sw) return;  // merged away; a stale timer
      state_window = *sw;
    }
    contents_->SetNamespace(state_window);
    TriggerResult r = event_time ? trigger_->OnEventTime(t.time, w, tctx_.At(w))
                                 : trigger_->OnProcessingTime(t.time, w, tctx_.At(w));
    if (IsFire(r) && !contents_->IsEmpty()) Fire(w, state_window);
    if (IsPurge(r)) {
      contents_->SetNamespace(state_window);
      contents_->Clear();
    }
    if (event_time == spec_.assigner->is_event_time() && t.time == CleanupTime(w)) {
      contents_->SetNamespace(state_window);
      contents_->Clear();
      trigger_->Clear(w, tctx_.At(w));
      if (merging_) RemoveFromMergingSet(w);
    }
  }
  Timestamp CleanupTime(const Window& w) const {
    if (!spec_.assigner->is_event_time()) return w.max_timestamp();
    return w.max_timestamp() + spec_.allowed_lateness;
  }
  void RegisterCleanupTimer(const Window& w) {
    Timestamp t = CleanupTime(w);
    if (t == Timestamp::Max()) return;  // global window: never cleaned
    if (spec_.assigner->is_event_time()) {
      timers_->RegisterEventTimeTimer(w.ns(), t);
    } else {
      timers_->RegisterProcessingTimeTimer(w.ns(), t);
    }
  }
  void DeleteCleanupTimer(const Window& w) {
    Timestamp t = CleanupTime(w);
    if (t == Timestamp::Max()) return;
    if (spec_.assigner->is_event_time()) {
      timers_->DeleteEventTimeTimer(w.ns(), t);
    } else {
      timers_->DeleteProcessingTimeTimer(w.ns(), t);
    }
  }
  bool IsWindowLate(const Window& w) const {
    return spec_.assigner->is_event_time() && CleanupTime(w) <= timers_->current_watermark();
  }
  bool IsElementLate(Timestamp ts) const {
    return spec_.assigner->is_event_time() &&
           ts + spec_.allowed_lateness <= timers_->current_watermark();
  }

  // ---- merging windows (Flink's MergingWindowSet): actual window -> window holding its state ----
  std::optional<Window> FindStateWindow(const Window& w) {
    if (const auto* m = merging_->Get()) {
      for (const auto& [a, s] : *m) {
        if (a == w) return s;
      }
    }
    return std::nullopt;
  }
  Window StateWindowOf(const Window& w) { return FindStateWindow(w).value_or(w); }
  void RemoveFromMergingSet(const Window& w) {
    auto& m = merging_->GetOrCreate();
    std::erase_if(m, [&](const auto& p) { return p.first == w; });
    if (m.empty()) merging_->Clear();
  }
  Window AddToMergingSet(const Window& nw) {
    std::vector<std::pair<Window, Window>> mapping;
    if (const auto* m = merging_->Get()) mapping = *m;
    std::vector<Window> all;
    for (const auto& [a, s] : mapping) all.push_back(a);
    all.push_back(nw);
    std::vector<std::pair<Window, std::vector<Window>>> merges;
    spec_.assigner->MergeWindows(all, merges);
    Window result = nw;
    bool new_merged = false;
    for (auto& [cover, group] : merges) {
      bool contains_new = std::find(group.begin(), group.end(), nw) != group.end();
      if (contains_new) {
        new_merged = true;
        result = cover;
      }
      // The state window of the first existing member becomes the merge target.
      std::optional<Window> target_state;
      std::vector<Window> merged_state, merged_actual;
      for (const auto& g : group) {
        auto it = std::find_if(mapping.begin(), mapping.end(),
                               [&](const auto& p) { return p.first == g; });
        if (it == mapping.end()) continue;  // the new window has no state yet
        if (!target_state) {
          target_state = it->second;
        } else {
          merged_state.push_back(it->second);
        }
        merged_actual.push_back(g);
        mapping.erase(it);
      }
      if (!target_state) target_state = cover;
      mapping.emplace_back(cover, *target_state);
      // Trigger state moves to the covering window first (Flink: onMerge, then clear the merged
      // windows), otherwise Clear would drop e.g. the counts CountTrigger must sum.
      tctx_.At(cover).merged = merged_actual;
      tctx_.MergeLongs();
      trigger_->OnMerge(cover, tctx_.At(cover));
      tctx_.merged.clear();
      for (const auto& m : merged_actual) {
        if (m == cover) continue;
        DeleteCleanupTimer(m);
        trigger_->Clear(m, tctx_.At(m));
      }
      if (!merged_state.empty()) contents_->Merge(*target_state, merged_state);
    }
    if (!new_merged) mapping.emplace_back(nw, nw);
    merging_->Update(mapping);
    return result;
  }

  WindowSpec<IN, OUT> spec_;
  std::unique_ptr<Trigger<IN>> trigger_;
  std::unique_ptr<WindowContents<IN, OUT>> contents_;
  std::unique_ptr<RuntimeContext> rc_;
  InternalTimerService* timers_ = nullptr;
  TimestampedCollector<OUT> collector_;
  TriggerCtx tctx_;
  WinCtx wctx_;
  ValueState<std::vector<std::pair<Window, Window>>>* merging_ = nullptr;
  std::vector<Window> windows_;
};

}  // namespace eddy
