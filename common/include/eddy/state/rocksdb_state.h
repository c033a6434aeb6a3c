#pragma once

// Typed state handles of the RocksDB backend: Value, List, Map, Reducing and Aggregating state
// over the backend's raw-bytes interface (rocksdb_backend.h). Values are (de)serialized with
// Serializer<T>; no RocksDB header is needed here.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/state/rocksdb_backend.h"

namespace eddy {
namespace rocksdb_internal {

/// How a stored value of type S follows the timestamp: Serializer<S>.
template <class S>
struct PlainCodec {
  static void Encode(const S& v, std::string& out) {
    ByteWriter w(out);
    Serializer<S>::Write(v, w);
  }
  static bool Decode(std::string_view in, S& v) {
    ByteReader r(in);
    return Serializer<S>::Read(r, v) && r.AtEnd();
  }
  /// Canonical import: reads one Serializer<S> value; `payload` is its stored form.
  static bool Import(ByteReader& r, std::string& payload) {
    const char* start = r.position();
    S tmp{};
    if (!Serializer<S>::Read(r, tmp)) return false;
    payload.append(start, static_cast<size_t>(r.position() - start));
    return true;
  }
};

/// A list follows the timestamp as [count: 4 bytes LE][elements, Serializer<V> each], so that the
/// merge operator can concatenate lists without knowing V.
template <class V>
struct ListCodec {
  static void Encode(const std::vector<V>& v, std::string& out) {
    AppendFixedLE(out, v.size(), kListCountBytes);
    ByteWriter w(out);
    for (const auto& e : v) Serializer<V>::Write(e, w);
  }
  static bool Decode(std::string_view in, std::vector<V>& v) {
    if (in.size() < kListCountBytes) return false;
    uint64_t n = DecodeFixedLE(in.data(), kListCountBytes);
    ByteReader r(in.substr(kListCountBytes));
    if (n > r.remaining()) return false;  // each element takes >= 1 byte
    v.resize(n);
    for (auto& e : v) {
      if (!Serializer<V>::Read(r, e)) return false;
    }
    return r.AtEnd();
  }
  /// Canonical import: reads a Serializer<std::vector<V>> (varint count, elements).
  static bool Import(ByteReader& r, std::string& payload) {
    uint64_t n = r.GetVarU64();
    if (r.failed() || n > r.remaining()) return false;
    AppendFixedLE(payload, n, kListCountBytes);
    const char* start = r.position();
    V tmp{};
    for (uint64_t i = 0; i < n; ++i) {
      if (!Serializer<V>::Read(r, tmp)) return false;
    }
    payload.append(start, static_cast<size_t>(r.position() - start));
    return true;
  }
};

/// A handle whose state is one value S per (key, namespace), cached in one slot: the last
/// (key, namespace) accessed. Reads load the slot; writes change it and mark it dirty; the slot is
/// written back (Put, or Delete when absent) when the handle moves to another (key, namespace) or
/// the backend flushes the handles. TTL follows the heap backend's HeapTable.
template <class S, class Codec>
class SlotHandle : public HandleBase {
 public:
  void FlushCache() final {
    if (!dirty_) return;
    dirty_ = false;
    if (present_ && !IsEmptyValue()) {
      buf_.clear();
      AppendTs(buf_, ts_);
      Codec::Encode(value_, buf_);
      backend_.RawPut(table_, slot_key_, buf_);
    } else {
      present_ = false;
      backend_.RawDelete(table_, slot_key_);
    }
  }
  void DropCache() final {
    valid_ = false;
    dirty_ = false;
  }
  bool ImportCanonical(ByteReader& r, std::string_view state_key, int64_t ts, bool keep) final {
    buf_.clear();
    AppendTs(buf_, ts);
    if (!Codec::Import(r, buf_)) return false;
    if (keep) {
      if (valid_ && slot_key_ == state_key) DropCache();
      backend_.RawPut(table_, state_key, buf_);
    }
    return true;
  }

 protected:
  SlotHandle(RocksDBKeyedStateBackend& b, const StateTtlConfig& ttl) : HandleBase(b, ttl) {}

  /// Lists are never stored empty.
  virtual bool IsEmptyValue() const { return false; }

  /// Points the slot at the current key in `ns`; true when it already held it.
  bool Seek(Namespace ns) {
    key_.clear();
    backend_.AppendStateKey(ns, key_);
    if (valid_ && key_ == slot_key_) return true;
    FlushCache();
    slot_key_.swap(key_);
    valid_ = true;
    return false;
  }
  /// Loads the slot from the database.
  void Load() {
    std::string_view raw;
    present_ = false;
    if (!backend_.RawGet(table_, slot_key_, &raw)) return;
    if (raw.size() < kTsBytes || !Codec::Decode(raw.substr(kTsBytes), value_)) {
      backend_.ReportCorruptValue(table_);
      return;
    }
    ts_ = DecodeTs(raw);
    present_ = true;
  }
  bool Expired(int64_t now) const { return now - ts_ >= ttl_.ttl.millis(); }

  /// The value of the current key in `ns`, or nullptr (also when expired and not visible).
  S* Lookup(Namespace ns) {
    if (!Seek(ns)) Load();
    if (!present_) return nullptr;
    if (ttl_.enabled()) {
      int64_t now = backend_.Now().millis();
      if (Expired(now)) {
        if (ttl_.visibility == StateTtlConfig::Visibility::kNeverReturnExpired) {
          present_ = false;
          dirty_ = true;
          return nullptr;
        }
      } else if (ttl_.update_type == StateTtlConfig::UpdateType::kOnReadAndWrite) {
        ts_ = now;
        dirty_ = true;
      }
    }
    return &value_;
  }
  /// Like Lookup, but an expired value is dropped whatever the visibility (folding writes never
  /// merge expired data into a new value).
  S* LookupForWrite(Namespace ns) {
    S* v = Lookup(ns);
    if (v && ttl_.enabled() && Expired(backend_.Now().millis())) {
      present_ = false;
      dirty_ = true;
      return nullptr;
    }
    return v;
  }
  /// The value of the current key in `ns`, default-constructed when absent; counts as a write.
  S& LookupOrCreate(Namespace ns) {
    if (!Lookup(ns)) {
      value_ = S{};
      ts_ = 0;
      present_ = true;
    }
    Touch();
    return value_;
  }
  /// The slot of the current key in `ns` to be overwritten (no read); counts as a write.
  S& Assign(Namespace ns) {
    Seek(ns);
    present_ = true;
    ts_ = 0;
    Touch();
    return value_;
  }
  /// Removes the value of the current key in `ns` (no read).
  void Erase(Namespace ns) {
    Seek(ns);
    present_ = false;
    dirty_ = true;
  }
  /// A write: refreshes the TTL timestamp and marks the slot dirty.
  void Touch() {
    if (ttl_.enabled()) ts_ = backend_.Now().millis();
    dirty_ = true;
  }

  S value_{};
  int64_t ts_ = 0;
  bool valid_ = false;    // the slot holds slot_key_
  bool present_ = false;  // slot_key_ has a value (value_, ts_)
  bool dirty_ = false;    // value_/present_ differ from the database
  std::string slot_key_;
  std::string key_;  // scratch: the key being looked up
  std::string buf_;  // scratch: encoded values
};

template <class V>
class ValueHandle final : public ValueState<V>, public SlotHandle<V, PlainCodec<V>> {
  using Base = SlotHandle<V, PlainCodec<V>>;

 public:
  ValueHandle(RocksDBKeyedStateBackend& b, const StateTtlConfig& ttl) : Base(b, ttl) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  const V* Get() override { return this->Lookup(ns_); }
  void Update(const V& v) override { this->Assign(ns_) = v; }
  V& GetOrCreate() override { return this->LookupOrCreate(ns_); }

 private:
  Namespace ns_;
};

template <class V>
class ListHandle final : public ListState<V>, public SlotHandle<std::vector<V>, ListCodec<V>> {
  using Base = SlotHandle<std::vector<V>, ListCodec<V>>;

 public:
  ListHandle(RocksDBKeyedStateBackend& b, const StateTtlConfig& ttl) : Base(b, ttl) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  const std::vector<V>* Get() override {
    auto* l = this->Lookup(ns_);
    return l && !l->empty() ? l : nullptr;
  }
  /// A RocksDB merge of a one-element list: no read, unless TTL needs the current timestamp.
  void Add(const V& v) override {
    bool cached = true;
    if (this->ttl_.enabled()) {
      // Whether the stored list is still alive decides between appending and starting anew.
      (void)this->Lookup(ns_);
    } else {
      cached = this->Seek(ns_);
    }
    if (cached) {
      if (!this->present_) {
        this->value_.clear();
        this->ts_ = 0;
        this->present_ = true;
      }
      this->value_.push_back(v);
      if (this->ttl_.enabled()) this->ts_ = this->backend_.Now().millis();
      // A dirty slot is written whole later; a clean one stays in sync through the merge.
      if (this->dirty_) return;
    } else {
      // Not cached: append blindly; the slot does not know this list.
      this->valid_ = false;
    }
    this->buf_.clear();
    AppendTs(this->buf_, this->ttl_.enabled() ? this->backend_.Now().millis() : 0);
    AppendFixedLE(this->buf_, 1, kListCountBytes);
    ByteWriter w(this->buf_);
    Serializer<V>::Write(v, w);
    this->backend_.RawMerge(this->table_, this->slot_key_, this->buf_);
  }
  void Update(std::vector<V> values) override {
    if (values.empty()) {
      Clear();
    } else {
      this->Assign(ns_) = std::move(values);
    }
  }
  std::vector<V>* GetMutable() override { return &this->LookupOrCreate(ns_); }

 private:
  bool IsEmptyValue() const override { return this->value_.empty(); }
  Namespace ns_;
};

template <class V>
class ReducingHandle final : public ReducingState<V>, public SlotHandle<V, PlainCodec<V>> {
  using Base = SlotHandle<V, PlainCodec<V>>;

 public:
  ReducingHandle(RocksDBKeyedStateBackend& b, const ReducingStateDescriptor<V>& d)
      : Base(b, d.ttl), reduce_(d.reduce) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  const V* Get() override { return this->Lookup(ns_); }
  void Add(const V& v) override {
    if (V* cur = this->LookupForWrite(ns_)) {
      reduce_->Reduce(*cur, v);
      this->Touch();
    } else {
      this->Assign(ns_) = v;
    }
  }

 private:
  std::shared_ptr<const ReduceFunction<V>> reduce_;
  Namespace ns_;
};

template <class IN, class ACC, class OUT>
class AggregatingHandle final : public InternalAggregatingState<IN, ACC, OUT>,
                                public SlotHandle<ACC, PlainCodec<ACC>> {
  using Base = SlotHandle<ACC, PlainCodec<ACC>>;

 public:
  AggregatingHandle(RocksDBKeyedStateBackend& b, const AggregatingStateDescriptor<IN, ACC, OUT>& d)
      : Base(b, d.ttl), agg_(d.aggregate) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override { this->Erase(ns_); }
  std::optional<OUT> Get() override {
    const ACC* acc = this->Lookup(ns_);
    if (!acc) return std::nullopt;
    return agg_->GetResult(*acc);
  }
  void Add(const IN& v) override {
    ACC* acc = this->LookupForWrite(ns_);
    if (!acc) {
      acc = &this->Assign(ns_);
      *acc = agg_->CreateAccumulator();
    } else {
      this->Touch();
    }
    agg_->Add(v, *acc);
  }
  const ACC* GetAccumulator() override { return this->Lookup(ns_); }
  void SetAccumulator(ACC acc) override { this->Assign(ns_) = std::move(acc); }

 private:
  std::shared_ptr<const AggregateFunction<IN, ACC, OUT>> agg_;
  Namespace ns_;
};

/// Map state: one row per map entry (key prefix + Serializer<K> of the map key), written through
/// (no slot cache); Get's result lives in the handle until the next access. TTL per map entry.
template <class K, class V>
class MapHandle final : public MapState<K, V>, public HandleBase {
 public:
  MapHandle(RocksDBKeyedStateBackend& b, const StateTtlConfig& ttl) : HandleBase(b, ttl) {}
  void SetNamespace(Namespace ns) override { ns_ = ns; }
  void Clear() override {
    Prefix();
    backend_.RawDeletePrefix(table_, prefix_);
  }
  const V* Get(const K& k) override {
    RowKey(k);
    std::string_view raw;
    if (!backend_.RawGet(table_, key_, &raw)) return nullptr;
    if (raw.size() < kTsBytes) {
      backend_.ReportCorruptValue(table_);
      return nullptr;
    }
    int64_t ts = DecodeTs(raw);
    bool touch = false;
    if (!Visible(ts, &touch)) {
      backend_.RawDelete(table_, key_);
      return nullptr;
    }
    if (!PlainCodec<V>::Decode(raw.substr(kTsBytes), got_)) {
      backend_.ReportCorruptValue(table_);
      return nullptr;
    }
    if (touch) Write(key_, got_);
    return &got_;
  }
  void Put(const K& k, const V& v) override {
    RowKey(k);
    Write(key_, v);
  }
  void Remove(const K& k) override {
    RowKey(k);
    backend_.RawDelete(table_, key_);
  }
  bool Contains(const K& k) override { return Get(k) != nullptr; }
  bool IsEmpty() override {
    Prefix();
    bool empty = true;
    backend_.RawScan(table_, prefix_, [&](std::string_view key, std::string_view raw) {
      bool touch = false;
      if (raw.size() >= kTsBytes && !Visible(DecodeTs(raw), &touch)) {
        backend_.RawDelete(table_, key);
        return true;
      }
      empty = false;
      return false;
    });
    return empty;
  }
  void ForEach(const std::function<void(const K&, const V&)>& f) override {
    Prefix();
    backend_.RawScan(table_, prefix_, [&](std::string_view key, std::string_view raw) {
      bool touch = false;
      if (raw.size() < kTsBytes) {
        backend_.ReportCorruptValue(table_);
        return false;
      }
      if (!Visible(DecodeTs(raw), &touch)) {
        backend_.RawDelete(table_, key);
        return true;
      }
      ByteReader kr(key.substr(prefix_.size()));
      if (!Serializer<K>::Read(kr, k_) || !PlainCodec<V>::Decode(raw.substr(kTsBytes), v_)) {
        backend_.ReportCorruptValue(table_);
        return false;
      }
      if (touch) Write(key, v_);
      f(k_, v_);
      return true;
    });
  }

  void FlushCache() override {}
  void DropCache() override {}
  bool ImportCanonical(ByteReader& r, std::string_view state_key, int64_t ts, bool keep) override {
    uint64_t n = r.GetVarU64();
    if (r.failed() || n > r.remaining()) return false;
    K k{};
    V v{};
    for (uint64_t i = 0; i < n; ++i) {
      const char* ks = r.position();
      if (!Serializer<K>::Read(r, k)) return false;
      const char* vs = r.position();
      if (!Serializer<V>::Read(r, v)) return false;
      if (!keep) continue;
      key_.assign(state_key);
      key_.append(ks, static_cast<size_t>(vs - ks));
      buf_.clear();
      AppendTs(buf_, ts);
      buf_.append(vs, static_cast<size_t>(r.position() - vs));
      backend_.RawPut(table_, key_, buf_);
    }
    return true;
  }

 private:
  void Prefix() {
    prefix_.clear();
    backend_.AppendStateKey(ns_, prefix_);
  }
  void RowKey(const K& k) {
    key_.clear();
    backend_.AppendStateKey(ns_, key_);
    ByteWriter w(key_);
    Serializer<K>::Write(k, w);
  }
  void Write(std::string_view key, const V& v) {
    buf_.clear();
    AppendTs(buf_, ttl_.enabled() ? backend_.Now().millis() : 0);
    PlainCodec<V>::Encode(v, buf_);
    backend_.RawPut(table_, key, buf_);
  }
  /// TTL on read: false when the entry expired and must not be returned; *touch when the read
  /// refreshes it (OnReadAndWrite).
  bool Visible(int64_t ts, bool* touch) {
    if (!ttl_.enabled()) return true;
    int64_t now = backend_.Now().millis();
    if (now - ts >= ttl_.ttl.millis()) {
      return ttl_.visibility != StateTtlConfig::Visibility::kNeverReturnExpired;
    }
    *touch = ttl_.update_type == StateTtlConfig::UpdateType::kOnReadAndWrite;
    return true;
  }

  Namespace ns_;
  std::string prefix_;
  std::string key_;
  std::string buf_;
  K k_{};
  V v_{};
  V got_{};
};

/// Finds the handle registered as `name` or registers a new one made by `make`.
template <class Impl, class Make>
Impl* GetOrRegister(RocksDBKeyedStateBackend& b, const std::string& name, StateKind kind,
                    const StateTtlConfig& ttl, Make&& make) {
  if (HandleBase* h = b.FindHandle(name)) {
    if (auto* impl = dynamic_cast<Impl*>(h)) return impl;
  }
  std::unique_ptr<Impl> h = make();
  Impl* raw = h.get();
  b.RegisterHandle(name, kind, ttl, std::move(h));
  return raw;
}

}  // namespace rocksdb_internal

template <class V>
ValueState<V>* RocksDBKeyedStateBackend::GetValueState(const ValueStateDescriptor<V>& d) {
  using Impl = rocksdb_internal::ValueHandle<V>;
  return rocksdb_internal::GetOrRegister<Impl>(*this, d.name, StateKind::kValue, d.ttl, [&] {
    return std::make_unique<Impl>(*this, d.ttl);
  });
}
template <class V>
ListState<V>* RocksDBKeyedStateBackend::GetListState(const ListStateDescriptor<V>& d) {
  using Impl = rocksdb_internal::ListHandle<V>;
  return rocksdb_internal::GetOrRegister<Impl>(
      *this, d.name, StateKind::kList, d.ttl, [&] { return std::make_unique<Impl>(*this, d.ttl); });
}
template <class K, class V>
MapState<K, V>* RocksDBKeyedStateBackend::GetMapState(const MapStateDescriptor<K, V>& d) {
  using Impl = rocksdb_internal::MapHandle<K, V>;
  return rocksdb_internal::GetOrRegister<Impl>(
      *this, d.name, StateKind::kMap, d.ttl, [&] { return std::make_unique<Impl>(*this, d.ttl); });
}
template <class V>
ReducingState<V>* RocksDBKeyedStateBackend::GetReducingState(const ReducingStateDescriptor<V>& d) {
  using Impl = rocksdb_internal::ReducingHandle<V>;
  return rocksdb_internal::GetOrRegister<Impl>(*this, d.name, StateKind::kReducing, d.ttl,
                                               [&] { return std::make_unique<Impl>(*this, d); });
}
template <class IN, class ACC, class OUT>
InternalAggregatingState<IN, ACC, OUT>* RocksDBKeyedStateBackend::GetAggregatingState(
    const AggregatingStateDescriptor<IN, ACC, OUT>& d) {
  using Impl = rocksdb_internal::AggregatingHandle<IN, ACC, OUT>;
  return rocksdb_internal::GetOrRegister<Impl>(*this, d.name, StateKind::kAggregating, d.ttl,
                                               [&] { return std::make_unique<Impl>(*this, d); });
}

}  // namespace eddy
