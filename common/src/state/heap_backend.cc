#include "eddy/state/heap_backend.h"

namespace eddy {

namespace {
constexpr uint8_t kSnapshotVersion = 1;
}

Status HeapKeyedStateBackend::Snapshot(std::string& out) {
  ByteWriter w(out);
  w.PutU8(kSnapshotVersion);
  w.PutVarU64(order_.size() + pending_restore_.size());
  Timestamp now = Now();
  std::string section;
  for (const auto& name : order_) {
    HeapStateTableBase* t = tables_.at(name);
    section.clear();
    ByteWriter sw(section);
    t->Snapshot(sw, now);
    w.PutBytes(name);
    w.PutU8(t->kind_tag());
    w.PutBytes(section);
  }
  // State restored but not (yet) used by the operator is carried along unchanged.
  for (const auto& [name, raw] : pending_restore_) {
    w.PutBytes(name);
    w.PutU8(0);
    w.PutBytes(raw);
  }
  return Status::Ok();
}

Status HeapKeyedStateBackend::Restore(std::string_view snapshot) {
  ByteReader r(snapshot);
  if (r.GetU8() != kSnapshotVersion) {
    return Status::ParseError("keyed state snapshot: unsupported version");
  }
  uint64_t n = r.GetVarU64();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    std::string name(r.GetBytes());
    r.GetU8();  // kind tag, informational
    std::string_view section = r.GetBytes();
    if (r.failed()) break;
    if (auto it = tables_.find(name); it != tables_.end()) {
      ApplyRestore(name, *it->second, section);
    } else {
      // Merge sections from several old subtasks (rescaling) by concatenating group lists.
      auto& pending = pending_restore_[name];
      if (pending.empty()) {
        pending.assign(section);
      } else {
        // Re-encode: "count, groups..." + "count, groups..." -> "count1+count2, groups...".
        ByteReader a(pending), b(section);
        uint64_t ca = a.GetVarU64(), cb = b.GetVarU64();
        std::string merged;
        ByteWriter mw(merged);
        mw.PutVarU64(ca + cb);
        merged.append(pending.data() + (pending.size() - a.remaining()), a.remaining());
        merged.append(section.data() + (section.size() - b.remaining()), b.remaining());
        pending = std::move(merged);
      }
    }
  }
  if (r.failed()) return Status::ParseError("keyed state snapshot is truncated or corrupt");
  return restore_error_;
}

void HeapKeyedStateBackend::ApplyRestore(const std::string& name, HeapStateTableBase& table,
                                         std::string_view section) {
  ByteReader r(section);
  uint64_t groups = r.GetVarU64();
  for (uint64_t g = 0; g < groups && !r.failed(); ++g) {
    auto kg = static_cast<int32_t>(r.GetVarU64());
    uint64_t count = r.GetVarU64();
    if (!table.RestoreGroup(r, kg, count, range_.Contains(KeyGroup(kg)))) break;
  }
  if (r.failed() && restore_error_.ok()) {
    restore_error_ = Status::ParseError("keyed state '" + name + "': snapshot is corrupt");
  }
}

size_t HeapKeyedStateBackend::NumEntries() const {
  size_t n = 0;
  for (const auto& [name, t] : tables_) n += t->size();
  return n;
}

}  // namespace eddy
