#pragma once

#include <memory>
#include <optional>
#include <string>

#include "eddy/aggregate_function.h"
#include "eddy/operators/operator.h"
#include "eddy/state/keyed_state.h"

namespace eddy {

/// Receives the results of a function that emits zero or more values.
template <class T>
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void Collect(const T& value) = 0;
};

/// A side output: a typed, named second stream an operator may emit to (Flink's OutputTag).
template <class T>
class OutputTag {
 public:
  explicit OutputTag(std::string name) : name_(std::move(name)), id_(NextId()) {}
  const std::string& name() const { return name_; }
  int id() const { return id_; }

 private:
  static int NextId() {
    static int next = 1;
    return next++;
  }
  std::string name_;
  int id_;
};

/// What a rich function can see of where it runs: subtask, parallelism and state.
class RuntimeContext {
 public:
  explicit RuntimeContext(OperatorContext* ctx) : ctx_(ctx) {}
  int subtask_index() const { return ctx_->subtask_index; }
  int parallelism() const { return ctx_->parallelism; }
  int max_parallelism() const { return ctx_->max_parallelism; }
  const std::string& task_name() const { return ctx_->task_name; }
  int attempt_number() const { return ctx_->attempt; }

  /// Keyed state; only on keyed streams (after keyBy).
  template <class V>
  ValueState<V>* GetState(const ValueStateDescriptor<V>& d) {
    return Keyed()->GetValueState(d);
  }
  template <class V>
  ListState<V>* GetListState(const ListStateDescriptor<V>& d) {
    return Keyed()->GetListState(d);
  }
  template <class K, class V>
  MapState<K, V>* GetMapState(const MapStateDescriptor<K, V>& d) {
    return Keyed()->GetMapState(d);
  }
  template <class V>
  ReducingState<V>* GetReducingState(const ReducingStateDescriptor<V>& d) {
    return Keyed()->GetReducingState(d);
  }
  template <class IN, class ACC, class OUT>
  AggregatingState<IN, OUT>* GetAggregatingState(
      const AggregatingStateDescriptor<IN, ACC, OUT>& d) {
    return Keyed()->GetAggregatingState(d);
  }
  /// Operator (non-keyed) list state: even-split redistribution on rescale.
  OperatorStateStore::Entry& GetListState(const std::string& name) {
    return ctx_->operator_state->Get(name, OperatorStateStore::Mode::kSplit);
  }
  /// Operator union list state: every subtask gets the whole list on restore.
  OperatorStateStore::Entry& GetUnionListState(const std::string& name) {
    return ctx_->operator_state->Get(name, OperatorStateStore::Mode::kUnion);
  }
  bool has_keyed_state() const { return ctx_->keyed_backend != nullptr; }
  /// Fails the task with `s` after the current record (for errors outside Open's return).
  void Fail(Status s) { ctx_->Fail(std::move(s)); }

 private:
  KeyedStateBackend* Keyed() { return ctx_->keyed_backend; }
  OperatorContext* ctx_;
};

/// Lifecycle hooks every function may override (Flink's RichFunction).
class RichFunction {
 public:
  virtual ~RichFunction() = default;
  /// Called once before the first element, with state available.
  virtual Status Open(RuntimeContext& ctx) {
    (void)ctx;
    return Status::Ok();
  }
  virtual void Close() {}
};

template <class IN, class OUT>
class MapFunction : public RichFunction {
 public:
  virtual OUT Map(const IN& value) = 0;
};
template <class IN, class OUT>
class FlatMapFunction : public RichFunction {
 public:
  virtual void FlatMap(const IN& value, Collector<OUT>& out) = 0;
};
template <class T>
class FilterFunction : public RichFunction {
 public:
  virtual bool Filter(const T& value) = 0;
};
template <class T>
class SinkFunction : public RichFunction {
 public:
  virtual void Invoke(const T& value, Timestamp ts) = 0;
  /// Called when the input ended (bounded streams) before Close.
  virtual void Finish() {}
  /// Writes out what the sink buffered. Called on the task thread at most kSinkFlushInterval
  /// after a record arrived, so buffering sinks never hold output back while input pauses.
  virtual void Flush() {}
  /// Checkpoint hooks (Flink's TwoPhaseCommitSinkFunction): close the current transaction before
  /// barrier `id` goes on (pre-commit), record pending transactions in operator state when the
  /// snapshot is taken, and commit them once checkpoint `id` completed. Task thread.
  virtual void PrepareSnapshotPreBarrier(CheckpointId id) { (void)id; }
  virtual void SnapshotState() {}
  virtual void NotifyCheckpointComplete(CheckpointId id) { (void)id; }
};

/// How long a buffering sink may hold a record before Flush() is called.
inline constexpr Duration kSinkFlushInterval = Duration::Millis(50);

/// Timers for process functions; keyed streams only.
class TimerService {
 public:
  explicit TimerService(InternalTimerService* t) : t_(t) {}
  Timestamp CurrentProcessingTime() { return t_->CurrentProcessingTime(); }
  Watermark CurrentWatermark() { return t_->current_watermark(); }
  void RegisterEventTimeTimer(Timestamp t) { t_->RegisterEventTimeTimer(Namespace::Void(), t); }
  void DeleteEventTimeTimer(Timestamp t) { t_->DeleteEventTimeTimer(Namespace::Void(), t); }
  void RegisterProcessingTimeTimer(Timestamp t) {
    t_->RegisterProcessingTimeTimer(Namespace::Void(), t);
  }
  void DeleteProcessingTimeTimer(Timestamp t) {
    t_->DeleteProcessingTimeTimer(Namespace::Void(), t);
  }

 private:
  InternalTimerService* t_;
};

/// Context of a process function call: the element's timestamp, timers, side outputs, the key.
class ProcessContext {
 public:
  virtual ~ProcessContext() = default;
  /// The current element's (or firing timer's) timestamp; None when it has none.
  virtual Timestamp timestamp() const = 0;
  virtual Watermark current_watermark() const = 0;
  /// Only on keyed streams; nullptr otherwise.
  virtual TimerService* timer_service() = 0;
  /// The serialized current key (keyed streams); decode with Serializer<K> or CurrentKey<K>().
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

/// Which kind of time a fired timer belongs to.
enum class TimeDomain : uint8_t { kEventTime, kProcessingTime };

class OnTimerContext : public ProcessContext {
 public:
  virtual TimeDomain time_domain() const = 0;
};

template <class IN, class OUT>
class ProcessFunction : public RichFunction {
 public:
  virtual void ProcessElement(const IN& value, ProcessContext& ctx, Collector<OUT>& out) = 0;
  virtual void OnTimer(Timestamp time, OnTimerContext& ctx, Collector<OUT>& out) {
    (void)time, (void)ctx, (void)out;
  }
};
/// On keyed streams: state and timers are scoped to the current key.
template <class K, class IN, class OUT>
class KeyedProcessFunction : public ProcessFunction<IN, OUT> {
 public:
  using KeyType = K;
};

template <class IN1, class IN2, class OUT>
class CoProcessFunction : public RichFunction {
 public:
  virtual void ProcessElement1(const IN1& value, ProcessContext& ctx, Collector<OUT>& out) = 0;
  virtual void ProcessElement2(const IN2& value, ProcessContext& ctx, Collector<OUT>& out) = 0;
  virtual void OnTimer(Timestamp time, OnTimerContext& ctx, Collector<OUT>& out) {
    (void)time, (void)ctx, (void)out;
  }
};
template <class K, class IN1, class IN2, class OUT>
class KeyedCoProcessFunction : public CoProcessFunction<IN1, IN2, OUT> {};

template <class IN1, class IN2, class OUT>
class CoMapFunction : public RichFunction {
 public:
  virtual OUT Map1(const IN1& value) = 0;
  virtual OUT Map2(const IN2& value) = 0;
};
template <class IN1, class IN2, class OUT>
class CoFlatMapFunction : public RichFunction {
 public:
  virtual void FlatMap1(const IN1& value, Collector<OUT>& out) = 0;
  virtual void FlatMap2(const IN2& value, Collector<OUT>& out) = 0;
};

/// Interval join: called for each pair with right.ts in [left.ts + lower, left.ts + upper].
template <class L, class R, class OUT>
class ProcessJoinFunction : public RichFunction {
 public:
  class Context {
   public:
    virtual ~Context() = default;
    virtual Timestamp left_timestamp() const = 0;
    virtual Timestamp right_timestamp() const = 0;
    virtual Timestamp timestamp() const = 0;
  };
  virtual void ProcessElement(const L& left, const R& right, Context& ctx, Collector<OUT>& out) = 0;
};

}  // namespace eddy
