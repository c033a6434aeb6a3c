#pragma once

// Backend-agnostic keyed state: the typed getters of KeyedStateBackend (dispatching once, at
// registration, to the heap or the RocksDB backend) and the factory tasks create backends with.
// Operators include this header and never name a backend.

#include <memory>
#include <string>
#include <string_view>

#include "eddy/state/heap_backend.h"
#include "eddy/state/keyed_backend.h"
#include "eddy/state/rocksdb_state.h"

namespace eddy {

template <class V>
ValueState<V>* KeyedStateBackend::GetValueState(const ValueStateDescriptor<V>& d) {
  if (kind_ == Kind::kHeap) return static_cast<HeapKeyedStateBackend*>(this)->GetValueState(d);
  return static_cast<RocksDBKeyedStateBackend*>(this)->GetValueState(d);
}
template <class V>
ListState<V>* KeyedStateBackend::GetListState(const ListStateDescriptor<V>& d) {
  if (kind_ == Kind::kHeap) return static_cast<HeapKeyedStateBackend*>(this)->GetListState(d);
  return static_cast<RocksDBKeyedStateBackend*>(this)->GetListState(d);
}
template <class K, class V>
MapState<K, V>* KeyedStateBackend::GetMapState(const MapStateDescriptor<K, V>& d) {
  if (kind_ == Kind::kHeap) return static_cast<HeapKeyedStateBackend*>(this)->GetMapState(d);
  return static_cast<RocksDBKeyedStateBackend*>(this)->GetMapState(d);
}
template <class V>
ReducingState<V>* KeyedStateBackend::GetReducingState(const ReducingStateDescriptor<V>& d) {
  if (kind_ == Kind::kHeap) return static_cast<HeapKeyedStateBackend*>(this)->GetReducingState(d);
  return static_cast<RocksDBKeyedStateBackend*>(this)->GetReducingState(d);
}
template <class IN, class ACC, class OUT>
InternalAggregatingState<IN, ACC, OUT>* KeyedStateBackend::GetAggregatingState(
    const AggregatingStateDescriptor<IN, ACC, OUT>& d) {
  if (kind_ == Kind::kHeap) {
    return static_cast<HeapKeyedStateBackend*>(this)->GetAggregatingState(d);
  }
  return static_cast<RocksDBKeyedStateBackend*>(this)->GetAggregatingState(d);
}

/// Creates the keyed state backend of one operator subtask. `local_dir` is the backend's own
/// working directory (RocksDB: created, and removed when the backend is destroyed; heap: unused).
/// Errors: IOError when RocksDB cannot create its directory or database.
Result<std::unique_ptr<KeyedStateBackend>> MakeKeyedStateBackend(
    StateBackendKind kind, int max_parallelism, KeyGroupRange range, Clock clock,
    const std::string& local_dir, const RocksDBStateOptions& rocksdb_options = {});

/// A fresh, unique directory path for one backend instance: `<base>/<hint>-<pid>-<n>` with
/// characters other than [A-Za-z0-9._-] in `hint` replaced by '_'. `base` empty =
/// $TMPDIR/eddy-state (or /tmp/eddy-state). Only the path; nothing is created.
std::string UniqueLocalStateDir(std::string_view base, std::string_view hint);

/// Removes the working directories under `base` (named as UniqueLocalStateDir names them) whose
/// process no longer exists: what a SIGKILLed worker left behind. Directories of live processes,
/// of this process and with names of another shape are kept. Returns how many were removed.
/// MakeKeyedStateBackend calls it once per process and base folder before its first RocksDB
/// backend there.
size_t RemoveStaleLocalStateDirs(const std::string& base);

}  // namespace eddy
