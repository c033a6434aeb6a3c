#pragma once

#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "eddy/state/keyed_backend.h"
#include "eddy/state/state.h"

namespace eddy {

/// Schedules callbacks on the task thread at a wall-clock time. Implemented by the task's mailbox.
class ProcessingTimeService {
 public:
  virtual ~ProcessingTimeService() = default;
  virtual Timestamp Now() = 0;
  /// Calls `callback(time)` on the task thread once Now() >= time.
  virtual void RegisterTimer(Timestamp time, std::function<void(Timestamp)> callback) = 0;
};

struct Timer {
  Timestamp time;
  std::string key;
  Namespace ns;
  auto operator<=>(const Timer&) const = default;
  bool operator==(const Timer&) const = default;
};

struct TimerHash {
  size_t operator()(const Timer& t) const noexcept {
    size_t h = std::hash<std::string_view>{}(t.key);
    h ^= static_cast<size_t>(t.time.millis()) * 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= static_cast<size_t>(t.ns.a) * 0xc2b2ae3d27d4eb4fULL + static_cast<size_t>(t.ns.b);
    return h;
  }
};

/// Timers ordered by time with O(1) duplicate detection (Flink's HeapPriorityQueueSet): a hash
/// set holds the live timers, a binary heap orders them. Deletion is lazy: the heap entry is
/// skipped when popped, and the heap is rebuilt when stale entries dominate.
class TimerQueue {
 public:
  /// False when the timer was already registered.
  bool Add(Timer t);
  void Remove(const Timer& t);
  /// The earliest live timer, or nullptr.
  const Timer* Peek();
  /// Removes and returns the earliest live timer (Peek() must be non-null).
  Timer Pop();
  size_t size() const { return live_.size(); }
  template <class F>
  void ForEach(F&& f) const {
    for (const auto& t : live_) f(t);
  }

 private:
  struct Later {
    bool operator()(const Timer& a, const Timer& b) const { return b < a; }
  };
  void Compact();
  std::unordered_set<Timer, TimerHash> live_;
  std::vector<Timer> heap_;
};

/// Receives fired timers with the backend's current key already set to the timer's key.
class TimerTarget {
 public:
  virtual ~TimerTarget() = default;
  virtual void OnEventTime(const Timer& timer) = 0;
  virtual void OnProcessingTime(const Timer& timer) = 0;
};

/// Event-time and processing-time timers of one keyed operator, deduplicated per (time, key,
/// namespace), fired in time order. Lifecycle: owned by the operator; created in Open(). Threading:
/// task thread only.
class InternalTimerService {
 public:
  InternalTimerService(KeyedStateBackend* backend, ProcessingTimeService* pts, TimerTarget* target)
      : backend_(backend), pts_(pts), target_(target) {}

  void RegisterEventTimeTimer(Namespace ns, Timestamp time) {
    scratch_.time = time;
    scratch_.key.assign(backend_->current_key());
    scratch_.ns = ns;
    event_.Add(scratch_);
  }
  void DeleteEventTimeTimer(Namespace ns, Timestamp time) {
    scratch_.time = time;
    scratch_.key.assign(backend_->current_key());
    scratch_.ns = ns;
    event_.Remove(scratch_);
  }
  void RegisterProcessingTimeTimer(Namespace ns, Timestamp time);
  void DeleteProcessingTimeTimer(Namespace ns, Timestamp time) {
    scratch_.time = time;
    scratch_.key.assign(backend_->current_key());
    scratch_.ns = ns;
    processing_.Remove(scratch_);
  }
  /// Fires every event-time timer with time <= wm (including ones registered while firing).
  void AdvanceWatermark(Watermark wm);
  Watermark current_watermark() const { return watermark_; }
  Timestamp CurrentProcessingTime() { return pts_ ? pts_->Now() : NowProcessingTime(); }
  size_t num_event_timers() const { return event_.size(); }
  size_t num_processing_timers() const { return processing_.size(); }

  /// Timers of key groups in the backend's range, for checkpoints.
  void Snapshot(std::string& out) const;
  Status Restore(std::string_view snapshot);

 private:
  void OnProcessingTime(Timestamp now);
  void ScheduleNextProcessingTimer();

  KeyedStateBackend* backend_;
  ProcessingTimeService* pts_;
  TimerTarget* target_;
  TimerQueue event_;
  TimerQueue processing_;
  Timer scratch_;  // reused for lookups so that a duplicate registration allocates nothing
  Watermark watermark_ = Watermark::Min();
  Timestamp scheduled_ = Timestamp::Max();
};

}  // namespace eddy
