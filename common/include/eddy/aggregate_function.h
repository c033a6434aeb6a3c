#pragma once

namespace eddy {

/// Incremental aggregation with an accumulator (Flink's AggregateFunction). Merge is used by
/// merging (session) windows. Implementations must be cheap to copy or be held by pointer.
template <class IN, class ACC, class OUT>
class AggregateFunction {
 public:
  using InputType = IN;
  using AccType = ACC;
  using OutputType = OUT;
  virtual ~AggregateFunction() = default;
  virtual ACC CreateAccumulator() const = 0;
  /// Folds `value` into `acc` in place.
  virtual void Add(const IN& value, ACC& acc) const = 0;
  virtual OUT GetResult(const ACC& acc) const = 0;
  /// Folds `b` into `a`.
  virtual void Merge(ACC& a, const ACC& b) const = 0;
};

/// Combines two values of the same type into one (Flink's ReduceFunction).
template <class T>
class ReduceFunction {
 public:
  virtual ~ReduceFunction() = default;
  /// Folds `value` into `acc` in place.
  virtual void Reduce(T& acc, const T& value) const = 0;
};

template <class T, class F>
class LambdaReduceFunction final : public ReduceFunction<T> {
 public:
  explicit LambdaReduceFunction(F f) : f_(std::move(f)) {}
  void Reduce(T& acc, const T& value) const override { acc = f_(acc, value); }

 private:
  F f_;
};

}  // namespace eddy
