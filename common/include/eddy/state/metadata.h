#pragma once

#include <string>
#include <string_view>

#include "eddy/status.h"

namespace eddy::proto {
class CheckpointMetadata;
}

namespace eddy {

/// The bytes of a `_metadata` object: the Protobuf message followed by a 12-byte trailer ("EDMT"
/// and the message length, little endian) so that a truncated or cut-short object is recognized
/// even where the Protobuf prefix would still parse.
std::string SerializeCheckpointMetadata(const proto::CheckpointMetadata& md);
/// ParseError naming what is wrong (truncated, corrupt, unknown version).
Status ParseCheckpointMetadata(std::string_view bytes, proto::CheckpointMetadata& md);
/// The metadata format version this build writes and reads.
inline constexpr uint32_t kCheckpointMetadataVersion = 1;

}  // namespace eddy
