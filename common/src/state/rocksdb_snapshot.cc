// Checkpoints, savepoints and restores of the RocksDB backend.
//
// Checkpoint (native, incremental): on the task thread the handles' cached writes are flushed and
// rocksdb::Checkpoint hard-links the live SST files and copies MANIFEST/CURRENT/OPTIONS into
// `<local_dir>/chk-<id>-<n>`. The upload (another thread) walks that directory:
//   - an SST file that was part of the last checkpoint confirmed complete
//   (NotifyCheckpointComplete)
//     is referenced again under the key it was uploaded to then (shared = true, not uploaded);
//   - any other SST file is uploaded to `shared_prefix + <instance id>-<checkpoint id>-<file name>`
//     (shared; a fresh key per upload, so a file of an aborted checkpoint is never overwritten);
//   - every other file (MANIFEST, CURRENT, OPTIONS, ...) goes to `exclusive_prefix + <file name>`.
// A handle therefore references: its exclusive files, its own new SSTs, and SSTs uploaded by
// earlier checkpoints of this backend instance (or of the checkpoint it was restored from) — all
// listed in `files` with `shared` set for SSTs. Deleting shared files when no retained checkpoint
// refers to them is the checkpoint coordinator's job (reference counting by key), not the
// backend's. The local directory is removed when the upload ends (or is dropped).
//
// Savepoint (canonical): the same local checkpoint, opened read-only on the upload thread and
// written in the canonical format, so that any backend can restore it.
//
// Restore: a native handle whose key groups contain this backend's range becomes the database
// (downloaded into `<local_dir>/db`, the key groups outside the range deleted by range); the key
// groups in range of every other native handle are copied in from a temporary download; canonical
// handles go through Restore().

#include <rocksdb/iterator.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>

#include "eddy/storage/object_store.h"
#include "state/rocksdb_internal.h"
#include "state/snapshot_internal.h"

namespace eddy {

namespace fs = std::filesystem;
using rocksdb_internal::Table;

namespace {

/// Removes a directory when destroyed (the upload's local checkpoint, a temporary download).
class ScopedDir {
 public:
  explicit ScopedDir(std::string path) : path_(std::move(path)) {}
  ~ScopedDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string RangeName(int32_t start, int32_t end) {
  return "key groups " + std::to_string(start) + "-" + std::to_string(end);
}

/// Downloads the files of native handle `h` into `dir` and checks their sizes.
Status Download(const proto::KeyedStateHandle& h, storage::ObjectStore& store,
                const std::string& dir) {
  if (h.files_size() == 0) {
    return Status::ParseError("RocksDB checkpoint of " +
                              RangeName(h.key_group_start(), h.key_group_end()) +
                              " lists no files");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  for (const auto& f : h.files()) {
    const std::string& name = f.local_name();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      return Status::ParseError("RocksDB checkpoint file '" + store.Uri(f.key()) +
                                "' has a bad local name '" + name + "'");
    }
    std::string path = (fs::path(dir) / name).string();
    Status s = store.GetToFile(f.key(), path);
    if (!s.ok()) {
      return Status(s.code(), "restoring RocksDB state: cannot download '" + store.Uri(f.key()) +
                                  "': " + s.message());
    }
    uint64_t size = fs::file_size(path, ec);
    if (ec || size != f.size()) {
      return Status::ParseError("state file '" + store.Uri(f.key()) + "' has " +
                                std::to_string(ec ? 0 : size) + " bytes, the checkpoint says " +
                                std::to_string(f.size()));
    }
  }
  return Status::Ok();
}

/// A failure to open or verify a downloaded checkpoint, as a ParseError naming the objects whose
/// local names RocksDB's message mentions.
Status RestoreError(const proto::KeyedStateHandle& h, storage::ObjectStore& store,
                    const Status& cause) {
  std::string msg = "restoring the RocksDB checkpoint of " +
                    RangeName(h.key_group_start(), h.key_group_end()) + ": " + cause.message();
  for (const auto& f : h.files()) {
    if (cause.message().find(f.local_name()) != std::string::npos) {
      msg += " (" + f.local_name() + " is " + store.Uri(f.key()) + ")";
    }
  }
  return Status::ParseError(std::move(msg));
}

Result<rocksdb_internal::OpenDb> OpenDownloaded(const proto::KeyedStateHandle& h,
                                                storage::ObjectStore& store, const std::string& dir,
                                                const RocksDBStateOptions& options,
                                                std::shared_ptr<rocksdb_internal::TtlClock> clock,
                                                bool read_only) {
  auto opened = rocksdb_internal::OpenDatabase(dir, options, std::move(clock), read_only);
  if (!opened.ok()) return RestoreError(h, store, opened.status());
  if (options.verify_checksums_on_restore) {
    rocksdb::Status s = opened->db->VerifyChecksum();
    if (!s.ok()) return RestoreError(h, store, rocksdb_internal::FromRocks(s, "checksum"));
  }
  return opened;
}

}  // namespace

Result<SnapshotUpload> RocksDBKeyedStateBackend::SnapshotAsync(const SnapshotTarget& target) {
  Impl& im = *impl_;
  if (!target.savepoint && target.store == nullptr) {
    return Status::InvalidArgument("a RocksDB checkpoint needs an object store");
  }
  FlushHandles();
  std::string dir = (fs::path(im.local_dir) / ((target.savepoint ? "savepoint-" : "chk-") +
                                               std::to_string(target.checkpoint_id.value()) + "-" +
                                               std::to_string(im.next_scratch_dir++)))
                        .string();
  {
    rocksdb::FlushOptions fo;
    rocksdb::Status s = im.db.db->Flush(fo, im.db.handles);
    if (!s.ok()) return rocksdb_internal::FromRocks(s, "flushing RocksDB state for a snapshot");
    rocksdb::Checkpoint* raw = nullptr;
    s = rocksdb::Checkpoint::Create(im.db.db.get(), &raw);
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    if (s.ok()) s = cp->CreateCheckpoint(dir, 0);
    if (!s.ok()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      return rocksdb_internal::FromRocks(s, "creating a RocksDB checkpoint in " + dir);
    }
  }
  auto local = std::make_unique<ScopedDir>(dir);
  KeyGroupRange range = range_;

  if (target.savepoint) {
    int64_t now = Now().millis();
    RocksDBStateOptions options = im.options;
    return SnapshotUpload([local = std::move(local), options, range, now,
                           target]() -> Result<proto::KeyedStateHandle> {
      std::string data;
      {
        auto opened = rocksdb_internal::OpenDatabase(
            local->path(), options, std::make_shared<rocksdb_internal::TtlClock>(), true);
        if (!opened.ok()) return opened.status();
        EDDY_RETURN_NOT_OK(rocksdb_internal::WriteCanonicalSnapshot(*opened, range, now, data));
      }
      return UploadCanonicalSnapshot(data, range, target);
    });
  }

  std::map<std::string, proto::StateFile> base;
  {
    std::lock_guard lock(im.uploaded->mu);
    base = im.uploaded->confirmed;
  }
  return SnapshotUpload([local = std::move(local), base = std::move(base), target, range,
                         uploaded = im.uploaded,
                         instance = im.instance_id]() -> Result<proto::KeyedStateHandle> {
    proto::KeyedStateHandle h;
    h.set_format(proto::KeyedStateHandle::ROCKSDB_NATIVE);
    h.set_key_group_start(range.start);
    h.set_key_group_end(range.end);
    h.set_backend_id(static_cast<uint64_t>(target.checkpoint_id.value()));
    std::vector<std::pair<std::string, uint64_t>> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(local->path(), ec)) {
      if (!e.is_regular_file()) continue;
      files.emplace_back(e.path().filename().string(), e.file_size());
    }
    if (ec) return Status::IOError("listing " + local->path() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    uint64_t sent = 0, full = 0;
    std::map<std::string, proto::StateFile> ssts;
    for (const auto& [name, size] : files) {
      proto::StateFile f;
      f.set_local_name(name);
      f.set_size(size);
      full += size;
      const bool shared = EndsWith(name, ".sst") && !target.shared_prefix.empty();
      auto reuse = shared ? base.find(name) : base.end();
      if (reuse != base.end() && reuse->second.size() == size) {
        f.set_key(reuse->second.key());
      } else {
        // A new key for every upload, also of a file uploaded before by a checkpoint that was
        // aborted: the coordinator may be deleting that one.
        f.set_key(shared ? target.shared_prefix + instance + "-" +
                               std::to_string(target.checkpoint_id.value()) + "-" + name
                         : target.exclusive_prefix + name);
        Status s = target.store->PutFile(f.key(), (fs::path(local->path()) / name).string());
        if (!s.ok()) return s.WithContext("uploading RocksDB checkpoint file " + name);
        sent += size;
      }
      f.set_shared(shared);
      if (shared) ssts[name] = f;
      *h.add_files() = std::move(f);
    }
    h.set_checkpointed_size(sent);
    h.set_full_size(full);
    std::lock_guard lock(uploaded->mu);
    uploaded->pending[target.checkpoint_id.value()] = std::move(ssts);
    return h;
  });
}

void RocksDBKeyedStateBackend::NotifyCheckpointComplete(CheckpointId id) {
  auto& u = *impl_->uploaded;
  std::lock_guard lock(u.mu);
  if (auto it = u.pending.find(id.value()); it != u.pending.end()) {
    u.confirmed = std::move(it->second);
    u.confirmed_id = id.value();
  }
  u.pending.erase(u.pending.begin(), u.pending.upper_bound(id.value()));
}

void RocksDBKeyedStateBackend::NotifyCheckpointAborted(CheckpointId id) {
  auto& u = *impl_->uploaded;
  std::lock_guard lock(u.mu);
  u.pending.erase(id.value());
}

Status RocksDBKeyedStateBackend::RestoreFromHandles(
    const std::vector<proto::KeyedStateHandle>& handles, storage::ObjectStore& store) {
  Impl& im = *impl_;
  FlushHandles();
  std::vector<const proto::KeyedStateHandle*> native;
  std::vector<proto::KeyedStateHandle> canonical;
  for (const auto& h : handles) {
    if (h.key_group_end() < range_.start || h.key_group_start() > range_.end) continue;
    if (h.format() == proto::KeyedStateHandle::ROCKSDB_NATIVE) {
      native.push_back(&h);
    } else {
      canonical.push_back(h);
    }
  }
  // The database is replaced only while nothing refers to it: no state registered or restored.
  const proto::KeyedStateHandle* base = nullptr;
  if (im.tables.empty() && im.next_pending_seq == 0) {
    for (const auto* h : native) {
      if (h->key_group_start() == range_.start && h->key_group_end() == range_.end) base = h;
    }
    for (const auto* h : native) {
      if (!base && h->key_group_start() <= range_.start && h->key_group_end() >= range_.end) {
        base = h;
      }
    }
  }
  if (base) EDDY_RETURN_NOT_OK(RestoreBase(*base, store));
  for (const auto* h : native) {
    if (h != base) EDDY_RETURN_NOT_OK(CopyFromHandle(*h, store));
  }
  if (!canonical.empty())
    EDDY_RETURN_NOT_OK(KeyedStateBackend::RestoreFromHandles(canonical, store));
  DropHandleCaches();
  return Status::Ok();
}

Status RocksDBKeyedStateBackend::RestoreBase(const proto::KeyedStateHandle& h,
                                             storage::ObjectStore& store) {
  Impl& im = *impl_;
  im.tables.clear();
  im.get_buffer.Reset();
  im.db.Close();
  std::error_code ec;
  fs::remove_all(im.db_dir, ec);
  Status st = Download(h, store, im.db_dir);
  Result<rocksdb_internal::OpenDb> opened = st;
  if (st.ok()) opened = OpenDownloaded(h, store, im.db_dir, im.options, im.ttl_clock, false);
  if (!opened.ok()) {
    // Leave a usable, empty backend behind.
    fs::remove_all(im.db_dir, ec);
    auto empty = rocksdb_internal::OpenDatabase(im.db_dir, im.options, im.ttl_clock, false);
    if (empty.ok()) (void)im.AdoptDatabase(std::move(*empty));
    return opened.status();
  }
  EDDY_RETURN_NOT_OK(im.AdoptDatabase(std::move(*opened)));
  // Cut out the key groups of the old range that are not in ours.
  std::vector<std::pair<std::string, std::string>> cuts;
  if (h.key_group_start() < range_.start) {
    cuts.emplace_back(rocksdb_internal::KeyGroupPrefix(h.key_group_start()),
                      rocksdb_internal::KeyGroupPrefix(range_.start));
  }
  if (h.key_group_end() > range_.end) {
    cuts.emplace_back(rocksdb_internal::KeyGroupPrefix(range_.end + 1),
                      rocksdb_internal::KeyGroupPrefix(h.key_group_end() + 1));
  }
  for (const auto& [from, to] : cuts) {
    for (auto& [name, cf] : im.db.states) {
      rocksdb::Status s = im.db.db->DeleteRange(im.write_options, cf, from, to);
      if (!s.ok()) return rocksdb_internal::FromRocks(s, "restoring RocksDB state '" + name + "'");
    }
  }
  // The next checkpoint references the restored SST files instead of uploading them again.
  std::lock_guard lock(im.uploaded->mu);
  im.uploaded->confirmed.clear();
  for (const auto& f : h.files()) {
    if (f.shared()) im.uploaded->confirmed[f.local_name()] = f;
  }
  im.uploaded->confirmed_id = -1;
  return Status::Ok();
}

Status RocksDBKeyedStateBackend::CopyFromHandle(const proto::KeyedStateHandle& h,
                                                storage::ObjectStore& store) {
  Impl& im = *impl_;
  ScopedDir tmp(
      (fs::path(im.local_dir) / ("restore-" + std::to_string(im.next_scratch_dir++))).string());
  EDDY_RETURN_NOT_OK(Download(h, store, tmp.path()));
  EDDY_ASSIGN_OR_RETURN(rocksdb_internal::OpenDb src,
                        OpenDownloaded(h, store, tmp.path(), im.options,
                                       std::make_shared<rocksdb_internal::TtlClock>(), true));
  std::string lower = rocksdb_internal::KeyGroupPrefix(range_.start);
  std::string upper = rocksdb_internal::KeyGroupPrefix(range_.end + 1);
  constexpr size_t kBatchBytes = 4 << 20;
  for (auto& [name, scf] : src.states) {
    Table* t = EnsureTable(name);
    if (t->cf == nullptr) return error();
    // Kind and TTL travel with the rows unless the state is registered (then it knows better).
    if (t->meta.kind == StateKind::kUnknown) {
      std::string raw;
      rocksdb::Status ms =
          src.db->Get(rocksdb::ReadOptions(), src.meta, rocksdb_internal::MetaKey(name), &raw);
      if (ms.ok() && rocksdb_internal::DecodeMeta(raw, &t->meta)) {
        t->filter->ttl_ms.store(t->meta.ttl.enabled() ? t->meta.ttl.ttl.millis() : 0);
        rocksdb::Status s =
            im.db.db->Put(im.write_options, im.db.meta, rocksdb_internal::MetaKey(name), raw);
        if (!s.ok())
          return rocksdb_internal::FromRocks(s, "restoring RocksDB state '" + name + "'");
      }
    }
    rocksdb::Slice ub(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &ub;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(src.db->NewIterator(ro, scf));
    rocksdb::WriteBatch batch;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      (void)batch.Put(t->cf, it->key(), it->value());
      if (batch.GetDataSize() >= kBatchBytes) {
        rocksdb::Status s = im.db.db->Write(im.write_options, &batch);
        if (!s.ok())
          return rocksdb_internal::FromRocks(s, "restoring RocksDB state '" + name + "'");
        batch.Clear();
      }
    }
    if (!it->status().ok())
      return RestoreError(h, store, rocksdb_internal::FromRocks(it->status(), name));
    rocksdb::Status s = im.db.db->Write(im.write_options, &batch);
    if (!s.ok()) return rocksdb_internal::FromRocks(s, "restoring RocksDB state '" + name + "'");
  }
  // Restored canonical sections of states that were never registered travel along.
  std::unique_ptr<rocksdb::Iterator> it(src.db->NewIterator(rocksdb::ReadOptions(), src.meta));
  for (it->Seek(std::string(rocksdb_internal::kPendingPrefix)); it->Valid(); it->Next()) {
    std::string name;
    if (!rocksdb_internal::PendingName(std::string_view(it->key().data(), it->key().size()),
                                       &name)) {
      break;
    }
    rocksdb::Status s =
        im.db.db->Put(im.write_options, im.db.meta,
                      rocksdb_internal::PendingKey(name, im.next_pending_seq++), it->value());
    if (!s.ok()) return rocksdb_internal::FromRocks(s, "restoring RocksDB state '" + name + "'");
    // A state registered already converts it now.
    auto t = im.tables.find(name);
    if (t != im.tables.end() && t->second->handle) ApplyPending(*t->second);
  }
  if (!it->status().ok())
    return RestoreError(h, store, rocksdb_internal::FromRocks(it->status(), "metadata"));
  return Status::Ok();
}

}  // namespace eddy
