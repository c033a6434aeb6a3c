// Default (canonical, full) snapshot and restore of keyed state backends.
#include <memory>

#include "eddy/proto/checkpoint.pb.h"
#include "eddy/state/keyed_backend.h"
#include "eddy/storage/object_store.h"
#include "state/snapshot_internal.h"

namespace eddy {

namespace {
/// Snapshots up to this size travel inside the handle (and so inside `_metadata`), like Flink's
/// state.storage.fs.memory-threshold (20 KiB).
constexpr size_t kInlineThreshold = 20 * 1024;
}  // namespace

Result<proto::KeyedStateHandle> UploadCanonicalSnapshot(const std::string& data,
                                                        KeyGroupRange range,
                                                        const SnapshotTarget& target) {
  proto::KeyedStateHandle h;
  h.set_format(proto::KeyedStateHandle::CANONICAL);
  h.set_key_group_start(range.start);
  h.set_key_group_end(range.end);
  h.set_checkpointed_size(data.size());
  h.set_full_size(data.size());
  if (data.size() <= kInlineThreshold || target.store == nullptr) {
    h.set_inline_data(data);
    return h;
  }
  std::string key = target.exclusive_prefix + "keyed";
  EDDY_RETURN_NOT_OK(target.store->Put(key, data));
  auto* f = h.add_files();
  f->set_key(key);
  f->set_size(data.size());
  return h;
}

Result<SnapshotUpload> KeyedStateBackend::SnapshotAsync(const SnapshotTarget& target) {
  auto data = std::make_shared<std::string>();
  EDDY_RETURN_NOT_OK(Snapshot(*data));
  KeyGroupRange range = range_;
  return SnapshotUpload([data, range, target]() -> Result<proto::KeyedStateHandle> {
    return UploadCanonicalSnapshot(*data, range, target);
  });
}

Status KeyedStateBackend::RestoreFromHandles(const std::vector<proto::KeyedStateHandle>& handles,
                                             storage::ObjectStore& store) {
  for (const auto& h : handles) {
    if (h.key_group_end() < range_.start || h.key_group_start() > range_.end) continue;
    if (h.format() != proto::KeyedStateHandle::CANONICAL) {
      return Status::Unimplemented(
          "this state backend cannot restore a RocksDB-native snapshot; take a savepoint "
          "(canonical format) or use stateBackend: rocksdb");
    }
    if (h.files_size() == 0) {
      EDDY_RETURN_NOT_OK(Restore(h.inline_data()));
      continue;
    }
    for (const auto& f : h.files()) {
      EDDY_ASSIGN_OR_RETURN(std::string data, store.Get(f.key()));
      if (data.size() != f.size()) {
        return Status::ParseError("state file '" + store.Uri(f.key()) + "' has " +
                                  std::to_string(data.size()) + " bytes, the checkpoint says " +
                                  std::to_string(f.size()));
      }
      EDDY_RETURN_NOT_OK(Restore(data));
    }
  }
  return Status::Ok();
}

}  // namespace eddy
