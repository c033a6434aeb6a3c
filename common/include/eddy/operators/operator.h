#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eddy/runtime/stream_io.h"
#include "eddy/serialization.h"
#include "eddy/state/keyed_state.h"
#include "eddy/state/timers.h"
#include "eddy/status.h"

namespace eddy {

/// A counter bumped by one thread and read by others: `++` is a relaxed load and store (no
/// locked instruction, no fence), reads are relaxed loads. Only correct with a single writer.
/// Copyable (copies the current value) so that structs of counters stay regular values.
class RelaxedCounter {
 public:
  RelaxedCounter() = default;
  RelaxedCounter(const RelaxedCounter& o) : v_(o.load()) {}
  RelaxedCounter& operator=(const RelaxedCounter& o) {
    v_.store(o.load(), std::memory_order_relaxed);
    return *this;
  }
  RelaxedCounter& operator++() { return *this += 1; }
  RelaxedCounter& operator+=(uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return *this;
  }
  uint64_t load() const { return v_.load(std::memory_order_relaxed); }
  operator uint64_t() const { return load(); }  // NOLINT(google-explicit-constructor)

 private:
  std::atomic<uint64_t> v_{0};
};

/// Counters every operator keeps; the task exposes them as metrics. Written by the task thread
/// only, read by metrics scrapes from other threads while the task runs.
struct OperatorCounters {
  RelaxedCounter records_in;
  RelaxedCounter records_out;
  RelaxedCounter late_records_dropped;
  RelaxedCounter bad_records;
};

/// Operator-scoped, non-keyed state (Flink's OperatorStateStore): named lists of serialized
/// entries, redistributed on rescale as even-split, union or broadcast.
class OperatorStateStore {
 public:
  enum class Mode : uint8_t { kSplit, kUnion, kBroadcast };
  struct Entry {
    Mode mode = Mode::kSplit;
    std::vector<std::string> items;  // serialized elements
  };
  /// The list of `name`, created empty with `mode` if absent (restored content otherwise).
  Entry& Get(const std::string& name, Mode mode) {
    auto [it, inserted] = entries_.try_emplace(name);
    if (inserted) it->second.mode = mode;
    return it->second;
  }
  std::map<std::string, Entry>& entries() { return entries_; }

 private:
  std::map<std::string, Entry> entries_;
};

/// Everything the runtime gives an operator instance. Owned by the task; outlives the operator.
struct OperatorContext {
  std::string task_name;
  std::string operator_name;
  int subtask_index = 0;
  int parallelism = 1;
  int max_parallelism = 128;
  int attempt = 0;
  ProcessingTimeService* processing_time = nullptr;
  /// Set for keyed operators; owned by the task.
  KeyedStateBackend* keyed_backend = nullptr;
  OperatorStateStore* operator_state = nullptr;
  OperatorCounters* counters = nullptr;
  /// How many bad records to tolerate before failing: <0 means unlimited (skip and count).
  int64_t max_bad_records = -1;
  /// Where an operator reports a fatal error without throwing; the task fails with the first one
  /// after the current record. Owned by the task.
  Status* task_failure = nullptr;
  void Fail(Status s) {
    if (task_failure && task_failure->ok()) *task_failure = std::move(s);
  }
};

/// Base of all stream operators. Lifecycle: constructed from the graph's factory on the task
/// thread -> Setup -> Open -> elements/watermarks/timers -> Finish (bounded input ended) -> Close.
/// Threading: every call comes from the owning task's thread.
class StreamOperatorBase {
 public:
  virtual ~StreamOperatorBase() = default;
  void Setup(OperatorContext* ctx, OutputBase* output) {
    ctx_ = ctx;
    output_base_ = output;
    OnSetup();
  }
  virtual Status Open() { return Status::Ok(); }
  /// All inputs ended (after the final watermark). Operators that buffer flush here.
  virtual void Finish() {}
  virtual void Close() {}
  virtual int num_inputs() const = 0;
  virtual InputBase* input(int index) = 0;
  /// True when the operator needs a keyed state backend and key context.
  virtual bool is_keyed() const { return false; }
  /// Serializes operator-specific state that is not in the backends (e.g. source offsets). It may
  /// also write its lists into the OperatorStateStore, which is serialized right after.
  virtual void SnapshotState(std::string& out) { (void)out; }
  /// Restores what SnapshotState wrote; called after Open, only with the snapshot of the subtask
  /// with the same index at the same parallelism.
  virtual Status RestoreState(std::string_view in) {
    (void)in;
    return Status::Ok();
  }
  /// Checkpoint `id`'s barrier is about to be sent downstream: emit what must precede it (Flink's
  /// prepareSnapshotPreBarrier). Two-phase-commit sinks close their transaction here.
  virtual void PrepareSnapshotPreBarrier(CheckpointId id) { (void)id; }
  /// Checkpoint `id` completed everywhere (its metadata is durable): commit side effects up to it.
  virtual void NotifyCheckpointComplete(CheckpointId id) { (void)id; }
  virtual void NotifyCheckpointAborted(CheckpointId id) { (void)id; }
  /// Keyed operators' timers of this subtask's key groups, for checkpoints (empty: no timers).
  virtual void SnapshotTimers(std::string& out) { (void)out; }
  /// Restores timers of any old subtask; those of key groups this subtask does not own are
  /// dropped. Called after Open.
  virtual Status RestoreTimers(std::string_view in) {
    (void)in;
    return Status::Ok();
  }
  OperatorContext& context() { return *ctx_; }

 protected:
  virtual void OnSetup() {}
  OperatorContext* ctx_ = nullptr;
  OutputBase* output_base_ = nullptr;
};

/// Serializes the key of a value: records with equal keys must produce equal bytes.
template <class T>
class KeySelector {
 public:
  virtual ~KeySelector() = default;
  virtual void KeyBytes(const T& value, std::string& out) const = 0;
};

template <class T, class K, class F>
class LambdaKeySelector final : public KeySelector<T> {
 public:
  explicit LambdaKeySelector(F f) : f_(std::move(f)) {}
  void KeyBytes(const T& v, std::string& out) const override {
    out.clear();
    ByteWriter w(out);
    Serializer<K>::Write(f_(v), w);
  }

 private:
  F f_;
};

/// Sets the current key of a keyed operator. A key whose group this subtask does not own means the
/// key selector is not deterministic (the record was routed with a different key): the task
/// fails with a message saying so instead of touching another subtask's state.
inline bool SetKey(OperatorContext* ctx, std::string_view key_bytes) {
  KeyedStateBackend* b = ctx->keyed_backend;
  b->SetCurrentKey(key_bytes);
  if (b->range().Contains(b->current_key_group())) [[likely]]
    return true;
  ctx->Fail(
      Status::Internal(ctx->operator_name + ": a record's key maps to key group " +
                       std::to_string(b->current_key_group().value()) +
                       ", which this subtask does not own; is the key selector deterministic?"));
  return false;
}

/// Tracks the watermark of one or more inputs: the minimum over active inputs, only advancing.
class WatermarkCombiner {
 public:
  explicit WatermarkCombiner(int n) : wms_(n, Watermark::Min()), idle_(n, false) {}
  /// Returns true when the combined watermark advanced.
  bool Update(int input, Watermark wm) {
    if (wm > wms_[input]) wms_[input] = wm;
    return Recompute();
  }
  bool SetIdle(int input, bool idle) {
    idle_[input] = idle;
    return Recompute();
  }
  Watermark current() const { return combined_; }
  bool all_idle() const {
    return std::all_of(idle_.begin(), idle_.end(), [](bool b) { return b; });
  }

 private:
  bool Recompute() {
    Watermark m = Watermark::Max();
    bool any = false;
    for (size_t i = 0; i < wms_.size(); ++i) {
      if (idle_[i]) continue;
      any = true;
      m = std::min(m, wms_[i]);
    }
    if (!any) {
      // All inputs idle: nothing can hold time back, so the highest watermark seen is safe
      // (Flink's StatusWatermarkValve does the same since FLINK-18934).
      m = Watermark::Min();
      for (const auto& w : wms_) m = std::max(m, w);
    }
    if (m <= combined_) return false;
    combined_ = m;
    return true;
  }
  std::vector<Watermark> wms_;
  std::vector<bool> idle_;
  Watermark combined_ = Watermark::Min();
};

/// An operator with one input of type IN and output OUT. Keyed subclasses pass a KeySelector.
template <class IN, class OUT>
class OneInputOperator : public StreamOperatorBase, public Input<IN>, public TimerTarget {
 public:
  using InputType = IN;
  using OutputType = OUT;
  int num_inputs() const override { return 1; }
  InputBase* input(int) override { return this; }
  bool is_keyed() const override { return key_selector_ != nullptr; }

  void ProcessElement(const IN& value, Timestamp ts) final {
    if (key_selector_) {
      key_selector_->KeyBytes(value, key_scratch_);
      if (!SetKey(ctx_, key_scratch_)) return;
    }
    Process(value, ts);
  }
  void ProcessWatermark(Watermark wm) override {
    if (wm <= watermark_) return;
    watermark_ = wm;
    if (timers_) timers_->AdvanceWatermark(wm);
    OnWatermark(wm);
    out_->EmitWatermark(wm);
  }
  void ProcessIdleness(bool idle) override { out_->EmitIdleness(idle); }
  void OnEventTime(const Timer&) override {}
  void OnProcessingTime(const Timer&) override {}
  void SetKeySelector(std::shared_ptr<const KeySelector<IN>> k) { key_selector_ = std::move(k); }
  void SnapshotTimers(std::string& out) override {
    if (timers_) timers_->Snapshot(out);
  }
  Status RestoreTimers(std::string_view in) override {
    return in.empty() || !is_keyed() ? Status::Ok() : Timers()->Restore(in);
  }

 protected:
  virtual void Process(const IN& value, Timestamp ts) = 0;
  /// After timers fired for `wm`, before it is forwarded.
  virtual void OnWatermark(Watermark) {}
  void OnSetup() override { out_ = static_cast<Output<OUT>*>(output_base_); }
  /// Creates the timer service; call from Open() of keyed operators that use timers.
  InternalTimerService* Timers() {
    if (!timers_) {
      timers_ =
          std::make_unique<InternalTimerService>(ctx_->keyed_backend, ctx_->processing_time, this);
    }
    return timers_.get();
  }
  /// The keyed state backend (keyed operators only); its typed getters work on every backend.
  KeyedStateBackend* Backend() { return ctx_->keyed_backend; }
  Watermark current_watermark() const { return watermark_; }

  Output<OUT>* out_ = nullptr;
  std::shared_ptr<const KeySelector<IN>> key_selector_;
  std::string key_scratch_;
  std::unique_ptr<InternalTimerService> timers_;
  Watermark watermark_ = Watermark::Min();
};

/// An operator with two inputs (connect, joins, broadcast). Watermark = min of both inputs.
template <class IN1, class IN2, class OUT>
class TwoInputOperator : public StreamOperatorBase, public TimerTarget {
 public:
  int num_inputs() const override { return 2; }
  InputBase* input(int i) override { return i == 0 ? static_cast<InputBase*>(&in1_) : &in2_; }
  bool is_keyed() const override { return key1_ != nullptr; }
  void SetKeySelectors(std::shared_ptr<const KeySelector<IN1>> k1,
                       std::shared_ptr<const KeySelector<IN2>> k2) {
    key1_ = std::move(k1);
    key2_ = std::move(k2);
  }
  void OnEventTime(const Timer&) override {}
  void OnProcessingTime(const Timer&) override {}
  void SnapshotTimers(std::string& out) override {
    if (timers_) timers_->Snapshot(out);
  }
  Status RestoreTimers(std::string_view in) override {
    return in.empty() || !is_keyed() ? Status::Ok() : Timers()->Restore(in);
  }

 protected:
  virtual void Process1(const IN1& v, Timestamp ts) = 0;
  virtual void Process2(const IN2& v, Timestamp ts) = 0;
  virtual void OnWatermark(Watermark) {}
  void OnSetup() override { out_ = static_cast<Output<OUT>*>(output_base_); }
  InternalTimerService* Timers() {
    if (!timers_) {
      timers_ =
          std::make_unique<InternalTimerService>(ctx_->keyed_backend, ctx_->processing_time, this);
    }
    return timers_.get();
  }
  /// The keyed state backend (keyed operators only); its typed getters work on every backend.
  KeyedStateBackend* Backend() { return ctx_->keyed_backend; }
  Watermark current_watermark() const { return combiner_.current(); }

  Output<OUT>* out_ = nullptr;
  std::unique_ptr<InternalTimerService> timers_;

 private:
  template <class T, int kIndex>
  class Side final : public Input<T> {
   public:
    explicit Side(TwoInputOperator* op) : op_(op) {}
    void ProcessElement(const T& v, Timestamp ts) override { op_->Dispatch<kIndex>(v, ts); }
    void ProcessWatermark(Watermark wm) override { op_->Advance(kIndex, wm); }
    void ProcessIdleness(bool idle) override { op_->Idle(kIndex, idle); }

   private:
    TwoInputOperator* op_;
  };
  template <int kIndex, class T>
  void Dispatch(const T& v, Timestamp ts) {
    if constexpr (kIndex == 0) {
      if (key1_) {
        key1_->KeyBytes(v, key_scratch_);
        if (!SetKey(ctx_, key_scratch_)) return;
      }
      Process1(v, ts);
    } else {
      if (key2_) {
        key2_->KeyBytes(v, key_scratch_);
        if (!SetKey(ctx_, key_scratch_)) return;
      }
      Process2(v, ts);
    }
  }
  void Advance(int i, Watermark wm) {
    if (combiner_.Update(i, wm)) Forward();
  }
  void Idle(int i, bool idle) {
    if (combiner_.SetIdle(i, idle)) Forward();
    out_->EmitIdleness(combiner_.all_idle());
  }
  void Forward() {
    Watermark wm = combiner_.current();
    if (timers_) timers_->AdvanceWatermark(wm);
    OnWatermark(wm);
    out_->EmitWatermark(wm);
  }

  Side<IN1, 0> in1_{this};
  Side<IN2, 1> in2_{this};
  WatermarkCombiner combiner_{2};
  std::shared_ptr<const KeySelector<IN1>> key1_;
  std::shared_ptr<const KeySelector<IN2>> key2_;
  std::string key_scratch_;
};

/// What a source's PollNext reports (Flink's InputStatus).
enum class InputStatus : uint8_t { kMoreAvailable, kNothingAvailable, kEndOfInput };

/// A source operator as the task loop sees it: polled in the mailbox loop, no input.
class SourceOperatorBase : public StreamOperatorBase {
 public:
  int num_inputs() const override { return 0; }
  InputBase* input(int) override { return nullptr; }
  /// Emits zero or more records and says whether more are ready. Must not block for long: the
  /// task also has timers and control messages to serve.
  virtual InputStatus PollNext() = 0;
  /// The source stops early and drains (stop-with-savepoint --drain): emit the final watermark
  /// so that every event-time window downstream fires.
  virtual void EmitFinalWatermark() = 0;
};

template <class OUT>
class SourceOperator : public SourceOperatorBase {
 public:
  void EmitFinalWatermark() override { out_->EmitWatermark(Watermark::Max()); }

 protected:
  void OnSetup() override { out_ = static_cast<Output<OUT>*>(output_base_); }
  Output<OUT>* out_ = nullptr;
};

}  // namespace eddy
