#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/serialization.h"
#include "eddy/state/keyed_backend.h"

namespace eddy {

/// Tuning of RocksDBKeyedStateBackend (Flink's `state.backend.rocksdb.*`). Every field is fixed
/// when the backend is created.
struct RocksDBStateOptions {
  /// LRU block cache for uncompressed data blocks, bytes. Shared by every RocksDB backend of the
  /// process asking for the same size (one cache per distinct size). Default 64 MiB.
  uint64_t block_cache_bytes = 64ull << 20;
  /// Memtable size per column family (state), bytes: a memtable is flushed to an SST file when it
  /// reaches this. Default 8 MiB.
  uint64_t write_buffer_bytes = 8ull << 20;
  /// Memtables per column family (one active, the rest waiting to be flushed). Default 2.
  int max_write_buffer_number = 2;
  /// Target size of the SST files compaction writes, bytes. Smaller files make incremental
  /// checkpoints re-upload less after a compaction. Default 32 MiB.
  uint64_t target_file_size_bytes = 32ull << 20;
  /// Uncompressed size of a data block, bytes. Default 4 KiB (RocksDB's and Flink's).
  uint64_t block_size_bytes = 4ull << 10;
  /// Bloom filter bits per key for point lookups (Get); 0 = no filter. Default 10 (~1% false
  /// positives).
  int bloom_bits_per_key = 10;
  /// Background flush and compaction threads per backend (RocksDB max_background_jobs; the
  /// threads come from one process-wide pool). Default 2.
  int max_background_jobs = 2;
  /// LZ4 compression of SST files (Snappy when the library lacks LZ4, none when it lacks both).
  /// Default true.
  bool compression = true;
  /// After a restore has downloaded a native checkpoint, read every file once to verify its
  /// checksums, so that a corrupt file fails the restore instead of a later state access.
  /// Default true.
  bool verify_checksums_on_restore = true;
};

class RocksDBKeyedStateBackend;

namespace rocksdb_internal {

/// A non-owning reference to a callable (no allocation), for scans on the hot path.
template <class Sig>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef>)
      FunctionRef(F&& f)  // NOLINT(google-explicit-constructor)
      : obj_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, Args... a) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(a)...);
        }) {}
  R operator()(Args... a) const { return call_(obj_, std::forward<Args>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

/// Value layout: every value starts with the entry's TTL timestamp (processing time of the last
/// write, or read for OnReadAndWrite; 0 without TTL), 8 bytes little-endian. List values continue
/// with a 4-byte little-endian element count and the elements (Serializer<V> each, concatenated),
/// so that appending is a RocksDB merge of a one-element list; the other kinds continue with the
/// value (Serializer<S>).
inline constexpr size_t kTsBytes = 8;
inline constexpr size_t kListCountBytes = 4;

inline void AppendFixedLE(std::string& out, uint64_t v, size_t bytes) {
  char buf[8];
  for (size_t i = 0; i < bytes; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(buf, bytes);
}
inline uint64_t DecodeFixedLE(const char* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
inline void AppendTs(std::string& out, int64_t ts) {
  AppendFixedLE(out, static_cast<uint64_t>(ts), kTsBytes);
}
inline int64_t DecodeTs(std::string_view v) {
  return static_cast<int64_t>(DecodeFixedLE(v.data(), kTsBytes));
}

/// One registered state: its column family, kind and TTL (defined in rocksdb_backend.cc).
struct Table;

/// What the backend needs of a typed state handle (rocksdb_state.h). Handles are owned by the
/// backend; the task thread only.
class HandleBase {
 public:
  virtual ~HandleBase() = default;
  /// Writes a value that was handed out for mutation (GetOrCreate, GetMutable, ...) back to the
  /// database. The backend calls it before anything reads the database directly (snapshots,
  /// ForEachKey, NumEntries).
  virtual void FlushCache() = 0;
  /// Forgets cached values (a restore replaced the rows under them).
  virtual void DropCache() = 0;
  /// Reads one entry's value in the canonical snapshot format from `r` and, when `keep`, writes
  /// its rows under `state_key` with TTL timestamp `ts`. False on malformed input.
  virtual bool ImportCanonical(ByteReader& r, std::string_view state_key, int64_t ts,
                               bool keep) = 0;

 protected:
  friend class eddy::RocksDBKeyedStateBackend;
  HandleBase(RocksDBKeyedStateBackend& backend, const StateTtlConfig& ttl)
      : backend_(backend), ttl_(ttl) {}
  RocksDBKeyedStateBackend& backend_;
  StateTtlConfig ttl_;
  /// The state's column family; set by the backend when it registers the handle.
  Table* table_ = nullptr;
};

}  // namespace rocksdb_internal

/// Keyed state in an embedded RocksDB (Flink's EmbeddedRocksDBStateBackend): one database per
/// operator subtask in a local working directory, one column family per state name (`s/<name>`;
/// the default column family holds the states' kinds and TTLs and restored-but-unregistered
/// canonical state). Values are serialized bytes; reads deserialize, writes serialize.
///
/// Key layout, shared by every state:
///   [key group: 2 bytes big-endian][serialized key length: varint][serialized key]
///   [namespace.a: 8 bytes][namespace.b: 8 bytes]   (big-endian, sign bit flipped)
///   [map state only: the map key, Serializer<K>]
/// so all entries of a key group form one contiguous key range (rescaling cuts ranges out) and all
/// entries of one (key, namespace) of a map state share a prefix (iteration is a prefix scan).
/// Values: see rocksdb_internal::kTsBytes.
///
/// Each typed handle caches the last (key, namespace) it read (one slot) and writes a mutated
/// value back on its next access to another (key, namespace) or before a snapshot: handles that
/// return mutable references (ValueState::GetOrCreate, ListState::GetMutable) keep working, and a
/// read-modify-write of one key costs one Get and one Put.
///
/// TTL: checked on every read (expired entries are deleted on access unless the visibility
/// returns them), dropped by a compaction filter in the background and skipped by canonical
/// snapshots (cleanup_full_snapshot). Map state expires per map entry (Flink's semantics; the
/// heap backend expires the whole map of a key and namespace). `cleanup_incremental` is a heap
/// option and ignored here.
///
/// Snapshots: checkpoints are native and incremental (SnapshotAsync, rocksdb_snapshot.cc);
/// savepoints and Snapshot() are canonical, readable by the heap backend and vice versa.
///
/// Lifecycle: Make() opens an empty database in `<local_dir>/db` (creating the directory);
/// RestoreFromHandles/Restore before the operator opens; the destructor closes the database and
/// removes `local_dir`. Threading: the task thread only, except the SnapshotUpload it returns.
/// Ownership: owns its database, column families, handles and local directory.
class RocksDBKeyedStateBackend final : public KeyedStateBackend {
 public:
  /// Opens a backend with an empty database under `local_dir` (created; it must not be used by
  /// anything else and is removed when the backend is destroyed). IOError when the directory or
  /// database cannot be created.
  static Result<std::unique_ptr<RocksDBKeyedStateBackend>> Make(int max_parallelism,
                                                                KeyGroupRange range, Clock clock,
                                                                std::string local_dir,
                                                                RocksDBStateOptions options = {});
  ~RocksDBKeyedStateBackend() override;
  RocksDBKeyedStateBackend(const RocksDBKeyedStateBackend&) = delete;
  RocksDBKeyedStateBackend& operator=(const RocksDBKeyedStateBackend&) = delete;

  /// Typed handles; defined in eddy/state/rocksdb_state.h (include it to call them).
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

  void CollectKeys(const std::string& name, Namespace ns, std::vector<std::string>& out) override;
  /// Canonical full snapshot of the key groups in range (the heap backend's format).
  Status Snapshot(std::string& out) override;
  /// Adds a canonical snapshot. Sections of states not registered yet are kept in the database
  /// and converted when the operator registers the state (their value types are unknown before).
  Status Restore(std::string_view snapshot) override;
  size_t NumEntries() const override;
  /// Checkpoint (target.savepoint false; target.store required): flushes and hard-links a RocksDB
  /// checkpoint locally, then the upload writes a ROCKSDB_NATIVE handle that references
  ///   - SST files of the last checkpoint confirmed by NotifyCheckpointComplete (or of the restored
  ///     checkpoint), under the keys they were uploaded to then (shared, not uploaded again),
  ///   - new SST files at `shared_prefix + <instance id>-<checkpoint id>-<file>` (shared; with an
  ///     empty shared_prefix every file is exclusive and the checkpoint is full),
  ///   - MANIFEST, CURRENT, OPTIONS at `exclusive_prefix + <file>` (not shared).
  /// Deleting shared files no retained checkpoint refers to is the coordinator's job.
  /// Savepoint: the same local checkpoint converted to the canonical format on the upload thread.
  /// Details: rocksdb_snapshot.cc.
  Result<SnapshotUpload> SnapshotAsync(const SnapshotTarget& target) override;
  /// Native handles: one whose key groups contain this range becomes the database (downloaded
  /// into the working directory; other key groups deleted by range) when nothing is registered
  /// yet; the key groups in range of every other one are copied in from a temporary download.
  /// Canonical handles: as Restore(). A missing file is NotFound, a file of the wrong size or
  /// one RocksDB cannot read (checksums verified, see RocksDBStateOptions) a ParseError naming
  /// the object. After an error the backend is still usable (it may hold part of the restored
  /// state; the task fails anyway).
  Status RestoreFromHandles(const std::vector<proto::KeyedStateHandle>& handles,
                            storage::ObjectStore& store) override;
  void NotifyCheckpointComplete(CheckpointId id) override;
  void NotifyCheckpointAborted(CheckpointId id) override;

  const std::string& local_dir() const;
  const RocksDBStateOptions& options() const;
  /// Writes every cached mutation back, flushes the memtables and compacts every column family
  /// into the bottom level (tests and benchmarks: a known file layout).
  Status CompactAll();

  // ---- raw-bytes interface of the typed handles (rocksdb_state.h) ----

  /// Appends the key-group / key / namespace prefix of the current key in `ns` to `out`.
  void AppendStateKey(Namespace ns, std::string& out) const {
    AppendStateKeyOf(current_key_group_, current_key_, ns, out);
  }
  /// Appends the prefix of serialized key `key` (in key group `kg`) in `ns` to `out`.
  static void AppendStateKeyOf(KeyGroup kg, std::string_view key, Namespace ns, std::string& out) {
    auto g = static_cast<uint32_t>(kg.value());
    char head[2] = {static_cast<char>((g >> 8) & 0xff), static_cast<char>(g & 0xff)};
    out.append(head, 2);
    ByteWriter w(out);
    w.PutVarU64(key.size());
    out.append(key.data(), key.size());
    AppendNamespace(ns, out);
  }
  static void AppendNamespace(Namespace ns, std::string& out) {
    for (int64_t v : {ns.a, ns.b}) {
      uint64_t u = static_cast<uint64_t>(v) ^ (1ull << 63);
      char buf[8];
      for (int i = 7; i >= 0; --i) {
        buf[i] = static_cast<char>(u & 0xff);
        u >>= 8;
      }
      out.append(buf, 8);
    }
  }
  /// The row of `key`: true and its bytes in `value` (valid until the next RawGet), false when
  /// absent. Errors are reported (error()) and read as absent.
  bool RawGet(rocksdb_internal::Table* table, std::string_view key, std::string_view* value);
  void RawPut(rocksdb_internal::Table* table, std::string_view key, std::string_view value);
  /// Appends to a list value (the list merge operator).
  void RawMerge(rocksdb_internal::Table* table, std::string_view key, std::string_view value);
  void RawDelete(rocksdb_internal::Table* table, std::string_view key);
  /// Calls visit(key, value) for every row whose key starts with `prefix`, in key order, until it
  /// returns false. The views are valid during the call; visit may write to the state.
  void RawScan(rocksdb_internal::Table* table, std::string_view prefix,
               rocksdb_internal::FunctionRef<bool(std::string_view, std::string_view)> visit);
  /// Deletes every row whose key starts with `prefix`.
  void RawDeletePrefix(rocksdb_internal::Table* table, std::string_view prefix);
  /// Reports a value that does not parse (a bug or a corrupt file) as a ParseError.
  void ReportCorruptValue(rocksdb_internal::Table* table);
  /// The handle registered as state `name`, nullptr when none.
  rocksdb_internal::HandleBase* FindHandle(const std::string& name) const;
  /// Registers `h` as state `name` of `kind` with TTL `ttl`: creates the column family (or adopts
  /// a restored one), binds the handle to it and converts restored canonical sections of the
  /// state. When `name` has a handle of another type already (a bug in the operator), reports an
  /// InvalidArgument error and binds `h` to the same column family. Returns `h`.
  rocksdb_internal::HandleBase* RegisterHandle(const std::string& name, StateKind kind,
                                               const StateTtlConfig& ttl,
                                               std::unique_ptr<rocksdb_internal::HandleBase> h);

 private:
  struct Impl;
  RocksDBKeyedStateBackend(int max_parallelism, KeyGroupRange range, Clock clock);
  /// The table of state `name`, creating its column family when missing (errors are reported
  /// and leave the table without one).
  rocksdb_internal::Table* EnsureTable(const std::string& name);
  /// Replaces the (empty) database by the native checkpoint `h` and cuts out the key groups
  /// outside this backend's range.
  Status RestoreBase(const proto::KeyedStateHandle& h, storage::ObjectStore& store);
  /// Copies the key groups in range of native checkpoint `h` into the database.
  Status CopyFromHandle(const proto::KeyedStateHandle& h, storage::ObjectStore& store);
  /// Writes every handle's cached mutation back (and publishes the clock to the TTL filter).
  void FlushHandles();
  void DropHandleCaches();
  /// Converts the restored canonical sections of `t`'s state (now registered) into rows.
  void ApplyPending(rocksdb_internal::Table& t);
  /// Imports one canonical section of a state through its handle; false when it is malformed.
  bool ImportSection(rocksdb_internal::HandleBase& h, std::string_view section);

  std::unique_ptr<Impl> impl_;
};

}  // namespace eddy
