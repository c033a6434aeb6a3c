#pragma once

/// Joins of two streams (Flink's JoinedStreams, CoGroupedStreams and KeyedStream.intervalJoin):
///
///   a.Join(b).Where(key_a).EqualTo(key_b).Window(assigner).Apply(join_fn)
///   a.CoGroup(b).Where(key_a).EqualTo(key_b).Window(assigner).Apply<OUT>(cogroup_fn)
///   a.KeyBy(k).IntervalJoin(b.KeyBy(k)).Between(lower, upper).Process(make_process_join_fn)
///
/// Window joins run like Flink's: both inputs are tagged into one stream of TaggedUnion<L, R>,
/// keyed by the join key and windowed by a WindowOperator whose function pairs the elements of
/// each window (inner join); results carry the window's max timestamp. Window assigners are
/// typed on the tagged element: TumblingEventTimeWindows<TaggedUnion<L, R>>(...).
/// Builders are cheap to copy; single-threaded while building the program.

#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "eddy/connected_streams.h"
#include "eddy/datastream.h"
#include "eddy/join_functions.h"
#include "eddy/operators/join_operators.h"
#include "eddy/windowed_stream.h"

namespace eddy {

enum class WindowJoinKind : uint8_t { kJoin, kCoGroup };

namespace join_internal {

template <class A, class B, class O>
O JoinOut(const JoinFunction<A, B, O>*);
template <class A, class B, class O>
O FlatJoinOut(const FlatJoinFunction<A, B, O>*);
template <class A, class B, class O>
O CoGroupOut(const CoGroupFunction<A, B, O>*);
template <class A, class B, class O>
O ProcessJoinOut(const ProcessJoinFunction<A, B, O>*);

// Constraints of the Apply overloads; M selects join or coGroup. clang-format 14 cannot lay out
// concepts.
// clang-format off
template <class F, class L, class R, WindowJoinKind M>
concept JoinCallable =
    M == WindowJoinKind::kJoin && std::invocable<F&, const L&, const R&>;
template <class F, class L, class R, class O, WindowJoinKind M>
concept FlatJoinCallable =
    M == WindowJoinKind::kJoin && std::invocable<F&, const L&, const R&, Collector<O>&>;
template <class P, class L, class R, WindowJoinKind M>
concept JoinFunctionPtr =
    M == WindowJoinKind::kJoin && requires(const P& p) { JoinOut<L, R>(&*p); };
template <class P, class L, class R, WindowJoinKind M>
concept FlatJoinFunctionPtr =
    M == WindowJoinKind::kJoin && requires(const P& p) { FlatJoinOut<L, R>(&*p); };
template <class F, class L, class R, class O, WindowJoinKind M>
concept CoGroupCallable =
    M == WindowJoinKind::kCoGroup &&
    std::invocable<F&, const std::vector<L>&, const std::vector<R>&, Collector<O>&>;
template <class MakeF, class L, class R, WindowJoinKind M>
concept CoGroupFactory =
    M == WindowJoinKind::kCoGroup && std::invocable<MakeF&> &&
    requires(MakeF& m) { CoGroupOut<L, R>(&*m()); };
// clang-format on

}  // namespace join_internal

/// The last stage of a window join or coGroup: optional trigger, evictor and allowed lateness,
/// then Apply.
template <class L, class R, class K, WindowJoinKind M>
class WindowJoinWithWindow {
 public:
  using Element = TaggedUnion<L, R>;
  WindowJoinWithWindow(DataStream<L> left, DataStream<R> right,
                       std::shared_ptr<const KeySelector<L>> left_key,
                       std::shared_ptr<const KeySelector<R>> right_key,
                       std::shared_ptr<const WindowAssigner<Element>> assigner)
      : left_(std::move(left)),
        right_(std::move(right)),
        left_key_(std::move(left_key)),
        right_key_(std::move(right_key)),
        assigner_(std::move(assigner)) {}

  WindowJoinWithWindow& Trigger(std::function<std::unique_ptr<eddy::Trigger<Element>>()> make) {
    trigger_ = std::move(make);
    return *this;
  }
  WindowJoinWithWindow& Evictor(std::function<std::shared_ptr<eddy::Evictor<Element>>()> make) {
    evictor_ = std::move(make);
    return *this;
  }
  WindowJoinWithWindow& AllowedLateness(Duration d) {
    lateness_ = d;
    return *this;
  }

  // ---- join ----
  /// Join with a callable OUT(const L&, const R&), copied per subtask.
  template <join_internal::JoinCallable<L, R, M> F>
  auto Apply(F f, std::string name = "", TypeInfoPtr out_type = nullptr) const {
    using OUT = std::decay_t<std::invoke_result_t<F&, const L&, const R&>>;
    return Build<OUT>([f] { return std::make_shared<JoinCoGroupFunction<L, R, OUT, F>>(f); },
                      std::move(name), std::move(out_type));
  }
  /// Flat join with a callable void(const L&, const R&, Collector<OUT>&), copied per subtask.
  template <class OUT, join_internal::FlatJoinCallable<L, R, OUT, M> F>
  DataStream<OUT> Apply(F f, std::string name = "", TypeInfoPtr out_type = nullptr) const {
    return Build<OUT>([f] { return std::make_shared<JoinCoGroupFunction<L, R, OUT, F>>(f); },
                      std::move(name), std::move(out_type));
  }
  /// Join with a JoinFunction (pointer-like, e.g. shared_ptr<MyJoin>; shared by all subtasks).
  template <join_internal::JoinFunctionPtr<L, R, M> P>
  auto Apply(P f, std::string name = "", TypeInfoPtr out_type = nullptr) const {
    using OUT = decltype(join_internal::JoinOut<L, R>(&*f));
    return Build<OUT>([f] { return std::make_shared<JoinCoGroupFunction<L, R, OUT, P>>(f); },
                      std::move(name), std::move(out_type));
  }
  /// Join with a FlatJoinFunction (pointer-like; shared by all subtasks).
  template <join_internal::FlatJoinFunctionPtr<L, R, M> P>
  auto Apply(P f, std::string name = "", TypeInfoPtr out_type = nullptr) const {
    using OUT = decltype(join_internal::FlatJoinOut<L, R>(&*f));
    return Build<OUT>([f] { return std::make_shared<JoinCoGroupFunction<L, R, OUT, P>>(f); },
                      std::move(name), std::move(out_type));
  }

  // ---- coGroup ----
  /// CoGroup with a callable void(const vector<L>&, const vector<R>&, Collector<OUT>&).
  template <class OUT, join_internal::CoGroupCallable<L, R, OUT, M> F>
  DataStream<OUT> Apply(F f, std::string name = "", TypeInfoPtr out_type = nullptr) const {
    struct Lambda final : CoGroupFunction<L, R, OUT> {
      explicit Lambda(F fn) : fn(std::move(fn)) {}
      void CoGroup(const std::vector<L>& l, const std::vector<R>& r, Collector<OUT>& out) override {
        fn(l, r, out);
      }
      F fn;
    };
    return Build<OUT>([f] { return std::make_shared<Lambda>(f); }, std::move(name),
                      std::move(out_type));
  }
  /// CoGroup with a factory of CoGroupFunction instances (one per subtask).
  template <join_internal::CoGroupFactory<L, R, M> MakeF>
  auto Apply(MakeF make, std::string name = "", TypeInfoPtr out_type = nullptr) const {
    using OUT = decltype(join_internal::CoGroupOut<L, R>(&*make()));
    return Build<OUT>([make] { return std::shared_ptr<CoGroupFunction<L, R, OUT>>(make()); },
                      std::move(name), std::move(out_type));
  }

 private:
  template <class OUT>
  DataStream<OUT> Build(std::function<std::shared_ptr<CoGroupFunction<L, R, OUT>>()> make_fn,
                        std::string name, TypeInfoPtr out_type) const {
    DataStream<Element> tagged_left = Tag<0>(left_, "Tag(left)");
    DataStream<Element> tagged_right = Tag<1>(right_, "Tag(right)");
    KeyedStream<Element, K> keyed(tagged_left.Union({tagged_right}),
                                  std::make_shared<UnionKeySelector<L, R>>(left_key_, right_key_));
    WindowedStream<Element, K> windowed(keyed, assigner_, false);
    if (trigger_) windowed.Trigger(trigger_);
    if (evictor_) windowed.Evictor(evictor_);
    windowed.AllowedLateness(lateness_);
    if (name.empty()) name = M == WindowJoinKind::kJoin ? "join" : "coGroup";
    return windowed.template Process<OUT>(
        [make_fn] { return std::make_shared<CoGroupWindowFunction<L, R, OUT>>(make_fn()); },
        std::move(name), std::move(out_type));
  }
  /// Wraps each element into the union; runs beside its input (same parallelism) so it chains.
  template <size_t kIndex, class T>
  static DataStream<Element> Tag(const DataStream<T>& in, std::string name) {
    DataStream<Element> tagged = in.template Transform<Element>(std::move(name), [] {
      auto f = [](const T& v) { return Element(std::in_place_index<kIndex>, v); };
      return std::make_unique<MapOperator<T, Element, decltype(f)>>(f);
    });
    if (in.inputs().size() == 1) tagged.SetParallelism(in.node().parallelism);
    return tagged;
  }

  DataStream<L> left_;
  DataStream<R> right_;
  std::shared_ptr<const KeySelector<L>> left_key_;
  std::shared_ptr<const KeySelector<R>> right_key_;
  std::shared_ptr<const WindowAssigner<Element>> assigner_;
  std::function<std::unique_ptr<eddy::Trigger<Element>>()> trigger_;
  std::function<std::shared_ptr<eddy::Evictor<Element>>()> evictor_;
  Duration lateness_;
};

/// Both keys chosen; next: the window.
template <class L, class R, class K, WindowJoinKind M>
class WindowJoinEqualTo {
 public:
  WindowJoinEqualTo(DataStream<L> left, DataStream<R> right,
                    std::shared_ptr<const KeySelector<L>> left_key,
                    std::shared_ptr<const KeySelector<R>> right_key)
      : left_(std::move(left)),
        right_(std::move(right)),
        left_key_(std::move(left_key)),
        right_key_(std::move(right_key)) {}
  WindowJoinWithWindow<L, R, K, M> Window(
      std::shared_ptr<const WindowAssigner<TaggedUnion<L, R>>> assigner) const {
    return WindowJoinWithWindow<L, R, K, M>(left_, right_, left_key_, right_key_,
                                            std::move(assigner));
  }

 private:
  DataStream<L> left_;
  DataStream<R> right_;
  std::shared_ptr<const KeySelector<L>> left_key_;
  std::shared_ptr<const KeySelector<R>> right_key_;
};

/// The left key chosen; next: the right key (same key type K).
template <class L, class R, class K, WindowJoinKind M>
class WindowJoinWhere {
 public:
  WindowJoinWhere(DataStream<L> left, DataStream<R> right,
                  std::shared_ptr<const KeySelector<L>> left_key)
      : left_(std::move(left)), right_(std::move(right)), left_key_(std::move(left_key)) {}
  template <connect_internal::CallableWith<R> F>
  WindowJoinEqualTo<L, R, K, M> EqualTo(F key) const {
    static_assert(std::is_same_v<std::decay_t<std::invoke_result_t<F&, const R&>>, K>,
                  "EqualTo must return the same key type as Where");
    return EqualTo(std::shared_ptr<const KeySelector<R>>(
        std::make_shared<LambdaKeySelector<R, K, F>>(std::move(key))));
  }
  /// A built selector; its key bytes must be comparable with the left selector's.
  WindowJoinEqualTo<L, R, K, M> EqualTo(std::shared_ptr<const KeySelector<R>> key) const {
    return WindowJoinEqualTo<L, R, K, M>(left_, right_, left_key_, std::move(key));
  }

 private:
  DataStream<L> left_;
  DataStream<R> right_;
  std::shared_ptr<const KeySelector<L>> left_key_;
};

/// Two streams to be joined or coGrouped in windows; next: the left key.
template <class L, class R, WindowJoinKind M>
class WindowJoinInputs {
 public:
  WindowJoinInputs(DataStream<L> left, DataStream<R> right)
      : left_(std::move(left)), right_(std::move(right)) {}
  template <connect_internal::CallableWith<L> F>
  auto Where(F key) const {
    using K = std::decay_t<std::invoke_result_t<F&, const L&>>;
    return WindowJoinWhere<L, R, K, M>(
        left_, right_, std::make_shared<LambdaKeySelector<L, K, F>>(std::move(key)));
  }
  /// A built selector (job spec: field lists); K names the key type.
  template <class K>
  WindowJoinWhere<L, R, K, M> Where(std::shared_ptr<const KeySelector<L>> key) const {
    return WindowJoinWhere<L, R, K, M>(left_, right_, std::move(key));
  }

 private:
  DataStream<L> left_;
  DataStream<R> right_;
};

template <class L, class R>
class JoinedStreams : public WindowJoinInputs<L, R, WindowJoinKind::kJoin> {
 public:
  using WindowJoinInputs<L, R, WindowJoinKind::kJoin>::WindowJoinInputs;
};
template <class L, class R>
class CoGroupedStreams : public WindowJoinInputs<L, R, WindowJoinKind::kCoGroup> {
 public:
  using WindowJoinInputs<L, R, WindowJoinKind::kCoGroup>::WindowJoinInputs;
};

/// An interval join with its bounds; optionally exclusive bounds and late side outputs, then
/// Process (Flink's IntervalJoined).
template <class L, class R, class K>
class IntervalJoined {
 public:
  IntervalJoined(KeyedStream<L, K> left, KeyedStream<R, K> right, Duration lower, Duration upper)
      : left_(std::move(left)), right_(std::move(right)) {
    options_.lower = lower;
    options_.upper = upper;
  }
  IntervalJoined& LowerBoundExclusive() {
    options_.lower_inclusive = false;
    return *this;
  }
  IntervalJoined& UpperBoundExclusive() {
    options_.upper_inclusive = false;
    return *this;
  }
  /// Left elements behind the watermark go to `tag` instead of being dropped.
  IntervalJoined& SideOutputLeftLateData(const OutputTag<L>& tag) {
    options_.left_late_tag = tag.id();
    left_late_name_ = tag.name();
    return *this;
  }
  IntervalJoined& SideOutputRightLateData(const OutputTag<R>& tag) {
    options_.right_late_tag = tag.id();
    right_late_name_ = tag.name();
    return *this;
  }
  const IntervalJoinOptions& options() const { return options_; }

  /// `make` returns a pointer-like to a new ProcessJoinFunction<L, R, OUT> per subtask; OUT is
  /// deduced unless given. Lower > upper fails the job when it starts.
  template <class OUT = void, class MakeF>
  auto Process(MakeF make, std::string name = "IntervalJoin",
               TypeInfoPtr out_type = nullptr) const {
    using Fn = connect_internal::MadeType<MakeF>;
    using O = std::conditional_t<
        std::is_void_v<OUT>,
        decltype(join_internal::ProcessJoinOut<L, R>(static_cast<const Fn*>(nullptr))), OUT>;
    using F = ProcessJoinFunction<L, R, O>;
    auto options = options_;
    auto left_key = left_.key_selector();
    auto right_key = right_.key_selector();
    DataStream<O> out = TransformTwoInput<O>(
        left_.Partitioned(), right_.Partitioned(), std::move(name),
        [make, options, left_key, right_key]() -> std::unique_ptr<StreamOperatorBase> {
          auto op =
              std::make_unique<IntervalJoinOperator<L, R, O>>(std::shared_ptr<F>(make()), options);
          op->SetKeySelectors(left_key, right_key);
          return op;
        },
        std::move(out_type));
    if (options.left_late_tag != 0) {
      out.DeclareSideOutput(options.left_late_tag, left_late_name_, left_.input().type());
    }
    if (options.right_late_tag != 0) {
      out.DeclareSideOutput(options.right_late_tag, right_late_name_, right_.input().type());
    }
    return out;
  }

 private:
  KeyedStream<L, K> left_;
  KeyedStream<R, K> right_;
  IntervalJoinOptions options_;
  std::string left_late_name_;
  std::string right_late_name_;
};

/// keyedA.IntervalJoin(keyedB): next, the bounds.
template <class L, class R, class K>
class IntervalJoinBuilder {
 public:
  IntervalJoinBuilder(KeyedStream<L, K> left, KeyedStream<R, K> right)
      : left_(std::move(left)), right_(std::move(right)) {}
  /// Joins pairs with lower <= right.ts - left.ts <= upper (bounds inclusive by default).
  IntervalJoined<L, R, K> Between(Duration lower, Duration upper) const {
    return IntervalJoined<L, R, K>(left_, right_, lower, upper);
  }

 private:
  KeyedStream<L, K> left_;
  KeyedStream<R, K> right_;
};

template <class T>
template <class T2>
JoinedStreams<T, T2> DataStream<T>::Join(DataStream<T2> other) const {
  return JoinedStreams<T, T2>(*this, std::move(other));
}
template <class T>
template <class T2>
CoGroupedStreams<T, T2> DataStream<T>::CoGroup(DataStream<T2> other) const {
  return CoGroupedStreams<T, T2>(*this, std::move(other));
}
template <class T, class K>
template <class T2>
IntervalJoinBuilder<T, T2, K> KeyedStream<T, K>::IntervalJoin(
    const KeyedStream<T2, K>& other) const {
  return IntervalJoinBuilder<T, T2, K>(*this, other);
}

}  // namespace eddy
