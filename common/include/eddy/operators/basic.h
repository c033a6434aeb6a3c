#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "eddy/functions.h"
#include "eddy/operators/operator.h"

namespace eddy {

/// Opens `f` if it is (a pointer to) a RichFunction.
template <class F>
Status OpenIfRich(F& f, OperatorContext* ctx, std::unique_ptr<RuntimeContext>& rc) {
  if constexpr (requires { f->Open(*rc); }) {
    rc = std::make_unique<RuntimeContext>(ctx);
    return f->Open(*rc);
  } else {
    return Status::Ok();
  }
}
template <class F>
void CloseIfRich(F& f) {
  if constexpr (requires { f->Close(); }) f->Close();
}

/// Collector that forwards to an Output with the current element's timestamp.
template <class T>
class TimestampedCollector final : public Collector<T> {
 public:
  void Reset(Output<T>* out) { out_ = out; }
  void set_timestamp(Timestamp ts) { ts_ = ts; }
  void Collect(const T& v) override { out_->Collect(v, ts_); }

 private:
  Output<T>* out_ = nullptr;
  Timestamp ts_ = Timestamp::None();
};

/// map: F is a callable OUT(const IN&) or a pointer-like to MapFunction<IN,OUT>.
template <class IN, class OUT, class F>
class MapOperator final : public OneInputOperator<IN, OUT> {
 public:
  explicit MapOperator(F f) : f_(std::move(f)) {}
  Status Open() override { return OpenIfRich(f_, this->ctx_, rc_); }
  void Close() override { CloseIfRich(f_); }

 protected:
  void Process(const IN& v, Timestamp ts) override {
    if constexpr (requires { f_->Map(v); }) {
      this->out_->Collect(f_->Map(v), ts);
    } else {
      this->out_->Collect(f_(v), ts);
    }
  }

 private:
  F f_;
  std::unique_ptr<RuntimeContext> rc_;
};

/// filter: F is bool(const IN&) or pointer-like to FilterFunction<IN>.
template <class IN, class F>
class FilterOperator final : public OneInputOperator<IN, IN> {
 public:
  explicit FilterOperator(F f) : f_(std::move(f)) {}
  Status Open() override { return OpenIfRich(f_, this->ctx_, rc_); }
  void Close() override { CloseIfRich(f_); }

 protected:
  void Process(const IN& v, Timestamp ts) override {
    bool keep;
    if constexpr (requires { f_->Filter(v); }) {
      keep = f_->Filter(v);
    } else {
      keep = f_(v);
    }
    if (keep) this->out_->Collect(v, ts);
  }

 private:
  F f_;
  std::unique_ptr<RuntimeContext> rc_;
};

/// flatMap: F is void(const IN&, Collector<OUT>&) or pointer-like to FlatMapFunction<IN,OUT>.
template <class IN, class OUT, class F>
class FlatMapOperator final : public OneInputOperator<IN, OUT> {
 public:
  explicit FlatMapOperator(F f) : f_(std::move(f)) {}
  Status Open() override {
    collector_.Reset(this->out_);
    return OpenIfRich(f_, this->ctx_, rc_);
  }
  void Close() override { CloseIfRich(f_); }

 protected:
  void Process(const IN& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    if constexpr (requires { f_->FlatMap(v, collector_); }) {
      f_->FlatMap(v, collector_);
    } else {
      f_(v, collector_);
    }
  }

 private:
  F f_;
  TimestampedCollector<OUT> collector_;
  std::unique_ptr<RuntimeContext> rc_;
};

/// sink: F is void(const IN&, Timestamp) or pointer-like to SinkFunction<IN>.
template <class IN, class F>
class SinkOperator final : public OneInputOperator<IN, IN> {
 public:
  explicit SinkOperator(F f) : f_(std::move(f)) {}
  Status Open() override { return OpenIfRich(f_, this->ctx_, rc_); }
  void Finish() override {
    if constexpr (requires { f_->Finish(); }) f_->Finish();
  }
  void Close() override { CloseIfRich(f_); }
  void PrepareSnapshotPreBarrier(CheckpointId id) override {
    if constexpr (requires { f_->PrepareSnapshotPreBarrier(id); })
      f_->PrepareSnapshotPreBarrier(id);
  }
  void SnapshotState(std::string& out) override {
    (void)out;
    if constexpr (requires { f_->SnapshotState(); }) f_->SnapshotState();
  }
  void NotifyCheckpointComplete(CheckpointId id) override {
    if constexpr (requires { f_->NotifyCheckpointComplete(id); }) f_->NotifyCheckpointComplete(id);
  }

 protected:
  void Process(const IN& v, Timestamp ts) override {
    if constexpr (requires { f_->Invoke(v, ts); }) {
      f_->Invoke(v, ts);
      if constexpr (requires { f_->Flush(); }) {
        if (!flush_pending_) ScheduleFlush();
      }
    } else {
      f_(v, ts);
    }
  }

 private:
  // One timer per flush interval while records arrive; none while the input is quiet.
  void ScheduleFlush() {
    ProcessingTimeService* pt = this->ctx_ ? this->ctx_->processing_time : nullptr;
    if (!pt) return;
    flush_pending_ = true;
    pt->RegisterTimer(pt->Now() + kSinkFlushInterval, [this](Timestamp) {
      flush_pending_ = false;
      f_->Flush();
    });
  }

  F f_;
  std::unique_ptr<RuntimeContext> rc_;
  bool flush_pending_ = false;
};

/// Rolling reduce on a keyed stream: emits the running result for every element.
template <class T>
class GroupedReduceOperator final : public OneInputOperator<T, T> {
 public:
  explicit GroupedReduceOperator(std::shared_ptr<const ReduceFunction<T>> f) : f_(std::move(f)) {}
  Status Open() override {
    state_ = this->Backend()->GetValueState(ValueStateDescriptor<T>{{"_reduce", {}}});
    return Status::Ok();
  }

 protected:
  void Process(const T& v, Timestamp ts) override {
    if (const T* cur = state_->Get()) {
      T& acc = state_->GetOrCreate();
      (void)cur;
      f_->Reduce(acc, v);
      this->out_->Collect(acc, ts);
    } else {
      state_->Update(v);
      this->out_->Collect(v, ts);
    }
  }

 private:
  std::shared_ptr<const ReduceFunction<T>> f_;
  ValueState<T>* state_ = nullptr;
};

/// Shared by the process-function operators: the Context handed to user code.
template <class OUT>
class ProcessContextImpl final : public OnTimerContext {
 public:
  void Init(OutputBase* out, KeyedStateBackend* backend) {
    out_ = out;
    backend_ = backend;
  }
  void Set(Timestamp ts, Watermark wm, TimeDomain domain) {
    ts_ = ts;
    wm_ = wm;
    domain_ = domain;
  }
  void SetTimerService(InternalTimerService* t) { timer_service_.emplace(t); }
  Timestamp timestamp() const override { return ts_; }
  Watermark current_watermark() const override { return wm_; }
  TimerService* timer_service() override { return timer_service_ ? &*timer_service_ : nullptr; }
  const std::string& current_key_bytes() const override {
    static const std::string kEmpty;
    return backend_ ? backend_->current_key() : kEmpty;
  }
  TimeDomain time_domain() const override { return domain_; }

 protected:
  void EmitSide(int tag, const void* value) override { out_->EmitSide(tag, value, ts_); }

 private:
  OutputBase* out_ = nullptr;
  KeyedStateBackend* backend_ = nullptr;
  std::optional<TimerService> timer_service_;
  Timestamp ts_ = Timestamp::None();
  Watermark wm_ = Watermark::Min();
  TimeDomain domain_ = TimeDomain::kEventTime;
};

/// process(): ProcessFunction on any stream, KeyedProcessFunction after keyBy (timers allowed).
template <class IN, class OUT>
class ProcessOperator final : public OneInputOperator<IN, OUT> {
 public:
  explicit ProcessOperator(std::shared_ptr<ProcessFunction<IN, OUT>> f) : f_(std::move(f)) {}
  Status Open() override {
    collector_.Reset(this->out_);
    ctx_impl_.Init(this->out_, this->ctx_->keyed_backend);
    if (this->is_keyed()) ctx_impl_.SetTimerService(this->Timers());
    rc_ = std::make_unique<RuntimeContext>(this->ctx_);
    return f_->Open(*rc_);
  }
  void Close() override { f_->Close(); }
  void OnEventTime(const Timer& t) override { Fire(t, TimeDomain::kEventTime); }
  void OnProcessingTime(const Timer& t) override { Fire(t, TimeDomain::kProcessingTime); }

 protected:
  void Process(const IN& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    ctx_impl_.Set(ts, this->current_watermark(), TimeDomain::kEventTime);
    f_->ProcessElement(v, ctx_impl_, collector_);
  }

 private:
  void Fire(const Timer& t, TimeDomain d) {
    Timestamp ts = d == TimeDomain::kEventTime ? t.time : Timestamp::None();
    collector_.set_timestamp(ts);
    ctx_impl_.Set(ts, this->timers_->current_watermark(), d);
    f_->OnTimer(t.time, ctx_impl_, collector_);
  }
  std::shared_ptr<ProcessFunction<IN, OUT>> f_;
  TimestampedCollector<OUT> collector_;
  ProcessContextImpl<OUT> ctx_impl_;
  std::unique_ptr<RuntimeContext> rc_;
};

}  // namespace eddy
