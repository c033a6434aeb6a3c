#include "eddy/state/key_groups.h"

#include <algorithm>
#include <cstring>

namespace eddy {

uint32_t Murmur3(std::string_view bytes, uint32_t seed) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t len = bytes.size();
  const size_t nblocks = len / 4;
  uint32_t h1 = seed;
  constexpr uint32_t c1 = 0xcc9e2d51;
  constexpr uint32_t c2 = 0x1b873593;
  auto rotl = [](uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  for (size_t i = 0; i < nblocks; ++i) {
    uint32_t k1;
    std::memcpy(&k1, data + i * 4, 4);
    k1 *= c1;
    k1 = rotl(k1, 15);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl(h1, 13);
    h1 = h1 * 5 + 0xe6546b64;
  }
  const uint8_t* tail = data + nblocks * 4;
  uint32_t k1 = 0;
  switch (len & 3) {
    case 3:
      k1 ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k1 ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k1 ^= tail[0];
      k1 *= c1;
      k1 = rotl(k1, 15);
      k1 *= c2;
      h1 ^= k1;
  }
  h1 ^= static_cast<uint32_t>(len);
  h1 ^= h1 >> 16;
  h1 *= 0x85ebca6b;
  h1 ^= h1 >> 13;
  h1 *= 0xc2b2ae35;
  h1 ^= h1 >> 16;
  return h1;
}

int DefaultMaxParallelism(int parallelism) {
  int64_t target = static_cast<int64_t>(parallelism) + parallelism / 2;
  int64_t p = 1;
  while (p < target) p <<= 1;
  return static_cast<int>(std::clamp<int64_t>(p, 128, 32768));
}

KeyGroupRange KeyGroupRangeForSubtask(int max_parallelism, int parallelism, int index) {
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  int64_t start = ceil_div(static_cast<int64_t>(index) * max_parallelism, parallelism);
  int64_t end = ceil_div(static_cast<int64_t>(index + 1) * max_parallelism, parallelism) - 1;
  return {static_cast<int32_t>(start), static_cast<int32_t>(end)};
}

}  // namespace eddy
