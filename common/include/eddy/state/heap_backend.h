#pragma once

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "eddy/serialization.h"
#include "eddy/state/keyed_backend.h"

namespace eddy {

namespace heap_internal {

struct KeyView {
  std::string_view key;
  Namespace ns;
  uint32_t hash;
};
struct Key {
  std::string key;
  Namespace ns;
  uint32_t hash;
};
inline size_t MixHash(uint32_t h, Namespace ns) {
  uint64_t x = (static_cast<uint64_t>(h) << 32) ^
               static_cast<uint64_t>(ns.a) * 0x9e3779b97f4a7c15ULL ^
               static_cast<uint64_t>(ns.b) * 0xc2b2ae3d27d4eb4fULL;
  x ^= x >> 29;
  return static_cast<size_t>(x);
}
struct KeyHash {
  using is_transparent = void;
  size_t operator()(const Key& k) const { return MixHash(k.hash, k.ns); }
  size_t operator()(const KeyView& k) const { return MixHash(k.hash, k.ns); }
};
struct KeyEq {
  using is_transparent = void;
  static bool Eq(std::string_view a, Namespace an, std::string_view b, Namespace bn) {
    return an == bn && a == b;
  }
  bool operator()(const Key& a, const Key& b) const { return Eq(a.key, a.ns, b.key, b.ns); }
  bool operator()(const KeyView& a, const Key& b) const { return Eq(a.key, a.ns, b.key, b.ns); }
  bool operator()(const Key& a, const KeyView& b) const { return Eq(a.key, a.ns, b.key, b.ns); }
};

template <class K, class V>
struct MapSerializer {
  static void Write(const std::unordered_map<K, V>& m, ByteWriter& w) {
    w.PutVarU64(m.size());
    for (const auto& [k, v] : m) {
      Serializer<K>::Write(k, w);
      Serializer<V>::Write(v, w);
    }
  }
  static bool Read(ByteReader& r, std::unordered_map<K, V>& m) {
    uint64_t n = r.GetVarU64();
    if (r.failed() || n > r.remaining()) return false;
    m.clear();
    for (uint64_t i = 0; i < n; ++i) {
      K k{};
      V v{};
      if (!Serializer<K>::Read(r, k) || !Serializer<V>::Read(r, v)) return false;
      m.emplace(std::move(k), std::move(v));
    }
    return true;
  }
};

}  // namespace heap_internal

/// What every heap state table offers the backend for snapshots.
class HeapStateTableBase {
 public:
  virtual ~HeapStateTableBase() = default;
  virtual uint8_t kind_tag() const = 0;
  virtual size_t size() const = 0;
  /// Writes "kg, count, entries" for every non-empty key group.
  virtual void Snapshot(ByteWriter& w, Timestamp now) const = 0;
  /// Reads entries of one key group; false on malformed input.
  virtual bool RestoreGroup(ByteReader& r, int32_t kg, uint64_t count, bool keep) = 0;
  /// Appends the key of every entry in namespace `ns` (all key groups in range).
  virtual void CollectKeys(Namespace ns, std::vector<std::string>& out) const = 0;
};

/// Heap keyed state: values live as C++ objects in hash maps, one map per key group so that key
/// groups can be snapshotted and moved independently.
class HeapKeyedStateBackend final : public KeyedStateBackend {
 public:
  HeapKeyedStateBackend(int max_parallelism, KeyGroupRange range, Clock clock = nullptr)
      : KeyedStateBackend(Kind::kHeap, max_parallelism, range, std::move(clock)) {}

  template <class V>
  ValueState<V>* GetValueState(const ValueStateDescriptor<V>& d);
  template <class V>
  ListState<V>* GetListState(const ListStateDescriptor<V>& d);
  template <class K, class V>
  MapState<K, V>* GetMapState(const MapStateDescriptor<K, V>& d);
  template <class V>
  ReducingState<V>* GetReducingState(const ReducingStateDescriptor<V>& d);
  template <class IN, class ACC, class OUT>
  InternalAggregatingState<IN, ACC, OUT>* GetAggregatingState(
      const AggregatingStateDescriptor<IN, ACC, OUT>& d);

  Status Snapshot(std::string& out) override;
  Status Restore(std::string_view snapshot) override;
  size_t NumEntries() const override;

  void CollectKeys(const std::string& name, Namespace ns, std::vector<std::string>& out) override {
    auto it = tables_.find(name);
    if (it != tables_.end()) it->second->CollectKeys(ns, out);
  }

 private:
  template <class S>
  S* Register(const std::string& name, std::unique_ptr<S> s) {
    S* raw = s.get();
    tables_.emplace(name, raw);
    handles_.push_back(std::move(s));
    order_.push_back(name);
    if (auto it = pending_restore_.find(name); it != pending_restore_.end()) {
      ApplyRestore(name, *raw, it->second);
      pending_restore_.erase(it);
    }
    return raw;
  }
  template <class S>
  S* Find(const std::string& name) {
    auto it = tables_.find(name);
    return it == tables_.end() ? nullptr : dynamic_cast<S*>(it->second);
  }

  void ApplyRestore(const std::string& name, HeapStateTableBase& table, std::string_view section);

 private:
  std::unordered_map<std::string, HeapStateTableBase*> tables_;
  std::vector<std::unique_ptr<StateBase>> handles_;
  std::vector<std::string> order_;
  // Snapshot entries restored before the state was registered, by name (lazy registration).
  std::unordered_map<std::string, std::string> pending_restore_;
};

/// One state's entries. S is the stored type (V, vector<V>, map<K,V>, ACC).
template <class S, class Ser>
class HeapTable : public HeapStateTableBase {
 public:
  struct Entry {
    S value{};
    int64_t ts = 0;  // last write (or read, per TTL update type), processing time
  };
  HeapTable(HeapKeyedStateBackend& backend, uint8_t tag, StateTtlConfig ttl)
      : backend_(backend),
        tag_(tag),
        ttl_(ttl),
        groups_(static_cast<size_t>(std::max(backend.range().size(), 0))) {}

  uint8_t kind_tag() const override { return tag_; }
  size_t size() const override {
    size_t n = 0;
    for (const auto& g : groups_) n += g.size();
    return n;
  }

  /// The entry of the current key in `ns`, or nullptr (also when expired and not visible).
  Entry* Lookup(Namespace ns) {
    auto& g = Group();
    auto it = g.find(heap_internal::KeyView{backend_.current_key(), ns, backend_.current_hash()});
    if (it == g.end()) return nullptr;
    if (ttl_.enabled()) {
      int64_t now = backend_.Now().millis();
      if (now - it->second.ts >= ttl_.ttl.millis()) {
        if (ttl_.visibility == StateTtlConfig::Visibility::kNeverReturnExpired) {
          g.erase(it);
          return nullptr;
        }
      } else if (ttl_.update_type == StateTtlConfig::UpdateType::kOnReadAndWrite) {
        it->second.ts = now;
      }
    }
    return &it->second;
  }
  /// Like Lookup, but an expired entry is dropped whatever the visibility: folding writes
  /// (reduce, aggregate) never merge expired data into a new value (Flink's TtlReduceFunction).
  Entry* LookupForWrite(Namespace ns) {
    Entry* e = Lookup(ns);
    if (e && ttl_.enabled() && backend_.Now().millis() - e->ts >= ttl_.ttl.millis()) {
      Erase(ns);
      return nullptr;
    }
    return e;
  }
  Entry& LookupOrCreate(Namespace ns) {
    if (Entry* e = Lookup(ns)) {
      Touch(*e);
      return *e;
    }
    auto& g = Group();
    auto [it, inserted] =
        g.try_emplace(heap_internal::Key{backend_.current_key(), ns, backend_.current_hash()});
    Touch(it->second);
    MaybeCleanup();
    return it->second;
  }
  void Touch(Entry& e) {
    if (ttl_.enabled()) e.ts = backend_.Now().millis();
  }
  void Erase(Namespace ns) {
    auto& g = Group();
    auto it = g.find(heap_internal::KeyView{backend_.current_key(), ns, backend_.current_hash()});
    if (it != g.end()) g.erase(it);
  }

  void Snapshot(ByteWriter& w, Timestamp now) const override {
    uint64_t nonempty = 0;
    for (const auto& g : groups_) nonempty += g.empty() ? 0 : 1;
    w.PutVarU64(nonempty);
    for (size_t i = 0; i < groups_.size(); ++i) {
      const auto& g = groups_[i];
      if (g.empty()) continue;
      w.PutVarU64(static_cast<uint64_t>(backend_.range().start) + i);
      // Entries are counted first so that expired ones can be skipped.
      uint64_t live = 0;
      for (const auto& [k, e] : g) live += Expired(e, now) ? 0 : 1;
      w.PutVarU64(live);
      for (const auto& [k, e] : g) {
        if (Expired(e, now)) continue;
        w.PutBytes(k.key);
        w.PutVarI64(k.ns.a);
        w.PutVarI64(k.ns.b);
        w.PutVarI64(e.ts);
        Ser::Write(e.value, w);
      }
    }
  }
  bool RestoreGroup(ByteReader& r, int32_t kg, uint64_t count, bool keep) override {
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view key = r.GetBytes();
      Namespace ns{r.GetVarI64(), r.GetVarI64()};
      int64_t ts = r.GetVarI64();
      Entry e;
      e.ts = ts;
      if (!Ser::Read(r, e.value)) return false;
      if (keep) {
        auto& g = groups_[static_cast<size_t>(kg - backend_.range().start)];
        g.insert_or_assign(heap_internal::Key{std::string(key), ns, Murmur3(key)}, std::move(e));
      }
    }
    return !r.failed();
  }

  void CollectKeys(Namespace ns, std::vector<std::string>& out) const override {
    for (const auto& g : groups_) {
      for (const auto& [k, e] : g) {
        if (k.ns == ns) out.push_back(k.key);
      }
    }
  }

  /// Visits every entry of the current key (any namespace). Used by tests and for iteration.
  template <class F>
  void ForEachInGroup(F&& f) {
    for (auto& [k, e] : Group()) f(k, e);
  }

 private:
  using Map =
      std::unordered_map<heap_internal::Key, Entry, heap_internal::KeyHash, heap_internal::KeyEq>;
  Map& Group() {
    return groups_[static_cast<size_t>(backend_.current_key_group().value() -
                                       backend_.range().start)];
  }
  bool Expired(const Entry& e, Timestamp now) const {
    return ttl_.enabled() && ttl_.cleanup_full_snapshot && now.millis() - e.ts >= ttl_.ttl.millis();
  }
  void MaybeCleanup() {
    if (!ttl_.enabled() || ttl_.cleanup_incremental <= 0 || groups_.empty()) return;
    int64_t now = backend_.Now().millis();
    auto& g = groups_[cleanup_group_ % groups_.size()];
    int budget = ttl_.cleanup_incremental;
    for (auto it = g.begin(); it != g.end() && budget > 0; --budget) {
      if (now - it->second.ts >= ttl_.ttl.millis()) {
        it = g.erase(it);
      } else {
        ++it;
      }
    }
    ++cleanup_group_;
  }

  HeapKeyedStateBackend& backend_;
  uint8_t tag_;
  StateTtlConfig ttl_;
  std::vector<Map> groups_;
  size_t cleanup_group_ = 0;
};

namespace heap_internal {

enum : uint8_t {
  kValueTag = static_cast<uint8_t>(StateKind::kValue),
  kListTag = static_cast<uint8_t>(StateKind::kList),
  kMapTag = static_cast<uint8_t>(StateKind::kMap),
  kReducingTag = static_cast<uint8_t>(StateKind::kReducing),
  kAggregatingTag = static_cast<uint8_t>(StateKind::kAggregating),
};

template <class V>
class ValueImpl final : public ValueState<V>, public HeapTable<V, Serializer<V>> {
 public:
  using Table = HeapTable<V, Serializer<V>>;
  ValueImpl(HeapKeyedStateBackend& b, const StateTtlConfig& ttl) : Table(b, kValueTag, ttl) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  const V* Get() override {
    auto* e = this->Lookup(ns_);
    return e ? &e->value : nullptr;
  }
  void Update(const V& v) override { this->LookupOrCreate(ns_).value = v; }
  V& GetOrCreate() override { return this->LookupOrCreate(ns_).value; }

 private:
  Namespace ns_;
};

template <class V>
class ListImpl final : public ListState<V>,
                       public HeapTable<std::vector<V>, Serializer<std::vector<V>>> {
 public:
  using Table = HeapTable<std::vector<V>, Serializer<std::vector<V>>>;
  ListImpl(HeapKeyedStateBackend& b, const StateTtlConfig& ttl) : Table(b, kListTag, ttl) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  const std::vector<V>* Get() override {
    auto* e = this->Lookup(ns_);
    return e && !e->value.empty() ? &e->value : nullptr;
  }
  void Add(const V& v) override { this->LookupOrCreate(ns_).value.push_back(v); }
  void Update(std::vector<V> values) override {
    if (values.empty()) {
      Clear();
    } else {
      this->LookupOrCreate(ns_).value = std::move(values);
    }
  }
  std::vector<V>* GetMutable() override { return &this->LookupOrCreate(ns_).value; }

 private:
  Namespace ns_;
};

template <class K, class V>
class MapImpl final : public MapState<K, V>,
                      public HeapTable<std::unordered_map<K, V>, MapSerializer<K, V>> {
 public:
  using Table = HeapTable<std::unordered_map<K, V>, MapSerializer<K, V>>;
  MapImpl(HeapKeyedStateBackend& b, const StateTtlConfig& ttl) : Table(b, kMapTag, ttl) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  const V* Get(const K& k) override {
    auto* e = this->Lookup(ns_);
    if (!e) return nullptr;
    auto it = e->value.find(k);
    return it == e->value.end() ? nullptr : &it->second;
  }
  void Put(const K& k, const V& v) override {
    this->LookupOrCreate(ns_).value.insert_or_assign(k, v);
  }
  void Remove(const K& k) override {
    auto* e = this->Lookup(ns_);
    if (!e) return;
    e->value.erase(k);
    if (e->value.empty()) Clear();
  }
  bool Contains(const K& k) override { return Get(k) != nullptr; }
  bool IsEmpty() override {
    auto* e = this->Lookup(ns_);
    return !e || e->value.empty();
  }
  void ForEach(const std::function<void(const K&, const V&)>& f) override {
    auto* e = this->Lookup(ns_);
    if (!e) return;
    for (const auto& [k, v] : e->value) f(k, v);
  }

 private:
  Namespace ns_;
};

template <class V>
class ReducingImpl final : public ReducingState<V>, public HeapTable<V, Serializer<V>> {
 public:
  using Table = HeapTable<V, Serializer<V>>;
  ReducingImpl(HeapKeyedStateBackend& b, const ReducingStateDescriptor<V>& d)
      : Table(b, kReducingTag, d.ttl), reduce_(d.reduce) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  const V* Get() override {
    auto* e = this->Lookup(ns_);
    return e ? &e->value : nullptr;
  }
  void Add(const V& v) override {
    if (auto* e = this->LookupForWrite(ns_)) {
      reduce_->Reduce(e->value, v);
      this->Touch(*e);
    } else {
      this->LookupOrCreate(ns_).value = v;
    }
  }

 private:
  std::shared_ptr<const ReduceFunction<V>> reduce_;
  Namespace ns_;
};

template <class IN, class ACC, class OUT>
class AggregatingImpl final : public InternalAggregatingState<IN, ACC, OUT>,
                              public HeapTable<ACC, Serializer<ACC>> {
 public:
  using Table = HeapTable<ACC, Serializer<ACC>>;
  AggregatingImpl(HeapKeyedStateBackend& b, const AggregatingStateDescriptor<IN, ACC, OUT>& d)
      : Table(b, kAggregatingTag, d.ttl), agg_(d.aggregate) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  std::optional<OUT> Get() override {
    auto* e = this->Lookup(ns_);
    if (!e) return std::nullopt;
    return agg_->GetResult(e->value);
  }
  void Add(const IN& v) override {
    auto* e = this->LookupForWrite(ns_);
    if (!e) {
      e = &this->LookupOrCreate(ns_);
      e->value = agg_->CreateAccumulator();
    } else {
      this->Touch(*e);
    }
    agg_->Add(v, e->value);
  }
  const ACC* GetAccumulator() override {
    auto* e = this->Lookup(ns_);
    return e ? &e->value : nullptr;
  }
  void SetAccumulator(ACC acc) override { this->LookupOrCreate(ns_).value = std::move(acc); }

 private:
  std::shared_ptr<const AggregateFunction<IN, ACC, OUT>> agg_;
  Namespace ns_;
};

}  // namespace heap_internal

template <class V>
ValueState<V>* HeapKeyedStateBackend::GetValueState(const ValueStateDescriptor<V>& d) {
  using Impl = heap_internal::ValueImpl<V>;
  if (auto* s = Find<Impl>(d.name)) return s;
  return Register(d.name, std::make_unique<Impl>(*this, d.ttl));
}
template <class V>
ListState<V>* HeapKeyedStateBackend::GetListState(const ListStateDescriptor<V>& d) {
  using Impl = heap_internal::ListImpl<V>;
  if (auto* s = Find<Impl>(d.name)) return s;
  return Register(d.name, std::make_unique<Impl>(*this, d.ttl));
}
template <class K, class V>
MapState<K, V>* HeapKeyedStateBackend::GetMapState(const MapStateDescriptor<K, V>& d) {
  using Impl = heap_internal::MapImpl<K, V>;
  if (auto* s = Find<Impl>(d.name)) return s;
  return Register(d.name, std::make_unique<Impl>(*this, d.ttl));
}
template <class V>
ReducingState<V>* HeapKeyedStateBackend::GetReducingState(const ReducingStateDescriptor<V>& d) {
  using Impl = heap_internal::ReducingImpl<V>;
  if (auto* s = Find<Impl>(d.name)) return s;
  return Register(d.name, std::make_unique<Impl>(*this, d));
}
template <class IN, class ACC, class OUT>
InternalAggregatingState<IN, ACC, OUT>* HeapKeyedStateBackend::GetAggregatingState(
    const AggregatingStateDescriptor<IN, ACC, OUT>& d) {
  using Impl = heap_internal::AggregatingImpl<IN, ACC, OUT>;
  if (auto* s = Find<Impl>(d.name)) return s;
  return Register(d.name, std::make_unique<Impl>(*this, d));
}

}  // namespace eddy
