// RoundRobinPosition: a round-robin source's position as union operator state (eddy/sources.h).

#include <algorithm>
#include <climits>

#include "eddy/serialization.h"
#include "eddy/sources.h"

namespace eddy {

namespace {

// Item: level, parallelism, subtask, next [, offset] as varints (the offset was added later;
// items without it restore with offset -1).
std::string EncodeItem(int64_t level, int64_t p, int64_t i, int64_t next, int64_t offset) {
  std::string out;
  ByteWriter w(out);
  w.PutVarI64(level);
  w.PutVarI64(p);
  w.PutVarI64(i);
  w.PutVarI64(next);
  w.PutVarI64(offset);
  return out;
}

}  // namespace

Status RoundRobinPosition::Load(OperatorStateStore* store, std::string name, std::string what,
                                int subtask, int parallelism) {
  store_ = store;
  name_ = std::move(name);
  subtask_ = subtask;
  parallelism_ = parallelism;
  levels_.clear();
  level_ = 0;
  if (!store_) return Status::Ok();
  auto& e = store_->Get(name_, OperatorStateStore::Mode::kUnion);
  for (const auto& item : e.items) {
    ByteReader r(item);
    const int64_t level = r.GetVarI64(), p = r.GetVarI64(), i = r.GetVarI64(), next = r.GetVarI64();
    const int64_t offset = r.remaining() > 0 ? r.GetVarI64() : -1;
    if (r.failed() || p <= 0 || i < 0 || i >= p || next < 0) {
      return Status::ParseError(what + ": corrupt position state");
    }
    auto& lv = levels_[level];
    if (lv.empty()) lv.assign(static_cast<size_t>(p), Next{});
    if (static_cast<int64_t>(lv.size()) != p) {
      return Status::ParseError(what + ": inconsistent position state");
    }
    lv[static_cast<size_t>(i)] = Next{next, offset};
  }
  for (const auto& [level, nexts] : levels_) {
    for (const Next& v : nexts) {
      if (v.next < 0) return Status::ParseError(what + ": position state misses a subtask");
    }
    level_ = std::max(level_, level + 1);
  }
  // A level whose every position is below another level's smallest is implied by it.
  auto max_of = [](const std::vector<Next>& v) {
    int64_t m = 0;
    for (const Next& x : v) m = std::max(m, x.next);
    return m;
  };
  auto min_of = [](const std::vector<Next>& v) {
    int64_t m = INT64_MAX;
    for (const Next& x : v) m = std::min(m, x.next);
    return m;
  };
  for (auto it = levels_.begin(); it != levels_.end();) {
    const int64_t max_here = max_of(it->second);
    bool implied = false;
    for (const auto& [other, nexts] : levels_) {
      if (other == it->first) continue;
      const int64_t min_other = min_of(nexts);
      if (max_here < min_other || (max_here == min_other && other > it->first)) implied = true;
    }
    it = implied ? levels_.erase(it) : std::next(it);
  }
  return Status::Ok();
}

std::pair<int64_t, int64_t> RoundRobinPosition::Floor() const {
  std::pair<int64_t, int64_t> floor{INT64_MAX, -1};
  for (const auto& [level, nexts] : levels_) {
    for (const Next& v : nexts) {
      if (v.next < floor.first || (v.next == floor.first && floor.second < 0)) {
        floor = {v.next, v.offset};
      }
    }
  }
  return floor.first == INT64_MAX ? std::pair<int64_t, int64_t>{0, 0} : floor;
}

void RoundRobinPosition::Snapshot(int64_t next, int64_t offset) {
  if (!store_) return;
  auto& e = store_->Get(name_, OperatorStateStore::Mode::kUnion);
  e.items.clear();
  // Restored levels are written by subtask 0 only (each subtask knows all of them).
  if (subtask_ == 0) {
    for (const auto& [level, nexts] : levels_) {
      for (size_t i = 0; i < nexts.size(); ++i) {
        e.items.push_back(EncodeItem(level, static_cast<int64_t>(nexts.size()),
                                     static_cast<int64_t>(i), nexts[i].next, nexts[i].offset));
      }
    }
  }
  e.items.push_back(EncodeItem(level_, parallelism_, subtask_, next, offset));
}

}  // namespace eddy
