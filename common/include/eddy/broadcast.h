#pragma once

/// The broadcast state pattern's user functions (Flink's BroadcastProcessFunction and
/// KeyedBroadcastProcessFunction). Build them with
/// `stream.Connect(rules.Broadcast(descriptor)).Process(...)` or, keyed,
/// `stream.KeyBy(f).Connect(rules.Broadcast(descriptor)).Process(...)`.

#include <string>
#include <type_traits>

#include "eddy/functions.h"
#include "eddy/state/broadcast_state.h"
#include "eddy/state/keyed_state.h"

namespace eddy {

/// Context of the non-broadcast input: broadcast state is read-only. On keyed streams the
/// timer service and CurrentKey<K>() are available too.
class ReadOnlyBroadcastContext : public ProcessContext {
 public:
  /// The broadcast state of `d` (created empty if the broadcast side has not written it yet).
  template <class K, class V>
  const ReadOnlyBroadcastState<K, V>* GetBroadcastState(const MapStateDescriptor<K, V>& d) {
    return broadcast_states().Get(d);
  }

 protected:
  virtual BroadcastStateStore& broadcast_states() = 0;
};

/// Context of the broadcast input: broadcast state is read-write. There is no current key and no
/// timer service here (timer_service() is nullptr).
class BroadcastContext : public ProcessContext {
 public:
  template <class K, class V>
  BroadcastState<K, V>* GetBroadcastState(const MapStateDescriptor<K, V>& d) {
    return broadcast_states().Get(d);
  }

 protected:
  virtual BroadcastStateStore& broadcast_states() = 0;
};

/// Non-keyed: ProcessElement for the main input, ProcessBroadcastElement for the broadcast one.
/// One instance per subtask. Every subtask must make the same changes to broadcast state for the
/// same broadcast element (don't depend on the main input there), or the copies diverge.
template <class IN1, class IN2, class OUT>
class BroadcastProcessFunction : public RichFunction {
 public:
  using ReadOnlyContext = ReadOnlyBroadcastContext;
  using Context = BroadcastContext;
  virtual void ProcessElement(const IN1& value, ReadOnlyContext& ctx, Collector<OUT>& out) = 0;
  virtual void ProcessBroadcastElement(const IN2& value, Context& ctx, Collector<OUT>& out) = 0;
};

namespace broadcast_internal {
template <class V>
ValueState<V>* KeyedStateFor(KeyedStateBackend* b, const ValueStateDescriptor<V>& d) {
  return b->GetValueState(d);
}
template <class V>
ListState<V>* KeyedStateFor(KeyedStateBackend* b, const ListStateDescriptor<V>& d) {
  return b->GetListState(d);
}
template <class MK, class MV>
MapState<MK, MV>* KeyedStateFor(KeyedStateBackend* b, const MapStateDescriptor<MK, MV>& d) {
  return b->GetMapState(d);
}
}  // namespace broadcast_internal

/// Keyed: the main input is keyed (state and timers per key), the broadcast input is not.
/// ProcessBroadcastElement may visit the keyed state of every key with ApplyToKeyedState.
template <class K, class IN1, class IN2, class OUT>
class KeyedBroadcastProcessFunction : public RichFunction {
 public:
  using KeyType = K;
  using ReadOnlyContext = ReadOnlyBroadcastContext;

  class Context : public BroadcastContext {
   public:
    /// Calls f(key, state) for every key that has a value in the keyed state `descriptor`
    /// (a Value-, List- or MapStateDescriptor), with that key current: f may update or clear the
    /// state (Flink's applyToKeyedState).
    template <class D, class F>
    void ApplyToKeyedState(const D& descriptor, F&& f) {
      KeyedStateBackend* b = keyed_backend();
      if (!b) return;
      auto* state = broadcast_internal::KeyedStateFor(b, descriptor);
      b->ForEachKey(descriptor.name, Namespace::Void(), [&] {
        ByteReader r(b->current_key());
        K key{};
        Serializer<K>::Read(r, key);
        state->SetNamespace(Namespace::Void());
        f(static_cast<const K&>(key), *state);
      });
    }

   protected:
    virtual KeyedStateBackend* keyed_backend() = 0;
  };

  class OnTimerContext : public ReadOnlyBroadcastContext {
   public:
    virtual TimeDomain time_domain() const = 0;
  };

  virtual void ProcessElement(const IN1& value, ReadOnlyContext& ctx, Collector<OUT>& out) = 0;
  virtual void ProcessBroadcastElement(const IN2& value, Context& ctx, Collector<OUT>& out) = 0;
  virtual void OnTimer(Timestamp time, OnTimerContext& ctx, Collector<OUT>& out) {
    (void)time, (void)ctx, (void)out;
  }
};

}  // namespace eddy
