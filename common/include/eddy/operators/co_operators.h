#pragma once

/// Two-input operators of connected streams: coMap, coFlatMap, (keyed) coProcess and the
/// (keyed) broadcast process operators. Lifecycle and threading as StreamOperatorBase: built by
/// the graph's factory, then Setup -> Open -> elements/watermarks/timers -> Close on the task
/// thread. Keyed variants get key selectors through SetKeySelectors before Setup.

#include <memory>
#include <optional>
#include <string>

#include "eddy/broadcast.h"
#include "eddy/functions.h"
#include "eddy/operators/basic.h"
#include "eddy/operators/operator.h"

namespace eddy {

/// connect().map(): one CoMapFunction, shared by whoever created the operator.
template <class IN1, class IN2, class OUT>
class CoMapOperator final : public TwoInputOperator<IN1, IN2, OUT> {
 public:
  explicit CoMapOperator(std::shared_ptr<CoMapFunction<IN1, IN2, OUT>> f) : f_(std::move(f)) {}
  Status Open() override { return OpenIfRich(f_, this->ctx_, rc_); }
  void Close() override { CloseIfRich(f_); }

 protected:
  void Process1(const IN1& v, Timestamp ts) override { this->out_->Collect(f_->Map1(v), ts); }
  void Process2(const IN2& v, Timestamp ts) override { this->out_->Collect(f_->Map2(v), ts); }

 private:
  std::shared_ptr<CoMapFunction<IN1, IN2, OUT>> f_;
  std::unique_ptr<RuntimeContext> rc_;
};

/// connect().flatMap().
template <class IN1, class IN2, class OUT>
class CoFlatMapOperator final : public TwoInputOperator<IN1, IN2, OUT> {
 public:
  explicit CoFlatMapOperator(std::shared_ptr<CoFlatMapFunction<IN1, IN2, OUT>> f)
      : f_(std::move(f)) {}
  Status Open() override {
    collector_.Reset(this->out_);
    return OpenIfRich(f_, this->ctx_, rc_);
  }
  void Close() override { CloseIfRich(f_); }

 protected:
  void Process1(const IN1& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    f_->FlatMap1(v, collector_);
  }
  void Process2(const IN2& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    f_->FlatMap2(v, collector_);
  }

 private:
  std::shared_ptr<CoFlatMapFunction<IN1, IN2, OUT>> f_;
  TimestampedCollector<OUT> collector_;
  std::unique_ptr<RuntimeContext> rc_;
};

/// connect().process(CoProcessFunction), and after keyBy the KeyedCoProcessFunction: keyed state
/// and timers for both inputs (the current key is set from the input's key selector).
template <class IN1, class IN2, class OUT>
class CoProcessOperator final : public TwoInputOperator<IN1, IN2, OUT> {
 public:
  explicit CoProcessOperator(std::shared_ptr<CoProcessFunction<IN1, IN2, OUT>> f)
      : f_(std::move(f)) {}
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
  void Process1(const IN1& v, Timestamp ts) override {
    Prepare(ts);
    f_->ProcessElement1(v, ctx_impl_, collector_);
  }
  void Process2(const IN2& v, Timestamp ts) override {
    Prepare(ts);
    f_->ProcessElement2(v, ctx_impl_, collector_);
  }

 private:
  void Prepare(Timestamp ts) {
    collector_.set_timestamp(ts);
    ctx_impl_.Set(ts, this->current_watermark(), TimeDomain::kEventTime);
  }
  void Fire(const Timer& t, TimeDomain d) {
    Timestamp ts = d == TimeDomain::kEventTime ? t.time : Timestamp::None();
    collector_.set_timestamp(ts);
    ctx_impl_.Set(ts, this->timers_->current_watermark(), d);
    f_->OnTimer(t.time, ctx_impl_, collector_);
  }

  std::shared_ptr<CoProcessFunction<IN1, IN2, OUT>> f_;
  TimestampedCollector<OUT> collector_;
  ProcessContextImpl<OUT> ctx_impl_;
  std::unique_ptr<RuntimeContext> rc_;
};

namespace co_internal {

/// The parts every broadcast context shares; Base is one of the function's context interfaces.
template <class Base>
class BroadcastCtxCommon : public Base {
 public:
  void Init(OutputBase* out, KeyedStateBackend* backend, BroadcastStateStore* states,
            InternalTimerService* timers) {
    out_ = out;
    backend_ = backend;
    states_ = states;
    if (timers) timer_service_.emplace(timers);
  }
  void Set(Timestamp ts, Watermark wm) {
    ts_ = ts;
    wm_ = wm;
  }
  Timestamp timestamp() const override { return ts_; }
  Watermark current_watermark() const override { return wm_; }
  TimerService* timer_service() override { return timer_service_ ? &*timer_service_ : nullptr; }
  const std::string& current_key_bytes() const override {
    static const std::string kEmpty;
    return backend_ ? backend_->current_key() : kEmpty;
  }

 protected:
  BroadcastStateStore& broadcast_states() override { return *states_; }
  void EmitSide(int tag, const void* value) override { out_->EmitSide(tag, value, ts_); }
  KeyedStateBackend* backend_ = nullptr;

 private:
  OutputBase* out_ = nullptr;
  BroadcastStateStore* states_ = nullptr;
  std::optional<TimerService> timer_service_;
  Timestamp ts_ = Timestamp::None();
  Watermark wm_ = Watermark::Min();
};

}  // namespace co_internal

/// Non-keyed broadcast state pattern: input 0 is the main stream, input 1 the broadcast stream.
template <class IN1, class IN2, class OUT>
class BroadcastProcessOperator final : public TwoInputOperator<IN1, IN2, OUT> {
 public:
  BroadcastProcessOperator(std::shared_ptr<BroadcastProcessFunction<IN1, IN2, OUT>> f,
                           std::vector<BroadcastStateDeclaration> declared)
      : f_(std::move(f)), declared_(std::move(declared)) {}
  Status Open() override {
    states_.Init(this->ctx_);
    for (const auto& d : declared_) d.create(states_);
    collector_.Reset(this->out_);
    read_only_.Init(this->out_, nullptr, &states_, nullptr);
    read_write_.Init(this->out_, nullptr, &states_, nullptr);
    rc_ = std::make_unique<RuntimeContext>(this->ctx_);
    return f_->Open(*rc_);
  }
  void Close() override { f_->Close(); }
  /// Broadcast state goes to the OperatorStateStore; `out` stays empty.
  void SnapshotState(std::string& out) override {
    (void)out;
    states_.Snapshot();
  }
  BroadcastStateStore& broadcast_states() { return states_; }

 protected:
  void Process1(const IN1& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    read_only_.Set(ts, this->current_watermark());
    f_->ProcessElement(v, read_only_, collector_);
  }
  void Process2(const IN2& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    read_write_.Set(ts, this->current_watermark());
    f_->ProcessBroadcastElement(v, read_write_, collector_);
  }

 private:
  std::shared_ptr<BroadcastProcessFunction<IN1, IN2, OUT>> f_;
  std::vector<BroadcastStateDeclaration> declared_;
  BroadcastStateStore states_;
  TimestampedCollector<OUT> collector_;
  co_internal::BroadcastCtxCommon<ReadOnlyBroadcastContext> read_only_;
  co_internal::BroadcastCtxCommon<BroadcastContext> read_write_;
  std::unique_ptr<RuntimeContext> rc_;
};

/// Keyed broadcast state pattern: input 0 is keyed (state and timers per key), input 1 is the
/// broadcast stream (no key). Set a key selector for input 0 only.
template <class K, class IN1, class IN2, class OUT>
class KeyedBroadcastProcessOperator final : public TwoInputOperator<IN1, IN2, OUT> {
  using Fn = KeyedBroadcastProcessFunction<K, IN1, IN2, OUT>;

 public:
  KeyedBroadcastProcessOperator(std::shared_ptr<Fn> f,
                                std::vector<BroadcastStateDeclaration> declared)
      : f_(std::move(f)), declared_(std::move(declared)) {}
  Status Open() override {
    if (!this->is_keyed()) {
      return Status::InvalidArgument("keyed broadcast process: the main input has no key selector");
    }
    states_.Init(this->ctx_);
    for (const auto& d : declared_) d.create(states_);
    collector_.Reset(this->out_);
    InternalTimerService* timers = this->Timers();
    read_only_.Init(this->out_, this->ctx_->keyed_backend, &states_, timers);
    read_write_.Init(this->out_, this->ctx_->keyed_backend, &states_, nullptr);
    on_timer_.Init(this->out_, this->ctx_->keyed_backend, &states_, timers);
    rc_ = std::make_unique<RuntimeContext>(this->ctx_);
    return f_->Open(*rc_);
  }
  void Close() override { f_->Close(); }
  void SnapshotState(std::string& out) override {
    (void)out;
    states_.Snapshot();
  }
  void OnEventTime(const Timer& t) override { Fire(t, TimeDomain::kEventTime); }
  void OnProcessingTime(const Timer& t) override { Fire(t, TimeDomain::kProcessingTime); }
  BroadcastStateStore& broadcast_states() { return states_; }

 protected:
  void Process1(const IN1& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    read_only_.Set(ts, this->current_watermark());
    f_->ProcessElement(v, read_only_, collector_);
  }
  void Process2(const IN2& v, Timestamp ts) override {
    collector_.set_timestamp(ts);
    read_write_.Set(ts, this->current_watermark());
    f_->ProcessBroadcastElement(v, read_write_, collector_);
  }

 private:
  class Ctx final : public co_internal::BroadcastCtxCommon<typename Fn::Context> {
   public:
    // The broadcast side has no current key (the backend's is whatever the main input left).
    const std::string& current_key_bytes() const override {
      static const std::string kEmpty;
      return kEmpty;
    }

   protected:
    KeyedStateBackend* keyed_backend() override { return this->backend_; }
  };
  class TimerCtx final : public co_internal::BroadcastCtxCommon<typename Fn::OnTimerContext> {
   public:
    void set_domain(TimeDomain d) { domain_ = d; }
    TimeDomain time_domain() const override { return domain_; }

   private:
    TimeDomain domain_ = TimeDomain::kEventTime;
  };

  void Fire(const Timer& t, TimeDomain d) {
    Timestamp ts = d == TimeDomain::kEventTime ? t.time : Timestamp::None();
    collector_.set_timestamp(ts);
    on_timer_.Set(ts, this->timers_->current_watermark());
    on_timer_.set_domain(d);
    f_->OnTimer(t.time, on_timer_, collector_);
  }

  std::shared_ptr<Fn> f_;
  std::vector<BroadcastStateDeclaration> declared_;
  BroadcastStateStore states_;
  TimestampedCollector<OUT> collector_;
  co_internal::BroadcastCtxCommon<ReadOnlyBroadcastContext> read_only_;
  Ctx read_write_;
  TimerCtx on_timer_;
  std::unique_ptr<RuntimeContext> rc_;
};

}  // namespace eddy
