#pragma once

// Internals of RocksDBKeyedStateBackend shared by rocksdb_backend.cc, rocksdb_canonical.cc and
// rocksdb_snapshot.cc. The only place (with those files) that includes RocksDB headers.

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/proto/checkpoint.pb.h"
#include "eddy/state/rocksdb_backend.h"

namespace eddy {
namespace rocksdb_internal {

// ---- names and keys ----

/// Column family of state `name`: "s/<name>" (the default column family holds metadata).
std::string CfName(std::string_view state_name);
/// The state name of column family `cf`, or false for the default (metadata) column family.
bool StateNameOfCf(std::string_view cf, std::string* name);

/// Metadata rows of the default column family:
///   "k/<name>"                       -> StateMeta of the state (kind, TTL)
///   "p/<name>\0<8-byte BE sequence>" -> [kind u8][canonical section]: restored canonical
///                                       sections of a state not registered yet (converted when
///                                       it registers; carried along by snapshots until then)
std::string MetaKey(std::string_view name);
std::string PendingPrefix(std::string_view name);
std::string PendingKey(std::string_view name, uint64_t seq);
/// The state name of a pending row's key.
bool PendingName(std::string_view key, std::string* name);
inline constexpr std::string_view kMetaPrefix = "k/";
inline constexpr std::string_view kPendingPrefix = "p/";

/// What the metadata row of a state says.
struct StateMeta {
  StateKind kind = StateKind::kUnknown;
  StateTtlConfig ttl;
};
std::string EncodeMeta(const StateMeta& m);
bool DecodeMeta(std::string_view in, StateMeta* m);

/// The 2-byte big-endian key-group prefix (the first key of key group `kg`).
std::string KeyGroupPrefix(int32_t kg);
/// Splits a state row key into key group, serialized key, namespace and the rest (map key).
bool ParseRowKey(std::string_view row, int32_t* kg, std::string_view* key, Namespace* ns,
                 std::string_view* rest);
/// Length of the (key group, key, namespace) prefix of a row key, 0 when malformed.
size_t StateKeyLength(std::string_view row);

// ---- options, merge operator, compaction filter ----

/// Processing time for the TTL compaction filter, which runs on RocksDB's threads: the wall clock,
/// or (backends with an injected clock) the last time the task thread published.
struct TtlClock {
  static constexpr int64_t kWallClock = INT64_MIN;
  std::atomic<int64_t> published{kWallClock};
  int64_t Now() const;
};

/// TTL of one column family as the compaction filter sees it (0 = none).
struct TtlFilterConfig {
  std::atomic<int64_t> ttl_ms{0};
};

/// Column family options of every state column family: the list-append merge operator (used by
/// list state only), the TTL compaction filter for `filter`, the block-based table with the
/// shared block cache and bloom filter.
rocksdb::ColumnFamilyOptions StateCfOptions(const RocksDBStateOptions& o,
                                            std::shared_ptr<TtlFilterConfig> filter,
                                            std::shared_ptr<TtlClock> clock);
rocksdb::ColumnFamilyOptions MetaCfOptions(const RocksDBStateOptions& o);
rocksdb::DBOptions DbOptions(const RocksDBStateOptions& o);

/// A RocksDB status as an Eddy Status: Corruption -> ParseError, NotFound -> NotFound,
/// IOError/Busy/TryAgain -> IOError, others Internal. `context` prefixes the message.
Status FromRocks(const rocksdb::Status& s, std::string_view context);

// ---- an open database with its column families ----

/// A database with handles of all its column families. Closes it when destroyed.
struct OpenDb {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* meta = nullptr;  // default column family
  /// State column families by state name.
  std::map<std::string, rocksdb::ColumnFamilyHandle*> states;
  /// TTL filter configuration of each state column family (live databases only).
  std::map<std::string, std::shared_ptr<TtlFilterConfig>> filters;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // all, for closing
  OpenDb() = default;
  OpenDb(OpenDb&&) = default;
  /// Closes this database before taking `o`'s.
  OpenDb& operator=(OpenDb&& o) noexcept;
  ~OpenDb();
  void Close();
};

/// Opens (read-write, creating it when missing) or opens read-only the database in `dir` with
/// every column family it has.
Result<OpenDb> OpenDatabase(const std::string& dir, const RocksDBStateOptions& o,
                            std::shared_ptr<TtlClock> clock, bool read_only);

// ---- canonical format (rocksdb_canonical.cc) ----

/// Writes the canonical snapshot (HeapKeyedStateBackend::Snapshot's format) of the key groups in
/// `range` of `db` to `out`: every state column family with rows, then the pending sections of
/// states never registered (kind 0). Expired entries are skipped when their state's TTL says
/// cleanup_full_snapshot, relative to `now`.
Status WriteCanonicalSnapshot(OpenDb& db, KeyGroupRange range, int64_t now, std::string& out);

// ---- backend internals ----

/// A registered (or restored, not yet registered) state.
struct Table {
  std::string name;
  StateMeta meta;
  rocksdb::ColumnFamilyHandle* cf = nullptr;
  std::shared_ptr<TtlFilterConfig> filter;
  /// The typed handle, nullptr until the operator registers the state. Further handles of the same
  /// name with another type (an operator bug, reported) are kept in `extra`.
  std::unique_ptr<HandleBase> handle;
  std::vector<std::unique_ptr<HandleBase>> extra;
};

/// Incremental-checkpoint bookkeeping, shared with the uploads running on other threads.
struct UploadedFiles {
  std::mutex mu;
  /// SST files (local name -> uploaded file) of the last checkpoint confirmed complete: the next
  /// checkpoint references these instead of uploading them again.
  std::map<std::string, proto::StateFile> confirmed;
  int64_t confirmed_id = -1;
  /// SST files of checkpoints uploaded but not yet confirmed, by checkpoint id.
  std::map<int64_t, std::map<std::string, proto::StateFile>> pending;
};

}  // namespace rocksdb_internal

struct RocksDBKeyedStateBackend::Impl {
  std::string local_dir;
  std::string db_dir;
  RocksDBStateOptions options;
  std::shared_ptr<rocksdb_internal::TtlClock> ttl_clock;
  rocksdb_internal::OpenDb db;
  /// Tables (registered or restored states) by state name.
  std::map<std::string, std::unique_ptr<rocksdb_internal::Table>> tables;
  rocksdb::WriteOptions write_options;
  rocksdb::ReadOptions read_options;
  rocksdb::PinnableSlice get_buffer;
  uint64_t next_pending_seq = 0;
  uint64_t next_scratch_dir = 0;
  /// Random per instance: names of uploaded shared files never collide across instances.
  std::string instance_id;
  std::shared_ptr<rocksdb_internal::UploadedFiles> uploaded;

  /// Adopts the column families of `db` (after open or a restore) as tables.
  Status AdoptDatabase(rocksdb_internal::OpenDb opened);
};

}  // namespace eddy
