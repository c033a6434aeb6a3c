#pragma once

/// Broadcast state (Flink's BroadcastState): a map per operator subtask that only the broadcast
/// input writes. Every subtask sees the same broadcast elements in the same order, so every
/// subtask holds the same map; it is snapshotted as operator state in broadcast mode.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "eddy/operators/operator.h"
#include "eddy/serialization.h"
#include "eddy/state/state.h"

namespace eddy {

/// What the store needs of a broadcast state, whatever its key and value types.
class BroadcastStateBase {
 public:
  virtual ~BroadcastStateBase() = default;
  virtual size_t num_entries() const = 0;
  /// Appends one serialized item per entry.
  virtual void Snapshot(std::vector<std::string>& items) const = 0;
  /// Replaces the contents with `items`; false on malformed input.
  virtual bool Restore(const std::vector<std::string>& items) = 0;
};

/// The view of the non-broadcast input: lookups only. Entries iterate in key order (K needs
/// operator<).
template <class K, class V>
class ReadOnlyBroadcastState {
 public:
  virtual ~ReadOnlyBroadcastState() = default;
  /// nullptr when absent. Valid until the broadcast side changes the state.
  const V* Get(const K& key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  bool Contains(const K& key) const { return map_.count(key) != 0; }
  bool IsEmpty() const { return map_.empty(); }
  size_t size() const { return map_.size(); }
  const std::map<K, V>& entries() const { return map_; }

 protected:
  std::map<K, V> map_;
};

/// The view of the broadcast input: read-write.
template <class K, class V>
class BroadcastState final : public ReadOnlyBroadcastState<K, V>, public BroadcastStateBase {
 public:
  void Put(const K& key, const V& value) { this->map_.insert_or_assign(key, value); }
  void Remove(const K& key) { this->map_.erase(key); }
  void Clear() { this->map_.clear(); }

  size_t num_entries() const override { return this->map_.size(); }
  void Snapshot(std::vector<std::string>& items) const override {
    for (const auto& [k, v] : this->map_) {
      std::string item;
      ByteWriter w(item);
      Serializer<K>::Write(k, w);
      Serializer<V>::Write(v, w);
      items.push_back(std::move(item));
    }
  }
  bool Restore(const std::vector<std::string>& items) override {
    std::map<K, V> m;
    for (const auto& item : items) {
      ByteReader r(item);
      K k{};
      V v{};
      if (!Serializer<K>::Read(r, k) || !Serializer<V>::Read(r, v) || !r.AtEnd()) return false;
      m.insert_or_assign(std::move(k), std::move(v));
    }
    this->map_ = std::move(m);
    return true;
  }
};

/// The broadcast states of one operator subtask, by name. A state is created on first use (or
/// up front when declared by BroadcastStream) and filled from the subtask's OperatorStateStore
/// entry "broadcast/<name>" when that holds restored items. Lifecycle: owned by the operator,
/// Init in Open. Threading: the task thread.
class BroadcastStateStore {
 public:
  static constexpr const char* kPrefix = "broadcast/";

  /// `ctx` may have no operator_state (then nothing is restored or snapshotted).
  void Init(OperatorContext* ctx) { ctx_ = ctx; }

  /// The state named d.name; created if absent. A name used with other key/value types fails
  /// the task and yields a separate, unsnapshotted state so that the caller never gets null.
  template <class K, class V>
  BroadcastState<K, V>* Get(const MapStateDescriptor<K, V>& d) {
    auto it = states_.find(d.name);
    if (it == states_.end()) {
      auto s = std::make_unique<BroadcastState<K, V>>();
      BroadcastState<K, V>* raw = s.get();
      RestoreInto(d.name, *raw);
      states_.emplace(d.name, std::move(s));
      return raw;
    }
    if (auto* typed = dynamic_cast<BroadcastState<K, V>*>(it->second.get())) return typed;
    if (ctx_) {
      ctx_->Fail(Status::InvalidArgument("broadcast state '" + d.name +
                                         "' is used with different key/value types"));
    }
    auto& slot = mismatched_[d.name + "#" + typeid(BroadcastState<K, V>).name()];
    if (!slot) slot = std::make_unique<BroadcastState<K, V>>();
    return static_cast<BroadcastState<K, V>*>(slot.get());
  }

  /// Writes every state into the OperatorStateStore (mode kBroadcast), replacing older items.
  void Snapshot() {
    if (!ctx_ || !ctx_->operator_state) return;
    for (const auto& [name, s] : states_) {
      auto& e = ctx_->operator_state->Get(kPrefix + name, OperatorStateStore::Mode::kBroadcast);
      e.items.clear();
      s->Snapshot(e.items);
    }
  }
  size_t size() const { return states_.size(); }

 private:
  void RestoreInto(const std::string& name, BroadcastStateBase& s) {
    if (!ctx_ || !ctx_->operator_state) return;
    auto& e = ctx_->operator_state->Get(kPrefix + name, OperatorStateStore::Mode::kBroadcast);
    if (!e.items.empty() && !s.Restore(e.items)) {
      ctx_->Fail(Status::ParseError("broadcast state '" + name + "': snapshot is corrupt"));
    }
  }

  OperatorContext* ctx_ = nullptr;
  std::map<std::string, std::unique_ptr<BroadcastStateBase>> states_;
  std::map<std::string, std::unique_ptr<BroadcastStateBase>> mismatched_;
};

/// A broadcast state named up front (BroadcastStream): created, and restored, when the operator
/// opens, before the first element.
struct BroadcastStateDeclaration {
  std::string name;
  std::function<void(BroadcastStateStore&)> create;
};

template <class K, class V>
BroadcastStateDeclaration DeclareBroadcastState(const MapStateDescriptor<K, V>& d) {
  return {d.name, [d](BroadcastStateStore& store) { (void)store.Get(d); }};
}

}  // namespace eddy
