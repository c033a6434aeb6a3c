#include "eddy/state/operator_state.h"

#include <map>

#include "eddy/serialization.h"

namespace eddy {

namespace {
constexpr uint8_t kVersion = 1;
}

void SnapshotOperatorState(const OperatorStateStore& store, std::string& out) {
  ByteWriter w(out);
  w.PutU8(kVersion);
  auto& entries = const_cast<OperatorStateStore&>(store).entries();
  w.PutVarU64(entries.size());
  for (const auto& [name, e] : entries) {
    w.PutBytes(name);
    w.PutU8(static_cast<uint8_t>(e.mode));
    w.PutVarU64(e.items.size());
    for (const auto& item : e.items) w.PutBytes(item);
  }
}

Result<std::vector<OperatorStateStore>> RedistributeOperatorState(
    const std::vector<std::string>& old_snapshots, int new_parallelism) {
  if (new_parallelism < 1) return Status::InvalidArgument("new parallelism must be >= 1");
  struct Merged {
    OperatorStateStore::Mode mode;
    std::vector<std::string> items;  // split/union: concatenation; broadcast: first copy
    bool have_broadcast = false;
  };
  std::map<std::string, Merged> merged;
  for (size_t s = 0; s < old_snapshots.size(); ++s) {
    ByteReader r(old_snapshots[s]);
    if (old_snapshots[s].empty()) continue;
    if (r.GetU8() != kVersion) {
      return Status::ParseError("operator state of old subtask " + std::to_string(s) +
                                ": unsupported version");
    }
    uint64_t n = r.GetVarU64();
    for (uint64_t i = 0; i < n && !r.failed(); ++i) {
      std::string name(r.GetBytes());
      auto mode = static_cast<OperatorStateStore::Mode>(r.GetU8());
      if (mode > OperatorStateStore::Mode::kBroadcast) {
        return Status::ParseError("operator state '" + name + "': unknown redistribution mode");
      }
      uint64_t count = r.GetVarU64();
      auto [it, inserted] = merged.try_emplace(name, Merged{mode, {}, false});
      if (!inserted && it->second.mode != mode) {
        return Status::ParseError("operator state '" + name +
                                  "' has different modes across subtasks");
      }
      bool keep = mode != OperatorStateStore::Mode::kBroadcast || !it->second.have_broadcast;
      for (uint64_t k = 0; k < count && !r.failed(); ++k) {
        std::string_view item = r.GetBytes();
        if (keep) it->second.items.emplace_back(item);
      }
      if (mode == OperatorStateStore::Mode::kBroadcast) it->second.have_broadcast = true;
    }
    if (r.failed()) {
      return Status::ParseError("operator state of old subtask " + std::to_string(s) +
                                " is truncated or corrupt");
    }
  }
  std::vector<OperatorStateStore> out(static_cast<size_t>(new_parallelism));
  for (auto& [name, m] : merged) {
    for (int p = 0; p < new_parallelism; ++p) {
      auto& e = out[static_cast<size_t>(p)].Get(name, m.mode);
      if (m.mode == OperatorStateStore::Mode::kSplit) {
        size_t total = m.items.size();
        size_t from = total * static_cast<size_t>(p) / static_cast<size_t>(new_parallelism);
        size_t to = total * static_cast<size_t>(p + 1) / static_cast<size_t>(new_parallelism);
        e.items.assign(m.items.begin() + static_cast<ptrdiff_t>(from),
                       m.items.begin() + static_cast<ptrdiff_t>(to));
      } else {
        e.items = m.items;
      }
    }
  }
  return out;
}

}  // namespace eddy
