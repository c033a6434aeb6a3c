#include "eddy/worker/channels.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace eddy::worker {

namespace {

size_t PutVarint(uint64_t v, char* out) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<char>(v);
  return n;
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (size_t i = 0; i < in.size() && i < 10; ++i) {
    auto b = static_cast<uint8_t>(in[i]);
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      in.remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

}  // namespace

size_t EncodeLatencyMarker(const LatencyMarker& m, char* out) {
  size_t n = PutVarint(static_cast<uint64_t>(std::max<int64_t>(0, m.created_us)), out);
  n += PutVarint(m.source_vertex, out + n);
  n += PutVarint(m.source_subtask, out + n);
  return n;
}

bool DecodeLatencyMarker(std::string_view payload, LatencyMarker& m) {
  uint64_t created, vertex, subtask;
  if (!GetVarint(payload, created) || !GetVarint(payload, vertex) || !GetVarint(payload, subtask) ||
      !payload.empty() || created > INT64_MAX || vertex > UINT32_MAX || subtask > UINT32_MAX) {
    return false;
  }
  m.created_us = static_cast<int64_t>(created);
  m.source_vertex = static_cast<uint32_t>(vertex);
  m.source_subtask = static_cast<uint32_t>(subtask);
  return true;
}

std::string EncodeBarrier(const CheckpointBarrier& b) {
  std::string ev(kBarrierEventSize, '\0');
  char* out = ev.data();
  out[0] = static_cast<char>(EventType::kCheckpointBarrier);
  auto id = static_cast<uint64_t>(b.id.value());
  auto ts = static_cast<uint64_t>(b.timestamp.millis());
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>(id >> (8 * i));
  for (int i = 0; i < 8; ++i) out[9 + i] = static_cast<char>(ts >> (8 * i));
  out[17] = static_cast<char>(b.flags);
  ev.append(b.target, 0, std::min<size_t>(b.target.size(), 4096));
  return ev;
}

bool DecodeBarrier(std::string_view event, CheckpointBarrier& b) {
  if (event.size() < kBarrierEventSize || event.size() > kBarrierEventSize + 4096 ||
      static_cast<EventType>(event[0]) != EventType::kCheckpointBarrier) {
    return false;
  }
  uint64_t id = 0, ts = 0;
  for (int i = 0; i < 8; ++i)
    id |= static_cast<uint64_t>(static_cast<uint8_t>(event[1 + i])) << (8 * i);
  for (int i = 0; i < 8; ++i)
    ts |= static_cast<uint64_t>(static_cast<uint8_t>(event[9 + i])) << (8 * i);
  if (id == 0 || id > INT64_MAX) return false;
  b.id = CheckpointId(static_cast<int64_t>(id));
  b.timestamp = Timestamp(static_cast<int64_t>(ts));
  b.flags = static_cast<uint8_t>(event[17]);
  b.target.assign(event.substr(kBarrierEventSize));
  return true;
}

int64_t WallClockMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

metrics::HistogramBuckets FillToSendBuckets() {
  static const metrics::HistogramBuckets kBuckets = [] {
    auto b =
        metrics::HistogramBuckets::Make({0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                         0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    return *b;
  }();
  return kBuckets;
}

void InputGate::Push(int channel, NetworkBuffer* b) {
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(channel, b);
  }
  cv_.notify_one();
}

NetworkBuffer* InputGate::Poll(int& channel, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  while (queue_.empty() && !woken_) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  woken_ = false;
  if (queue_.empty()) return nullptr;
  auto [c, b] = queue_.front();
  queue_.pop_front();
  channel = c;
  return b;
}

void InputGate::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

ResultPartition::ResultPartition(std::unique_ptr<LocalBufferPool> pool, std::vector<Target> targets,
                                 Duration buffer_timeout, IoCounters* counters,
                                 const std::atomic<bool>* cancelled)
    : pool_(std::move(pool)),
      timeout_ms_(buffer_timeout.millis()),
      counters_(counters),
      cancelled_(cancelled) {
  for (auto& t : targets) subs_.push_back(Sub{t, nullptr});
}

ResultPartition::~ResultPartition() {
  for (auto& s : subs_) {
    if (s.current) s.current->Recycle();
  }
}

int64_t ResultPartition::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void ResultPartition::WriteBytes(Sub& s, const char* p, size_t n) {
  while (n > 0) {
    if (!s.current) {
      s.current = pool_->Request(*cancelled_, waited_ns_);
      if (!s.current) return;  // cancelled: the task is going down
      // One clock read per buffer (not per record): the buffer timeout and fill-to-send time.
      s.first_write_ns = NowNs();
      s.current->first_write_ms = s.first_write_ns / 1'000'000;
    }
    size_t take = std::min(n, kBufferSize - s.current->size);
    std::memcpy(s.current->data + s.current->size, p, take);
    s.current->size += take;
    p += take;
    n -= take;
    if (s.current->size == kBufferSize) Flush(s);
  }
}

void ResultPartition::WriteFrame(int sub, FrameTag tag, Timestamp ts, std::string_view payload) {
  char hdr[24];
  char body_hdr[12];
  size_t bh = 0;
  body_hdr[bh++] = static_cast<char>(tag);
  if (tag == FrameTag::kRecordTs || tag == FrameTag::kWatermark) {
    uint64_t u =
        (static_cast<uint64_t>(ts.millis()) << 1) ^ static_cast<uint64_t>(ts.millis() >> 63);
    while (u >= 0x80) {
      body_hdr[bh++] = static_cast<char>(u | 0x80);
      u >>= 7;
    }
    body_hdr[bh++] = static_cast<char>(u);
  }
  uint64_t len = bh + payload.size();
  size_t h = 0;
  while (len >= 0x80) {
    hdr[h++] = static_cast<char>(len | 0x80);
    len >>= 7;
  }
  hdr[h++] = static_cast<char>(len);
  std::memcpy(hdr + h, body_hdr, bh);
  h += bh;
  Sub& s = subs_[static_cast<size_t>(sub)];
  // Fast path: the whole frame fits into the current buffer.
  if (s.current && s.current->size + h + payload.size() <= kBufferSize) {
    std::memcpy(s.current->data + s.current->size, hdr, h);
    if (!payload.empty()) {  // an empty view may have a null data(): not a valid memcpy source
      std::memcpy(s.current->data + s.current->size + h, payload.data(), payload.size());
    }
    s.current->size += h + payload.size();
    if (s.current->size == kBufferSize) Flush(s);
  } else {
    WriteBytes(s, hdr, h);
    WriteBytes(s, payload.data(), payload.size());
  }
  if (timeout_ms_ == 0 || tag == FrameTag::kIdleness) Flush(s);
}

void ResultPartition::Emit(int channel, std::string_view bytes, Timestamp ts) {
  WriteFrame(channel, ts.IsNone() ? FrameTag::kRecord : FrameTag::kRecordTs, ts, bytes);
  counters_->records_out.fetch_add(1, std::memory_order_relaxed);
  counters_->bytes_out.fetch_add(bytes.size(), std::memory_order_relaxed);
}

void ResultPartition::Broadcast(std::string_view bytes, Timestamp ts) {
  for (size_t i = 0; i < subs_.size(); ++i) {
    WriteFrame(static_cast<int>(i), ts.IsNone() ? FrameTag::kRecord : FrameTag::kRecordTs, ts,
               bytes);
  }
  counters_->records_out.fetch_add(1, std::memory_order_relaxed);
  counters_->bytes_out.fetch_add(bytes.size() * subs_.size(), std::memory_order_relaxed);
}

void ResultPartition::BroadcastWatermark(Watermark wm) {
  for (size_t i = 0; i < subs_.size(); ++i)
    WriteFrame(static_cast<int>(i), FrameTag::kWatermark, wm, {});
  counters_->output_watermark.store(wm.millis(), std::memory_order_relaxed);
}

void ResultPartition::EmitLatencyMarker(const LatencyMarker& m) {
  if (subs_.empty()) return;
  char payload[kMaxLatencyMarkerSize];
  size_t n = EncodeLatencyMarker(m, payload);
  if (next_marker_channel_ >= subs_.size()) next_marker_channel_ = 0;
  WriteFrame(static_cast<int>(next_marker_channel_++), FrameTag::kLatencyMarker, Timestamp::None(),
             std::string_view(payload, n));
  counters_->latency_markers_out.fetch_add(1, std::memory_order_relaxed);
}

void ResultPartition::BroadcastIdleness(bool idle) {
  char b = idle ? 1 : 0;
  for (size_t i = 0; i < subs_.size(); ++i) {
    WriteFrame(static_cast<int>(i), FrameTag::kIdleness, Timestamp::None(),
               std::string_view(&b, 1));
  }
}

void ResultPartition::Flush(Sub& s) {
  if (!s.current) return;
  if (s.current->size == 0) return;
  NetworkBuffer* b = s.current;
  s.current = nullptr;
  counters_->buffers_out.fetch_add(1, std::memory_order_relaxed);
  counters_->fill_to_send.Observe(static_cast<double>(NowNs() - s.first_write_ns) * 1e-9);
  s.target.Push(b);
}

int64_t ResultPartition::FlushIfDue(int64_t now_ms) {
  int64_t next = INT64_MAX;
  for (auto& s : subs_) {
    if (!s.current || s.current->size == 0) continue;
    int64_t due = s.current->first_write_ms + timeout_ms_;
    if (due <= now_ms) {
      Flush(s);
    } else {
      next = std::min(next, due);
    }
  }
  counters_->backpressured_ns.store(waited_ns_, std::memory_order_relaxed);
  return next;
}

void ResultPartition::FlushAll() {
  for (auto& s : subs_) Flush(s);
}

void ResultPartition::BroadcastEvent(std::string_view bytes) {
  FlushAll();
  for (auto& s : subs_) {
    NetworkBuffer* b = pool_->Request(*cancelled_, waited_ns_);
    if (!b) return;  // cancelled: the task is going down
    b->kind = BufferKind::kEvent;
    std::memcpy(b->data, bytes.data(), bytes.size());
    b->size = bytes.size();
    s.target.Push(b);
  }
}

void ResultPartition::Finish() {
  if (finished_) return;
  finished_ = true;
  char eop = static_cast<char>(EventType::kEndOfPartition);
  BroadcastEvent(std::string_view(&eop, 1));
}

void ResultPartition::BroadcastBarrier(const CheckpointBarrier& barrier) {
  if (finished_) return;
  BroadcastEvent(EncodeBarrier(barrier));
}

}  // namespace eddy::worker
