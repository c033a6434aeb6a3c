#pragma once

#include <functional>
#include <set>
#include <string>

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
    event_.insert(Timer{time, backend_->current_key(), ns});
  }
  void DeleteEventTimeTimer(Namespace ns, Timestamp time) {
    event_.erase(Timer{time, backend_->current_key(), ns});
  }
  void RegisterProcessingTimeTimer(Namespace ns, Timestamp time);
  void DeleteProcessingTimeTimer(Namespace ns, Timestamp time) {
    processing_.erase(Timer{time, backend_->current_key(), ns});
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
  std::set<Timer> event_;
  std::set<Timer> processing_;
  Watermark watermark_ = Watermark::Min();
  Timestamp scheduled_ = Timestamp::Max();
};

}  // namespace eddy
