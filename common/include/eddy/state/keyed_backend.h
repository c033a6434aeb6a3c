#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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
/// destroyed after it closes. Threading: the task thread only.
class KeyedStateBackend {
 public:
  enum class Kind : uint8_t { kHeap, kRocksDB };
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

 protected:
  Kind kind_;
  int max_parallelism_;
  KeyGroupRange range_;
  Clock clock_;
  std::string current_key_;
  uint32_t current_hash_ = 0;
  KeyGroup current_key_group_{0};
};

}  // namespace eddy
