#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/metrics/histogram.h"
#include "eddy/runtime/stream_io.h"
#include "eddy/worker/buffer_pool.h"

namespace eddy::worker {

/// What a data-buffer frame holds. Frames: [varint length][tag][varint ts if kRecordTs or
/// kWatermark][payload]. A kLatencyMarker's payload is `EncodeLatencyMarker`'s.
enum class FrameTag : uint8_t {
  kRecord = 0,
  kRecordTs = 1,
  kWatermark = 2,
  kIdleness = 3,
  kLatencyMarker = 4,
};

/// Flink's LatencyMarker: made by a source subtask every `latencyTrackingInterval`, it travels
/// in-band with the records (so it waits where they wait: in buffers, behind back-pressure) but
/// bypasses operators. Every task that receives one observes `now - created` and forwards it to
/// one channel of each of its outgoing partitions (round-robin, not broadcast).
struct LatencyMarker {
  /// Wall-clock time (microseconds since the epoch) when the source made it. Comparing it with
  /// another process's clock assumes synchronized clocks, as Flink does.
  int64_t created_us = 0;
  /// The JobVertex (and its subtask) of the source that made it.
  uint32_t source_vertex = 0;
  uint32_t source_subtask = 0;
};
/// Room `EncodeLatencyMarker` needs: three varints.
inline constexpr size_t kMaxLatencyMarkerSize = 3 * 10;
/// Writes `m` as three varints into `out` (kMaxLatencyMarkerSize bytes); returns the bytes used.
size_t EncodeLatencyMarker(const LatencyMarker& m, char* out);
/// False if `payload` is not exactly one encoded marker.
bool DecodeLatencyMarker(std::string_view payload, LatencyMarker& m);
/// Wall clock, microseconds since the epoch.
int64_t WallClockMicros();
/// Event buffers carry exactly one event (always flushed immediately): the type byte, then the
/// event's fields.
enum class EventType : uint8_t { kEndOfPartition = 1, kCheckpointBarrier = 2 };

/// Flink's CheckpointBarrier: injected by the sources when the JobMaster triggers checkpoint
/// `id`, it flows with the records and splits the stream into before (in the snapshot) and after.
struct CheckpointBarrier {
  enum Flags : uint8_t {
    kSavepoint = 1,
    /// stop-with-savepoint: tasks stop after this barrier once the savepoint completed.
    kStop = 2,
    /// stop-with-savepoint --drain: sources end their input (final watermark) after it.
    kDrain = 4,
  };
  CheckpointId id{0};
  Timestamp timestamp;  ///< when the JobMaster triggered it (epoch ms)
  uint8_t flags = 0;
  /// Savepoints: the directory (URI) every task writes its state to; empty for checkpoints.
  std::string target;
  bool savepoint() const { return (flags & kSavepoint) != 0; }
  bool stop() const { return (flags & kStop) != 0; }
  bool drain() const { return (flags & kDrain) != 0; }
};
/// Size of an encoded barrier event without its target: type, id, timestamp, flags.
inline constexpr size_t kBarrierEventSize = 1 + 8 + 8 + 1;
/// The event: the fixed fields, then the target's bytes (at most 4 KiB).
std::string EncodeBarrier(const CheckpointBarrier& b);
/// False unless `event` (a whole event buffer) is exactly one barrier.
bool DecodeBarrier(std::string_view event, CheckpointBarrier& b);

/// Where a producer hands a full (or flushed) buffer for one consumer channel that is not a
/// gate of this process: the network layer. Takes ownership of the buffer.
class BufferSink {
 public:
  virtual ~BufferSink() = default;
  virtual void Push(NetworkBuffer* b) = 0;
};

/// Where a task receives buffers: all channels of all its inputs, in arrival order per channel.
/// Threading: Push from producer threads (or the network thread); Poll from the owning task.
/// Bounded: at most the producers' pool sizes are in flight, so the queue needs no limit of its
/// own.
class InputGate {
 public:
  explicit InputGate(int num_channels) : num_channels_(num_channels) {}
  int num_channels() const { return num_channels_; }
  void Push(int channel, NetworkBuffer* b);
  /// The next buffer and its channel, or nullptr at the deadline or after Wake().
  NetworkBuffer* Poll(int& channel, std::chrono::steady_clock::time_point deadline);
  void Wake();

 private:
  int num_channels_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<int, NetworkBuffer*>> queue_;
  bool woken_ = false;
};

/// Bucket bounds of `IoCounters::fill_to_send`: 10 us to 10 s (a buffer is sent when full, on
/// the buffer timeout, or at once for events and with a 0 timeout).
metrics::HistogramBuckets FillToSendBuckets();

/// Counters of one task's network I/O (shared by its partitions), written by the task thread and
/// read by metrics from other threads.
struct IoCounters {
  std::atomic<uint64_t> records_out{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> buffers_out{0};
  /// Time blocked waiting for a free output buffer (back-pressure), ns. Published by
  /// `ResultPartition::FlushIfDue`, so it may lag by one buffer timeout.
  std::atomic<int64_t> backpressured_ns{0};
  /// The last watermark the task broadcast downstream, ms (Flink's currentOutputWatermark);
  /// INT64_MIN until the first.
  std::atomic<int64_t> output_watermark{INT64_MIN};
  /// Latency markers written (each to one channel of one partition).
  std::atomic<uint64_t> latency_markers_out{0};
  /// Seconds from the first write into a data buffer to its hand-over to the consumer channel
  /// (full, timed out or flushed). One observation per buffer, none per record.
  metrics::AtomicHistogram fill_to_send{FillToSendBuckets()};
};

/// The producing side of one outgoing edge of a task (Flink's ResultPartition + RecordWriter):
/// one subpartition per consumer channel, records framed into pooled buffers, flushed when full,
/// on the buffer timeout, and immediately for events.
class ResultPartition final : public RecordWriter {
 public:
  /// A consumer channel: a gate of this process (local hand-over) or a remote sink.
  struct Target {
    InputGate* gate = nullptr;
    int channel = 0;
    BufferSink* remote = nullptr;
    void Push(NetworkBuffer* b) const {
      if (remote) {
        remote->Push(b);
      } else {
        gate->Push(channel, b);
      }
    }
  };
  ResultPartition(std::unique_ptr<LocalBufferPool> pool, std::vector<Target> targets,
                  Duration buffer_timeout, IoCounters* counters,
                  const std::atomic<bool>* cancelled);
  ~ResultPartition() override;

  int num_channels() const override { return static_cast<int>(subs_.size()); }
  void Emit(int channel, std::string_view bytes, Timestamp ts) override;
  void Broadcast(std::string_view bytes, Timestamp ts) override;
  void BroadcastWatermark(Watermark wm) override;
  void BroadcastIdleness(bool idle) override;
  /// Appends `m` to one channel, the next in round-robin order (Flink sends a marker to one
  /// random channel). Not counted as a record.
  void EmitLatencyMarker(const LatencyMarker& m);

  /// Sends partially filled buffers whose timeout passed; returns the next deadline (ms, or max).
  int64_t FlushIfDue(int64_t now_ms);
  void FlushAll();
  /// Flushes and sends end-of-partition to every consumer.
  void Finish();
  /// Flushes every channel, then sends `barrier` to each (ahead of any later record).
  void BroadcastBarrier(const CheckpointBarrier& barrier);
  LocalBufferPool& pool() { return *pool_; }
  const LocalBufferPool& pool() const { return *pool_; }

 private:
  struct Sub {
    Target target;
    NetworkBuffer* current = nullptr;
    int64_t first_write_ns = 0;  // steady clock, when `current` was taken (fill-to-send time)
  };
  void WriteFrame(int sub, FrameTag tag, Timestamp ts, std::string_view payload);
  void WriteBytes(Sub& s, const char* p, size_t n);
  void Flush(Sub& s);
  /// Flushes every channel and sends the event `bytes` to each.
  void BroadcastEvent(std::string_view bytes);
  static int64_t NowNs();

  std::unique_ptr<LocalBufferPool> pool_;
  std::vector<Sub> subs_;
  int64_t timeout_ms_;
  IoCounters* counters_;
  const std::atomic<bool>* cancelled_;
  int64_t waited_ns_ = 0;
  size_t next_marker_channel_ = 0;
  bool finished_ = false;
};

/// Reassembles frames of one channel, including frames that span buffers.
class ChannelReader {
 public:
  /// Calls f(tag, ts, payload) for each complete frame; returns false on a corrupt frame.
  template <class F>
  bool Feed(const char* data, size_t size, F&& f);
  /// The start of a frame that a later buffer completes (empty between frames).
  std::string_view pending() const { return pending_; }

 private:
  static bool ParseVarint(const char* p, size_t n, uint64_t& v, size_t& used);
  template <class F>
  static bool Dispatch(std::string_view frame, F&& f);
  std::string pending_;
};

inline bool ChannelReader::ParseVarint(const char* p, size_t n, uint64_t& v, size_t& used) {
  v = 0;
  for (size_t i = 0; i < n && i < 10; ++i) {
    auto b = static_cast<uint8_t>(p[i]);
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      used = i + 1;
      return true;
    }
  }
  return false;
}

template <class F>
bool ChannelReader::Dispatch(std::string_view frame, F&& f) {
  if (frame.empty()) return false;
  auto tag = static_cast<FrameTag>(frame[0]);
  frame.remove_prefix(1);
  Timestamp ts = Timestamp::None();
  if (tag == FrameTag::kRecordTs || tag == FrameTag::kWatermark) {
    uint64_t u;
    size_t used;
    if (!ParseVarint(frame.data(), frame.size(), u, used)) return false;
    ts = Timestamp(static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1)));
    frame.remove_prefix(used);
  }
  if (tag > FrameTag::kLatencyMarker) return false;
  f(tag, ts, frame);
  return true;
}

template <class F>
bool ChannelReader::Feed(const char* data, size_t size, F&& f) {
  constexpr uint64_t kMaxFrame = 256ull << 20;
  size_t pos = 0;
  while (!pending_.empty()) {
    uint64_t len;
    size_t hdr;
    if (ParseVarint(pending_.data(), pending_.size(), len, hdr)) {
      if (len > kMaxFrame) return false;
      size_t total = hdr + len;
      size_t take = std::min(total - pending_.size(), size - pos);
      pending_.append(data + pos, take);
      pos += take;
      if (pending_.size() < total) return true;
      if (!Dispatch(std::string_view(pending_).substr(hdr), f)) return false;
      pending_.clear();
      break;
    }
    if (pos == size) return true;
    pending_.push_back(data[pos++]);
  }
  while (pos < size) {
    uint64_t len;
    size_t hdr;
    if (!ParseVarint(data + pos, size - pos, len, hdr)) {
      pending_.assign(data + pos, size - pos);
      return true;
    }
    if (len > kMaxFrame) return false;
    if (pos + hdr + len <= size) {
      if (!Dispatch(std::string_view(data + pos + hdr, len), f)) return false;
      pos += hdr + len;
    } else {
      pending_.assign(data + pos, size - pos);
      return true;
    }
  }
  return true;
}

}  // namespace eddy::worker
