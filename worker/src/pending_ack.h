// Internal to the task: a snapshot's synchronous half, kept while an unaligned checkpoint waits
// for its last barrier. Defined apart from task.h so that task.h needs no generated protobuf code.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eddy/proto/checkpoint.pb.h"
#include "eddy/proto/control.pb.h"
#include "eddy/state/keyed_backend.h"
#include "eddy/storage/object_store.h"
#include "eddy/worker/task.h"

namespace eddy::worker {

/// The acknowledgement so far and the keyed uploads still to run. Task thread only.
struct Task::PendingAck {
  std::shared_ptr<proto::AcknowledgeCheckpoint> ack;
  std::shared_ptr<storage::ObjectStore> store;
  uint64_t inline_bytes = 0;
  std::vector<std::pair<int, SnapshotUpload>> uploads;
  /// Unaligned: in-flight data by input channel (empty ones included) and when the snapshot
  /// was taken (steady ns; the alignment time runs from there to the last barrier).
  std::vector<std::string> channels;
  int64_t snapshot_ns = 0;
};

}  // namespace eddy::worker
