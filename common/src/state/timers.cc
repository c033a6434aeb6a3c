#include "eddy/state/timers.h"

#include "eddy/serialization.h"

#include <algorithm>

namespace eddy {

bool TimerQueue::Add(Timer t) {
  if (live_.find(t) != live_.end()) return false;
  heap_.push_back(t);
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  live_.insert(std::move(t));
  return true;
}

void TimerQueue::Remove(const Timer& t) {
  if (live_.erase(t) > 0 && heap_.size() > 2 * live_.size() + 1024) Compact();
}

void TimerQueue::Compact() {
  heap_.assign(live_.begin(), live_.end());
  std::make_heap(heap_.begin(), heap_.end(), Later{});
}

const Timer* TimerQueue::Peek() {
  while (!heap_.empty()) {
    if (live_.find(heap_.front()) != live_.end()) return &heap_.front();
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();  // deleted earlier: drop the stale entry
  }
  return nullptr;
}

Timer TimerQueue::Pop() {
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  Timer t = std::move(heap_.back());
  heap_.pop_back();
  live_.erase(t);
  return t;
}

void InternalTimerService::RegisterProcessingTimeTimer(Namespace ns, Timestamp time) {
  scratch_.time = time;
  scratch_.key.assign(backend_->current_key());
  scratch_.ns = ns;
  processing_.Add(scratch_);
  ScheduleNextProcessingTimer();
}

void InternalTimerService::ScheduleNextProcessingTimer() {
  const Timer* first = processing_.Peek();
  if (first == nullptr || pts_ == nullptr) return;
  Timestamp next = first->time;
  if (next >= scheduled_) return;
  scheduled_ = next;
  pts_->RegisterTimer(next, [this](Timestamp now) { OnProcessingTime(now); });
}

void InternalTimerService::OnProcessingTime(Timestamp now) {
  scheduled_ = Timestamp::Max();
  for (const Timer* first = processing_.Peek(); first && first->time <= now;
       first = processing_.Peek()) {
    Timer t = processing_.Pop();
    backend_->SetCurrentKey(t.key);
    target_->OnProcessingTime(t);
  }
  ScheduleNextProcessingTimer();
}

void InternalTimerService::AdvanceWatermark(Watermark wm) {
  if (wm > watermark_) watermark_ = wm;
  for (const Timer* first = event_.Peek(); first && first->time <= wm; first = event_.Peek()) {
    Timer t = event_.Pop();
    backend_->SetCurrentKey(t.key);
    target_->OnEventTime(t);
  }
}

void InternalTimerService::Snapshot(std::string& out) const {
  ByteWriter w(out);
  w.PutU8(1);
  for (const auto* q : {&event_, &processing_}) {
    w.PutVarU64(q->size());
    q->ForEach([&](const Timer& t) {
      w.PutVarI64(t.time.millis());
      w.PutBytes(t.key);
      w.PutVarI64(t.ns.a);
      w.PutVarI64(t.ns.b);
    });
  }
}

Status InternalTimerService::Restore(std::string_view snapshot) {
  ByteReader r(snapshot);
  if (r.GetU8() != 1) return Status::ParseError("timer snapshot: unsupported version");
  for (auto* q : {&event_, &processing_}) {
    uint64_t n = r.GetVarU64();
    for (uint64_t i = 0; i < n && !r.failed(); ++i) {
      Timer t;
      t.time = Timestamp(r.GetVarI64());
      t.key = std::string(r.GetBytes());
      t.ns = Namespace{r.GetVarI64(), r.GetVarI64()};
      if (backend_->range().Contains(KeyGroupForKeyBytes(t.key, backend_->max_parallelism()))) {
        q->Add(std::move(t));
      }
    }
  }
  if (r.failed()) return Status::ParseError("timer snapshot is truncated or corrupt");
  ScheduleNextProcessingTimer();
  return Status::Ok();
}

}  // namespace eddy
