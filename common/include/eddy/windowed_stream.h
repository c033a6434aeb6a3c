#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "eddy/datastream.h"
#include "eddy/operators/window_operator.h"

namespace eddy {

/// ReduceFunction as an AggregateFunction: the accumulator is the reduced value.
template <class T, class F>
class ReduceAggregate final : public AggregateFunction<T, std::optional<T>, T> {
 public:
  explicit ReduceAggregate(F f) : f_(std::move(f)) {}
  std::optional<T> CreateAccumulator() const override { return std::nullopt; }
  void Add(const T& v, std::optional<T>& acc) const override {
    if (acc) {
      acc = f_(*acc, v);
    } else {
      acc = v;
    }
  }
  T GetResult(const std::optional<T>& acc) const override { return acc ? *acc : T{}; }
  void Merge(std::optional<T>& a, const std::optional<T>& b) const override {
    if (!b) return;
    if (a) {
      a = f_(*a, *b);
    } else {
      a = b;
    }
  }

 private:
  F f_;
};

/// A keyed (or, for windowAll, a single-key) stream cut into windows (Flink's WindowedStream /
/// AllWindowedStream). Configure, then finish with reduce/aggregate/process.
template <class T, class K>
class WindowedStream {
 public:
  WindowedStream(KeyedStream<T, K> keyed, std::shared_ptr<const WindowAssigner<T>> assigner,
                 bool all)
      : keyed_(std::move(keyed)), assigner_(std::move(assigner)), all_(all) {}

  WindowedStream& Trigger(std::function<std::unique_ptr<eddy::Trigger<T>>()> make) {
    trigger_ = std::move(make);
    return *this;
  }
  WindowedStream& Evictor(std::function<std::shared_ptr<eddy::Evictor<T>>()> make) {
    evictor_ = std::move(make);
    return *this;
  }
  WindowedStream& AllowedLateness(Duration d) {
    lateness_ = d;
    return *this;
  }
  WindowedStream& SideOutputLateData(const OutputTag<T>& tag) {
    late_tag_ = tag.id();
    late_name_ = tag.name();
    return *this;
  }
  /// Job spec: a late side output by tag id with its type.
  WindowedStream& SideOutputLateData(int tag, std::string name) {
    late_tag_ = tag;
    late_name_ = std::move(name);
    return *this;
  }

  template <class F>
  DataStream<T> Reduce(F f) {
    auto agg = std::make_shared<ReduceAggregate<T, F>>(std::move(f));
    return Aggregate<std::optional<T>, T>(agg, "reduce");
  }
  template <class ACC, class OUT>
  DataStream<OUT> Aggregate(std::shared_ptr<const AggregateFunction<T, ACC, OUT>> agg,
                            std::string what = "aggregate", TypeInfoPtr out_type = nullptr) {
    if (evictor_) {
      // Evicting windows keep elements; aggregate them at fire time.
      auto fn = [agg] { return std::make_shared<AggregateOverList<ACC, OUT>>(agg); };
      return Process<OUT>(fn, what, out_type);
    }
    return Build<OUT>(
        what,
        [agg] { return std::make_unique<AggregatingContents<T, ACC, OUT, OUT>>(agg, nullptr); },
        out_type);
  }
  /// Incremental aggregation whose result is passed to a ProcessWindowFunction (window metadata).
  template <class ACC, class MID, class OUT>
  DataStream<OUT> Aggregate(
      std::shared_ptr<const AggregateFunction<T, ACC, MID>> agg,
      std::function<std::shared_ptr<ProcessWindowFunction<MID, OUT>>()> make_fn,
      std::string what = "aggregate+process", TypeInfoPtr out_type = nullptr) {
    return AggregateWith<ACC, MID, OUT>([agg] { return agg; }, std::move(make_fn), std::move(what),
                                        std::move(out_type));
  }
  /// Like Aggregate, with one aggregate function instance per subtask (for stateful functions).
  template <class ACC, class MID, class OUT>
  DataStream<OUT> AggregateWith(
      std::function<std::shared_ptr<const AggregateFunction<T, ACC, MID>>()> make_agg,
      std::function<std::shared_ptr<ProcessWindowFunction<MID, OUT>>()> make_fn, std::string what,
      TypeInfoPtr out_type = nullptr) {
    return Build<OUT>(
        what,
        [make_agg, make_fn] {
          return std::make_unique<AggregatingContents<T, ACC, MID, OUT>>(make_agg(), make_fn());
        },
        out_type);
  }
  template <class OUT>
  DataStream<OUT> Process(std::function<std::shared_ptr<ProcessWindowFunction<T, OUT>>()> make_fn,
                          std::string what = "process", TypeInfoPtr out_type = nullptr) {
    auto ev = evictor_;
    return Build<OUT>(
        what,
        [make_fn, ev] {
          return std::make_unique<ListContents<T, OUT>>(make_fn(), ev ? ev() : nullptr);
        },
        out_type);
  }

 private:
  template <class ACC, class OUT>
  class AggregateOverList final : public ProcessWindowFunction<T, OUT> {
   public:
    explicit AggregateOverList(std::shared_ptr<const AggregateFunction<T, ACC, OUT>> agg)
        : agg_(std::move(agg)) {}
    void Process(WindowContext&, const std::vector<T>& elements, Collector<OUT>& out) override {
      ACC acc = agg_->CreateAccumulator();
      for (const auto& e : elements) agg_->Add(e, acc);
      out.Collect(agg_->GetResult(acc));
    }

   private:
    std::shared_ptr<const AggregateFunction<T, ACC, OUT>> agg_;
  };

  template <class OUT>
  DataStream<OUT> Build(const std::string& what,
                        std::function<std::unique_ptr<WindowContents<T, OUT>>()> contents,
                        TypeInfoPtr out_type) {
    WindowSpec<T, OUT> spec;
    spec.assigner = assigner_;
    spec.trigger = trigger_;
    spec.contents = std::move(contents);
    spec.allowed_lateness = lateness_;
    spec.late_tag = late_tag_;
    std::string name = std::string(all_ ? "WindowAll(" : "Window(") + assigner_->name();
    if (trigger_) name += ", " + trigger_()->name();
    name += ", " + what + ")";
    auto out = keyed_.template TransformKeyed<OUT, WindowOperator<T, OUT>>(
        name, [spec] { return std::make_unique<WindowOperator<T, OUT>>(spec); },
        std::move(out_type));
    if (all_) out.SetParallelism(1).SetMaxParallelism(1);
    if (late_tag_ != 0) out.DeclareSideOutput(late_tag_, late_name_, keyed_.input().type());
    return out;
  }

  KeyedStream<T, K> keyed_;
  std::shared_ptr<const WindowAssigner<T>> assigner_;
  bool all_;
  std::function<std::unique_ptr<eddy::Trigger<T>>()> trigger_;
  std::function<std::shared_ptr<eddy::Evictor<T>>()> evictor_;
  Duration lateness_;
  int late_tag_ = 0;
  std::string late_name_;
};

template <class T, class K>
WindowedStream<T, K> KeyedStream<T, K>::Window(std::shared_ptr<const WindowAssigner<T>> a) const {
  return WindowedStream<T, K>(*this, std::move(a), false);
}
template <class T, class K>
WindowedStream<T, K> KeyedStream<T, K>::CountWindow(int64_t size) const {
  WindowedStream<T, K> w(*this, std::make_shared<GlobalWindows<T>>(), false);
  w.Trigger([size] {
    return std::make_unique<PurgingTrigger<T>>(std::make_unique<CountTrigger<T>>(size));
  });
  return w;
}
template <class T, class K>
WindowedStream<T, K> KeyedStream<T, K>::CountWindow(int64_t size, int64_t slide) const {
  WindowedStream<T, K> w(*this, std::make_shared<GlobalWindows<T>>(), false);
  w.Trigger([slide] { return std::make_unique<CountTrigger<T>>(slide); });
  w.Evictor([size] { return std::make_shared<CountEvictor<T>>(static_cast<size_t>(size)); });
  return w;
}
template <class T>
WindowedStream<T, int64_t> DataStream<T>::WindowAll(std::shared_ptr<const WindowAssigner<T>> a) {
  auto zero = [](const T&) { return int64_t{0}; };
  return WindowedStream<T, int64_t>(KeyBy(zero), std::move(a), true);
}

template <class T>
std::shared_ptr<const WindowAssigner<T>> TumblingEventTimeWindows(Duration size,
                                                                  Duration offset = {}) {
  return std::make_shared<TumblingWindows<T>>(size, offset, true);
}
template <class T>
std::shared_ptr<const WindowAssigner<T>> TumblingProcessingTimeWindows(Duration size,
                                                                       Duration offset = {}) {
  return std::make_shared<TumblingWindows<T>>(size, offset, false);
}
template <class T>
std::shared_ptr<const WindowAssigner<T>> SlidingEventTimeWindows(Duration size, Duration slide,
                                                                 Duration offset = {}) {
  return std::make_shared<SlidingWindows<T>>(size, slide, offset, true);
}
template <class T>
std::shared_ptr<const WindowAssigner<T>> SlidingProcessingTimeWindows(Duration size, Duration slide,
                                                                      Duration offset = {}) {
  return std::make_shared<SlidingWindows<T>>(size, slide, offset, false);
}
template <class T>
std::shared_ptr<const WindowAssigner<T>> EventTimeSessionWindows(Duration gap) {
  return std::make_shared<SessionWindows<T>>(gap, true);
}
template <class T>
std::shared_ptr<const WindowAssigner<T>> ProcessingTimeSessionWindows(Duration gap) {
  return std::make_shared<SessionWindows<T>>(gap, false);
}

}  // namespace eddy
