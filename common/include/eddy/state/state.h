#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eddy/aggregate_function.h"
#include "eddy/types.h"

namespace eddy {

/// The second half of a keyed-state address: which window (or none) a value belongs to.
/// Time windows use [start, end); GlobalWindow and plain keyed state use Void().
struct Namespace {
  int64_t a = 0;
  int64_t b = 0;
  static constexpr Namespace Void() { return {0, 0}; }
  bool operator==(const Namespace&) const = default;
  auto operator<=>(const Namespace&) const = default;
};

/// Time-to-live for keyed state (Flink's StateTtlConfig). Time is processing time.
struct StateTtlConfig {
  enum class UpdateType : uint8_t { kOnCreateAndWrite, kOnReadAndWrite };
  enum class Visibility : uint8_t { kNeverReturnExpired, kReturnExpiredIfNotCleanedUp };
  /// 0 = disabled (default).
  Duration ttl;
  UpdateType update_type = UpdateType::kOnCreateAndWrite;
  Visibility visibility = Visibility::kNeverReturnExpired;
  /// Drop expired entries when taking a full snapshot (default true).
  bool cleanup_full_snapshot = true;
  /// Check this many entries for expiry per state access (0 = off; Flink's incremental cleanup).
  int cleanup_incremental = 0;
  bool enabled() const { return ttl.millis() > 0; }
};

/// Base of every state handle. Handles are owned by the backend and stay valid until it closes.
/// Threading: the task thread only.
class StateBase {
 public:
  virtual ~StateBase() = default;
  /// Scopes subsequent accesses to `ns` (window); default Void().
  virtual void SetNamespace(Namespace ns) = 0;
  /// Removes the value of the current key and namespace.
  virtual void Clear() = 0;
};

template <class V>
class ValueState : public StateBase {
 public:
  /// nullptr when there is no value (or it expired). Valid until the next state access.
  virtual const V* Get() = 0;
  std::optional<V> Value() {
    const V* v = Get();
    return v ? std::optional<V>(*v) : std::nullopt;
  }
  virtual void Update(const V& v) = 0;
  /// A mutable reference to the stored value, default-constructed if absent (counts as a write).
  virtual V& GetOrCreate() = 0;
};

template <class V>
class ListState : public StateBase {
 public:
  /// nullptr when empty. Valid until the next state access.
  virtual const std::vector<V>* Get() = 0;
  virtual void Add(const V& v) = 0;
  virtual void Update(std::vector<V> values) = 0;
  virtual std::vector<V>* GetMutable() = 0;
};

template <class K, class V>
class MapState : public StateBase {
 public:
  virtual const V* Get(const K& k) = 0;
  virtual void Put(const K& k, const V& v) = 0;
  virtual void Remove(const K& k) = 0;
  virtual bool Contains(const K& k) = 0;
  virtual bool IsEmpty() = 0;
  /// Calls f(key, value) for every entry of the current key and namespace.
  virtual void ForEach(const std::function<void(const K&, const V&)>& f) = 0;
};

template <class V>
class ReducingState : public StateBase {
 public:
  virtual const V* Get() = 0;
  virtual void Add(const V& v) = 0;
};

template <class IN, class OUT>
class AggregatingState : public StateBase {
 public:
  virtual std::optional<OUT> Get() = 0;
  virtual void Add(const IN& v) = 0;
};

/// AggregatingState with access to the accumulator itself (window merging). Every backend's
/// aggregating handle is one.
template <class IN, class ACC, class OUT>
class InternalAggregatingState : public AggregatingState<IN, OUT> {
 public:
  /// The accumulator of the current key and namespace, nullptr when absent. Valid until the next
  /// state access.
  virtual const ACC* GetAccumulator() = 0;
  /// Replaces the accumulator (counts as a write).
  virtual void SetAccumulator(ACC acc) = 0;
};

/// The kind of a keyed state as snapshots record it (the canonical format's tag; 0 = unknown, for
/// state carried along from a restore without having been registered).
enum class StateKind : uint8_t {
  kUnknown = 0,
  kValue = 1,
  kList = 2,
  kMap = 3,
  kReducing = 4,
  kAggregating = 5,
};

/// Names a state and its type; one handle per name and backend.
struct StateDescriptorBase {
  std::string name;
  StateTtlConfig ttl;
};

template <class V>
struct ValueStateDescriptor : StateDescriptorBase {};
template <class V>
struct ListStateDescriptor : StateDescriptorBase {};
template <class K, class V>
struct MapStateDescriptor : StateDescriptorBase {};
template <class V>
struct ReducingStateDescriptor : StateDescriptorBase {
  std::shared_ptr<const ReduceFunction<V>> reduce;
};
template <class IN, class ACC, class OUT>
struct AggregatingStateDescriptor : StateDescriptorBase {
  std::shared_ptr<const AggregateFunction<IN, ACC, OUT>> aggregate;
};

}  // namespace eddy
