#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "eddy/status.h"

namespace eddy::worker {

/// Default network buffer (memory segment) size: 32 KiB, as Flink's
/// taskmanager.memory.segment-size.
inline constexpr size_t kBufferSize = 32 * 1024;

enum class BufferKind : uint8_t { kData, kEvent };

class LocalBufferPool;

/// One fixed-size segment. Ownership moves producer -> channel -> consumer, which recycles it.
struct NetworkBuffer {
  char* data = nullptr;
  size_t size = 0;
  BufferKind kind = BufferKind::kData;
  LocalBufferPool* owner = nullptr;
  int64_t first_write_ms = 0;  // for the buffer timeout
  void Recycle();
};

/// The per-worker budget of network buffers (Flink's NetworkBufferPool). Fixed size; local pools
/// reserve from it when created and give back when destroyed.
class NetworkBufferPool {
 public:
  explicit NetworkBufferPool(size_t total_buffers) : total_(total_buffers) {}
  /// Reserves n buffers; InvalidArgument naming the shortfall when the budget is exhausted.
  Status Reserve(size_t n);
  void Release(size_t n);
  size_t total() const { return total_; }
  size_t used() const { return used_.load(); }

 private:
  size_t total_;
  std::atomic<size_t> used_{0};
  std::mutex mu_;
};

/// A bounded set of buffers owned by one result partition. Request() blocks while all are in
/// flight: that is back-pressure. Threading: Request from the producing task; Recycle from any
/// consuming thread.
class LocalBufferPool {
 public:
  static Result<std::unique_ptr<LocalBufferPool>> Make(NetworkBufferPool* global, size_t n);
  ~LocalBufferPool();
  LocalBufferPool(const LocalBufferPool&) = delete;
  LocalBufferPool& operator=(const LocalBufferPool&) = delete;

  /// A free buffer, or nullptr immediately if none is free.
  NetworkBuffer* TryRequest();
  /// Waits for a free buffer; nullptr if cancelled. `waited_ns` accumulates the time blocked.
  NetworkBuffer* Request(const std::atomic<bool>& cancelled, int64_t& waited_ns);
  void Recycle(NetworkBuffer* b);
  size_t capacity() const { return buffers_.size(); }
  size_t available() const;
  /// Wakes a blocked Request (cancellation).
  void Wake();
  /// Called (on the recycling thread, outside the pool's lock) after every Recycle; set before
  /// the pool is shared. The network layer turns recycled receive buffers into credits.
  void SetRecycleListener(std::function<void()> f) { on_recycle_ = std::move(f); }

 private:
  LocalBufferPool(NetworkBufferPool* global, size_t n);
  NetworkBufferPool* global_;
  std::unique_ptr<char[]> memory_;
  std::vector<NetworkBuffer> buffers_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<NetworkBuffer*> free_;
  std::function<void()> on_recycle_;
};

}  // namespace eddy::worker
