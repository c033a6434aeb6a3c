#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eddy/functions.h"
#include "eddy/row.h"
#include "eddy/spec/formats.h"
#include "eddy/storage/object_store.h"

namespace eddy {

/// Idempotent upsert sink for keyed results (the job spec's `upsert` sink; Flink's upsert sinks,
/// e.g. JDBC or Elasticsearch with the key as document id): a directory (local path or
/// object-store URI) holding one object per distinct key, named after the key's values and
/// holding the key's latest row. Writing a key again replaces its object atomically (`Put`), so a
/// record replayed after a restore rewrites what was already there: with deterministic results
/// the directory ends up as a failure-free run leaves it, under at-least-once checkpoints too.
///
/// Rows are buffered per key (the latest wins) and written by the sink's periodic flush (at most
/// kSinkFlushInterval after a record arrived), when `max_buffered` keys are waiting, before every
/// checkpoint barrier (so a completed checkpoint covers everything before it) and at the end of
/// the input. The job
/// compiler partitions the sink's input by the key, so one subtask owns each key. A failed write
/// fails the task (the restart replays from the last checkpoint). Threading: the task thread.
class UpsertSinkFunction final : public SinkFunction<Row> {
 public:
  UpsertSinkFunction(std::string dir, std::vector<int> key_fields, std::string extension,
                     FormatOptions opts, SchemaPtr schema, size_t max_buffered = 10000)
      : dir_(std::move(dir)),
        key_fields_(std::move(key_fields)),
        ext_(std::move(extension)),
        opts_(opts),
        schema_(std::move(schema)),
        max_buffered_(max_buffered) {}

  Status Open(RuntimeContext& ctx) override;
  void Invoke(const Row& v, Timestamp ts) override;
  void Flush() override;
  void Finish() override;
  void PrepareSnapshotPreBarrier(CheckpointId id) override;

  /// The object name of a key: each key value as text (null as `~`, an empty string as `_`) with
  /// every byte outside [A-Za-z0-9.-] percent-encoded, joined by `,`, then `extension`. Names
  /// longer than 200 bytes keep their first 160 and end in `#` + a 64-bit hash of the whole.
  static void AppendObjectName(const Row& row, const std::vector<int>& key_fields,
                               std::string_view extension, std::string& out);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  /// Writes every buffered key; false (task failed) on a storage error.
  bool WriteAll();

  std::string dir_;
  std::vector<int> key_fields_;
  std::string ext_;
  FormatOptions opts_;
  SchemaPtr schema_;
  size_t max_buffered_;
  RuntimeContext* ctx_ = nullptr;
  std::unique_ptr<storage::ObjectStore> store_;
  std::unique_ptr<RowFormatter> fmt_;
  /// Object name -> the latest row's text.
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> buffered_;
  std::string name_;  // scratch
};

}  // namespace eddy
