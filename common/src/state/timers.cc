#include "eddy/state/timers.h"

#include "eddy/serialization.h"

namespace eddy {

void InternalTimerService::RegisterProcessingTimeTimer(Namespace ns, Timestamp time) {
  processing_.insert(Timer{time, backend_->current_key(), ns});
  ScheduleNextProcessingTimer();
}

void InternalTimerService::ScheduleNextProcessingTimer() {
  if (processing_.empty() || pts_ == nullptr) return;
  Timestamp next = processing_.begin()->time;
  if (next >= scheduled_) return;
  scheduled_ = next;
  pts_->RegisterTimer(next, [this](Timestamp now) { OnProcessingTime(now); });
}

void InternalTimerService::OnProcessingTime(Timestamp now) {
  scheduled_ = Timestamp::Max();
  while (!processing_.empty() && processing_.begin()->time <= now) {
    Timer t = *processing_.begin();
    processing_.erase(processing_.begin());
    backend_->SetCurrentKey(t.key);
    target_->OnProcessingTime(t);
  }
  ScheduleNextProcessingTimer();
}

void InternalTimerService::AdvanceWatermark(Watermark wm) {
  if (wm > watermark_) watermark_ = wm;
  while (!event_.empty() && event_.begin()->time <= wm) {
    Timer t = *event_.begin();
    event_.erase(event_.begin());
    backend_->SetCurrentKey(t.key);
    target_->OnEventTime(t);
  }
}

void InternalTimerService::Snapshot(std::string& out) const {
  ByteWriter w(out);
  w.PutU8(1);
  for (const auto* set : {&event_, &processing_}) {
    w.PutVarU64(set->size());
    for (const auto& t : *set) {
      w.PutVarI64(t.time.millis());
      w.PutBytes(t.key);
      w.PutVarI64(t.ns.a);
      w.PutVarI64(t.ns.b);
    }
  }
}

Status InternalTimerService::Restore(std::string_view snapshot) {
  ByteReader r(snapshot);
  if (r.GetU8() != 1) return Status::ParseError("timer snapshot: unsupported version");
  for (auto* set : {&event_, &processing_}) {
    uint64_t n = r.GetVarU64();
    for (uint64_t i = 0; i < n && !r.failed(); ++i) {
      Timer t;
      t.time = Timestamp(r.GetVarI64());
      t.key = std::string(r.GetBytes());
      t.ns = Namespace{r.GetVarI64(), r.GetVarI64()};
      if (backend_->range().Contains(KeyGroupForKeyBytes(t.key, backend_->max_parallelism()))) {
        set->insert(std::move(t));
      }
    }
  }
  if (r.failed()) return Status::ParseError("timer snapshot is truncated or corrupt");
  ScheduleNextProcessingTimer();
  return Status::Ok();
}

}  // namespace eddy
