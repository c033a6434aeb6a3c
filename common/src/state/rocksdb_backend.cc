// RocksDBKeyedStateBackend: opening and closing the database, the raw-bytes interface of the typed
// handles, state registration, and the RocksDB plumbing (options, list merge operator, TTL
// compaction filter). Snapshots: rocksdb_canonical.cc and rocksdb_snapshot.cc.

#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <utility>

#include "state/rocksdb_internal.h"

namespace eddy {

namespace rocksdb_internal {

namespace fs = std::filesystem;

// ---- names and keys ----

std::string CfName(std::string_view state_name) {
  return "s/" + std::string(state_name);
}

bool StateNameOfCf(std::string_view cf, std::string* name) {
  if (cf.substr(0, 2) != "s/") return false;
  name->assign(cf.substr(2));
  return true;
}

std::string MetaKey(std::string_view name) {
  return std::string(kMetaPrefix) + std::string(name);
}

std::string PendingPrefix(std::string_view name) {
  std::string k(kPendingPrefix);
  k.append(name);
  k.push_back('\0');
  return k;
}

std::string PendingKey(std::string_view name, uint64_t seq) {
  std::string k = PendingPrefix(name);
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  return k;
}

bool PendingName(std::string_view key, std::string* name) {
  constexpr size_t kTail = 1 + 8;  // '\0' and the 8-byte sequence
  if (!key.starts_with(kPendingPrefix) || key.size() < kPendingPrefix.size() + kTail ||
      key[key.size() - kTail] != '\0') {
    return false;
  }
  name->assign(key.substr(kPendingPrefix.size(), key.size() - kPendingPrefix.size() - kTail));
  return true;
}

std::string EncodeMeta(const StateMeta& m) {
  std::string out;
  ByteWriter w(out);
  w.PutU8(1);  // version
  w.PutU8(static_cast<uint8_t>(m.kind));
  w.PutVarI64(m.ttl.ttl.millis());
  w.PutU8(static_cast<uint8_t>(m.ttl.update_type));
  w.PutU8(static_cast<uint8_t>(m.ttl.visibility));
  w.PutU8(m.ttl.cleanup_full_snapshot ? 1 : 0);
  w.PutVarI64(m.ttl.cleanup_incremental);
  return out;
}

bool DecodeMeta(std::string_view in, StateMeta* m) {
  ByteReader r(in);
  if (r.GetU8() != 1) return false;
  uint8_t kind = r.GetU8();
  if (kind > static_cast<uint8_t>(StateKind::kAggregating)) return false;
  m->kind = static_cast<StateKind>(kind);
  m->ttl.ttl = Duration::Millis(r.GetVarI64());
  m->ttl.update_type = static_cast<StateTtlConfig::UpdateType>(r.GetU8() & 1);
  m->ttl.visibility = static_cast<StateTtlConfig::Visibility>(r.GetU8() & 1);
  m->ttl.cleanup_full_snapshot = r.GetU8() != 0;
  m->ttl.cleanup_incremental = static_cast<int>(r.GetVarI64());
  return !r.failed();
}

std::string KeyGroupPrefix(int32_t kg) {
  auto u = static_cast<uint32_t>(kg);
  return std::string{static_cast<char>((u >> 8) & 0xff), static_cast<char>(u & 0xff)};
}

size_t StateKeyLength(std::string_view row) {
  if (row.size() < 2) return 0;
  ByteReader r(row.substr(2));
  uint64_t n = r.GetVarU64();
  if (r.failed() || n + 16 > r.remaining()) return 0;
  return static_cast<size_t>(r.position() - row.data()) + n + 16;
}

bool ParseRowKey(std::string_view row, int32_t* kg, std::string_view* key, Namespace* ns,
                 std::string_view* rest) {
  size_t len = StateKeyLength(row);
  if (len == 0) return false;
  *kg = (static_cast<uint8_t>(row[0]) << 8) | static_cast<uint8_t>(row[1]);
  ByteReader r(row.substr(2));
  uint64_t n = r.GetVarU64();
  size_t key_at = static_cast<size_t>(r.position() - row.data());
  *key = row.substr(key_at, n);
  int64_t v[2];
  const char* p = row.data() + key_at + n;
  for (int i = 0; i < 2; ++i) {
    uint64_t u = 0;
    for (int b = 0; b < 8; ++b) u = (u << 8) | static_cast<uint8_t>(p[i * 8 + b]);
    v[i] = static_cast<int64_t>(u ^ (1ull << 63));
  }
  *ns = Namespace{v[0], v[1]};
  *rest = row.substr(len);
  return true;
}

// ---- TTL clock ----

int64_t TtlClock::Now() const {
  int64_t p = published.load(std::memory_order_relaxed);
  return p == kWallClock ? NowProcessingTime().millis() : p;
}

namespace {

// ---- list merge operator ----

/// Concatenates list values [ts][count][elements]: the result's timestamp is the newest, its
/// count the sum. Associative, so partial merges are the same operation.
class ListAppendOperator final : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    std::vector<rocksdb::Slice> parts;
    parts.reserve(in.operand_list.size() + 1);
    if (in.existing_value != nullptr) parts.push_back(*in.existing_value);
    parts.insert(parts.end(), in.operand_list.begin(), in.operand_list.end());
    return Concat(parts.data(), parts.size(), &out->new_value);
  }
  bool PartialMergeMulti(const rocksdb::Slice&, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger*) const override {
    std::vector<rocksdb::Slice> parts(operands.begin(), operands.end());
    return Concat(parts.data(), parts.size(), new_value);
  }
  const char* Name() const override { return "eddy.ListAppend"; }

 private:
  static bool Concat(const rocksdb::Slice* parts, size_t n, std::string* out) {
    int64_t ts = 0;
    uint64_t count = 0;
    size_t bytes = 0;
    constexpr size_t kHead = kTsBytes + kListCountBytes;
    for (size_t i = 0; i < n; ++i) {
      if (parts[i].size() < kHead) return false;  // corrupt: RocksDB reports it
      ts = std::max(ts, static_cast<int64_t>(DecodeFixedLE(parts[i].data(), kTsBytes)));
      count += DecodeFixedLE(parts[i].data() + kTsBytes, kListCountBytes);
      bytes += parts[i].size() - kHead;
    }
    if (count > 0xffffffffull) return false;
    out->clear();
    out->reserve(kHead + bytes);
    AppendTs(*out, ts);
    AppendFixedLE(*out, count, kListCountBytes);
    for (size_t i = 0; i < n; ++i) out->append(parts[i].data() + kHead, parts[i].size() - kHead);
    return true;
  }
};

// ---- TTL compaction filter ----

class TtlFilter final : public rocksdb::CompactionFilter {
 public:
  TtlFilter(int64_t ttl_ms, int64_t now) : ttl_ms_(ttl_ms), now_(now) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    if (value.size() < kTsBytes) return false;
    auto ts = static_cast<int64_t>(DecodeFixedLE(value.data(), kTsBytes));
    return now_ - ts >= ttl_ms_;
  }
  const char* Name() const override { return "eddy.TtlFilter"; }

 private:
  int64_t ttl_ms_;
  int64_t now_;
};

class TtlFilterFactory final : public rocksdb::CompactionFilterFactory {
 public:
  TtlFilterFactory(std::shared_ptr<TtlFilterConfig> config, std::shared_ptr<TtlClock> clock)
      : config_(std::move(config)), clock_(std::move(clock)) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context&) override {
    int64_t ttl = config_->ttl_ms.load(std::memory_order_relaxed);
    if (ttl <= 0) return nullptr;
    return std::make_unique<TtlFilter>(ttl, clock_->Now());
  }
  const char* Name() const override { return "eddy.TtlFilterFactory"; }

 private:
  std::shared_ptr<TtlFilterConfig> config_;
  std::shared_ptr<TtlClock> clock_;
};

// ---- a file system that never syncs ----

// The working directory is scratch space: after a crash it is deleted and the state comes back
// from a checkpoint, whose files are uploaded from the page cache. So fsync buys nothing here, and
// it dominates opening a database, creating a column family and flushing (each fsyncs MANIFEST,
// OPTIONS and directories).
class NoSyncFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                              rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  bool IsSyncThreadSafe() const override { return true; }
};

class NoSyncDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  using FSDirectoryWrapper::FSDirectoryWrapper;
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions&, rocksdb::IODebugContext*,
                                        const rocksdb::DirFsyncOptions&) override {
    return rocksdb::IOStatus::OK();
  }
};

class NoSyncFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit NoSyncFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "EddyNoSyncFileSystem"; }
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->NewWritableFile(f, o, r, dbg), r);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReopenWritableFile(f, o, r, dbg), r);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReuseWritableFile(f, old, o, r, dbg), r);
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewDirectory(name, o, r, dbg);
    if (s.ok()) *r = std::make_unique<NoSyncDirectory>(std::move(*r));
    return s;
  }

 private:
  static rocksdb::IOStatus Wrap(rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok()) *r = std::make_unique<NoSyncFile>(std::move(*r));
    return s;
  }
};

/// The Env of every backend: the default one's threads and files, without syncs.
rocksdb::Env* StateEnv() {
  // Never destroyed: a database still open at exit must not outlive its Env.
  static rocksdb::Env* env =
      rocksdb::NewCompositeEnv(std::make_shared<NoSyncFileSystem>(rocksdb::FileSystem::Default()))
          .release();
  return env;
}

/// One block cache per size for the whole process (Flink shares its managed memory per slot).
std::shared_ptr<rocksdb::Cache> SharedBlockCache(uint64_t bytes) {
  static std::mutex mu;
  static std::map<uint64_t, std::weak_ptr<rocksdb::Cache>> caches;
  std::lock_guard lock(mu);
  auto& weak = caches[bytes];
  if (auto c = weak.lock()) return c;
  auto c = rocksdb::NewLRUCache(bytes);
  weak = c;
  return c;
}

rocksdb::CompressionType Compression(const RocksDBStateOptions& o) {
  if (!o.compression) return rocksdb::kNoCompression;
  auto supported = rocksdb::GetSupportedCompressions();
  for (auto c : {rocksdb::kLZ4Compression, rocksdb::kSnappyCompression}) {
    if (std::find(supported.begin(), supported.end(), c) != supported.end()) return c;
  }
  return rocksdb::kNoCompression;
}

/// The smallest key greater than every key starting with `prefix` ("" when there is none).
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto c = static_cast<uint8_t>(end.back());
    if (c != 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

}  // namespace

rocksdb::ColumnFamilyOptions StateCfOptions(const RocksDBStateOptions& o,
                                            std::shared_ptr<TtlFilterConfig> filter,
                                            std::shared_ptr<TtlClock> clock) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = o.write_buffer_bytes;
  cf.max_write_buffer_number = std::max(2, o.max_write_buffer_number);
  cf.target_file_size_base = o.target_file_size_bytes;
  cf.compression = Compression(o);
  cf.merge_operator = std::make_shared<ListAppendOperator>();
  // Most point lookups of a new (key, window) miss the memtable: a bloom filter over whole keys
  // answers those without walking the skip list.
  cf.memtable_whole_key_filtering = true;
  cf.memtable_prefix_bloom_size_ratio = 0.05;
  // A value rewritten while still in the memtable (an accumulator updated per record) replaces
  // the old one instead of adding a version. Safe here: one thread writes, and nothing iterates
  // concurrently with writes (scans run on the task thread, snapshots read flushed files).
  cf.inplace_update_support = true;
  if (filter) {
    cf.compaction_filter_factory =
        std::make_shared<TtlFilterFactory>(std::move(filter), std::move(clock));
  }
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = SharedBlockCache(o.block_cache_bytes);
  t.block_size = o.block_size_bytes;
  if (o.bloom_bits_per_key > 0) {
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(o.bloom_bits_per_key, false));
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return cf;
}

rocksdb::ColumnFamilyOptions MetaCfOptions(const RocksDBStateOptions& o) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = 1 << 20;
  cf.compression = Compression(o);
  return cf;
}

rocksdb::DBOptions DbOptions(const RocksDBStateOptions& o) {
  rocksdb::DBOptions db;
  db.env = StateEnv();
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.max_background_jobs = std::max(1, o.max_background_jobs);
  // One writer (the task thread): the single-threaded skip-list insert is cheaper.
  db.allow_concurrent_memtable_write = false;
  db.enable_write_thread_adaptive_yield = false;
  // State is recovered from checkpoints, never from the write-ahead log (writes skip it), and
  // the directory is deleted when the backend closes: nothing to flush on close.
  db.avoid_flush_during_shutdown = true;
  db.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db.keep_log_file_num = 2;
  db.max_log_file_size = 1 << 20;
  return db;
}

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  std::string msg = std::string(context) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::ParseError(std::move(msg));
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsIOError() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return Status::IOError(std::move(msg));
  }
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  return Status::Internal(std::move(msg));
}

OpenDb& OpenDb::operator=(OpenDb&& o) noexcept {
  if (this == &o) return *this;
  Close();
  db = std::move(o.db);
  meta = std::exchange(o.meta, nullptr);
  states = std::move(o.states);
  filters = std::move(o.filters);
  handles = std::move(o.handles);
  o.states.clear();
  o.handles.clear();
  return *this;
}

OpenDb::~OpenDb() {
  Close();
}

void OpenDb::Close() {
  if (!db) return;
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  handles.clear();
  states.clear();
  meta = nullptr;
  (void)db->Close();
  db.reset();
}

Result<OpenDb> OpenDatabase(const std::string& dir, const RocksDBStateOptions& o,
                            std::shared_ptr<TtlClock> clock, bool read_only) {
  rocksdb::DBOptions dbo = DbOptions(o);
  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, dir, &names);
  if (!ls.ok()) {
    if (read_only) return FromRocks(ls, "opening RocksDB state in " + dir);
    names = {rocksdb::kDefaultColumnFamilyName};
  }
  OpenDb out;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  std::vector<std::shared_ptr<TtlFilterConfig>> filters;
  for (const auto& n : names) {
    std::string state;
    if (StateNameOfCf(n, &state)) {
      auto f = std::make_shared<TtlFilterConfig>();
      descs.emplace_back(n, StateCfOptions(o, f, clock));
      filters.push_back(f);
    } else {
      descs.emplace_back(n, MetaCfOptions(o));
      filters.push_back(nullptr);
    }
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly(dbo, dir, descs, &out.handles, &raw)
                                : rocksdb::DB::Open(dbo, dir, descs, &out.handles, &raw);
  if (!s.ok()) return FromRocks(s, "opening RocksDB state in " + dir);
  out.db.reset(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    std::string state;
    if (StateNameOfCf(names[i], &state)) {
      out.states[state] = out.handles[i];
      out.filters[state] = filters[i];
    } else if (names[i] == rocksdb::kDefaultColumnFamilyName) {
      out.meta = out.handles[i];
    }
  }
  if (out.meta == nullptr) return Status::Internal("RocksDB state in " + dir + " has no metadata");
  return out;
}

}  // namespace rocksdb_internal

using rocksdb_internal::HandleBase;
using rocksdb_internal::Table;
namespace fs = std::filesystem;

Status RocksDBKeyedStateBackend::Impl::AdoptDatabase(rocksdb_internal::OpenDb opened) {
  db = std::move(opened);
  tables.clear();
  for (auto& [name, cf] : db.states) {
    auto t = std::make_unique<Table>();
    t->name = name;
    t->cf = cf;
    t->filter = db.filters[name];
    std::string meta;
    rocksdb::Status s =
        db.db->Get(rocksdb::ReadOptions(), db.meta, rocksdb_internal::MetaKey(name), &meta);
    if (s.ok()) {
      if (!rocksdb_internal::DecodeMeta(meta, &t->meta)) {
        return Status::ParseError("RocksDB state '" + name + "': unreadable metadata");
      }
    } else if (!s.IsNotFound()) {
      return rocksdb_internal::FromRocks(s, "RocksDB state '" + name + "'");
    }
    if (t->filter) {
      t->filter->ttl_ms.store(t->meta.ttl.enabled() ? t->meta.ttl.ttl.millis() : 0);
    }
    tables[name] = std::move(t);
  }
  // Continue the sequence of pending sections after the restored ones.
  std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator(rocksdb::ReadOptions(), db.meta));
  for (it->Seek(std::string(rocksdb_internal::kPendingPrefix)); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (k.substr(0, rocksdb_internal::kPendingPrefix.size()) != rocksdb_internal::kPendingPrefix) {
      break;
    }
    if (k.size() < 8) continue;
    uint64_t seq = 0;
    for (size_t i = k.size() - 8; i < k.size(); ++i) seq = (seq << 8) | static_cast<uint8_t>(k[i]);
    next_pending_seq = std::max(next_pending_seq, seq + 1);
  }
  if (!it->status().ok())
    return rocksdb_internal::FromRocks(it->status(), "RocksDB state metadata");
  return Status::Ok();
}

RocksDBKeyedStateBackend::RocksDBKeyedStateBackend(int max_parallelism, KeyGroupRange range,
                                                   Clock clock)
    : KeyedStateBackend(Kind::kRocksDB, max_parallelism, range, std::move(clock)),
      impl_(std::make_unique<Impl>()) {}

Result<std::unique_ptr<RocksDBKeyedStateBackend>> RocksDBKeyedStateBackend::Make(
    int max_parallelism, KeyGroupRange range, Clock clock, std::string local_dir,
    RocksDBStateOptions options) {
  if (max_parallelism < 1 || max_parallelism > 32768) {
    return Status::InvalidArgument("RocksDB state: max parallelism " +
                                   std::to_string(max_parallelism) + " is not within 1..32768");
  }
  fs::path dir(local_dir);
  if (local_dir.empty() || dir == dir.root_path()) {
    return Status::InvalidArgument("RocksDB state: '" + local_dir +
                                   "' cannot be a backend's working directory");
  }
  std::unique_ptr<RocksDBKeyedStateBackend> b(
      new RocksDBKeyedStateBackend(max_parallelism, range, std::move(clock)));
  Impl& im = *b->impl_;
  im.local_dir = local_dir;
  im.db_dir = (dir / "db").string();
  im.options = options;
  im.ttl_clock = std::make_shared<rocksdb_internal::TtlClock>();
  if (b->clock_) im.ttl_clock->published.store(b->clock_().millis());
  im.write_options.disableWAL = true;
  im.uploaded = std::make_shared<rocksdb_internal::UploadedFiles>();
  std::random_device rd;
  uint64_t id = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(getpid());
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(id));
  im.instance_id = hex;

  std::error_code ec;
  // The directory belongs to this instance; a leftover of a crashed process is discarded.
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) {
    return Status::IOError("RocksDB state: cannot create " + local_dir + ": " + ec.message());
  }
  auto opened = rocksdb_internal::OpenDatabase(im.db_dir, options, im.ttl_clock, false);
  if (!opened.ok()) return opened.status();
  EDDY_RETURN_NOT_OK(im.AdoptDatabase(std::move(*opened)));
  return b;
}

RocksDBKeyedStateBackend::~RocksDBKeyedStateBackend() {
  impl_->tables.clear();      // handles first: they refer to column families
  impl_->get_buffer.Reset();  // may pin memory of the database
  impl_->db.Close();
  std::error_code ec;
  fs::remove_all(impl_->local_dir, ec);
}

const std::string& RocksDBKeyedStateBackend::local_dir() const {
  return impl_->local_dir;
}
const RocksDBStateOptions& RocksDBKeyedStateBackend::options() const {
  return impl_->options;
}

// ---- raw bytes ----

bool RocksDBKeyedStateBackend::RawGet(Table* t, std::string_view key, std::string_view* value) {
  if (t->cf == nullptr) return false;
  rocksdb::PinnableSlice& buf = impl_->get_buffer;
  buf.Reset();
  rocksdb::Status s =
      impl_->db.db->Get(impl_->read_options, t->cf, rocksdb::Slice(key.data(), key.size()), &buf);
  if (s.ok()) {
    *value = std::string_view(buf.data(), buf.size());
    return true;
  }
  if (!s.IsNotFound()) ReportError(rocksdb_internal::FromRocks(s, "state '" + t->name + "'"));
  return false;
}

void RocksDBKeyedStateBackend::RawPut(Table* t, std::string_view key, std::string_view value) {
  if (t->cf == nullptr) return;
  rocksdb::Status s =
      impl_->db.db->Put(impl_->write_options, t->cf, rocksdb::Slice(key.data(), key.size()),
                        rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) ReportError(rocksdb_internal::FromRocks(s, "state '" + t->name + "'"));
}

void RocksDBKeyedStateBackend::RawMerge(Table* t, std::string_view key, std::string_view value) {
  if (t->cf == nullptr) return;
  rocksdb::Status s =
      impl_->db.db->Merge(impl_->write_options, t->cf, rocksdb::Slice(key.data(), key.size()),
                          rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) ReportError(rocksdb_internal::FromRocks(s, "state '" + t->name + "'"));
}

void RocksDBKeyedStateBackend::RawDelete(Table* t, std::string_view key) {
  if (t->cf == nullptr) return;
  rocksdb::Status s =
      impl_->db.db->Delete(impl_->write_options, t->cf, rocksdb::Slice(key.data(), key.size()));
  if (!s.ok()) ReportError(rocksdb_internal::FromRocks(s, "state '" + t->name + "'"));
}

void RocksDBKeyedStateBackend::RawScan(
    Table* t, std::string_view prefix,
    rocksdb_internal::FunctionRef<bool(std::string_view, std::string_view)> visit) {
  if (t->cf == nullptr) return;
  std::string end = rocksdb_internal::PrefixEnd(prefix);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro = impl_->read_options;
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db.db->NewIterator(ro, t->cf));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (k.substr(0, prefix.size()) != prefix) break;
    if (!visit(k, std::string_view(it->value().data(), it->value().size()))) break;
  }
  if (!it->status().ok()) {
    ReportError(rocksdb_internal::FromRocks(it->status(), "state '" + t->name + "'"));
  }
}

void RocksDBKeyedStateBackend::RawDeletePrefix(Table* t, std::string_view prefix) {
  if (t->cf == nullptr) return;
  rocksdb::WriteBatch batch;
  RawScan(t, prefix, [&](std::string_view k, std::string_view) {
    (void)batch.Delete(t->cf, rocksdb::Slice(k.data(), k.size()));
    return true;
  });
  if (batch.Count() == 0) return;
  rocksdb::Status s = impl_->db.db->Write(impl_->write_options, &batch);
  if (!s.ok()) ReportError(rocksdb_internal::FromRocks(s, "state '" + t->name + "'"));
}

void RocksDBKeyedStateBackend::ReportCorruptValue(Table* t) {
  ReportError(Status::ParseError("RocksDB state '" + t->name +
                                 "': a stored value does not parse as the state's type (was the "
                                 "state's type changed?)"));
}

// ---- registration ----

Table* RocksDBKeyedStateBackend::EnsureTable(const std::string& name) {
  Impl& im = *impl_;
  if (auto it = im.tables.find(name); it != im.tables.end()) return it->second.get();
  auto nt = std::make_unique<Table>();
  nt->name = name;
  nt->filter = std::make_shared<rocksdb_internal::TtlFilterConfig>();
  rocksdb::ColumnFamilyHandle* cf = nullptr;
  rocksdb::Status s = im.db.db->CreateColumnFamily(
      rocksdb_internal::StateCfOptions(im.options, nt->filter, im.ttl_clock),
      rocksdb_internal::CfName(name), &cf);
  if (s.ok()) {
    nt->cf = cf;
    im.db.handles.push_back(cf);
    im.db.states[name] = cf;
    im.db.filters[name] = nt->filter;
  } else {
    ReportError(rocksdb_internal::FromRocks(s, "creating keyed state '" + name + "'"));
  }
  Table* t = nt.get();
  im.tables[name] = std::move(nt);
  return t;
}

HandleBase* RocksDBKeyedStateBackend::FindHandle(const std::string& name) const {
  auto it = impl_->tables.find(name);
  return it == impl_->tables.end() ? nullptr : it->second->handle.get();
}

HandleBase* RocksDBKeyedStateBackend::RegisterHandle(const std::string& name, StateKind kind,
                                                     const StateTtlConfig& ttl,
                                                     std::unique_ptr<HandleBase> h) {
  HandleBase* raw = h.get();
  Impl& im = *impl_;
  auto it = im.tables.find(name);
  Table* t = nullptr;
  if (it != im.tables.end()) {
    t = it->second.get();
    if (t->handle) {
      ReportError(Status::InvalidArgument("keyed state '" + name +
                                          "' is requested with two different types"));
      h->table_ = t;
      t->extra.push_back(std::move(h));
      return raw;
    }
    if (t->meta.kind != StateKind::kUnknown && t->meta.kind != kind) {
      ReportError(Status::InvalidArgument("keyed state '" + name + "' was restored as kind " +
                                          std::to_string(static_cast<int>(t->meta.kind)) +
                                          " but is registered as kind " +
                                          std::to_string(static_cast<int>(kind))));
    }
  } else {
    t = EnsureTable(name);
  }
  t->meta.kind = kind;
  t->meta.ttl = ttl;
  t->filter->ttl_ms.store(ttl.enabled() ? ttl.ttl.millis() : 0);
  rocksdb::Status s = im.db.db->Put(im.write_options, im.db.meta, rocksdb_internal::MetaKey(name),
                                    rocksdb_internal::EncodeMeta(t->meta));
  if (!s.ok()) ReportError(rocksdb_internal::FromRocks(s, "keyed state '" + name + "'"));
  h->table_ = t;
  t->handle = std::move(h);
  ApplyPending(*t);
  return raw;
}

void RocksDBKeyedStateBackend::FlushHandles() {
  for (auto& [name, t] : impl_->tables) {
    if (t->handle) t->handle->FlushCache();
    for (auto& e : t->extra) e->FlushCache();
  }
  if (clock_) impl_->ttl_clock->published.store(clock_().millis(), std::memory_order_relaxed);
}

void RocksDBKeyedStateBackend::DropHandleCaches() {
  for (auto& [name, t] : impl_->tables) {
    if (t->handle) t->handle->DropCache();
    for (auto& e : t->extra) e->DropCache();
  }
}

// ---- whole-state queries ----

void RocksDBKeyedStateBackend::CollectKeys(const std::string& name, Namespace ns,
                                           std::vector<std::string>& out) {
  auto it = impl_->tables.find(name);
  if (it == impl_->tables.end() || !it->second->handle || it->second->cf == nullptr) return;
  FlushHandles();
  Table* t = it->second.get();
  std::string lower = rocksdb_internal::KeyGroupPrefix(range_.start);
  std::string upper = rocksdb_internal::KeyGroupPrefix(range_.end + 1);
  rocksdb::Slice ub(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &ub;
  std::unique_ptr<rocksdb::Iterator> iter(impl_->db.db->NewIterator(ro, t->cf));
  std::string last;
  bool have_last = false;
  for (iter->Seek(lower); iter->Valid(); iter->Next()) {
    int32_t kg;
    std::string_view key, rest;
    Namespace rns;
    if (!rocksdb_internal::ParseRowKey(std::string_view(iter->key().data(), iter->key().size()),
                                       &kg, &key, &rns, &rest)) {
      ReportCorruptValue(t);
      break;
    }
    if (rns != ns || (have_last && key == last)) continue;
    last.assign(key);
    have_last = true;
    out.push_back(last);
  }
  if (!iter->status().ok()) {
    ReportError(rocksdb_internal::FromRocks(iter->status(), "state '" + name + "'"));
  }
}

size_t RocksDBKeyedStateBackend::NumEntries() const {
  // Writing cached mutations back is invisible to callers: logically const.
  const_cast<RocksDBKeyedStateBackend*>(this)->FlushHandles();
  size_t n = 0;
  std::string lower = rocksdb_internal::KeyGroupPrefix(range_.start);
  std::string upper = rocksdb_internal::KeyGroupPrefix(range_.end + 1);
  for (const auto& [name, t] : impl_->tables) {
    if (t->cf == nullptr) continue;
    rocksdb::Slice ub(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &ub;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db.db->NewIterator(ro, t->cf));
    // Map state: one entry per (key, namespace), whatever the number of map keys.
    std::string last;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      std::string_view k(it->key().data(), it->key().size());
      if (t->meta.kind == StateKind::kMap) {
        std::string_view prefix = k.substr(0, rocksdb_internal::StateKeyLength(k));
        if (prefix == last) continue;
        last.assign(prefix);
      }
      ++n;
    }
  }
  return n;
}

Status RocksDBKeyedStateBackend::CompactAll() {
  FlushHandles();
  rocksdb::FlushOptions fo;
  for (auto* h : impl_->db.handles) {
    rocksdb::Status s = impl_->db.db->Flush(fo, h);
    if (!s.ok()) return rocksdb_internal::FromRocks(s, "flushing RocksDB state");
  }
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (auto* h : impl_->db.handles) {
    rocksdb::Status s = impl_->db.db->CompactRange(co, h, nullptr, nullptr);
    if (!s.ok()) return rocksdb_internal::FromRocks(s, "compacting RocksDB state");
  }
  return Status::Ok();
}

}  // namespace eddy
