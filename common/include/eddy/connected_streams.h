#pragma once

/// Connected streams (Flink's ConnectedStreams, BroadcastStream, BroadcastConnectedStream): two
/// streams of possibly different types feeding one two-input operator. Cheap to copy: they only
/// name graph nodes. Threading: single-threaded while building the program.

#include <concepts>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/broadcast.h"
#include "eddy/datastream.h"
#include "eddy/operators/co_operators.h"

namespace eddy {

namespace connect_internal {

// Output types of user functions, deduced through their base class.
template <class A, class B, class O>
O CoMapOut(const CoMapFunction<A, B, O>*);
template <class A, class B, class O>
O CoFlatMapOut(const CoFlatMapFunction<A, B, O>*);
template <class A, class B, class O>
O CoProcessOut(const CoProcessFunction<A, B, O>*);
template <class A, class B, class O>
O BroadcastOut(const BroadcastProcessFunction<A, B, O>*);
template <class K, class A, class B, class O>
O KeyedBroadcastOut(const KeyedBroadcastProcessFunction<K, A, B, O>*);

// Constraints of the overloads. clang-format 14 cannot lay out concepts.
// clang-format off
template <class P, class A, class B>
concept CoMapFunctionPtr = requires(const P& p) { CoMapOut<A, B>(&*p); };
template <class P, class A, class B>
concept CoFlatMapFunctionPtr = requires(const P& p) { CoFlatMapOut<A, B>(&*p); };
template <class F, class A>
concept CallableWith = std::invocable<F&, const A&>;
template <class F, class A, class O>
concept CollectingCallable = std::invocable<F&, const A&, Collector<O>&>;
// clang-format on

/// The pointee type of what a function factory returns (e.g. shared_ptr<MyFunction>).
template <class MakeF>
using MadeType = std::remove_cvref_t<decltype(*std::declval<MakeF&>()())>;

template <class IN1, class IN2, class OUT, class F1, class F2>
class LambdaCoMap final : public CoMapFunction<IN1, IN2, OUT> {
 public:
  LambdaCoMap(F1 f1, F2 f2) : f1_(std::move(f1)), f2_(std::move(f2)) {}
  OUT Map1(const IN1& v) override { return f1_(v); }
  OUT Map2(const IN2& v) override { return f2_(v); }

 private:
  F1 f1_;
  F2 f2_;
};

template <class IN1, class IN2, class OUT, class F1, class F2>
class LambdaCoFlatMap final : public CoFlatMapFunction<IN1, IN2, OUT> {
 public:
  LambdaCoFlatMap(F1 f1, F2 f2) : f1_(std::move(f1)), f2_(std::move(f2)) {}
  void FlatMap1(const IN1& v, Collector<OUT>& out) override { f1_(v, out); }
  void FlatMap2(const IN2& v, Collector<OUT>& out) override { f2_(v, out); }

 private:
  F1 f1_;
  F2 f2_;
};

}  // namespace connect_internal

/// Adds an operator with two inputs: every input of `first` feeds input 0, of `second` input 1.
/// Both streams must belong to the same environment.
template <class OUT, class T1, class T2>
DataStream<OUT> TransformTwoInput(const DataStream<T1>& first, const DataStream<T2>& second,
                                  std::string name, OperatorFactory factory,
                                  TypeInfoPtr out_type = nullptr) {
  StreamExecutionEnvironment* env = first.env();
  StreamNode n;
  n.name = std::move(name);
  n.parallelism = env->parallelism();
  n.out_type = out_type ? std::move(out_type) : MakeTypeInfo<OUT>();
  n.factory = std::move(factory);
  NodeId id = env->graph().AddNode(std::move(n));
  first.ConnectTo(id, 0);
  second.ConnectTo(id, 1);
  return DataStream<OUT>(
      env, {StreamInput{id, 0, PartitionerKind::kForward, true, PlainSelectors<OUT>()}});
}

/// Two streams connected for one operator (Flink's ConnectedStreams). After KeyBy (or
/// keyedA.Connect(keyedB)) both inputs are partitioned by key and the operator has keyed state
/// and timers for both.
template <class T1, class T2>
class ConnectedStreams {
 public:
  ConnectedStreams(DataStream<T1> first, DataStream<T2> second)
      : first_(std::move(first)), second_(std::move(second)) {}

  const DataStream<T1>& first_input() const { return first_; }
  const DataStream<T2>& second_input() const { return second_; }
  bool is_keyed() const { return key1_ != nullptr; }

  /// coMap with a CoMapFunction (pointer-like, e.g. shared_ptr<MyCoMap>). The instance is shared
  /// by all subtasks: keep it stateless or thread-safe (use Process for per-subtask state).
  template <connect_internal::CoMapFunctionPtr<T1, T2> P>
  auto Map(P f, std::string name = "CoMap") const {
    using OUT = decltype(connect_internal::CoMapOut<T1, T2>(&*f));
    std::shared_ptr<CoMapFunction<T1, T2, OUT>> fn = std::move(f);
    return Build<OUT>(std::move(name),
                      [fn] { return std::make_unique<CoMapOperator<T1, T2, OUT>>(fn); });
  }
  /// coMap with two callables OUT(const T1&) and OUT(const T2&), copied per subtask.
  template <connect_internal::CallableWith<T1> F1, connect_internal::CallableWith<T2> F2>
  auto Map(F1 f1, F2 f2, std::string name = "CoMap") const {
    using OUT = std::decay_t<std::invoke_result_t<F1&, const T1&>>;
    static_assert(std::is_convertible_v<std::invoke_result_t<F2&, const T2&>, OUT>,
                  "both map functions must return the same type");
    using Fn = connect_internal::LambdaCoMap<T1, T2, OUT, F1, F2>;
    return Build<OUT>(std::move(name), [f1, f2] {
      return std::make_unique<CoMapOperator<T1, T2, OUT>>(std::make_shared<Fn>(f1, f2));
    });
  }
  /// coFlatMap with a CoFlatMapFunction (pointer-like; shared by all subtasks, as Map).
  template <connect_internal::CoFlatMapFunctionPtr<T1, T2> P>
  auto FlatMap(P f, std::string name = "CoFlatMap") const {
    using OUT = decltype(connect_internal::CoFlatMapOut<T1, T2>(&*f));
    std::shared_ptr<CoFlatMapFunction<T1, T2, OUT>> fn = std::move(f);
    return Build<OUT>(std::move(name),
                      [fn] { return std::make_unique<CoFlatMapOperator<T1, T2, OUT>>(fn); });
  }
  /// coFlatMap with two callables void(const T1&, Collector<OUT>&), void(const T2&, ...).
  template <class OUT, connect_internal::CollectingCallable<T1, OUT> F1,
            connect_internal::CollectingCallable<T2, OUT> F2>
  DataStream<OUT> FlatMap(F1 f1, F2 f2, std::string name = "CoFlatMap") const {
    using Fn = connect_internal::LambdaCoFlatMap<T1, T2, OUT, F1, F2>;
    return Build<OUT>(std::move(name), [f1, f2] {
      return std::make_unique<CoFlatMapOperator<T1, T2, OUT>>(std::make_shared<Fn>(f1, f2));
    });
  }
  /// CoProcessFunction (KeyedCoProcessFunction after KeyBy). `make` returns a pointer-like to a
  /// new function per subtask; OUT is deduced from the function unless given.
  template <class OUT = void, class MakeF>
  auto Process(MakeF make, std::string name = "", TypeInfoPtr out_type = nullptr) const {
    using Fn = connect_internal::MadeType<MakeF>;
    using O = std::conditional_t<
        std::is_void_v<OUT>,
        decltype(connect_internal::CoProcessOut<T1, T2>(static_cast<const Fn*>(nullptr))), OUT>;
    static_assert(std::is_base_of_v<CoProcessFunction<T1, T2, O>, Fn>,
                  "Process needs a CoProcessFunction<T1, T2, OUT>");
    if (name.empty()) name = is_keyed() ? "KeyedCoProcess" : "CoProcess";
    return Build<O>(
        std::move(name),
        [make] {
          return std::make_unique<CoProcessOperator<T1, T2, O>>(
              std::shared_ptr<CoProcessFunction<T1, T2, O>>(make()));
        },
        std::move(out_type));
  }

  /// Keys both inputs; the selectors must return the same key type.
  template <class F1, class F2>
  auto KeyBy(F1 key1, F2 key2) const {
    using K = std::decay_t<std::invoke_result_t<F1&, const T1&>>;
    static_assert(std::is_same_v<K, std::decay_t<std::invoke_result_t<F2&, const T2&>>>,
                  "both key selectors must return the same key type");
    return KeyedConnectedStreams<T1, T2, K>(
        KeyedStream<T1, K>(first_, std::make_shared<LambdaKeySelector<T1, K, F1>>(key1)),
        KeyedStream<T2, K>(second_, std::make_shared<LambdaKeySelector<T2, K, F2>>(key2)));
  }
  /// Keys both inputs with built selectors whose key bytes are comparable (K names the type).
  template <class K>
  KeyedConnectedStreams<T1, T2, K> KeyBySelectors(
      std::shared_ptr<const KeySelector<T1>> key1,
      std::shared_ptr<const KeySelector<T2>> key2) const {
    return KeyedConnectedStreams<T1, T2, K>(KeyedStream<T1, K>(first_, std::move(key1)),
                                            KeyedStream<T2, K>(second_, std::move(key2)));
  }

  /// Adds a two-input operator made by `make_op` (a unique_ptr to a TwoInputOperator<T1,T2,OUT>),
  /// with this stream's key selectors when keyed.
  template <class OUT, class MakeOp>
  DataStream<OUT> Build(std::string name, MakeOp make_op, TypeInfoPtr out_type = nullptr) const {
    auto k1 = key1_;
    auto k2 = key2_;
    return TransformTwoInput<OUT>(
        first_, second_, std::move(name),
        [make_op, k1, k2]() -> std::unique_ptr<StreamOperatorBase> {
          auto op = make_op();
          if (k1) op->SetKeySelectors(k1, k2);
          return op;
        },
        std::move(out_type));
  }

 protected:
  ConnectedStreams(DataStream<T1> first, DataStream<T2> second,
                   std::shared_ptr<const KeySelector<T1>> key1,
                   std::shared_ptr<const KeySelector<T2>> key2)
      : first_(std::move(first)),
        second_(std::move(second)),
        key1_(std::move(key1)),
        key2_(std::move(key2)) {}

 private:
  DataStream<T1> first_;
  DataStream<T2> second_;
  std::shared_ptr<const KeySelector<T1>> key1_;
  std::shared_ptr<const KeySelector<T2>> key2_;
};

/// Connected streams keyed by the same key type K on both sides (Flink: connected.keyBy(...)).
template <class T1, class T2, class K>
class KeyedConnectedStreams : public ConnectedStreams<T1, T2> {
 public:
  KeyedConnectedStreams(const KeyedStream<T1, K>& first, const KeyedStream<T2, K>& second)
      : ConnectedStreams<T1, T2>(first.Partitioned(), second.Partitioned(), first.key_selector(),
                                 second.key_selector()) {}
};

/// A stream whose elements reach every subtask of the operator it is connected to, with the
/// broadcast states that operator keeps (Flink's BroadcastStream).
template <class T>
class BroadcastStream {
 public:
  BroadcastStream(const DataStream<T>& input, std::vector<BroadcastStateDeclaration> states)
      : input_(input.Partitioned(PartitionerKind::kBroadcast)), states_(std::move(states)) {}
  /// The input, broadcast-partitioned.
  const DataStream<T>& input() const { return input_; }
  const std::vector<BroadcastStateDeclaration>& states() const { return states_; }

 private:
  DataStream<T> input_;
  std::vector<BroadcastStateDeclaration> states_;
};

/// A non-keyed stream connected with a broadcast stream: Process(BroadcastProcessFunction).
template <class IN1, class IN2>
class BroadcastConnectedStream {
 public:
  BroadcastConnectedStream(DataStream<IN1> main, BroadcastStream<IN2> broadcast)
      : main_(std::move(main)), broadcast_(std::move(broadcast)) {}

  /// `make` returns a pointer-like to a new BroadcastProcessFunction<IN1, IN2, OUT> per subtask.
  template <class OUT = void, class MakeF>
  auto Process(MakeF make, std::string name = "BroadcastProcess",
               TypeInfoPtr out_type = nullptr) const {
    using Fn = connect_internal::MadeType<MakeF>;
    using O = std::conditional_t<
        std::is_void_v<OUT>,
        decltype(connect_internal::BroadcastOut<IN1, IN2>(static_cast<const Fn*>(nullptr))), OUT>;
    using F = BroadcastProcessFunction<IN1, IN2, O>;
    auto decls = broadcast_.states();
    return TransformTwoInput<O>(
        main_, broadcast_.input(), std::move(name),
        [make, decls]() -> std::unique_ptr<StreamOperatorBase> {
          return std::make_unique<BroadcastProcessOperator<IN1, IN2, O>>(std::shared_ptr<F>(make()),
                                                                         decls);
        },
        std::move(out_type));
  }

 private:
  DataStream<IN1> main_;
  BroadcastStream<IN2> broadcast_;
};

/// A keyed stream connected with a broadcast stream: Process(KeyedBroadcastProcessFunction).
template <class IN1, class K, class IN2>
class KeyedBroadcastConnectedStream {
 public:
  KeyedBroadcastConnectedStream(KeyedStream<IN1, K> main, BroadcastStream<IN2> broadcast)
      : main_(std::move(main)), broadcast_(std::move(broadcast)) {}

  /// `make` returns a pointer-like to a new KeyedBroadcastProcessFunction<K, IN1, IN2, OUT> per
  /// subtask.
  template <class OUT = void, class MakeF>
  auto Process(MakeF make, std::string name = "KeyedBroadcastProcess",
               TypeInfoPtr out_type = nullptr) const {
    using Fn = connect_internal::MadeType<MakeF>;
    using O = std::conditional_t<std::is_void_v<OUT>,
                                 decltype(connect_internal::KeyedBroadcastOut<K, IN1, IN2>(
                                     static_cast<const Fn*>(nullptr))),
                                 OUT>;
    using F = KeyedBroadcastProcessFunction<K, IN1, IN2, O>;
    auto decls = broadcast_.states();
    auto key = main_.key_selector();
    return TransformTwoInput<O>(
        main_.Partitioned(), broadcast_.input(), std::move(name),
        [make, decls, key]() -> std::unique_ptr<StreamOperatorBase> {
          auto op = std::make_unique<KeyedBroadcastProcessOperator<K, IN1, IN2, O>>(
              std::shared_ptr<F>(make()), decls);
          op->SetKeySelectors(key, nullptr);
          return op;
        },
        std::move(out_type));
  }

 private:
  KeyedStream<IN1, K> main_;
  BroadcastStream<IN2> broadcast_;
};

template <class T>
template <class T2>
ConnectedStreams<T, T2> DataStream<T>::Connect(DataStream<T2> other) const {
  return ConnectedStreams<T, T2>(*this, std::move(other));
}
template <class T>
template <class B>
BroadcastConnectedStream<T, B> DataStream<T>::Connect(const BroadcastStream<B>& broadcast) const {
  return BroadcastConnectedStream<T, B>(*this, broadcast);
}
template <class T>
template <class K, class V, class... More>
BroadcastStream<T> DataStream<T>::Broadcast(const MapStateDescriptor<K, V>& state,
                                            const More&... more) const {
  std::vector<BroadcastStateDeclaration> decls{DeclareBroadcastState(state),
                                               DeclareBroadcastState(more)...};
  return BroadcastStream<T>(*this, std::move(decls));
}
template <class T, class K>
template <class T2>
KeyedConnectedStreams<T, T2, K> KeyedStream<T, K>::Connect(const KeyedStream<T2, K>& other) const {
  return KeyedConnectedStreams<T, T2, K>(*this, other);
}
template <class T, class K>
template <class B>
KeyedBroadcastConnectedStream<T, K, B> KeyedStream<T, K>::Connect(
    const BroadcastStream<B>& broadcast) const {
  return KeyedBroadcastConnectedStream<T, K, B>(*this, broadcast);
}

}  // namespace eddy
