#pragma once

/// The C++ DataStream API: build a program from sources, transformations and sinks, then run it
/// with eddy::control::ExecuteLocally (or submit it to a cluster later). Mirrors Flink's API.

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "eddy/functions.h"
#include "eddy/graph/stream_graph.h"
#include "eddy/operators/basic.h"
#include "eddy/sinks.h"
#include "eddy/sources.h"
#include "eddy/watermarks.h"

namespace eddy {

template <class T>
class DataStream;
template <class T, class K>
class KeyedStream;
template <class T1, class T2>
class ConnectedStreams;
template <class T, class K>
class WindowedStream;
template <class T>
class WindowAssigner;
template <class T1, class T2, class K>
class KeyedConnectedStreams;
template <class T>
class BroadcastStream;
template <class IN1, class IN2>
class BroadcastConnectedStream;
template <class IN1, class K, class IN2>
class KeyedBroadcastConnectedStream;
template <class L, class R>
class JoinedStreams;
template <class L, class R>
class CoGroupedStreams;
template <class L, class R, class K>
class IntervalJoinBuilder;

/// Selector factory for every partitioner kind that needs no key.
template <class T>
SelectorFactory PlainSelectors() {
  return [](PartitionerKind k, int) -> std::unique_ptr<ChannelSelectorBase> {
    switch (k) {
      case PartitionerKind::kForward:
        return std::make_unique<ForwardSelector<T>>();
      case PartitionerKind::kShuffle:
        return std::make_unique<ShuffleSelector<T>>();
      case PartitionerKind::kBroadcast:
        return std::make_unique<BroadcastSelector<T>>();
      case PartitionerKind::kGlobal:
        return std::make_unique<GlobalSelector<T>>();
      default:
        return std::make_unique<RoundRobinSelector<T>>();
    }
  };
}
template <class T>
SelectorFactory KeyGroupSelectors(std::shared_ptr<const KeySelector<T>> key) {
  return [key](PartitionerKind, int max_par) -> std::unique_ptr<ChannelSelectorBase> {
    return std::make_unique<KeyGroupSelector<T>>(key, max_par);
  };
}

/// Entry point of a program (Flink's StreamExecutionEnvironment). Owns the StreamGraph being built.
/// Threading: single-threaded while building.
class StreamExecutionEnvironment {
 public:
  StreamExecutionEnvironment() = default;
  void SetParallelism(int p) { graph_.default_parallelism = p; }
  int parallelism() const { return graph_.default_parallelism; }
  void SetMaxParallelism(int p) { graph_.max_parallelism = p; }
  void DisableOperatorChaining() { graph_.chaining_enabled = false; }
  void SetBufferTimeout(Duration d) { graph_.buffer_timeout = d; }
  void SetStreamTimeCharacteristic(TimeCharacteristic t) { graph_.time = t; }
  void SetJobName(std::string name) { graph_.job_name = std::move(name); }
  StreamGraph& graph() { return graph_; }

  /// A source from a per-subtask reader factory.
  template <class T>
  DataStream<T> FromSource(std::function<std::unique_ptr<SourceReader<T>>()> make_reader,
                           std::string name, TypeInfoPtr type = MakeTypeInfo<T>(),
                           int parallelism = 0);
  template <class T>
  DataStream<T> FromCollection(std::vector<T> data, std::string name = "Collection") {
    auto shared = std::make_shared<const std::vector<T>>(std::move(data));
    return FromSource<T>([shared] { return std::make_unique<CollectionReader<T>>(shared); },
                         std::move(name), MakeTypeInfo<T>(), 1);
  }
  template <class T>
  DataStream<T> FromElements(std::initializer_list<T> data) {
    return FromCollection(std::vector<T>(data), "Elements");
  }
  /// Deterministic generator: element n = f(n) for n in [0, count); count < 0 = unbounded.
  template <class T>
  DataStream<T> Generate(std::function<void(int64_t, T&)> f, int64_t count,
                         double rate_per_second = 0, std::string name = "Generator") {
    return FromSource<T>(
        [f, count, rate_per_second] {
          return std::make_unique<GeneratorReader<T>>(f, count, rate_per_second);
        },
        std::move(name));
  }
  DataStream<std::string> ReadTextFile(const std::string& path);
  DataStream<std::string> SocketTextStream(const std::string& host, int port);

 private:
  StreamGraph graph_;
};

/// One logical input of a new operator: an upstream node (or its side output) and how records are
/// distributed to the new operator's subtasks.
struct StreamInput {
  NodeId node;
  int side_tag = 0;
  PartitionerKind kind = PartitionerKind::kForward;
  bool is_default = true;
  SelectorFactory selector;
};

/// A stream of T. Cheap to copy: it only names graph nodes.
template <class T>
class DataStream {
 public:
  DataStream() = default;
  DataStream(StreamExecutionEnvironment* env, std::vector<StreamInput> inputs)
      : env_(env), inputs_(std::move(inputs)) {}

  StreamExecutionEnvironment* env() const { return env_; }
  const std::vector<StreamInput>& inputs() const { return inputs_; }
  /// The node this stream comes from (the last operator added); for setters.
  StreamNode& node() const { return env_->graph().node(inputs_.front().node); }
  TypeInfoPtr type() const {
    const auto& in = inputs_.front();
    const auto& n = env_->graph().node(in.node);
    return in.side_tag == 0 ? n.out_type : n.side_types.at(in.side_tag);
  }

  // ---- operator settings (apply to the operator that produced this stream) ----
  DataStream& Name(std::string name) {
    node().name = std::move(name);
    return *this;
  }
  DataStream& Uid(std::string uid) {
    node().uid = std::move(uid);
    return *this;
  }
  DataStream& SetParallelism(int p) {
    node().parallelism = p;
    return *this;
  }
  DataStream& SetMaxParallelism(int p) {
    node().max_parallelism = p;
    return *this;
  }
  DataStream& SlotSharingGroup(std::string g) {
    node().slot_sharing_group = std::move(g);
    return *this;
  }
  DataStream& DisableChaining() {
    node().chaining = ChainingStrategy::kNever;
    return *this;
  }
  DataStream& StartNewChain() {
    node().chaining = ChainingStrategy::kHead;
    return *this;
  }
  /// Row streams: sets the schema downstream operators and sinks see.
  DataStream& WithSchema(SchemaPtr schema) {
    node().out_type = MakeTypeInfo<T>(std::move(schema));
    return *this;
  }

  // ---- transformations ----
  template <class F, class OUT = std::invoke_result_t<F&, const T&>>
  DataStream<OUT> Map(F f, std::string name = "Map") {
    return Transform<OUT>(std::move(name),
                          [f] { return std::make_unique<MapOperator<T, OUT, F>>(f); });
  }
  template <class OUT>
  DataStream<OUT> Map(std::shared_ptr<MapFunction<T, OUT>> f, std::string name = "Map") {
    using P = std::shared_ptr<MapFunction<T, OUT>>;
    return Transform<OUT>(std::move(name),
                          [f] { return std::make_unique<MapOperator<T, OUT, P>>(f); });
  }
  template <class OUT, class F>
  DataStream<OUT> FlatMap(F f, std::string name = "FlatMap") {
    return Transform<OUT>(std::move(name),
                          [f] { return std::make_unique<FlatMapOperator<T, OUT, F>>(f); });
  }
  template <class F>
  DataStream<T> Filter(F f, std::string name = "Filter") {
    return Transform<T>(std::move(name), [f] { return std::make_unique<FilterOperator<T, F>>(f); });
  }
  /// Process function; state and timers need a keyed stream.
  template <class OUT>
  DataStream<OUT> Process(std::function<std::shared_ptr<ProcessFunction<T, OUT>>()> make,
                          std::string name = "Process") {
    return Transform<OUT>(std::move(name),
                          [make] { return std::make_unique<ProcessOperator<T, OUT>>(make()); });
  }
  template <class F, class K = std::invoke_result_t<F&, const T&>>
  KeyedStream<T, K> KeyBy(F key_fn) const;
  /// Keys by an already-built selector (job spec: field lists); K is the type of key values.
  template <class K>
  KeyedStream<T, K> KeyBySelector(std::shared_ptr<const KeySelector<T>> selector) const;

  DataStream<T> AssignTimestampsAndWatermarks(WatermarkStrategy<T> s) {
    return Transform<T>("Timestamps/Watermarks",
                        [s] { return std::make_unique<TimestampsAndWatermarksOperator<T>>(s); });
  }
  /// Merges streams of the same type (Flink's union); any number of them.
  DataStream<T> Union(std::initializer_list<DataStream<T>> others) const {
    auto ins = inputs_;
    for (const auto& o : others) ins.insert(ins.end(), o.inputs_.begin(), o.inputs_.end());
    return DataStream<T>(env_, std::move(ins));
  }
  DataStream<T> Union(const std::vector<DataStream<T>>& others) const {
    auto ins = inputs_;
    for (const auto& o : others) ins.insert(ins.end(), o.inputs_.begin(), o.inputs_.end());
    return DataStream<T>(env_, std::move(ins));
  }
  template <class T2>
  ConnectedStreams<T, T2> Connect(DataStream<T2> other) const;
  /// Broadcast state pattern: this stream meets every element of `broadcast` (connected_streams.h).
  template <class B>
  BroadcastConnectedStream<T, B> Connect(const BroadcastStream<B>& broadcast) const;
  /// Sends every element to every subtask of the operator it is connected to, declaring the
  /// broadcast states that operator keeps (Flink's broadcast(MapStateDescriptor...)).
  template <class K, class V, class... More>
  BroadcastStream<T> Broadcast(const MapStateDescriptor<K, V>& state, const More&... more) const;
  /// Window join and coGroup with `other` (joins.h).
  template <class T2>
  JoinedStreams<T, T2> Join(DataStream<T2> other) const;
  template <class T2>
  CoGroupedStreams<T, T2> CoGroup(DataStream<T2> other) const;
  /// windowAll: one window operator (parallelism 1) over the whole stream.
  WindowedStream<T, int64_t> WindowAll(std::shared_ptr<const WindowAssigner<T>> assigner);

  template <class S>
  DataStream<S> GetSideOutput(const OutputTag<S>& tag) const {
    StreamNode& n = node();
    if (!n.side_types.count(tag.id())) {
      n.side_types[tag.id()] = MakeTypeInfo<S>(RowSchemaOf<S>());
      n.side_names[tag.id()] = tag.name();
    }
    return DataStream<S>(
        env_, {StreamInput{n.id, tag.id(), PartitionerKind::kForward, true, PlainSelectors<S>()}});
  }
  /// Declares a Row side output with its schema (job spec).
  DataStream<T> DeclareSideOutput(int tag, std::string name, TypeInfoPtr type) const {
    node().side_types[tag] = std::move(type);
    node().side_names[tag] = std::move(name);
    return *this;
  }
  DataStream<T> SideOutputStream(int tag) const {
    return DataStream<T>(
        env_, {StreamInput{node().id, tag, PartitionerKind::kForward, true, PlainSelectors<T>()}});
  }

  // ---- partitioning ----
  DataStream<T> Rebalance() const { return Partitioned(PartitionerKind::kRebalance); }
  DataStream<T> Rescale() const { return Partitioned(PartitionerKind::kRescale); }
  DataStream<T> Shuffle() const { return Partitioned(PartitionerKind::kShuffle); }
  DataStream<T> Broadcast() const { return Partitioned(PartitionerKind::kBroadcast); }
  DataStream<T> Global() const { return Partitioned(PartitionerKind::kGlobal); }
  DataStream<T> Forward() const { return Partitioned(PartitionerKind::kForward); }
  /// partitionCustom: channel = partitioner(key_fn(value), numChannels).
  template <class KF, class PF>
  DataStream<T> PartitionCustom(PF partitioner, KF key_fn) const {
    using K = std::invoke_result_t<KF&, const T&>;
    auto ins = inputs_;
    for (auto& in : ins) {
      in.kind = PartitionerKind::kCustom;
      in.is_default = false;
      in.selector = [partitioner, key_fn](PartitionerKind,
                                          int) -> std::unique_ptr<ChannelSelectorBase> {
        return std::make_unique<CustomSelector<T, K, KF, PF>>(key_fn, partitioner);
      };
    }
    return DataStream<T>(env_, std::move(ins));
  }

  // ---- sinks ----
  /// Prints each element on its own line to stdout ("prefix> value", Flink's print()).
  DataStream<T> Print(std::string prefix = "") {
    auto schema = type()->schema();
    return Sink("Print", [prefix, schema] {
      return std::make_shared<PrintSinkFunction<T>>(prefix, schema);
    });
  }
  /// A sink from a per-subtask SinkFunction factory.
  DataStream<T> Sink(std::string name, std::function<std::shared_ptr<SinkFunction<T>>()> make) {
    using P = std::shared_ptr<SinkFunction<T>>;
    auto s = Transform<T>(std::move(name),
                          [make] { return std::make_unique<SinkOperator<T, P>>(make()); });
    s.node().is_sink = true;
    return s;
  }
  /// A sink from a callable void(const T&, Timestamp) shared by all subtasks (must be thread-safe).
  template <class F>
  DataStream<T> AddSink(F f, std::string name = "Sink") {
    auto s = Transform<T>(std::move(name), [f] { return std::make_unique<SinkOperator<T, F>>(f); });
    s.node().is_sink = true;
    return s;
  }

  // ---- building blocks for new operators ----
  /// Adds a one-input operator consuming this stream.
  template <class OUT>
  DataStream<OUT> Transform(std::string name, OperatorFactory factory,
                            TypeInfoPtr out_type = nullptr) const {
    StreamNode n;
    n.name = std::move(name);
    n.parallelism = env_->parallelism();
    n.out_type = out_type ? std::move(out_type) : MakeTypeInfo<OUT>(InheritSchema<OUT>());
    n.factory = std::move(factory);
    NodeId id = env_->graph().AddNode(std::move(n));
    ConnectTo(id, 0);
    return DataStream<OUT>(
        env_, {StreamInput{id, 0, PartitionerKind::kForward, true, PlainSelectors<OUT>()}});
  }
  /// Adds edges from every input of this stream to `target`'s input `index`.
  void ConnectTo(NodeId target, int index) const {
    for (const auto& in : inputs_) {
      StreamEdge e;
      e.source = in.node;
      e.target = target;
      e.target_input = index;
      e.side_tag = in.side_tag;
      e.partitioner = in.kind;
      e.default_partitioner = in.is_default;
      e.make_selector = in.selector;
      env_->graph().AddEdge(std::move(e));
    }
  }
  DataStream<T> Partitioned(PartitionerKind kind) const {
    auto ins = inputs_;
    for (auto& in : ins) {
      in.kind = kind;
      in.is_default = false;
    }
    return DataStream<T>(env_, std::move(ins));
  }
  DataStream<T> WithSelector(PartitionerKind kind, SelectorFactory sel) const {
    auto ins = inputs_;
    for (auto& in : ins) {
      in.kind = kind;
      in.is_default = false;
      in.selector = sel;
    }
    return DataStream<T>(env_, std::move(ins));
  }

 private:
  template <class S>
  static SchemaPtr RowSchemaOf() {
    return nullptr;
  }
  /// Row -> Row operators that don't change the shape (filter, sinks) keep the schema.
  template <class OUT>
  SchemaPtr InheritSchema() const {
    if constexpr (std::is_same_v<OUT, T>) {
      return type()->schema();
    } else {
      return nullptr;
    }
  }
  StreamExecutionEnvironment* env_ = nullptr;
  std::vector<StreamInput> inputs_;
};

template <class T>
DataStream<T> StreamExecutionEnvironment::FromSource(
    std::function<std::unique_ptr<SourceReader<T>>()> make_reader, std::string name,
    TypeInfoPtr type, int parallelism) {
  StreamNode n;
  n.name = std::move(name);
  n.parallelism = parallelism > 0 ? parallelism : graph_.default_parallelism;
  n.is_source = true;
  n.out_type = std::move(type);
  n.factory = [make_reader] { return std::make_unique<ReaderSourceOperator<T>>(make_reader()); };
  NodeId id = graph_.AddNode(std::move(n));
  return DataStream<T>(this,
                       {StreamInput{id, 0, PartitionerKind::kForward, true, PlainSelectors<T>()}});
}

inline DataStream<std::string> StreamExecutionEnvironment::ReadTextFile(const std::string& path) {
  return FromSource<std::string>([path] { return std::make_unique<TextFileReader>(path); },
                                 "TextFile(" + path + ")");
}
inline DataStream<std::string> StreamExecutionEnvironment::SocketTextStream(const std::string& host,
                                                                            int port) {
  return FromSource<std::string>(
      [host, port] { return std::make_unique<SocketTextReader>(host, port); },
      "Socket(" + host + ":" + std::to_string(port) + ")", MakeTypeInfo<std::string>(), 1);
}

/// A stream partitioned by key (Flink's KeyedStream): state and timers are per key.
template <class T, class K>
class KeyedStream {
 public:
  KeyedStream(DataStream<T> input, std::shared_ptr<const KeySelector<T>> key)
      : input_(std::move(input)), key_(std::move(key)) {}
  const DataStream<T>& input() const { return input_; }
  std::shared_ptr<const KeySelector<T>> key_selector() const { return key_; }
  /// The input re-partitioned by key group.
  DataStream<T> Partitioned() const {
    return input_.WithSelector(PartitionerKind::kHash, KeyGroupSelectors<T>(key_));
  }

  /// Adds a keyed one-input operator: factory's operator gets this key selector.
  template <class OUT, class Op>
  DataStream<OUT> TransformKeyed(std::string name, std::function<std::unique_ptr<Op>()> make,
                                 TypeInfoPtr out_type = nullptr) const {
    auto key = key_;
    return Partitioned().template Transform<OUT>(
        std::move(name),
        [make, key] {
          auto op = make();
          op->SetKeySelector(key);
          return std::unique_ptr<StreamOperatorBase>(std::move(op));
        },
        std::move(out_type));
  }

  /// Rolling reduce: emits the running result per key for every element.
  template <class F>
  DataStream<T> Reduce(F f, std::string name = "Reduce") const {
    auto rf = std::make_shared<LambdaReduceFunction<T, F>>(std::move(f));
    return TransformKeyed<T, GroupedReduceOperator<T>>(
        std::move(name), [rf] { return std::make_unique<GroupedReduceOperator<T>>(rf); });
  }
  /// Rolling sum/min/max of a numeric member; other members come from the first element (Flink).
  template <class P>  // P = pointer to a member of T, e.g. &Reading::temperature
  DataStream<T> Sum(P field) const {
    return Reduce(
        [field](const T& acc, const T& v) {
          T r = acc;
          r.*field += v.*field;
          return r;
        },
        "Sum");
  }
  template <class P>  // P = pointer to a member of T, e.g. &Reading::temperature
  DataStream<T> Max(P field) const {
    return Reduce(
        [field](const T& acc, const T& v) {
          T r = acc;
          if (v.*field > r.*field) r.*field = v.*field;
          return r;
        },
        "Max");
  }
  template <class P>  // P = pointer to a member of T, e.g. &Reading::temperature
  DataStream<T> Min(P field) const {
    return Reduce(
        [field](const T& acc, const T& v) {
          T r = acc;
          if (v.*field < r.*field) r.*field = v.*field;
          return r;
        },
        "Min");
  }
  /// Rolling maxBy/minBy: the whole element holding the extreme value (first one on ties).
  template <class P>  // P = pointer to a member of T, e.g. &Reading::temperature
  DataStream<T> MaxBy(P field) const {
    return Reduce([field](const T& acc, const T& v) { return v.*field > acc.*field ? v : acc; },
                  "MaxBy");
  }
  template <class P>  // P = pointer to a member of T, e.g. &Reading::temperature
  DataStream<T> MinBy(P field) const {
    return Reduce([field](const T& acc, const T& v) { return v.*field < acc.*field ? v : acc; },
                  "MinBy");
  }
  WindowedStream<T, K> Window(std::shared_ptr<const WindowAssigner<T>> assigner) const;
  /// countWindow(size): tumbling count windows per key.
  WindowedStream<T, K> CountWindow(int64_t size) const;
  /// countWindow(size, slide): the last `size` elements, evaluated every `slide` elements.
  WindowedStream<T, K> CountWindow(int64_t size, int64_t slide) const;
  /// Connects two keyed streams with the same key type: keyed state and timers on both inputs.
  template <class T2>
  KeyedConnectedStreams<T, T2, K> Connect(const KeyedStream<T2, K>& other) const;
  /// Keyed broadcast state pattern (KeyedBroadcastProcessFunction).
  template <class B>
  KeyedBroadcastConnectedStream<T, K, B> Connect(const BroadcastStream<B>& broadcast) const;
  /// Interval join with `other` on the key: .Between(lower, upper).Process(...) (joins.h).
  template <class T2>
  IntervalJoinBuilder<T, T2, K> IntervalJoin(const KeyedStream<T2, K>& other) const;
  /// KeyedProcessFunction: per-key state and timers. `make` creates one instance per subtask.
  template <class OUT>
  DataStream<OUT> Process(std::function<std::shared_ptr<ProcessFunction<T, OUT>>()> make,
                          std::string name = "KeyedProcess", TypeInfoPtr out_type = nullptr) const {
    return TransformKeyed<OUT, ProcessOperator<T, OUT>>(
        std::move(name), [make] { return std::make_unique<ProcessOperator<T, OUT>>(make()); },
        std::move(out_type));
  }

 private:
  DataStream<T> input_;
  std::shared_ptr<const KeySelector<T>> key_;
};

template <class T>
template <class F, class K>
KeyedStream<T, K> DataStream<T>::KeyBy(F key_fn) const {
  return KeyedStream<T, K>(*this, std::make_shared<LambdaKeySelector<T, K, F>>(std::move(key_fn)));
}
template <class T>
template <class K>
KeyedStream<T, K> DataStream<T>::KeyBySelector(
    std::shared_ptr<const KeySelector<T>> selector) const {
  return KeyedStream<T, K>(*this, std::move(selector));
}

}  // namespace eddy

#include "eddy/connected_streams.h"  // IWYU pragma: export
#include "eddy/joins.h"              // IWYU pragma: export
#include "eddy/windowed_stream.h"    // IWYU pragma: export
