#include "eddy/rpc/envelope.h"

namespace eddy::rpc {

std::string Pack(proto::Envelope& e) {
  e.set_protocol(kProtocolVersion);
  std::string out;
  e.SerializeToString(&out);
  return out;
}

Result<proto::Envelope> Unpack(std::string_view bytes) {
  proto::Envelope e;
  if (bytes.size() > (64u << 20)) {
    return Status::InvalidArgument("control message of " + std::to_string(bytes.size()) +
                                   " bytes exceeds the 64 MiB limit");
  }
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::InvalidArgument("control message is not a valid protobuf Envelope (" +
                                   std::to_string(bytes.size()) + " bytes, garbage or truncated)");
  }
  if (e.protocol() != kProtocolVersion) {
    return Status::InvalidArgument("control message speaks protocol " +
                                   std::to_string(e.protocol()) + ", this process speaks " +
                                   std::to_string(kProtocolVersion));
  }
  if (e.body_case() == proto::Envelope::BODY_NOT_SET) {
    return Status::InvalidArgument("control message has no body");
  }
  return e;
}

}  // namespace eddy::rpc
