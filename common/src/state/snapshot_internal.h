#pragma once

#include <string>

#include "eddy/proto/checkpoint.pb.h"
#include "eddy/state/keyed_backend.h"

namespace eddy {

/// The handle of a canonical snapshot `data` of `range`: inline when small (or when there is no
/// store), else uploaded as `target.exclusive_prefix + "keyed"`. Runs on the upload thread.
Result<proto::KeyedStateHandle> UploadCanonicalSnapshot(const std::string& data,
                                                        KeyGroupRange range,
                                                        const SnapshotTarget& target);

}  // namespace eddy
