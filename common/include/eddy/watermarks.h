#pragma once

#include <functional>
#include <memory>

#include "eddy/operators/operator.h"

namespace eddy {

/// Where a WatermarkGenerator puts its decisions.
class WatermarkOutput {
 public:
  virtual ~WatermarkOutput() = default;
  virtual void EmitWatermark(Watermark wm) = 0;
  virtual void MarkIdle() = 0;
  virtual void MarkActive() = 0;
};

/// Decides watermarks from the events it sees (punctuated) and/or periodically.
template <class T>
class WatermarkGenerator {
 public:
  virtual ~WatermarkGenerator() = default;
  virtual void OnEvent(const T& event, Timestamp ts, WatermarkOutput& out) = 0;
  virtual void OnPeriodicEmit(WatermarkOutput& out) = 0;
};

/// Flink's BoundedOutOfOrderness: watermark = max timestamp seen - outOfOrderness - 1.
template <class T>
class BoundedOutOfOrdernessGenerator final : public WatermarkGenerator<T> {
 public:
  explicit BoundedOutOfOrdernessGenerator(Duration delay) : delay_(delay) {}
  void OnEvent(const T&, Timestamp ts, WatermarkOutput&) override {
    if (ts > max_ts_) max_ts_ = ts;
  }
  void OnPeriodicEmit(WatermarkOutput& out) override {
    if (max_ts_ == Timestamp::Min()) return;
    out.EmitWatermark(max_ts_ - delay_ - Duration::Millis(1));
  }

 private:
  Duration delay_;
  Timestamp max_ts_ = Timestamp::Min();
};

/// How a stream gets event timestamps and watermarks (Flink's WatermarkStrategy).
template <class T>
struct WatermarkStrategy {
  /// Extracts the event timestamp; nullptr keeps the timestamp the record already has.
  std::function<Timestamp(const T&)> timestamp_assigner;
  /// Creates one generator per subtask; nullptr = no watermarks (only the final one at end of
  /// input).
  std::function<std::unique_ptr<WatermarkGenerator<T>>()> generator;
  /// Periodic emission interval (Flink's autoWatermarkInterval, default 200 ms). 0 = ask the
  /// generator after every event, which makes results independent of timing (tests, examples).
  Duration interval = Duration::Millis(200);
  /// Mark the stream idle when no event arrived for this long (0 = never).
  Duration idleness;

  static WatermarkStrategy ForBoundedOutOfOrderness(Duration max_out_of_orderness) {
    WatermarkStrategy s;
    s.generator = [max_out_of_orderness] {
      return std::make_unique<BoundedOutOfOrdernessGenerator<T>>(max_out_of_orderness);
    };
    return s;
  }
  static WatermarkStrategy ForMonotonousTimestamps() {
    return ForBoundedOutOfOrderness(Duration());
  }
  static WatermarkStrategy NoWatermarks() { return {}; }
  static WatermarkStrategy ForGenerator(std::function<std::unique_ptr<WatermarkGenerator<T>>()> g) {
    WatermarkStrategy s;
    s.generator = std::move(g);
    return s;
  }
  WatermarkStrategy WithTimestampAssigner(std::function<Timestamp(const T&)> f) const {
    auto s = *this;
    s.timestamp_assigner = std::move(f);
    return s;
  }
  WatermarkStrategy WithIdleness(Duration d) const {
    auto s = *this;
    s.idleness = d;
    return s;
  }
  WatermarkStrategy WithInterval(Duration d) const {
    auto s = *this;
    s.interval = d;
    return s;
  }
};

/// Assigns timestamps and generates watermarks mid-stream (usually chained to the source).
/// Upstream watermarks are ignored except the final Max at end of input (as in Flink).
template <class T>
class TimestampsAndWatermarksOperator final : public OneInputOperator<T, T>,
                                              private WatermarkOutput {
 public:
  explicit TimestampsAndWatermarksOperator(WatermarkStrategy<T> s) : strategy_(std::move(s)) {}

  Status Open() override {
    if (strategy_.generator) generator_ = strategy_.generator();
    auto* pts = this->ctx_->processing_time;
    if (pts && generator_ && strategy_.interval.millis() > 0) {
      SchedulePeriodic(pts->Now() + strategy_.interval);
    }
    if (pts && strategy_.idleness.millis() > 0) {
      last_event_ = pts->Now();
      ScheduleIdleCheck(pts->Now() + strategy_.idleness);
    }
    return Status::Ok();
  }
  void ProcessWatermark(Watermark wm) override {
    if (wm == Watermark::Max()) EmitWatermark(wm);
  }

 protected:
  void Process(const T& v, Timestamp ts) override {
    Timestamp t = strategy_.timestamp_assigner ? strategy_.timestamp_assigner(v) : ts;
    if (idle_) MarkActive();
    if (strategy_.idleness.millis() > 0) last_event_ = this->ctx_->processing_time->Now();
    this->out_->Collect(v, t);
    if (generator_) {
      generator_->OnEvent(v, t, *this);
      if (strategy_.interval.millis() == 0) generator_->OnPeriodicEmit(*this);
    }
  }

 private:
  void EmitWatermark(Watermark wm) override {
    if (wm <= emitted_) return;
    emitted_ = wm;
    this->out_->EmitWatermark(wm);
  }
  void MarkIdle() override {
    if (idle_) return;
    idle_ = true;
    this->out_->EmitIdleness(true);
  }
  void MarkActive() override {
    if (!idle_) return;
    idle_ = false;
    this->out_->EmitIdleness(false);
  }
  void SchedulePeriodic(Timestamp at) {
    this->ctx_->processing_time->RegisterTimer(at, [this](Timestamp now) {
      if (!idle_) generator_->OnPeriodicEmit(*this);
      SchedulePeriodic(now + strategy_.interval);
    });
  }
  void ScheduleIdleCheck(Timestamp at) {
    this->ctx_->processing_time->RegisterTimer(at, [this](Timestamp now) {
      if (now - last_event_ >= strategy_.idleness) MarkIdle();
      Duration step = std::max(Duration::Millis(10), strategy_.idleness * 1);
      ScheduleIdleCheck(now + Duration::Millis(std::max<int64_t>(10, step.millis() / 4)));
    });
  }

  WatermarkStrategy<T> strategy_;
  std::unique_ptr<WatermarkGenerator<T>> generator_;
  Watermark emitted_ = Watermark::Min();
  bool idle_ = false;
  Timestamp last_event_;
};

}  // namespace eddy
