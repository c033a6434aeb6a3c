// The canonical snapshot format (HeapKeyedStateBackend::Snapshot's) for the RocksDB backend:
// writing it from rows needs no type knowledge; reading it does (values are not length-prefixed),
// so sections of states that are not registered yet wait in the metadata column family until the
// operator registers the state and its handle can parse them.
//
// Format (version 1): [u8 1][varint #states] then per state [bytes name][u8 kind][bytes section];
// section = [varint #groups] then per key group [varint kg][varint #entries] then per entry
// [bytes key][varint ns.a][varint ns.b][varint ttl ts][value]; value = Serializer<V> (value,
// reducing), Serializer<ACC> (aggregating), Serializer<std::vector<V>> (list), [varint n][K V]*n
// (map).

#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include "state/rocksdb_internal.h"

namespace eddy {

namespace rocksdb_internal {

namespace {

constexpr uint8_t kSnapshotVersion = 1;

/// Builds one state's section: groups in ascending order, each with its entry count.
class SectionWriter {
 public:
  /// Starts an entry in key group `kg` (groups arrive in ascending order) and returns the
  /// buffer to append it to.
  std::string& Entry(int32_t kg) {
    if (kg != kg_) {
      FinishGroup();
      kg_ = kg;
    }
    ++count_;
    return entries_;
  }
  std::string Take() {
    FinishGroup();
    std::string out;
    ByteWriter w(out);
    w.PutVarU64(groups_);
    out += body_;
    return out;
  }

 private:
  void FinishGroup() {
    if (count_ > 0) {
      ByteWriter w(body_);
      w.PutVarU64(static_cast<uint64_t>(kg_));
      w.PutVarU64(count_);
      body_ += entries_;
      ++groups_;
    }
    entries_.clear();
    count_ = 0;
  }
  std::string body_;
  std::string entries_;
  uint64_t groups_ = 0;
  uint64_t count_ = 0;
  int32_t kg_ = -1;
};

void EntryHeader(std::string& out, std::string_view key, Namespace ns, int64_t ts) {
  ByteWriter w(out);
  w.PutBytes(key);
  w.PutVarI64(ns.a);
  w.PutVarI64(ns.b);
  w.PutVarI64(ts);
}

Result<std::string> ExportSection(OpenDb& db, rocksdb::ColumnFamilyHandle* cf,
                                  const std::string& name, const StateMeta& meta,
                                  KeyGroupRange range, int64_t now) {
  SectionWriter sw;
  std::string lower = KeyGroupPrefix(range.start);
  std::string upper = KeyGroupPrefix(range.end + 1);
  rocksdb::Slice ub(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &ub;
  ro.fill_cache = false;
  const bool cleanup = meta.ttl.enabled() && meta.ttl.cleanup_full_snapshot;
  const int64_t ttl = meta.ttl.ttl.millis();
  // Map state: the rows of one (key, namespace) become one entry.
  std::string map_prefix, map_items, map_key;
  uint64_t map_count = 0;
  int64_t map_ts = 0;
  int32_t map_kg = 0;
  Namespace map_ns;
  auto flush_map = [&] {
    if (map_count == 0) return;
    std::string& e = sw.Entry(map_kg);
    EntryHeader(e, map_key, map_ns, map_ts);
    ByteWriter w(e);
    w.PutVarU64(map_count);
    e += map_items;
    map_items.clear();
    map_count = 0;
    map_ts = 0;
  };
  std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator(ro, cf));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    std::string_view row(it->key().data(), it->key().size());
    std::string_view value(it->value().data(), it->value().size());
    int32_t kg;
    std::string_view key, rest;
    Namespace ns;
    if (!ParseRowKey(row, &kg, &key, &ns, &rest) || value.size() < kTsBytes) {
      return Status::ParseError("RocksDB state '" + name + "': malformed row");
    }
    int64_t ts = DecodeTs(value);
    std::string_view payload = value.substr(kTsBytes);
    bool expired = cleanup && now - ts >= ttl;
    if (meta.kind == StateKind::kMap) {
      std::string_view prefix = row.substr(0, row.size() - rest.size());
      if (prefix != map_prefix) {
        flush_map();
        map_prefix.assign(prefix);
        map_key.assign(key);
        map_kg = kg;
        map_ns = ns;
      }
      if (expired) continue;
      map_items.append(rest.data(), rest.size());
      map_items.append(payload.data(), payload.size());
      ++map_count;
      map_ts = std::max(map_ts, ts);
      continue;
    }
    if (expired) continue;
    std::string& e = sw.Entry(kg);
    EntryHeader(e, key, ns, ts);
    if (meta.kind == StateKind::kList) {
      if (payload.size() < kListCountBytes) {
        return Status::ParseError("RocksDB state '" + name + "': malformed list");
      }
      ByteWriter w(e);
      w.PutVarU64(DecodeFixedLE(payload.data(), kListCountBytes));
      payload.remove_prefix(kListCountBytes);
    }
    e.append(payload.data(), payload.size());
  }
  flush_map();
  if (!it->status().ok()) return FromRocks(it->status(), "reading RocksDB state '" + name + "'");
  return sw.Take();
}

}  // namespace

Status WriteCanonicalSnapshot(OpenDb& db, KeyGroupRange range, int64_t now, std::string& out) {
  struct Part {
    std::string name;
    uint8_t kind;
    std::string section;
  };
  std::vector<Part> parts;
  for (auto& [name, cf] : db.states) {
    StateMeta meta;
    std::string raw;
    rocksdb::Status s = db.db->Get(rocksdb::ReadOptions(), db.meta, MetaKey(name), &raw);
    if (s.ok() && !DecodeMeta(raw, &meta)) {
      return Status::ParseError("RocksDB state '" + name + "': unreadable metadata");
    }
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "RocksDB state '" + name + "'");
    EDDY_ASSIGN_OR_RETURN(std::string section, ExportSection(db, cf, name, meta, range, now));
    parts.push_back({name, static_cast<uint8_t>(meta.kind), std::move(section)});
  }
  // Restored sections of states never registered: carried along as the heap backend does (one
  // section per name, the group lists of several restored snapshots concatenated).
  std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator(rocksdb::ReadOptions(), db.meta));
  std::string current;
  uint64_t groups = 0;
  std::string body;
  uint8_t kind = 0;
  auto flush = [&] {
    if (current.empty()) return;
    std::string section;
    ByteWriter w(section);
    w.PutVarU64(groups);
    section += body;
    parts.push_back({current, kind, std::move(section)});
    current.clear();
    body.clear();
    groups = 0;
  };
  for (it->Seek(std::string(kPendingPrefix)); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    std::string name;
    if (!PendingName(k, &name)) break;
    std::string_view v(it->value().data(), it->value().size());
    if (v.empty()) return Status::ParseError("RocksDB state: malformed restored section");
    if (name != current) {
      flush();
      current = name;
      kind = static_cast<uint8_t>(v[0]);
    } else if (kind != static_cast<uint8_t>(v[0])) {
      kind = 0;
    }
    ByteReader r(v.substr(1));
    groups += r.GetVarU64();
    if (r.failed()) return Status::ParseError("RocksDB state '" + name + "': corrupt section");
    body.append(r.position(), r.remaining());
  }
  flush();
  if (!it->status().ok()) return FromRocks(it->status(), "reading RocksDB state metadata");

  ByteWriter w(out);
  w.PutU8(kSnapshotVersion);
  w.PutVarU64(parts.size());
  for (const auto& p : parts) {
    w.PutBytes(p.name);
    w.PutU8(p.kind);
    w.PutBytes(p.section);
  }
  return Status::Ok();
}

}  // namespace rocksdb_internal

using rocksdb_internal::HandleBase;
using rocksdb_internal::Table;

Status RocksDBKeyedStateBackend::Snapshot(std::string& out) {
  FlushHandles();
  return rocksdb_internal::WriteCanonicalSnapshot(impl_->db, range_, Now().millis(), out);
}

Status RocksDBKeyedStateBackend::Restore(std::string_view snapshot) {
  FlushHandles();
  Impl& im = *impl_;
  ByteReader r(snapshot);
  if (r.GetU8() != rocksdb_internal::kSnapshotVersion) {
    return Status::ParseError("keyed state snapshot: unsupported version");
  }
  uint64_t n = r.GetVarU64();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    std::string name(r.GetBytes());
    uint8_t kind = r.GetU8();
    std::string_view section = r.GetBytes();
    if (r.failed()) break;
    auto it = im.tables.find(name);
    if (it != im.tables.end() && it->second->handle) {
      if (!ImportSection(*it->second->handle, section) && restore_error_.ok()) {
        restore_error_ = Status::ParseError("keyed state '" + name + "': snapshot is corrupt");
      }
      continue;
    }
    std::string row(1, static_cast<char>(kind));
    row.append(section);
    rocksdb::Status s =
        im.db.db->Put(im.write_options, im.db.meta,
                      rocksdb_internal::PendingKey(name, im.next_pending_seq++), row);
    if (!s.ok()) return rocksdb_internal::FromRocks(s, "restoring keyed state '" + name + "'");
  }
  DropHandleCaches();
  if (r.failed()) return Status::ParseError("keyed state snapshot is truncated or corrupt");
  return restore_error_;
}

bool RocksDBKeyedStateBackend::ImportSection(HandleBase& h, std::string_view section) {
  ByteReader r(section);
  uint64_t groups = r.GetVarU64();
  std::string key_buf;
  for (uint64_t g = 0; g < groups && !r.failed(); ++g) {
    (void)r.GetVarU64();  // the key group; recomputed from the key below
    uint64_t count = r.GetVarU64();
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view key = r.GetBytes();
      Namespace ns{r.GetVarI64(), r.GetVarI64()};
      int64_t ts = r.GetVarI64();
      if (r.failed()) return false;
      KeyGroup kg = KeyGroupForKeyBytes(key, max_parallelism_);
      bool keep = range_.Contains(kg);
      key_buf.clear();
      if (keep) AppendStateKeyOf(kg, key, ns, key_buf);
      if (!h.ImportCanonical(r, key_buf, ts, keep)) return false;
    }
  }
  return !r.failed();
}

void RocksDBKeyedStateBackend::ApplyPending(Table& t) {
  Impl& im = *impl_;
  std::string prefix = rocksdb_internal::PendingPrefix(t.name);
  std::vector<std::pair<std::string, std::string>> rows;
  std::unique_ptr<rocksdb::Iterator> it(im.db.db->NewIterator(rocksdb::ReadOptions(), im.db.meta));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (k.substr(0, prefix.size()) != prefix) break;
    rows.emplace_back(std::string(k), std::string(it->value().data(), it->value().size()));
  }
  if (!it->status().ok()) {
    ReportError(
        rocksdb_internal::FromRocks(it->status(), "restoring keyed state '" + t.name + "'"));
    return;
  }
  rocksdb::WriteBatch done;
  for (const auto& [key, value] : rows) {
    bool ok = !value.empty() && ImportSection(*t.handle, std::string_view(value).substr(1));
    if (!ok && restore_error_.ok()) {
      restore_error_ = Status::ParseError("keyed state '" + t.name + "': snapshot is corrupt");
      ReportError(restore_error_);
    }
    (void)done.Delete(im.db.meta, key);
  }
  if (done.Count() == 0) return;
  rocksdb::Status s = im.db.db->Write(im.write_options, &done);
  if (!s.ok())
    ReportError(rocksdb_internal::FromRocks(s, "restoring keyed state '" + t.name + "'"));
}

}  // namespace eddy
