#include "eddy/worker/buffer_pool.h"

#include <chrono>

namespace eddy::worker {

void NetworkBuffer::Recycle() {
  owner->Recycle(this);
}

Status NetworkBufferPool::Reserve(size_t n) {
  std::lock_guard lock(mu_);
  if (used_ + n > total_) {
    return Status::InvalidArgument(
        "insufficient network buffers: need " + std::to_string(n) + " more, " +
        std::to_string(total_ - used_) + " of " + std::to_string(total_) +
        " free; raise the network buffer pool size or lower the parallelism");
  }
  used_ += n;
  return Status::Ok();
}

void NetworkBufferPool::Release(size_t n) {
  std::lock_guard lock(mu_);
  used_ -= n;
}

Result<std::unique_ptr<LocalBufferPool>> LocalBufferPool::Make(NetworkBufferPool* global,
                                                               size_t n) {
  if (global) EDDY_RETURN_NOT_OK(global->Reserve(n));
  return std::unique_ptr<LocalBufferPool>(new LocalBufferPool(global, n));
}

LocalBufferPool::LocalBufferPool(NetworkBufferPool* global, size_t n)
    : global_(global), memory_(new char[n * kBufferSize]), buffers_(n) {
  free_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    buffers_[i].data = memory_.get() + i * kBufferSize;
    buffers_[i].owner = this;
    free_.push_back(&buffers_[i]);
  }
}

LocalBufferPool::~LocalBufferPool() {
  if (global_) global_->Release(buffers_.size());
}

NetworkBuffer* LocalBufferPool::TryRequest() {
  std::lock_guard lock(mu_);
  if (free_.empty()) return nullptr;
  NetworkBuffer* b = free_.back();
  free_.pop_back();
  b->size = 0;
  b->kind = BufferKind::kData;
  return b;
}

NetworkBuffer* LocalBufferPool::Request(const std::atomic<bool>& cancelled, int64_t& waited_ns) {
  if (NetworkBuffer* b = TryRequest()) return b;
  auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (free_.empty() && !cancelled.load(std::memory_order_relaxed)) {
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  waited_ns +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  if (free_.empty()) return nullptr;
  NetworkBuffer* b = free_.back();
  free_.pop_back();
  b->size = 0;
  b->kind = BufferKind::kData;
  return b;
}

void LocalBufferPool::Recycle(NetworkBuffer* b) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(b);
  }
  cv_.notify_one();
  if (on_recycle_) on_recycle_();
}

size_t LocalBufferPool::available() const {
  std::lock_guard lock(mu_);
  return free_.size();
}

void LocalBufferPool::Wake() {
  cv_.notify_all();
}

}  // namespace eddy::worker
