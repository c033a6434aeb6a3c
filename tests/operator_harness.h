#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eddy/operators/operator.h"
#include "eddy/runtime/type_info.h"
#include "tests/backend_test.h"

namespace eddy::testing {

/// Manual processing time: timers fire only when the test advances the clock.
class ManualTimeService final : public ProcessingTimeService {
 public:
  Timestamp Now() override { return now_; }
  void RegisterTimer(Timestamp t, std::function<void(Timestamp)> cb) override {
    timers_.emplace(t, std::move(cb));
  }
  void Advance(Timestamp to) {
    now_ = to;
    while (!timers_.empty() && timers_.begin()->first <= now_) {
      auto cb = std::move(timers_.begin()->second);
      timers_.erase(timers_.begin());
      cb(now_);
    }
  }

 private:
  Timestamp now_{0};
  std::multimap<Timestamp, std::function<void(Timestamp)>> timers_;
};

/// Records everything an operator emits, in order (Flink's test harness output).
template <class OUT>
class CapturingOutput final : public Output<OUT> {
 public:
  struct Event {
    enum Kind { kRecord, kWatermark, kSide, kIdle } kind;
    OUT value{};
    Timestamp ts;
    int tag = 0;
  };
  void Collect(const OUT& v, Timestamp ts) override {
    events.push_back({Event::kRecord, v, ts, 0});
  }
  void EmitWatermark(Watermark wm) override { events.push_back({Event::kWatermark, OUT{}, wm, 0}); }
  void EmitIdleness(bool idle) override {
    events.push_back({Event::kIdle, OUT{}, Timestamp(idle), 0});
  }
  void EmitSide(int tag, const void* v, Timestamp ts) override {
    side.push_back({tag, v, ts});
    side_count[tag]++;
  }
  std::vector<OUT> Records() const {
    std::vector<OUT> r;
    for (const auto& e : events) {
      if (e.kind == Event::kRecord) r.push_back(e.value);
    }
    return r;
  }
  std::vector<OUT> TakeRecords() {
    auto r = Records();
    std::erase_if(events, [](const Event& e) { return e.kind == Event::kRecord; });
    return r;
  }
  std::vector<Event> events;
  struct Side {
    int tag;
    const void* value;  // only valid during the call; tests use side_count or a typed copy
    Timestamp ts;
  };
  std::vector<Side> side;
  std::map<int, int> side_count;
};

/// Runs one operator outside a task: Open, feed elements/watermarks, advance processing time.
template <class IN, class OUT>
class OneInputHarness {
 public:
  explicit OneInputHarness(std::unique_ptr<OneInputOperator<IN, OUT>> op, int max_parallelism = 128)
      : op_(std::move(op)) {
    ctx_.processing_time = &time_;
    ctx_.counters = &counters_;
    ctx_.operator_state = &op_state_;
    ctx_.max_parallelism = max_parallelism;
    ctx_.task_failure = &failure_;
    if (op_->is_keyed()) {
      // The backend of the running test (TestBackendKind: heap unless the suite is per backend).
      backend_ = MakeTestBackend(max_parallelism, KeyGroupRange{0, max_parallelism - 1},
                                 [this] { return time_.Now(); });
      backend_->set_error_sink(&failure_);
      ctx_.keyed_backend = backend_.get();
    }
    op_->Setup(&ctx_, &out_);
  }
  Status Open() { return op_->Open(); }
  void Element(const IN& v, int64_t ts) { op_->ProcessElement(v, Timestamp(ts)); }
  void Watermark(int64_t wm) { op_->ProcessWatermark(eddy::Watermark(wm)); }
  void AdvanceProcessingTime(int64_t t) { time_.Advance(Timestamp(t)); }
  CapturingOutput<OUT>& output() { return out_; }
  OperatorCounters& counters() { return counters_; }
  KeyedStateBackend* backend() { return backend_.get(); }
  /// The first failure the operator (or its state backend) reported through OperatorContext::Fail.
  const Status& failure() const { return failure_; }
  OneInputOperator<IN, OUT>& op() { return *op_; }

 private:
  std::unique_ptr<OneInputOperator<IN, OUT>> op_;
  OperatorContext ctx_;
  OperatorCounters counters_;
  OperatorStateStore op_state_;
  Status failure_;
  ManualTimeService time_;
  std::unique_ptr<KeyedStateBackend> backend_;
  CapturingOutput<OUT> out_;
};

}  // namespace eddy::testing
