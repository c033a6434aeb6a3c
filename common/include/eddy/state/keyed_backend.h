#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eddy/state/backend_kind.h"
#include "eddy/state/key_groups.h"
#include "eddy/state/state.h"
#include "eddy/status.h"

namespace eddy::proto {
class KeyedStateHandle;
}
namespace eddy::storage {
class ObjectStore;
}

namespace eddy {

/// Where one keyed-state snapshot goes. Keys are relative to `store`'s root: the job's checkpoint
/// directory for checkpoints, the savepoint directory for savepoints.
struct SnapshotTarget {
  storage::ObjectStore* store = nullptr;
  CheckpointId checkpoint_id{0};
  /// Prefix of files private to this snapshot, e.g. "chk-7/op-uid-3-".
  std::string exclusive_prefix;
  /// Prefix of files shared by several checkpoints (incremental RocksDB), e.g.
  /// "shared/op-uid-3/". Empty for savepoints.
  std::string shared_prefix;
  /// A savepoint: self-contained and in the canonical format (no shared files).
  bool savepoint = false;
};

/// The slow half of a snapshot (upload), run on a background thread after the task went on. It
/// must not touch the backend's live state, only what the synchronous half captured.
using SnapshotUpload = std::move_only_function<Result<proto::KeyedStateHandle>()>;

/// Source of processing time for TTL; injectable for tests.
using Clock = std::function<Timestamp()>;

/// Keyed state of one operator subtask: the key-group range it owns, the current key, and the state
/// handles by name. Lifecycle: created before the operator opens, restored from a snapshot if any,
/// destroyed after it closes. Threading: the task thread only (except the SnapshotUpload it
/// returns). Implementations: HeapKeyedStateBackend (heap_backend.h) and RocksDBKeyedStateBackend
/// (rocksdb_backend.h); operators stay backend-agnostic through the typed getters below.
class KeyedStateBackend {
 public:
  using Kind = StateBackendKind;
  KeyedStateBackend(Kind kind, int max_parallelism, KeyGroupRange range, Clock clock)
      : kind_(kind), max_parallelism_(max_parallelism), range_(range), clock_(std::move(clock)) {}
  virtual ~KeyedStateBackend() = default;

  Kind kind() const { return kind_; }
  int max_parallelism() const { return max_parallelism_; }
  KeyGroupRange range() const { return range_; }

  /// Sets the key subsequent state accesses use. `key_bytes` is the serialized key.
  void SetCurrentKey(std::string_view key_bytes) {
    current_key_.assign(key_bytes.data(), key_bytes.size());
    current_hash_ = Murmur3(current_key_);
    current_key_group_ = KeyGroupForHash(current_hash_, max_parallelism_);
  }
  const std::string& current_key() const { return current_key_; }
  uint32_t current_hash() const { return current_hash_; }
  KeyGroup current_key_group() const { return current_key_group_; }
  Timestamp Now() const { return clock_ ? clock_() : NowProcessingTime(); }

  /// Typed state handles, one per name, owned by the backend and valid until it is destroyed.
  /// They dispatch on kind() once (operators call them in Open, not per record); the handles'
  /// accessors are virtual calls into the backend's implementation. Defined in
  /// eddy/state/keyed_state.h: include that header to call them.
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

  /// Calls f() once per key holding a value of state `name` in namespace `ns`, with that key
  /// current (Flink's applyToAllKeys). Keys are collected first, so f may update or clear the
  /// state. The current key is restored afterwards. No-op for an unregistered name.
  template <class F>
  void ForEachKey(const std::string& name, Namespace ns, F&& f) {
    std::vector<std::string> keys;
    CollectKeys(name, ns, keys);
    if (keys.empty()) return;
    std::string saved = current_key_;
    for (const auto& k : keys) {
      SetCurrentKey(k);
      f();
    }
    SetCurrentKey(saved);
  }
  /// Appends the serialized key of every entry of state `name` in namespace `ns` (all key groups
  /// in range, each key once). Nothing for an unregistered name.
  virtual void CollectKeys(const std::string& name, Namespace ns,
                           std::vector<std::string>& out) = 0;

  /// Serializes every state of the key groups in range (full snapshot, canonical format).
  virtual Status Snapshot(std::string& out) = 0;
  /// Adds the entries of a snapshot, keeping only the key groups in this backend's range (so
  /// snapshots of any old parallelism can be restored: rescaling).
  virtual Status Restore(std::string_view snapshot) = 0;
  /// Number of (key, namespace) entries across all states (for tests and metrics).
  virtual size_t NumEntries() const = 0;

  /// Synchronous half of a checkpoint or savepoint (task thread): cuts a consistent view of the
  /// state and returns the upload that writes it to `target`. The default serializes the full
  /// state in the canonical format now (Snapshot) and uploads it later, inline in the handle when
  /// small.
  virtual Result<SnapshotUpload> SnapshotAsync(const SnapshotTarget& target);
  /// Restores from the handles of the old subtasks whose key groups overlap this backend's range
  /// (any old parallelism; entries outside the range are dropped). `store` is rooted like the
  /// target the handles were written to. The default reads CANONICAL handles.
  virtual Status RestoreFromHandles(const std::vector<proto::KeyedStateHandle>& handles,
                                    storage::ObjectStore& store);
  /// Checkpoint `id` completed (every task acknowledged, metadata written) or was aborted; the
  /// backend may now forget or reuse what it uploaded for it (incremental bookkeeping).
  virtual void NotifyCheckpointComplete(CheckpointId id) { (void)id; }
  virtual void NotifyCheckpointAborted(CheckpointId id) { (void)id; }

  /// The first error met while applying restored state lazily (ok when none).
  const Status& restore_error() const { return restore_error_; }
  /// Where the backend reports an I/O error met during a state access (which cannot return a
  /// Status): the task's failure slot (OperatorContext::task_failure), so the task fails after the
  /// current record. nullptr (default) = only remembered in error().
  void set_error_sink(Status* sink) { error_sink_ = sink; }
  /// The first error reported by a state access (ok when none).
  const Status& error() const { return error_; }

 protected:
  /// Records `s` as error() (first one wins) and passes it to the error sink.
  void ReportError(Status s) {
    if (error_sink_ != nullptr && error_sink_->ok()) *error_sink_ = s;
    if (error_.ok()) error_ = std::move(s);
  }

  Kind kind_;
  int max_parallelism_;
  KeyGroupRange range_;
  Clock clock_;
  std::string current_key_;
  uint32_t current_hash_ = 0;
  KeyGroup current_key_group_{0};
  Status restore_error_;
  Status error_;
  Status* error_sink_ = nullptr;
};

}  // namespace eddy
