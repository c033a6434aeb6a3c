#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace eddy {

/// Where keyed state lives (Flink's state.backend): `heap` keeps C++ objects in hash maps (fast,
/// bounded by memory), `rocksdb` keeps serialized bytes in an embedded RocksDB per operator
/// subtask (bounded by disk, incremental checkpoints). Job spec `stateBackend`.
enum class StateBackendKind : uint8_t { kHeap, kRocksDB };

/// "heap" / "rocksdb".
constexpr std::string_view StateBackendKindName(StateBackendKind k) {
  return k == StateBackendKind::kHeap ? "heap" : "rocksdb";
}

/// The kind named `name` ("heap", "rocksdb"); nullopt for anything else.
constexpr std::optional<StateBackendKind> ParseStateBackendKind(std::string_view name) {
  if (name == "heap") return StateBackendKind::kHeap;
  if (name == "rocksdb") return StateBackendKind::kRocksDB;
  return std::nullopt;
}

}  // namespace eddy
