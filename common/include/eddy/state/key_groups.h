#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "eddy/types.h"

namespace eddy {

/// Murmur3 (x86, 32-bit) of the bytes. Stable across processes, versions and machines: key groups
/// computed from it are part of the checkpoint format.
uint32_t Murmur3(std::string_view bytes, uint32_t seed = 0);

/// Default max parallelism derived from the parallelism, as Flink does:
/// roundUpToPowerOfTwo(parallelism * 1.5), clamped to [128, 32768].
int DefaultMaxParallelism(int parallelism);

/// keyGroup = murmur(keyBytes) % maxParallelism.
inline KeyGroup KeyGroupForKeyBytes(std::string_view key_bytes, int max_parallelism) {
  return KeyGroup(
      static_cast<int32_t>(Murmur3(key_bytes) % static_cast<uint32_t>(max_parallelism)));
}
inline KeyGroup KeyGroupForHash(uint32_t hash, int max_parallelism) {
  return KeyGroup(static_cast<int32_t>(hash % static_cast<uint32_t>(max_parallelism)));
}

/// subtask = keyGroup * parallelism / maxParallelism.
inline int OperatorIndexForKeyGroup(KeyGroup kg, int parallelism, int max_parallelism) {
  return static_cast<int>(static_cast<int64_t>(kg.value()) * parallelism / max_parallelism);
}

/// An inclusive range [start, end] of key groups; empty when end < start.
struct KeyGroupRange {
  int32_t start = 0;
  int32_t end = -1;
  bool Contains(KeyGroup kg) const { return kg.value() >= start && kg.value() <= end; }
  int32_t size() const { return end >= start ? end - start + 1 : 0; }
  bool operator==(const KeyGroupRange&) const = default;
};

/// The key groups subtask `index` of `parallelism` owns (the inverse of OperatorIndexForKeyGroup).
KeyGroupRange KeyGroupRangeForSubtask(int max_parallelism, int parallelism, int index);

}  // namespace eddy
