#include "eddy/state/metadata.h"

#include "eddy/proto/checkpoint.pb.h"

namespace eddy {

namespace {
constexpr char kMagic[4] = {'E', 'D', 'M', 'T'};
constexpr size_t kTrailer = 12;
}  // namespace

std::string SerializeCheckpointMetadata(const proto::CheckpointMetadata& md) {
  std::string out = md.SerializeAsString();
  uint64_t n = out.size();
  out.append(kMagic, sizeof kMagic);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  return out;
}

Status ParseCheckpointMetadata(std::string_view bytes, proto::CheckpointMetadata& md) {
  if (bytes.size() < kTrailer ||
      bytes.substr(bytes.size() - kTrailer, 4) != std::string_view(kMagic, 4)) {
    return Status::ParseError("checkpoint metadata is truncated or not Eddy metadata (" +
                              std::to_string(bytes.size()) + " bytes, no trailer)");
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) {
    n |= static_cast<uint64_t>(
             static_cast<uint8_t>(bytes[bytes.size() - 8 + static_cast<size_t>(i)]))
         << (8 * i);
  }
  if (n != bytes.size() - kTrailer) {
    return Status::ParseError("checkpoint metadata is truncated or corrupt (length " +
                              std::to_string(n) + " in the trailer, " +
                              std::to_string(bytes.size() - kTrailer) + " bytes before it)");
  }
  if (!md.ParseFromArray(bytes.data(), static_cast<int>(n))) {
    return Status::ParseError("checkpoint metadata is corrupt (not a valid message)");
  }
  if (md.version() != kCheckpointMetadataVersion) {
    return Status::ParseError("checkpoint metadata version " + std::to_string(md.version()) +
                              " is not supported (this build reads version " +
                              std::to_string(kCheckpointMetadataVersion) + ")");
  }
  return Status::Ok();
}

}  // namespace eddy
