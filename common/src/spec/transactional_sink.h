#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eddy/functions.h"
#include "eddy/row.h"
#include "eddy/spec/formats.h"
#include "eddy/storage/object_store.h"

namespace eddy {

/// Exactly-once file sink (Flink's FileSink with two-phase commit): each subtask writes part
/// files `part-<subtask>-<token>-<n>.<ext>` into a directory (local path or object-store URI).
/// Rows collect in memory; before a checkpoint's barrier goes on, the open part is staged
/// (written but invisible: a hidden file, or an open S3 multipart upload) and remembered as pending
/// for that checkpoint; the pending list is union operator state; when the checkpoint completes
/// the parts are committed (renamed into place / multipart completed). On restore, every pending
/// part of the snapshot is committed (it belongs to a completed checkpoint) and this subtask's
/// leftover staged parts (written after that checkpoint) are aborted. At the end of a bounded
/// input everything is committed. A part is also staged early when it reaches `roll_bytes`, so
/// memory stays bounded. Threading: the task thread.
class TransactionalFileSinkFunction final : public SinkFunction<Row> {
 public:
  TransactionalFileSinkFunction(std::string dir, std::string extension, FormatOptions opts,
                                SchemaPtr schema, size_t roll_bytes = 64u << 20)
      : dir_(std::move(dir)),
        ext_(std::move(extension)),
        opts_(opts),
        schema_(std::move(schema)),
        roll_bytes_(roll_bytes) {}

  Status Open(RuntimeContext& ctx) override;
  void Invoke(const Row& v, Timestamp ts) override;
  void Finish() override;
  void PrepareSnapshotPreBarrier(CheckpointId id) override;
  void SnapshotState() override;
  void NotifyCheckpointComplete(CheckpointId id) override;

 private:
  struct Pending {
    int64_t checkpoint = 0;  // 0 = not yet covered by a checkpoint
    storage::StagedObject staged;
  };
  /// Stages the open part (if any) as pending; false (task failed) on a storage error.
  bool StageOpenPart();
  Status CommitUpTo(int64_t checkpoint);

  std::string dir_, ext_;
  FormatOptions opts_;
  SchemaPtr schema_;
  size_t roll_bytes_;
  RuntimeContext* ctx_ = nullptr;
  std::unique_ptr<storage::ObjectStore> store_;
  std::unique_ptr<RowFormatter> fmt_;
  std::string buffer_;
  std::vector<Pending> pending_;
  std::string token_;
  uint64_t next_part_ = 0;
};

}  // namespace eddy
