#pragma once

#include <memory>
#include <string>

#include "eddy/operators/operator.h"
#include "tests/operator_harness.h"

namespace eddy::testing {

/// Runs one two-input operator outside a task (Flink's TwoInputStreamOperatorTestHarness): Open,
/// feed elements and watermarks per input, advance processing time, look at the output, the
/// keyed backend and the operator state. Elements without a timestamp: pass Timestamp::None().
template <class IN1, class IN2, class OUT>
class TwoInputHarness {
 public:
  /// `restored` seeds the operator state store (as a restore from a snapshot would).
  explicit TwoInputHarness(std::unique_ptr<TwoInputOperator<IN1, IN2, OUT>> op,
                           int max_parallelism = 128, OperatorStateStore restored = {})
      : op_(std::move(op)), op_state_(std::move(restored)) {
    ctx_.operator_name = "harness";
    ctx_.processing_time = &time_;
    ctx_.counters = &counters_;
    ctx_.operator_state = &op_state_;
    ctx_.max_parallelism = max_parallelism;
    ctx_.task_failure = &failure_;
    if (op_->is_keyed()) {
      backend_ = MakeTestBackend(max_parallelism, KeyGroupRange{0, max_parallelism - 1},
                                 [this] { return time_.Now(); });
      backend_->set_error_sink(&failure_);
      ctx_.keyed_backend = backend_.get();
    }
    op_->Setup(&ctx_, &out_);
  }
  Status Open() { return op_->Open(); }
  void Close() { op_->Close(); }

  void Element1(const IN1& v, int64_t ts) { Element1(v, Timestamp(ts)); }
  void Element1(const IN1& v, Timestamp ts) { Input1()->ProcessElement(v, ts); }
  void Element2(const IN2& v, int64_t ts) { Element2(v, Timestamp(ts)); }
  void Element2(const IN2& v, Timestamp ts) { Input2()->ProcessElement(v, ts); }
  void Watermark1(int64_t wm) { Input1()->ProcessWatermark(eddy::Watermark(wm)); }
  void Watermark2(int64_t wm) { Input2()->ProcessWatermark(eddy::Watermark(wm)); }
  /// The same watermark on both inputs.
  void Watermark(int64_t wm) {
    Watermark1(wm);
    Watermark2(wm);
  }
  void AdvanceProcessingTime(int64_t t) { time_.Advance(Timestamp(t)); }
  /// Calls the operator's SnapshotState (operator state lands in operator_state()).
  std::string Snapshot() {
    std::string s;
    op_->SnapshotState(s);
    return s;
  }

  CapturingOutput<OUT>& output() { return out_; }
  OperatorCounters& counters() { return counters_; }
  KeyedStateBackend* backend() { return backend_.get(); }
  OperatorStateStore& operator_state() { return op_state_; }
  /// The first failure the operator reported through OperatorContext::Fail.
  const Status& failure() const { return failure_; }
  TwoInputOperator<IN1, IN2, OUT>& op() { return *op_; }

 private:
  Input<IN1>* Input1() { return static_cast<Input<IN1>*>(op_->input(0)); }
  Input<IN2>* Input2() { return static_cast<Input<IN2>*>(op_->input(1)); }

  std::unique_ptr<TwoInputOperator<IN1, IN2, OUT>> op_;
  OperatorContext ctx_;
  OperatorCounters counters_;
  OperatorStateStore op_state_;
  Status failure_;
  ManualTimeService time_;
  std::unique_ptr<KeyedStateBackend> backend_;
  CapturingOutput<OUT> out_;
};

}  // namespace eddy::testing
