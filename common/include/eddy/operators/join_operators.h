#pragma once

/// Join building blocks: the tagged union window joins run on (Flink's TaggedUnion and
/// CoGroupWindowFunction) and the interval join operator (Flink's IntervalJoinOperator).

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "eddy/functions.h"
#include "eddy/join_functions.h"
#include "eddy/operators/basic.h"
#include "eddy/operators/operator.h"
#include "eddy/operators/window_operator.h"

namespace eddy {

/// One element of either join input: index 0 = left, 1 = right. Window joins union both inputs
/// into one stream of these, key it and window it.
template <class L, class R>
using TaggedUnion = std::variant<L, R>;

/// The key of a tagged element: the left or the right selector, by tag. Both must produce the
/// same bytes for keys that should meet.
template <class L, class R>
class UnionKeySelector final : public KeySelector<TaggedUnion<L, R>> {
 public:
  UnionKeySelector(std::shared_ptr<const KeySelector<L>> left,
                   std::shared_ptr<const KeySelector<R>> right)
      : left_(std::move(left)), right_(std::move(right)) {}
  void KeyBytes(const TaggedUnion<L, R>& v, std::string& out) const override {
    if (v.index() == 0) {
      left_->KeyBytes(std::get<0>(v), out);
    } else {
      right_->KeyBytes(std::get<1>(v), out);
    }
  }

 private:
  std::shared_ptr<const KeySelector<L>> left_;
  std::shared_ptr<const KeySelector<R>> right_;
};

/// Splits a window's tagged elements by side and hands both lists to a CoGroupFunction.
/// One instance per subtask.
template <class L, class R, class OUT>
class CoGroupWindowFunction final : public ProcessWindowFunction<TaggedUnion<L, R>, OUT> {
 public:
  explicit CoGroupWindowFunction(std::shared_ptr<CoGroupFunction<L, R, OUT>> f)
      : f_(std::move(f)) {}
  Status Open(RuntimeContext& rc) override { return f_->Open(rc); }
  void Close() override { f_->Close(); }
  void Process(WindowContext&, const std::vector<TaggedUnion<L, R>>& elements,
               Collector<OUT>& out) override {
    left_.clear();
    right_.clear();
    for (const auto& e : elements) {
      if (e.index() == 0) {
        left_.push_back(std::get<0>(e));
      } else {
        right_.push_back(std::get<1>(e));
      }
    }
    f_->CoGroup(left_, right_, out);
  }

 private:
  std::shared_ptr<CoGroupFunction<L, R, OUT>> f_;
  std::vector<L> left_;
  std::vector<R> right_;
};

/// A join as a coGroup: the function F is called for every (left, right) pair, in arrival order
/// of each side (inner join: nothing when a side is empty). F is a callable OUT(const L&, const
/// R&), a callable void(const L&, const R&, Collector<OUT>&), or pointer-like to a JoinFunction
/// or FlatJoinFunction.
template <class L, class R, class OUT, class F>
class JoinCoGroupFunction final : public CoGroupFunction<L, R, OUT> {
 public:
  explicit JoinCoGroupFunction(F f) : f_(std::move(f)) {}
  Status Open(RuntimeContext& rc) override {
    if constexpr (requires { f_->Open(rc); }) {
      return f_->Open(rc);
    } else {
      return Status::Ok();
    }
  }
  void Close() override {
    if constexpr (requires { f_->Close(); }) f_->Close();
  }
  void CoGroup(const std::vector<L>& left, const std::vector<R>& right,
               Collector<OUT>& out) override {
    for (const L& l : left) {
      for (const R& r : right) {
        if constexpr (requires { f_->Join(l, r, out); }) {
          f_->Join(l, r, out);
        } else if constexpr (requires { f_->Join(l, r); }) {
          out.Collect(f_->Join(l, r));
        } else if constexpr (std::is_invocable_v<F&, const L&, const R&, Collector<OUT>&>) {
          f_(l, r, out);
        } else {
          out.Collect(f_(l, r));
        }
      }
    }
  }

 private:
  F f_;
};

/// Interval join bounds and late-data handling (Flink's IntervalJoined settings).
struct IntervalJoinOptions {
  /// right.ts - left.ts must lie in [lower, upper] (lower <= upper); may be negative.
  Duration lower;
  Duration upper;
  /// Exclusive bounds move inwards by 1 ms (timestamps are whole milliseconds).
  bool lower_inclusive = true;
  bool upper_inclusive = true;
  /// Side outputs for elements that arrive behind the watermark; 0 = drop and count.
  int left_late_tag = 0;
  int right_late_tag = 0;
};

/// Interval join of two keyed inputs (Flink's IntervalJoinOperator). Each side is buffered per
/// key in MapState<timestamp, elements>; an arriving element joins with the buffered elements of
/// the other side whose timestamps lie within the bounds, then stays buffered until the watermark
/// shows that no element of the other side can still join it (an event-time cleanup timer per
/// element timestamp). Results carry max(left.ts, right.ts). Elements without a timestamp fail
/// the task; elements with ts <= the current watermark are late (side output or dropped), which
/// keeps the cleanup exact: a buffered element is dropped once the watermark reaches the last
/// timestamp a partner could have.
template <class L, class R, class OUT>
class IntervalJoinOperator final : public TwoInputOperator<L, R, OUT> {
 public:
  IntervalJoinOperator(std::shared_ptr<ProcessJoinFunction<L, R, OUT>> f, IntervalJoinOptions o)
      : f_(std::move(f)), options_(o) {}

  Status Open() override {
    if (options_.lower > options_.upper) {
      return Status::InvalidArgument("interval join: lower bound " + options_.lower.ToString() +
                                     " is after upper bound " + options_.upper.ToString());
    }
    if (!this->is_keyed()) {
      return Status::InvalidArgument("interval join: both inputs need to be keyed");
    }
    lower_ = options_.lower.millis() + (options_.lower_inclusive ? 0 : 1);
    upper_ = options_.upper.millis() - (options_.upper_inclusive ? 0 : 1);
    left_ = this->Backend()->GetMapState(
        MapStateDescriptor<int64_t, std::vector<L>>{{"interval-join-left", {}}});
    right_ = this->Backend()->GetMapState(
        MapStateDescriptor<int64_t, std::vector<R>>{{"interval-join-right", {}}});
    this->Timers();
    collector_.Reset(this->out_);
    rc_ = std::make_unique<RuntimeContext>(this->ctx_);
    return f_->Open(*rc_);
  }
  void Close() override { f_->Close(); }

  void OnEventTime(const Timer& t) override {
    // The namespace carries the side and the buffered timestamp to drop.
    if (t.ns.a == kLeftSide) {
      left_->Remove(t.ns.b);
    } else if (t.ns.a == kRightSide) {
      right_->Remove(t.ns.b);
    }
  }

 protected:
  void Process1(const L& v, Timestamp ts) override {
    if (!Admit(ts, options_.left_late_tag, &v)) return;
    Buffer(left_, v, ts);
    // Right partners: ts + lower <= right.ts <= ts + upper.
    size_t n = Match(right_, ts, lower_, upper_, right_matches_);
    for (size_t i = 0; i < n; ++i) {
      const auto& [rts, rs] = right_matches_[i];
      for (const R& r : rs) Emit(v, r, ts, Timestamp(rts));
    }
    RegisterCleanup(kLeftSide, ts, upper_);
  }
  void Process2(const R& v, Timestamp ts) override {
    if (!Admit(ts, options_.right_late_tag, &v)) return;
    Buffer(right_, v, ts);
    // Left partners: ts - upper <= left.ts <= ts - lower.
    size_t n = Match(left_, ts, -upper_, -lower_, left_matches_);
    for (size_t i = 0; i < n; ++i) {
      const auto& [lts, ls] = left_matches_[i];
      for (const L& l : ls) Emit(l, v, Timestamp(lts), ts);
    }
    RegisterCleanup(kRightSide, ts, -lower_);
  }

 private:
  static constexpr int64_t kLeftSide = 1;
  static constexpr int64_t kRightSide = 2;

  class JoinContext final : public ProcessJoinFunction<L, R, OUT>::Context {
   public:
    Timestamp left_timestamp() const override { return left; }
    Timestamp right_timestamp() const override { return right; }
    Timestamp timestamp() const override { return std::max(left, right); }
    Timestamp left;
    Timestamp right;
  };

  /// False (after handling) for elements without timestamps and late elements.
  bool Admit(Timestamp ts, int late_tag, const void* v) {
    if (ts.IsNone()) {
      this->ctx_->Fail(Status::InvalidArgument(
          "interval join '" + this->ctx_->operator_name +
          "': an element has no timestamp; both inputs need event timestamps "
          "(AssignTimestampsAndWatermarks)"));
      return false;
    }
    Watermark wm = this->current_watermark();
    if (wm != Watermark::Min() && ts <= wm) {
      if (late_tag != 0) {
        this->out_->EmitSide(late_tag, v, ts);
      } else if (this->ctx_->counters) {
        ++this->ctx_->counters->late_records_dropped;
      }
      return false;
    }
    return true;
  }
  template <class T>
  void Buffer(MapState<int64_t, std::vector<T>>* buffer, const T& v, Timestamp ts) {
    if (const std::vector<T>* cur = buffer->Get(ts.millis())) {
      std::vector<T> grown = *cur;
      grown.push_back(v);
      buffer->Put(ts.millis(), grown);
    } else {
      buffer->Put(ts.millis(), std::vector<T>{v});
    }
  }
  /// Copies the other side's buckets in [ts + lo, ts + hi] into the first n entries of `matches`,
  /// in timestamp order, and returns n. Copies, because a backend's ForEach may hand out values
  /// that live only during the call (RocksDB); `matches` keeps its entries' capacity across calls.
  template <class T>
  static size_t Match(MapState<int64_t, std::vector<T>>* other, Timestamp ts, int64_t lo,
                      int64_t hi, std::vector<std::pair<int64_t, std::vector<T>>>& matches) {
    size_t n = 0;
    Timestamp from = ts + Duration::Millis(lo);
    Timestamp to = ts + Duration::Millis(hi);
    other->ForEach([&](const int64_t& t, const std::vector<T>& vs) {
      if (Timestamp(t) < from || Timestamp(t) > to) return;
      if (n == matches.size()) matches.emplace_back();
      matches[n].first = t;
      matches[n].second = vs;
      ++n;
    });
    std::sort(matches.begin(), matches.begin() + static_cast<std::ptrdiff_t>(n),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return n;
  }
  void Emit(const L& l, const R& r, Timestamp lts, Timestamp rts) {
    jctx_.left = lts;
    jctx_.right = rts;
    collector_.set_timestamp(std::max(lts, rts));
    f_->ProcessElement(l, r, jctx_, collector_);
  }
  /// An element at ts can meet partners up to ts + reach; after that it is dead weight.
  void RegisterCleanup(int64_t side, Timestamp ts, int64_t reach) {
    Timestamp at = reach > 0 ? ts + Duration::Millis(reach) : ts;
    this->timers_->RegisterEventTimeTimer(Namespace{side, ts.millis()}, at);
  }

  std::shared_ptr<ProcessJoinFunction<L, R, OUT>> f_;
  IntervalJoinOptions options_;
  int64_t lower_ = 0;
  int64_t upper_ = 0;
  MapState<int64_t, std::vector<L>>* left_ = nullptr;
  MapState<int64_t, std::vector<R>>* right_ = nullptr;
  TimestampedCollector<OUT> collector_;
  JoinContext jctx_;
  std::unique_ptr<RuntimeContext> rc_;
  std::vector<std::pair<int64_t, std::vector<L>>> left_matches_;
  std::vector<std::pair<int64_t, std::vector<R>>> right_matches_;
};

}  // namespace eddy
